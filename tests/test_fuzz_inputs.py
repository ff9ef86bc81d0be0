"""Bad input never stops a batch, whatever its bytes: every reader of a user's file gets good lines mixed with
random bytes, Latin-1 text, NUL bytes, overlong lines, shell metacharacters, a BOM, CR/LF/CRLF line ends and
huge numbers of columns. Seeded (FUZZ_SEEDS), so a failure reproduces; the good lines must survive and the bad
ones be counted with their reason."""

import csv
import random
import shutil
from pathlib import Path

import h5py
import pytest

from gauss_hpc import config, data, store, textio
from gauss_hpc.jobs import import_outputs
from gauss_hpc.jobs.spec import SpecError, load_spec
from gauss_hpc.jobs.tasks import read_inputs
from gauss_hpc.sampling.seeds import parse_seed_file

FUZZ_SEEDS = (0, 1, 2)
GOOD = ["[O-]C", "n1ccccc1", "OCC", "N#CC", "[O-]c1ccccc1", "O=C(C)C", "NC", "[O-]C(C)=O"]
ORCA_FIXTURES = Path(__file__).parent / "fixtures" / "orca"


def bad_lines(rng: random.Random) -> list[bytes]:
    """Lines that are not text (each makes textio report an encoding error)."""
    noise = bytes(rng.choice([b for b in range(128, 256)]) for _ in range(rng.randint(1, 40)))
    return [noise, "Café;Müller".encode("latin-1"), b"C\x00C", b"\xef\xbb" + b"CC", noise + b"CCO"]


def odd_but_text(rng: random.Random) -> list[bytes]:
    """Lines that are text but no SMILES: rejected by the chemistry, not by the decoding."""
    return [b"C" * 20000, b"$(rm -rf /); `reboot` | cat /etc/passwd > x", b"CC;ls -la && echo pwned",
            b",".join([b"x"] * 5000), "ümlaut-SMILES".encode()]


def fuzz_file(path: Path, rng: random.Random, *, header: bytes = b"", name_column: bool = False) -> tuple[int, int]:
    """Write GOOD lines mixed with bad and odd ones in random order with random line ends and a BOM; returns
    (good lines, lines that are not text)."""
    good = [s.encode() + (b"\tgood%d" % k if name_column else b"") for k, s in enumerate(GOOD)]
    bad = bad_lines(rng)
    body = good + bad + odd_but_text(rng)
    rng.shuffle(body)
    ends = [b"\n", b"\r\n", b"\r"]
    text = b"\xef\xbb\xbf" + (header + b"\n" if header else b"")
    text += b"".join(line + rng.choice(ends) for line in body)
    path.write_bytes(text)
    return len(good), len(bad)


@pytest.mark.parametrize("seed", FUZZ_SEEDS)
def test_textio_decodes_every_line_and_flags_the_bad_ones(tmp_path, seed):
    n_good, n_bad = fuzz_file(tmp_path / "f.smi", random.Random(seed))
    lines = list(textio.lines(tmp_path / "f.smi"))
    assert sum(bool(line.error) for line in lines) == n_bad
    assert all(line.error.startswith("encoding: line ") for line in lines if line.error)
    assert sorted(line.text for line in lines if line.text in GOOD) == sorted(GOOD)


@pytest.mark.parametrize("seed", FUZZ_SEEDS)
@pytest.mark.parametrize("suffix", [".smi", ".csv"])
def test_data_build_keeps_the_good_lines_and_rejects_the_rest_with_reasons(tmp_path, seed, suffix):
    rng = random.Random(seed)
    source = tmp_path / f"mols{suffix}"
    n_good, n_bad = fuzz_file(source, rng, header=b"smiles" if suffix == ".csv" else b"")
    counts = data.build(str(source), tmp_path / "l.h5", rejects_path=tmp_path / "rejects.csv")
    assert counts["molecules_read"] >= n_good + n_bad
    with open(tmp_path / "rejects.csv", newline="") as fh:
        reasons = [row[-1] for row in csv.reader(fh)][1:]
    assert sum(r.startswith("encoding:") for r in reasons) == n_bad
    assert counts["molecules_read"] - counts["molecules_rejected"] >= n_good      # every good line was curated
    assert len(store.read_ligands(tmp_path / "l.h5")) == counts["ligands"] >= len(GOOD)


def test_data_build_reads_an_sdf_with_garbage_records(tmp_path):
    from rdkit import Chem

    good = Chem.MolToMolBlock(Chem.MolFromSmiles("CCO")) + "$$$$\n"
    sdf = tmp_path / "m.sdf"
    sdf.write_bytes(good.encode() + b"garbage\xff\xfe\n\x00\x00 not a mol block\n$$$$\n" + good.encode())
    counts = data.build(str(sdf), tmp_path / "l.h5", rejects_path=tmp_path / "r.csv")
    assert counts["molecules_read"] == 3 and counts["molecules_rejected"] == 1
    assert len(store.read_ligands(tmp_path / "l.h5")) >= 1


@pytest.mark.parametrize("seed", FUZZ_SEEDS)
def test_seed_file_skips_lines_that_are_not_text(tmp_path, seed):
    rng = random.Random(seed)
    lines = [s.encode() for s in GOOD] + [b"12", b"7"] + bad_lines(rng)
    rng.shuffle(lines)
    (tmp_path / "seeds.txt").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\n")
    ids, smiles = parse_seed_file(tmp_path / "seeds.txt")
    assert sorted(ids) == [7, 12] and sorted(smiles) == sorted(GOOD)


@pytest.mark.parametrize("seed", FUZZ_SEEDS)
@pytest.mark.parametrize("suffix", [".smi", ".csv"])
def test_job_inputs_keep_one_task_per_line_and_carry_the_encoding_error(tmp_path, seed, suffix):
    rng = random.Random(seed)
    source = tmp_path / f"ligands{suffix}"
    n_good, n_bad = fuzz_file(source, rng, header=b"smiles,name" if suffix == ".csv" else b"",
                              name_column=suffix == ".smi")
    table = read_inputs({"path": str(source)})
    assert (table["input_error"] != "").sum() == n_bad
    assert set(GOOD) <= set(table["smiles"])
    assert table["name"].str.len().gt(0).all()


def test_job_import_survives_binary_and_truncated_files(tmp_path):
    real = next(p for p in ORCA_FIXTURES.glob("*.out"))
    shutil.copy(real, tmp_path / "good.out")
    (tmp_path / "binary.out").write_bytes(bytes(range(256)) * 50)
    (tmp_path / "cut.out").write_bytes(real.read_bytes()[: len(real.read_bytes()) // 3])
    out = import_outputs([tmp_path], tmp_path / "imported.h5", quiet=True)
    table = store.read_results(out).set_index("name")
    assert len(table) == 3 and table.loc["binary", "status"] == "unrecognized"


def test_a_truncated_or_foreign_hdf5_file_is_one_clear_error(tmp_path):
    from gauss_hpc import merge

    real = Path(__file__).parents[1] / "data" / "casscf_reference" / "results.h5"
    cut = tmp_path / "cut.h5"
    cut.write_bytes(real.read_bytes()[:5000])
    with pytest.raises(store.SchemaError, match="cut.h5: not a readable HDF5 file"):
        store.read_results(cut)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5["x"] = [1, 2]
    with pytest.raises(store.SchemaError, match="foreign.h5: is a foreign file, expected results"):
        store.read_results(foreign)
    assert merge.main([str(cut), "--into", str(tmp_path / "none.h5")]) != 0


def test_toml_with_bytes_that_are_not_utf8_is_one_clear_error(tmp_path):
    bad = tmp_path / "my.toml"
    bad.write_bytes(b"[train]\nlr = 0.001\nout = \"caf\xe9\"\n")
    with pytest.raises(ValueError, match=r"my\.toml: encoding: byte 0xe9 at offset \d+ is not UTF-8"):
        config.load("train", bad)
    with pytest.raises(SpecError, match=r"my\.toml: encoding: byte 0xe9"):
        load_spec(bad)
