"""[M(eq)5L2] complexes: the data type shared by assembly, descriptors, oracles and ab initio backends, and their
assembly with molSimplify's structure generator called in-process (`assemble`, `swap_metal`)."""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from rdkit import Chem, rdBase

from .geometry import ligand_molblock


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


# --- assembly -------------------------------------------------------------------------------------------------


# Geometries whose last two molSimplify positions are trans ("axial"): name -> coordination number.
AXIAL_GEOMETRIES = {"pbp": 7, "oct": 6}
WATER = "O"
# Closest allowed contact between atoms of different ligands, as a fraction of the sum of Bondi vdW radii.
CLASH_SCALE = 0.7
_VDW = {"H": 1.20, "C": 1.70, "N": 1.55, "O": 1.52, "F": 1.47, "P": 1.80, "S": 1.80, "Cl": 1.75, "Br": 1.85,
        "I": 1.98, "B": 1.92, "Si": 2.10, "Se": 1.90}
_LANTHANIDES = ("La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu")


class AssemblyError(ValueError):
    """A complex could not be built or failed a sanity check; the message names the ligand and the problem."""


def metal_multiplicity(metal: str, oxidation_state: int = 3) -> int:
    """High-spin multiplicity of a lanthanide ion 4f^n (Hund: n unpaired up to 7), or 1 for closed-shell
    Y(III), Sc(III), La(III), Lu(III). Dy(III) 4f9 -> 6, Gd(III) 4f7 -> 8, Y(III) -> 1."""
    if metal in ("Y", "Sc") and oxidation_state == 3:
        return 1
    if metal in _LANTHANIDES:
        n_f = 57 + _LANTHANIDES.index(metal) - 54 - oxidation_state
        if 0 <= n_f <= 14:
            return min(n_f, 14 - n_f) + 1
    raise AssemblyError(f"metal {metal}({oxidation_state}): no spin rule; pass multiplicity= explicitly")


@functools.lru_cache(maxsize=4096)
def _ligand_info(smiles: str) -> tuple[tuple[str, ...], int]:
    """(element symbols with explicit H in RDKit order, formal charge) of one ligand SMILES."""
    with rdBase.BlockLogs():      # RDKit's own parse chatter; the AssemblyError says it clearly
        mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) and smiles else None
    if mol is None:
        raise AssemblyError(f"ligand {smiles!r}: not a valid SMILES")
    mol = Chem.AddHs(mol)
    return tuple(a.GetSymbol() for a in mol.GetAtoms()), int(Chem.GetFormalCharge(mol))


@functools.lru_cache(maxsize=1)
def _molsimplify_library() -> tuple[list[str], set[str]]:
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
    and give the caller's generator states back afterwards."""
    import random

    from molSimplify.Scripts.generator import startgen_pythonic
    from openbabel import openbabel
    openbabel.obErrorLog.SetOutputLevel(0)     # kekulization warnings on aromatic rings are expected
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            _, error, diag = startgen_pythonic(inputs, write=False)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    if error:
        raise AssemblyError(f"molSimplify failed: {str(error).strip()[:300]}")
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


def ligand_blocks(cx: Complex) -> list[slice]:
    """Atom ranges of the ligands in the order `assemble` writes them (metal first, then each ligand from its
    donor up to the next ligand's donor): equatorial ligands first, then axial ones."""
    donors = sorted(list(cx.equatorial_donors) + list(cx.axial_donors))
    return [slice(a, b) for a, b in zip(donors, donors[1:] + [len(cx.symbols)])]


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
        others = heavy.copy()
        others[0] = False
        if others.any() and dist[others].min() < dist[0] + 0.3:
            j = int(np.flatnonzero(others)[np.argmin(dist[others])])
            raise AssemblyError(f"{cx.name}: {name}: atom {symbols[block.start + j]}{j} of the ligand, "
                                f"{dist[j]:.2f} A from the metal, is bound instead of or besides the donor "
                                f"{symbols[block.start]} ({dist[0]:.2f} A)")
        if block.start in cx.axial_donors:
            axis = (coords[block.start] - metal) / dist[0]
            height = (coords[block][heavy] - metal) @ axis
            if height.min() < 0.5 * dist[0]:
                raise AssemblyError(f"{cx.name}: {name}: folded into the equatorial plane (a heavy atom "
                                    f"{height.min():.2f} A above it, the donor {dist[0]:.2f} A)")
    radii = np.array([_VDW.get(s, 2.0) for s in symbols])
    dist = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    different = (owner[:, None] != owner[None, :]) & (owner[:, None] >= 0) & (owner[None, :] >= 0)
    limit = clash_scale * (radii[:, None] + radii[None, :])
    bad = np.argwhere(different & (dist < limit))
    if len(bad):
        i, j = bad[0]
        raise AssemblyError(f"{cx.name}: clash between {names[owner[i]]} and {names[owner[j]]}: atoms "
                            f"{symbols[i]}{i} and {symbols[j]}{j} are {dist[i, j]:.2f} A apart "
                            f"(< {limit[i, j]:.2f} A)")
    to_metal = np.linalg.norm(coords - metal, axis=1)
    donors = set(cx.equatorial_donors) | set(cx.axial_donors)
    near = [j for j in np.flatnonzero((to_metal < 1.8) & (owner >= 0)) if j not in donors]
    if near:
        j = near[0]
        raise AssemblyError(f"{cx.name}: {names[owner[j]]}: atom {symbols[j]}{j} is {to_metal[j]:.2f} A "
                            "from the metal")


def _turn_axial_ligands(symbols, coords: np.ndarray, blocks: list[slice], n_equatorial: int) -> None:
    """Turn each axial ligand about its metal-donor axis to the angle (10 degree steps) that keeps it farthest,
    in units of vdW contact, from the other ligands: molSimplify leaves that rotation to chance, and bulky
    2,6-substituted rings otherwise poke into the waters."""
    radii = np.array([_VDW.get(s, 2.0) for s in symbols])
    angles = np.radians(np.arange(0, 360, 10))
    metal = coords[0]
    for block in blocks[n_equatorial:]:
        axis = coords[block.start] - metal
        axis /= np.linalg.norm(axis)
        others = np.ones(len(symbols), bool)
        others[block] = False
        others[0] = False
        rel = coords[block] - coords[block.start]
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rotations = (np.eye(3)[None] + np.sin(angles)[:, None, None] * k
                     + (1 - np.cos(angles))[:, None, None] * (k @ k))              # Rodrigues, (36, 3, 3)
        trial = np.einsum("aij,nj->ani", rotations, rel) + coords[block.start]      # (36, n, 3)
        dist = np.linalg.norm(trial[:, :, None, :] - coords[others][None, None], axis=-1)
        contact = dist / (radii[block][:, None] + radii[others][None, :])
        coords[block] = trial[int(np.argmax(contact.min(axis=(1, 2))))]


def _default_name(metal: str, equatorial: str, n_equatorial: int, axial: Sequence[str], geometry: str) -> str:
    key = "|".join([metal, geometry, f"{n_equatorial}x{equatorial}", *axial])
    return f"{metal}_{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def assemble(axial: str | Sequence[str], *, metal: str = "Dy", equatorial: str = WATER, n_equatorial: int = 5,
             geometry: str = "pbp", metal_donor_distance: float | Mapping[str, float] | None = None,
             oxidation_state: int = 3, multiplicity: int | None = None, name: str | None = None,
             clash_scale: float = CLASH_SCALE, seed: int = 0) -> Complex:
    """[M(equatorial)_n(axial)_2] with molSimplify, each ligand bound through its first SMILES atom.

    axial: one SMILES (used for both axial sites) or one per axial site. metal_donor_distance: None keeps
    molSimplify's bond lengths (2.40 A for Dy-O); a number sets every M-donor distance; a dict sets them by role
    ("axial", "equatorial") or donor element ("O", "N"), role first. Raises AssemblyError naming the ligand and
    the problem: invalid SMILES, molSimplify failure, wrong atom bound, axial ligand folded into the plane, clash.
    The same arguments and `seed` give the same structure.
    """
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
                  "-spin": str(multiplicity), "-skipANN": "True"}
        try:
            mol = _run_molsimplify(inputs, seed)
        except AssemblyError as exc:
            raise AssemblyError(f"{label}: {exc}") from None
        except Exception as exc:      # molSimplify raises anything from IndexError to KeyError on odd ligands
            raise AssemblyError(f"{label}: molSimplify raised {type(exc).__name__}: {exc}") from None
    symbols = [atom.symbol() for atom in mol.atoms]
    coords = np.array([atom.coords() for atom in mol.atoms], dtype=float)

    # molSimplify order: metal, then the ligands by token and occupancy; order our ligand list the same way
    placed = [equatorial] * n_equatorial + [s for s in dict.fromkeys(axial) for _ in range(axial.count(s))]
    expected = 1 + sum(len(info[s][0]) for s in placed)
    if symbols[0] != metal or len(symbols) != expected:
        raise AssemblyError(f"{label}: molSimplify returned {len(symbols)} atoms starting with {symbols[:1]}, "
                            f"expected {expected} starting with {metal} (a ligand lost or gained atoms)")
    blocks, start = [], 1
    for smi in placed:
        n = len(info[smi][0])
        block = slice(start, start + n)
        if tuple(symbols[block]) != info[smi][0]:
            raise AssemblyError(f"{label}: ligand {smi!r} came back with atoms {symbols[block]}, "
                                f"expected {list(info[smi][0])}")
        blocks.append(block)
        start += n

    for i, (block, smi) in enumerate(zip(blocks, placed)):
        role = "equatorial" if i < n_equatorial else "axial"
        target = _target_distance(metal_donor_distance, role, symbols[block.start])
        if target is not None:
            if not 1.5 <= target <= 4.0:
                raise AssemblyError(f"metal_donor_distance {target} A for {role} {smi!r}: outside 1.5-4.0 A")
            _set_distance(coords, coords[0], block, target)
    _turn_axial_ligands(symbols, coords, blocks, n_equatorial)
    charge = oxidation_state + sum(info[s][1] for s in placed)
    cx = Complex(name=name or _default_name(metal, equatorial, n_equatorial, axial, geometry),
                 symbols=symbols, coords=coords, charge=int(charge), multiplicity=int(multiplicity),
                 metal_index=0, equatorial_donors=[b.start for b in blocks[:n_equatorial]],
                 axial_donors=[b.start for b in blocks[n_equatorial:]], ligand_smiles=placed[n_equatorial:])
    check_geometry(cx, clash_scale)
    return cx


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
                   axial_donors=list(cx.axial_donors), ligand_smiles=list(cx.ligand_smiles))


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
