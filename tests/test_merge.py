"""Results become labels (gauss_hpc.merge, `python -m gauss_hpc.label merge`): identity travels from the input
file through the tasks into results.h5; merged labels are named by backend, merging is idempotent and atomic,
failed tasks add nothing. Real chemistry: molSimplify assembly and the crystal-field oracle (debug executor)."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gauss_hpc import jobs, label, merge, store
from gauss_hpc.chem.ligands import kekulized_canonical

LIGANDS = ["[O-]C", "OC", "N#CC", "[O-]c1ccccc1"]
CF = [{"name": "assemble"}, {"name": "crystal_field"}]


def make_ligands(path: Path) -> Path:
    table = pd.DataFrame({"smiles": LIGANDS, "canonical": [kekulized_canonical(s) for s in LIGANDS],
                          "charge": [-1, 0, 0, -1], "donor_element": ["O", "O", "N", "O"], "donor_z": [8, 8, 7, 8],
                          "donor_index": [0] * 4, "parent_id": ["a", "b", "c", "d"], "source": ["test"] * 4})
    other = np.full((4, 7), np.nan)
    other[1] = 7.0
    store.write_ligands(path, table, test_mask=np.array([False, False, False, True]), train_subsets={},
                        labels={"molcas_kd_gaps": (other, np.isfinite(other[:, 0]), {"unit": "cm-1"})})
    return path


def campaign(tmp_path: Path, name: str, source: dict, steps=CF) -> Path:
    spec = {"campaign": {"name": name, "executor": "debug"}, "input": source, "steps": steps}
    jobs.submit(spec, tmp_path / name).wait()
    return jobs.gather(tmp_path / name, quiet=True)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_results_become_backend_named_labels_with_identity_and_provenance(tmp_path):
    ligands = make_ligands(tmp_path / "ligands.h5")
    from_file = campaign(tmp_path, "rows", {"path": str(ligands), "rows": [0, 2]})
    results = store.read_results(from_file)
    assert list(results["ligand_row"]) == [0, 2] and list(results["canonical"]) == [kekulized_canonical(s) for s in
                                                                                    ("[O-]C", "N#CC")]
    assert set(results["source_file"]) == {str(ligands.resolve())}

    summary = merge.merge([from_file], ligands)
    assert summary["labels_added"] == 6 and summary["ligands_after"] == 4       # gaps, descriptors, g: 2 rows
    labels = store.read_labels(ligands)
    gaps, mask = labels["cf_kd_gaps"]
    assert list(np.flatnonzero(mask)) == [0, 2] and np.allclose(gaps[[0, 2]],
                                                                store.read_result_arrays(from_file)["kd_gaps"])
    assert labels["cf_kd_descriptors"][0].shape == (4, 6) and list(np.flatnonzero(labels["cf_kd_descriptors"][1])) == [0, 2]
    ground_g, g_mask = labels["cf_ground_g"]       # the ground doublet's g values, which a g target reads
    assert list(np.flatnonzero(g_mask)) == [0, 2]
    assert np.allclose(ground_g[[0, 2]], store.read_result_arrays(from_file)["g_tensors"][:, 0])
    assert (np.diff(ground_g[[0, 2]], axis=1) >= 0).all()             # gX <= gY <= gZ
    assert np.allclose(labels["molcas_kd_gaps"][0][1], 7.0)                            # another backend: untouched

    # A new ligand is appended with its provenance; a bad one fails and adds nothing.
    generated = campaign(tmp_path, "new", {"smiles": ["[O-]CC", "C(C)(C"], "names": ["gen0", "bad"]})
    summary = merge.merge([generated], ligands)
    assert summary["ligands_appended"] == 1 and summary["failed_invalid_input"] == 1
    table = store.read_ligands(ligands)
    assert len(table) == 5 and table["canonical"].iloc[4] == kekulized_canonical("[O-]CC")
    assert table[["charge", "donor_element", "donor_z"]].iloc[4].tolist() == [-1, "O", 8]
    with store.open_checked(ligands, "ligands") as h5:
        provenance = store.read_table(h5["generated"])
        merges = store.read_table(h5["merges"])
        assert h5["splits/test"].shape == (5,) and not h5["splits/test"][4]
    assert provenance["row"].tolist() == [4] and provenance["task_id"].iloc[0] in set(
        store.read_results(generated)["task_id"])
    assert len(merges) == 2
    assert store.read_labels(ligands)["cf_kd_gaps"][1].tolist() == [True, False, True, False, True]
    assert store.read_labels(ligands)["molcas_kd_gaps"][0].shape == (5, 7)

    # Merging again changes nothing: not a byte.
    before = sha(ligands)
    assert label.main(["merge", str(from_file), str(generated), "--into", str(ligands)]) == 0
    assert sha(ligands) == before


def test_a_different_value_of_the_same_backend_is_kept_unless_replace(tmp_path):
    ligands = make_ligands(tmp_path / "ligands.h5")
    merge.merge([campaign(tmp_path, "a", {"path": str(ligands), "rows": [0]})], ligands)
    first = store.read_labels(ligands)["cf_kd_gaps"][0][0].copy()
    stronger = campaign(tmp_path, "b", {"path": str(ligands), "rows": [0]},
                        [{"name": "assemble"}, {"name": "crystal_field", "params": {"shielding": [0.3, 0.3, 0.3]}}])
    kept = merge.merge([stronger], ligands)
    assert kept["conflicts_kept"] == 2 and kept["unchanged"] == 1          # gaps and g differ; descriptors not
    assert np.allclose(store.read_labels(ligands)["cf_kd_gaps"][0][0], first)
    replaced = merge.merge([stronger], ligands.parent / "ligands.h5", replace=True)
    assert replaced.get("files_merged_before") == 1           # already merged (and kept): say so, change nothing
    copy = make_ligands(tmp_path / "copy.h5")
    merge.merge([campaign(tmp_path, "a2", {"path": str(copy), "rows": [0]})], copy)
    assert merge.merge([stronger], copy, replace=True)["replaced"] == 2      # the gaps and g; same geometry
    assert not np.allclose(store.read_labels(copy)["cf_kd_gaps"][0][0], first)


def test_a_merge_that_dies_mid_write_leaves_the_old_file(tmp_path, monkeypatch):
    ligands = make_ligands(tmp_path / "ligands.h5")
    results = campaign(tmp_path, "rows", {"path": str(ligands), "rows": [0, 1]})
    before = sha(ligands)
    calls = []

    def dies(*args, **kwargs):
        calls.append(1)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(store, "write_label", dies)
    with pytest.raises(KeyboardInterrupt):
        merge.merge([results], ligands)
    assert calls and sha(ligands) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ligands.h5")] == []
    monkeypatch.undo()
    assert merge.merge([results], ligands)["labels_added"] == 6          # gaps, descriptors, ground g: 2 rows


def test_bad_inputs_say_what_is_wrong(tmp_path, capsys):
    ligands = make_ligands(tmp_path / "ligands.h5")
    assert label.main(["merge", str(ligands), "--ligands", str(ligands)]) == 2
    assert "is a ligands file, expected results" in capsys.readouterr().err
    assert label.main(["merge", str(tmp_path / "nope.h5"), "--ligands", str(ligands)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_molecule_bound_through_another_donor_is_another_ligand(tmp_path):
    """OCCN and NCCO are one molecule (one novelty key) but two ligands: the label goes to the donor computed."""
    smiles = ["OCCN", "NCCO"]
    table = pd.DataFrame({"smiles": smiles, "canonical": [kekulized_canonical(s) for s in smiles], "charge": [0, 0],
                          "donor_element": ["O", "N"], "donor_z": [8, 7], "donor_index": [0, 3],
                          "parent_id": ["a", "a"], "source": ["test"] * 2})
    ligands = tmp_path / "ligands.h5"
    store.write_ligands(ligands, table, test_mask=np.zeros(2, bool), train_subsets={})
    merge.merge([campaign(tmp_path, "n", {"path": str(ligands), "rows": [1]})], ligands)
    assert store.read_labels(ligands)["cf_kd_gaps"][1].tolist() == [False, True]
    summary = merge.merge([campaign(tmp_path, "new", {"smiles": ["N(C)CO", "OCN(C)"]})], ligands)
    assert summary["ligands_appended"] == 2                  # one molecule, two donors: two new ligands
