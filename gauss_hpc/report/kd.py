"""The design target of every generated ligand (KD1 unless a round said otherwise), from whichever stage gave one:
the sampling stage's prediction (the mean KD of the k nearest labelled latents), a crystal-field campaign, a CASSCF
campaign. The report ranks ligands by it, in its direction, and says on each picture which method a number comes
from. `Focus` is what the report follows: the complex template (whose crystal-field labels seeds carry) and the
target (gauss_hpc.targets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dataclasses import dataclass, field

from .. import store
from ..abinitio import values as value_schema
from ..chem.ligands import identity_or_empty
from ..chem.templates import DEFAULT as DEFAULT_TEMPLATE
from ..targets import Target

# the methods in the order of trust: a ligand is ranked by the most trusted number it has
METHODS = {"nevpt2": "NEVPT2", "casscf": "CASSCF", "crystal_field": "crystal field",
           "predicted": "predicted (k-NN of labelled latents)"}
SHORT = {"nevpt2": "NEVPT2", "casscf": "CASSCF", "crystal_field": "CF", "predicted": "pred."}
SAMPLE_COLUMNS = ("seed_id", "seed_smiles", "seed_ligand_row", "sigma", "batch", "smiles", "canonical", "novel",
                  "unique", "times_generated")

# The crystal-field KD labels (gauss_hpc.merge) that seeds and generated ligands are compared by: the screen's oracle.
KD_GAPS_LABEL = value_schema.label_name("crystal_field", value_schema.KD_GAPS)        # cf_kd_gaps


@dataclass(frozen=True)
class Focus:
    """What the report ranks by: `target` of the KD gaps of complexes built on `template`."""

    template: str = DEFAULT_TEMPLATE
    target: Target = field(default_factory=Target)

    @property
    def kd_label(self) -> str:
        """The ligand label holding the screen's KD gaps on this template (cf_kd_gaps for the default)."""
        return value_schema.label_name("crystal_field", value_schema.KD_GAPS, self.template)

    @property
    def name(self) -> str:
        """The target in a chemist's words: KD1, total splitting, ΔE03, weighted target."""
        quantity = self.target.quantity
        if quantity == "kd1":
            return "KD1"
        if quantity == "total_splitting":
            return "total splitting"
        if quantity.startswith("gap:"):
            return f"ΔE0{quantity[4:]}"
        if quantity == "g_perp":
            return "ground g⊥"
        return "weighted target"

    @property
    def unit(self) -> str:
        """cm⁻¹ for KD gaps; none for g values or a weighted sum that mixes them with gaps."""
        return "" if self.target.needs_ground_g else "cm⁻¹"

    def labelled(self, text: str) -> str:
        """`text` with the unit in parentheses, where it has one."""
        return f"{text} ({self.unit})" if self.unit else text

    def format(self, value) -> str:
        """A value of the target as the report writes it ("—" when unknown)."""
        if value is None or not np.isfinite(value):
            return "—"
        return f"{value:.0f} {self.unit}" if self.unit else f"{value:.3g}"

    def rounded(self, value: float) -> float:
        """A number for the report's Key numbers: cm⁻¹ to 0.1, g values to 4 significant digits."""
        return round(float(value), 1) if self.unit else float(f"{value:.4g}")

    @property
    def best_first(self) -> str:
        return f"{'highest' if self.target.direction == 'max' else 'lowest'} {self.name} first"

    def sort_key(self, values) -> np.ndarray:
        """Ascending sort key: best first in the target's direction, unknown last."""
        values = np.asarray(values, dtype=float)
        key = -values if self.target.direction == "max" else values
        return np.where(np.isfinite(key), key, np.inf)


DEFAULT_FOCUS = Focus()


def novelty_key(canonical: str, smiles: str) -> str:
    """The identity of a result: the canonical key that travelled with its task (derived here only for results
    files gathered before tasks carried it)."""
    return canonical or identity_or_empty(smiles)


def generated(samples: Path, focus: Focus = DEFAULT_FOCUS) -> pd.DataFrame:
    """Novel unique generated ligands (one row each, `sample_row` = row of /samples) with their predicted target
    (`value_predicted`) where the sampling run predicted the focus's KD label."""
    with store.open_checked(samples, "samples") as h5:
        group = h5["samples"]
        table = store.read_table(group, [c for c in SAMPLE_COLUMNS if c in group])
        if f"predicted_{focus.kd_label}" in group:       # KD gaps only: a g target has no prediction (NaN)
            table["value_predicted"] = focus.target.values(group[f"predicted_{focus.kd_label}"][()])
    table["sample_row"] = np.arange(len(table))
    return table[table["novel"].astype(bool) & table["unique"].astype(bool)].reset_index(drop=True)


def seeds(samples: Path, ligands_file: Path | None, focus: Focus = DEFAULT_FOCUS) -> pd.DataFrame:
    """The seeds of a sampling run with their labelled target (`value_label`: the crystal-field KD label of the
    focus's template, from the ligands file) where known."""
    table = store.read_samples(samples, "seeds")
    table["value_label"] = np.nan
    labels = store.read_labels(ligands_file) if ligands_file is not None and Path(ligands_file).is_file() else {}
    if focus.kd_label in labels:
        values = focus.target.label_values(labels, focus.kd_label)
        row = table["ligand_row"].to_numpy()
        known = row >= 0
        table.loc[known, "value_label"] = values[row[known]]
    return table


# Results files gathered before every Result declared its method (no `kd_method`, or an empty one) name only the
# step that gave the KDs: these are the shipped backends' steps that give KDs, by their level of theory.
LEGACY_KD_STEP_METHOD = {"crystal_field": "crystal_field", "casscf": "casscf", "orca_casscf": "casscf",
                         "import": "casscf"}


def kd_methods(results: pd.DataFrame) -> pd.Series:
    """The level of theory of each row's KDs: results.h5 `kd_method` (what the backend's Result declared), or for
    a file gathered before that column, the legacy map of `kd_step`; "" where the row has no KDs."""
    legacy = results["kd_step"].map(LEGACY_KD_STEP_METHOD).fillna("") if "kd_step" in results else \
        pd.Series("", index=results.index)
    if "kd_method" not in results:
        return legacy
    declared = results["kd_method"].fillna("").astype(str)
    return declared.where(declared != "", legacy)


def computed(results: pd.DataFrame, focus: Focus = DEFAULT_FOCUS) -> pd.DataFrame:
    """Per novelty key, the target of its complex from each method that computed one (`value_<method>`, the
    method its backend declared: kd_methods; a CASSCF campaign whose CASSCF failed keeps the crystal-field KDs and
    says so). Of several, the best in the target's direction."""
    if results.empty or "target" not in results:
        return pd.DataFrame(columns=["value_crystal_field", "value_casscf"], dtype=float)
    method = kd_methods(results)
    known = results[results["target"].notna() & method.isin(list(METHODS))].assign(method=method)
    keys = [novelty_key(c, s) for c, s in zip(known["canonical"], known["smiles"])]
    best = "max" if focus.target.direction == "max" else "min"
    wide = known.assign(key=keys).pivot_table(index="key", columns="method", values="target", aggfunc=best)
    return wide.rename(columns=lambda m: f"value_{m}")


def ranked(samples: Path, results: pd.DataFrame, focus: Focus = DEFAULT_FOCUS) -> pd.DataFrame:
    """Generated novel unique ligands with value_<method> columns, `method` and `value` (the most trusted number
    for the target), ranked: CASSCF-computed first, then crystal-field, then predicted, each best first."""
    table = generated(samples, focus)
    table["key"] = [novelty_key(c, s) for c, s in zip(table["canonical"], table["smiles"])]
    table = table.join(computed(results, focus), on="key")
    table["method"], table["value"] = "", np.nan
    for method in reversed(list(METHODS)):            # the most trusted method is written last and wins
        column = f"value_{method}"
        if column in table:
            has = table[column].notna().to_numpy()
            table["method"] = np.where(has, method, table["method"])
            table["value"] = np.where(has, table[column].to_numpy(float), table["value"])
    tier = table["method"].map({m: i for i, m in enumerate(METHODS)}).fillna(len(METHODS))
    order = np.lexsort((-table["times_generated"].to_numpy(float), focus.sort_key(table["value"]),
                        tier.to_numpy()))
    return table.iloc[order].reset_index(drop=True)
