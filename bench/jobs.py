"""Job-array benchmarks at campaign scale: render + submit N tasks, gather N shards (10 % failed, 1 % corrupt),
seconds, peak memory and scheduler calls per phase; local-executor overhead per task.

    python bench/jobs.py [--tasks 100000] [--tasks-per-job 100] [--local-tasks 40] [--out bench/results/x.json]

- render_submit: `jobs.submit` of an N-task spec (program step `true`, `tasks_per_job` tasks per array element)
  on Slurm when `sinfo` answers, split into as many arrays as the cluster's MaxArraySize needs (the arrays are
  cancelled right after submission: only render + submit is timed), else with the local executor (cancelled too).
- gather: the N task ids get shards copied from a real 20-task assemble + crystal-field campaign (debug executor),
  10 % of them rewritten as failures (scf_not_converged) and 1 % truncated (corrupt), then `gather` into
  results.h5 with the default worker processes (gather_workers), and again into a second file with one process
  (a gather of an unchanged campaign reads every shard too, so it costs about the same); `status` of the whole
  campaign is timed too.
- Each phase runs in its own process; its peak memory is that process's maximum resident set size; wall and CPU
  seconds are both given (on a shared machine they differ by the load).
- local overhead (skipped with --local-tasks 0): N tasks of the program step `true` through the local executor
  with 1 and with 2 jobs; the overhead per task is wall time x jobs / tasks.
Prints one JSON object as its last line (and writes it to --out when given).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gauss_hpc import jobs  # noqa: E402
from gauss_hpc.jobs import executor, shards  # noqa: E402
from gauss_hpc.jobs.gather import gather_workers  # noqa: E402

LIGANDS = ["[O-]C", "[O-]c1ccccc1", "[O-]C(C)=O", "[O-]C(C)(C)C", "[NH-]C", "[n-]1cccc1", "OC", "O=C(C)C",
           "O1CCCC1", "n1ccccc1", "N#CC", "N1CCCC1", "[O-]CC", "[O-]CCC", "OCC", "NC", "NCC", "[O-]C(=O)CC",
           "O=CC", "n1ccncc1"]


def names(n: int) -> list[str]:
    return [f"C{'C' * (i % 7)}O{i}" for i in range(n)]


def peak_mb() -> float:
    """Peak resident memory of this process or, larger, of one of its finished children (gather's workers)."""
    rss = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return round(rss / 1024, 1)


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (gather's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def phase_render_submit(root: Path, n: int, tasks_per_job: int) -> dict:
    ok, why = executor.slurm_reachable()
    kind = "slurm" if ok else "local"
    spec = {"campaign": {"name": "bench", "executor": kind}, "input": {"smiles": names(n)},
            "resources": {"array_parallelism": 64, "tasks_per_job": tasks_per_job, "local_parallelism": 2},
            "steps": [{"name": "program", "params": {"command": ["true"]}, "resources": {"time_min": 1}}]}
    calls = dict(executor.SCHEDULER_CALLS)
    start, cpu = time.perf_counter(), time.process_time()
    campaign = jobs.submit(spec, root / "campaign", quiet=True)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    submit_calls = {k: v - calls.get(k, 0) for k, v in executor.SCHEDULER_CALLS.items()}
    record = shards.read_submissions(campaign.dir)[0]
    cancelled = jobs.cancel(campaign.dir)
    return {"tasks": n, "render_submit_s": round(seconds, 2), "render_submit_cpu_s": round(cpu, 2),
            "render_submit_peak_mb": peak_mb(),
            "submit_executor": kind, "submit_note": why, "array_elements": len(record["jobs"]),
            "arrays": len(record.get("arrays", [])) or 1, "cancelled_jobs": len(cancelled),
            "submit_scheduler_calls": submit_calls}


def phase_shards(root: Path) -> dict:
    """Shards for every task of the campaign: real ones as templates, 10 % failed, 1 % corrupt."""
    real = jobs.submit({"campaign": {"name": "real", "executor": "debug"}, "input": {"smiles": LIGANDS},
                        "steps": [{"name": "assemble"}, {"name": "crystal_field"}]}, root / "real", quiet=True)
    templates = [json.loads(shards.shard_path(real.dir, t["task_id"]).read_text()) for t in real.tasks()]
    templates = [t for t in templates if t["status"] == "ok"]
    campaign = root / "campaign"
    start = time.perf_counter()
    size = 0
    tasks = shards.read_tasks(campaign)
    for i, task in enumerate(tasks):
        shard = dict(templates[i % len(templates)], task_id=task["task_id"], name=task["name"],
                     smiles=task["smiles"], attempt=1)
        if i % 10 == 1:
            shard.update(status="scf_not_converged", reason="scf_not_converged", message="SCF did not converge",
                         steps=shard["steps"][:1])
        path = shards.shard_path(campaign, task["task_id"])
        shards.write_json(path, shard)
        if i % 100 == 7:
            path.write_text(path.read_text()[:200])         # a truncated shard
        size += path.stat().st_size
    return {"shards_written_s": round(time.perf_counter() - start, 2), "shard_bytes_mean": int(size / len(tasks))}


def phase_gather(root: Path) -> dict:
    campaign = root / "campaign"
    n = len(shards.read_tasks(campaign))
    calls = dict(executor.SCHEDULER_CALLS)
    workers = gather_workers()
    start, cpu = time.perf_counter(), _cpu_seconds()
    out = jobs.gather(campaign, quiet=True, workers=workers)
    cold, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    gather_calls = sum(executor.SCHEDULER_CALLS.values()) - sum(calls.values())
    gather_peak = peak_mb()
    start = time.perf_counter()           # the same shards read by one process, into a file of its own
    jobs.gather(campaign, root / "results_1worker.h5", quiet=True, workers=1)
    one_worker = time.perf_counter() - start
    start = time.perf_counter()
    table = jobs.status(campaign)
    status_s = time.perf_counter() - start
    counts = table["reason"].where(table["state"] == "failed").value_counts().to_dict()
    return {"gather_shards": n, "gather_workers": workers, "gather_seconds": round(cold, 2),
            "gather_shards_per_s": round(n / cold, 1), "gather_cpu_s": round(cpu, 2),
            "gather_1worker_seconds": round(one_worker, 2), "gather_1worker_shards_per_s": round(n / one_worker, 1),
            "gather_peak_mb": gather_peak,
            "status_seconds": round(status_s, 2), "results_h5_bytes": out.stat().st_size,
            "gather_scheduler_calls": gather_calls, "failed_by_reason": counts,
            "done": int((table["state"] == "done").sum())}


def bench_local(root: Path, n: int) -> dict:
    out = {}
    for workers in (1, 2):
        spec = {"campaign": {"name": f"bench_local{workers}", "executor": "local"},
                "input": {"smiles": names(n)}, "resources": {"local_parallelism": workers},
                "steps": [{"name": "program", "params": {"command": ["true"]}, "resources": {"time_min": 1}}]}
        start = time.perf_counter()
        campaign = jobs.submit(spec, root / f"local{workers}", quiet=True)
        campaign.wait(poll=0.2, max_poll=1, progress=False)
        seconds = time.perf_counter() - start
        out[f"local_{workers}job_seconds"] = round(seconds, 2)
        out[f"local_{workers}job_overhead_per_task_s"] = round(seconds * workers / n, 3)
    out["local_tasks"] = n
    return out


PHASES = {"render_submit": phase_render_submit, "shards": phase_shards, "gather": phase_gather}


def run_phase(name: str, root: Path, *args) -> dict:
    """One phase in a fresh process (its own peak memory); returns its JSON."""
    done = subprocess.run([sys.executable, __file__, "--phase", name, "--root", str(root),
                           *[str(a) for a in args]], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"phase {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100000)
    parser.add_argument("--tasks-per-job", type=int, default=100)
    parser.add_argument("--local-tasks", type=int, default=40)
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("phase_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        result = PHASES[args.phase](Path(args.root), *[int(a) for a in args.phase_args])
        print(json.dumps(result))
        return 0
    root = Path(tempfile.mkdtemp(prefix="bench_jobs_"))
    try:
        result = run_phase("render_submit", root, args.tasks, args.tasks_per_job)
        result.update(run_phase("shards", root))
        result.update(run_phase("gather", root))
        result["scheduler_calls"] = sum(result["submit_scheduler_calls"].values()) + result["gather_scheduler_calls"]
        result["load_average_1min_at_end"] = round(os.getloadavg()[0], 1)
        if args.local_tasks:
            result.update(bench_local(root, args.local_tasks))
        text = json.dumps(result)
        if args.out:
            Path(args.out).write_text(text + "\n")
        print(text, flush=True)         # before the clean-up: removing 100k task folders takes minutes
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
