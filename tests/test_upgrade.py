"""KD gaps as the paper defines them (dE0i = E(KD i) - E(KD 0)) and the conversion of files of the old format
(format 1, neighbour differences): refused on read with the command that converts them, converted exactly."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gauss_hpc import cli, store, upgrade
from gauss_hpc.abinitio import crystal_field as cf
from gauss_hpc.chem.complexes import assemble

FORMAT1 = Path(__file__).parent / "fixtures" / "format1" / "results.h5"


def test_crystal_field_gaps_are_energies_above_the_ground_doublet():
    res = cf.kd_energies(assemble("[O-]C"))
    kd, gaps = np.asarray(res.values["kd_energies"]), np.asarray(res.values["kd_gaps"])
    assert gaps == pytest.approx(kd[1:] - kd[0])
    assert gaps[-1] == pytest.approx(kd.max() - kd.min())      # the last gap is the total splitting
    assert np.all(np.diff(gaps) >= 0)


def test_format1_results_are_refused_with_the_command_that_converts_them(tmp_path):
    old = tmp_path / "results.h5"
    shutil.copyfile(FORMAT1, old)
    with pytest.raises(store.SchemaError, match=r"format 1 .*gauss-hpc upgrade .*results\.h5"):
        store.read_result_arrays(old)
    with pytest.raises(store.SchemaError, match="gauss-hpc upgrade"):
        store.read_results(old)


def test_upgrade_converts_results_exactly_and_once(tmp_path, capsys):
    old = tmp_path / "results.h5"
    shutil.copyfile(FORMAT1, old)
    assert cli.main(["upgrade", str(old)]) == 0
    assert "now format 2" in capsys.readouterr().out
    arrays = store.read_result_arrays(old)
    kd = arrays["kd_energies"]
    assert np.isfinite(kd).all() and arrays["kd_gaps"] == pytest.approx(kd[:, 1:] - kd[:, :1])
    before = store.read_results(old)
    assert upgrade.upgrade(old) is None                      # current: left alone
    pd.testing.assert_frame_equal(store.read_results(old), before)


def test_upgrade_converts_ligand_labels_and_says_what_is_not_a_gauss_hpc_file(tmp_path, capsys):
    path = tmp_path / "ligands.h5"
    ligands = pd.DataFrame({"smiles": ["[O-]C", "O"], "canonical": ["C[O-]", "O"], "charge": [-1, 0],
                            "donor_element": ["O", "O"], "donor_z": [8, 8], "donor_index": [0, 0],
                            "parent_id": [0, 1], "source": ["test", "test"]})
    neighbour = np.array([[100.0, 50, 25, 10, 10, 10, 5], [np.nan] * 7])
    store.write_ligands(path, ligands, labels={"cf_kd_gaps": (neighbour, np.array([True, False]), {})})
    import h5py
    with h5py.File(path, "r+") as h5:         # as the previous release wrote it
        h5.attrs["format_version"] = 1
    assert upgrade.upgrade(path) == ["/labels/cf_kd_gaps"]
    values, mask = store.read_labels(path)["cf_kd_gaps"]
    assert values[0] == pytest.approx(np.cumsum(neighbour[0])) and np.isnan(values[1]).all()
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF not really")
    assert upgrade.main([str(junk)]) == 2
    assert "junk.h5: not a readable HDF5 file" in capsys.readouterr().err
