"""Campaign directories may be writable by others: status, gather and resubmit decide task states from our JSON
files and the scheduler's answer only, and never unpickle what lies in the campaign's logs folder."""

import ast
import pickle
from pathlib import Path

from gauss_hpc import jobs, store
from gauss_hpc.jobs import shards

JOBS_PACKAGE = Path(jobs.__file__).parent


class _Payload:
    """Unpickling this runs Path.touch(marker): code execution as whoever loads the file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_a_malicious_result_pickle_is_never_loaded(tmp_path):
    spec = {"campaign": {"name": "pickles", "executor": "debug"}, "input": {"smiles": ["A", "B", "C"]},
            "steps": [{"name": "program", "params": {"command": ["true"]}}]}
    campaign = jobs.submit(spec, tmp_path / "c", quiet=True)
    table = jobs.status(campaign.dir)
    assert table["state"].tolist() == ["done"] * 3
    # task 1's shard disappears: its job ended without one, which is where submitit's result would be consulted
    shards.shard_path(campaign.dir, table["task_id"][1]).unlink()
    marker = tmp_path / "PWNED"
    logs = campaign.dir / "logs"
    for job in shards.read_submissions(campaign.dir)[0]["jobs"]:
        for name in (f"{job['job_id']}_0_result.pkl", f"{job['job_id']}_submitted.pkl"):
            (logs / name).write_bytes(pickle.dumps(_Payload(marker)))
    assert list(logs.glob("*_result.pkl"))

    table = jobs.status(campaign.dir)
    assert table["state"].tolist() == ["done", "failed", "done"]
    assert table["reason"][1] == "killed" and "ended without writing this task's shard" in table["message"][1]
    results = store.read_results(jobs.gather(campaign.dir, quiet=True))
    assert results["status"].tolist() == ["ok", "killed", "ok"]
    jobs.resubmit(campaign.dir, quiet=True)
    assert jobs.status(campaign.dir)["state"].tolist() == ["done"] * 3
    assert not marker.exists(), "a pickle from the campaign directory was loaded"


def test_no_code_under_gauss_hpc_jobs_unpickles():
    for path in JOBS_PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name != "pickle" for a in node.names), f"{path}:{node.lineno} imports pickle"
            if isinstance(node, ast.ImportFrom):
                assert node.module != "pickle", f"{path}:{node.lineno} imports from pickle"
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("load", "loads") or not (
                    isinstance(node.value, ast.Name) and node.value.id in ("pickle", "cloudpickle")), \
                    f"{path}:{node.lineno} calls {node.value.id}.{node.attr}"
