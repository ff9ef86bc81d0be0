"""The shipped CASSCF reference set (data/casscf_reference) as a regression fixture: its trimmed OpenMolcas logs
still parse to the KD energies and g-tensors stored in reference.csv and results.h5, and its geometries are the
ones in results.h5. Seconds; no OpenMolcas needed."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gauss_hpc import store
from gauss_hpc.abinitio import molcas

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "casscf_reference"
TABLE = pd.read_csv(REFERENCE / "reference.csv")
OK = TABLE[TABLE["status"] == "ok"]


def test_every_complex_with_kds_has_its_log_and_geometries():
    assert len(OK) >= 24          # the reference set the fast oracle is scored on (issue 15)
    assert set(OK["program_version"]) == {"v22.10"}
    for name in OK["name"]:
        assert (REFERENCE / "logs" / f"{molcas.safe_name(name)}.log").is_file()
        assert (REFERENCE / "geometries" / f"{name}.assembled.xyz").is_file()
        assert (REFERENCE / "geometries" / f"{name}.relaxed.xyz").is_file()


@pytest.mark.parametrize("name", list(OK["name"]))
def test_trimmed_log_parses_to_the_stored_kds(name):
    row = OK[OK["name"] == name].iloc[0]
    res = molcas.parse_casscf(REFERENCE / "logs" / f"{molcas.safe_name(name)}.log", name=name, n_doublets=8)
    assert res.ok, res.message
    assert res.values["so_source"] == "single_aniso"
    kd = np.asarray(res.values["kd_energies"])
    assert kd[0] == 0 and np.all(np.diff(kd) > 0)
    np.testing.assert_allclose(kd[1:], [row[f"kd{k}"] for k in range(1, 8)], atol=2e-3)
    np.testing.assert_allclose(res.values["g_tensors"][0], [row["gx_ground"], row["gy_ground"], row["gz_ground"]],
                               atol=2e-6)


def test_results_h5_agrees_with_the_logs_and_the_geometries():
    table = store.read_results(REFERENCE / "results.h5")
    arrays = store.read_result_arrays(REFERENCE / "results.h5", ["kd_energies", "g_tensors"])
    assert set(table["name"]) == set(TABLE["name"])
    for row, rec in table.iterrows():
        if rec["status"] != "ok":
            continue
        stored = TABLE[TABLE["name"] == rec["name"]].iloc[0]
        np.testing.assert_allclose(arrays["kd_energies"][row][1:], [stored[f"kd{k}"] for k in range(1, 8)],
                                   atol=2e-3)
        symbols, coords = store.read_geometry(REFERENCE / "results.h5", row)
        lines = (REFERENCE / "geometries" / f"{rec['name']}.relaxed.xyz").read_text().splitlines()[2:]
        assert [ln.split()[0] for ln in lines] == list(symbols)
        np.testing.assert_allclose([[float(v) for v in ln.split()[1:]] for ln in lines], coords, atol=1e-6)


def test_concat_results_keeps_chosen_rows_with_their_geometries_and_steps(tmp_path):
    """How the set grows (scripts/collect_casscf_reference.py --add): rows of several results files, in order."""
    source = REFERENCE / "results.h5"
    out = tmp_path / "joined.h5"
    store.concat_results([(source, [3, 0]), (source, [1])], out, command="test")
    table, joined = store.read_results(source), store.read_results(out)
    assert list(joined["name"]) == list(table["name"].iloc[[3, 0, 1]])
    kd, kd_joined = (store.read_result_arrays(p, ["kd_energies"])["kd_energies"] for p in (source, out))
    np.testing.assert_array_equal(kd_joined, kd[[3, 0, 1]])
    for new_row, old_row in enumerate([3, 0, 1]):
        symbols, coords = store.read_geometry(out, new_row)
        assert symbols == store.read_geometry(source, old_row)[0]
        np.testing.assert_array_equal(coords, store.read_geometry(source, old_row)[1])
    with __import__("h5py").File(out) as h5:
        assert set(h5["steps/task_id"].asstr()[()]) == set(joined["task_id"])
