"""Templates render complete inputs from typed contexts; missing or inconsistent values are errors naming the
input; the ORCA inputs follow the published protocol."""

import re

import numpy as np
import pytest

from gauss_hpc.abinitio import templates as t
from gauss_hpc.chem.complexes import assemble, swap_metal

METHANOLATE = t.Geometry.from_arrays(["O", "C", "H", "H", "H"],
                                     [[0, 0, 0], [1.33, 0, 0], [1.75, 1.01, 0], [1.75, -0.505, 0.875],
                                      [1.75, -0.505, -0.875]], -1, 1)


@pytest.fixture(scope="module")
def dy_ome():
    return assemble("[O-]C", name="Dy_OMe2")


def test_loprop_input_has_geometry_charge_and_method():
    text = t.render("molcas/loprop.inp.j2", t.LoPropContext(name="methanolate", geometry=METHANOLATE))
    assert "&LOPROP" in text and "KSDFT = PBE" in text and "Basis = ANO-R1" in text
    assert re.search(r"Charge = -1\b", text)
    assert len(re.findall(r"^\s+[A-Z][a-z]?\s+-?\d+\.\d{8}", text, flags=re.M)) == 5
    assert "UHF" not in text                # closed-shell anion: restricted Kohn-Sham
    assert not re.search(r"^\s*\*", text, flags=re.M), "pymolcas here aborts on '*' comment lines"


def test_molcas_casscf_input_follows_the_working_recipe(dy_ome):
    ctx = t.MolcasCasscfContext(name=dy_ome.name, geometry=t.Geometry.from_complex(dy_ome), metal_index=0)
    text = t.render("molcas/casscf_so.inp.j2", ctx)
    for line in ("Douglas-Kroll", "AMFI", "RICD", "Spin = 6", "nActEl = 9 0 0", "Ras2 = 7", "CIRoot = 21 21 1",
                 "MEES", "&SINGLE_ANISO", "Basis = ANO-RCC-VDZP, Dy.ANO-RCC-VDZP"):
        assert line in text, line
    # [Dy(H2O)5(OMe)2]+: 150 - 1 = 149 electrons, 9 active -> 70 doubly occupied inactive orbitals
    assert "Inactive = 70" in text
    mltp = text.split("MLTP")[1].split()
    assert mltp[0] == "8" and mltp[1:9] == ["2"] * 8     # one pseudospin 1/2 per Kramers doublet
    angmom = [float(v) for v in re.search(r"AngMom = (.*)", text).group(1).split()]
    assert np.allclose(angmom, np.asarray(dy_ome.coords[0]) / 0.529177210903)


def test_fselect_guess_splits_integrals_from_correlation(dy_ome):
    ctx = t.MolcasCasscfContext(name="x", geometry=t.Geometry.from_complex(dy_ome), metal_index=0,
                                orbital_file="/w/x.guess.h5")
    text = t.render("molcas/casscf_so.inp.j2", ctx)
    assert "&GATEWAY" not in text and "FileOrb = /w/x.guess.h5" in text and "TypeIndex" in text
    assert "&SEWARD" in t.render("molcas/integrals.inp.j2", ctx)


def test_orca_constrained_optimisation_follows_the_protocol(dy_ome):
    y = swap_metal(dy_ome, "Y")
    ctx = t.OrcaOptContext(name=y.name, geometry=t.Geometry.from_complex(y), metal_index=0,
                           constraints=t.equatorial_plane_constraints(y))
    text = t.render("orca/opt.inp.j2", ctx)
    keywords = text.splitlines()[1].split()
    assert keywords[0] == "!" and {"BP86", "D3BJ", "DKH2", "DKH-def2-TZVPP", "Opt"} <= set(keywords)
    assert 'NewGTO Y "SARC-DKH-TZVP"' in text and "TolE 1e-08" in text
    assert "* xyz 1 1" in text                         # Y(III): closed shell, charge +1
    angles = re.findall(r"\{ A (\d+) (\d+) (\d+) ([\d.]+) C \}", text)
    dihedrals = re.findall(r"\{ D (\d+) (\d+) (\d+) (\d+) ([\d.]+) C \}", text)
    assert len(angles) == 5 and len(dihedrals) == 5
    eq = set(dy_ome.equatorial_donors)
    coords = np.asarray(y.coords)
    for i, m, k, value in angles:
        i, m, k = int(i), int(m), int(k)
        assert m == 0 and {i, k} <= eq and float(value) == 72.0
        a, b = coords[i] - coords[0], coords[k] - coords[0]      # neighbours in the ring, ~72 deg apart now
        assert abs(np.degrees(np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))) - 72) < 10
    assert {int(d[0]) for d in dihedrals} == eq and all(float(d[4]) == 180.0 for d in dihedrals)
    relaxed = t.render("orca/opt.inp.j2", t.OrcaOptContext(name=y.name, geometry=t.Geometry.from_complex(y),
                                                            metal_index=0))
    assert "Constraints" not in relaxed and "Opt" in relaxed


def test_orca_casscf_soc_follows_the_protocol(dy_ome):
    ctx = t.OrcaCasscfContext(name=dy_ome.name, geometry=t.Geometry.from_complex(dy_ome), metal_index=0)
    text = t.render("orca/casscf_soc.inp.j2", ctx)
    for line in ("nel 9", "norb 7", "mult 6", "nroots 21", "dosoc true", 'NewGTO Dy "SARC2-DKH-QZVP"', "DKH2",
                 "* xyz 1 6", "doaniso true", "MLTP 2,2,2,2,2,2,2,2\n"):     # the ANISO block of ORCA 6's inputs
        assert line in text, line


def test_missing_value_is_an_error_naming_the_input():
    with pytest.raises(t.TemplateError, match="methanolate.*basis"):
        t.render("molcas/loprop.inp.j2", t.LoPropContext(name="methanolate", geometry=METHANOLATE, basis=""))


def test_name_cannot_break_the_input():
    with pytest.raises(t.TemplateError, match="control characters"):
        t.render("molcas/loprop.inp.j2", t.LoPropContext(name="a\n&RASSCF", geometry=METHANOLATE))


def test_template_variable_the_context_lacks_is_an_error(tmp_path):
    (tmp_path / "molcas").mkdir()
    (tmp_path / "molcas" / "loprop.inp.j2").write_text("&SCF\n  KSDFT = {{ functionl }}\n")
    with pytest.raises(t.TemplateError, match="functionl"):
        t.render("molcas/loprop.inp.j2", t.LoPropContext(name="m", geometry=METHANOLATE), template_dir=tmp_path)


def test_user_template_directory_overrides_one_template_only(tmp_path):
    (tmp_path / "molcas").mkdir()
    (tmp_path / "molcas" / "loprop.inp.j2").write_text("&GATEWAY\n  Basis = {{ basis }}\n&SCF\n  KSDFT = B3LYP\n")
    ctx = t.LoPropContext(name="m", geometry=METHANOLATE)
    assert "B3LYP" in t.render("molcas/loprop.inp.j2", ctx, template_dir=tmp_path)
    dy = t.Geometry.from_arrays(["Dy", "O"], [[0, 0, 0], [2.3, 0, 0]], 1, 6)
    other = t.MolcasCasscfContext(name="DyO", geometry=dy, metal_index=0)
    assert "RASSCF" in t.render("molcas/casscf_so.inp.j2", other, template_dir=tmp_path)
    with pytest.raises(t.TemplateError, match="does not exist"):
        t.render("molcas/loprop.inp.j2", ctx, template_dir=tmp_path / "nowhere")


def test_charge_multiplicity_mismatch_names_the_complex(dy_ome):
    wrong = t.Geometry.from_arrays(dy_ome.symbols, dy_ome.coords, charge=0, multiplicity=6)   # 150 e, even
    with pytest.raises(t.TemplateError, match="Dy_OMe2.*150 electrons.*multiplicity 6"):
        t.render("molcas/casscf_so.inp.j2", t.MolcasCasscfContext(name="Dy_OMe2", geometry=wrong, metal_index=0))


def test_element_without_basis_names_basis_and_element(dy_ome):
    ctx = t.OrcaCasscfContext(name="Dy_OMe2", geometry=t.Geometry.from_complex(dy_ome), metal_index=0,
                              basis="DKH-def2-TZVPP", metal_basis="DKH-def2-TZVPP")
    with pytest.raises(t.TemplateError, match="Dy_OMe2.*DKH-def2-TZVPP.*Dy"):
        t.render("orca/casscf_soc.inp.j2", ctx)
    y = swap_metal(dy_ome, "Y")      # the protocol's Dy basis does not exist for Y: a mistake worth catching
    ctx = t.OrcaOptContext(name=y.name, geometry=t.Geometry.from_complex(y), metal_index=0,
                           metal_basis="SARC2-DKH-QZVP")
    with pytest.raises(t.TemplateError, match="Dy_OMe2_Y.*SARC2-DKH-QZVP has no functions for Y"):
        t.render("orca/opt.inp.j2", ctx)
