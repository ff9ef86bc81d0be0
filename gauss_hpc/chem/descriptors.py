"""Structural descriptors of an [M(eq)5L2] complex: the structural vector of the model's KD head.

DESCRIPTOR_NAMES fixes the six values and their order:
  donor_z_axial_1, donor_z_axial_2  atomic numbers of the two axial donor atoms (in `Complex.axial_donors` order)
  mpp                               mean plane deviation of the equatorial donors, Angstrom (Lu 2021)
  sdp                               spread of the equatorial donors about that plane, Angstrom
  axial_angle                       axial donor - metal - axial donor angle, degrees (180 = linear)
  axial_distance_mean               mean metal - axial donor distance, Angstrom

MPP and SDP: fit the least-squares plane through the equatorial donor atoms, take the signed distances d_i of
the donors from it; MPP = sqrt(mean d_i^2), SDP = max d_i - min d_i. Both are 0 for a planar equator.
"""

from __future__ import annotations

import numpy as np
from rdkit.Chem import GetPeriodicTable

from ..abinitio.values import DESCRIPTOR_NAMES  # noqa: F401 (declared with the value schema, re-exported)
from .structure import Complex


def plane_distances(points) -> np.ndarray:
    """Signed distances of points (n >= 3, 3) from their least-squares plane (normal = smallest singular
    vector of the centred points; the sign is arbitrary but consistent within one call)."""
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    if len(points) < 3:
        raise ValueError(f"a plane needs at least 3 points, got {len(points)}")
    centred = points - points.mean(axis=0)
    normal = np.linalg.svd(centred)[2][-1]
    return centred @ normal


def mpp_sdp(points) -> tuple[float, float]:
    """(MPP, SDP) in the units of `points`: root-mean-square and max-minus-min of the signed distances from
    the least-squares plane."""
    d = plane_distances(points)
    return float(np.sqrt(np.mean(d ** 2))), float(d.max() - d.min())


def angle_deg(a, centre, b) -> float:
    """The a-centre-b angle in degrees."""
    u = np.asarray(a, float) - np.asarray(centre, float)
    v = np.asarray(b, float) - np.asarray(centre, float)
    cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def metal_contacts(symbols, coords, metal_index: int, scale: float = 1.1) -> list[int]:
    """Indices of the heavy atoms bonded to the metal: within `scale` times the sum of covalent radii (Alvarez's,
    RDKit's table: Y-O 2.82 A, Y-N 2.87 A at 1.1). An [M(H2O)5L2] complex with monodentate L has seven; more
    means a ligand chelates (nitrite's second O after relaxation), which a monodentate model does not describe."""
    table = GetPeriodicTable()
    coords = np.asarray(coords, float).reshape(-1, 3)
    metal = coords[metal_index]
    r_metal = table.GetRcovalent(symbols[metal_index])
    return [i for i, symbol in enumerate(symbols) if i != metal_index and symbol != "H"
            and np.linalg.norm(coords[i] - metal) < scale * (r_metal + table.GetRcovalent(symbol))]


def structural_descriptors(cx: Complex) -> dict:
    """The six DESCRIPTOR_NAMES values plus diagnostics (axial_distance_1/2, equatorial_distance_mean,
    axial_donor_1/2 element symbols). Needs two axial donors and at least three equatorial donors."""
    if len(cx.axial_donors) != 2 or len(cx.equatorial_donors) < 3:
        raise ValueError(f"complex {cx.name}: need 2 axial and >= 3 equatorial donors, got "
                         f"{len(cx.axial_donors)} and {len(cx.equatorial_donors)}")
    table = GetPeriodicTable()
    metal = cx.coords[cx.metal_index]
    ax1, ax2 = (cx.coords[i] for i in cx.axial_donors)
    ax_dist = [float(np.linalg.norm(p - metal)) for p in (ax1, ax2)]
    eq = cx.coords[list(cx.equatorial_donors)]
    mpp, sdp = mpp_sdp(eq)
    symbols = [cx.symbols[i] for i in cx.axial_donors]
    return {
        "donor_z_axial_1": float(table.GetAtomicNumber(symbols[0])),
        "donor_z_axial_2": float(table.GetAtomicNumber(symbols[1])),
        "mpp": mpp,
        "sdp": sdp,
        "axial_angle": angle_deg(ax1, metal, ax2),
        "axial_distance_mean": float(np.mean(ax_dist)),
        "axial_distance_1": ax_dist[0],
        "axial_distance_2": ax_dist[1],
        "equatorial_distance_mean": float(np.linalg.norm(eq - metal, axis=1).mean()),
        "axial_donor_1": symbols[0],
        "axial_donor_2": symbols[1],
    }


def descriptor_vector(cx: Complex) -> np.ndarray:
    """The six descriptors as float64 in DESCRIPTOR_NAMES order (the KD head's structural input)."""
    values = structural_descriptors(cx)
    return np.array([values[name] for name in DESCRIPTOR_NAMES], dtype=np.float64)
