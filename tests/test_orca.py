"""ORCA backend. ORCA cannot be installed here (licence), so: inputs are rendered and checked against the
protocol (tests/test_templates.py), the optimisation parser runs on real ORCA 5.0 / 6.0 outputs from cclib's test
data (tests/fixtures/orca, BSD-3), failure paths on the same outputs cut in half, and a missing ORCA must give
PROGRAM_MISSING. No real ORCA CASSCF/QDPT output was found in public parser test suites, so the QDPT parser is
only checked to reject outputs without a QDPT section."""

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
    assert result.status == Status.PARSE_ERROR and "QDPT" in result.message


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
