"""Structural descriptors (MPP, SDP, axial angle, distances) on ideal and hand-distorted geometries."""

import numpy as np
import pytest

from gauss_hpc.chem.complexes import Complex, assemble
from gauss_hpc.chem.descriptors import (DESCRIPTOR_NAMES, descriptor_vector, mpp_sdp, plane_distances,
                                        structural_descriptors)


def ideal_pbp(r_eq=2.4, r_ax=(2.2, 2.2), axial=("O", "N")) -> Complex:
    """Bare pentagonal bipyramid: Dy, five O in the xy plane, two axial donors on z."""
    ang = np.radians(72 * np.arange(5))
    eq = np.c_[r_eq * np.cos(ang), r_eq * np.sin(ang), np.zeros(5)]
    coords = np.vstack([[0, 0, 0], eq, [0, 0, r_ax[0]], [0, 0, -r_ax[1]]])
    return Complex(name="ideal", symbols=["Dy"] + ["O"] * 5 + list(axial), coords=coords, charge=1,
                   multiplicity=6, metal_index=0, equatorial_donors=[1, 2, 3, 4, 5], axial_donors=[6, 7])


def test_ideal_bipyramid():
    d = structural_descriptors(ideal_pbp())
    assert d["mpp"] == pytest.approx(0, abs=1e-12) and d["sdp"] == pytest.approx(0, abs=1e-12)
    assert d["axial_angle"] == pytest.approx(180)
    assert d["axial_distance_mean"] == pytest.approx(2.2)
    assert (d["donor_z_axial_1"], d["donor_z_axial_2"]) == (8, 7)
    assert d["equatorial_distance_mean"] == pytest.approx(2.4)
    vec = descriptor_vector(ideal_pbp())
    assert vec.shape == (6,) and list(vec) == [d[n] for n in DESCRIPTOR_NAMES]


def test_known_distortion_by_hand():
    cx = ideal_pbp(r_ax=(2.0, 2.4))
    # pucker the equator: donors alternately 0.1 A above and below, the fifth in the plane
    h = np.array([0.1, -0.1, 0.1, -0.1, 0.0])
    cx.coords[1:6, 2] += h
    # the least-squares plane of this set: fit it by hand with the normal equations z = a x + b y + c
    pts = cx.coords[1:6]
    A = np.c_[pts[:, 0], pts[:, 1], np.ones(5)]
    a, b, c = np.linalg.lstsq(A, pts[:, 2], rcond=None)[0]
    dist = (pts[:, 2] - (a * pts[:, 0] + b * pts[:, 1] + c)) / np.sqrt(1 + a * a + b * b)
    mpp, sdp = mpp_sdp(pts)
    assert mpp == pytest.approx(np.sqrt(np.mean(dist ** 2)), abs=1e-4)
    assert sdp == pytest.approx(dist.max() - dist.min(), abs=1e-4)
    # bending one axial donor by 10 degrees and stretching the other
    t = np.radians(10)
    cx.coords[6] = 2.0 * np.array([np.sin(t), 0, np.cos(t)])
    d = structural_descriptors(cx)
    assert d["axial_angle"] == pytest.approx(170)
    assert d["axial_distance_mean"] == pytest.approx(2.2)
    assert (d["axial_distance_1"], d["axial_distance_2"]) == pytest.approx((2.0, 2.4))


def test_plane_offsets_by_hand():
    # square in z = 0 with alternating +-0.2 A pucker: the LSQ plane stays z = 0 by symmetry,
    # so d = (+0.2, -0.2, +0.2, -0.2): MPP = 0.2, SDP = 0.4
    pts = np.array([[1, 0, 0.2], [0, 1, -0.2], [-1, 0, 0.2], [0, -1, -0.2]])
    assert mpp_sdp(pts) == pytest.approx((0.2, 0.4))
    assert np.abs(plane_distances(pts)) == pytest.approx([0.2] * 4)
    # a tilted plane is still a plane
    tilted = np.array([[1, 0, 0.5], [0, 1, 0.3], [-1, 0, -0.5], [0, -1, -0.3], [0.5, 0.5, 0.4]])
    assert mpp_sdp(tilted) == pytest.approx((0, 0), abs=1e-12)
    with pytest.raises(ValueError, match="at least 3"):
        mpp_sdp(pts[:2])


def test_assembled_complex_is_ideal():
    d = structural_descriptors(assemble("[O-]C"))
    assert d["mpp"] < 1e-6 and d["sdp"] < 1e-6
    assert d["axial_angle"] == pytest.approx(180, abs=0.5)
    assert d["axial_distance_mean"] == pytest.approx(2.4, abs=0.05)


def test_needs_two_axial_donors():
    cx = ideal_pbp()
    cx.axial_donors = [6]
    with pytest.raises(ValueError, match="need 2 axial"):
        structural_descriptors(cx)
