"""Sampling benchmark: the paper's single-seed experiment, 11 sigmas in [0, 1] x 50 batches x 100 attempts
= 55,000 attempts around one random seed ligand, on 1 and on 2 MPI ranks (mpiexec of the venv). The seed is
drawn at random among the ligands whose own latent decodes to a valid ligand (a seed the model cannot
reconstruct says nothing about the neighbourhood of a ligand); --seed-id picks one instead.

    python bench/sampling.py                             # the shipped model on the bundled ligands
    python bench/sampling.py --run runs/train            # a run directory of gauss_hpc.train
    python bench/sampling.py --run runs/train --batches 10 --ranks 4
    python bench/sampling.py --precision float32         # the decoder's products in float32 (default: auto)
    python bench/sampling.py --units-per-group 2         # 200 strings per decoder pass (default: the stage's)

Reports the stage time (from the start barrier to the finished tables: load, decode, validate, exchange,
predict, gather; metrics and the file write are listed apart), the wall time of the whole command (Python and
torch start-up included), the time split by phase (slowest rank), whether both runs found the same ligands,
and the sigma sweep: valid / novel / unique fractions per sigma and where each peaks; then, in the same run,
bench/decode_floor.py on the same model: `floor_ratio` is the stage time on the ranks over the time no
implementation of this decoder can beat for these attempts on as many cores (the goal is 1.3 or less). The last
line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gauss_hpc import config, store  # noqa: E402
from gauss_hpc.sampling.engine import PRECISIONS  # noqa: E402

PY = sys.executable
MPIEXEC = str(Path(PY).with_name("mpiexec"))
SHIPPED = ROOT / "data" / "models" / "qm9_autoregressive"
BUNDLED = ROOT / "data" / "ligands.h5"


def run_stage(ranks: int, args: argparse.Namespace, out: Path, metrics: bool) -> dict:
    command = [PY, "-m", "gauss_hpc.sample", str(args.run), "--out", str(out), "--seed-ids", str(args.seed_id),
               "--seed", str(args.rng_seed), "--sigmas", *[f"{s:g}" for s in args.sigmas],
               "--batches", str(args.batches), "--batch-size", str(args.batch_size), "--quiet",
               "--threads", "1", "--precision", args.precision, "--units-per-group", str(args.units_per_group)]
    if not metrics:
        command.append("--no-metrics")
    if ranks > 1:
        command = [MPIEXEC, "-n", str(ranks), *command]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"sampling on {ranks} rank(s) failed:\n{done.stderr[-3000:]}")
    with h5py.File(out) as h5:
        seconds = json.loads(h5.attrs["seconds"])
    return {"wall": wall, "seconds": seconds, "stage": seconds["total"] - seconds["metrics"]}


def reconstructable_seed(run_dir: str, rng_seed: int, tries: int = 500) -> int:
    """A random ligand row whose latent mean decodes (greedy) back to the same ligand (the model reconstructs
    it); with a model that reconstructs none, the first whose mean decodes to any valid ligand."""
    import torch

    from gauss_hpc.model.checkpoint import load_run
    from gauss_hpc.sampling.validate import check_ligand

    run = load_run(run_dir)
    latents = store.read_latents(Path(run_dir) / "latents.h5")
    order = np.random.default_rng(rng_seed).permutation(len(latents["mu"]))[:tries]
    with torch.inference_mode():
        decoded = run.vocab.decode(run.model.generate(torch.from_numpy(latents["mu"][order])).numpy())
    verdicts = [check_ligand(s) for s in decoded]
    for i, verdict in zip(order, verdicts):
        if verdict.valid and verdict.canonical == latents["canonical"][i]:
            return int(latents["ligand_row"][i])
    for i, verdict in zip(order, verdicts):
        if verdict.valid:
            print(f"WARNING: the model reconstructs none of {tries} random ligands: seeding from one whose "
                  f"latent decodes to another valid ligand", file=sys.stderr)
            return int(latents["ligand_row"][i])
    raise SystemExit(f"none of {tries} random ligands of {run_dir} decodes to a valid ligand; train longer")


def decode_floor(run: str, attempts: int, ranks: int) -> dict:
    """bench/decode_floor.py on the same model now (the machine's state is the stage's): the floor in seconds of
    `attempts` decoded on `ranks` cores."""
    done = subprocess.run([PY, str(ROOT / "bench" / "decode_floor.py"), "--run", str(run)], capture_output=True,
                          text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=ROOT, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"bench/decode_floor.py failed:\n{done.stderr[-3000:]}")
    floor = json.loads(done.stdout.strip().splitlines()[-1])
    floor["floor_s"] = round(attempts / ranks * floor["gflop_per_attempt"] / floor["sgemm_gflops"], 2)
    return floor


def sweep(path: Path) -> dict:
    stats = store.read_samples(path, "sigma_stats")
    last = stats.sort_values("batch").groupby("sigma").tail(1).sort_values("sigma")
    table = {name: [round(float(x), 4) for x in last[f"cum_{name}_fraction"]]
             for name in ("valid", "novel", "unique", "novel_unique")}
    peaks = {name: float(last["sigma"].to_numpy()[int(np.argmax(values))]) for name, values in table.items()}
    return {"sigmas": [float(s) for s in last["sigma"]], "fractions": table, "peak_sigma": peaks}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", help="run directory of gauss_hpc.train (default: the shipped model "
                                 f"{SHIPPED.relative_to(ROOT)} put to work on {BUNDLED.relative_to(ROOT)} with "
                                 "gauss_hpc.encode)")
    p.add_argument("--sigmas", type=float, nargs="+", default=[round(0.1 * i, 1) for i in range(11)])
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="the decoder's matrix products ([sample] precision)")
    p.add_argument("--units-per-group", type=int, default=config.defaults()["sample"]["units_per_group"],
                   help="batches decoded in one forward pass (default: [sample] units_per_group)")
    p.add_argument("--rng-seed", type=int, default=20261125, help="picks the random seed ligand and the noise")
    p.add_argument("--seed-id", type=int, help="seed ligand row (default: random, see above)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_sampling_run_") as encoded:
        if args.run is None:
            from gauss_hpc.encode import encode

            encode(SHIPPED, BUNDLED, encoded)
            args.run = encoded
        return bench(args)


def bench(args: argparse.Namespace) -> int:
    if not (Path(args.run) / "best.pt").is_file():
        raise SystemExit(f"{args.run}: no trained run; train one first, e.g. python -m gauss_hpc.train "
                         f"--ligands data/ligands.h5 --out {args.run}")
    if args.seed_id is None:
        args.seed_id = reconstructable_seed(args.run, args.rng_seed)

    with tempfile.TemporaryDirectory(prefix="bench_sampling_") as tmp:
        one = run_stage(1, args, Path(tmp) / "one.h5", metrics=False)
        many = run_stage(args.ranks, args, Path(tmp) / "many.h5", metrics=True)
        a = store.read_samples(Path(tmp) / "one.h5")
        b = store.read_samples(Path(tmp) / "many.h5")
        same = set(a["canonical"][a["unique"]]) == set(b["canonical"][b["unique"]]) and len(a) == len(b)
        seed = store.read_samples(Path(tmp) / "many.h5", "seeds").iloc[0]
        metrics = store.read_samples(Path(tmp) / "many.h5", "metrics")
        result_sweep = sweep(Path(tmp) / "many.h5")
        with h5py.File(Path(tmp) / "many.h5") as h5:
            attempts = int(h5.attrs["batch_size"] * h5.attrs["batches"] * len(json.loads(h5.attrs["sigmas"])))
            precision = str(h5.attrs["precision"])

    print(f"seed ligand: {seed['smiles']} (row {seed['ligand_row']}); {attempts} attempts")
    print(f"{'sigma':>6} {'valid':>7} {'novel':>7} {'unique':>7} {'nov+uni':>8} {'IntDiv1':>8} {'SNN':>6}")
    for i, sigma in enumerate(result_sweep["sigmas"]):
        f = result_sweep["fractions"]
        m = metrics.iloc[i]
        print(f"{sigma:6.2f} {f['valid'][i]:7.3f} {f['novel'][i]:7.3f} {f['unique'][i]:7.3f} "
              f"{f['novel_unique'][i]:8.3f} {m['intdiv1']:8.3f} {m['snn']:6.3f}")
    whole = metrics.iloc[-1]
    floor = decode_floor(args.run, attempts, args.ranks)
    result = {
        "attempts": attempts,
        "seconds_1rank": round(one["stage"], 3),
        f"seconds_{args.ranks}ranks": round(many["stage"], 3),
        "seconds_2ranks": round(many["stage"], 3) if args.ranks == 2 else None,
        "speedup": round(one["stage"] / many["stage"], 3),
        f"decode_floor_s_{args.ranks}ranks": floor["floor_s"],
        "floor_ratio": round(many["stage"] / floor["floor_s"], 2),
        "decode_floor": floor,
        "wall_seconds_1rank": round(one["wall"], 3),
        f"wall_seconds_{args.ranks}ranks": round(many["wall"], 3),
        "split_1rank": {k: round(v, 3) for k, v in one["seconds"].items()},
        f"split_{args.ranks}ranks": {k: round(v, 3) for k, v in many["seconds"].items()},
        "same_result": bool(same),
        "valid": int(whole["valid"]),
        "unique": int(whole["unique"]),
        "novel_unique": int(whole["novel_unique"]),
        "valid_fraction": round(float(whole["validity"]), 4),
        "seed_smiles": str(seed["smiles"]),
        "sigma_sweep": result_sweep,
        "ranks": args.ranks,
        "precision": precision,
        "units_per_group": args.units_per_group,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
