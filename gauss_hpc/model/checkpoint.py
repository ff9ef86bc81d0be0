"""Checkpoints of a training run and `load_run`, the one way later stages get a trained model.

Run directory: config.toml (the config used), vocab.json, checkpoint.pt (latest full training state, for
--resume), best.pt (best parameters + what rebuilds the model), history.h5, latents.h5. Checkpoints hold only
tensors and plain Python values so that `torch.load(..., weights_only=True)` loads them.
"""

from __future__ import annotations

import io
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..chem.vocab import Vocabulary
from ..store import atomic_path
from .vae import SmilesVAE

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
CONFIG = "config.toml"
VOCAB = "vocab.json"
HISTORY = "history.h5"
LATENTS = "latents.h5"
TRAINING_LIGANDS = "training_ligands.txt.gz"   # kekulized canonical SMILES of the ligands file it was trained on


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not from gauss_hpc.train."""


def save(path: str | Path, payload: dict) -> None:
    """Write a checkpoint atomically: a crash mid-write leaves the previous checkpoint intact."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load(path: str | Path, device: str | torch.device = "cpu", required: tuple[str, ...] = ()) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found. Train first (python -m gauss_hpc.train --out "
                              f"{path.parent}) or point to a run directory that holds {path.name}.")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated / foreign files
        raise CheckpointError(f"{path}: not a readable gauss_hpc checkpoint ({type(exc).__name__}: {exc}). "
                              f"It may be truncated or from another program: delete it and train again, "
                              f"or use the other checkpoint of the run ({CHECKPOINT} / {BEST}).") from exc
    if not isinstance(payload, dict) or payload.get("format") != "gauss_hpc.train":
        raise CheckpointError(f"{path}: a torch file but not a gauss_hpc.train checkpoint")
    missing = [key for key in required if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}; it was written by an incompatible version")
    return payload


def model_payload(model: SmilesVAE, *, vocab: Vocabulary, label_names: list[str], label_mean: np.ndarray,
                  label_std: np.ndarray, config: dict, kd_label_names: list[str] | None = None) -> dict:
    """What rebuilds and interprets a model: parameters, sizes, vocabulary, label standardization."""
    return {
        "format": "gauss_hpc.train",
        "model_state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "model_hparams": dict(model.hparams),
        "vocab": vocab.to_json(),
        "label_names": list(label_names),
        "label_mean": [float(x) for x in label_mean],
        "label_std": [float(x) for x in label_std],
        "kd_label_names": list(kd_label_names or []),
        "config": json.dumps(config, default=str),
    }


def write_training_ligands(run_dir: str | Path, canonical: list[str]) -> None:
    """The novelty reference that travels with the model (gzip text, one key per line, ~2 bytes a ligand)."""
    import gzip

    with atomic_path(Path(run_dir) / TRAINING_LIGANDS) as tmp:
        tmp.write_bytes(gzip.compress("".join(f"{c}\n" for c in canonical).encode("utf-8"), mtime=0))


def build_model(payload: dict, device: str | torch.device = "cpu") -> SmilesVAE:
    model = SmilesVAE(**payload["model_hparams"])
    model.load_state_dict(payload["model_state"])
    return model.to(device)


@dataclass
class LoadedRun:
    model: SmilesVAE                 # in eval mode
    vocab: Vocabulary
    config: dict
    label_names: list[str]           # proxy-head outputs, in order
    label_mean: np.ndarray           # prediction * label_std + label_mean = value in the label's unit
    label_std: np.ndarray
    kd_head: nn.Module | None        # the KD head, or None when the model was trained without one
    run_dir: Path
    epoch: int = -1
    score: float = float("nan")
    kd_label_names: list[str] = field(default_factory=list)
    # kd_mean, kd_std (gaps) and kd_descriptor_mean, kd_descriptor_std: the KD head's input/output scaling
    kd_standardization: dict[str, np.ndarray] = field(default_factory=dict)

    def unstandardize(self, proxy: np.ndarray) -> np.ndarray:
        return np.asarray(proxy) * self.label_std + self.label_mean


# What the KD head's outputs are: the paper's dE0i = E(KD i) - E(KD 0) (store format 2). Heads saved before it
# predict neighbour differences and carry no such entry: they are refused rather than read as dE0i.
KD_GAP_DEFINITION = "dE0i"


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", which: str = BEST) -> LoadedRun:
    """The trained model of a run directory (best parameters by default), ready for encode/decode."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: not a directory; pass the --out directory of gauss_hpc.train")
    payload = load(run_dir / which, device, required=("model_state", "model_hparams", "vocab"))
    try:
        model = build_model(payload, device)
    except (RuntimeError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{run_dir / which}: parameters do not fit the stored model sizes ({exc})") from exc
    model.eval()
    if model.kd is not None and payload.get("kd_gap_definition") != KD_GAP_DEFINITION:
        raise CheckpointError(f"{run_dir / which}: its KD head was trained on KD gaps between neighbouring doublets "
                              "(before format 2); this release reads gaps above the ground doublet (dE0i). Convert "
                              "the labels with `gauss-hpc upgrade LIGANDS.h5` and train the KD head again")
    config = json.loads(payload.get("config", "{}"))
    config_path = run_dir / CONFIG
    if not config and config_path.is_file():
        with open(config_path, "rb") as fh:
            config = tomllib.load(fh).get("train", {})
    return LoadedRun(model=model, vocab=Vocabulary.from_json(payload["vocab"]), config=config,
                     label_names=list(payload.get("label_names", [])),
                     label_mean=np.asarray(payload.get("label_mean", []), dtype=np.float64),
                     label_std=np.asarray(payload.get("label_std", []), dtype=np.float64),
                     kd_head=model.kd, run_dir=run_dir, epoch=int(payload.get("epoch", -1)),
                     score=float(payload.get("score", float("nan"))),
                     kd_label_names=list(payload.get("kd_label_names", [])),
                     kd_standardization={k: np.asarray(v, dtype=np.float64)
                                         for k, v in payload.get("kd_standardization", {}).items()})


def rng_state() -> dict[str, Any]:
    """RNG states of torch, numpy and Python as tensors and plain values (weights_only-loadable)."""
    import random

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
            "numpy_pos": int(pos), "numpy_has_gauss": int(has_gauss), "numpy_cached": float(cached),
            "python_version": py_version, "python_state": list(py_state), "python_gauss": py_gauss}


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_cached"]))
    random.setstate((state["python_version"], tuple(state["python_state"]), state["python_gauss"]))
