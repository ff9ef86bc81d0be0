"""The KD1 gap of every generated ligand, from whichever stage gave one: the sampling stage's prediction (the mean
KD of the k nearest labelled latents), a crystal-field campaign, a CASSCF campaign. The report ranks ligands and
says on each picture which of them a number comes from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from ..abinitio import values as value_schema
from ..chem.ligands import LigandError, kekulized_canonical

# the methods in the order of trust: a ligand is ranked by the most trusted number it has
METHODS = {"casscf": "CASSCF", "crystal_field": "crystal field", "predicted": "predicted (k-NN of labelled latents)"}
SHORT = {"casscf": "CASSCF", "crystal_field": "CF", "predicted": "pred."}
SAMPLE_COLUMNS = ("seed_id", "seed_smiles", "seed_ligand_row", "sigma", "batch", "smiles", "canonical", "novel",
                  "unique", "times_generated")

# The crystal-field KD labels (gauss_hpc.merge) that seeds and generated ligands are compared by: the screen's oracle.
KD_GAPS_LABEL = value_schema.label_name("crystal_field", value_schema.KD_GAPS)        # cf_kd_gaps


def novelty_key(canonical: str, smiles: str) -> str:
    """The identity of a result: the canonical key that travelled with its task (derived here only for results
    files gathered before tasks carried it)."""
    if canonical:
        return canonical
    try:
        return kekulized_canonical(smiles)
    except LigandError:
        return ""


def generated(samples: Path) -> pd.DataFrame:
    """Novel unique generated ligands (one row each, `sample_row` = row of /samples) with their predicted KD1."""
    with store.open_checked(samples, "samples") as h5:
        group = h5["samples"]
        table = store.read_table(group, [c for c in SAMPLE_COLUMNS if c in group])
        if f"predicted_{KD_GAPS_LABEL}" in group:
            table["kd1_predicted"] = group[f"predicted_{KD_GAPS_LABEL}"][:, 0]
    table["sample_row"] = np.arange(len(table))
    return table[table["novel"].astype(bool) & table["unique"].astype(bool)].reset_index(drop=True)


def seeds(samples: Path, ligands_file: Path | None) -> pd.DataFrame:
    """The seeds of a sampling run with their labelled KD1 (crystal field, from the ligands file) where known."""
    table = store.read_samples(samples, "seeds")
    table["kd1_label"] = np.nan
    labels = store.read_labels(ligands_file) if ligands_file is not None and Path(ligands_file).is_file() else {}
    if KD_GAPS_LABEL in labels:
        values, mask = labels[KD_GAPS_LABEL]
        row = table["ligand_row"].to_numpy()
        known = (row >= 0) & mask[np.clip(row, 0, None)]
        table.loc[known, "kd1_label"] = values[row[known], 0]
    return table


# The method of the KDs a step gave (`kd_step` of results.h5): OpenMolcas's and ORCA's CASSCF steps, and outputs
# brought in by `jobs import` (CASSCF or NEVPT2 levels of a multireference program), are all multireference.
KD_STEP_METHOD = {"crystal_field": "crystal_field", "casscf": "casscf", "orca_casscf": "casscf", "import": "casscf"}


def computed(results: pd.DataFrame) -> pd.DataFrame:
    """Per novelty key, the KD1 of its complex from each method that computed one (kd_step names the step, mapped
    to its method by KD_STEP_METHOD; a CASSCF campaign whose CASSCF failed keeps the crystal-field KDs and says so
    in kd_step)."""
    if results.empty or "kd1_gap" not in results:
        return pd.DataFrame(columns=["kd1_crystal_field", "kd1_casscf"], dtype=float)
    method = results["kd_step"].map(KD_STEP_METHOD)
    known = results[results["kd1_gap"].notna() & method.notna()].assign(method=method)
    keys = [novelty_key(c, s) for c, s in zip(known["canonical"], known["smiles"])]
    wide = known.assign(key=keys).pivot_table(index="key", columns="method", values="kd1_gap", aggfunc="max")
    return wide.rename(columns=lambda m: f"kd1_{m}")


def ranked(samples: Path, results: pd.DataFrame) -> pd.DataFrame:
    """Generated novel unique ligands with kd1_<method> columns, `method` and `kd1` (the most trusted number),
    ranked: CASSCF-computed first, then crystal-field, then predicted, each by KD1 descending."""
    table = generated(samples)
    table["key"] = [novelty_key(c, s) for c, s in zip(table["canonical"], table["smiles"])]
    table = table.join(computed(results), on="key")
    table["method"], table["kd1"] = "", np.nan
    for method in reversed(list(METHODS)):            # the most trusted method is written last and wins
        column = f"kd1_{method}"
        if column in table:
            has = table[column].notna().to_numpy()
            table["method"] = np.where(has, method, table["method"])
            table["kd1"] = np.where(has, table[column].to_numpy(float), table["kd1"])
    tier = table["method"].map({m: i for i, m in enumerate(METHODS)}).fillna(len(METHODS))
    order = np.lexsort((-table["times_generated"].to_numpy(float), -table["kd1"].fillna(-np.inf).to_numpy(),
                        tier.to_numpy()))
    return table.iloc[order].reset_index(drop=True)
