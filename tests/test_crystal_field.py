"""Point-charge crystal field of the trivalent lanthanides (Dy(III) 6H15/2 first): symmetry, invariance, the
constants of every ion derived again, and an independent Cartesian check."""

import numpy as np
import pytest

from gauss_hpc.abinitio import crystal_field as cf
from gauss_hpc.abinitio.ions import F_ELECTRONS, hund_ground_term
from gauss_hpc.abinitio.result import Result, Status
from gauss_hpc.chem.complexes import Complex, assemble, swap_metal

RNG = np.random.default_rng(7)


def ideal_pbp(q_eq=-0.4, q_ax=-1.0, r_eq=2.4, r_ax=2.2):
    ang = np.radians(72 * np.arange(5))
    positions = np.vstack([np.c_[r_eq * np.cos(ang), r_eq * np.sin(ang), np.zeros(5)], [[0, 0, r_ax], [0, 0, -r_ax]]])
    return positions, np.r_[[q_eq] * 5, [q_ax] * 2]


def random_rotation():
    q, r = np.linalg.qr(RNG.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_kramers_degeneracy_is_exact_for_a_low_symmetry_complex():
    positions = RNG.normal(size=(9, 3))
    positions *= (2.3 / np.linalg.norm(positions, axis=1))[:, None]
    charges = RNG.uniform(-1, 0.2, size=9)
    levels = cf.crystal_field_levels(positions, charges)
    assert levels["kramers_splitting"][0] < 1e-6              # cm-1, round-off only
    assert levels["kd_energies"].shape == (1, 8) and levels["kd_gaps"].shape == (1, 7)
    assert abs(levels["kd_energies"][0, 0]) < 1e-9 and np.all(levels["kd_gaps"] >= 0)


def test_ideal_d5h_gives_pure_mj_states_and_only_q0_parameters():
    positions, charges = ideal_pbp()
    levels = cf.crystal_field_levels(positions, charges)
    keys, _ = cf.operator_equivalents()
    wyb = levels["wybourne"][0]
    for (k, q), b in zip(keys, wyb):
        if q != 0:
            assert abs(b) < 1e-9, (k, q, b)
    # every eigenvector lies in one |±M> pair (a degenerate doublet may mix |+M> and |-M>)
    weights = np.abs(levels["eigenvectors"][0]) ** 2
    pair_weights = weights[:8] + weights[::-1][:8]
    assert pair_weights.max(axis=0) == pytest.approx(np.ones(16), abs=1e-12)
    assert levels["mj_weights"][0, 0] == pytest.approx(1.0)   # strong axial -1 charges: |±15/2> ground
    assert levels["g_tensors"][0, 0] == pytest.approx([0, 0, 20], abs=1e-6)


def test_single_negative_axial_charge_stabilises_mj_15_2():
    levels = cf.crystal_field_levels(np.array([[0.0, 0.0, 2.3]]), np.array([-1.0]))
    b20, b40, b60 = levels["stevens_bk0"][0]
    assert b20 < 0
    assert levels["mj_weights"][0] == pytest.approx([1, 0, 0, 0, 0, 0, 0, 0], abs=1e-12)
    # axial field: the doublets follow |mJ| = 15/2, 13/2, ..., 1/2 in order
    order = np.argmax(np.abs(levels["eigenvectors"][0]) ** 2, axis=0)[::2]
    assert list(np.abs(cf.angular_momentum(7.5)[0][order])) == [7.5, 6.5, 5.5, 4.5, 3.5, 2.5, 1.5, 0.5]


@pytest.mark.parametrize("axis", range(3))
def test_ground_main_magnetic_axis_follows_two_axial_charges(axis):
    positions = np.zeros((1, 2, 3))
    positions[0, :, axis] = [2.3, -2.3]
    levels = cf.crystal_field_levels(positions, np.array([[-1.0, -1.0]]))
    assert levels["g_tensors"][0, 0] == pytest.approx([0, 0, 20], abs=1e-6)
    assert abs(levels["g_axes"][0, 0, 2, axis]) == pytest.approx(1.0, abs=1e-9)


def test_rotating_the_complex_leaves_energies_and_g_values_unchanged():
    cx = assemble("[O-]c1ccccc1")
    cx.coords[-5:] += RNG.normal(scale=0.05, size=(5, 3))      # break the symmetry a little
    ref = cf.kd_energies(cx)
    assert ref.ok and ref.method == "crystal_field", ref.message
    for _ in range(3):
        turned = Complex.from_dict(cx.to_dict())
        rotation = random_rotation()
        turned.coords = cx.coords @ rotation.T + RNG.normal(size=3)
        res = cf.kd_energies(turned)
        assert np.allclose(res.values["kd_energies"], ref.values["kd_energies"], atol=1e-6)
        assert np.allclose(res.values["g_tensors"], ref.values["g_tensors"], atol=1e-6)
        # ... and the ground doublet's main axis turns with the molecule (a direction: either sign)
        expected = rotation @ np.asarray(ref.values["g_axes"][0][2])
        assert abs(expected @ np.asarray(res.values["g_axes"][0][2])) == pytest.approx(1.0, abs=1e-6)


def test_more_negative_axial_donors_increase_the_kd1_gap():
    cx = assemble("[O-]C")
    base = cf.default_charges(cx)
    gaps = []
    for scale in (0.5, 1.0, 1.5, 2.0):
        charges = base.copy()
        charges[cx.axial_donors] *= scale
        gaps.append(cf.kd_energies(cx, charges=charges).values["kd_gaps"][0])
    assert np.all(np.diff(gaps) > 0), gaps
    # and the anionic alkoxide beats neutral methanol with the default (Gasteiger) charges
    assert (cf.kd_energies(assemble("[O-]C")).values["kd_gaps"][0]
            > cf.kd_energies(assemble("OC")).values["kd_gaps"][0])


def test_rank2_part_matches_an_independent_cartesian_quadrupole():
    """k = 2 only: H = -sum_i q_i alpha <r2> sum_ab Q_ab {J_a J_b}/2 / (2 R^5), Q_ab = 3 R_a R_b - R^2 delta_ab
    (the Stevens rule r_a r_b -> alpha <r2> (J_a J_b + J_b J_a)/2 on the traceless quadrupole)."""
    ion = cf.Ion("k2 only", 7.5, 4 / 3, cf.DY3.stevens, (cf.DY3.radial[0], 0.0, 0.0))
    positions = RNG.normal(size=(4, 3)) * 1.3
    charges = np.array([-1.0, -0.5, 0.3, -0.8])
    ham, _ = cf.hamiltonian(positions, charges, ion=ion)
    _, jz, jp, jm = cf.angular_momentum(7.5)
    j = [(jp + jm) / 2, (jp - jm) / 2j, jz]
    ref = np.zeros((16, 16), complex)
    for r_ang, q in zip(positions, charges):
        r = r_ang / cf.BOHR_TO_ANGSTROM
        big_r = np.linalg.norm(r)
        quad = 3 * np.outer(r, r) - big_r ** 2 * np.eye(3)
        for a in range(3):
            for b in range(3):
                ref += -q * ion.stevens[0] * ion.radial[0] * quad[a, b] * (j[a] @ j[b] + j[b] @ j[a]) / 2 / (2 * big_r ** 5)
    assert np.allclose(ham[0], ref, atol=1e-14 + 1e-9 * np.abs(ref).max())


def test_operator_equivalents_reproduce_stevens_o_k0():
    keys, mats = cf.operator_equivalents()
    for k, theta in zip((2, 4, 6), cf.DY3.stevens):
        mat = mats[keys.index((k, 0))]
        assert np.allclose(np.diag(mat).real, theta * cf.stevens_o_k0(7.5, k) / {2: 2, 4: 8, 6: 16}[k])
        assert np.allclose(mat, np.diag(np.diag(mat)))


def test_batch_matches_single_and_bad_complexes_do_not_stop_the_batch():
    good = [assemble(s) for s in ("[O-]C", "n1ccccc1", ["[O-]C", "OC"])]
    bad_charges = Complex.from_dict(good[0].to_dict())
    not_dy = Complex.from_dict(good[0].to_dict())
    not_dy.symbols[0] = "Y"
    batch = cf.kd_energies_many(good + [bad_charges, not_dy], charges=[None, None, None, [0.0] * 3, None])
    assert [r.status for r in batch] == [Status.OK] * 3 + [Status.INVALID_INPUT] * 2
    assert "3 charges for 26 atoms" in batch[3].message and "metal 'Y'" in batch[4].message
    for cx, res in zip(good, batch):
        single = cf.kd_energies(cx)
        assert np.allclose(single.values["kd_energies"], res.values["kd_energies"])
        assert len(res.values["kd_energies"]) == 8 and len(res.values["kd_gaps"]) == 7
        assert sum(res.values["ground_mj_composition"].values()) == pytest.approx(1.0)
        again = Result.from_json(res.to_json())                # JSON-serialisable shard
        assert again.values["kd_energies"] == pytest.approx(list(res.values["kd_energies"]))
    garbage = cf.kd_energies("not a complex")
    assert garbage.status == Status.FAILED and garbage.message


def test_default_charges_need_known_equatorial_ligands():
    cx = assemble("[O-]C", equatorial="N#C")
    assert cx.equatorial_smiles == ["N#C"] * 5 and cf.kd_energies(cx).ok     # charged as free acetonitriles
    older = Complex.from_dict({**cx.to_dict(), "equatorial_smiles": []})     # a complex written before they travelled
    res = cf.kd_energies(older)
    assert res.status == Status.INVALID_INPUT and "pass charges=" in res.message
    assert cf.kd_energies(older, charges=np.full(len(cx.symbols), -0.1)).ok


def _derived_stevens_factors(n_f):
    """theta_k of the Hund's-rule ground term of 4f^n from first principles: the M_L = L, M_S = S state is one
    determinant, so <L||C^k||L> follows from its one-electron matrix elements; projected onto J by a 6j symbol."""
    from sympy.physics.wigner import wigner_3j, wigner_6j
    from sympy import Rational

    term = hund_ground_term(n_f)
    S, L, J = term.S, term.L, term.J
    S, J = Rational(round(2 * S), 2), Rational(round(2 * J), 2)
    ml = [3, 2, 1, 0, -1, -2, -3]
    occupied = ml[:min(n_f, 7)] + ml[:max(n_f - 7, 0)]
    thetas = []
    for k, a_k in ((2, 2), (4, 8), (6, 16)):
        one_electron = sum((-1) ** m * 7 * wigner_3j(3, k, 3, 0, 0, 0) * wigner_3j(3, k, 3, -m, 0, m)
                           for m in occupied)
        if k > 2 * J or one_electron == 0:
            thetas.append(0.0)
            continue
        reduced_l = one_electron / wigner_3j(L, k, L, -L, 0, L)
        reduced_j = (-1) ** (S + L + J + k) * (2 * J + 1) * wigner_6j(L, J, S, J, L, k) * reduced_l
        thetas.append(float(a_k * wigner_3j(J, k, J, -J, 0, J) * reduced_j) / cf.stevens_o_k0(float(J), k)[0])
    return thetas


@pytest.mark.parametrize("metal", sorted(cf.IONS))
def test_each_ions_constants_follow_from_its_ground_term(metal):
    ion = cf.IONS[metal]
    n_f = F_ELECTRONS[metal]
    assert np.allclose(_derived_stevens_factors(n_f), ion.stevens, rtol=1e-9, atol=1e-15)
    assert ion.kramers == (n_f % 2 == 1) and ion.n_doublets == (round(2 * ion.J) + 2) // 2
    known = {"Ce": (2.5, 6 / 7), "Pr": (4, 4 / 5), "Tb": (6, 3 / 2), "Dy": (7.5, 4 / 3), "Ho": (8, 5 / 4),
             "Er": (7.5, 6 / 5), "Yb": (3.5, 8 / 7)}
    if metal in known:
        assert (ion.J, ion.g_J) == pytest.approx(known[metal])


def _degeneracies(levels_cm, tol=1e-6):
    groups, count = [], 1
    for a, b in zip(levels_cm[:-1], levels_cm[1:]):
        if b - a < tol:
            count += 1
        else:
            groups.append(count)
            count = 1
    return sorted(groups + [count])


@pytest.mark.parametrize("metal", sorted(cf.IONS))
def test_every_ion_splits_as_its_symmetry_says(metal):
    ion = cf.IONS[metal]
    n_states = round(2 * ion.J) + 1
    # any field is traceless: the levels average to the barycentre, for every ion
    positions = RNG.normal(size=(7, 3))
    positions *= (2.4 / np.linalg.norm(positions, axis=1))[:, None]
    ham, _ = cf.hamiltonian(positions, RNG.uniform(-1, 0, size=7), ion=ion)
    assert abs(np.trace(ham[0])) < 1e-12
    # octahedron of equal charges: Kramers ions only even degeneracies (Gamma6/7: 2, Gamma8: 4), non-Kramers 1-3
    octahedron = 2.3 * np.vstack([np.eye(3), -np.eye(3)])
    cubic = cf.crystal_field_levels(octahedron, -0.5 * np.ones(6), ion=ion)["levels"][0]
    degeneracies = _degeneracies(cubic)
    assert sum(degeneracies) == n_states
    assert set(degeneracies) <= ({2, 4} if ion.kramers else {1, 2, 3})
    expected = {"Ce": [2, 4], "Yb": [2, 2, 4], "Pr": [1, 2, 3, 3], "Dy": [2, 2, 4, 4, 4], "Er": [2, 2, 4, 4, 4]}
    if metal in expected:
        assert degeneracies == expected[metal]
    # linear field (two charges on z): |+-M> doublets, and one M = 0 singlet for an integer J
    linear = cf.crystal_field_levels([[0, 0, 2.2], [0, 0, -2.2]], [-1.0, -1.0], ion=ion)
    assert _degeneracies(linear["levels"][0]) == sorted([2] * (n_states // 2) + [1] * (n_states % 2))
    assert linear["kd_energies"].shape == (1, ion.n_doublets) and linear["kd_gaps"].shape == (1, ion.n_doublets - 1)


@pytest.mark.parametrize("metal", sorted(cf.IONS))
def test_oblate_ions_want_axial_ligands_and_prolate_ions_equatorial_ones(metal):
    """Two anions on the axis: an oblate 4f density (alpha_J < 0: Ce, Pr, Nd, Tb, Dy, Ho) puts its largest |M|
    lowest, a prolate one (Pm, Sm, Er, Tm, Yb) its smallest; a ring of five anions in the plane reverses it."""
    ion = cf.IONS[metal]
    oblate = ion.stevens[0] < 0
    axial = cf.crystal_field_levels([[0, 0, 2.2], [0, 0, -2.2]], [-1.0, -1.0], ion=ion)
    ring, _ = ideal_pbp(q_eq=-1.0, q_ax=0.0)
    equatorial = cf.crystal_field_levels(ring[:5], -np.ones(5), ion=ion)
    m = cf.angular_momentum(ion.J)[0]

    def ground_abs_m(levels):             # |M| carrying the lowest level (a pure |M> or |+-M> in these fields)
        return abs(m[np.argmax(np.abs(levels["eigenvectors"][0][:, 0]) ** 2)])

    largest, smallest = ion.J, ion.J % 1
    assert ground_abs_m(axial) == (largest if oblate else smallest)
    assert ground_abs_m(equatorial) == (smallest if oblate else largest)


def test_other_ions_in_a_complex_and_the_ones_without_a_splitting():
    dy = assemble("[O-]C")
    er, tb, gd = (swap_metal(dy, m) for m in ("Er", "Tb", "Gd"))
    results = cf.kd_energies_many([dy, er, tb, gd])
    assert [r.status for r in results[:3]] == [Status.OK] * 3
    assert results[1].values["ion"] == "Er(III) 4I15/2" and results[1].values["kramers"]
    assert len(results[1].values["kd_energies"]) == 8 and results[1].values["kramers_splitting"] < 1e-6
    v = results[2].values
    assert v["ion"] == "Tb(III) 7F6" and not v["kramers"] and len(v["levels"]) == 13
    assert len(v["kd_energies"]) == 7 and len(v["tunnel_splittings"]) == 7
    assert v["ground_mj"] == "±6"               # Tb is oblate: the methoxides on the axis stabilise |M| = 6
    # Dy and Er are opposite: the axial methoxides that favour Dy's |15/2> leave Er a small |M| ground doublet
    assert results[0].values["ground_mj"] == "±15/2" and results[1].values["ground_mj"] != "±15/2"
    assert results[3].status == Status.INVALID_INPUT and "no first-order crystal-field splitting" in results[3].message
