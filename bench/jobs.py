"""Job-array benchmarks: render + submit a 1000-task array, gather throughput, local-executor overhead per task.

    .venv/bin/python bench/jobs.py [--tasks 1000] [--local-tasks 40]

- submit: `jobs.submit` of a 1000-task spec (program step `true`), one array element per task, on Slurm when
  `sinfo` answers (the array is cancelled right after submission: only render + submit is timed), else with the
  local executor (its jobs run to completion afterwards).
- gather: 20 real assemble + crystal-field shards (debug executor) replicated under the 1000 task ids (same
  size and content as real shards), then `gather` into results.h5, timed cold (writes) and warm (up to date).
- local overhead: N tasks of the program step `true` through the local executor with 1 and with 2 jobs; the
  overhead per task is wall time x jobs / tasks (the program itself takes ~1 ms); the start-up of one local
  job (submit to done for a single task); the in-job cost per further task.
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gauss_hpc import jobs  # noqa: E402
from gauss_hpc.jobs import shards  # noqa: E402
from gauss_hpc.jobs.executor import slurm_reachable  # noqa: E402

LIGANDS = ["[O-]C", "[O-]c1ccccc1", "[O-]C(C)=O", "[O-]C(C)(C)C", "[NH-]C", "[n-]1cccc1", "OC", "O=C(C)C",
           "O1CCCC1", "n1ccccc1", "N#CC", "N1CCCC1", "[O-]CC", "[O-]CCC", "OCC", "NC", "NCC", "[O-]C(=O)CC",
           "O=CC", "n1ccncc1"]


def names(n: int) -> list[str]:
    return [f"C{'C' * (i % 7)}O{i}" for i in range(n)]


def bench_submit(root: Path, n: int) -> dict:
    ok, why = slurm_reachable()
    executor = "slurm" if ok else "local"
    spec = {"campaign": {"name": "bench_submit", "executor": executor},
            "input": {"smiles": [f"[O-]C{'C' * (i % 5)}.{i}" for i in range(n)]},
            "resources": {"array_parallelism": 2, "tasks_per_job": 1, "local_parallelism": 2},
            "steps": [{"name": "program", "params": {"command": ["true"]}, "resources": {"time_min": 1}}]}
    start = time.perf_counter()
    campaign = jobs.submit(spec, root / "submit", quiet=True)
    seconds = time.perf_counter() - start
    record = shards.read_submissions(campaign.dir)[0]
    jobs.cancel(campaign.dir)
    if executor == "local":
        campaign.wait(progress=False)
    return {"tasks": n, "submit_seconds": round(seconds, 3), "submit_executor": executor,
            "submit_array_elements": len(record["jobs"]), "submit_note": "" if ok else why}


def bench_gather(root: Path, n: int) -> dict:
    real = jobs.submit({"campaign": {"name": "real", "executor": "debug"}, "input": {"smiles": LIGANDS},
                        "steps": [{"name": "assemble"}, {"name": "crystal_field"}]}, root / "real", quiet=True)
    real_shards = [json.loads(shards.shard_path(real.dir, t["task_id"]).read_text()) for t in real.tasks()]
    # a campaign of n tasks (debug executor, program `true`), its shards replaced by the real ones
    campaign = jobs.submit({"campaign": {"name": "bench_gather", "executor": "debug"},
                            "input": {"smiles": names(n)},
                            "steps": [{"name": "program", "params": {"command": ["true"]}}]},
                           root / "gather", quiet=True)
    for i, task in enumerate(campaign.tasks()):
        shard = dict(real_shards[i % len(real_shards)], task_id=task["task_id"], name=task["name"],
                     smiles=task["smiles"], attempt=1)
        shards.write_json(shards.shard_path(campaign.dir, task["task_id"]), shard)
    size = sum(shards.shard_path(campaign.dir, t["task_id"]).stat().st_size for t in campaign.tasks()) / n
    start = time.perf_counter()
    out = jobs.gather(campaign.dir, quiet=True)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    jobs.gather(campaign.dir, quiet=True)
    warm = time.perf_counter() - start
    return {"gather_shards": n, "gather_seconds": round(cold, 3), "gather_shards_per_s": round(n / cold, 1),
            "gather_up_to_date_seconds": round(warm, 3), "shard_bytes_mean": int(size),
            "results_h5_bytes": out.stat().st_size}


def bench_local(root: Path, n: int) -> dict:
    out = {}
    for workers in (1, 2):
        spec = {"campaign": {"name": f"bench_local{workers}", "executor": "local"},
                "input": {"smiles": names(n)}, "resources": {"local_parallelism": workers},
                "steps": [{"name": "program", "params": {"command": ["true"]}, "resources": {"time_min": 1}}]}
        start = time.perf_counter()
        campaign = jobs.submit(spec, root / f"local{workers}", quiet=True)
        campaign.wait(poll=0.2, progress=False)
        seconds = time.perf_counter() - start
        out[f"local_{workers}job_seconds"] = round(seconds, 2)
        out[f"local_{workers}job_overhead_per_task_s"] = round(seconds * workers / n, 3)
    single = {"campaign": {"name": "bench_local_single", "executor": "local"}, "input": {"smiles": ["C"]},
              "steps": [{"name": "program", "params": {"command": ["true"]}, "resources": {"time_min": 1}}]}
    start = time.perf_counter()
    jobs.submit(single, root / "single", quiet=True).wait(poll=0.1, progress=False)
    out["local_job_startup_s"] = round(time.perf_counter() - start, 2)
    # once a job runs, each further task costs this much (task.json, marker, shard, and the program start)
    out["local_in_job_overhead_per_task_s"] = round(
        max(0.0, out["local_1job_seconds"] - out["local_job_startup_s"]) / n, 3)
    out["local_tasks"] = n
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--local-tasks", type=int, default=40)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench_jobs_"))
    try:
        result = {}
        result.update(bench_submit(root, args.tasks))
        result.update(bench_gather(root, args.tasks))
        result.update(bench_local(root, args.local_tasks))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
