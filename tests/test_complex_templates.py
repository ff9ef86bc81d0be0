"""Complex templates as data (gauss_hpc/complex_templates.toml, chem/templates.py): every shipped template is built
by molSimplify for real, screened by the crystal field of its own ion, and reachable from job specs and screen."""

import numpy as np
import pytest

from gauss_hpc.abinitio import crystal_field as cf
from gauss_hpc.abinitio.result import Status
from gauss_hpc.chem.complexes import assemble_detailed
from gauss_hpc.chem.templates import DEFAULT, template, templates
from gauss_hpc.abinitio import molsimplify as steps
from gauss_hpc.jobs.steps import check_params


@pytest.mark.parametrize("name", sorted(templates()))
def test_each_template_builds_and_screens(name):
    t = templates()[name]
    for ligand in ("[O-]C", "n1ccccc1"):
        cx = assemble_detailed(ligand, **t.assemble_params()).complex
        assert cx.metal == t.metal and len(cx.equatorial_donors) == t.n_equatorial and len(cx.axial_donors) == 2
        distances = np.linalg.norm(cx.coords[cx.equatorial_donors + cx.axial_donors] - cx.coords[cx.metal_index],
                                   axis=1)
        assert (distances > 2.0).all() and (distances < 2.8).all()
        assert cx.equatorial_smiles == ([] if t.equatorial == "O" else [t.equatorial] * t.n_equatorial)
        result = cf.kd_energies(cx)
        assert result.ok, result.message
        assert result.values["ion"].startswith(f"{t.metal}(III)")


def test_the_ion_of_the_template_decides_what_a_strong_axial_ligand_does():
    """Methoxide on the axis of the same water template: a large KD1 for oblate Dy(III), a small one for prolate
    Er(III) (its largest |M| is pushed up instead of down)."""
    kd1 = {}
    for name in ("dy_h2o5_pbp", "er_h2o5_pbp"):
        cx = assemble_detailed("[O-]C", **template(name).assemble_params()).complex
        kd1[name] = cf.kd_energies(cx).values["kd_gaps"][0]
    assert kd1["dy_h2o5_pbp"] > 200 and kd1["er_h2o5_pbp"] < 50


def test_templates_in_job_steps_and_their_errors(tmp_path):
    made = steps.assemble("[O-]C", tmp_path, name="m", template="dy_thf5_pbp")
    assert made.ok and made.values["template"] == "dy_thf5_pbp"
    assert made.values["complex"]["equatorial_smiles"] == ["O1CCCC1"] * 5
    assert steps.assemble("[O-]C", tmp_path, name="m").values["template"] == DEFAULT
    clash = steps.assemble("[O-]C", tmp_path, name="m", template="dy_thf5_pbp", metal="Er")
    assert clash.status == Status.INVALID_INPUT and "contradict template" in clash.message
    unknown = steps.assemble("[O-]C", tmp_path, name="m", template="dy_nope")
    assert unknown.status == Status.INVALID_INPUT and "dy_h2o5_pbp" in unknown.message
    check_params("assemble", "molsimplify", "", {"template": "dy_py5_pbp", "relax": "none"})
    with pytest.raises(ValueError, match="templat"):
        check_params("assemble", "molsimplify", "", {"templat": "dy_py5_pbp"})


def test_screen_with_another_template(tmp_path):
    from gauss_hpc import store
    from gauss_hpc.screen import main

    (tmp_path / "l.smi").write_text("[O-]C\tmethoxide\nO\twater\n")
    assert main([str(tmp_path / "l.smi"), "--out", str(tmp_path / "s.h5"), "--template", "dy_py5_pbp",
                 "--quiet"]) == 0
    table = store.read_results(tmp_path / "s.h5", ["name", "status"])
    assert table["status"].tolist() == ["ok", "ok"]
    assert main([str(tmp_path / "l.smi"), "--out", str(tmp_path / "x.h5"), "--template", "nope", "--quiet"]) == 2
