"""Generation-quality metrics as MOSES and GuacaMol define them, computed here (the `molsets` package breaks with
pandas >= 2 and its filters reject the charged donor atom of every anionic ligand).

- validity: valid attempts / attempts.
- unique@k: distinct canonicals among the first k valid samples (generation order) / k; when fewer than k are
  valid, over all of them (as MOSES does, with its warning replaced by the recorded `n_unique_at_k`).
- novelty: unique samples whose canonical is not in the training set / unique samples.
- IntDiv_p = 1 - mean_i (mean_j T(i, j)^p)^(1/p) over all ordered pairs of the unique samples, i = j included,
  Morgan radius 2, 1024 bits (MOSES `internal_diversity`).
- SNN: mean over unique samples of the Tanimoto similarity to the nearest training ligand (MOSES `SNNMetric`,
  here against the training set rather than a test set).
Tanimoto similarities are computed as dense 0/1 matrix products (exact integer counts in float32), which is
several times faster than RDKit's per-fingerprint bulk loop for the thousands x tens of thousands pairs here.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

FP_RADIUS = 2
FP_BITS = 1024
_CHUNK = 4096


def fingerprints(canonicals: Sequence[str]) -> np.ndarray:
    """Morgan bit vectors (n, 1024) as uint8 0/1; an unparsable string gets an all-zero row."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)
    out = np.zeros((len(canonicals), FP_BITS), dtype=np.uint8)
    for row, smiles in enumerate(canonicals):
        mol = Chem.MolFromSmiles(smiles)
        if mol is not None:
            out[row] = generator.GetFingerprintAsNumPy(mol)
    return out


def tanimoto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Tanimoto similarity matrix (len(a), len(b)) of 0/1 fingerprint rows; two empty fingerprints give 0."""
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def max_similarity(query: np.ndarray, reference_smiles: Sequence[str]) -> np.ndarray:
    """For each query fingerprint, the largest Tanimoto similarity to any reference molecule (-1 when there is
    no reference). The reference is fingerprinted chunk by chunk so memory stays bounded."""
    best = np.full(len(query), -1.0, dtype=np.float32)
    for start in range(0, len(reference_smiles), _CHUNK):
        ref = fingerprints(reference_smiles[start:start + _CHUNK])
        if len(query):
            best = np.maximum(best, tanimoto(query, ref).max(axis=1))
    return best


def internal_diversity(fps: np.ndarray, p: int = 1) -> float:
    if len(fps) == 0:
        return float("nan")
    agg = np.zeros(len(fps))
    for start in range(0, len(fps), _CHUNK):
        sims = tanimoto(fps[start:start + _CHUNK], fps).astype(np.float64)
        agg[start:start + _CHUNK] = np.mean(sims ** p, axis=1) ** (1.0 / p)
    return float(1.0 - agg.mean())


def unique_at_k(first_in_scope: np.ndarray, valid_position: np.ndarray, n_valid: int, k: int) -> tuple[float, int]:
    """(unique@k, the k actually used). `first_in_scope` marks a sample that is the first occurrence of its
    canonical in the scope, `valid_position` its 0-based place among the scope's valid samples in generation
    order: a canonical is among the first k exactly when its first occurrence is."""
    used = min(k, n_valid)
    if used == 0:
        return float("nan"), 0
    hits = np.count_nonzero(np.asarray(first_in_scope, bool) & (np.asarray(valid_position) < used))
    return hits / used, used


def nearest_training_similarity(comm, canonicals: Sequence[str], training_block: Sequence[str]) -> np.ndarray:
    """Collective over `comm` (dist.Collectives): each rank compares the query canonicals with its block of the
    training set, and an element-wise max over ranks gives every rank the nearest-neighbour similarity over the
    whole training set."""
    return comm.max(max_similarity(fingerprints(canonicals), training_block).astype(np.float64))


def valid_positions(units: pd.DataFrame, samples: pd.DataFrame) -> np.ndarray:
    """Each sample's 0-based place among the valid samples of `units` in generation order. `units` has columns
    unit and valid (sorted by unit), `samples` has unit and valid_rank (its place within its unit)."""
    offsets = np.cumsum(units["valid"].to_numpy()) - units["valid"].to_numpy()
    lookup = np.searchsorted(units["unit"].to_numpy(), samples["unit"].to_numpy())
    return offsets[lookup] + samples["valid_rank"].to_numpy()


def scopes(sigmas: Sequence[float]) -> list[tuple[float, str]]:
    """(sigma or NaN for the whole run, the column that marks a first occurrence in that scope)."""
    return [(float(s), "unique_in_sigma") for s in sigmas] + [(float("nan"), "unique")]


def _in_scope(frame: pd.DataFrame, sigma: float) -> pd.DataFrame:
    return frame if np.isnan(sigma) else frame[frame["sigma"] == sigma]


def diversity_subsets(samples: pd.DataFrame, sigmas: Sequence[float], max_samples: int) -> list[list[str]]:
    """Per scope, the canonicals of its first `max_samples` unique samples (generation order) for IntDiv/SNN."""
    ordered = samples.sort_values("key")
    return [_in_scope(ordered, sigma).loc[lambda f: f[flag]]["canonical"].head(max_samples).tolist()
            for sigma, flag in scopes(sigmas)]


def metrics_table(units: pd.DataFrame, samples: pd.DataFrame, sigmas: Sequence[float],
                  subsets: list[list[str]], nearest: dict[str, float]) -> pd.DataFrame:
    """One row per σ and one for the whole run (sigma = NaN). `units`: unit, sigma, attempts, valid (every
    unit of the run); `samples`: key, unit, valid_rank, sigma, canonical, novel, unique, unique_in_sigma (at
    least every sample that is unique in its σ); `nearest`: canonical -> similarity to the nearest training
    ligand for every canonical of `subsets`."""
    rows = []
    for (sigma, flag), subset in zip(scopes(sigmas), subsets):
        scope_units = _in_scope(units, sigma).sort_values("unit")
        scope_samples = _in_scope(samples, sigma)
        attempts, n_valid = int(scope_units["attempts"].sum()), int(scope_units["valid"].sum())
        first = scope_samples[flag].to_numpy(bool)
        positions = valid_positions(scope_units, scope_samples)
        u1k, n1k = unique_at_k(first, positions, n_valid, 1000)
        u10k, n10k = unique_at_k(first, positions, n_valid, 10000)
        n_unique = int(first.sum())
        fps = fingerprints(subset)
        rows.append({
            "sigma": sigma, "attempts": attempts, "valid": n_valid, "unique": n_unique,
            "novel_unique": int((first & scope_samples["novel"].to_numpy(bool)).sum()),
            "validity": n_valid / attempts if attempts else float("nan"),
            "unique_at_1k": u1k, "n_unique_at_1k": n1k, "unique_at_10k": u10k, "n_unique_at_10k": n10k,
            "novelty": (first & scope_samples["novel"].to_numpy(bool)).sum() / n_unique if n_unique else float("nan"),
            "intdiv1": internal_diversity(fps, 1), "intdiv2": internal_diversity(fps, 2),
            "snn": float(np.mean([nearest[c] for c in subset])) if subset else float("nan"),
            "n_diversity_samples": len(subset),
        })
    return pd.DataFrame(rows)
