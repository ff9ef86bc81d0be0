"""`python -m gauss_hpc.jobs import`: a directory mixing real ORCA 5/6 outputs (cclib's optimisations, fBlockKit's
CASSCF+SOC and NEVPT2+SOC runs), real OpenMolcas 22.10 logs (converged, killed, crashed, not converged) and files that are no
outputs becomes one results.h5 row per file with gather's schema; nothing crashes."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from gauss_hpc import store
from gauss_hpc.jobs import importer
from gauss_hpc.jobs.gather import TASK_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    (root / "orca").mkdir()
    (root / "molcas" / "deeper").mkdir(parents=True)
    for name in ("orca5.0_dvb_gopt.out", "orca6.1_dy_acac_casscf_soc_aniso.out", "orca6.1_o2_triplet_casscf_soc.out",
                 "orca6.1_coplus_casscf_soc_gtensor_aniso.out"):
        shutil.copy(FIXTURES / "orca" / name, root / "orca" / name.replace(".out", ".log"))   # names do not matter
    shutil.copy(FIXTURES / "orca" / "orca6.0_dvb_gopt.inp", root / "orca")                   # an input, not an output
    for name in ("casscf_DyOPh2_cheap.log", "casscf_DyOPh2_cheap_default_guess_killed.log", "gateway_bad_basis.log",
                 "loprop_methanolate.log", "casscf_DyF2_mltp16.log", "casscf_DyF2_aniso_defaults.log",
                 "casscf_DyF2_rassi_only.log"):
        shutil.copy(FIXTURES / "molcas" / name, root / "molcas" / "deeper" / name.replace(".log", ".out"))
    shutil.copy(FIXTURES / "molcas" / "guessorb_DyOPh2_cheap.h5", root / "molcas")            # binary
    (root / "notes.txt").write_text("ORCA and OpenMolcas runs of last spring\n")
    (root / "empty.out").write_text("")
    text = (FIXTURES / "orca" / "orca6.1_dy_acac_casscf_soc_aniso.out").read_text()
    (root / "orca" / "dy_killed.out").write_text(text[: text.index("Eigenvalues:") + 300])
    out = root / "results.h5"
    importer.import_outputs([root], out, quiet=True)
    table = store.read_results(out).set_index("name")
    return out, table


def test_every_file_is_one_row_with_status(mixed):
    out, table = mixed
    assert len(table) == 16
    expect = {"orca6.1_dy_acac_casscf_soc_aniso": "ok", "orca6.1_o2_triplet_casscf_soc": "ok",
              "orca5.0_dvb_gopt": "ok", "dy_killed": "truncated_output", "casscf_DyOPh2_cheap": "ok",
              "casscf_DyOPh2_cheap_default_guess_killed": "truncated_output", "gateway_bad_basis": "crashed",
              "loprop_methanolate": "ok", "notes": "unrecognized", "casscf_DyF2_mltp16": "ok",
              "casscf_DyF2_aniso_defaults": "ok", "casscf_DyF2_rassi_only": "ok", "empty": "unrecognized",
              "guessorb_DyOPh2_cheap": "unrecognized", "orca6.0_dvb_gopt": "unrecognized"}
    assert {k: table.loc[k, "status"] for k in expect} == expect
    assert table.loc["guessorb_DyOPh2_cheap", "message"].endswith("binary file")
    assert "not an ORCA or OpenMolcas output" in table.loc["notes", "message"]
    assert table.loc["dy_killed", "reason"] == "truncated_output" and "dy_killed.out" in table.loc["dy_killed", "message"]
    assert set(TASK_COLUMNS) <= set(table.reset_index().columns)
    assert table.loc["orca6.1_dy_acac_casscf_soc_aniso", "program_version"] == "6.1.1"
    assert table.loc["casscf_DyOPh2_cheap_default_guess_killed", "program"] == "molcas"
    # the level of theory of the KDs is what the parser's Result declared, not a step name
    assert table.loc["orca6.1_dy_acac_casscf_soc_aniso", "kd_method"] == "casscf"
    assert table.loc["casscf_DyOPh2_cheap", "kd_method"] == "casscf"
    assert table.loc["orca5.0_dvb_gopt", "kd_method"] == "" and table.loc["notes", "kd_method"] == ""


def test_kd_energies_g_tensors_and_geometry(mixed):
    out, table = mixed
    arrays = store.read_result_arrays(out)
    rows = {name: i for i, name in enumerate(store.read_results(out)["name"])}
    dy, cas, o2 = rows["orca6.1_dy_acac_casscf_soc_aniso"], rows["casscf_DyOPh2_cheap"], rows["orca6.1_o2_triplet_casscf_soc"]
    assert arrays["kd_energies"].shape == (16, 8) and arrays["g_tensors"].shape == (16, 8, 3)
    assert arrays["kd_energies"][dy, 1] == pytest.approx(139.34) and arrays["g_tensors"][dy, 0, 2] == pytest.approx(19.52763174)
    assert arrays["kd_energies"][cas, 1] == pytest.approx(347.898, abs=1e-3)
    for settings in ("mltp16", "aniso_defaults", "rassi_only"):        # three SINGLE_ANISO settings, one answer
        row = rows[f"casscf_DyF2_{settings}"]
        assert arrays["kd_energies"][row, 1] == pytest.approx(759.008, abs=2e-3)
        assert np.isnan(arrays["g_tensors"][row]).all()
    assert np.isnan(arrays["kd_energies"][o2]).all()                 # integer spin: no Kramers doublets
    co = rows["orca6.1_coplus_casscf_soc_gtensor_aniso"]
    assert arrays["kd_energies"][co, :2] == pytest.approx([0, 29361.2]) and np.isnan(arrays["kd_energies"][co, 2:]).all()
    with __import__("h5py").File(out, "r") as h5:
        assert bool(h5["results/has_kd_energies"][dy]) and not bool(h5["results/has_kd_energies"][o2])
    symbols, coords = store.read_geometry(out, dy)
    assert symbols[0] == "Dy" and len(symbols) == 49 and coords.shape == (49, 3)
    assert store.read_geometry(out, rows["orca5.0_dvb_gopt"])[0].count("C") == 10


def test_nevpt2_energies_and_an_ion_with_more_doublets_than_the_columns(tmp_path):
    """`--energies nevpt2` reads ORCA's NEVPT2 QDPT block; an output without one is a parse_error row naming the
    block it has. CO+ (doublet + quartet) has 9 Kramers pairs: the row keeps the lowest 8 and says so."""
    for name in ("orca6.1_coplus_nevpt2_soc.out", "orca6.1_dy_acac_casscf_soc_aniso.out"):
        shutil.copy(FIXTURES / "orca" / name, tmp_path)
    out = importer.import_outputs([tmp_path], tmp_path / "nevpt2.h5", energies="nevpt2", quiet=True)
    table = store.read_results(out).set_index("name")
    kd = store.read_result_arrays(out)["kd_energies"]
    co, dy = table.loc["orca6.1_coplus_nevpt2_soc"], table.loc["orca6.1_dy_acac_casscf_soc_aniso"]
    assert co["status"] == "ok" and "9 Kramers doublets, results.h5 keeps the lowest 8" in co["message"]
    assert kd[list(table.index).index("orca6.1_coplus_nevpt2_soc")] == pytest.approx([0.0, 27141.98, 27255.01, 56032.08, 56032.09, 66242.75, 66250.16, 66259.08])
    assert dy["status"] == "parse_error" and "QDPT WITH CASSCF DIAGONAL ENERGIES" in dy["message"]
    assert co["kd_method"] == "nevpt2"


def test_cli_and_missing_path(tmp_path, capsys):
    from gauss_hpc.jobs.cli import main

    one = tmp_path / "a.out"
    shutil.copy(FIXTURES / "orca" / "orca6.1_coplus_casscf_soc_gtensor_aniso.out", one)
    out = tmp_path / "r.h5"
    assert main(["import", str(one), "--out", str(out)]) == 0
    assert store.read_results(out)["status"].tolist() == ["ok"]
    assert main(["import", str(tmp_path / "nope"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "neither a file nor a directory" in err
