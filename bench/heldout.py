"""Held-out reconstruction of a trained model on every held-out ligand of a ligands file; one JSON line.

    python bench/heldout.py data/models/qm9_autoregressive --ligands qm9_ligands.h5

Whole strings: greedy decoding of the latent mean gives back the exact SMILES; characters: share of the
non-padding positions written right; same molecule: the decoded string is a valid ligand with the same kekulized
canonical SMILES (a different spelling of the same molecule counts); valid: RDKit and the ligand rules accept it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gauss_hpc import store  # noqa: E402


def main(argv=None) -> int:
    import torch

    from gauss_hpc.model.checkpoint import load_run
    from gauss_hpc.sampling.validate import check_ligand

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory (best.pt, vocab.json)")
    p.add_argument("--ligands", required=True, help="ligands file whose /splits/test rows are scored")
    p.add_argument("--limit", type=int, default=0, help="score only this many held-out ligands (0 = all)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    run = load_run(args.run)
    table = store.read_ligands(args.ligands)
    test, _ = store.read_splits(args.ligands)
    rows = np.flatnonzero(test)
    rows = np.asarray([r for r in rows if run.vocab.encodable(table["smiles"].iat[r])], np.int64)
    if args.limit:
        rows = rows[:args.limit]
    smiles = table["smiles"].to_numpy()[rows].tolist()
    canonical = table["canonical"].to_numpy()[rows]
    start = time.perf_counter()
    counts = dict(strings=0, chars=0, positions=0, same=0, valid=0)
    with torch.inference_mode():
        for lo in range(0, len(rows), 1000):
            tokens = torch.from_numpy(run.vocab.encode(smiles[lo:lo + 1000]))
            predicted = run.model.generate(run.model.encode(tokens)[0])
            nonpad = tokens != 0
            counts["strings"] += int((predicted == tokens).all(1).sum())
            counts["chars"] += int(((predicted == tokens) & nonpad).sum())
            counts["positions"] += int(nonpad.sum())
            for text, key in zip(run.vocab.decode(predicted.numpy()), canonical[lo:lo + 1000]):
                verdict = check_ligand(text)
                counts["valid"] += verdict.valid
                counts["same"] += verdict.valid and verdict.canonical == key
    n = max(len(rows), 1)
    print(json.dumps({"bench": "heldout", "run": str(args.run), "ligands_file": str(args.ligands),
                      "held_out": int(len(rows)), "whole_strings": round(counts["strings"] / n, 4),
                      "characters": round(counts["chars"] / max(counts["positions"], 1), 4),
                      "same_molecule": round(counts["same"] / n, 4), "valid": round(counts["valid"] / n, 4),
                      "seconds": round(time.perf_counter() - start, 1), "epoch": run.epoch}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
