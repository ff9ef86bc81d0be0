"""3D geometry of a free ligand from its SMILES (RDKit ETKDG, then MMFF94 or UFF).

The atom order keeps RDKit's: heavy atoms in SMILES order, explicit hydrogens after them, so the donor — the
first SMILES atom by the convention of ligands.h5 — is atom 0 of the returned geometry.
"""

from __future__ import annotations

import functools

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import AllChem


def molecule_with_hydrogens(smiles: str) -> Chem.Mol:
    """RDKit molecule with explicit hydrogens, atom 0 = first SMILES atom; ValueError if unparsable."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise ValueError(f"ligand SMILES {smiles!r}: empty")
    with rdBase.BlockLogs():     # failures are reported through our own ValueError naming the SMILES
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"ligand SMILES {smiles!r}: RDKit cannot parse it")
    return Chem.AddHs(mol)


def embed_ligand(smiles: str, seed: int = 0, *, max_iterations: int = 500) -> Chem.Mol:
    """RDKit molecule with explicit H and one 3D conformer: ETKDG embedding with a fixed seed (reproducible),
    then MMFF94 where it has parameters, UFF otherwise. Raises ValueError naming the SMILES when it cannot be
    parsed, embedded or force-field typed."""
    mol = molecule_with_hydrogens(smiles)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True     # strained cages embed from random coordinates and more iterations
        params.maxIterations = 2000
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise ValueError(f"ligand SMILES {smiles!r}: RDKit could not embed a 3D conformer")
    if mol.GetNumAtoms() > 1:
        if AllChem.MMFFHasAllMoleculeParams(mol):
            AllChem.MMFFOptimizeMolecule(mol, maxIters=max_iterations)
        elif AllChem.UFFHasAllMoleculeParams(mol):
            AllChem.UFFOptimizeMolecule(mol, maxIters=max_iterations)
        else:
            raise ValueError(f"ligand SMILES {smiles!r}: neither MMFF94 nor UFF has parameters for it")
    if not np.isfinite(mol.GetConformer().GetPositions()).all():
        raise ValueError(f"ligand SMILES {smiles!r}: the force field produced non-finite coordinates")
    return mol


def ligand_geometry(smiles: str, seed: int = 0, *, max_iterations: int = 500) -> tuple[list[str], np.ndarray, int]:
    """(symbols, coordinates (n, 3) in Angstrom, total formal charge) of one conformer of `smiles` (see
    embed_ligand); the donor, the first SMILES atom, is atom 0."""
    mol = embed_ligand(smiles, seed, max_iterations=max_iterations)
    symbols = [atom.GetSymbol() for atom in mol.GetAtoms()]
    coords = np.asarray(mol.GetConformer().GetPositions(), dtype=float)
    return symbols, coords, int(Chem.GetFormalCharge(mol))


@functools.lru_cache(maxsize=4096)
def ligand_molblock(smiles: str, seed: int = 0) -> str:
    """MDL mol block of the same conformer as ligand_geometry (explicit H, formal charges, same atom order)."""
    return Chem.MolToMolBlock(embed_ligand(smiles, seed))
