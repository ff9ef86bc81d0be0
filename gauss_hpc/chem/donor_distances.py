"""Metal-donor distances of the fast geometry tier, calibrated on the DFT tier.

GFN2-xTB relaxes [Y(H2O)5L2]+ well except for the bonds that matter most: it puts anionic O donors about 0.2 A
(neutral donors about 0.1 A) closer to the metal than BP86-D3(BJ) and crystal structures do, and the equatorial
waters about 0.1 A further; the CASSCF KD1 follows those distances. The fast tier therefore relaxes with GFN2-xTB
while restraints hold each axial metal-donor bond at the DFT tier's length for its donor class and, optionally, each
equatorial one at the DFT tier's length for the equatorial ligand's class (abinitio/xtb.relax_complex(
axial_distances=..., equatorial_distances=...)).

A donor class is the donor atom's element, formal charge and whether it is aromatic or in a multiple bond
(O- alkoxide vs O- on an sp2 carbon: phenolate, carboxylate, enolate; O- or N- at the end of a pseudohalide, on an
sp atom: cyanate, azide, isocyanate; N sp3 vs sp2 vs sp): `donor_class`. The
calibration (`calibrate`, from DFT-tier results.h5 files; shipped as donor_distances.json with the complexes it
came from) is the mean axial distance per class, with a fallback to the class without its hybridisation, then to
the element and charge alone, so that every donor has a length; and the same for the equatorial donors.

Lengths are not all: GFN2-xTB also gets the angle at an anionic donor wrong (hydroxide's Y-O-H, azide's Y-N-N),
and with the lengths right KD1 still follows that angle. The calibration therefore also holds the mean
metal-donor-neighbour angle of the axial donors per class (`angle`; the neighbour as xtb.donor_neighbour picks it),
without fallbacks: the angle at the donor is a matter of how it binds, and O-bound cyanate (bent) and hydroxide
(nearly linear) share an element and a charge; borrowing each other's angle moved their KD1 further from the DFT
geometry's than GFN2-xTB's own angle did (docs/geometry_tiers.md). A class without DFT complexes keeps GFN2-xTB's
angle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from rdkit import Chem

CALIBRATION = "donor_distances.json"          # package data next to this module's package (gauss_hpc/)


def donor_class(smiles: str) -> str:
    """'O-.sp3', 'O-.sp2', 'O-.sp', 'O.sp3', 'O.sp2', 'N-.sp2', 'N.sp', ... of the donor atom (atom 0 of a
    donor-first SMILES); an anionic donor on an sp atom (the end of a pseudohalide) is '.sp'. ValueError naming
    the SMILES when it does not parse."""
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None:
        raise ValueError(f"ligand {smiles!r}: not a valid SMILES")
    atom = mol.GetAtomWithIdx(0)
    charge = "-" if atom.GetFormalCharge() < 0 else "+" if atom.GetFormalCharge() > 0 else ""
    hybrid = {Chem.HybridizationType.SP: "sp", Chem.HybridizationType.SP2: "sp2"}.get(atom.GetHybridization(), "sp3")
    conjugated = atom.GetIsAromatic() or any(n.GetIsAromatic() or any(b.GetBondTypeAsDouble() > 1 for b in n.GetBonds())
                                             for n in atom.GetNeighbors())
    if charge == "-" and hybrid == "sp3" and conjugated:      # phenolate, carboxylate, enolate O-: RDKit says sp3
        hybrid = "sp2"
    if charge == "-" and any(n.GetHybridization() == Chem.HybridizationType.SP for n in atom.GetNeighbors()):
        hybrid = "sp"           # a pseudohalide's end (azide, cyanate, isocyanate): binds unlike phenolate or pyrrolide
    return f"{atom.GetSymbol()}{charge}.{hybrid}"


def _fallbacks(cls: str) -> list[str]:
    """A class, then coarser ones: 'O-.sp2' -> ['O-.sp2', 'O-', '*']."""
    return [cls, cls.split(".")[0], "*"]


@dataclass(frozen=True)
class Calibration:
    distances: dict[str, float]         # class (or coarser key) -> axial metal-donor distance in Angstrom
    counts: dict[str, int]              # complexes (axial bonds / 2) behind each entry
    source: dict                        # what it was fitted on
    equatorial: dict[str, float] = field(default_factory=dict)   # the same for the equatorial donors
    equatorial_counts: dict[str, int] = field(default_factory=dict)
    angles: dict[str, float] = field(default_factory=dict)       # axial metal-donor-neighbour angle, degrees
    angle_counts: dict[str, int] = field(default_factory=dict)

    def distance(self, smiles: str) -> float:
        return _lookup(self.distances, smiles, "axial distance")

    def equatorial_distance(self, smiles: str) -> float:
        """No fallback to all donors: the equatorial calibration knows the templates' ligands it was fitted on
        (water), and another ligand (pyridine, THF) needs DFT complexes of its own."""
        return _lookup(self.equatorial, smiles, "equatorial distance")

    def angle(self, smiles: str) -> float | None:
        """Degrees of the axial metal-donor-neighbour angle of the ligand's donor class; None (left free) where
        the class has no DFT complex, or the ligand is one atom (F-, Cl-: no angle to hold)."""
        return self.angles.get(donor_class(smiles))

    def to_dict(self) -> dict:
        return {"distances": self.distances, "counts": self.counts, "equatorial": self.equatorial,
                "equatorial_counts": self.equatorial_counts, "angles": self.angles,
                "angle_counts": self.angle_counts, "source": self.source}


def _lookup(table: dict[str, float], smiles: str, what: str) -> float:
    for key in _fallbacks(donor_class(smiles)):
        if key in table:
            return table[key]
    raise KeyError(f"ligand {smiles!r}: no calibrated {what} for class {donor_class(smiles)!r} nor a fallback; "
                   "add DFT-tier complexes with it (bench/geometry_tiers.py --write-calibration) or give the values")


def _class_means(smiles: list[str], distances: list[float], min_count: int) -> tuple[dict, dict]:
    groups: dict[str, list[float]] = {}
    for smi, d in zip(smiles, distances):
        if np.isfinite(d):
            for key in _fallbacks(donor_class(smi)):
                groups.setdefault(key, []).append(float(d))
    kept = {k: v for k, v in groups.items() if len(v) >= min_count}
    return ({k: round(float(np.mean(v)), 4) for k, v in sorted(kept.items())},
            {k: len(v) for k, v in sorted(kept.items())})


def fit(smiles: list[str], distances: list[float], source: dict | None = None, min_count: int = 1,
        equatorial: tuple[list[str], list[float]] = ([], []), angles: list[float] | None = None) -> Calibration:
    """Mean axial distance per class and per coarser key (element and charge; everything) from one axial
    distance per complex (the mean of its two axial bonds); `equatorial`: (equatorial ligand, mean equatorial
    distance) per complex, fitted the same way; `angles`: the mean axial metal-donor-neighbour angle per complex
    (degrees, NaN where there is none), fitted per class only."""
    axial, counts = _class_means(smiles, distances, min_count)
    eq, eq_counts = _class_means(*equatorial, min_count)
    angle, angle_counts = _class_means(smiles, angles if angles is not None else [], min_count)
    angle = {k: v for k, v in angle.items() if "." in k}           # classes only: see the module's docstring
    angle_counts = {k: v for k, v in angle_counts.items() if "." in k}
    eq.pop("*", None)                   # see Calibration.equatorial_distance
    eq_counts.pop("*", None)
    return Calibration(distances=axial, counts=counts, source=dict(source or {}), equatorial=eq,
                       equatorial_counts=eq_counts, angles=angle, angle_counts=angle_counts)


def axial_distances_of(results_file: str | Path, geometry_step: str = "dft_relax") -> tuple[list, list, np.ndarray]:
    """(names, ligand SMILES, mean axial metal-donor distance of the final geometry) of the rows of a results
    file whose `geometry_step` succeeded (a later step, such as the CASSCF on that geometry, may have failed);
    of the finished rows when the file has no such step."""
    from .. import store

    table = store.read_results(results_file, ["task_id", "name", "smiles", "status", "axial_distance_mean"])
    with store.open_checked(results_file, "results") as h5:
        steps = store.read_table(h5["steps"]) if "steps" in h5 and len(h5["steps"]) else None
    if steps is not None and (steps["step"] == geometry_step).any():
        done = set(steps.loc[(steps["step"] == geometry_step) & (steps["status"] == "ok"), "task_id"])
        keep = table["task_id"].isin(done)
    else:
        keep = table["status"] == "ok"
    done = table[keep & table["axial_distance_mean"].notna()]
    return done["name"].tolist(), done["smiles"].tolist(), done["axial_distance_mean"].to_numpy(float)


@lru_cache(maxsize=1)
def shipped() -> Calibration:
    """The calibration shipped with the package (gauss_hpc/donor_distances.json)."""
    source = resources.files("gauss_hpc").joinpath(CALIBRATION)
    if not source.is_file():
        raise FileNotFoundError(f"no fast-tier calibration is shipped yet (gauss_hpc/{CALIBRATION}): fit one from DFT-"
                                "tier results with `python bench/geometry_tiers.py RESULTS.h5 --write-calibration`, "
                                "or give axial_distances in Angstrom")
    return Calibration(**json.loads(source.read_text()))         # the keys of Calibration.to_dict
