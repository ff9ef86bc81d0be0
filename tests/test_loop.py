"""Design rounds (gauss_hpc.loop) end to end on a small model trained here: initial crystal-field labels, two
rounds of sample → screen → merge → fine-tune on 2 MPI ranks with the local executor; a driver killed in round 2
and started again ends with the files of an uninterrupted run."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gauss_hpc import config, store
from gauss_hpc.train import train

pytestmark = pytest.mark.mpi       # rounds sample and fine-tune on 2 MPI ranks

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "data" / "ligands.h5"


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """250 short bundled ligands and a small VAE trained on them (~30 s): round 0's ligands and model."""
    root = tmp_path_factory.mktemp("loop")
    table = store.read_ligands(BUNDLED)
    pick = np.flatnonzero(table["smiles"].str.len().to_numpy() <= 9)[:250]
    test = np.zeros(len(pick), bool)
    test[::10] = True
    store.write_ligands(root / "ligands.h5", table.iloc[pick].reset_index(drop=True), test_mask=test,
                        train_subsets={})
    cfg = config.load("train", overrides=dict(
        ligands=str(root / "ligands.h5"), out=str(root / "model"), max_epochs=25, encoder_hidden=[64, 32],
        decoder_hidden=64, lr=3e-3, batch_size=25, threads=1, early_stop_patience=100, proxy_labels=["none"]))
    assert train(cfg, progress=False) == 0
    spec = root / "loop.toml"
    spec.write_text(f"""[loop]
ligands = "{root / 'ligands.h5'}"
model = "{root / 'model'}"
rounds = 2
initial_labels = 40
seeds = 4
sigmas = [1.0]
batches = 4
batch_size = 50
screen = 12
executor = "local"
workers = 2
tasks_per_job = 6

[loop.train]
max_epochs = 1
batch_size = 25
""")
    return spec


def run_loop(rounds_dir: Path, spec: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gauss_hpc.loop", str(rounds_dir), "--config", str(spec)],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            **popen)


def finished(proc: subprocess.Popen, timeout: float = 900) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


def test_two_rounds_and_a_killed_driver_ends_with_the_same_files(start, tmp_path):
    whole = tmp_path / "whole"
    out = finished(run_loop(whole, start))
    summaries = json.loads(out[out.index("[\n"):])
    assert [s["round"] for s in summaries] == [0, 1]
    labelled = store.read_labels(whole / "labelled.h5")["cf_kd_gaps"][1].sum()
    assert 35 <= labelled <= 40                                   # initial labels (a few may fail assembly)
    for number, summary in enumerate(summaries):
        rnd = whole / f"{number:02d}"
        results = store.read_results(rnd / "screen" / "results.h5")
        samples = store.read_samples(rnd / "samples.h5")
        # identity and provenance came with the tasks: rows of this round's samples file
        assert (results["round"] == number).all() and set(results["source_file"]) == {str(rnd / "samples.h5")}
        assert (samples["canonical"].to_numpy()[results["sample_row"]] == results["canonical"].to_numpy()).all()
        ok = int((results["status"] == "ok").sum())
        assert summary["labels_added"] == ok > 0 and summary["merge"]["tasks_merged"] == ok
        assert summary["fig10"]["seeds"] == 4 and (summary["kd1_r2_after"] is not None or ok < 2)
        assert summary["fig10"]["screened"] == len(results)
        with store.open_checked(rnd / "ligands.h5", "ligands") as h5:
            generated = store.read_table(h5["generated"])
        assert (generated["round"] == number).sum() == ok           # all new: novel samples, with their round
    assert summaries[0]["kd1_r2_before_note"].endswith("has no KD head")      # round 0's model has none
    assert summaries[1]["kd1_r2_before_note"] is None                         # round 1 starts from round 0's

    # The same loop killed in round 2 (index 1) once its samples exist, then started again.
    again = tmp_path / "again"
    shutil.copytree(whole, again, ignore=lambda folder, names: ["01"] if Path(folder) == whole else [])
    proc = run_loop(again, start)
    deadline = time.monotonic() + 900
    while not (again / "01" / "samples.h5").is_file():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-4000:]
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (again / "01" / "round.json").exists()
    finished(run_loop(again, start))
    for name in ("01/ligands.h5",):
        a, b = store.read_labels(whole / name), store.read_labels(again / name)
        assert a.keys() == b.keys()
        for label in a:
            np.testing.assert_array_equal(a[label][1], b[label][1])
            np.testing.assert_allclose(a[label][0], b[label][0], equal_nan=True)
    for number in ("01",):
        sa = store.read_samples(whole / number / "samples.h5")
        sb = store.read_samples(again / number / "samples.h5")
        assert sa.drop(columns="rank").equals(sb.drop(columns="rank"))
        wa = torch.load(whole / number / "model" / "best.pt", weights_only=True)["model_state"]
        wb = torch.load(again / number / "model" / "best.pt", weights_only=True)["model_state"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ja, jb = (json.loads((d / "01" / "round.json").read_text()) for d in (whole, again))
    assert ja == jb


def test_bad_configuration_is_refused_before_any_work(start, tmp_path, capsys):
    from gauss_hpc import loop

    assert loop.main([str(tmp_path / "r"), "--config", str(start), "--oracle", "jobs/nope.toml"]) == 2
    assert "no such job spec" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(start.read_text().replace("seeds = 4", "seeds = 4\nseed_rules = 3"))
    assert loop.main([str(tmp_path / "r"), "--config", str(bad)]) == 2
    assert "unknown keys in [loop]: seed_rules" in capsys.readouterr().err


def test_an_oracle_that_labels_nothing_stops_the_loop_with_what_to_do(start, tmp_path, capsys):
    """Every initial-label task fails (here: an oracle whose program exits 1): the driver stops there, says
    which campaign to inspect and resubmit, and writes no labelled file (a rerun tries the labels again)."""
    from gauss_hpc import loop

    oracle = tmp_path / "failing_oracle.toml"
    oracle.write_text('[campaign]\nname = "failing"\n\n[[steps]]\nname = "program"\n'
                      'params = { command = ["false"] }\n')
    cfg = start.read_text().replace("initial_labels = 40", "initial_labels = 4")
    (tmp_path / "loop.toml").write_text(cfg)
    rounds = tmp_path / "r"
    assert loop.main([str(rounds), "--config", str(tmp_path / "loop.toml"), "--oracle", str(oracle)]) == 1
    err = capsys.readouterr().err
    assert "none of the 4 initial ligands got a cf_kd_gaps label" in err, err
    assert f"jobs resubmit {rounds / 'initial_labels'} --failed" in err
    assert not (rounds / "labelled.h5").exists() and not (rounds / "00").exists()


def test_tasks_an_interruption_stopped_run_again_chemistry_failures_do_not(tmp_path):
    """A rerun of the driver: a task whose job ended without its shard (here: the shard removed, as when the
    session that ran the local jobs ended) is run again; a ligand that cannot be assembled is not."""
    from gauss_hpc import jobs, loop
    from gauss_hpc.jobs import shards

    # the third: a strained polycycle RDKit cannot embed in 3-D (one of the 1.9 % of QM9 ligands not assembled)
    spec = {"campaign": {"name": "t", "executor": "debug"},
            "input": {"smiles": ["[O-]C", "N#CC", "O1CC2N3CC12C1CC13"]},
            "steps": [{"name": "assemble"}, {"name": "crystal_field"}]}
    first = store.read_results(loop.run_campaign(spec, tmp_path / "c"))
    assert first["status"].tolist() == ["ok", "ok", "invalid_input"]
    lost = jobs.Campaign(tmp_path / "c").tasks()[1]["task_id"]
    shards.shard_path(tmp_path / "c", lost).unlink()
    assert jobs.status(tmp_path / "c")["reason"].tolist()[1] == "killed"
    again = store.read_results(loop.run_campaign(spec, tmp_path / "c"))
    assert again["status"].tolist() == ["ok", "ok", "invalid_input"]
    assert again["attempt"].tolist() == [1, 2, 1]
