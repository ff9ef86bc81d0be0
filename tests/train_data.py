"""Small real ligand files for the training tests: donor-first SMILES drawn from the bundled QM9 ligand set
when present, else from a fixed list of RDKit-valid ligands, with a partly labelled proxy label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gauss_hpc import store

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data" / "ligands.h5"

FALLBACK = ["OC", "[O-]C", "[O-]c1ccccc1", "N#CC", "n1ccccc1", "OCC", "[O-]CC", "NC", "NCC", "OC=O", "[O-]C=O",
            "OCCC", "[O-]CCC", "N#CCC", "n1ccncc1", "NC=O", "OC(C)C", "[O-]C(C)C", "NCCO", "OCCN", "n1cccc1C",
            "OC1CC1", "[O-]C1CC1", "N1CC1", "NC(C)C", "OC#C", "OCC#N", "[O-]CC#N", "NC#N", "OC(F)F"]


def ligand_table(n: int) -> pd.DataFrame:
    if BUNDLED.is_file():
        table = store.read_ligands(BUNDLED)
        table = table[table["smiles"].str.len() <= 14].iloc[:n].reset_index(drop=True)
    else:
        smiles = [FALLBACK[i % len(FALLBACK)] for i in range(n)]
        table = pd.DataFrame({"smiles": smiles, "canonical": smiles,
                              "charge": [-1 if s.startswith("[O-]") else 0 for s in smiles],
                              "donor_element": ["N" if s[0] in "Nn" else "O" for s in smiles],
                              "donor_z": [7 if s[0] in "Nn" else 8 for s in smiles],
                              "donor_index": 0, "parent_id": [f"p{i}" for i in range(n)], "source": "test"})
    return table


def make_ligands(path: Path, n: int = 240, test_fraction: float = 0.15, labelled_fraction: float | None = 0.5,
                 garbage: float | None = None, seed: int = 0) -> Path:
    """A ligands file of n ligands; a label `donor_charge` (a smooth function of the donor charge and length,
    so a head can learn it) on a fraction of rows. `garbage` fills unlabelled values instead of NaN."""
    rng = np.random.default_rng(seed)
    table = ligand_table(n)
    n = len(table)
    test = np.zeros(n, bool)
    test[rng.choice(n, int(round(test_fraction * n)), replace=False)] = True
    labels = {}
    if labelled_fraction is not None:
        mask = rng.random(n) < labelled_fraction
        values = -0.5 + 0.3 * table["charge"].to_numpy() - 0.01 * table["smiles"].str.len().to_numpy()
        values = np.where(mask, values, np.nan if garbage is None else garbage)
        labels["donor_charge"] = (values, mask, {"unit": "e", "method": "test"})
    store.write_ligands(path, table, labels=labels, test_mask=test, train_subsets={})
    if garbage is not None:  # write_ligands stores NaN where unlabelled; put the garbage back on purpose
        import h5py
        with h5py.File(path, "r+") as h5:
            h5["labels/donor_charge/values"][~mask] = garbage
    return path
