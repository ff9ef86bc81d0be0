"""`python -m gauss_hpc.label`: proxy labels into ligands.h5, resumable, bad ligands recorded, not fatal."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from gauss_hpc import label, store

ROOT = Path(__file__).resolve().parents[1]   # `python -m gauss_hpc.label` runs from the checkout

GOOD = ["[O-]C", "OC", "[O-]c1ccccc1", "Oc1ccccc1", "n1ccccc1", "N#CC", "[NH-]C", "NC", "O=CC", "[O-]CC"]


def make_ligands(path, smiles):
    table = pd.DataFrame({"smiles": smiles, "canonical": smiles, "charge": [s.count("-]") * -1 for s in smiles],
                          "donor_element": [s.lstrip("[")[0].upper() for s in smiles],
                          "donor_z": [8 if s.lstrip("[")[0] in "Oo" else 7 for s in smiles],
                          "donor_index": [0] * len(smiles), "parent_id": [f"p{i}" for i in range(len(smiles))],
                          "source": ["test"] * len(smiles)})
    store.write_ligands(path, table)
    return path


def sidecar(path):
    return json.loads(label.sidecar_path(path, "xtb").read_text())


def test_labels_with_masks_bad_ligand_gets_a_status_and_runs_resume(tmp_path, capsys):
    path = make_ligands(tmp_path / "ligands.h5", GOOD[:4] + ["C1CC"] + GOOD[4:6])
    assert label.main(["--in", str(path), "--backend", "xtb", "--limit", "3", "--quiet"]) == 0
    first = sidecar(path)
    assert sorted(first["rows"], key=int) == ["0", "1", "2"]
    labels = store.read_labels(path)
    values, mask = labels["xtb_donor_charge"]
    assert mask.tolist() == [True, True, True, False, False, False, False]
    assert np.isnan(values[3:]).all() and values[0] < values[1] < 0            # methanolate O below methanol O
    with h5py.File(path) as h5:
        attrs = dict(h5["labels/xtb_donor_polarizability"].attrs)
    assert attrs["unit"] == "bohr^3" and attrs["method"] == "xtb" and attrs["quantity"] == "donor_polarizability"

    # the second run continues: it labels only the rest, and records the bad SMILES instead of crashing
    capsys.readouterr()
    assert label.main(["--ligands", str(path), "--backend", "xtb", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["labelled_now"] == 4 and summary["status_total"] == {"ok": 6, "invalid_input": 1}
    second = sidecar(path)
    assert len(second["rows"]) == 7
    for row in ("0", "1", "2"):
        assert second["rows"][row] == first["rows"][row]                       # not recomputed
    assert second["rows"]["4"]["status"] == "invalid_input" and "C1CC" in second["rows"]["4"]["message"]
    for name in ("xtb_donor_charge", "xtb_donor_dipole", "xtb_donor_polarizability"):
        values, mask = store.read_labels(path)[name]
        assert mask.tolist() == [True] * 4 + [False] + [True] * 2
        assert np.isfinite(values[mask]).all() and np.isnan(values[4])
    assert store.read_ligands(path).smiles.tolist()[4] == "C1CC"               # ligand table untouched


def test_rows_selection_and_parse_errors(tmp_path):
    path = make_ligands(tmp_path / "ligands.h5", GOOD[:6])
    summary = label.label_file(path, rows="1,4:", progress=False)
    assert summary["labelled_now"] == 3 and summary["status_total"] == {"ok": 3}
    assert store.read_labels(path)["xtb_donor_charge"][1].tolist() == [False, True, False, False, True, True]
    assert label.parse_rows("-1,0:2", 6).tolist() == [0, 1, 5]
    with pytest.raises(ValueError, match="--rows '7'"):
        label.parse_rows("7", 6)
    with pytest.raises(ValueError, match="cannot use 'a:b'"):
        label.parse_rows("a:b", 6)


def test_clear_errors_for_unknown_backend_other_file_and_changed_options(tmp_path, capsys):
    path = make_ligands(tmp_path / "ligands.h5", GOOD[:2])
    assert label.main(["--ligands", str(path), "--backend", "nonexistent", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "backend 'nonexistent' has no label_ligand" in err and "xtb" in err
    assert label.main(["--ligands", str(tmp_path / "missing.h5"), "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert label.main(["--ligands", str(path), "--quiet", "--limit", "1"]) == 0
    assert label.main(["--ligands", str(path), "--quiet", "--relax"]) == 2          # same progress, other options
    assert "--restart" in capsys.readouterr().err
    make_ligands(path, GOOD[2:5])                                              # the file was rebuilt
    assert label.main(["--ligands", str(path), "--quiet"]) == 2
    assert "another ligand file" in capsys.readouterr().err
    assert label.main(["--ligands", str(path), "--quiet", "--restart"]) == 0
    assert store.read_labels(path)["xtb_donor_charge"][1].all()


def test_two_worker_processes_give_the_same_labels(tmp_path):
    one = make_ligands(tmp_path / "one.h5", GOOD)
    two = make_ligands(tmp_path / "two.h5", GOOD)
    label.label_file(one, progress=False)
    label.label_file(two, workers=2, chunk=4, progress=False)
    for name, (values, mask) in store.read_labels(one).items():
        other_values, other_mask = store.read_labels(two)[name]
        assert mask.all() and np.array_equal(mask, other_mask)
        assert np.allclose(values, other_values, atol=1e-8)


def test_killed_run_continues_where_it_stopped(tmp_path):
    """SIGKILL (no cleanup at all) after the first checkpoints, then the same command finishes the job."""
    smiles = (GOOD * 8)[:80]
    path = make_ligands(tmp_path / "ligands.h5", smiles)
    side = label.sidecar_path(path, "xtb")
    cmd = [sys.executable, "-m", "gauss_hpc.label", "--ligands", str(path), "--chunk", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if side.exists() and len(json.loads(side.read_text())["rows"]) >= 4:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed; make it longer"
    done = len(json.loads(side.read_text())["rows"])
    assert 4 <= done < len(smiles)
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["labelled_now"] == len(smiles) - done
    assert store.read_labels(path)["xtb_donor_charge"][1].all()


def test_sigterm_writes_the_finished_labels(tmp_path):
    """A Slurm time limit sends SIGTERM: the run stops with 130 and the finished rows are in the HDF5 file."""
    path = make_ligands(tmp_path / "ligands.h5", (GOOD * 8)[:80])
    side = label.sidecar_path(path, "xtb")
    proc = subprocess.Popen([sys.executable, "-m", "gauss_hpc.label", "--ligands", str(path), "--chunk", "2",
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if side.exists() and len(json.loads(side.read_text())["rows"]) >= 2:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.02)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun the same command" in err
    done = len(json.loads(side.read_text())["rows"])
    assert store.read_labels(path)["xtb_donor_charge"][1].sum() == done >= 2


def test_label_backends_and_units_come_from_the_value_schema():
    from gauss_hpc import label, store
    from gauss_hpc.abinitio import values
    from gauss_hpc.jobs.gather import WIDTH

    assert label.QUANTITIES == {"donor_charge": "e", "donor_dipole": "e*bohr", "donor_polarizability": "bohr^3"}
    assert values.label_backends() == ("molcas", "xtb")
    for backend in values.label_backends():              # every backend the schema names really labels ligands
        assert callable(label.load_backend(backend).label_ligand)
    with pytest.raises(ValueError, match=r"crystal_field.*\['molcas', 'xtb'\]"):
        label.load_backend("crystal_field")
    assert WIDTH == {"kd_energies": (8,), "kd_gaps": (7,), "g_tensors": (8, 3), "g_axes": (8, 3, 3)}
    assert store.RESULT_ARRAYS == tuple(WIDTH)
