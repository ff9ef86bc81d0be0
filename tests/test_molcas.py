"""OpenMolcas backend on real runs and real logs (tests/fixtures/molcas/README.md says where each log came from)."""

from pathlib import Path

import numpy as np
import pytest

from gauss_hpc.abinitio import molcas
from gauss_hpc.abinitio.result import Status
from gauss_hpc.chem.complexes import Complex, assemble, swap_metal

FIXTURES = Path(__file__).parent / "fixtures" / "molcas"
HAVE_MOLCAS = molcas.program_path() is not None
needs_molcas = pytest.mark.skipif(not HAVE_MOLCAS, reason="OpenMolcas (pymolcas) is not installed: "
                                  "apt-get install openmolcas (scripts/install.sh does) to run the real calculations")


def _cut_in_half(src: Path, dst: Path) -> Path:
    text = src.read_text()
    dst.write_text(text[: len(text) // 2])
    return dst


# ------------------------------------------------------------------------------------------------------- LoProp

def test_loprop_log_of_methanolate():
    result = molcas.parse_loprop(FIXTURES / "loprop_methanolate.log", name="methanolate", charge=-1)
    assert result.ok, result.message
    v = result.values
    assert v["donor_charge"] == pytest.approx(-0.74497469)          # O1 atomic domain, printed by LoProp
    assert v["donor_dipole"] == pytest.approx(0.57096878)
    assert v["donor_polarizability_domain"] == pytest.approx(4.18228232)
    # O1 domain + half of the C2-O1 bond domain (6.06537490): LoProp's atom partition
    assert v["donor_polarizability"] == pytest.approx(4.18228232 + 6.06537490 / 2)
    assert v["total_charge"] == pytest.approx(-1.0, abs=1e-6)
    # the atom partition adds up to the molecular isotropic polarizability LoProp prints (tensor diagonal)
    assert sum(v["atomic_polarizabilities"]) == pytest.approx((33.8240 + 34.5997 + 34.6196) / 3, abs=1e-3)
    assert len(v["atomic_charges"]) == 5


def test_loprop_parse_checks_the_molecular_charge():
    result = molcas.parse_loprop(FIXTURES / "loprop_methanolate.log", name="methanolate", charge=0)
    assert result.status == Status.PARSE_ERROR and "sum to -1.000" in result.message


@needs_molcas
@pytest.mark.program          # a real OpenMolcas run, half a minute
def test_real_loprop_run_of_methanolate(tmp_path):
    result = molcas.label_ligand("[O-]C", name="methanolate", workdir=tmp_path, cores=1, memory_mb=1000)
    assert result.ok, result.message
    v = result.values
    assert v["donor_charge"] < 0                         # the alkoxide O carries most of the negative charge
    assert v["donor_polarizability"] > 0 and v["donor_dipole"] > 0
    assert v["total_charge"] == pytest.approx(-1.0, abs=1e-3)
    assert len(v["atomic_charges"]) == 5                 # O, C, 3 H (donor first)
    assert result.wall_seconds > 0 and Path(v["log"]).is_file()
    assert not (tmp_path / "scratch").exists()           # integrals removed, the log kept


def test_bad_smiles_is_invalid_input_naming_it(tmp_path):
    result = molcas.label_ligand("C1CC", name="broken", workdir=tmp_path)
    assert result.status == Status.INVALID_INPUT and "C1CC" in result.message


def test_missing_program_is_a_status(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))            # no pymolcas on PATH
    result = molcas.label_ligand("[O-]C", name="methanolate", workdir=tmp_path / "w")
    assert result.status == Status.PROGRAM_MISSING and "methanolate" in result.message
    assert (tmp_path / "w" / "methanolate.inp").is_file()


def test_scf_not_converged_log():
    result = molcas.parse_loprop(FIXTURES / "scf_not_converged.log", name="methanolate")
    assert result.status == Status.SCF_NOT_CONVERGED
    assert "methanolate" in result.message and "No convergence after" in result.message


def test_rasscf_not_converged_log():
    result = molcas.parse_casscf(FIXTURES / "rasscf_not_converged.log", name="methanolate_cas")
    assert result.status == Status.CASSCF_NOT_CONVERGED and "rasscf" in result.message


def test_abnormal_termination_carries_openmolcas_message():
    result = molcas.parse_loprop(FIXTURES / "gateway_bad_basis.log", name="methanolate")
    assert result.status == Status.CRASHED
    assert "_RC_INPUT_ERROR_" in result.message and "NOSUCH-BASIS does not exist" in result.message


def test_real_loprop_log_cut_in_half_is_truncated(tmp_path):
    cut = _cut_in_half(FIXTURES / "loprop_methanolate.log", tmp_path / "cut.log")
    result = molcas.parse_loprop(cut, name="methanolate")
    assert result.status == Status.TRUNCATED_OUTPUT and "methanolate" in result.message


def test_missing_log():
    assert molcas.parse_loprop(FIXTURES / "nothing.log", name="x").status == Status.MISSING_OUTPUT


# ------------------------------------------------------------------------------------------------------- CASSCF

def test_kramers_pairing_rejects_unpaired_states():
    kd, gaps = molcas.kramers_doublets([0.0, 0.0, 100.0, 100.0, 250.0, 250.0], 3)
    assert kd == [0.0, 100.0, 250.0] and gaps == [100.0, 250.0]        # dE0i: above the ground doublet
    with pytest.raises(ValueError, match="not Kramers pairs"):
        molcas.kramers_doublets([0.0, 0.0, 100.0, 130.0], 2)
    with pytest.raises(ValueError, match="need 4"):
        molcas.kramers_doublets([0.0, 0.0, 100.0], 2)


def test_4f_selection_on_real_phenolate_guess(tmp_path):
    """OpenMolcas's starting orbitals for [Dy(H2O)5(OPh)2]+ (cheap basis): phenolate pi orbitals lie among the 4f,
    so the plain energy order puts ligand orbitals into the active space (what made the default guess fail)."""
    guess = FIXTURES / "guessorb_DyOPh2_cheap.h5"
    weights = molcas.f_orbital_weights(guess, metal_index=0)
    assert weights.sum() == pytest.approx(7.0, abs=1e-6)      # Mulliken populations of the 7 4f functions
    info = molcas.select_f_orbitals(guess, tmp_path / "g.h5", metal_index=0, n_inactive=102)
    assert info["swapped_into_active"] == 4
    assert len(info["active_f_weights"]) == 7 and sum(info["active_f_weights"]) > 6.0
    import h5py
    with h5py.File(tmp_path / "g.h5") as fh:
        types, energies = fh["MO_TYPEINDICES"][:], fh["MO_ENERGIES"][:]
    assert (types == b"2").sum() == 7 and (types == b"I").sum() == 102
    assert set(np.flatnonzero(types == b"2")) == set(np.argsort(-weights)[:7])
    assert energies[types == b"I"].max() < energies[types == b"S"].min()


def test_casscf_bad_inputs_name_the_complex(tmp_path):
    cx = assemble("[O-]C", name="Dy_OMe2")
    wrong = Complex(**{**cx.to_dict(), "charge": 0})      # 150 electrons cannot be a sextet
    result = molcas.kd_energies(wrong, workdir=tmp_path / "a")
    assert result.status == Status.INVALID_INPUT and "Dy_OMe2" in result.message and "multiplicity 6" in result.message
    result = molcas.kd_energies(cx, workdir=tmp_path / "b", basis="ANO-R1", metal_basis="DKH-def2-SVP")
    assert result.status == Status.INVALID_INPUT and "DKH-def2-SVP has no functions for Dy" in result.message
    assert molcas.kd_energies(cx, workdir=tmp_path / "c", guess="magic").status == Status.INVALID_INPUT


CASSCF_LOGS = {"casscf_DyOPh2_cheap.log": {"kd1": 347.898, "gz": 19.990},
               "casscf_DyOMe2_vdzp.log": {"kd1": 363.022, "gz": 19.989}}


@pytest.mark.parametrize("filename", sorted(CASSCF_LOGS))
def test_casscf_log_gives_eight_kramers_doublets(filename):
    result = molcas.parse_casscf(FIXTURES / filename, name=filename)
    assert result.ok and result.method == "casscf", result.message
    v = result.values
    so = np.sort(v["so_energies"])
    assert np.allclose(so[0::2], so[1::2], atol=1e-6)          # Kramers pairs: exactly degenerate
    kd = np.asarray(v["kd_energies"])
    assert kd.shape == (8,) and kd[0] == 0 and np.all(np.diff(kd) > 0)
    assert np.allclose(v["kd_gaps"], np.asarray(kd[1:]) - kd[0])       # the paper's dE0i
    assert kd[1] == pytest.approx(CASSCF_LOGS[filename]["kd1"], abs=1e-3)
    assert 100 < kd[-1] < 2000                                  # the J = 15/2 multiplet spans hundreds of cm-1
    assert so[16] - so[15] > 2000                               # then the gap to the next J multiplet
    g = np.asarray(v["g_tensors"])
    assert g.shape == (8, 3)
    gx, gy, gz = g[0]
    assert gz == pytest.approx(CASSCF_LOGS[filename]["gz"], abs=1e-3)
    assert gz > 19 and gx < 0.01 and gy < 0.01                  # axial alkoxides: Ising-like +-15/2 ground doublet
    axes = np.asarray(v["g_axes"])                              # Xm, Ym, Zm of every doublet, input frame
    assert axes.shape == (8, 3, 3) and np.allclose(axes @ np.swapaxes(axes, 1, 2), np.eye(3), atol=1e-4)
    assert abs(axes[0, 2, 2]) > 0.99                            # the alkoxides sit on z: so does the ground gZ axis
    assert len(v["casscf_energies"]) in (11, 21)


@pytest.mark.parametrize("filename", sorted(CASSCF_LOGS))
def test_casscf_log_cut_in_half_is_truncated(filename, tmp_path):
    cut = _cut_in_half(FIXTURES / filename, tmp_path / "cut.log")
    result = molcas.parse_casscf(cut, name="Dy_cut")
    assert result.status == Status.TRUNCATED_OUTPUT and "Dy_cut" in result.message


def test_default_guess_run_killed_after_30_iterations():
    """The same cheap [Dy(H2O)5(OPh)2]+ job from OpenMolcas's own guess: still far from converged after 30
    macro-iterations (average energy 0.13 Eh above the 4f-selected run's), then killed."""
    result = molcas.parse_casscf(FIXTURES / "casscf_DyOPh2_cheap_default_guess_killed.log", name="Dy_OPh2")
    assert result.status == Status.TRUNCATED_OUTPUT
    assert "rasscf at macro-iteration 30" in result.message and "Dy_OPh2" in result.message


def test_loprop_log_is_not_a_casscf_log():
    result = molcas.parse_casscf(FIXTURES / "loprop_methanolate.log", name="methanolate")
    assert result.status == Status.PARSE_ERROR and "SINGLE_ANISO" in result.message


@pytest.mark.slow
@needs_molcas
def test_real_cheap_casscf_run_of_dy_methanolate(tmp_path):
    """The cheap demo settings on [Dy(H2O)5(OMe)2]+ with the 4f-selected guess (about 15-25 min on 2 cores)."""
    cx = assemble("[O-]C", name="Dy_OMe2")
    result = molcas.kd_energies(cx, workdir=tmp_path, cores=2, memory_mb=2000, timeout=2 * 3600,
                                **molcas.CHEAP_CASSCF)
    assert result.ok, result.message
    v = result.values
    assert v["guess"] == "fselect" and min(v["guess_active_f_weights"]) > 0.5
    kd = np.asarray(v["kd_energies"])
    assert kd.shape == (8,) and kd[0] == 0 and np.all(np.diff(kd) > 0) and 100 < kd[-1] < 2000
    gx, gy, gz = v["g_tensors"][0]
    assert gz > 19 and gx < 0.05 and gy < 0.05


# --------------------------------------------------- other SINGLE_ANISO settings, and logs without SINGLE_ANISO
# [Dy F2]+ (F-Dy-F 160 deg, Dy-F 2.05 A), the cheap settings from the 4f-selected guess, OpenMolcas 22.10 here:
# one &RASSCF, then &RASSI + &SINGLE_ANISO with the settings users vary (inputs next to the logs)
DYF2_KD = [0.0, 759.008, 1514.205, 2169.177, 2574.585, 2641.732, 2681.998, 2701.311]


def test_single_aniso_one_multiplet_of_16_states():
    """MLTP 1 / 16 (one pseudospin-15/2 multiplet): the KD energies are all there, no doublet has a g-tensor."""
    result = molcas.parse_casscf(FIXTURES / "casscf_DyF2_mltp16.log", name="DyF2")
    assert result.ok
    v = result.values
    assert v["kd_energies"] == pytest.approx(DYF2_KD, abs=1e-3) and len(v["so_energies"]) == 66   # 11 sextets
    assert np.isnan(v["g_tensors"]).all() and np.shape(v["g_tensors"]) == (8, 3)
    assert "groups [16]" in result.message and "NaN" in result.message and "DyF2" in result.message
    assert v["so_source"] == "single_aniso" and v["program_version"] == "v22.10"


def test_geometry_from_gateway():
    symbols, coords = molcas.geometry((FIXTURES / "loprop_methanolate.log").read_text())
    assert symbols == ["O", "C", "H", "H", "H"] and coords[1] == [1.33, 0.0, 0.0]


def test_single_aniso_defaults_print_no_g_tensors():
    """&SINGLE_ANISO without keywords (a later run on the same JobIph): spin-orbit energies of all 66 states,
    no pseudospin groups, no g-tensors: every Kramers pair becomes a doublet, g NaN."""
    result = molcas.parse_casscf(FIXTURES / "casscf_DyF2_aniso_defaults.log", name="DyF2")
    assert result.ok and "groups not printed" in result.message
    v = result.values
    assert len(v["kd_energies"]) == 33 and v["kd_energies"][:8] == pytest.approx(DYF2_KD, abs=1e-3)
    assert np.isnan(v["g_tensors"]).all()
    eight = molcas.parse_casscf(FIXTURES / "casscf_DyF2_aniso_defaults.log", name="DyF2", n_doublets=8)
    assert eight.values["kd_energies"] == pytest.approx(DYF2_KD, abs=1e-3) and len(eight.values["kd_gaps"]) == 7


def test_rassi_spin_orbit_energies_without_single_aniso():
    """&RASSI (Spin) alone: the KD energies come from the 'SO-RASSI State' total energies (Eh) and agree with
    what SINGLE_ANISO printed for the same JobIph; no g-tensors, and the message says why."""
    result = molcas.parse_casscf(FIXTURES / "casscf_DyF2_rassi_only.log", name="DyF2", n_doublets=8)
    assert result.ok and "no SINGLE_ANISO section" in result.message
    v = result.values
    assert v["so_source"] == "rassi" and len(v["so_energies"]) == 66
    assert v["kd_energies"] == pytest.approx(DYF2_KD, abs=2e-3) and np.isnan(v["g_tensors"]).all()


def test_rassi_log_cut_before_the_end_is_truncated(tmp_path):
    text = (FIXTURES / "casscf_DyF2_rassi_only.log").read_text()
    cut = tmp_path / "cut.log"
    cut.write_text(text[: text.index("SO-RASSI State   40")])
    result = molcas.parse_casscf(cut, name="DyF2_cut")
    assert result.status == Status.TRUNCATED_OUTPUT and "DyF2_cut" in result.message and "rassi" in result.message


def test_single_aniso_eight_doublets_of_the_same_jobiph():
    """MLTP 8 / 2 x 8 on the same [DyF2]+ JobIph: the same KDs as the other settings, a g-tensor per doublet;
    the strongly axial F- field gives the |mJ| = 15/2, 13/2, 11/2, 9/2 ladder (gZ ~ 20, 17.3, 14.7, 12 for pure
    states with gJ = 4/3)."""
    result = molcas.parse_casscf(FIXTURES / "casscf_DyF2_mltp8x2.log", name="DyF2")
    assert result.ok and result.message == ""
    v = result.values
    assert v["kd_energies"] == pytest.approx(DYF2_KD, abs=1e-3)
    g = np.asarray(v["g_tensors"])
    assert g.shape == (8, 3) and np.isfinite(g).all()
    assert g[:4, 2] == pytest.approx([20.01068, 16.86711, 13.83911, 11.13252], abs=1e-4)
    assert (g[:4, :2] < 1e-3).all()                                  # Ising-like lowest four doublets


# ------------------------------------------------------------------------------------------------ other ions

def test_erbium_log_gives_eight_kramers_doublets():
    """Er(III) 4f11, 4I15/2: CAS(11,7) over the 13 quartets of 4I (a real cheap run, fixtures README)."""
    r = molcas.parse_casscf(FIXTURES / "casscf_ErOH2_cheap.log", name="Er", metal="Er")
    assert r.ok, r.message
    v = r.values
    assert "kramers" not in v and len(v["kd_energies"]) == 8 and len(v["so_energies"]) == 13 * 4
    assert v["kd_energies"][1] == pytest.approx(100.61, abs=0.01) and v["kd_gaps"][-1] == pytest.approx(763.37, abs=0.01)
    # the prolate Er(III) puts the doublet of largest |M| (gZ near 2 g_J J = 18) at the top in this axial field
    assert v["g_tensors"][-1][2] == pytest.approx(17.909, abs=1e-3) and v["g_tensors"][0][2] < 17
    assert r.values["casscf_energies"] and len(r.values["casscf_energies"]) == 13


def test_terbium_log_gives_pseudo_doublets_not_a_kramers_error():
    """Tb(III) 4f8, 7F6, non-Kramers: its 13 levels as 7 pseudo-doublets (the last alone) with tunnel splittings
    and Ising g-tensors (gX = gY = 0), instead of the Kramers error a Dy-only parser gave."""
    r = molcas.parse_casscf(FIXTURES / "casscf_TbOH2_cheap.log", name="Tb", metal="Tb")
    assert r.ok, r.message
    v = r.values
    assert v["kramers"] is False and len(v["kd_energies"]) == 7 and len(v["tunnel_splittings"]) == 7
    assert v["tunnel_splittings"][0] == pytest.approx(0.027, abs=0.001) and v["tunnel_splittings"][-1] == 0
    assert v["kd_energies"][1] == pytest.approx(80.79, abs=0.01)
    assert v["g_tensors"][0][2] == pytest.approx(17.833, abs=1e-3) and max(v["g_tensors"][0][:2]) < 1e-3
    assert np.isnan(v["g_tensors"][6]).all()               # the lone 13th level has no pseudospin-1/2 g
    # without the metal, a log whose integrals ran apart cannot tell: the Kramers check says what is wrong
    unknown = molcas.parse_casscf(FIXTURES / "casscf_TbOH2_cheap.log", name="Tb")
    assert unknown.status == Status.PARSE_ERROR and "not Kramers pairs" in unknown.message


@pytest.mark.parametrize("metal, spin, nactel, roots, groups", [("Er", 4, 11, 13, 8), ("Tb", 7, 8, 7, 6),
                                                                 ("Yb", 2, 13, 7, 4), ("Dy", 6, 9, 11, 8)])
def test_casscf_input_of_each_ion(metal, spin, nactel, roots, groups, tmp_path):
    cx = swap_metal(assemble("[OH-]", relax="none"), metal)
    context = molcas.casscf_context(cx, **molcas.CHEAP_CASSCF)
    assert (context.nactel, context.ciroot, context.n_doublets) == (nactel, roots, groups)
    text = molcas.render_casscf(context, tmp_path)[-1].read_text()
    assert f"Spin = {spin}" in text and f"nActEl = {nactel} 0 0" in text and f"CIRoot = {roots} {roots} 1" in text
    assert molcas.casscf_context(cx).ciroot == {"Er": 35, "Tb": 7, "Yb": 7, "Dy": 21}[metal]
