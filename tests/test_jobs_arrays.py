"""Cluster limits and controller load on the real local Slurm (started with MaxArraySize=50 by
slurm/start_cluster.sh): a 120-task campaign becomes three arrays, each indexed from 0, and status, wait,
cancel and gather treat them as one campaign with one squeue call per check."""

import subprocess
import time

from gauss_hpc import jobs, store
from gauss_hpc.jobs import executor, shards
from slurm_cluster import require_cluster


def _max_array_size() -> int:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    return int(next(line.split("=")[1] for line in out.splitlines() if line.startswith("MaxArraySize")))


def test_120_tasks_with_max_array_size_50_are_three_arrays_gathered_once(tmp_path):
    require_cluster()
    assert _max_array_size() == 50, "restart the local cluster (slurm/stop_cluster.sh; start_cluster.sh)"
    assert executor.slurm_limits()[0] == 50
    spec = {"campaign": {"name": "split", "executor": "slurm"},
            "input": {"smiles": [f"C{'C' * (i % 9)}O.{i}" for i in range(120)]},
            "resources": {"tasks_per_job": 1, "array_parallelism": 60},
            "steps": [{"name": "program", "params": {"command": ["true"]}, "resources": {"time_min": 2}}]}
    campaign = jobs.submit(spec, tmp_path / "c", quiet=True)
    record = shards.read_submissions(campaign.dir)[0]
    arrays = record["arrays"]
    assert [(a["offset"], a["elements"]) for a in arrays] == [(0, 50), (50, 50), (100, 20)]
    assert len({a["array_id"] for a in arrays}) == 3
    expected = [f"{a['array_id']}_{i}" for a in arrays for i in range(a["elements"])]
    assert [j["job_id"] for j in record["jobs"]] == expected

    # one squeue per status check for the whole campaign, however many tasks and arrays
    before = executor.SCHEDULER_CALLS["squeue"]
    jobs.status(campaign.dir)
    assert executor.SCHEDULER_CALLS["squeue"] - before == 1
    before = dict(executor.SCHEDULER_CALLS)
    start = time.monotonic()
    table = campaign.wait(timeout=600, poll=2, max_poll=8, progress=False)
    waited = time.monotonic() - start
    calls = executor.SCHEDULER_CALLS["squeue"] - before.get("squeue", 0)
    assert table["state"].tolist() == ["done"] * 120, table[["state", "reason", "message"]]
    assert 1 <= calls <= waited / 2 + 2
    assert executor.SCHEDULER_CALLS["sacct"] == 0 and executor.SCHEDULER_CALLS["scontrol"] == before["scontrol"]

    out = jobs.gather(campaign.dir, quiet=True)
    results = store.read_results(out)
    assert len(results) == 120 and results["task_id"].is_unique
    assert results["job_id"].tolist() == expected and set(results["status"]) == {"ok"}
    # a finished campaign costs the scheduler nothing
    before = executor.SCHEDULER_CALLS["squeue"]
    assert jobs.gather(campaign.dir, quiet=True).read_bytes() == out.read_bytes()
    assert executor.SCHEDULER_CALLS["squeue"] == before


def test_cancel_and_resubmit_see_every_array_of_a_campaign(tmp_path):
    require_cluster()
    assert _max_array_size() == 50
    spec = {"campaign": {"name": "cancel", "executor": "slurm"},
            "input": {"smiles": [f"N{'C' * (i % 5)}.{i}" for i in range(60)]},
            "resources": {"tasks_per_job": 1, "array_parallelism": 4},
            "steps": [{"name": "program", "params": {"command": ["sleep", "300"]}, "resources": {"time_min": 10}}]}
    campaign = jobs.submit(spec, tmp_path / "c", quiet=True)
    arrays = shards.read_submissions(campaign.dir)[0]["arrays"]
    assert [a["elements"] for a in arrays] == [50, 10]
    assert len(jobs.cancel(campaign.dir)) == 60
    table = campaign.wait(timeout=180, poll=1, max_poll=4, progress=False)
    assert table["state"].tolist() == ["failed"] * 60 and set(table["reason"]) == {"cancelled"}
    listed = subprocess.run(["squeue", "-h", "-j", ",".join(a["array_id"] for a in arrays)],
                            capture_output=True, text=True, timeout=30).stdout.strip()
    assert listed == ""
    # resubmitting the 60 cancelled tasks: one new submission, split the same way, then cancelled again
    jobs.resubmit(campaign.dir, reasons=["cancelled"], quiet=True)
    second = shards.read_submissions(campaign.dir)[-1]
    assert second["number"] == 2 and [a["elements"] for a in second["arrays"]] == [50, 10]
    assert len(jobs.cancel(campaign.dir)) == 60
    table = campaign.wait(timeout=180, poll=1, max_poll=4, progress=False)
    assert set(table["reason"]) == {"cancelled"} and set(table["attempt"]) == {2}
