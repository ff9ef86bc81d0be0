"""Which batch size decodes and re-encodes fastest on one core? The sampling stage decodes `units_per_group` x
`batch_size` strings per forward pass and re-encodes the kept samples in chunks (sampling/predict.py); both are
one-thread products whose speed depends on whether the GRU states of a batch stay in the CPU's caches.

    python bench/batch_sizes.py [--run data/models/qm9_autoregressive] [--n 6000] [--sizes 100 200 500 1000 2000]

Decodes n latents (the shipped model, greedy, the sampling stage's precision "auto") around random points of the
latent space at sigma 0.5 in batches of each size, then encodes the decoded strings in chunks of each size;
best of three passes each. Prints one JSON object: microseconds per attempt (decode) and per string (encode).
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

from gauss_hpc.model.checkpoint import load_run  # noqa: E402
from gauss_hpc.sampling.engine import matmul_dtype  # noqa: E402


def best_of(passes: int, work) -> float:
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=str(ROOT / "data" / "models" / "qm9_autoregressive"))
    p.add_argument("--n", type=int, default=6000)
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 500, 1000, 2000])
    p.add_argument("--passes", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    run = load_run(args.run)
    dtype = matmul_dtype("auto")
    rng = np.random.default_rng(20261207)
    z = torch.from_numpy((0.5 * rng.standard_normal((args.n, run.model.latent_dim))).astype(np.float32))
    decode, encode = {}, {}
    with torch.inference_mode():
        tokens = torch.cat([run.model.generate(z[i:i + 500], None, 1.0, None, dtype) for i in range(0, args.n, 500)])
        strings = run.vocab.decode(tokens.numpy())
        encoded = torch.from_numpy(run.vocab.encode(strings))
        for size in args.sizes:
            seconds = best_of(args.passes, lambda: [run.model.generate(z[i:i + size], None, 1.0, None, dtype)
                                                    for i in range(0, args.n, size)])
            decode[size] = round(seconds / args.n * 1e6, 1)
            seconds = best_of(args.passes, lambda: [run.model.encode(encoded[i:i + size])
                                                    for i in range(0, args.n, size)])
            encode[size] = round(seconds / args.n * 1e6, 1)
            print(f"batch {size}: decode {decode[size]} us/attempt, encode {encode[size]} us/string", file=sys.stderr)
    print(json.dumps({"run": args.run, "n": args.n, "precision": str(dtype).removeprefix("torch."),
                      "decode_us_per_attempt": decode, "encode_us_per_string": encode,
                      "mean_length": round(float((tokens != 0).sum(1).float().mean()), 2),
                      "threads": 1, "load_average_1min": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
