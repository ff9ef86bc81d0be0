"""ORCA backend. ORCA cannot be installed here (licence), so: inputs are rendered and checked against the
protocol (tests/test_templates.py), the optimisation parser runs on real ORCA 5.0 / 6.0 outputs from cclib's test
data (tests/fixtures/orca, BSD-3), the QDPT parser on real ORCA 6.1.1 CASSCF+SOC outputs written by fBlockKit's
author (Dy(acac)3(H2O)2 with SINGLE_ANISO, CO+ with KRAMERS PAIR g-matrices, CO+ with NEVPT2 and both QDPT blocks,
the O2 triplet with no Kramers pairs;
Apache-2.0, trimmed, see tests/fixtures/orca/README.md), failure paths on the same outputs cut in half, and a
missing ORCA must give PROGRAM_MISSING."""

import re
from pathlib import Path

import numpy as np
import pytest

from gauss_hpc.abinitio import orca
from gauss_hpc.abinitio.result import Status
from gauss_hpc.chem.complexes import assemble, swap_metal

FIXTURES = Path(__file__).parent / "fixtures" / "orca"
# final energies (Eh) printed by the two real runs of divinylbenzene, B3LYP/STO-3G
OUTPUTS = {"orca5.0_dvb_gopt.out": -382.055133372796, "orca6.0_dvb_gopt.out": -382.055133399486}


@pytest.mark.parametrize("filename", sorted(OUTPUTS))
def test_parse_real_optimisation(filename):
    result = orca.parse_opt(FIXTURES / filename, name="dvb")
    assert result.ok, result.message
    v = result.values
    assert v["energy"] == pytest.approx(OUTPUTS[filename], abs=1e-9)
    assert v["symbols"].count("C") == 10 and v["symbols"].count("H") == 10
    xyz = np.asarray(v["coordinates"])
    assert xyz.shape == (20, 3)
    assert np.allclose(xyz[:, 2], 0.0, atol=1e-4)            # planar C2h divinylbenzene stays planar
    assert np.allclose(xyz[:10], -xyz[[1, 0, 3, 2, 5, 4, 7, 6, 9, 8]], atol=1e-4)   # inversion centre
    cc = np.linalg.norm(xyz[0] - xyz[2])
    assert 1.35 < cc < 1.50
    assert v["program_version"].startswith(filename[4:7])


@pytest.mark.parametrize("filename", sorted(OUTPUTS))
def test_real_output_cut_in_half_is_truncated(filename, tmp_path):
    text = (FIXTURES / filename).read_text()
    cut = tmp_path / filename
    cut.write_text(text[: len(text) // 2])
    result = orca.parse_opt(cut, name="dvb")
    assert result.status == Status.TRUNCATED_OUTPUT and "dvb" in result.message


def test_missing_output(tmp_path):
    assert orca.parse_opt(tmp_path / "none.out", name="dvb").status == Status.MISSING_OUTPUT


def test_optimisation_output_has_no_qdpt_section():
    result = orca.parse_qdpt(FIXTURES / "orca5.0_dvb_gopt.out", name="dvb")
    assert result.status == Status.PARSE_ERROR and "QDPT" in result.message and "dvb" in result.message


DY_ACAC = FIXTURES / "orca6.1_dy_acac_casscf_soc_aniso.out"
CO_PLUS = FIXTURES / "orca6.1_coplus_casscf_soc_gtensor_aniso.out"
O2 = FIXTURES / "orca6.1_o2_triplet_casscf_soc.out"
CO_PLUS_NEVPT2 = FIXTURES / "orca6.1_coplus_nevpt2_soc.out"
# as printed by ORCA 6.1.1 for Dy(acac)3(H2O)2: QDPT levels (cm-1) and SINGLE_ANISO g main values per doublet
DY_ACAC_KD = [0.00, 139.34, 209.25, 259.46, 297.25, 381.34, 436.49, 496.66]
DY_ACAC_G = [[0.00526983, 0.00698319, 19.52763174], [0.27026311, 0.48767657, 15.68224160],
             [2.16861375, 3.23549936, 11.07091200], [3.26215542, 5.75022645, 7.36398231],   # printed 7.36, 5.75, 3.26
             [1.72472905, 2.94092667, 13.99496988], [0.03654659, 0.09286921, 16.20358959],
             [0.03841590, 0.06760290, 18.91367466], [0.00972842, 0.01914360, 19.32963356]]


def test_real_orca6_dy_qdpt_with_single_aniso():
    result = orca.parse_qdpt(DY_ACAC, name="Dy_acac")
    assert result.ok and result.message == "", result.message
    assert result.method == "casscf"              # the level of theory the report and merge go by
    v = result.values
    assert v["program_version"] == "6.1.1" and v["qdpt_energies"] == "casscf"
    assert len(v["so_energies"]) == 126                         # 21 sextets x 6
    assert v["kd_energies"] == pytest.approx(DY_ACAC_KD, abs=1e-9)          # 8 doublets: SINGLE_ANISO's groups
    assert v["kd_gaps"] == pytest.approx(np.asarray(DY_ACAC_KD[1:]) - DY_ACAC_KD[0], abs=1e-9)   # dE0i
    assert v["g_source"] == "single_aniso" and np.allclose(v["g_tensors"], DY_ACAC_G, atol=1e-9, rtol=0)
    axes = np.asarray(v["g_axes"])                              # main magnetic axes, as printed for doublet 1
    assert axes[0].tolist() == [[-0.896627, 0.390170, -0.209349], [0.097549, -0.287122, -0.952914],
                                [-0.431907, -0.874831, 0.219381]]
    assert np.allclose(axes @ np.swapaxes(axes, 1, 2), np.eye(3), atol=1e-5)     # all 8 doublets, orthonormal
    assert np.allclose(np.abs(np.linalg.det(axes)), 1, atol=1e-5)   # sorting gX <= gY <= gZ kept axes with values
    assert v["symbols"][0] == "Dy" and len(v["symbols"]) == 49 and v["coordinates"][0] == [0.0, 0.0, 0.0]


def test_dy_fixture_transcription_is_self_consistent():
    """The trimmed fixture was copied by hand from the public output: its QDPT levels (2 decimals) must agree
    with SINGLE_ANISO's own printout of the same spectrum (4 decimals), the eV column with the cm-1 column."""
    from gauss_hpc.abinitio import aniso

    text = DY_ACAC.read_text()
    levels, _ = orca.qdpt_levels(text)
    section = aniso.parse_single_aniso(text)
    assert np.allclose(levels, section.so_energies, atol=0.0051) and section.groups == [2] * 8
    import re
    rows = re.findall(r"^\s*(\d+):\s+(\S+)\s+(\S+)\s+\S+$", text, flags=re.M)
    assert [int(r[0]) for r in rows] == list(range(126))
    assert np.allclose([float(r[1]) / 8065.544 for r in rows], [float(r[2]) for r in rows], atol=1e-4)
    symbols, _ = orca.final_geometry(text)
    assert sorted((s, symbols.count(s)) for s in set(symbols)) == [("C", 15), ("Dy", 1), ("H", 25), ("O", 8)]


def test_fewer_doublets_on_request_and_nevpt2_block_absent():
    result = orca.parse_qdpt(DY_ACAC, name="Dy_acac", n_doublets=3)
    assert result.ok and result.values["kd_energies"] == pytest.approx(DY_ACAC_KD[:3])
    result = orca.parse_qdpt(DY_ACAC, name="Dy_acac", energies="nevpt2")
    assert result.status == Status.PARSE_ERROR and "NEVPT2" in result.message and "CASSCF" in result.message
    result = orca.parse_qdpt(DY_ACAC, name="Dy_acac", energies="caspt2")
    assert result.status == Status.INVALID_INPUT and "caspt2" in result.message


def test_real_orca6_nevpt2_qdpt_block_is_chosen_by_the_energies_option():
    """fBlockKit's CO+ run with `! NEVPT2` and DoSOC: ORCA printed two QDPT blocks (CASSCF, then NEVPT2 diagonal
    energies); `energies` picks one, CASSCF by default. 18 states of a doublet and a quartet: 9 Kramers pairs."""
    casscf = orca.parse_qdpt(CO_PLUS_NEVPT2, name="COplus")
    nevpt2 = orca.parse_qdpt(CO_PLUS_NEVPT2, name="COplus", energies="nevpt2")
    assert casscf.ok and nevpt2.ok, (casscf.message, nevpt2.message)
    assert casscf.values["qdpt_energies"] == "casscf" and nevpt2.values["qdpt_energies"] == "nevpt2"
    assert casscf.values["kd_energies"] == pytest.approx(
        [0.0, 28536.65, 28649.67, 55748.43, 55748.44, 67653.45, 67661.23, 67669.01, 67676.81])
    assert nevpt2.values["kd_energies"] == pytest.approx(
        [0.0, 27141.98, 27255.01, 56032.08, 56032.09, 66242.75, 66250.16, 66259.08, 66266.51])
    assert len(nevpt2.values["so_energies"]) == 18 and nevpt2.values["program_version"] == "6.1.1"
    assert all(np.isnan(g).all() for g in nevpt2.values["g_tensors"])        # no DoGTensor, no ANISO: NaN, said
    assert "no g-tensors" in nevpt2.message and nevpt2.values["symbols"] == ["C", "O"]


def test_nevpt2_fixture_transcription_is_self_consistent():
    """Each block's 'Eigenvalues:' rows (2 decimals) agree with its 'Energy levels' rows (3 decimals) and its eV
    column: the trimmed file kept ORCA's numbers as printed."""
    text = CO_PLUS_NEVPT2.read_text()
    for heading in orca.QDPT_HEADINGS.values():
        block = text[text.index(heading):]
        levels = orca.qdpt_levels(block, "casscf" if "CASSCF" in heading else "nevpt2")[0]
        part = block[block.index("Energy levels:"):]
        rows = re.findall(r"^\s*\d+ :\s+(\d+\.\d{3})\s+(\d+\.\d{4})", part, flags=re.M)[:18]
        assert len(levels) == len(rows) == 18
        assert np.allclose(levels, [float(r[0]) for r in rows], atol=0.006)
        assert np.allclose([float(r[0]) / 8065.544 for r in rows], [float(r[1]) for r in rows], atol=1e-4)


def test_real_orca6_kramers_pair_g_matrix_and_single_aniso(tmp_path):
    result = orca.parse_qdpt(CO_PLUS, name="COplus")
    assert result.ok, result.message
    v = result.values
    assert v["kd_energies"] == pytest.approx([0.0, 29361.20]) and v["symbols"] == ["C", "O"]
    # SINGLE_ANISO printed (1.99999879, 1.99999879, 1.99952120) for the first pair: kept as gX <= gY <= gZ
    assert np.allclose(v["g_tensors"], [[1.99952120, 1.99999879, 1.99999879], [1.99999879, 1.99999879, 2.00047880]],
                       atol=1e-9, rtol=0)
    # without the SINGLE_ANISO section, ORCA's own KRAMERS PAIR g-factors are used, NaN for the second pair
    text = CO_PLUS.read_text()
    cut = tmp_path / "no_aniso.out"
    cut.write_text(text[:text.index("  Calling the SINGLE_ANISO program")] + text[text.index("Timings for"):])
    v = orca.parse_qdpt(cut, name="COplus").values
    assert v["g_source"] == "kramers_pair" and v["g_tensors"][0] == [2.0017987, 2.0022529, 2.0023224]
    assert all(np.isnan(v["g_tensors"][1]))


def test_integer_spin_ion_has_no_kramers_doublets():
    result = orca.parse_qdpt(O2, name="O2")
    assert result.status == Status.PARSE_ERROR and "not Kramers pairs" in result.message
    assert "integer-spin" in result.message and "O2" in result.message
    result = orca.parse_qdpt(O2, name="O2", require_kramers=False)
    assert result.ok and "kd_energies" not in result.values and "no Kramers doublets" in result.message
    assert result.values["so_energies"][:3] == [0.0, 2.18, 2.18]


@pytest.mark.parametrize("path", [DY_ACAC, CO_PLUS])
def test_real_qdpt_output_cut_before_the_end_is_truncated(path, tmp_path):
    text = path.read_text()
    cut = tmp_path / path.name
    cut.write_text(text[: text.index("Eigenvalues:") + 400])      # killed while printing the QDPT levels
    result = orca.parse_qdpt(cut, name="cut")
    assert result.status == Status.TRUNCATED_OUTPUT and "cut" in result.message


def test_near_degenerate_doublets_stay_two_doublets():
    from gauss_hpc.abinitio.aniso import kramers_doublets

    kd, gaps = kramers_doublets([0.0, 0.0, 0.08, 0.08, 54.3, 54.3], None)     # a cubic Er(III)-like spectrum
    assert kd == pytest.approx([0.0, 0.08, 54.3]) and gaps == pytest.approx([0.08, 54.3])      # above the ground


def test_missing_orca_is_a_status_not_an_exception(tmp_path, monkeypatch):
    monkeypatch.delenv("ORCA", raising=False)
    if orca.program_path() is not None:
        pytest.skip("ORCA is installed here: the missing-program path cannot be exercised")
    cx = swap_metal(assemble("[O-]C", name="Dy_OMe2"), "Y")
    for step in ("opt_constrained", "opt"):
        result = orca.STEPS[step](cx, tmp_path / step)
        assert result.status == Status.PROGRAM_MISSING and "Dy_OMe2_Y" in result.message
        text = (tmp_path / step / f"Dy_OMe2_Y_{step}.inp").read_text()   # the input is there for another machine
        assert ("Constraints" in text) == (step == "opt_constrained")
    dy = assemble("[O-]C", name="Dy_OMe2")
    result = orca.STEPS["casscf"](dy, tmp_path / "cas")
    assert result.status == Status.PROGRAM_MISSING and "nroots 21" in (tmp_path / "cas" / "Dy_OMe2_casscf.inp").read_text()


def test_bad_input_is_a_status_naming_the_complex(tmp_path):
    y = swap_metal(assemble("[O-]C", name="Dy_OMe2"), "Y")
    result = orca.optimise(y, constrained=True, workdir=tmp_path, metal_basis="SARC2-DKH-QZVP")
    assert result.status == Status.INVALID_INPUT and "Dy_OMe2_Y" in result.message and " Y" in result.message


@pytest.mark.parametrize("metal, nel, mult, nroots, groups", [("Dy", 9, 6, 21, 8), ("Er", 11, 4, 35, 8),
                                                              ("Tb", 8, 7, 7, 6), ("Yb", 13, 2, 7, 4)])
def test_casscf_input_follows_the_ion(metal, nel, mult, nroots, groups, tmp_path):
    cx = swap_metal(assemble("[OH-]", relax="none"), metal)
    context = orca.casscf_context(cx)
    (inp,) = orca.render_casscf(context, tmp_path)
    text = inp.read_text()
    assert f"nel {nel}" in text and f"mult {mult}" in text and f"nroots {nroots}" in text
    assert f"MLTP {','.join(['2'] * groups)}" in text and f"* xyz 1 {mult}" in text
