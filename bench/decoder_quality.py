"""Decoders and training settings side by side on the same data and the same number of ligands seen; one JSON
object as the last line.

  python bench/decoder_quality.py                                   # the default variants, 6 epochs each
  python bench/decoder_quality.py --epochs 4 --variant ar_lr3e-3="--decoder autoregressive --lr 3e-3"

Every variant trains on the same ligands file and split (one process, --threads torch threads) for a fixed number
of epochs, so the comparison does not depend on how loaded the machine is; wall time and ligands/s are reported
beside it. Per variant: the held-out learning curve (whole-string and per-character accuracy of greedy decoding
of mu, KL term, active latent units, against ligands seen) and, for the final model, the share of RDKit-valid
ligands (the sampling stage's rules) decoded around --seeds held-out ligands at each --sigmas.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gauss_hpc import store  # noqa: E402

VARIANTS = {
    # the paper's decoder at the paper's settings, then at the demo's smaller batch and larger rate
    "repeat_b100_lr1e-3": "--decoder repeat --decoder-hidden 128 --batch-size 100 --lr 1e-3",
    "repeat_b32_lr2e-3": "--decoder repeat --decoder-hidden 128 --batch-size 32 --lr 2e-3",
    "ar_b32_lr2e-3": "--decoder autoregressive --decoder-hidden 256 --batch-size 32 --lr 2e-3",
    "ar_b100_lr2e-3": "--decoder autoregressive --decoder-hidden 256 --batch-size 100 --lr 2e-3",
    "ar_b32_lr2e-3_kl0.1": "--decoder autoregressive --decoder-hidden 256 --batch-size 32 --lr 2e-3 "
                           "--kl-weight 0.1",
    "ar_b32_lr2e-3_h128": "--decoder autoregressive --decoder-hidden 128 --batch-size 32 --lr 2e-3",
}


def train(out: Path, ligands: str, epochs: int, threads: int, flags: str, timeout: float) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "gauss_hpc.train", "--ligands", ligands, "--out", str(out), "--max-epochs",
           str(epochs), "--early-stop-patience", "1000", "--threads", str(threads), "--quiet",
           *shlex.split(flags)]
    t0 = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"training {flags!r} failed (exit {done.returncode})")
    return time.monotonic() - t0


def validity_around_seeds(run_dir: Path, ligands: str, n_seeds: int, sigmas: list[float], per_seed: int,
                          rng_seed: int) -> dict:
    import torch

    from gauss_hpc.model.checkpoint import load_run
    from gauss_hpc.sampling.validate import check_ligand

    run = load_run(run_dir)
    test, _ = store.read_splits(ligands)
    mu = store.read_latents(run_dir / "latents.h5")["mu"]
    rng = np.random.default_rng(rng_seed)
    seeds = rng.choice(np.flatnonzero(test), size=n_seeds, replace=False)
    out = {}
    for sigma in sigmas:
        z = np.repeat(mu[seeds], per_seed, axis=0)
        z = z + np.float32(sigma) * rng.standard_normal(z.shape).astype(np.float32)
        with torch.inference_mode():
            strings = run.vocab.decode(run.model.generate(torch.from_numpy(z)).numpy())
        verdicts = [check_ligand(s) for s in strings]
        valid = [v.canonical for v in verdicts if v.valid]
        out[str(sigma)] = {"valid_fraction": round(len(valid) / len(strings), 4), "unique_valid": len(set(valid))}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ligands", default=str(REPO / "data" / "ligands.h5"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                        help="a variant of train flags (repeatable); default: the built-in set")
    parser.add_argument("--only", nargs="*", help="run only these built-in variants")
    parser.add_argument("--seeds", type=int, default=20, help="held-out seeds for the validity check")
    parser.add_argument("--per-seed", type=int, default=50, help="latent points decoded per seed and sigma")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.3, 0.6])
    parser.add_argument("--keep", help="keep the run directories here (default: temporary); finished runs "
                                       "found there are read, not retrained")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    variants = dict(v.split("=", 1) for v in args.variant) if args.variant else \
        {k: v for k, v in VARIANTS.items() if not args.only or k in args.only}
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gauss_decoders_"))
    result = {"bench": "decoder_quality", "ligands_file": args.ligands, "epochs": args.epochs,
              "threads": args.threads, "cpu_count": os.cpu_count(), "load_average_before": os.getloadavg()[0],
              "variants": {}}
    for name, flags in variants.items():
        out = root / name
        # a finished run kept from an earlier invocation (--keep) is read again, not retrained
        wall = None if (out / "latents.h5").is_file() else \
            train(out, args.ligands, args.epochs, args.threads, flags, args.timeout)
        hist = store.read_history(out / "history.h5")
        seen = np.cumsum((hist["samples_per_s"] * hist["wall_seconds"]).to_numpy()).round().astype(int)
        final = hist.iloc[-1]
        row = {"flags": flags, "wall_s": None if wall is None else round(wall, 1),
               "ligands_per_s": round(float(seen[-1] / hist["wall_seconds"].sum()), 1),
               "held_out_string_accuracy": round(float(final["val_string_accuracy"]), 4),
               "held_out_char_accuracy": round(float(final["val_char_accuracy"]), 4),
               "val_kl": round(float(final["val_kl"]), 4),
               "active_units": int(final["val_active_units"]),
               "curve": {"ligands_seen": seen.tolist(),
                         "string_accuracy": hist["val_string_accuracy"].round(4).tolist(),
                         "char_accuracy": hist["val_char_accuracy"].round(4).tolist(),
                         "kl": hist["val_kl"].round(4).tolist(),
                         "active_units": hist["val_active_units"].astype(int).tolist()},
               "validity": validity_around_seeds(out, args.ligands, args.seeds, args.sigmas, args.per_seed,
                                                 rng_seed=7)}
        result["variants"][name] = row
        print(f"{name}: strings {row['held_out_string_accuracy']} chars {row['held_out_char_accuracy']} "
              f"KL {row['val_kl']} active {row['active_units']} {row['ligands_per_s']} ligands/s "
              f"validity {row['validity']}", file=sys.stderr, flush=True)
    result["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
