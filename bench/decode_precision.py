"""float32 or bfloat16 matrix products in the autoregressive decoder ([sample] precision): what changes and how much
faster. Greedy decoding, one thread, the same latents both ways:

- reconstruction: every --every-th bundled ligand encoded (μ) and decoded; whole strings written back;
- around seeds: --n latents z = μ + σε around random bundled ligands for each σ; the share of strings that the two
  precisions write identically, RDKit + ligand-rule validity, distinct strings;
- speed: ms per decoded latent, the precisions interleaved --repeats times (this VM's speed drifts by tens of
  per cent within minutes, so only interleaved numbers compare).

    python bench/decode_precision.py [--run data/models/qm9_autoregressive] [--n 3000] [--repeats 3]

Prints one JSON object.
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

from gauss_hpc import config, store  # noqa: E402
from gauss_hpc.model.checkpoint import load_run  # noqa: E402
from gauss_hpc.sampling.engine import native_bfloat16  # noqa: E402
from gauss_hpc.sampling.validate import check_ligand  # noqa: E402

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}
_SAMPLE = config.defaults()["sample"]
BATCH = _SAMPLE["units_per_group"] * _SAMPLE["batch_size"]      # the sampling stage's decoder batch


def decode(model, z: torch.Tensor, dtype) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    with torch.inference_mode():
        tokens = torch.cat([model.generate(z[i:i + BATCH], matmul_dtype=dtype) for i in range(0, len(z), BATCH)])
    return tokens, time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=str(ROOT / "data" / "models" / "qm9_autoregressive"))
    p.add_argument("--ligands", default=str(ROOT / "data" / "ligands.h5"))
    p.add_argument("--every", type=int, default=3, help="reconstruct every n-th ligand of --ligands")
    p.add_argument("--n", type=int, default=3000, help="latents per sigma around random ligands")
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.3, 0.6, 1.0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    run = load_run(args.run)
    table = store.read_ligands(args.ligands)
    smiles = [s for s in table["smiles"].tolist()[::args.every] if run.vocab.encodable(s)]
    tokens = torch.from_numpy(run.vocab.encode(smiles))
    with torch.inference_mode():
        mu = torch.cat([run.model.encode(tokens[i:i + 2048])[0] for i in range(0, len(tokens), 2048)])
    rng = np.random.default_rng(20261203)
    seeds = mu[rng.integers(0, len(mu), args.n)].numpy()
    around = {s: torch.from_numpy((seeds + s * rng.standard_normal(seeds.shape)).astype(np.float32))
              for s in args.sigmas}

    written, seconds = {}, {name: [] for name in PRECISIONS}
    for _ in range(args.repeats):
        for name, dtype in PRECISIONS.items():
            rec, t_rec = decode(run.model, mu, dtype)
            per_sigma = {s: decode(run.model, z, dtype) for s, z in around.items()}
            seconds[name].append((t_rec + sum(t for _, t in per_sigma.values()))
                                 / (len(mu) + args.n * len(args.sigmas)))
            written[name] = (rec, {s: out for s, (out, _) in per_sigma.items()})

    result = {"bench": "decode_precision", "run": str(args.run), "reconstructed": len(smiles),
              "per_sigma_latents": args.n, "cpu_bf16_native": native_bfloat16()}
    for name in PRECISIONS:
        rec, per_sigma = written[name]
        row = {"whole_strings": round(float((rec == tokens).all(1).float().mean()), 4),
               "ms_per_latent": [round(1e3 * t, 4) for t in seconds[name]]}
        for s, out in per_sigma.items():
            texts = run.vocab.decode(out.numpy())
            row[f"sigma_{s:g}"] = {
                "same_as_float32": round(float((out == written["float32"][1][s]).all(1).float().mean()), 4),
                "valid": round(float(np.mean([check_ligand(t).valid for t in texts])), 4),
                "distinct": len(set(texts))}
        result[name] = row
    result["speedup_bfloat16"] = round(float(np.median(seconds["float32"]) / np.median(seconds["bfloat16"])), 2)
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
