"""Design targets as configuration ([target] in defaults.toml): what a design round maximises or minimises.

    quantity   "kd1"              the first KD gap dE01 (the paper's target)
               "total_splitting"  the last gap of the ground multiplet dE0n (Dy: dE07)
               "gap:N"            the N-th gap dE0N (1-based)
               "weighted"         sum over `weights` {quantity: weight} of the quantities above (cm-1)
    direction  "max" | "min"

The values come from KD-gap arrays (n, 7), NaN-padded for ions with fewer doublets, as results.h5 and the
ligand labels store them, so seeds (a label), the oracle's choice among screened ligands (results) and "beats
the best seed" rank by the same number. A target of the ground doublet's g-tensor (axiality) would need the
g-tensors among the ligand labels, which hold KD gaps only; it is refused with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DIRECTIONS = ("max", "min")


@dataclass(frozen=True)
class Target:
    quantity: str = "kd1"
    direction: str = "max"
    weights: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"[target] direction {self.direction!r}: expected one of {DIRECTIONS}")
        if self.quantity == "weighted":
            if not self.weights:
                raise ValueError("[target] quantity \"weighted\" needs weights, e.g. { kd1 = 1.0, total_splitting = 0.2 }")
            for name in self.weights:
                _column(name)
        else:
            _column(self.quantity)

    @classmethod
    def from_config(cls, cfg: dict) -> "Target":
        known = {"quantity", "direction", "weights"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"[target]: unknown keys {unknown}; expected some of {sorted(known)}")
        return cls(**cfg)

    @property
    def order(self) -> str:
        """'high' or 'low': the seeds' top-k order (gauss_hpc.sample --seed-order)."""
        return "high" if self.direction == "max" else "low"

    def values(self, kd_gaps) -> np.ndarray:
        """The target per row of a KD-gap array (n, n_gaps) in cm-1; NaN where a needed gap is missing."""
        gaps = np.atleast_2d(np.asarray(kd_gaps, dtype=float))
        if self.quantity != "weighted":
            return _take(gaps, self.quantity)
        return sum(float(w) * _take(gaps, name) for name, w in self.weights.items())

    def best(self, values) -> float | None:
        values = np.asarray(values, dtype=float)
        if not np.isfinite(values).any():
            return None
        return float(np.nanmax(values) if self.direction == "max" else np.nanmin(values))

    def beats(self, values, reference: float) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return values > reference if self.direction == "max" else values < reference

    def ranked(self, values) -> np.ndarray:
        """Indices of the finite values, best first."""
        values = np.asarray(values, dtype=float)
        known = np.flatnonzero(np.isfinite(values))
        key = -values[known] if self.direction == "max" else values[known]
        return known[np.argsort(key, kind="stable")]

    def seed_label(self, kd_label: str) -> str:
        """The ligand label the seeds are ranked by (gauss_hpc.sample --seed-top LABEL K), e.g. cf_kd_gaps[0]."""
        if self.quantity == "weighted":
            raise ValueError("[target] \"weighted\": seeds cannot be ranked by one label column; set [loop] "
                             "seed_label to the column that stands for it (e.g. cf_kd_gaps[0])")
        return f"{kd_label}[{_column(self.quantity)}]"

    def describe(self) -> str:
        what = (" + ".join(f"{w:g}*{n}" for n, w in self.weights.items()) if self.quantity == "weighted"
                else self.quantity)
        return f"{self.direction} {what}"


def _column(name: str) -> int:
    """Column of the KD-gap array (0 = dE01); -1 for the last gap of the ground multiplet."""
    if name == "kd1":
        return 0
    if name == "total_splitting":
        return -1
    if name.startswith("gap:") and name[4:].isdigit() and int(name[4:]) >= 1:
        return int(name[4:]) - 1
    if name in ("axiality", "g_perp"):
        raise ValueError(f"[target] {name!r}: ranking by the ground doublet's g-tensor needs g-tensors among the "
                         "ligand labels, which hold KD gaps only; use kd1, total_splitting, gap:N or weighted")
    raise ValueError(f"[target] quantity {name!r}: expected kd1, total_splitting, gap:N (1-based) or weighted")


def _take(gaps: np.ndarray, name: str) -> np.ndarray:
    column = _column(name)
    if column >= 0:
        return gaps[:, column] if column < gaps.shape[1] else np.full(len(gaps), np.nan)
    finite = np.isfinite(gaps)       # the last gap the ion has (padding is NaN)
    last = np.where(finite.any(axis=1), gaps.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1), 0)
    out = gaps[np.arange(len(gaps)), last]
    return np.where(finite.any(axis=1), out, np.nan)
