"""How fast can the autoregressive decoder be on this CPU? Counts the multiply-adds of one decoding step from the
model's own layer shapes, measures the steps greedy decoding really takes around random seeds, and the sgemm rate
one core reaches on the step's largest product; their ratio is the time no implementation of this decoder can
beat on one core (elementwise gate work and memory traffic only add to it).

    python bench/decode_floor.py [--run data/models/qm9_autoregressive] [--n 5000] [--sigma 0.5]

Prints one JSON object: mac_per_step, steps_per_attempt, gflop_per_attempt, sgemm_gflops, measured decode
seconds per attempt (batches of 1,000, one thread), and the floor and measured seconds for the sampling
benchmark's 55,000 attempts on 1 and 2 ranks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gauss_hpc import store  # noqa: E402
from gauss_hpc.model.checkpoint import load_run  # noqa: E402


def step_macs(decoder) -> int:
    """Multiply-adds of one generation step for one string: every GRU layer's input and hidden products and the
    output layer (the start state's product is once per string and left out)."""
    gru = decoder.gru
    macs = 0
    for layer in range(gru.num_layers):
        macs += getattr(gru, f"weight_ih_l{layer}").numel() + getattr(gru, f"weight_hh_l{layer}").numel()
    return macs + decoder.to_logits.weight.numel()


def sgemm_gflops(rows: int, inner: int, outer: int, repeats: int = 30) -> float:
    a, w = torch.randn(rows, inner), torch.randn(outer, inner)
    for _ in range(3):
        a @ w.t()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ w.t()
        best = min(best, time.perf_counter() - start)
    return 2 * rows * inner * outer / best / 1e9


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=str(ROOT / "data" / "models" / "qm9_autoregressive"))
    p.add_argument("--n", type=int, default=5000, help="attempts decoded")
    p.add_argument("--sigma", type=float, default=0.5, help="noise around the seeds (the sweep's middle)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    run = load_run(args.run)
    decoder = run.model.decoder
    if not hasattr(decoder, "gru"):
        raise SystemExit(f"{args.run}: not an autoregressive decoder")
    rng = np.random.default_rng(20261202)
    training = store.read_latents(Path(args.run) / "latents.h5")["mu"] if (Path(args.run) / "latents.h5").is_file() \
        else rng.standard_normal((1000, run.model.latent_dim)).astype(np.float32)
    seeds = training[rng.integers(0, len(training), args.n)]
    z = torch.from_numpy((seeds + args.sigma * rng.standard_normal(seeds.shape)).astype(np.float32))
    start = time.perf_counter()
    with torch.inference_mode():
        tokens = torch.cat([run.model.generate(z[i:i + 1000]) for i in range(0, args.n, 1000)])
    seconds = time.perf_counter() - start
    lengths = (tokens != 0).sum(dim=1).numpy()
    # a string of L characters takes L steps, plus the step that writes its end (none at full length)
    steps = float(np.mean(np.minimum(lengths + 1, run.vocab.max_length)))
    macs = step_macs(decoder)
    gflops = sgemm_gflops(1000, decoder.hidden, 3 * decoder.hidden)
    per_attempt = 2 * macs * steps / 1e9
    attempts = 55_000
    result = {"run": str(args.run), "mac_per_step": macs, "steps_per_attempt": round(steps, 2),
              "gflop_per_attempt": round(per_attempt, 5), "sgemm_gflops": round(gflops, 1),
              "decode_s_per_attempt": round(seconds / args.n, 6),
              "floor_s_55k_1rank": round(attempts * per_attempt / gflops, 1),
              "floor_s_55k_2ranks": round(attempts / 2 * per_attempt / gflops, 1),
              "decode_s_55k_1rank_at_measured_rate": round(attempts * seconds / args.n, 1),
              "load_average_1min": round(os.getloadavg()[0], 2)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
