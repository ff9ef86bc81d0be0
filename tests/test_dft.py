"""The DFT geometry tier (gauss_hpc.abinitio.pyscf_dft): PySCF + geomeTRIC run for real in a child process, on the
real [Y(H2O)5(OH)2]+ with the coarsest grid and one step per phase (the machinery, not the chemistry: the tier's numbers
are in docs/geometry_tiers.md, from bench/dft_tier.py)."""

import json
import time

import numpy as np
import pytest

from gauss_hpc.abinitio import pyscf_dft
from gauss_hpc.abinitio.result import Status
from gauss_hpc.chem.complexes import assemble
from gauss_hpc.jobs import steps

pytestmark = pytest.mark.program       # PySCF optimisations, a minute or two

pytest.importorskip("pyscf")
pytest.importorskip("geometric")


@pytest.fixture(scope="module")
def hydroxide():
    return assemble("[OH-]", relax="none")


def _angle(coords, a, m, b):
    u, v = coords[a] - coords[m], coords[b] - coords[m]
    return np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))


def test_two_phases_run_hold_the_pentagon_and_resume(hydroxide, tmp_path):
    quick = dict(preset="quick", constrained_steps=1, free_steps=1)
    result = pyscf_dft.relax_complex(hydroxide, workdir=tmp_path, **quick)
    # two steps do not converge a free optimisation: a status with the last geometry kept
    assert result.status == Status.GEOMETRY_NOT_CONVERGED, result.message
    v = result.values
    assert v["relaxed_metal"] == "Y" and v["symbols"][hydroxide.metal_index] == "Y"
    assert v["complex"]["symbols"][hydroxide.metal_index] == "Dy"          # the original metal back
    assert v["phase_steps"]["constrained"] >= 1 and v["phase_steps"]["free"] >= 1
    assert len(v["metal_donor_distances"]) == 7 and all(1.8 < d < 3.0 for d in v["metal_donor_distances"])
    constrained = np.asarray(json.loads((tmp_path / "phase_constrained.json").read_text())["coordinates"])
    ring = pyscf_dft.equatorial_ring(hydroxide.coords, hydroxide.metal_index, hydroxide.equatorial_donors,
                                     hydroxide.axial_donors)
    neighbours = [_angle(constrained, ring[k], hydroxide.metal_index, ring[(k + 1) % 5]) for k in range(5)]
    assert neighbours == pytest.approx([72.0] * 5, abs=0.5)
    # a rerun in the same directory resumes after the finished phases: nothing is computed again
    start = time.monotonic()
    again = pyscf_dft.relax_complex(hydroxide, workdir=tmp_path, **quick)
    assert time.monotonic() - start < 20
    assert np.allclose(again.values["coordinates"], v["coordinates"])
    # killed inside the free phase (its record not written): the rerun continues from the latest geometry
    latest = json.loads((tmp_path / "latest_free.json").read_text())
    (tmp_path / "phase_free.json").unlink()
    resumed = pyscf_dft.relax_complex(hydroxide, workdir=tmp_path, **quick)
    assert resumed.values["phase_steps"]["free"] > latest["steps"]
    assert resumed.values["phase_steps"]["constrained"] == v["phase_steps"]["constrained"]


def test_timeouts_settings_and_input_are_statuses(hydroxide, tmp_path, monkeypatch):
    late = pyscf_dft.relax_complex(hydroxide, workdir=tmp_path / "late", preset="quick", timeout=1.0)
    assert late.status == Status.TIMEOUT and "resume" in late.message
    monkeypatch.chdir(tmp_path)             # a relative work directory is the same directory for the child
    late = pyscf_dft.relax_complex(hydroxide, workdir="relative", preset="quick", timeout=1.0)
    assert (tmp_path / "relative" / pyscf_dft.INPUT_FILE).is_file()
    assert late.status == Status.TIMEOUT and "resume" in late.message
    bad = pyscf_dft.relax_complex(hydroxide, workdir=tmp_path / "bad", basis_set="def2-svp")
    assert bad.status == Status.INVALID_INPUT and "basis_set" in bad.message
    assert pyscf_dft.dft_relax("[OH-]", tmp_path, name="x").status == Status.INVALID_INPUT


def test_job_spec_params_are_checked_against_the_settings():
    steps.check_params("dft_relax", "pyscf_dft", "", {"basis": "def2-tzvp", "threads": 2})
    with pytest.raises(ValueError, match="basis_set"):
        steps.check_params("dft_relax", "pyscf_dft", "", {"basis_set": "def2-tzvp"})


def test_a_proton_taken_from_a_water_is_another_complex(hydroxide, tmp_path):
    """The phases' geometry (written here as a finished optimisation would) has one water's proton on an axial
    hydroxide: the step fails with bonds_changed and keeps that geometry, instead of passing it on as the
    complex's minimum."""
    first = pyscf_dft.relax_complex(hydroxide, workdir=tmp_path, preset="quick", timeout=1.0)   # writes the request
    assert first.status == Status.TIMEOUT
    coords = hydroxide.coords.copy()
    water_o = hydroxide.equatorial_donors[0]
    water_h = water_o + 1
    axial_o = hydroxide.axial_donors[0]
    coords[water_h] = coords[axial_o] + 0.97 * (coords[water_h] - coords[axial_o]) / np.linalg.norm(
        coords[water_h] - coords[axial_o])
    for phase in pyscf_dft.PHASES:
        (tmp_path / f"phase_{phase}.json").write_text(json.dumps(
            {"phase": phase, "converged": True, "steps": 1, "energy": -1.0, "scf_converged": True,
             "coordinates": coords.tolist(), "seconds": 1.0}))
    result = pyscf_dft.relax_complex(hydroxide, workdir=tmp_path, preset="quick")
    assert result.status == Status.FAILED and "bonds_changed" in result.message and "DFT relaxation" in result.message
    assert np.allclose(result.values["coordinates"], coords)


def test_an_optimisation_that_made_another_molecule_stops_early(hydroxide, tmp_path):
    """Interrupted with one water's proton already on the axial hydroxide (as the amide's optimisation would be):
    the resumed constrained phase gives up after bonds_changed_steps steps with changed bonds and the free phase
    never starts, so no further DFT steps are spent on another complex."""
    first = pyscf_dft.relax_complex(hydroxide, workdir=tmp_path, preset="quick", timeout=1.0)   # writes the request
    assert first.status == Status.TIMEOUT
    coords = hydroxide.coords.copy()
    water_h, axial_o = hydroxide.equatorial_donors[0] + 1, hydroxide.axial_donors[0]
    coords[water_h] = coords[axial_o] + 0.97 * (coords[water_h] - coords[axial_o]) / np.linalg.norm(
        coords[water_h] - coords[axial_o])
    (tmp_path / "latest_constrained.json").write_text(json.dumps({"coordinates": coords.tolist(), "steps": 4,
                                                                  "seconds": 100.0}))
    result = pyscf_dft.relax_complex(hydroxide, workdir=tmp_path, preset="quick", bonds_changed_steps=1)
    assert result.status == Status.FAILED and "bonds_changed" in result.message
    record = json.loads((tmp_path / "phase_constrained.json").read_text())
    assert record["bonds_changed"] and record["steps"] == 5
    assert not (tmp_path / "phase_free.json").exists() and not (tmp_path / "latest_free.json").exists()
