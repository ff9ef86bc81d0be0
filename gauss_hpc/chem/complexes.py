"""[M(eq)5L2] complexes: the data type shared by assembly, descriptors, oracles and ab initio backends."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
                "axial_donors": [int(i) for i in self.axial_donors], "ligand_smiles": list(self.ligand_smiles)}

    @classmethod
    def from_dict(cls, data: dict) -> "Complex":
        return cls(**data)
