"""The training data of the VAE: a ligands file turned into token arrays, standardized labels and their masks, the
held-out and training rows (`load_dataset`), and the seeded order the epochs visit them in (`epoch_order`), the
same at any rank count."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import store
from ..abinitio import values as value_schema
from ..chem.vocab import Vocabulary
from ..dist import InputError

log = logging.getLogger("gauss_hpc.train")      # the training stage's log: this is its data


@dataclass
class Dataset:
    vocab: Vocabulary
    tokens: torch.Tensor              # (n, L) int64, every ligand of the file
    canonical: list[str]
    train_rows: np.ndarray            # rows used for training
    test_rows: np.ndarray             # held-out rows (metrics)
    label_names: list[str] = field(default_factory=list)
    labels: torch.Tensor | None = None        # (n, P) standardized, 0 where unlabelled
    label_mask: torch.Tensor | None = None    # (n, P) bool
    label_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    label_std: np.ndarray = field(default_factory=lambda: np.ones(0))
    kd_targets: torch.Tensor | None = None    # (n, 7) standardized
    kd_descriptors: torch.Tensor | None = None
    kd_mask: torch.Tensor | None = None       # (n, 1) bool
    kd_mean: np.ndarray | None = None
    kd_std: np.ndarray | None = None
    kd_descriptor_mean: np.ndarray | None = None
    kd_descriptor_std: np.ndarray | None = None


def select_train_rows(test_mask: np.ndarray, subsets: dict[int, np.ndarray], train_size: int) -> np.ndarray:
    train_rows = np.flatnonzero(~test_mask)
    if train_size <= 0:
        return train_rows
    if train_size in subsets:
        return np.sort(np.asarray(subsets[train_size], np.int64))
    if train_size > len(train_rows):
        raise InputError(f"--train-size {train_size} exceeds the {len(train_rows)} training ligands of the file")
    return train_rows[:train_size]


def _standardize(values: np.ndarray, mask: np.ndarray, fit_rows: np.ndarray):
    fit = values[fit_rows][mask[fit_rows]]
    mean = fit.mean(axis=0)
    std = fit.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    out = np.where(mask.reshape(mask.shape + (1,) * (values.ndim - 1)), (values - mean) / std, 0.0)
    return out, mean, std


def load_dataset(cfg: dict, vocab: Vocabulary | None = None) -> Dataset:
    path = Path(cfg["ligands"])
    try:
        ligands = store.read_ligands(path)
        file_labels = store.read_labels(path)
    except (FileNotFoundError, store.SchemaError) as exc:
        raise InputError(f"{exc}. Build one with `python -m gauss_hpc.data build --out {path}`.") from exc
    if len(ligands) == 0:
        raise InputError(f"{path}: the ligand table is empty")
    try:
        test_mask, subsets = store.read_splits(path)
    except KeyError:
        log.warning("%s has no /splits/test: no held-out metrics, early stopping on the training loss", path)
        test_mask, subsets = np.zeros(len(ligands), bool), {}
    smiles = ligands["smiles"].tolist()
    if vocab is None:
        vocab = Vocabulary.build(smiles)
    try:
        tokens = torch.from_numpy(vocab.encode(smiles))
    except ValueError as exc:
        raise InputError(f"{path}: {exc} (the run's vocab.json does not cover this ligands file)") from exc
    train_rows = select_train_rows(np.asarray(test_mask, bool), subsets, int(cfg["train_size"]))
    data = Dataset(vocab=vocab, tokens=tokens, canonical=ligands["canonical"].tolist(), train_rows=train_rows,
                   test_rows=np.flatnonzero(test_mask))

    available = {"donor_z": (ligands["donor_z"].to_numpy(np.float64), np.ones(len(ligands), bool))}
    available.update({k: (np.asarray(v, np.float64), np.asarray(m, bool)) for k, (v, m) in file_labels.items()
                      if np.ndim(v) == 1})
    wanted = list(cfg["proxy_labels"])
    if wanted == ["all"]:
        wanted = ["donor_z"] + sorted(k for k in available if k != "donor_z")
    elif wanted == ["none"] or not wanted:
        wanted = []
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise InputError(f"{path}: no label(s) {unknown}; available: {sorted(available)} (or 'all' / 'none')")

    # Semi-supervision: `labelled_size` training rows drawn at random keep their proxy labels (the file's order
    # follows the source's, e.g. QM9's small molecules first, so the first N would be a biased set);
    # held-out rows keep theirs for the R^2 metrics.
    keep = np.ones(len(ligands), bool)
    if 0 < int(cfg["labelled_size"]) < len(train_rows):
        keep[train_rows] = False
        rng = np.random.default_rng(int(cfg["seed"]))
        keep[rng.choice(train_rows, size=int(cfg["labelled_size"]), replace=False)] = True
    names, columns, masks = [], [], []
    for name in wanted:
        values, mask = available[name]
        mask = mask & keep & np.isfinite(values)
        if not mask[train_rows].any():
            log.warning("label %r has no value on the training ligands: not used", name)
            continue
        names.append(name)
        columns.append(values)
        masks.append(mask)
    if names:
        values, mask = np.stack(columns, 1), np.stack(masks, 1)
        standardized = np.zeros_like(values)
        mean, std = np.zeros(len(names)), np.ones(len(names))
        for j in range(len(names)):
            standardized[:, j], mean[j], std[j] = _standardize(values[:, j], mask[:, j], train_rows)
        data.label_names, data.label_mean, data.label_std = names, mean, std
        data.labels = torch.from_numpy(standardized).float()
        data.label_mask = torch.from_numpy(mask)
        log.info("proxy labels %s; labelled training ligands per label: %s", names,
                 [int(mask[train_rows, j].sum()) for j in range(len(names))])
    elif not cfg["kd_head"]:
        log.warning("%s: no property labels to train on: training the VAE alone (no property head)", path)

    if cfg["kd_head"]:
        targets = cfg["kd_label"]
        try:
            descriptors = value_schema.kd_descriptor_label(targets)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if targets not in file_labels or descriptors not in file_labels:
            raise InputError(f"{path}: kd_head needs labels {targets!r} (n, 7) and {descriptors!r} (n, 6); "
                             f"found {sorted(file_labels)}. Merge KD results first (python -m gauss_hpc.label "
                             f"merge results.h5 --ligands {path}), choose another --kd-label, or train without "
                             f"--kd-head.")
        (gaps, gmask), (desc, dmask) = file_labels[targets], file_labels[descriptors]
        kd_mask = gmask & dmask & np.isfinite(gaps).all(1) & np.isfinite(desc).all(1)
        if not kd_mask[train_rows].any():
            raise InputError(f"{path}: no training ligand has both {targets} and {descriptors}")
        gaps_std, data.kd_mean, data.kd_std = _standardize(np.asarray(gaps, np.float64), kd_mask, train_rows)
        desc_std, data.kd_descriptor_mean, data.kd_descriptor_std = _standardize(np.asarray(desc, np.float64),
                                                                                  kd_mask, train_rows)
        data.kd_targets = torch.from_numpy(gaps_std).float()
        data.kd_descriptors = torch.from_numpy(desc_std).float()
        data.kd_mask = torch.from_numpy(kd_mask[:, None])
    data.test_rows = evaluation_rows(data, int(cfg["eval_size"]), int(cfg["seed"]))
    return data


def evaluation_rows(data: Dataset, size: int, seed: int) -> np.ndarray:
    """The held-out rows scored each epoch: all of them, or `size` of them: every one with KD labels (the
    scarce CASSCF-like set, so that the KD head's R^2 keeps its support) and a fixed random sample of the rest."""
    rows = data.test_rows
    if size <= 0 or size >= len(rows):
        return rows
    scarce = rows[data.kd_mask[rows, 0].numpy()] if data.kd_mask is not None else rows[:0]
    rest = np.setdiff1d(rows, scarce)
    picked = np.random.default_rng(seed).choice(rest, size=max(size - len(scarce), 0), replace=False)
    return np.sort(np.concatenate([scarce, picked]))


# --- order of the data --------------------------------------------------------------------------------------

def epoch_order(train_rows: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The global data order of one epoch: the same on every rank, for any number of ranks."""
    return np.random.default_rng([seed, epoch]).permutation(train_rows)
