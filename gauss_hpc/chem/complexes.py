"""Assembly of [M(eq)5L2] complexes with molSimplify's structure generator called in-process (`assemble`), and the
sanity checks of a geometry. The complex itself (`Complex`, `swap_metal`, `AssemblyError`) is chem/structure.py."""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from rdkit import Chem, rdBase

from .geometry import ligand_molblock
from .ligands import MAX_SMILES_LENGTH
from .structure import AssemblyError, Complex, ligand_blocks, metal_multiplicity, swap_metal  # noqa: F401 (re-exported)


# --- assembly -------------------------------------------------------------------------------------------------


# Geometries whose last two molSimplify positions are trans ("axial"): name -> coordination number.
AXIAL_GEOMETRIES = {"pbp": 7, "oct": 6}
WATER = "O"
# Closest allowed contact between atoms of different ligands, as a fraction of the sum of Bondi vdW radii.
CLASH_SCALE = 0.7
_VDW = {"H": 1.20, "C": 1.70, "N": 1.55, "O": 1.52, "F": 1.47, "P": 1.80, "S": 1.80, "Cl": 1.75, "Br": 1.85,
        "I": 1.98, "B": 1.92, "Si": 2.10, "Se": 1.90}


# Why an assembly failed (AssemblyError.reason): bad arguments or ligand; molSimplify failed or returned other
# atoms; the final geometry binds another ligand atom, folds an axial ligand into the plane, puts atoms of two
# ligands (or a non-donor atom and the metal) too close; the xTB relaxation failed, did not converge, or changed
# a ligand's bonds, let a donor go or bound a second atom of a ligand to the metal (chelated: a monodentate model
# does not describe the complex any more).
REASONS = ("invalid_input", "molsimplify", "wrong_donor", "folded", "clash", "metal_contact", "xtb_failed",
           "xtb_not_converged", "bonds_changed", "donor_lost", "chelated")
# How `assemble` may reach a geometry that passes check_geometry, cheapest first; `relax` says how far it goes:
# "none" keeps molSimplify's geometry (axial ligands turned about the metal-donor axis), "rotate" also
# re-orients the axial ligands as rigid bodies, first in their own conformer, then choosing among RDKit
# conformers of them; "xtb" then relaxes the complex with GFN2-xTB (Y analogue).
ASSEMBLY_PATHS = {"none": ("direct",), "rotate": ("direct", "rotated", "conformer"),
                  "xtb": ("direct", "rotated", "conformer", "xtb_relaxed")}
# The default of assemble(relax=...), and so of the assemble step of job specs: the rigid paths cost a second;
# an xTB relaxation of a 50-atom complex costs roughly a CPU second per L-BFGS step (minutes), so it is asked for.
RELAX = "rotate"
RELAX_MAX_STEPS = 300        # L-BFGS steps of the xTB relaxation
CONFORMERS = 10              # RDKit conformers per axial ligand tried by the "conformer" path


@functools.lru_cache(maxsize=4096)
def _ligand_info(smiles: str) -> tuple[tuple[str, ...], int]:
    """(element symbols with explicit H in RDKit order, formal charge) of one ligand SMILES."""
    with rdBase.BlockLogs():      # RDKit's own parse chatter; the AssemblyError says it clearly
        mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) and 0 < len(smiles) <= MAX_SMILES_LENGTH else None
    if mol is None:
        raise AssemblyError(f"ligand {smiles!r}: not a valid SMILES")
    mol = Chem.AddHs(mol)
    return tuple(a.GetSymbol() for a in mol.GetAtoms()), int(Chem.GetFormalCharge(mol))


@functools.lru_cache(maxsize=1)
def _molsimplify_library() -> tuple[list[str], set[str]]:
    with np.errstate():             # molSimplify's modules change NumPy's error state on import
        from molSimplify.Scripts.io import getlicores
        licores = getlicores()
    groups = {g for entry in licores.values() for g in entry[3]}
    return list(licores), groups


def _check_not_library_name(token: str) -> None:
    """molSimplify reads a ligand argument as a library name when it equals or merely resembles one (difflib
    ratio > 0.6) before it looks for a file; refuse such an argument rather than build a different ligand."""
    names, groups = _molsimplify_library()
    matcher = difflib.SequenceMatcher(None, b=token)
    similar = []
    for name in names:
        matcher.set_seq1(name)
        if matcher.real_quick_ratio() > 0.6 and matcher.quick_ratio() > 0.6 and matcher.ratio() > 0.6:
            similar.append(name)       # the quick ratios bound ratio() from above: most names stop there
    if token in names or token.lower() in groups or similar:
        raise AssemblyError(f"ligand file {token!r}: molSimplify would read it as its library ligand "
                            f"{(similar or [token])[0]!r}; set TMPDIR to another directory")


def _run_molsimplify(inputs: dict, seed: int = 0):
    """In-process molSimplify structure generation, its chatter silenced; returns the mol3D. molSimplify draws
    ligand orientations from Python's and NumPy's global generators: seed both for a reproducible structure
    and give the caller's generator states back afterwards. It also replaces sys.argv and sets NumPy to raise on
    every floating-point warning, underflow included, for the whole process (a later crystal field on an exactly
    axial complex then failed with "underflow encountered in matmul"): both given back too."""
    import random
    import sys

    py_state, np_state, argv = random.getstate(), np.random.get_state(), list(sys.argv)
    random.seed(seed)
    np.random.seed(seed)
    try:
        with np.errstate(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            from molSimplify.Scripts.generator import startgen_pythonic
            from openbabel import openbabel
            openbabel.obErrorLog.SetOutputLevel(0)     # kekulization warnings on aromatic rings are expected
            _, error, diag = startgen_pythonic(inputs, write=False)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        sys.argv = argv
    if error:
        raise AssemblyError(f"molSimplify failed: {str(error).strip()[:300]}", "molsimplify")
    return diag.mol


def _target_distance(spec, role: str, donor: str) -> float | None:
    if spec is None or isinstance(spec, (int, float)):
        return None if spec is None else float(spec)
    if not isinstance(spec, Mapping):
        raise AssemblyError(f"metal_donor_distance {spec!r}: expected a number, a dict or None")
    value = spec.get(role, spec.get(donor))
    return None if value is None else float(value)


def _set_distance(coords: np.ndarray, metal: np.ndarray, block: slice, target: float) -> None:
    """Move one ligand rigidly along the metal->donor direction so that its donor sits at `target` Angstrom."""
    bond = coords[block.start] - metal
    length = np.linalg.norm(bond)
    coords[block] += bond / length * (target - length)


def _bound_besides_donor(cx: Complex, block: slice, margin: float = 0.3,
                         bond_scale: float | None = None) -> str | None:
    """The ligand atom (of the atoms `block`, donor first) nearest the metal when a heavy atom other than the donor
    lies within the donor's distance + `margin` (and, with `bond_scale`, within that times the sum of the covalent
    radii: a bond, not a contact that a long donor bond brings in): "atom O18 of the ligand, 2.22 A from the metal
    (donor O 2.24 A)"; None when the ligand binds through its donor alone."""
    dist = np.linalg.norm(cx.coords[block] - cx.coords[cx.metal_index], axis=1)
    others = np.array([cx.symbols[j] != "H" for j in range(block.start, block.stop)])
    others[0] = False
    limit = np.full(len(dist), dist[0] + margin)
    if bond_scale is not None:
        table = Chem.GetPeriodicTable()
        r_metal = table.GetRcovalent(cx.metal)
        radii = np.array([table.GetRcovalent(cx.symbols[j]) for j in range(block.start, block.stop)])
        limit = np.minimum(limit, bond_scale * (r_metal + radii))
    close = others & (dist < limit)
    if not close.any():
        return None
    j = int(np.flatnonzero(close)[np.argmin(dist[close])])
    return (f"atom {cx.symbols[block.start + j]}{block.start + j} of the ligand, {dist[j]:.2f} A from the metal "
            f"(donor {cx.symbols[block.start]} {dist[0]:.2f} A)")


def check_geometry(cx: Complex, clash_scale: float = CLASH_SCALE) -> None:
    """Raise AssemblyError naming the ligand when a complex is not sane: a ligand bound through an atom other
    than its donor, an axial ligand folded into the equatorial plane, atoms of different ligands (or a
    non-donor atom and the metal) too close."""
    symbols, coords = cx.symbols, cx.coords
    metal = coords[cx.metal_index]
    blocks = ligand_blocks(cx)
    axial = dict(zip(cx.axial_donors, cx.ligand_smiles))
    names = [f"axial ligand {axial[b.start]!r}" if b.start in axial else
             (f"axial ligand {b.start}" if b.start in cx.axial_donors else f"equatorial ligand at atom {b.start}")
             for b in blocks]
    owner = np.full(len(symbols), -1)
    for i, block in enumerate(blocks):
        owner[block] = i
    for block, name in zip(blocks, names):
        dist = np.linalg.norm(coords[block] - metal, axis=1)
        heavy = np.array([symbols[j] != "H" for j in range(block.start, block.stop)])
        bound = _bound_besides_donor(cx, block)
        if bound is not None:
            raise AssemblyError(f"{cx.name}: {name}: {bound}, is bound instead of or besides the donor", "wrong_donor")
        if block.start in cx.axial_donors:
            axis = (coords[block.start] - metal) / dist[0]
            height = (coords[block][heavy] - metal) @ axis
            if height.min() < 0.5 * dist[0]:
                raise AssemblyError(f"{cx.name}: {name}: folded into the equatorial plane (a heavy atom "
                                    f"{height.min():.2f} A above it, the donor {dist[0]:.2f} A)", "folded")
    radii = np.array([_VDW.get(s, 2.0) for s in symbols])
    dist = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    different = (owner[:, None] != owner[None, :]) & (owner[:, None] >= 0) & (owner[None, :] >= 0)
    limit = clash_scale * (radii[:, None] + radii[None, :])
    bad = np.argwhere(different & (dist < limit))
    if len(bad):
        i, j = bad[0]
        raise AssemblyError(f"{cx.name}: clash between {names[owner[i]]} and {names[owner[j]]}: atoms "
                            f"{symbols[i]}{i} and {symbols[j]}{j} are {dist[i, j]:.2f} A apart "
                            f"(< {limit[i, j]:.2f} A)", "clash")
    to_metal = np.linalg.norm(coords - metal, axis=1)
    donors = set(cx.equatorial_donors) | set(cx.axial_donors)
    near = [j for j in np.flatnonzero((to_metal < 1.8) & (owner >= 0)) if j not in donors]
    if near:
        j = near[0]
        raise AssemblyError(f"{cx.name}: {names[owner[j]]}: atom {symbols[j]}{j} is {to_metal[j]:.2f} A "
                            "from the metal", "metal_contact")


def _rotations(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotation matrices (n, 3, 3) by `angles` (radians) about the unit vector `axis` (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return (np.eye(3)[None] + np.sin(angles)[:, None, None] * k
            + (1 - np.cos(angles))[:, None, None] * (k @ k))


def _turn_ligands(symbols, coords: np.ndarray, blocks: list[slice], among: slice | None = None) -> None:
    """Turn each ligand of `blocks` (in order) about its metal-donor axis to the angle (10 degree steps) that keeps
    it farthest, in units of vdW contact, from the other ligands (those within the atoms `among`, default all):
    molSimplify leaves that rotation to chance, and bulky 2,6-substituted rings otherwise poke into the waters
    (axial ligands), five pyridines in one plane into each other (equatorial ones)."""
    radii = np.array([_VDW.get(s, 2.0) for s in symbols])
    angles = np.radians(np.arange(0, 360, 10))
    metal = coords[0]
    considered = np.zeros(len(symbols), bool)
    considered[among if among is not None else slice(None)] = True
    for block in blocks:
        axis = coords[block.start] - metal
        axis /= np.linalg.norm(axis)
        others = considered.copy()
        others[block] = False
        others[0] = False
        rel = coords[block] - coords[block.start]
        trial = np.einsum("aij,nj->ani", _rotations(axis, angles), rel) + coords[block.start]      # (36, n, 3)
        dist = np.linalg.norm(trial[:, :, None, :] - coords[others][None, None], axis=-1)
        contact = dist / (radii[block][:, None] + radii[others][None, :])
        coords[block] = trial[int(np.argmax(contact.min(axis=(1, 2))))]


_SPINS = np.radians(np.arange(0, 360, 10))
# (tilt, azimuth) of the ligand's lone-pair axis away from the metal-donor axis: upright first, then up to 30
# degrees (donors of Ln complexes are often bound off their lone-pair axis; more would bend them implausibly)
_TILTS = [(0.0, 0.0)] + [(np.radians(t), np.radians(a)) for t in (10, 20, 30) for a in range(0, 360, 30)]


def _bonded(symbols: Sequence[str], coords: np.ndarray, scale: float = 1.25) -> np.ndarray:
    """Boolean (n, n) matrix of covalent bonds: distance below `scale` times the sum of covalent radii."""
    table = Chem.GetPeriodicTable()
    rcov = np.array([table.GetRcovalent(s) for s in symbols])
    dist = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    bonded = dist < scale * (rcov[:, None] + rcov[None, :])
    np.fill_diagonal(bonded, False)
    return bonded


def _align(u: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The rotation matrix taking unit vector u onto unit vector a (the shortest turn)."""
    axis = np.cross(u, a)
    sin, cos = np.linalg.norm(axis), float(u @ a)
    if sin < 1e-9:           # parallel, or antiparallel: half a turn about any perpendicular axis
        perpendicular = np.cross(u, [1.0, 0, 0] if abs(u[0]) < 0.9 else [0, 1.0, 0])
        return np.eye(3) if cos > 0 else _rotations(perpendicular / np.linalg.norm(perpendicular), np.array([np.pi]))[0]
    return _rotations(axis / sin, np.array([np.arctan2(sin, cos)]))[0]


def _best_orientation(symbols, coords: np.ndarray, block: slice, shape: np.ndarray,
                      radii: np.ndarray) -> tuple[float, np.ndarray | None]:
    """Place one axial ligand of the given shape (coordinates relative to its donor) as a rigid body on its donor
    (bond lengths, angles and the metal-donor distance stay): the donor's lone-pair direction (away from its
    bonded neighbours) points at the metal, tilted by up to 30 degrees, and the spin about it is free. Of these
    1,332 orientations the one farthest, in units of vdW contact, from the other ligands wins among those that
    check_geometry's wrong-donor, metal-contact and folding rules allow: (contact, coordinates), or (-inf, None)
    when none is allowed (a conformer folded back over its donor)."""
    metal, donor = coords[0], coords[block.start]
    d0 = np.linalg.norm(metal - donor)
    to_metal = (metal - donor) / d0
    lig_symbols = symbols[block]
    neighbours = _bonded(lig_symbols, shape)[0]
    lone_pair = -(shape[neighbours] / np.linalg.norm(shape[neighbours], axis=1)[:, None]).sum(axis=0)
    if np.linalg.norm(lone_pair) > 0.3:          # none for a bare atom or three neighbours in a plane
        shape = shape @ _align(lone_pair / np.linalg.norm(lone_pair), to_metal).T
    e1 = np.cross(to_metal, [1.0, 0, 0] if abs(to_metal[0]) < 0.9 else [0, 1.0, 0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(to_metal, e1)
    spins = _rotations(to_metal, _SPINS)
    rotations = np.concatenate([np.einsum("ij,ajk->aik", _rotations(np.cos(az) * e1 + np.sin(az) * e2,
                                                                     np.array([tilt]))[0], spins)
                                for tilt, az in _TILTS])                               # (1332, 3, 3)
    trial = np.einsum("aij,nj->ani", rotations, shape) + donor
    heavy = np.array([s != "H" for s in lig_symbols])
    not_donor = np.arange(len(lig_symbols)) > 0
    dist_metal = np.linalg.norm(trial - metal, axis=-1)
    height = (trial - metal) @ -to_metal
    allowed = ((dist_metal[:, heavy & not_donor] >= d0 + 0.3).all(axis=1)
               & (dist_metal[:, not_donor] >= 1.8).all(axis=1) & (height[:, heavy] >= 0.5 * d0).all(axis=1))
    if not allowed.any():
        return -np.inf, None
    others = np.ones(len(symbols), bool)
    others[block] = False
    others[0] = False
    dist = np.linalg.norm(trial[allowed][:, :, None, :] - coords[others][None, None], axis=-1)
    contact = (dist / (radii[block][:, None] + radii[others][None, :])).min(axis=(1, 2))
    best = int(np.argmax(contact))
    return float(contact[best]), trial[allowed][best]


def _orient_axial_ligands(symbols, coords: np.ndarray, blocks: list[slice], n_equatorial: int,
                          shapes: list[list[np.ndarray]] | None = None) -> None:
    """The "rotated" path (shapes None: each axial ligand keeps its own conformer) and the "conformer" path
    (shapes: candidate conformers per axial ligand, coordinates relative to the donor): each axial ligand goes to
    the best placement of _best_orientation over its shapes; where none is allowed it stays, and check_geometry
    says what is wrong. Two sweeps, as each ligand moves in the other's way."""
    radii = np.array([_VDW.get(s, 2.0) for s in symbols])
    for _ in range(2):
        for k, block in enumerate(blocks[n_equatorial:]):
            candidates = (shapes[k] if shapes else None) or [coords[block] - coords[block.start]]
            placements = [_best_orientation(symbols, coords, block, shape, radii) for shape in candidates]
            _, placed = max(placements, key=lambda item: item[0])
            if placed is not None:
                coords[block] = placed


def _conformer_shapes(smiles: str, n: int, seed: int) -> list[np.ndarray]:
    """Up to n RDKit conformers of a ligand (ETKDG, seeded; MMFF94, else UFF), coordinates relative to the donor
    and atoms in the order of the complex: molSimplify keeps the one conformer it is given, and a flexible
    ligand's may fold back over its donor or swing a branch into the waters."""
    from rdkit.Chem import AllChem

    from .geometry import molecule_with_hydrogens

    mol = molecule_with_hydrogens(smiles)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed) + 1         # with random seed 0 EmbedMultipleConfs returns n equal conformers
    ids = list(AllChem.EmbedMultipleConfs(mol, int(n), params))
    if mol.GetNumAtoms() > 1 and ids:
        if AllChem.MMFFHasAllMoleculeParams(mol):
            AllChem.MMFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=500)
        elif AllChem.UFFHasAllMoleculeParams(mol):
            AllChem.UFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=500)
    shapes = [np.asarray(mol.GetConformer(i).GetPositions(), float) for i in ids]
    return [shape - shape[0] for shape in shapes if np.isfinite(shape).all()]


def check_relaxation(before: Complex, after: Complex, max_donor_distance: float = 3.0, method: str = "xTB") -> None:
    """AssemblyError when a relaxation (by `method`) made another molecule of the complex: a bond formed or broke
    (a proton moved from a water to an anionic ligand, a ring opened), a donor left the metal, or a ligand came to
    bind through a second atom (chelated: nitrite or acetate through both O, CF3O- through O and F)."""
    ligand_atoms = np.arange(len(before.symbols)) != before.metal_index
    symbols = [s for s, keep in zip(before.symbols, ligand_atoms) if keep]
    changed = np.argwhere(np.triu(_bonded(symbols, before.coords[ligand_atoms])
                                  != _bonded(symbols, after.coords[ligand_atoms])))
    if len(changed):
        i, j = (int(k) + (k >= before.metal_index) for k in changed[0])
        d0, d1 = (np.linalg.norm(c[i] - c[j]) for c in (before.coords, after.coords))
        raise AssemblyError(f"{after.name}: the {method} relaxation changed the bonds ({len(changed)} atom pairs), e.g. "
                            f"{before.symbols[i]}{i}-{before.symbols[j]}{j} {d0:.2f} -> {d1:.2f} A", "bonds_changed")
    donors = list(after.equatorial_donors) + list(after.axial_donors)
    far = np.linalg.norm(after.coords[donors] - after.coords[after.metal_index], axis=1)
    if far.max() > max_donor_distance:
        k = donors[int(np.argmax(far))]
        raise AssemblyError(f"{after.name}: the {method} relaxation moved donor {after.symbols[k]}{k} {far.max():.2f} A "
                            f"from the metal (> {max_donor_distance} A)", "donor_lost")
    for block in ligand_blocks(after):       # a bond (1.05 x covalent radii: Dy-O 2.71 A, Dy-N 2.76 A), not a contact
        if _bound_besides_donor(before, block, bond_scale=1.05) is None:    # one the input already had stays
            bound = _bound_besides_donor(after, block, bond_scale=1.05)
            if bound is not None:
                raise AssemblyError(f"{after.name}: the {method} relaxation bound {bound}: the ligand chelates, "
                                    "which a monodentate model does not describe", "chelated")


# A relaxation of a whole complex for the "xtb_relaxed" path: (complex, max_steps) -> the relaxed complex, or
# AssemblyError with reason xtb_failed / xtb_not_converged. It is passed in (abinitio.xtb.relax_for_assembly):
# this module builds on chem/structure only, and the backends build on it.
Relaxer = Callable[[Complex, int], Complex]


def _relaxed(cx: Complex, relaxer: Relaxer, max_steps: int) -> Complex:
    """The "xtb_relaxed" path: the relaxer's geometry, refused when it is another molecule (check_relaxation)."""
    relaxed = relaxer(cx, max_steps)
    check_relaxation(cx, relaxed)
    return relaxed


@dataclass
class Assembly:
    """What `assemble_detailed` built: the complex, the path that produced its geometry ("direct", "rotated",
    "conformer" or "xtb_relaxed"), the cheaper paths that failed before it as (path, AssemblyError), seconds spent
    per path."""

    complex: Complex
    path: str
    rejected: list[tuple[str, AssemblyError]]
    seconds: dict[str, float]


def _default_name(metal: str, equatorial: str, n_equatorial: int, axial: Sequence[str], geometry: str) -> str:
    key = "|".join([metal, geometry, f"{n_equatorial}x{equatorial}", *axial])
    return f"{metal}_{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def assemble(axial: str | Sequence[str], *, metal: str = "Dy", equatorial: str = WATER, n_equatorial: int = 5,
             geometry: str = "pbp", metal_donor_distance: float | Mapping[str, float] | None = None,
             oxidation_state: int = 3, multiplicity: int | None = None, name: str | None = None,
             clash_scale: float = CLASH_SCALE, seed: int = 0, relax: str = RELAX,
             relax_max_steps: int = RELAX_MAX_STEPS, relaxer: Relaxer | None = None) -> Complex:
    """[M(equatorial)_n(axial)_2] with molSimplify, each ligand bound through its first SMILES atom.

    axial: one SMILES (used for both axial sites) or one per axial site. metal_donor_distance: None keeps
    molSimplify's bond lengths (2.40 A for Dy-O); a number sets every M-donor distance; a dict sets them by role
    ("axial", "equatorial") or donor element ("O", "N"), role first. relax: how far to go when molSimplify's
    geometry fails the checks (ASSEMBLY_PATHS; default RELAX): "none", "rotate" (re-orient the axial ligands as
    rigid bodies, also as other RDKit conformers) or "xtb" (then a GFN2-xTB relaxation of the Y analogue of up
    to `relax_max_steps` steps; metal_donor_distance is imposed again afterwards). Raises AssemblyError naming the ligand and the problem, with its `reason` (REASONS):
    invalid SMILES, molSimplify failure, wrong atom bound, axial ligand folded into the plane, clash, failed
    relaxation. The same arguments and `seed` give the same structure; `assemble_detailed` also says which path
    produced it.
    """
    return assemble_detailed(axial, metal=metal, equatorial=equatorial, n_equatorial=n_equatorial,
                             geometry=geometry, metal_donor_distance=metal_donor_distance,
                             oxidation_state=oxidation_state, multiplicity=multiplicity, name=name,
                             clash_scale=clash_scale, seed=seed, relax=relax, relax_max_steps=relax_max_steps,
                             relaxer=relaxer).complex


def assemble_detailed(axial: str | Sequence[str], *, metal: str = "Dy", equatorial: str = WATER,
                      n_equatorial: int = 5, geometry: str = "pbp",
                      metal_donor_distance: float | Mapping[str, float] | None = None, oxidation_state: int = 3,
                      multiplicity: int | None = None, name: str | None = None, clash_scale: float = CLASH_SCALE,
                      seed: int = 0, relax: str = RELAX, relax_max_steps: int = RELAX_MAX_STEPS,
                      relaxer: Relaxer | None = None) -> Assembly:
    """`assemble` (same arguments), returning an Assembly: the complex and the path that produced it. Paths are
    tried cheapest first and only while the geometry fails check_geometry: "direct" (molSimplify, axial ligands
    turned about the metal-donor axis), "rotated" (axial ligands re-oriented as rigid bodies), "conformer" (the
    same with CONFORMERS RDKit conformers of each axial ligand), "xtb_relaxed" (`relaxer`, e.g.
    abinitio.xtb.relax_for_assembly: GFN2-xTB, minutes; relax = "xtb" needs it). The error of the last path tried
    is raised, naming the others."""
    clock = time.perf_counter()
    if relax not in ASSEMBLY_PATHS:
        raise AssemblyError(f"relax {relax!r}: expected one of {sorted(ASSEMBLY_PATHS)}")
    if "xtb_relaxed" in ASSEMBLY_PATHS[relax] and relaxer is None:
        raise AssemblyError(f"relax {relax!r} needs relaxer=gauss_hpc.abinitio.xtb.relax_for_assembly (or another "
                            "(complex, max_steps) -> complex); the job step assemble passes it")
    if geometry not in AXIAL_GEOMETRIES:
        raise AssemblyError(f"geometry {geometry!r}: expected one of {sorted(AXIAL_GEOMETRIES)}")
    n_axial = AXIAL_GEOMETRIES[geometry] - n_equatorial
    axial = [axial] * n_axial if isinstance(axial, str) else list(axial)
    if n_axial != 2 or len(axial) != n_axial:
        raise AssemblyError(f"geometry {geometry} with {n_equatorial} equatorial ligands has {n_axial} axial "
                            f"sites; got {len(axial)} axial ligands {axial}")
    ligands = [equatorial] * n_equatorial + axial
    info = {smi: _ligand_info(smi) for smi in set(ligands)}
    if multiplicity is None:
        multiplicity = metal_multiplicity(metal, oxidation_state)

    # Water comes from molSimplify's library (with its hydrogens). Every other ligand goes in as a mol file of
    # its RDKit conformer (ligand_molblock: seeded, so the complex is reproducible, and in our atom order);
    # molSimplify binds it through atom 1 (-smicat).
    distinct_axial = list(dict.fromkeys(axial))
    from_files = ([] if equatorial == WATER else [equatorial]) + distinct_axial
    occupancies = [n_equatorial] + [axial.count(smi) for smi in distinct_axial]
    label = f"[{metal}({equatorial}){n_equatorial}({')('.join(axial)})]"
    with tempfile.TemporaryDirectory(prefix="gauss-assemble-") as tmp:
        tokens = ["water"] if equatorial == WATER else []
        for k, smi in enumerate(from_files):
            try:
                block = ligand_molblock(smi, seed)
            except ValueError as exc:
                raise AssemblyError(f"{label}: {exc}") from None
            path = Path(tmp) / f"ligand{k}.mol"
            path.write_text(block)
            if any(c in str(path) for c in " ,~"):
                raise AssemblyError(f"temporary directory {tmp!r}: molSimplify cannot take paths with spaces, "
                                    "commas or '~'; set TMPDIR to a plain path")
            _check_not_library_name(str(path))
            tokens.append(str(path))
        inputs = {"-core": metal, "-geometry": geometry, "-coord": str(AXIAL_GEOMETRIES[geometry]),
                  "-lig": " ".join(tokens), "-ligocc": " ".join(map(str, occupancies)),
                  "-smicat": "[" + ",".join(["[1]"] * len(from_files)) + "]", "-oxstate": str(oxidation_state),
                  # our ligands come with their charge: molSimplify would otherwise take an H off a donor that
                  # matches its deprotonation patterns (the N-H of an amidate [NH-]C(=O)...) and lose atoms
                  "-keepHs": " ".join((["auto"] if equatorial == WATER else []) + ["yes"] * len(from_files)),
                  "-spin": str(multiplicity), "-skipANN": "True"}
        try:
            mol = _run_molsimplify(inputs, seed)
        except AssemblyError as exc:
            raise AssemblyError(f"{label}: {exc}", exc.reason) from None
        except Exception as exc:      # molSimplify raises anything from IndexError to KeyError on odd ligands
            raise AssemblyError(f"{label}: molSimplify raised {type(exc).__name__}: {exc}", "molsimplify") from None
    symbols = [atom.symbol() for atom in mol.atoms]
    coords = np.array([atom.coords() for atom in mol.atoms], dtype=float)

    # molSimplify order: metal, then the ligands by token and occupancy; order our ligand list the same way
    placed = [equatorial] * n_equatorial + [s for s in dict.fromkeys(axial) for _ in range(axial.count(s))]
    expected = 1 + sum(len(info[s][0]) for s in placed)
    if symbols[0] != metal or len(symbols) != expected:
        raise AssemblyError(f"{label}: molSimplify returned {len(symbols)} atoms starting with {symbols[:1]}, "
                            f"expected {expected} starting with {metal} (a ligand lost or gained atoms)",
                            "molsimplify")
    blocks, start = [], 1
    for smi in placed:
        n = len(info[smi][0])
        block = slice(start, start + n)
        if tuple(symbols[block]) != info[smi][0]:
            raise AssemblyError(f"{label}: ligand {smi!r} came back with atoms {symbols[block]}, "
                                f"expected {list(info[smi][0])}", "molsimplify")
        blocks.append(block)
        start += n

    targets = []
    for i, (block, smi) in enumerate(zip(blocks, placed)):
        role = "equatorial" if i < n_equatorial else "axial"
        target = _target_distance(metal_donor_distance, role, symbols[block.start])
        if target is not None:
            if not 1.5 <= target <= 4.0:
                raise AssemblyError(f"metal_donor_distance {target} A for {role} {smi!r}: outside 1.5-4.0 A")
            targets.append((block, target))
    for block, target in targets:
        _set_distance(coords, coords[0], block, target)
    if equatorial != WATER:       # among themselves (the axial ligands move later), two sweeps: each turn
        _turn_ligands(symbols, coords, blocks[:n_equatorial] * 2,     # changes what its neighbours see
                      slice(0, blocks[n_equatorial].start))
    _turn_ligands(symbols, coords, blocks[n_equatorial:])
    charge = oxidation_state + sum(info[s][1] for s in placed)
    cx = Complex(name=name or _default_name(metal, equatorial, n_equatorial, axial, geometry),
                 symbols=symbols, coords=coords, charge=int(charge), multiplicity=int(multiplicity),
                 metal_index=0, equatorial_donors=[b.start for b in blocks[:n_equatorial]],
                 axial_donors=[b.start for b in blocks[n_equatorial:]], ligand_smiles=placed[n_equatorial:],
                 equatorial_smiles=[] if equatorial == WATER else placed[:n_equatorial])

    rejected, seconds = [], {}
    for path in ASSEMBLY_PATHS[relax]:
        try:
            if path in ("rotated", "conformer"):
                cx = Complex.from_dict(cx.to_dict())
                shapes = ([_conformer_shapes(smi, CONFORMERS, seed) for smi in cx.ligand_smiles]
                          if path == "conformer" else None)
                _orient_axial_ligands(cx.symbols, cx.coords, blocks, n_equatorial, shapes)
                if equatorial != WATER:       # then the equatorial rings make room for them
                    _turn_ligands(cx.symbols, cx.coords, blocks[:n_equatorial] * 2)
            elif path == "xtb_relaxed":
                cx = _relaxed(cx, relaxer, relax_max_steps)
                for block, target in targets:         # the caller's distances hold for the final geometry too
                    _set_distance(cx.coords, cx.coords[0], block, target)
            check_geometry(cx, clash_scale)
        except AssemblyError as exc:
            rejected.append((path, exc))
            continue
        finally:
            seconds[path] = time.perf_counter() - clock
            clock = time.perf_counter()
        return Assembly(complex=cx, path=path, rejected=rejected, seconds=seconds)
    path, last = rejected[-1]
    tried = "; ".join(f"{p}: {e.reason}" for p, e in rejected[:-1])
    raise AssemblyError(f"{last}" + (f" (on the {path} path; before it {tried})" if tried else ""), last.reason)


def _assemble_or_error(args):
    axial, kwargs = args
    try:
        return assemble(axial, **kwargs)
    except AssemblyError as exc:
        return exc
    except Exception as exc:     # a batch never dies on one ligand; the entry says what happened
        return AssemblyError(f"ligand {axial!r}: {type(exc).__name__}: {exc}")


def assemble_many(axial_ligands: Sequence[str | Sequence[str]], *, workers: int = 1, progress: bool = False,
                  **kwargs) -> list[Complex | AssemblyError]:
    """`assemble` for many ligands, in order; a ligand that cannot be assembled gives its AssemblyError in
    its place instead of stopping the batch. `workers` > 1 spreads the ligands over that many processes
    (molSimplify is pure Python and single-threaded); kwargs go to `assemble`."""
    import concurrent.futures
    import multiprocessing

    from tqdm import tqdm

    jobs = [(axial, kwargs) for axial in axial_ligands]
    if workers <= 1 or len(jobs) < 2:
        return [_assemble_or_error(job) for job in tqdm(jobs, desc="assemble", unit="cx", disable=not progress)]
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = pool.map(_assemble_or_error, jobs, chunksize=max(1, len(jobs) // (8 * workers)))
        return list(tqdm(results, total=len(jobs), desc="assemble", unit="cx", disable=not progress))
