"""`python -m gauss_hpc.screen`: one command from a ligand list to a results file, one row per input line."""

import numpy as np
import pytest

from gauss_hpc import jobs, screen, store

LINES = [b"[O-]C\tmethoxide", b"n1ccccc1\tpyridine", b"not_a_smiles\tjunk", b"[O-]C\tmethoxide_again",
         b"C\xff\xfeO\tbinary_paste", b"OC"]


@pytest.fixture(scope="module")
def screened(tmp_path_factory):
    root = tmp_path_factory.mktemp("screen")
    ligands = root / "ligands.smi"
    ligands.write_bytes(b"\n".join(LINES) + b"\n")
    out = root / "screen.h5"
    assert screen.main([str(ligands), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return ligands, out


def test_one_row_per_line_in_order_with_reasons(screened):
    _, out = screened
    table = store.read_results(out)
    assert table["name"].tolist() == ["methoxide", "pyridine", "junk", "methoxide_again", "line5", "line6"]
    status = dict(zip(table["name"], table["status"]))
    assert status["methoxide"] == status["pyridine"] == status["line6"] == "ok"
    assert status["junk"] == status["line5"] == "invalid_input"
    assert "not a valid SMILES" in table.loc[table["name"] == "junk", "message"].item()
    assert "encoding: line 5: byte 0xff" in table.loc[table["name"] == "line5", "message"].item()
    arrays = store.read_result_arrays(out)
    kd = arrays["kd_energies"]
    ok = (table["status"] == "ok").to_numpy()
    assert np.allclose(arrays["kd_gaps"][ok], kd[ok, 1:] - kd[ok, :1])           # the paper's dE0i
    assert np.array_equal(kd[0], kd[3])                                          # a repeated line: computed once
    assert table.loc[ok, "axial_distance_mean"].notna().all()
    assert store.read_geometry(out, 1)[0][0] == "Dy"


def test_rerun_resumes_and_writes_the_same_rows(screened):
    ligands, out = screened
    campaign = out.with_name(out.name + ".campaign")
    submissions = sorted((campaign / "submissions").iterdir())
    again = out.with_name("again.h5")
    assert screen.main([str(ligands), "--out", str(again), "--campaign", str(campaign), "--quiet"]) == 0
    assert sorted((campaign / "submissions").iterdir()) == submissions          # nothing submitted again
    assert store.read_results(again)["name"].tolist() == store.read_results(out)["name"].tolist()
    assert np.array_equal(store.read_result_arrays(again)["kd_energies"], store.read_result_arrays(out)["kd_energies"],
                          equal_nan=True)
    assert jobs.summary(jobs.status(campaign)) is not None


def test_a_missing_or_foreign_input_is_one_clear_error(tmp_path, capsys):
    assert screen.main([str(tmp_path / "nope.smi"), "--out", str(tmp_path / "o.h5")]) == 2
    assert "nope.smi: no such file" in capsys.readouterr().err
    history = tmp_path / "history.h5"
    store.write_history(history, {"epoch": [1]})
    assert screen.main([str(history), "--out", str(tmp_path / "o.h5"), "--quiet"]) == 2
    assert "expected samples.h5 or ligands.h5" in capsys.readouterr().err


def test_fast_geometry_holds_the_shipped_calibration(tmp_path):
    """`--geometry fast` relaxes each complex with the fast tier (xtb.FAST_TIER, the shipped calibration): the axial
    bonds come out at the calibrated length of the ligand's donor class."""
    from gauss_hpc.chem import donor_distances as dd

    calibration = dd.shipped()
    ligands = tmp_path / "ligands.smi"
    ligands.write_text("[OH-]\thydroxide\nN\tammonia\n")
    out = tmp_path / "fast.h5"
    assert screen.main([str(ligands), "--out", str(out), "--geometry", "fast", "--workers", "1", "--quiet"]) == 0
    table = store.read_results(out).set_index("name")
    assert (table["status"] == "ok").all(), table["message"].tolist()
    for name, smiles in (("hydroxide", "[OH-]"), ("ammonia", "N")):
        assert table.loc[name, "axial_distance_mean"] == pytest.approx(calibration.distance(smiles), abs=0.03)
