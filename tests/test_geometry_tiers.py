"""The fast geometry tier: GFN2-xTB with the axial metal-donor bonds restrained at the DFT tier's length for their
donor class (abinitio/xtb.relax_complex(axial_distances=...), chem/donor_distances.py)."""

from pathlib import Path

import numpy as np
import pytest

from gauss_hpc.abinitio import xtb
from gauss_hpc.chem import donor_distances as dd
from gauss_hpc.chem.complexes import Complex, assemble
from gauss_hpc.chem.descriptors import structural_descriptors


@pytest.mark.parametrize("smiles, cls", [("[O-]C", "O-.sp3"), ("[O-]c1ccccc1", "O-.sp2"), ("[O-]C(C)=O", "O-.sp2"),
                                         ("OC", "O.sp3"), ("O=C(C)C", "O.sp2"), ("n1ccccc1", "N.sp2"),
                                         ("N#CC", "N.sp"), ("[N-](C)C", "N-.sp3"), ("[n-]1cccc1", "N-.sp2"),
                                         ("[N-]=[N+]=[N-]", "N-.sp"), ("[N-]=C=O", "N-.sp"), ("[O-]C#N", "O-.sp")])
def test_donor_classes(smiles, cls):
    assert dd.donor_class(smiles) == cls


def test_calibration_falls_back_to_coarser_classes():
    cal = dd.fit(["[O-]C", "[O-]CC", "OC", "n1ccccc1"], [2.10, 2.14, 2.40, 2.55])
    assert cal.distance("[O-]C(C)C") == pytest.approx(2.12)        # O-.sp3: the mean of its class
    assert cal.distance("[O-]c1ccccc1") == pytest.approx(2.12)     # no O-.sp2 yet: all O- donors
    assert cal.distance("[N-](C)C") == pytest.approx(np.mean([2.10, 2.14, 2.40, 2.55]))   # nothing N-: everything
    with pytest.raises(ValueError, match="not a valid SMILES"):
        dd.donor_class("C1CC")


def test_restrained_relaxation_holds_the_axial_bonds():
    cx = assemble("[O-]C")
    free = xtb.relax_complex(cx)
    held = xtb.relax_complex(cx, axial_distances=[2.15, 2.15])
    assert free.ok and held.ok, (free.message, held.message)
    d_free = structural_descriptors(Complex.from_dict(free.values["complex"]))
    d_held = structural_descriptors(Complex.from_dict(held.values["complex"]))
    assert d_free["axial_distance_mean"] < 2.0                     # GFN2-xTB's too-short anionic bond
    assert d_held["axial_distance_1"] == pytest.approx(2.15, abs=0.03)
    assert d_held["axial_distance_2"] == pytest.approx(2.15, abs=0.03)
    assert held.values["energy"] > free.values["energy"]           # the xTB energy, restraint excluded
    bad = xtb.relax_complex(cx, axial_distances=[2.15])             # one length for two axial donors
    assert not bad.ok and "complex" in bad.message


def test_equatorial_bonds_are_restrained_too_and_calibrated_by_the_equatorial_ligand():
    """GFN2-xTB pushes the equatorial waters out (about +0.1 A against the DFT tier); restrained, they stay at the
    given length while the axial bonds are held as well. The equatorial calibration knows only the ligands it was
    fitted on: water's length is not used for a pyridine plane."""
    cx = assemble("[O-]C")
    free = xtb.relax_complex(cx)
    held = xtb.relax_complex(cx, axial_distances=[2.15, 2.15], equatorial_distances=[2.40] * 5)
    assert free.ok and held.ok, (free.message, held.message)
    d_free = structural_descriptors(Complex.from_dict(free.values["complex"]))
    relaxed = Complex.from_dict(held.values["complex"])
    eq = np.linalg.norm(relaxed.coords[relaxed.equatorial_donors] - relaxed.coords[relaxed.metal_index], axis=1)
    assert d_free["equatorial_distance_mean"] > 2.45
    assert eq == pytest.approx([2.40] * 5, abs=0.03)
    assert structural_descriptors(relaxed)["axial_distance_mean"] == pytest.approx(2.15, abs=0.03)
    cal = dd.fit(["[O-]C", "O"], [2.12, 2.34], equatorial=(["O", "O"], [2.41, 2.37]))
    assert cal.equatorial_distance("O") == pytest.approx(2.39)
    assert cal.equatorial_distance("OC") == pytest.approx(2.39)            # O.sp3 like water
    with pytest.raises(KeyError, match="equatorial"):
        cal.equatorial_distance("n1ccccc1")                                # no fallback to all donors
    assert cal.distance("n1ccccc1") == pytest.approx(2.23)                 # the axial one keeps it


def test_axial_angles_are_calibrated_per_class_only():
    """The angle at the donor is fitted per donor class and never borrowed from another class of the same element
    and charge (O-bound cyanate and hydroxide: 106 against 161 degrees); a class without DFT complexes, or a
    one-atom ligand, keeps GFN2-xTB's angle (None)."""
    cal = dd.fit(["[OH-]", "[O-]C", "[O-]C#N", "O", "[F-]"], [2.12, 2.07, 2.25, 2.34, 2.10],
                 angles=[161.0, 150.0, 106.0, 127.4, float("nan")])
    assert cal.angle("[O-]CC") == pytest.approx(155.5)             # O-.sp3: hydroxide and methoxide
    assert cal.angle("[O-]C#N") == pytest.approx(106.0)            # O-.sp: a pseudohalide
    assert cal.angle("[O-]c1ccccc1") is None                       # O-.sp2: neither hydroxide's nor cyanate's
    assert cal.angle("OC") == pytest.approx(127.4)
    assert cal.angle("n1ccccc1") is None                           # no N.sp2 complex: free
    assert cal.angle("[F-]") is None and "F-.sp3" not in cal.angles
    assert dd.Calibration(**cal.to_dict()) == cal


def test_fast_tier_relaxes_isocyanate_at_the_targets_where_300_K_failed(monkeypatch):
    """[Y(H2O)5(NCO)2]+ with the axial bonds at azide's DFT length and the waters at the mean of the other six DFT
    complexes (the geometry bench's held-out targets): at 300 K GFN2-xTB's SCF failed on the way there
    (bench/results/xtb_relax_protocols_*.json); with the fast tier's settings (xtb.FAST_TIER: Fermi smearing at
    1000 K, the calibrated angle at the donor) the relaxation finishes at the calibrated lengths and angle."""
    cal = dd.fit(["[N-]=[N+]=[N-]", "O"], [2.2272, 2.3428], equatorial=(["O", "O"], [2.3895, 2.3895]),
                 angles=[161.5, 127.5])
    monkeypatch.setattr(dd, "shipped", lambda: cal)
    cx = assemble("[N-]=C=O", relax="rotate")
    held = xtb.relax_complex(cx, **xtb.FAST_TIER)
    assert held.ok, held.message
    relaxed = Complex.from_dict(held.values["complex"])
    assert structural_descriptors(relaxed)["axial_distance_mean"] == pytest.approx(2.227, abs=0.03)
    m = relaxed.coords[relaxed.metal_index]
    for donor in relaxed.axial_donors:
        u, v = m - relaxed.coords[donor], relaxed.coords[xtb.donor_neighbour(relaxed, donor)] - relaxed.coords[donor]
        assert np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))) == pytest.approx(161.5, abs=4)


def test_cyanate_held_at_its_dft_lengths_and_angles():
    """O-bound cyanate: GFN2-xTB lays it nearly side-on (Y-O-C about 77 degrees; DFT 104-109). Moved in to its DFT
    length beside the rigid waters, GFN2-xTB's SCF does not converge (seen in the geometry bench), so the
    relaxation starts from the assembled geometry and the restraints pull; the angle restraints keep Y-O-C and the
    bend of O-Y-O that DFT has."""
    cx = assemble("[O-]C#N", relax="rotate")
    held = xtb.relax_complex(cx, axial_distances=[2.225] * 2, equatorial_distances=[2.40] * 5,
                             axial_angles=[106.0] * 2, trans_angle=163.0)
    assert held.ok, held.message
    relaxed = Complex.from_dict(held.values["complex"])
    assert structural_descriptors(relaxed)["axial_distance_mean"] == pytest.approx(2.225, abs=0.03)
    assert structural_descriptors(relaxed)["axial_angle"] == pytest.approx(163.0, abs=3)       # O-Y-O
    m = relaxed.coords[relaxed.metal_index]
    for donor in relaxed.axial_donors:
        carbon = relaxed.coords[xtb.donor_neighbour(relaxed, donor)]
        assert relaxed.symbols[xtb.donor_neighbour(relaxed, donor)] == "C"
        u, v = m - relaxed.coords[donor], carbon - relaxed.coords[donor]
        assert np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))) == pytest.approx(106.0, abs=3)


def test_restraint_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(12)
    terms = [(0, 1, 2, 1.9), (1, 2, 3.0), (3, 1, 2, 2.5)]          # two angles at atom 1, one distance
    _, grad = xtb._restraint(x, terms, 2.0)
    step = 1e-6
    numeric = [(xtb._restraint(x + step * e, terms, 2.0)[0] - xtb._restraint(x - step * e, terms, 2.0)[0]) / (2 * step)
               for e in np.eye(12)]
    assert grad == pytest.approx(numeric, abs=1e-7)


def test_relaxation_method_is_a_setting_and_an_unknown_one_a_status():
    cx = assemble("[O-]C")
    gfn1 = xtb.relax_complex(cx, method="GFN1-xTB")
    assert gfn1.ok and structural_descriptors(Complex.from_dict(gfn1.values["complex"]))["axial_distance_mean"] > 1.9
    bad = xtb.relax_complex(cx, method="GFN3-xTB")
    assert not bad.ok and "GFN3-xTB" in bad.message


def _xyz(name):
    lines = (Path(__file__).parent / "fixtures" / "geometries" / name).read_text().splitlines()
    n = int(lines[0])
    return [line.split()[0] for line in lines[2:2 + n]], np.array([[float(v) for v in line.split()[1:4]]
                                                                     for line in lines[2:2 + n]])


def test_metal_contacts_tell_a_chelate_from_the_monodentate_complex():
    """Real geometries of the DFT campaign: hydroxide stays seven-coordinate; GFN2-xTB makes nitrite chelate,
    which the geometry bench then leaves out of the calibration."""
    from gauss_hpc.chem.descriptors import metal_contacts

    symbols, coords = _xyz("dy_h2o5_oh2_bp86.xyz")
    assert len(metal_contacts(symbols, coords, 0)) == 7
    symbols, coords = _xyz("y_h2o5_nitrite2_gfn2.xyz")
    bound = metal_contacts(symbols, coords, 0)
    assert len(bound) > 7 and sum(symbols[i] == "O" for i in bound) == 9      # 5 waters + 2 x 2 nitrite O


def test_a_relaxation_that_makes_a_chelate_fails_with_that_reason(tmp_path):
    """GFN2-xTB binds nitrite through both O (the DFT campaign's nitrite did that): the xtb_relax step fails with
    reason chelated and keeps the geometry; water's relaxation goes on."""
    from gauss_hpc import jobs, store

    spec = {"campaign": {"name": "chelate", "executor": "debug"},
            "input": {"smiles": ["[O-]N=O", "O"], "names": ["nitrite", "water"]},
            "steps": [{"name": "assemble"}, {"name": "xtb_relax", "params": {"swap_to": "Y", "max_steps": 300}}]}
    jobs.submit(spec, tmp_path / "c").wait()
    table = store.read_results(jobs.gather(tmp_path / "c", quiet=True)).set_index("name")
    assert table.loc["water", "status"] == "ok"
    assert table.loc["nitrite", "status"] == "failed" and "(chelated;" in table.loc["nitrite", "message"]
    assert "relaxation bound atom O" in table.loc["nitrite", "message"]


def test_second_set_relaxes_with_the_fast_tier_settings():
    """jobs/casscf_second_set.toml spells the fast tier out (a spec says what runs); it must stay xtb.FAST_TIER."""
    import tomllib

    spec = tomllib.loads((Path(__file__).parents[1] / "jobs" / "casscf_second_set.toml").read_text())
    relax = next(step for step in spec["steps"] if step["name"] == "xtb_relax")
    assert relax["params"] == xtb.FAST_TIER
