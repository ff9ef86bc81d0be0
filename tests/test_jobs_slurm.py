"""Job arrays on a real Slurm (the local single-node cluster, started by tests/slurm_cluster.py when root with the
Debian packages): a 23-task array through submitit gathered into HDF5, and real faults — scancel, SIGKILL,
tasks that exceed their time limit, corrupted shards — reported by status, fixed by resubmit --failed.

The long-running tasks run a real program, `sleep 70`, through the "program" step (an argument list, no shell) as
a stand-in for an external code, under the shortest Slurm time limit (1 minute)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from gauss_hpc import jobs, store
from gauss_hpc.jobs import shards
from slurm_cluster import require_cluster

LIGANDS = ["[O-]C", "[O-]c1ccccc1", "[O-]C(C)=O", "[O-]C(C)(C)C", "[NH-]C", "[n-]1cccc1", "OC", "O=C(C)C",
           "O1CCCC1", "n1ccccc1", "N#CC", "N1CCCC1", "[O-]CC", "[O-]CCC", "OCC", "NC", "NCC", "[O-]C(=O)CC",
           "O=CC", "n1ccncc1"]
NASTY = ["$(touch PWNED_dollar)", "`touch PWNED_tick`; echo x", "C'C\"; rm -rf PWNED_semicolon"]


def _wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    """Four 70 s tasks under a 1 min limit, submitted first so that they run while the other test works;
    task 0 is cancelled with scancel and task 1's process gets SIGKILL while running."""
    require_cluster()
    folder = tmp_path_factory.mktemp("faults")
    spec = {"campaign": {"name": "faults", "executor": "slurm"}, "input": {"smiles": ["A", "B", "C", "D"]},
            "steps": [{"name": "program", "params": {"command": ["sleep", "70"]}, "resources": {"time_min": 1}}]}
    campaign = jobs.submit(spec, folder / "c", quiet=True)
    tasks = jobs.status(campaign.dir)["task_id"].tolist()
    _wait_until(lambda: all(shards.read_marker(campaign.dir, t) for t in tasks[:2]), 120, "tasks 0 and 1 to start")
    subprocess.run(["scancel", shards.read_marker(campaign.dir, tasks[0])["job_id"]], check=True)
    os.kill(shards.read_marker(campaign.dir, tasks[1])["pid"], signal.SIGKILL)
    return campaign


def test_slurm_array_of_23_tasks_gathered_into_hdf5(tmp_path, faults):
    require_cluster()
    spec = {"campaign": {"name": "array", "executor": "slurm"}, "input": {"smiles": LIGANDS + NASTY},
            "steps": [{"name": "assemble", "resources": {"time_min": 3}}, {"name": "crystal_field"}]}
    campaign = jobs.submit(spec, tmp_path / "c", quiet=True)
    submission = shards.read_submissions(campaign.dir)[0]
    assert submission["executor"] == "slurm" and len(submission["jobs"]) == 23
    master = submission["jobs"][0]["job_id"].split("_")[0]
    assert [j["job_id"] for j in submission["jobs"]] == [f"{master}_{i}" for i in range(23)]
    table = campaign.wait(timeout=420, poll=3, progress=False)
    assert table["state"].tolist()[:20] == ["done"] * 20, table[["name", "state", "reason", "message"]]
    assert table["reason"].tolist()[20:] == ["invalid_input"] * 3
    assert not list(tmp_path.rglob("PWNED*")) and not list(campaign.dir.parent.rglob("PWNED*"))
    out = jobs.gather(campaign.dir, quiet=True)
    results = store.read_results(out)
    assert len(results) == 23 and results["task_id"].is_unique
    assert results["smiles"].tolist() == LIGANDS + NASTY
    assert results["job_id"].tolist() == [f"{master}_{i}" for i in range(23)]
    kd = store.read_result_arrays(out)["kd_energies"]
    assert np.allclose(kd[:20, 0], 0) and np.all(kd[:20, 7] > kd[:20, 1]) and np.isnan(kd[20:]).all()
    first = out.read_bytes()
    assert jobs.gather(campaign.dir, quiet=True).read_bytes() == first

    # corrupt two shards after the fact: reported, resubmitted through Slurm, gathered exactly once
    victims = results["task_id"][[3, 11]].tolist()
    shards.shard_path(campaign.dir, victims[0]).write_text('{"task_id": "')
    shards.shard_path(campaign.dir, victims[1]).write_text("")
    table = jobs.status(campaign.dir)
    assert table.set_index("task_id").loc[victims, "reason"].tolist() == ["corrupt_shard"] * 2
    jobs.resubmit(campaign.dir, reasons=["corrupt_shard"], quiet=True)
    assert len(shards.read_submissions(campaign.dir)[-1]["jobs"]) == 2
    table = campaign.wait(timeout=300, poll=3, progress=False)
    assert table["state"].tolist()[:20] == ["done"] * 20
    results = store.read_results(jobs.gather(campaign.dir, quiet=True))
    assert len(results) == 23 and results["task_id"].is_unique
    assert results.set_index("task_id").loc[victims, "attempt"].tolist() == [2, 2]


def test_slurm_faults_reported_and_resubmitted(faults):
    table = faults.wait(timeout=300, poll=3, progress=False)
    assert table["state"].tolist() == ["failed"] * 4
    assert table["reason"].tolist() == ["cancelled", "killed", "timeout", "timeout"], table[["reason", "message"]]
    assert "CANCELLED" in table["message"][0]
    summary = jobs.summary(table).set_index("reason")["tasks"]
    assert summary["timeout"] == 2 and summary["cancelled"] == 1 and summary["killed"] == 1
    # no partial results: gather now records the four failures, each once
    results = store.read_results(jobs.gather(faults.dir, quiet=True))
    assert results["status"].tolist() == ["cancelled", "killed", "timeout", "timeout"]
    jobs.resubmit(faults.dir, time_factor=3, quiet=True)
    assert shards.read_submissions(faults.dir)[-1]["resources"]["time_min"] == 3
    table = faults.wait(timeout=400, poll=3, progress=False)
    assert table["state"].tolist() == ["done"] * 4 and table["attempt"].tolist() == [2] * 4
    results = store.read_results(jobs.gather(faults.dir, quiet=True))
    assert results["status"].tolist() == ["ok"] * 4 and results["task_id"].is_unique
    # the program really ran for its 70 s in its own work directory
    assert all(w >= 69 for w in results["wall_seconds"])
    with h5py.File(faults.dir / "results.h5") as h5:
        assert h5["steps/status"].asstr()[()].tolist() == ["ok"] * 4


def test_start_cluster_is_idempotent_under_concurrent_calls():
    require_cluster()
    script = Path(__file__).resolve().parents[1] / "slurm" / "start_cluster.sh"
    procs = [subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(3)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert all("already up" in out for out in outputs)
    assert subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0


def test_a_campaign_submitted_from_inside_a_slurm_job_runs(tmp_path):
    """As slurm/loop.sbatch does: the driver runs inside a batch job (with its own SLURM_* variables, here
    --mem-per-cpu) and submits the campaign's array from there. The array must not inherit the driver's job
    (sbatch passes the environment on: the elements' srun refused the outer SLURM_MEM_PER_CPU beside --mem)."""
    require_cluster()
    driver = tmp_path / "driver.py"
    driver.write_text(f"""#!{sys.executable}
#SBATCH --job-name=nested-driver
#SBATCH --ntasks=1
#SBATCH --mem-per-cpu=500M
#SBATCH --time=10
import os, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from gauss_hpc import jobs
assert os.environ.get("SLURM_MEM_PER_CPU") and os.environ.get("SLURM_JOB_ID")
spec = {{"campaign": {{"name": "nested", "executor": "slurm"}}, "input": {{"smiles": ["[O-]C", "N"]}},
        "steps": [{{"name": "assemble", "resources": {{"time_min": 3}}}}, {{"name": "crystal_field"}}]}}
campaign = jobs.submit(spec, {str(tmp_path / "c")!r}, quiet=True)
table = campaign.wait(timeout=400, poll=3, progress=False)
print(table[["name", "state", "reason", "message"]].to_string())
jobs.gather(campaign.dir, quiet=True)
""")
    done = subprocess.run(["sbatch", "--wait", "--output", str(tmp_path / "driver.out"), str(driver)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    log = (tmp_path / "driver.out").read_text() if (tmp_path / "driver.out").is_file() else ""
    assert done.returncode == 0, done.stderr + log
    results = store.read_results(tmp_path / "c" / "results.h5")
    assert results["status"].tolist() == ["ok", "ok"], log
    errors = "".join(p.read_text() for p in (tmp_path / "c" / "logs").glob("*.err"))
    assert "mutually exclusive" not in errors
