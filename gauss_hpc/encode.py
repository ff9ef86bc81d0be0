"""Put a trained model to work on another ligands file: `python -m gauss_hpc.encode MODEL --ligands X.h5 --out RUN`.

A trained model (a run directory of gauss_hpc.train, or the model shipped under data/models/) is copied into a new
run directory together with the latent means of every ligand of X.h5 (latents.h5), so that `gauss_hpc.sample`
and `gauss_hpc.analyze` seed from, cross-map labels of and check novelty against X.h5. Ligands the model's
vocabulary cannot write (an unknown character, longer than its strings) get no latent and are counted.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

from . import store
from .model import checkpoint as ckpt

log = logging.getLogger("gauss_hpc.encode")


def encode_file(run: ckpt.LoadedRun, ligands: Path, batch: int = 500) -> dict:
    """Latent means and log-variances of every ligand of `ligands` that the model's vocabulary can write
    (`batch` strings per encoder pass, as sampling/predict.latent_means)."""
    import torch

    table = store.read_ligands(ligands)
    smiles = table["smiles"].tolist()
    rows = np.asarray([i for i, s in enumerate(smiles) if run.vocab.encodable(s)], np.int64)
    mu = np.zeros((len(rows), run.model.latent_dim), np.float32)
    logvar = np.zeros_like(mu)
    with torch.inference_mode():
        for lo in range(0, len(rows), batch):
            part = rows[lo:lo + batch]
            tokens = torch.from_numpy(run.vocab.encode([smiles[i] for i in part]))
            m, lv = run.model.encode(tokens)
            mu[lo:lo + len(part)], logvar[lo:lo + len(part)] = m.numpy(), lv.numpy()
    return {"mu": mu, "logvar": logvar, "ligand_row": rows,
            "canonical": table["canonical"].to_numpy()[rows].tolist(), "skipped": len(smiles) - len(rows)}


def encode(model_dir: str | Path, ligands: str | Path, out: str | Path) -> dict:
    model_dir, ligands, out = Path(model_dir), Path(ligands), Path(out)
    run = ckpt.load_run(model_dir)
    encoded = encode_file(run, ligands)
    if not len(encoded["ligand_row"]):
        raise ValueError(f"{ligands}: the model of {model_dir} can write none of its ligands (vocabulary "
                         f"{''.join(run.vocab.tokens[1:])!r}, at most {run.vocab.max_length} characters)")
    out.mkdir(parents=True, exist_ok=True)
    for name in (ckpt.BEST, ckpt.VOCAB, ckpt.CONFIG, ckpt.HISTORY, ckpt.TRAINING_LIGANDS):
        if (model_dir / name).is_file() and (model_dir / name).resolve() != (out / name).resolve():
            shutil.copyfile(model_dir / name, out / name)
    store.write_latents(out / ckpt.LATENTS, encoded["mu"], encoded["logvar"], encoded["ligand_row"],
                        encoded["canonical"], ligands.resolve(), config={"model": str(model_dir)},
                        sources=[model_dir / ckpt.BEST, ligands])
    if encoded["skipped"]:
        log.warning("%d of %d ligands of %s are outside the model's vocabulary or length: no latent for them",
                    encoded["skipped"], encoded["skipped"] + len(encoded["ligand_row"]), ligands)
    return {"encoded": int(len(encoded["ligand_row"])), "skipped": int(encoded["skipped"]), "run_dir": str(out)}


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m gauss_hpc.encode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="run directory holding best.pt (e.g. data/models/qm9_autoregressive)")
    parser.add_argument("--ligands", required=True, help="ligands.h5 to encode")
    parser.add_argument("--out", required=True, help="new run directory for gauss_hpc.sample / analyze")
    args = parser.parse_args(argv)
    try:
        summary = encode(args.model, args.ligands, args.out)
    except (ckpt.CheckpointError, store.SchemaError, FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    log.info("encoded %(encoded)d ligands (%(skipped)d skipped) into %(run_dir)s", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
