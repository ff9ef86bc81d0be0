"""Electrostatic point-charge crystal field of a trivalent lanthanide (Ce to Yb): the levels of its ground J
multiplet in milliseconds per complex (a screening oracle, not a substitute for CASSCF). Dy(III)'s 8 Kramers
doublets of 6H15/2 are the paper's quantity.

Model. Each ligand atom i is a point charge q_i (units of e) at R_i, (theta_i, phi_i) from the metal. Within the
ground J multiplet the one-electron potential becomes (atomic units)
    H = sum_{k=2,4,6} sum_{q=-k..k} B^k_q  theta_k * Ceq^(k)_q(J),
    B^k_q = -(1 - sigma_k) <r^k> sum_i q_i C^(k)_q*(theta_i, phi_i) / R_i^(k+1)        (Wybourne parameters)
with C^(k)_q = sqrt(4 pi / (2k + 1)) Y_kq the Racah-normalised spherical harmonics (Condon-Shortley phase) and
theta_k the Stevens factors (alpha, beta, gamma). Ceq^(k)_q(J) is the operator equivalent of sum_e C^(k)_q(e):
the rank-k spherical tensor built from J by the ladder recursion [J-, T_q] = sqrt(k(k+1) - q(q-1)) T_{q-1},
scaled so that its q = 0 component equals O_k^0 / a_k (a_2, a_4, a_6 = 2, 8, 16: r^k P_k(cos theta) =
f_k0 / a_k with f_k0 the Stevens polynomials 3z^2 - r^2, 35z^4 - ..., 231z^6 - ...). The axial Stevens parameters
B_k^0 = B^k_0 theta_k / a_k are reported too (one -1 charge on +z: B_2^0 < 0 and, for Dy, |+-15/2> lowest).

Ions (IONS, `ion_of(metal)`): the Hund's-rule ground term of 4f^n (S, L, J, g_J computed from n), the Stevens
factors of that term (Hutchings 1964, Table VI; tests/test_crystal_field.py derives each from the term with
Wigner 3j/6j symbols) and <r^k> with the Sternheimer shielding sigma_k from the Dirac-Fock calculations of
Edvardsson & Klintenberg, J. Alloys Compd. 275-277 (1998) 230. No shielding by default (sigma_k = 0); pass
`shielding=ion.shielding` (STERNHEIMER_DY3 for Dy) to apply it. Eu(III) (J = 0) and Gd(III) (L = 0) have no
first-order splitting of the ground multiplet and are refused. Kramers ions (odd n) give doublets; non-Kramers
ions (Pr, Pm, Tb, Ho, Tm) give their 2J + 1 levels and pseudo-doublets: the levels paired in energy order, the
highest alone when 2J + 1 is odd, each pair's tunnel splitting reported (`kramers` False in the values).

Charges. `charges=` gives one charge per atom of the complex (e.g. xTB or LoProp charges; the metal's entry is
ignored). Without it, each free ligand's charges are placed on its atoms (axial ligands from
`Complex.ligand_smiles`, equatorial ones from `Complex.equatorial_smiles` or, when that is empty, water,
recognised by their O, H, H atoms), by
`charge_model`: "gasteiger" (Gasteiger-Marsili charges by RDKit from the SMILES) or "xtb" (GFN2-xTB charges of
the free ligand at its RDKit/MMFF geometry, xtb.label_ligand); each ligand's charges sum to its formal charge.
"xtb_complex" instead takes the GFN2-xTB charges of the whole complex (Y analogue) at its geometry
(xtb.complex_charges, about a second per complex): charge transfer to the metal included.
bench/oracle_fidelity.py measures these choices against the CASSCF reference set (data/casscf_reference).

Library calls: `kd_energies(cx)` for one complex (the ion is the complex's metal), `kd_energies_many(complexes)`
(vectorised per ion, one Result per complex, failures isolated) and `crystal_field_levels(positions, charges,
ion=...)` on plain arrays.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem
from scipy.special import sph_harm_y

from ..chem.structure import Complex, ligand_blocks
from .constants import BOHR_TO_ANGSTROM, HARTREE_TO_CM
from .ions import ground_term
from .result import Result, Status
from . import values as value_schema

BACKEND = "crystal_field"
_POLY_NORM = {2: 2.0, 4: 8.0, 6: 16.0}       # r^k P_k(cos theta) = f_k0 / a_k


@dataclass(frozen=True)
class Ion:
    """Free-ion constants of the ground J multiplet of a 4f ion."""

    name: str
    J: float
    g_J: float
    stevens: tuple[float, float, float]        # theta_2, theta_4, theta_6 (alpha, beta, gamma)
    radial: tuple[float, float, float]         # <r^2>, <r^4>, <r^6> in a0^k
    shielding: tuple[float, float, float] = (0.0, 0.0, 0.0)     # Sternheimer sigma_2, sigma_4, sigma_6 (for reference)

    @property
    def kramers(self) -> bool:
        """An odd 4f count: every level a Kramers doublet (half-integer J)."""
        return round(2 * self.J) % 2 == 1

    @property
    def n_doublets(self) -> int:
        """Kramers doublets, or pseudo-doublets (levels paired in energy order, the last alone if 2J + 1 is odd)."""
        return (int(round(2 * self.J)) + 2) // 2


# Stevens factors (alpha, beta, gamma) of the Hund's-rule ground term of Ln(III), Hutchings 1964, Table VI
_STEVENS = {
    "Ce": (-2 / 35, 2 / 315, 0.0),
    "Pr": (-52 / 2475, -4 / 5445, 272 / 4459455),
    "Nd": (-7 / 1089, -136 / 467181, -1615 / 42513471),
    "Pm": (14 / 1815, 952 / 2335905, 2584 / 42513471),
    "Sm": (13 / 315, 26 / 10395, 0.0),
    "Tb": (-1 / 99, 2 / 16335, -1 / 891891),
    "Dy": (-2 / 315, -8 / 135135, 4 / 3864861),
    "Ho": (-1 / 450, -1 / 30030, -5 / 3864861),
    "Er": (4 / 1575, 2 / 45045, 8 / 3864861),
    "Tm": (1 / 99, 8 / 49005, -5 / 891891),
    "Yb": (2 / 63, -2 / 1155, 4 / 27027),
}
# Edvardsson & Klintenberg 1998 (Dirac-Fock): <r^2>, <r^4>, <r^6> (a0^k) and sigma_2, sigma_4, sigma_6
_RADIAL = {
    "Ce": ((1.456, 5.437, 42.26), (0.510, 0.0132, -0.0294)),
    "Pr": ((1.327, 4.537, 32.65), (0.515, 0.0138, -0.0301)),
    "Nd": ((1.222, 3.875, 26.12), (0.518, 0.0130, -0.0310)),
    "Pm": ((1.135, 3.366, 21.46), (0.519, 0.0109, -0.0314)),
    "Sm": ((1.061, 2.964, 17.99), (0.519, 0.0077, -0.0317)),
    "Tb": ((0.893, 2.163, 11.75), (0.523, -0.0107, -0.0318)),
    "Dy": ((0.849, 1.977, 10.44), (0.527, -0.0199, -0.0316)),
    "Ho": ((0.810, 1.816, 9.345), (0.534, -0.0306, -0.0313)),
    "Er": ((0.773, 1.677, 8.431), (0.544, -0.0427, -0.0310)),
    "Tm": ((0.740, 1.555, 7.659), (0.554, -0.0567, -0.0306)),
    "Yb": ((0.710, 1.448, 7.003), (0.571, -0.0725, -0.0300)),
}
def _make_ion(metal: str) -> Ion:
    term = ground_term(metal)
    radial, shielding = _RADIAL[metal]
    return Ion(f"{metal}(III) {term.label}", term.J, term.g_J, _STEVENS[metal], radial, shielding)


IONS = {metal: _make_ion(metal) for metal in _STEVENS}
DY3 = IONS["Dy"]
# Sternheimer shielding of Dy(III) (as rhOver uses it, M. Boehme, util_cf.f90, MIT; Edvardsson & Klintenberg 1998)
STERNHEIMER_DY3 = DY3.shielding


def ion_of(metal: str) -> Ion:
    """The Ion of a trivalent lanthanide by element symbol; ValueError saying why for Eu, Gd and anything else."""
    if metal in ("Eu", "Gd"):
        raise ValueError(f"{metal}(III): its ground multiplet ({'J = 0' if metal == 'Eu' else 'L = 0, 8S7/2'}) has no "
                         "first-order crystal-field splitting; the point-charge model cannot rank its ligands "
                         "(use CASSCF)")
    if metal not in IONS:
        raise ValueError(f"metal {metal!r}: the crystal field knows the trivalent lanthanides {', '.join(IONS)}")
    return IONS[metal]


def angular_momentum(J: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(M values, Jz, J+, J-) in the |J M> basis ordered M = J, J-1, ..., -J."""
    m = J - np.arange(int(round(2 * J)) + 1)
    jz = np.diag(m).astype(complex)
    jplus = np.zeros_like(jz)
    for col in range(1, len(m)):            # J+ |M> = sqrt(J(J+1) - M(M+1)) |M+1>, row col-1 holds M+1
        jplus[col - 1, col] = np.sqrt(J * (J + 1) - m[col] * (m[col] + 1))
    return m, jz, jplus, jplus.conj().T


def stevens_o_k0(J: float, k: int) -> np.ndarray:
    """Diagonal of the Stevens operator O_k^0 (Hutchings 1964) in the M = J..-J basis."""
    m = J - np.arange(int(round(2 * J)) + 1)
    x = J * (J + 1)
    if k == 2:
        return 3 * m ** 2 - x
    if k == 4:
        return 35 * m ** 4 - (30 * x - 25) * m ** 2 + 3 * x ** 2 - 6 * x
    if k == 6:
        return (231 * m ** 6 - (315 * x - 735) * m ** 4 + (105 * x ** 2 - 525 * x + 294) * m ** 2
                - 5 * x ** 3 + 40 * x ** 2 - 60 * x)
    raise ValueError(f"Stevens operator O_{k}^0: only k = 2, 4, 6")


@functools.lru_cache(maxsize=None)
def operator_equivalents(ion: Ion = DY3) -> tuple[tuple[tuple[int, int], ...], np.ndarray]:
    """((k, q) pairs, theta_k * Ceq^(k)_q(J) matrices (n_kq, 2J+1, 2J+1)) for k = 2, 4, 6 and q = -k..k."""
    _, _, jplus, jminus = angular_momentum(ion.J)
    keys, mats = [], []
    for k, theta in zip((2, 4, 6), ion.stevens):
        tensor = {k: np.linalg.matrix_power(jplus, k)}
        for q in range(k, -k, -1):
            tensor[q - 1] = (jminus @ tensor[q] - tensor[q] @ jminus) / np.sqrt(k * (k + 1) - q * (q - 1))
        diag0 = np.real(np.diag(tensor[0]))
        target = stevens_o_k0(ion.J, k) / _POLY_NORM[k]
        # a rank k > 2J has no matrix elements within the multiplet (Ce, Sm: no sixth-order term)
        scale = (target @ diag0) / (diag0 @ diag0) if k <= 2 * ion.J else 0.0
        for q in range(-k, k + 1):
            keys.append((k, q))
            mats.append(theta * scale * tensor[q])
    return tuple(keys), np.array(mats)


def wybourne_parameters(positions, charges, ion: Ion = DY3, shielding=(0.0, 0.0, 0.0)) -> np.ndarray:
    """B^k_q in Hartree, shape (..., 27) in operator_equivalents order, from positions (..., n, 3) in Angstrom
    relative to the metal and charges (..., n) in e. Atoms with charge 0 (padding) contribute nothing."""
    positions = np.asarray(positions, dtype=float) / BOHR_TO_ANGSTROM
    charges = np.asarray(charges, dtype=float)
    r = np.linalg.norm(positions, axis=-1)
    safe_r = np.where(r > 0, r, 1.0)
    theta = np.arccos(np.clip(positions[..., 2] / safe_r, -1.0, 1.0))
    phi = np.arctan2(positions[..., 1], positions[..., 0])
    weight = np.where(r > 0, charges, 0.0)
    keys, _ = operator_equivalents(ion)
    out = np.empty(positions.shape[:-2] + (len(keys),), dtype=complex)
    for kk, k in enumerate((2, 4, 6)):
        radial = -(1 - shielding[kk]) * ion.radial[kk] * weight / safe_r ** (k + 1)
        for q in range(k + 1):
            c_kq = np.sqrt(4 * np.pi / (2 * k + 1)) * sph_harm_y(k, q, theta, phi)
            b = np.sum(radial * np.conj(c_kq), axis=-1)
            out[..., keys.index((k, q))] = b
            out[..., keys.index((k, -q))] = (-1) ** q * np.conj(b)      # C_{k,-q} = (-1)^q C_kq*
    return out


def hamiltonian(positions, charges, *, ion: Ion = DY3, shielding=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """(H (B, 2J+1, 2J+1) in Hartree in the M = J..-J basis, B^k_q (B, 27) in Hartree) for positions (B, n, 3)
    Angstrom relative to the metal and charges (B, n); a single complex may be given without the B axis."""
    positions = np.asarray(positions, dtype=float)
    charges = np.asarray(charges, dtype=float)
    if positions.ndim == 2:
        positions, charges = positions[None], charges[None]
    keys, mats = operator_equivalents(ion)
    bkq = wybourne_parameters(positions, charges, ion, shielding)
    if len(bkq) >= 64:      # BLAS for batches; below that its thread start-up costs more than the product
        ham = (bkq @ mats.reshape(len(keys), -1)).reshape((-1,) + mats.shape[1:])
    else:
        ham = np.einsum("bn,nij->bij", bkq, mats)
    return 0.5 * (ham + np.conj(np.swapaxes(ham, -1, -2))), bkq               # exact Hermiticity


def crystal_field_levels(positions, charges, *, ion: Ion = DY3, shielding=(0.0, 0.0, 0.0)) -> dict:
    """Vectorised core on arrays: positions (B, n, 3) Angstrom relative to the metal, charges (B, n) in e.

    Returns arrays, with D = ion.n_doublets: levels (B, 2J+1) every level in cm-1 (ground 0); kd_energies (B, D)
    cm-1 (ground 0), each doublet's mean energy (pseudo-doublets for a non-Kramers ion, see the module
    docstring); kd_gaps (B, D-1) dE0i; kramers_splitting (B,) the largest splitting within a doublet (0 up to
    round-off for a Kramers ion, the largest tunnel splitting of a non-Kramers one) and tunnel_splittings
    (B, D); mj_weights (B, D) ground-(pseudo)doublet weight of |mJ| = J, J-1, ...; g_tensors (B, D, 3) main g
    values of each doublet (ascending; for a non-Kramers pseudo-doublet only gZ is meaningful, and a lone last
    level has NaN) and g_axes (B, D, 3, 3) their axes (rows, unit vectors in the frame of `positions`);
    stevens_bk0 (B, 3) B_2^0, B_4^0, B_6^0 in cm-1; wybourne (B, 27) complex B^k_q in cm-1; eigenvectors.
    """
    keys, _ = operator_equivalents(ion)
    ham, bkq = hamiltonian(positions, charges, ion=ion, shielding=shielding)
    evals, evecs = np.linalg.eigh(ham)
    levels = (evals - evals[:, :1]) * HARTREE_TO_CM
    n_states, n_kd = levels.shape[1], ion.n_doublets
    padded = np.concatenate([levels, levels[:, -1:]], axis=1) if n_states % 2 else levels
    pairs = padded.reshape(len(levels), n_kd, 2)
    kd = pairs.mean(axis=-1)
    kd = kd - kd[:, :1]

    m, jz, jplus, jminus = angular_momentum(ion.J)
    jx, jy = (jplus + jminus) / 2, (jplus - jminus) / 2j
    n_pairs = n_states // 2                      # the states that form (pseudo)doublets
    moments = []
    for op in (jx, jy, jz):      # <a|g_J J|b> for the two states a, b of each doublet
        full = np.conj(np.swapaxes(evecs, -1, -2)) @ (op @ evecs)
        blocks = full[:, : 2 * n_pairs, : 2 * n_pairs].reshape(len(evecs), n_pairs, 2, n_pairs, 2)
        moments.append(ion.g_J * blocks[:, np.arange(n_pairs), :, np.arange(n_pairs), :].swapaxes(0, 1))
    moments = np.stack(moments, axis=2)                                           # (B, pairs, 3, 2, 2)
    gmat = 2 * np.real(np.einsum("bkaij,bkcji->bkac", moments, moments))
    g2, axes = np.linalg.eigh(gmat)
    g = np.full((len(levels), n_kd, 3), np.nan)
    g_axes = np.full((len(levels), n_kd, 3, 3), np.nan)
    g[:, :n_pairs] = np.sqrt(np.clip(g2, 0, None))
    g_axes[:, :n_pairs] = np.swapaxes(axes, -1, -2)

    ground = np.abs(evecs[:, :, 0]) ** 2 + (np.abs(evecs[:, :, 1]) ** 2 if n_states > 1 else 0)
    ground = ground / ground.sum(axis=1, keepdims=True)                           # (B, 2J+1) over M = J..-J
    mj_weights = ground[:, :n_kd] + ground[:, ::-1][:, :n_kd]                     # |M| = J, J-1, ...
    if n_states % 2:                                                              # M = 0 counted once, not twice
        mj_weights[:, -1] = ground[:, n_states // 2]
    theta = np.array(ion.stevens) / np.array([_POLY_NORM[k] for k in (2, 4, 6)])
    q0 = [keys.index((k, 0)) for k in (2, 4, 6)]
    tunnel = np.abs(pairs[..., 1] - pairs[..., 0])
    return {"levels": levels, "kd_energies": kd, "kd_gaps": value_schema.kd_gaps(kd),
            "kramers_splitting": tunnel.max(axis=1), "tunnel_splittings": tunnel,
            "mj_weights": mj_weights, "g_tensors": g, "g_axes": g_axes,
            "stevens_bk0": np.real(bkq[:, q0]) * theta * HARTREE_TO_CM,
            "wybourne": bkq * HARTREE_TO_CM, "eigenvectors": evecs}


@functools.lru_cache(maxsize=None)
def mj_labels(ion: Ion = DY3) -> tuple[str, ...]:
    """'±15/2', '±13/2', ... '±1/2' for the ground-doublet composition ('±6', ..., '±1', '0' for integer J)."""
    if ion.kramers:
        return tuple(f"±{int(round(2 * (ion.J - i)))}/2" for i in range(ion.n_doublets))
    return tuple(f"±{int(round(ion.J - i))}" if ion.J - i > 0 else "0" for i in range(ion.n_doublets))


@functools.lru_cache(maxsize=65536)
def gasteiger_charges(smiles: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(symbols, Gasteiger-Marsili charges) of a ligand with explicit H in RDKit atom order (donor first)."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"ligand {smiles!r}: not a valid SMILES")
    mol = Chem.AddHs(mol)
    AllChem.ComputeGasteigerCharges(mol)
    charges = tuple(float(a.GetDoubleProp("_GasteigerCharge")) for a in mol.GetAtoms())
    if not np.all(np.isfinite(charges)):
        raise ValueError(f"ligand {smiles!r}: RDKit has no Gasteiger parameters for one of its atoms")
    return tuple(a.GetSymbol() for a in mol.GetAtoms()), charges


@functools.lru_cache(maxsize=65536)
def xtb_charges(smiles: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(symbols, GFN2-xTB charges) of a free ligand at its RDKit/MMFF geometry, RDKit atom order (donor first)."""
    from . import xtb

    res = xtb.label_ligand(smiles)
    if not res.ok:
        raise ValueError(f"ligand {smiles!r}: no GFN2-xTB charges ({res.message})")
    return tuple(res.values["symbols"]), tuple(float(q) for q in res.values["atomic_charges"])


LIGAND_CHARGE_MODELS = {"gasteiger": gasteiger_charges, "xtb": xtb_charges}
CHARGE_MODELS = (*LIGAND_CHARGE_MODELS, "xtb_complex")


def default_charges(cx: Complex, charge_model: str = "gasteiger") -> np.ndarray:
    """Per-atom charges of `charge_model` (see module docstring); ValueError naming what is missing."""
    if charge_model == "xtb_complex":
        from . import xtb

        return xtb.complex_charges(cx)
    if charge_model not in LIGAND_CHARGE_MODELS:
        raise ValueError(f"charge_model {charge_model!r}: use one of {', '.join(CHARGE_MODELS)}")
    return ligand_charges(cx, LIGAND_CHARGE_MODELS[charge_model])


def ligand_charges(cx: Complex, charges_of) -> np.ndarray:
    """Per-atom charges of a complex from `charges_of(smiles) -> (symbols, charges)` of each free ligand (the
    equatorial ones from `equatorial_smiles`, water when it is empty); ValueError naming the complex and what
    does not match."""
    try:
        return np.array(_ligand_charges(tuple(cx.symbols), tuple(cx.equatorial_donors), tuple(cx.axial_donors),
                                        tuple(cx.ligand_smiles), tuple(cx.equatorial_smiles), charges_of))
    except ValueError as exc:
        raise ValueError(f"complex {cx.name}: {exc}") from None


@functools.lru_cache(maxsize=65536)
def _ligand_charges(symbols, equatorial_donors, axial_donors, ligand_smiles, equatorial_smiles,
                    charges_of) -> tuple[float, ...]:
    """Cached on the atoms and ligands alone: a screen meets the same complex topology many times."""
    cx = Complex(name="", symbols=list(symbols), coords=np.zeros((len(symbols), 3)), charge=0, multiplicity=1,
                 metal_index=0, equatorial_donors=list(equatorial_donors), axial_donors=list(axial_donors),
                 ligand_smiles=list(ligand_smiles))
    charges = np.zeros(len(symbols))
    axial = dict(zip(axial_donors, ligand_smiles))
    if len(axial) != len(axial_donors):
        raise ValueError(f"ligand_smiles has {len(ligand_smiles)} entries for "
                         f"{len(axial_donors)} axial ligands; pass charges= explicitly")
    equatorial = dict(zip(equatorial_donors, equatorial_smiles))
    for block in ligand_blocks(cx):
        start, stop = block.start, block.stop
        smiles = axial.get(start) or equatorial.get(start)
        if smiles is None:
            if list(symbols[start:stop]) != ["O", "H", "H"]:
                raise ValueError(f"equatorial ligand at atom {start} "
                                 f"({''.join(symbols[start:stop])}) is not water; pass charges= explicitly")
            smiles = "O"
        lig_symbols, q = charges_of(smiles)
        if list(lig_symbols) != list(symbols[start:stop]):
            raise ValueError(f"atoms {start}-{stop - 1} do not match ligand {smiles!r}; "
                             "pass charges= explicitly")
        charges[start:stop] = q
    return tuple(charges)


def _prepare(cx: Complex, charges, charge_model: str) -> tuple[Ion, np.ndarray, np.ndarray]:
    try:
        ion = ion_of(cx.metal)
    except ValueError as exc:
        raise ValueError(f"complex {cx.name}: {exc}") from None
    q = default_charges(cx, charge_model) if charges is None else np.asarray(charges, dtype=float).reshape(-1)
    if len(q) != len(cx.symbols):
        raise ValueError(f"complex {cx.name}: {len(q)} charges for {len(cx.symbols)} atoms")
    if not np.isfinite(q).all():
        raise ValueError(f"complex {cx.name}: non-finite charges")
    positions = cx.coords - cx.coords[cx.metal_index]
    q = q.copy()
    q[cx.metal_index] = 0.0
    distance = np.linalg.norm(positions, axis=1)
    distance[cx.metal_index] = np.inf
    if distance.min() < 0.5:
        raise ValueError(f"complex {cx.name}: an atom sits within 0.5 A of the metal")
    return ion, positions, q


def _result(name: str, ion: Ion, levels: dict, i: int, seconds: float, charges: np.ndarray) -> Result:
    weights = levels["mj_weights"][i]
    labels = mj_labels(ion)
    values = {
        "ion": ion.name, "kramers": ion.kramers, "levels": levels["levels"][i],
        "kd_energies": levels["kd_energies"][i], "kd_gaps": levels["kd_gaps"][i],
        "ground_mj_composition": {lab: float(w) for lab, w in zip(labels, weights)},
        "ground_mj": labels[int(np.argmax(weights))],
        "g_tensors": levels["g_tensors"][i], "g_axes": levels["g_axes"][i], "stevens_bk0": levels["stevens_bk0"][i],
        "kramers_splitting": float(levels["kramers_splitting"][i]), "atomic_charges": charges,
    }
    if not ion.kramers:
        values["tunnel_splittings"] = levels["tunnel_splittings"][i]
    return Result(name=name, backend=BACKEND, values=values, wall_seconds=seconds, method="crystal_field")


def kd_energies_many(complexes: Sequence[Complex], *, charges: Sequence | None = None,
                     charge_model: str = "gasteiger", shielding=(0.0, 0.0, 0.0), **_ignored) -> list[Result]:
    """One Result per complex, the valid complexes of each ion diagonalised in one vectorised call. `charges` is
    None (the free-ligand rule `charge_model` for all) or one per-atom charge array (or None) per complex. A
    complex that cannot be set up gets an INVALID_INPUT Result; the others are unaffected."""
    start = time.perf_counter()
    charges = [None] * len(complexes) if charges is None else list(charges)
    if len(charges) != len(complexes):
        raise ValueError(f"{len(charges)} charge arrays for {len(complexes)} complexes")
    results: list[Result | None] = [None] * len(complexes)
    prepared = []
    for i, (cx, q) in enumerate(zip(complexes, charges)):
        try:
            prepared.append((i, *_prepare(cx, q, charge_model)))
        except ValueError as exc:
            results[i] = Result.failure(cx.name, BACKEND, Status.INVALID_INPUT, str(exc))
    for ion in dict.fromkeys(p[1] for p in prepared):        # one vectorised call per ion
        group = [p for p in prepared if p[1] is ion]
        n_max = max(len(p[2]) for p in group)
        pos = np.zeros((len(group), n_max, 3))
        chg = np.zeros((len(group), n_max))
        for row, (_, _, p, q) in enumerate(group):
            pos[row, : len(p)], chg[row, : len(q)] = p, q
        levels = crystal_field_levels(pos, chg, ion=ion, shielding=shielding)
        seconds = (time.perf_counter() - start) / len(complexes)
        for row, (i, _, _, q) in enumerate(group):
            results[i] = _result(complexes[i].name, ion, levels, row, seconds, q)
    return results


def kd_energies(cx: Complex, *, name: str | None = None, workdir=None, charges=None,
                charge_model: str = "gasteiger", shielding=(0.0, 0.0, 0.0), **_options) -> Result:
    """The oracle interface for the complex's metal (a trivalent lanthanide): Kramers-doublet energies (Dy: 8,
    cm-1, ground 0; pseudo-doublets for a non-Kramers ion, `kramers` False), kd_gaps, levels,
    ground_mj_composition ({'±15/2': weight, ...}), ground_mj, g_tensors, stevens_bk0, atomic_charges. Never raises for bad
    input: the Result says why (workdir and other backend options are accepted and unused)."""
    try:
        result = kd_energies_many([cx], charges=[charges], charge_model=charge_model, shielding=shielding)[0]
    except Exception as exc:      # a batch must survive anything one complex does to the model
        return Result.failure(name or getattr(cx, "name", "?"), BACKEND, Status.FAILED,
                              f"{type(exc).__name__}: {exc}")
    if name is not None:
        result.name = name
    return result


def crystal_field_step(item, workdir, *, name: str, **params) -> Result:
    """Job step `crystal_field`: the KDs of the complex the earlier steps made (kd_energies; params go to it)."""
    from .step_io import complex_input

    cx = complex_input(item, "crystal_field", BACKEND, name)
    return cx if isinstance(cx, Result) else kd_energies(cx, name=name, **params)


crystal_field_step.params_of = kd_energies        # the params a job spec may give (jobs.steps.accepted_params)
STEPS = {"crystal_field": crystal_field_step}
