"""The local executor (submitit LocalExecutor on this machine, no scheduler): a 23-task campaign gathered while
it runs with another process reading results.h5 the whole time; many tasks finishing at once; SIGKILL and
cancel of running local jobs."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from gauss_hpc import jobs, store
from gauss_hpc.jobs import shards

LIGANDS = ["[O-]C", "[O-]c1ccccc1", "[O-]C(C)=O", "[O-]C(C)(C)C", "[NH-]C", "[n-]1cccc1", "OC", "O=C(C)C",
           "O1CCCC1", "n1ccccc1", "N#CC", "N1CCCC1", "[O-]CC", "[O-]CCC", "OCC", "NC", "NCC", "[O-]C(=O)CC",
           "O=CC", "n1ccncc1"]
NASTY = ["$(touch PWNED_dollar)", "`touch PWNED_tick`; echo x", "C'C\"; rm -rf PWNED_semicolon"]

# A second process that opens results.h5 in a loop: every file it ever sees must be complete.
READER = """
import sys, time, h5py
path, seconds = sys.argv[1], float(sys.argv[2])
seen = bad = 0
end = time.time() + seconds
while time.time() < end:
    try:
        with h5py.File(path, "r") as h5:
            ids = h5["results/task_id"].asstr()[()]
            assert len(ids) == int(sys.argv[3]) and len(set(ids)) == len(ids) and h5.attrs["kind"] == "results"
            seen += 1
    except FileNotFoundError:
        pass
    except Exception as exc:
        bad += 1
        print("BAD", type(exc).__name__, exc, file=sys.stderr)
    time.sleep(0.05)
print(seen, bad)
"""


def test_local_campaign_gathered_while_running(tmp_path):
    spec = {"campaign": {"name": "local", "executor": "local"}, "input": {"smiles": LIGANDS + NASTY},
            "resources": {"local_parallelism": 3},
            "steps": [{"name": "assemble", "resources": {"time_min": 2}}, {"name": "crystal_field"}]}
    campaign = jobs.submit(spec, tmp_path / "c", quiet=True)
    submission = shards.read_submissions(campaign.dir)[0]
    assert submission["executor"] == "local" and len(submission["jobs"]) == 3
    out = campaign.dir / "results.h5"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(out), "600", "23"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        gathers = 0
        while jobs.status(campaign.dir)["state"].isin(["pending", "running"]).any():
            jobs.gather(campaign.dir, quiet=True)       # gathers that race the finishing tasks
            gathers += 1
            time.sleep(2)
        jobs.gather(campaign.dir, quiet=True)
    finally:
        reader.send_signal(signal.SIGKILL)
    stdout, stderr = reader.communicate()
    assert "BAD" not in stderr, stderr
    assert gathers >= 2
    table = jobs.status(campaign.dir)
    assert table["state"].tolist() == ["done"] * 20 + ["failed"] * 3
    assert not list(tmp_path.rglob("PWNED*")) and not list(campaign.dir.glob(".*.tmp"))
    results = store.read_results(out)
    assert results["smiles"].tolist() == LIGANDS + NASTY and results["task_id"].is_unique
    kd = store.read_result_arrays(out)["kd_energies"]
    assert np.isfinite(kd[:20]).all() and np.allclose(kd[:20, 0], 0)
    first = out.read_bytes()
    assert jobs.gather(campaign.dir, quiet=True).read_bytes() == first


def test_many_tasks_finishing_at_once(tmp_path):
    """24 tasks in 8 local jobs that end within milliseconds of each other (the program is `true`)."""
    spec = {"campaign": {"name": "burst", "executor": "local"}, "resources": {"local_parallelism": 8},
            "input": {"smiles": [f"C{'C' * i}O" for i in range(24)]},
            "steps": [{"name": "program", "params": {"command": ["true"]}, "resources": {"time_min": 1}}]}
    campaign = jobs.submit(spec, tmp_path / "c", quiet=True)
    table = campaign.wait(timeout=300, poll=1, progress=False)
    assert table["state"].tolist() == ["done"] * 24
    for task_id in table["task_id"]:
        shard = shards.read_shard(campaign.dir, task_id)
        assert shard["status"] == "ok" and json.loads(json.dumps(shard)) == shard
    finished = sorted(shards.read_shard(campaign.dir, t)["finished"] for t in table["task_id"])
    assert finished[-1] - finished[0] < 60
    results = store.read_results(jobs.gather(campaign.dir, quiet=True))
    assert len(results) == 24 and results["task_id"].is_unique and set(results["status"]) == {"ok"}


def test_local_sigkill_and_cancel(tmp_path):
    spec = {"campaign": {"name": "kill", "executor": "local"}, "resources": {"local_parallelism": 3},
            "input": {"smiles": ["A", "B", "C"]},
            "steps": [{"name": "program", "params": {"command": ["sleep", "120"]}, "resources": {"time_min": 5}}]}
    campaign = jobs.submit(spec, tmp_path / "c", quiet=True)
    ids = jobs.status(campaign.dir)["task_id"].tolist()
    deadline = time.monotonic() + 120
    while not all(shards.read_marker(campaign.dir, t) for t in ids):
        assert time.monotonic() < deadline, "local tasks did not start"
        time.sleep(0.5)
    assert jobs.status(campaign.dir)["state"].tolist() == ["running"] * 3
    os.kill(shards.read_marker(campaign.dir, ids[0])["pid"], signal.SIGKILL)
    while jobs.status(campaign.dir)["state"][0] != "failed":     # its controller notices within a second
        assert time.monotonic() < deadline, "the killed local job did not end"
        time.sleep(0.2)
    assert len(jobs.cancel(campaign.dir)) == 2
    table = campaign.wait(timeout=60, poll=0.5, progress=False)
    assert table["reason"].tolist() == ["killed", "cancelled", "cancelled"], table[["reason", "message"]]
    assert not any(shards.shard_path(campaign.dir, t).exists() for t in ids)
    # no `sleep` left behind by the cancelled tasks
    left = subprocess.run(["pgrep", "-f", "sleep 120"], capture_output=True, text=True).stdout.split()
    for pid in left:
        cwd = os.readlink(f"/proc/{pid}/cwd") if os.path.exists(f"/proc/{pid}/cwd") else ""
        assert not cwd.startswith(str(campaign.dir)), f"orphaned program {pid} in {cwd}"


def test_local_workers_flag_and_resubmit_wait_gathers(tmp_path):
    """`--local-workers` overrides the spec's local_parallelism for one submission (tasks dealt round-robin),
    and `resubmit --wait` gathers as `submit --wait` does."""
    from gauss_hpc.jobs.cli import main

    spec = tmp_path / "spec.toml"
    spec.write_text('[campaign]\nname = "workers"\nexecutor = "local"\n[input]\nsmiles = ["A", "B", "C", "D"]\n'
                    '[resources]\nlocal_parallelism = 1\n'
                    '[[steps]]\nname = "program"\nparams = { command = ["false"] }\nresources = { time_min = 1 }\n')
    campaign = tmp_path / "c"
    assert main(["submit", str(spec), "--campaign", str(campaign), "--local-workers", "2", "--wait"]) == 0
    first = shards.read_submissions(campaign)[0]
    ids = jobs.status(campaign)["task_id"].tolist()
    assert [job["tasks"] for job in first["jobs"]] == [ids[0::2], ids[1::2]]
    (campaign / "results.h5").unlink()
    assert main(["resubmit", str(campaign), "--failed", "--local-workers", "3", "--wait"]) == 0
    second = shards.read_submissions(campaign)[1]
    assert len(second["jobs"]) == 3 and sorted(sum((j["tasks"] for j in second["jobs"]), [])) == sorted(ids)
    results = store.read_results(campaign / "results.h5")
    assert sorted(results["task_id"]) == sorted(ids) and set(results["status"]) == {"crashed"}     # `false` exits 1
