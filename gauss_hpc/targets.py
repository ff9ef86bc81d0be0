"""Design targets as configuration ([target] in defaults.toml): what a design round maximises or minimises.

    quantity   "kd1"              the first KD gap dE01 (the paper's target)
               "total_splitting"  the last gap of the ground multiplet dE0n (Dy: dE07)
               "gap:N"            the N-th gap dE0N (1-based)
               "g_perp"           the ground doublet's transverse g, sqrt(gX^2 + gY^2): its axiality (an Ising
                                  doublet has 0; minimise it, usually beside KD1 in a weighted target)
               "weighted"         sum over `weights` {quantity: weight} of the quantities above (cm-1 and g
                                  units: choose the weights accordingly, e.g. { kd1 = 1.0, g_perp = -100.0 })
    direction  "max" | "min"

The values come from KD-gap arrays (n, 7), NaN-padded for ions with fewer doublets, and the ground doublet's
principal g values (n, 3), gX <= gY <= gZ, as results.h5 (g_tensors[:, 0]) and the ligand labels (<prefix>_kd_gaps,
<prefix>_ground_g, gauss_hpc.merge) store them, so seeds (labels), the oracle's choice among screened ligands
(results) and "beats the best seed" rank by the same number. Where no g values are known (a KD head predicts gaps
only) a g target is NaN: unknown, never ranked.
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
    def quantities(self) -> tuple[str, ...]:
        return tuple(self.weights) if self.quantity == "weighted" else (self.quantity,)

    @property
    def needs_ground_g(self) -> bool:
        """Whether the target reads the ground doublet's g values (not only the KD gaps)."""
        return any(name in G_QUANTITIES for name in self.quantities)

    @property
    def order(self) -> str:
        """'high' or 'low': the seeds' top-k order (gauss_hpc.sample --seed-order)."""
        return "high" if self.direction == "max" else "low"

    def values(self, kd_gaps, ground_g=None) -> np.ndarray:
        """The target per row of a KD-gap array (n, n_gaps) in cm-1 and the ground doublets' principal g values
        (n, 3) (None: unknown); NaN where a needed value is missing."""
        gaps = np.atleast_2d(np.asarray(kd_gaps, dtype=float))
        g = np.full((len(gaps), 3), np.nan) if ground_g is None else np.atleast_2d(np.asarray(ground_g, float))
        if g.shape != (len(gaps), 3):
            raise ValueError(f"ground g values of shape {g.shape} for {len(gaps)} KD-gap rows: expected "
                             f"({len(gaps)}, 3)")
        if self.quantity != "weighted":
            return _take(gaps, g, self.quantity)
        return sum(float(w) * _take(gaps, g, name) for name, w in self.weights.items())

    def result_values(self, arrays: dict) -> np.ndarray:
        """The target per row of a results file's N-D columns ({name: array}, store.read_result_arrays with
        kd_gaps and g_tensors): the ground doublet's g values are g_tensors[:, 0]."""
        ground_g = arrays["g_tensors"][:, 0] if "g_tensors" in arrays else None
        return self.values(arrays["kd_gaps"], ground_g)

    def label_values(self, labels: dict, kd_label: str) -> np.ndarray:
        """The target per ligand row from a ligands file's labels ({name: (values, mask)}, store.read_labels):
        the KD label and, for a g target, the ground g values beside it; NaN where a ligand lacks one."""
        from .abinitio.values import ground_g_label

        if kd_label not in labels:
            raise ValueError(f"the ligands file has no KD label {kd_label!r}; it has {sorted(labels)}")
        gaps, mask = labels[kd_label]
        gaps = np.where(mask[:, None], gaps, np.nan)
        ground_g = None
        if self.needs_ground_g:
            unknown = (np.full((len(gaps), 3), np.nan), np.zeros(len(gaps), bool))
            g, g_mask = labels.get(ground_g_label(kd_label), unknown)
            ground_g = np.where(g_mask[:, None], g, np.nan)
        return self.values(gaps, ground_g)

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
        """The one KD-label column a model's KD head predicts for this target (gauss_hpc.sample --seed-top LABEL K
        --seed-by prediction), e.g. cf_kd_gaps[0]; a ValueError for a target that is not one KD gap."""
        if self.quantity == "weighted" or self.needs_ground_g:
            raise ValueError(f"[target] {self.describe()!r} is not one KD gap, and a KD head predicts KD gaps only: "
                             "rank the seeds by their labels ([loop] seed_by = \"label\"), or set [loop] "
                             "seed_label to the KD column that stands for it (e.g. cf_kd_gaps[0])")
        return f"{kd_label}[{_column(self.quantity)}]"

    def describe(self) -> str:
        what = (" + ".join(f"{w:g}*{n}" for n, w in self.weights.items()) if self.quantity == "weighted"
                else self.quantity)
        return f"{self.direction} {what}"


G_QUANTITIES = ("g_perp",)


def _column(name: str) -> int | None:
    """Column of the KD-gap array (0 = dE01); -1 for the last gap of the ground multiplet; None for a g quantity."""
    if name in G_QUANTITIES:
        return None
    if name == "kd1":
        return 0
    if name == "total_splitting":
        return -1
    if name.startswith("gap:") and name[4:].isdigit() and int(name[4:]) >= 1:
        return int(name[4:]) - 1
    if name in ("axiality", "g_perpendicular", "g_transverse"):
        raise ValueError(f"[target] {name!r}: the ground doublet's axiality is \"g_perp\" (sqrt(gX^2 + gY^2); "
                         "direction \"min\")")
    raise ValueError(f"[target] quantity {name!r}: expected kd1, total_splitting, gap:N (1-based), g_perp or "
                     "weighted")


def _take(gaps: np.ndarray, ground_g: np.ndarray, name: str) -> np.ndarray:
    column = _column(name)
    if column is None:          # g_perp
        return np.hypot(ground_g[:, 0], ground_g[:, 1])
    if column >= 0:
        return gaps[:, column] if column < gaps.shape[1] else np.full(len(gaps), np.nan)
    finite = np.isfinite(gaps)       # the last gap the ion has (padding is NaN)
    last = np.where(finite.any(axis=1), gaps.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1), 0)
    out = gaps[np.arange(len(gaps)), last]
    return np.where(finite.any(axis=1), out, np.nan)
