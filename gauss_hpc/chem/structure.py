"""The complex as data: `Complex` (a geometry with the roles of its atoms), the error an assembly or a relaxation
raises, and what needs nothing but the geometry (the metal's spin, another metal on the same geometry, the atom
ranges of the ligands). A leaf: every module that handles complexes (assembly, descriptors, the backends) imports it,
and it imports none of them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..abinitio.constants import LANTHANIDES


@dataclass
class Complex:
    """A complex geometry with the roles of its atoms (indices are 0-based into `symbols`)."""

    name: str
    symbols: list[str]
    coords: np.ndarray                     # (n_atoms, 3), Angstrom
    charge: int
    multiplicity: int
    metal_index: int
    equatorial_donors: list[int]
    axial_donors: list[int]
    ligand_smiles: list[str] = field(default_factory=list)   # axial ligands, donor atom first
    equatorial_smiles: list[str] = field(default_factory=list)   # equatorial ligands in order; empty: all water

    def __post_init__(self):
        self.coords = np.asarray(self.coords, dtype=float).reshape(-1, 3)
        if len(self.symbols) != len(self.coords):
            raise ValueError(f"complex {self.name}: {len(self.symbols)} symbols but {len(self.coords)} coordinates")

    @property
    def metal(self) -> str:
        return self.symbols[self.metal_index]

    def to_xyz(self, comment: str | None = None) -> str:
        lines = [str(len(self.symbols)), comment if comment is not None else
                 f"{self.name} charge={self.charge} multiplicity={self.multiplicity}"]
        lines += [f"{s:<2} {x:14.8f} {y:14.8f} {z:14.8f}" for s, (x, y, z) in zip(self.symbols, self.coords)]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {"name": self.name, "symbols": list(self.symbols), "coords": self.coords.tolist(),
                "charge": int(self.charge), "multiplicity": int(self.multiplicity),
                "metal_index": int(self.metal_index), "equatorial_donors": [int(i) for i in self.equatorial_donors],
                "axial_donors": [int(i) for i in self.axial_donors], "ligand_smiles": list(self.ligand_smiles),
                "equatorial_smiles": list(self.equatorial_smiles)}

    @classmethod
    def from_dict(cls, data: dict) -> "Complex":
        return cls(**data)


class AssemblyError(ValueError):
    """A complex could not be built or failed a sanity check; the message names the ligand and the problem and
    `reason` (one of chem.complexes.REASONS) classes it."""

    def __init__(self, message: str, reason: str = "invalid_input"):
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):          # keep the reason across processes (assemble_many with workers)
        return type(self), (str(self), self.reason)


def metal_multiplicity(metal: str, oxidation_state: int = 3) -> int:
    """High-spin multiplicity of a lanthanide ion 4f^n (Hund: n unpaired up to 7), or 1 for closed-shell
    Y(III), Sc(III), La(III), Lu(III). Dy(III) 4f9 -> 6, Gd(III) 4f7 -> 8, Y(III) -> 1."""
    if metal in ("Y", "Sc") and oxidation_state == 3:
        return 1
    if metal in LANTHANIDES:
        n_f = 57 + LANTHANIDES.index(metal) - 54 - oxidation_state
        if 0 <= n_f <= 14:
            return min(n_f, 14 - n_f) + 1
    raise AssemblyError(f"metal {metal}({oxidation_state}): no spin rule; pass multiplicity= explicitly")


def ligand_blocks(cx: Complex) -> list[slice]:
    """Atom ranges of the ligands in the order `assemble` writes them (metal first, then each ligand from its
    donor up to the next ligand's donor): equatorial ligands first, then axial ones."""
    donors = sorted(list(cx.equatorial_donors) + list(cx.axial_donors))
    return [slice(a, b) for a, b in zip(donors, donors[1:] + [len(cx.symbols)])]


def swap_metal(cx: Complex, metal: str, *, oxidation_state: int = 3, multiplicity: int | None = None,
               name: str | None = None) -> Complex:
    """The same geometry with another metal (Dy -> Y for DFT optimisation, as in the published protocol); the
    multiplicity is recomputed for the new ion (Y(III) singlet, Gd(III) octet). `cx` is taken as M(III): the
    charge changes only if `oxidation_state` is not 3."""
    symbols = list(cx.symbols)
    symbols[cx.metal_index] = metal
    return Complex(name=name or f"{cx.name}_{metal}", symbols=symbols, coords=cx.coords.copy(),
                   charge=int(cx.charge - 3 + oxidation_state),
                   multiplicity=int(multiplicity or metal_multiplicity(metal, oxidation_state)),
                   metal_index=cx.metal_index, equatorial_donors=list(cx.equatorial_donors),
                   axial_donors=list(cx.axial_donors), ligand_smiles=list(cx.ligand_smiles),
                   equatorial_smiles=list(cx.equatorial_smiles))
