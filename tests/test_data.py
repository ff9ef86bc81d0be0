"""`python -m gauss_hpc.data build`: bad inputs, rejects, dedup, splits and the HDF5 schema."""

import csv
import json
import subprocess
import sys

import h5py
import pytest

from gauss_hpc import data, store

MOLECULES = [
    ("phenol", "Oc1ccccc1"),
    ("phenol-again", "c1ccc(O)cc1"),        # same molecule written differently: duplicates
    ("pyridine", "c1ccncc1"),
    ("garbage", "C1CC(=O"),              # unparsable
    ("thiophenol", "Sc1ccccc1"),             # S is not an allowed element
    ("methane", "C"),                        # no donor
    ("long", "O" + "C" * 60),                # ligand longer than the limit
    ("ethylene-glycol", "OCCO"),             # two equivalent O: one neutral, one anion after dedup
    ("empty", ""),
]


@pytest.fixture
def smi_file(tmp_path):
    path = tmp_path / "molecules.smi"
    path.write_text("".join(f"{smi} {name}\n" if smi else "  \n" for name, smi in MOLECULES))
    return path


def build(tmp_path, source, **kw):
    out = tmp_path / "ligands.h5"
    counts = data.build(str(source), out, **kw)
    return out, counts


def test_build_from_smi_counts_rejects_and_dedups(tmp_path, smi_file):
    out, counts = build(tmp_path, smi_file)
    table = store.read_ligands(out)
    assert set(table["smiles"]) == {"Oc1ccccc1", "[O-]c1ccccc1", "n1ccccc1", "OCCO", "[O-]CCO"}
    assert counts["ligands"] == 5 and counts["neutral"] == 3 and counts["anions"] == 2
    assert counts["duplicates"] == 2 + 2           # phenol-again (2 ligands) + the second O of glycol (2)
    assert counts["molecules_read"] == 8            # the blank line is not a molecule
    assert counts["rejected_unparsable"] == 1 and counts["rejected_element"] == 1
    assert counts["rejected_no_donor"] == 1 and counts["rejected_ligand_too_long"] == 2
    with open(tmp_path / "ligands.rejects.csv") as fh:
        rejects = list(csv.DictReader(fh))
    assert {r["parent_id"] for r in rejects} == {"garbage", "thiophenol", "methane", "long"}
    assert all(r["reason"] for r in rejects)
    with h5py.File(out) as h5:
        assert h5.attrs["count_ligands"] == 5


def test_schema_and_provenance(tmp_path, smi_file):
    out, _ = build(tmp_path, smi_file)
    with h5py.File(out) as h5:
        assert h5.attrs["kind"] == "ligands"
        assert h5.attrs["format_version"] == store.FORMAT_VERSION
        assert str(smi_file) in json.loads(h5.attrs["sources"])
        assert json.loads(h5.attrs["config"])["max_smiles_length"] == 40
        for column in store.LIGAND_COLUMNS:
            assert h5["ligands"][column].shape == (5,)
        assert h5py.check_string_dtype(h5["ligands/smiles"].dtype).encoding == "utf-8"
    table = store.read_ligands(out)
    assert (table["smiles"].str[0].isin(["O", "n", "N", "["])).all()
    assert set(table["donor_z"]) <= {7, 8}
    first = table.set_index("smiles").loc["[O-]c1ccccc1"]
    assert first["charge"] == -1 and first["donor_element"] == "O" and first["parent_id"] == "phenol"
    assert first["canonical"] == "[O-]C1=CC=CC=C1"


def test_no_partial_file_on_failure(tmp_path):
    empty = tmp_path / "empty.smi"
    empty.write_text("")
    with pytest.raises(ValueError, match="no molecules"):
        build(tmp_path, empty)
    assert not (tmp_path / "ligands.h5").exists()
    assert not list(tmp_path.glob(".ligands.h5.*"))


def test_clear_errors_for_missing_source_and_column(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.smi"):
        build(tmp_path, tmp_path / "nope.smi")
    bad = tmp_path / "mols.csv"
    bad.write_text("name,structure\na,CCO\n")
    with pytest.raises(ValueError, match="no SMILES column"):
        build(tmp_path, bad)
    only_bad = tmp_path / "bad.smi"
    only_bad.write_text("xyz\nC\n")
    with pytest.raises(ValueError, match="rejects"):
        build(tmp_path, only_bad)


def test_csv_and_sdf_sources(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("id,SMILES\nm1,CCO\nm2,CC#N\n")
    out, counts = build(tmp_path, path)
    assert set(store.read_ligands(out)["parent_id"]) == {"m1", "m2"}
    from rdkit import Chem

    sdf = tmp_path / "mols.sdf"
    with Chem.SDWriter(str(sdf)) as writer:
        for name, smi in [("water", "O"), ("ammonia", "N")]:
            mol = Chem.MolFromSmiles(smi)
            mol.SetProp("_Name", name)
            writer.write(mol)
    out, counts = build(tmp_path, sdf)
    assert set(store.read_ligands(out)["smiles"]) == {"O", "[OH-]", "N", "[NH2-]"}


def test_filters_override_defaults(tmp_path, smi_file):
    out, counts = build(tmp_path, smi_file, overrides={"charges": [0], "allowed_elements": ["H", "C", "N", "O", "S"]})
    table = store.read_ligands(out)
    assert (table["charge"] == 0).all()
    assert "Sc1ccccc1" not in set(table["smiles"])        # S is allowed but thiols are no N/O donors
    assert counts["rejected_ligand_charge"] >= 1


def test_splits_are_by_parent_nested_and_reproducible(tmp_path):
    smiles = [f"OC{'C' * (i % 7)}N{'C' * (i // 7)}" for i in range(70)]
    path = tmp_path / "chain.smi"
    path.write_text("".join(f"{s} p{i}\n" for i, s in enumerate(smiles)))
    over = {"train_subsets": [10, 40], "test_fraction": 0.2}
    out, _ = build(tmp_path, path, overrides=over)
    test, subsets = store.read_splits(out)
    table = store.read_ligands(out)
    assert not set(table["parent_id"][test]) & set(table["parent_id"][~test])
    sizes = sorted(subsets)
    assert sizes[:2] == [10, 40] and sizes[-1] == (~test).sum()
    assert set(subsets[10]) <= set(subsets[40]) <= set(subsets[sizes[-1]])
    assert not test[subsets[sizes[-1]]].any()
    out2 = tmp_path / "again.h5"
    data.build(str(path), out2, overrides=over)
    test2, subsets2 = store.read_splits(out2)
    assert (test == test2).all() and all((subsets[k] == subsets2[k]).all() for k in subsets)


def test_qm9_ligands_carry_the_donor_mulliken_charge(tmp_path):
    out, counts = build(tmp_path, "qm9", limit=300)
    table = store.read_ligands(out)
    values, mask = store.read_labels(out)[data.MULLIKEN_LABEL]
    neutral = (table["charge"] == 0).to_numpy()
    assert not mask[~neutral].any()                  # anions have no parent Mulliken charge
    assert mask[neutral].mean() > 0.95
    assert (values[mask] < 0).mean() > 0.95           # N/O donors carry negative Mulliken charge
    water = table.index[table["smiles"] == "O"][0]
    assert values[water] == pytest.approx(-0.5, abs=0.1)   # QM9 water: O Mulliken -0.47


def test_cli_prints_counts(tmp_path, smi_file):
    out = tmp_path / "cli.h5"
    proc = subprocess.run([sys.executable, "-m", "gauss_hpc.data", "build", "--source", str(smi_file),
                           "--out", str(out)], capture_output=True, text=True, check=True)
    assert "ligands" in proc.stdout and "rejected_unparsable" in proc.stdout
    missing = subprocess.run([sys.executable, "-m", "gauss_hpc.data", "build", "--source", "missing.smi",
                              "--out", str(out)], capture_output=True, text=True)
    assert missing.returncode == 2 and "missing.smi" in missing.stderr


def test_bundled_dataset_is_consistent():
    from pathlib import Path

    bundled = Path(__file__).resolve().parents[1] / "data" / "ligands.h5"
    table = store.read_ligands(bundled)
    assert 3000 <= len(table) <= 20000
    assert table["smiles"].is_unique
    assert set(table["charge"]) == {0, -1}
    test, subsets = store.read_splits(bundled)
    assert 0 < test.mean() < 0.2 and max(subsets) == (~test).sum()
