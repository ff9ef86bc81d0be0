"""Training benchmarks, one JSON object as the last line.

  python bench/train_scaling.py                    # throughput: 1 rank x 1 thread vs mpiexec -n 2 x 1 thread
  python bench/train_scaling.py --mode quality --train-size 8517 --labelled-size 4000 --max-minutes 12

scaling: trains the paper-size model for --epochs epochs on --train-size ligands of the ligands file, once as
one process and once under `mpiexec -n 2`, each rank with one torch thread, and reads the training throughput
(ligands/s over the training steps, gradient all-reduce included, start-up and held-out evaluation excluded)
from history.h5. efficiency = 2-rank throughput / (2 x 1-rank throughput) at the same global batch (strong
scaling, the same optimisation); weak_efficiency the same with each rank keeping the 1-rank batch.
ddp_overhead_ratio = 2-rank throughput / the summed throughput of two independent single-rank trainings run at
the same time, each on half the global batch: both share the host the same way, so the ratio isolates what DDP's
synchronisation costs (on a 2-core machine the plain efficiency also measures the two ranks sharing one host).

quality: one training run (2 MPI ranks by default) under a time budget; reports held-out whole-string and
per-character reconstruction accuracy and R^2 per proxy label, with the per-epoch learning curve.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gauss_hpc import store  # noqa: E402

PY = sys.executable
MPIEXEC = shutil.which("mpiexec", path=str(Path(PY).parent)) or shutil.which("mpiexec")


def start_training(ranks: int, out: Path, flags: list[str]) -> subprocess.Popen:
    launcher = [MPIEXEC, "-n", str(ranks)] if ranks > 1 else []
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.Popen([*launcher, PY, "-m", "gauss_hpc.train", *flags, "--out", str(out), "--threads", "1",
                             "--quiet"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def finish_training(proc: subprocess.Popen, ranks: int, out: Path, timeout: float, t0: float) -> dict:
    _, stderr = proc.communicate(timeout=timeout)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.stderr.write(stderr[-4000:])
        raise SystemExit(f"training with {ranks} rank(s) failed (exit {proc.returncode})")
    return {"history": store.read_history(out / "history.h5"), "wall_s": wall}


def run_training(ranks: int, out: Path, flags: list[str], timeout: float) -> dict:
    t0 = time.monotonic()
    return finish_training(start_training(ranks, out, flags), ranks, out, timeout, t0)


def throughput_of(history) -> float:
    """ligands/s over all epochs' training steps"""
    rows = float((history["samples_per_s"] * history["wall_seconds"]).sum())
    return rows / float(history["wall_seconds"].sum())


def two_independent(flags: list[str], batch: int, root: Path, timeout: float) -> float:
    """Summed throughput of two single-rank trainings running at the same time, each on `batch`."""
    t0 = time.monotonic()
    outs = [root / "a", root / "b"]
    procs = [start_training(1, out, [*flags, "--batch-size", str(batch)]) for out in outs]
    return sum(throughput_of(finish_training(p, 1, out, timeout, t0)["history"]) for p, out in zip(procs, outs))


def scaling(args) -> dict:
    if MPIEXEC is None:
        raise SystemExit("mpiexec not found: install mpich into the environment (scripts/install.sh)")
    flags = ["--ligands", args.ligands, "--train-size", str(args.train_size), "--max-epochs", str(args.epochs),
             "--early-stop-patience", "1000"]
    result = {"bench": "train_scaling", "ligands_file": args.ligands, "train_size": args.train_size,
              "epochs": args.epochs, "global_batch": args.batch_size, "threads_per_rank": 1,
              "cpu_count": os.cpu_count(), "load_average_before": os.getloadavg()[0]}
    # strong scaling keeps the global batch (the same optimisation as 1 rank: what `train` guarantees); weak
    # scaling keeps each rank's batch (2x the global batch: a different optimisation, the GRUs' efficiency)
    setups = {"1": (1, args.batch_size), "2": (2, args.batch_size), "2_weak": (2, 2 * args.batch_size)}
    throughput = {k: [] for k in setups}
    per_cpu = {k: [] for k in setups}
    independent = []
    with tempfile.TemporaryDirectory(prefix="gauss_scaling_") as tmp:
        for repeat in range(args.repeats):
            for key, (ranks, batch) in setups.items():  # alternate so that load from others hits all alike
                out = Path(tmp) / f"r{key}_{repeat}"
                run = run_training(ranks, out, [*flags, "--batch-size", str(batch)], args.timeout)
                hist = run["history"]
                throughput[key].append(throughput_of(hist))
                rows = float((hist["samples_per_s"] * hist["wall_seconds"]).sum())
                per_cpu[key].append(rows / float(hist["cpu_seconds"].sum()))
                print(f"{ranks} rank(s), global batch {batch}, repeat {repeat}: {throughput[key][-1]:.1f} "
                      f"ligands/s (process wall {run['wall_s']:.1f} s)", file=sys.stderr)
            independent.append(two_independent(flags, args.batch_size // 2, Path(tmp) / f"pair_{repeat}",
                                               args.timeout))
            print(f"2 independent single-rank runs at batch {args.batch_size // 2}, repeat {repeat}: "
                  f"{independent[-1]:.1f} ligands/s together", file=sys.stderr)
    one, two, weak = max(throughput["1"]), max(throughput["2"]), max(throughput["2_weak"])
    result.update({"ligands_per_s_1rank": round(one, 2), "ligands_per_s_2ranks": round(two, 2),
                   "efficiency": round(two / (2 * one), 3),
                   "ligands_per_s_2ranks_weak": round(weak, 2), "weak_efficiency": round(weak / (2 * one), 3),
                   # CPU seconds of all ranks per ligand: what the efficiency would be with a dedicated core per
                   # rank (gloo waits sleep, so contention from other processes does not count here).
                   "ligands_per_cpu_s_1rank": round(max(per_cpu["1"]), 2),
                   "ligands_per_cpu_s_2ranks": round(max(per_cpu["2"]), 2),
                   "cpu_efficiency": round(max(per_cpu["2"]) / max(per_cpu["1"]), 3),
                   "ligands_per_s_2_independent_half_batch": round(max(independent), 2),
                   "ddp_overhead_ratio": round(two / max(independent), 3),
                   "all_runs_ligands_per_s": {str(k): [round(v, 2) for v in vals] for k, vals in throughput.items()},
                   "load_average_after": os.getloadavg()[0]})
    return result


def quality(args) -> dict:
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gauss_quality_"))
    flags = ["--ligands", args.ligands, "--train-size", str(args.train_size), "--labelled-size",
             str(args.labelled_size), "--max-minutes", str(args.max_minutes), "--max-epochs", str(args.epochs),
             "--batch-size", str(args.batch_size)]
    ranks = args.ranks if MPIEXEC else 1
    run = run_training(ranks, out, flags, args.timeout)
    hist = run["history"]
    best = hist.loc[hist["val_loss"].idxmin()]
    labels = store.read_labels(args.ligands)
    test, _ = store.read_splits(args.ligands)
    r2_columns = [c for c in hist.columns if c.startswith("r2_")]
    curve = hist[["epoch", "train_loss", "val_loss", "val_char_accuracy", "val_string_accuracy", *r2_columns,
                  "lr", "samples_per_s"]].round(4)
    return {"bench": "train_quality", "ligands_file": args.ligands, "ranks": ranks, "train_size": args.train_size,
            "labelled_size": args.labelled_size, "held_out_ligands": int(test.sum()),
            "held_out_labelled": {k: int(m[test].sum()) for k, (_, m) in labels.items()},
            "max_minutes": args.max_minutes, "epochs_run": int(len(hist)), "best_epoch": int(best["epoch"]),
            "held_out_string_accuracy": round(float(best["val_string_accuracy"]), 4),
            "held_out_char_accuracy": round(float(best["val_char_accuracy"]), 4),
            "r2": {c[3:]: round(float(best[c]), 4) for c in r2_columns},
            "wall_s": round(run["wall_s"], 1), "run_dir": str(out),
            "learning_curve": curve.to_dict(orient="list")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("scaling", "quality"), default="scaling")
    parser.add_argument("--ligands", default=str(REPO / "data" / "ligands.h5"))
    parser.add_argument("--train-size", type=int, default=None,
                        help="training ligands (scaling default 1000, quality default all)")
    parser.add_argument("--labelled-size", type=int, default=0, help="quality: labelled training ligands (0 = all)")
    parser.add_argument("--epochs", type=int, default=None, help="scaling default 1; quality default 200")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2, help="scaling: runs per rank count (best is reported)")
    parser.add_argument("--ranks", type=int, default=2, help="quality: MPI ranks")
    parser.add_argument("--max-minutes", type=float, default=12.0, help="quality: training time budget")
    parser.add_argument("--out", help="quality: run directory to keep (default: a temporary one)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per training run")
    args = parser.parse_args(argv)
    if args.mode == "scaling":
        args.train_size = 1000 if args.train_size is None else args.train_size
        args.epochs = args.epochs or 1
        result = scaling(args)
    else:
        args.train_size = args.train_size or 0
        args.epochs = args.epochs or 200
        result = quality(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
