"""Real training runs on a small ligand file: outputs of a run, 2 MPI ranks == 1 rank, SIGTERM + --resume ==
uninterrupted, unlabelled rows' values never matter, zero labels, bad checkpoints."""

import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from gauss_hpc import config, store, train
from gauss_hpc.model import CheckpointError, dataset, load_run
from gauss_hpc.model import checkpoint as ckpt
from slurm_cluster import require_cluster
from train_data import make_ligands

REPO = Path(__file__).resolve().parents[1]
PY = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
MPIEXEC = shutil.which("mpiexec", path=str(Path(PY).parent)) or shutil.which("mpiexec")
# Small sizes keep each run to seconds; the architecture is the paper's otherwise.
SMALL = {"encoder_hidden": [24, 16, 12], "decoder_hidden": 24, "latent_dim": 8, "proxy_hidden": 8,
         "threads": 1}
SMALL_FLAGS = ["--encoder-hidden", "24,16,12", "--decoder-hidden", "24", "--latent-dim", "8", "--proxy-hidden", "8",
               "--threads", "1", "--quiet"]


def env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


def run_cli(args, timeout=240, launcher=()):
    return subprocess.run([*launcher, PY, "-m", "gauss_hpc.train", *args], cwd=REPO, env=env(), timeout=timeout,
                          capture_output=True, text=True)


def cfg_for(ligands, out, **extra):
    return config.load("train", None, {"ligands": str(ligands), "out": str(out), **SMALL, **extra})


def params(path):
    return torch.load(path, weights_only=True)["model_state"]


def assert_same_params(a, b, atol):
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= atol, f"largest parameter difference {worst:g} > {atol:g}"


@pytest.fixture(scope="module")
def ligands(tmp_path_factory):
    return make_ligands(tmp_path_factory.mktemp("data") / "ligands.h5", n=240)


def test_run_directory_contract(ligands, tmp_path):
    out = tmp_path / "run"
    assert train.train(cfg_for(ligands, out, max_epochs=2, batch_size=50), progress=False) == 0
    for name in ("config.toml", "vocab.json", "checkpoint.pt", "best.pt", "history.h5", "latents.h5"):
        assert (out / name).is_file(), name
    history = store.read_history(out / "history.h5")
    assert list(history["epoch"]) == [0, 1]
    for column in ("train_loss", "train_reconstruction", "train_kl", "train_property", "val_loss",
                   "val_char_accuracy", "val_string_accuracy", "val_active_units", "r2_donor_z", "r2_donor_charge", "lr",
                   "wall_seconds", "samples_per_s"):
        assert column in history and np.isfinite(history[column]).all(), column
    run = load_run(out)
    assert run.label_names == ["donor_z", "donor_charge"] and len(run.label_std) == 2
    assert run.config["batch_size"] == 50
    latents = store.read_latents(out / "latents.h5")
    table = store.read_ligands(ligands)
    assert latents["mu"].shape == (len(table), 8) and latents["mu"].dtype == np.float32
    assert list(latents["canonical"]) == table["canonical"].tolist()
    assert np.array_equal(latents["ligand_row"], np.arange(len(table)))
    assert Path(latents["ligands_file"]) == ligands.resolve()
    with torch.no_grad():
        mu, _ = run.model.encode(torch.from_numpy(run.vocab.encode(table["smiles"].tolist()[:20])))
    np.testing.assert_allclose(mu.numpy(), latents["mu"][:20], atol=1e-5)
    # config.toml is the config actually used, loadable as a [train] config file
    assert config.load("train", out / "config.toml")["batch_size"] == 50


EQUIVALENCE_FLAGS = ["--max-epochs", "2", "--batch-size", "100", *SMALL_FLAGS]


@pytest.fixture(scope="module")
def one_rank_run(ligands, tmp_path_factory):
    out = tmp_path_factory.mktemp("one_rank") / "run"
    done = run_cli(["--ligands", str(ligands), *EQUIVALENCE_FLAGS, "--out", str(out)])
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def assert_same_run(one, two):
    assert_same_params(params(one / "checkpoint.pt"), params(two / "checkpoint.pt"), atol=1e-5)
    h1, h2 = store.read_history(one / "history.h5"), store.read_history(two / "history.h5")
    np.testing.assert_allclose(h1["train_loss"], h2["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(h1["val_string_accuracy"], h2["val_string_accuracy"])
    l1, l2 = store.read_latents(one / "latents.h5"), store.read_latents(two / "latents.h5")
    np.testing.assert_allclose(l1["mu"], l2["mu"], atol=1e-4)


@pytest.mark.skipif(MPIEXEC is None, reason="LOUD SKIP: no mpiexec found (install mpich into the venv)")
def test_two_mpi_ranks_equal_one_rank(ligands, one_rank_run, tmp_path):
    """mpiexec -n 2 with 50 rows per rank == 1 rank with batch 100 (dropout on: masks are drawn globally)."""
    two = run_cli(["--ligands", str(ligands), *EQUIVALENCE_FLAGS, "--out", str(tmp_path / "two")],
                  launcher=(MPIEXEC, "-n", "2"))
    assert two.returncode == 0, two.stderr[-3000:]
    assert "mpiexec launch, 2 rank(s), backend gloo" in two.stderr
    assert_same_run(one_rank_run, tmp_path / "two")


def test_two_srun_ranks_equal_one_rank(ligands, one_rank_run, tmp_path):
    require_cluster()  # starts the local test cluster (slurm/start_cluster.sh) or skips loudly with the reason
    slurm = env()
    out = tmp_path / "srun"
    done = subprocess.run(["srun", "-n", "2", "--mpi=pmi2", "--time=10", f"--chdir={REPO}", PY, "-m",
                           "gauss_hpc.train", "--ligands", str(ligands), *EQUIVALENCE_FLAGS, "--out", str(out)],
                          env=slurm, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "srun launch, 2 rank(s), backend gloo" in done.stderr
    assert_same_run(one_rank_run, out)


@pytest.mark.skipif(MPIEXEC is None, reason="LOUD SKIP: no mpiexec found (install mpich into the venv)")
def test_mpiexec_inside_a_batch_job_equals_one_rank(ligands, one_rank_run, tmp_path):
    """As slurm/loop.sbatch runs its stages: mpiexec -n 2 inside a 2-task batch job. MPICH starts its ranks
    through srun there (a 1-task step, SLURM_PROCID 0 on both); each must still know it is one of two."""
    require_cluster()
    script = tmp_path / "job.sh"
    script.write_text('#!/bin/bash\n#SBATCH --ntasks=2\n#SBATCH --time=10\nexec "$@"\n')
    log = tmp_path / "job.out"
    out = tmp_path / "batch"
    done = subprocess.run(["sbatch", "--wait", "--output", str(log), f"--chdir={REPO}", str(script), MPIEXEC, "-n",
                           "2", PY, "-m", "gauss_hpc.train", "--ligands", str(ligands), *EQUIVALENCE_FLAGS,
                           "--out", str(out)], env=env(), capture_output=True, text=True, timeout=400)
    text = log.read_text() if log.is_file() else done.stderr
    assert done.returncode == 0, text[-3000:]
    assert "mpiexec launch, 2 rank(s), backend gloo" in text
    assert_same_run(one_rank_run, out)


def test_sigterm_mid_epoch_then_resume_is_exact(ligands, tmp_path):
    flags = ["--ligands", str(ligands), "--max-epochs", "3", "--batch-size", "10", "--log-every", "1", *SMALL_FLAGS]
    reference = tmp_path / "reference"
    assert train.train(cfg_for(ligands, reference, max_epochs=3, batch_size=10), progress=False) == 0

    out = tmp_path / "interrupted"
    proc = subprocess.Popen([PY, "-m", "gauss_hpc.train", *flags, "--out", str(out)], cwd=REPO, env=env(),
                            stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "epoch 1 step 3/" in line:
                proc.send_signal(signal.SIGTERM)
                break
        seen += proc.stderr.readlines()
        rc = proc.wait(timeout=120)
    finally:
        proc.kill()
    log = "".join(seen)
    assert rc == train.EXIT_INTERRUPTED, log[-3000:]
    assert "received SIGTERM" in log and "continue with --resume" in log
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] > 0, "the signal should arrive mid-epoch"
    assert not (out / "latents.h5").exists()

    resumed = run_cli([*flags, "--out", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {out / 'checkpoint.pt'} at epoch {state['epoch']} step {state['step']}" in resumed.stderr
    assert_same_params(params(reference / "checkpoint.pt"), params(out / "checkpoint.pt"), atol=0.0)
    assert_same_params(params(reference / "best.pt"), params(out / "best.pt"), atol=0.0)
    ref_hist, res_hist = store.read_history(reference / "history.h5"), store.read_history(out / "history.h5")
    np.testing.assert_allclose(ref_hist["train_loss"], res_hist["train_loss"], rtol=1e-12)


def test_resume_with_more_epochs_and_a_new_learning_rate(ligands, tmp_path):
    """Extending a finished run: --max-epochs raises the limit, --lr replaces the optimizer's stored rate."""
    out = tmp_path / "run"
    assert train.train(cfg_for(ligands, out, max_epochs=1, batch_size=50), progress=False) == 0
    more = run_cli(["--ligands", str(ligands), *SMALL_FLAGS, "--batch-size", "50", "--out", str(out), "--resume",
                    "--max-epochs", "2", "--lr", "1e-4"])
    assert more.returncode == 0, more.stderr[-3000:]
    assert "learning rate set to 0.0001" in more.stderr
    history = store.read_history(out / "history.h5")
    assert list(history["epoch"]) == [0, 1] and history["lr"].iloc[1] == pytest.approx(1e-4)


def test_resume_with_the_runs_own_lr_keeps_the_reduced_rate(ligands, tmp_path):
    """A driver that repeats its flags on --resume (gauss_hpc.loop's fine-tuning after a requeue) passes the
    run's own --lr again: the rate the plateau schedule has reduced stays reduced."""
    out = tmp_path / "run"
    flags = ["--ligands", str(ligands), *SMALL_FLAGS, "--batch-size", "50", "--out", str(out), "--lr", "2e-3",
             "--lr-patience", "0", "--lr-threshold", "1e9"]         # every epoch after the first halves the rate
    first = run_cli([*flags, "--max-epochs", "2"])
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_cli([*flags, "--max-epochs", "3", "--resume"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "learning rate set to" not in again.stderr
    assert list(store.read_history(out / "history.h5")["lr"]) == pytest.approx([2e-3, 2e-3, 1e-3])


def test_unlabelled_rows_garbage_values_change_nothing(tmp_path):
    clean = make_ligands(tmp_path / "clean.h5", n=120)
    dirty = make_ligands(tmp_path / "dirty.h5", n=120, garbage=1e6)
    with h5py.File(dirty) as h5:
        assert (h5["labels/donor_charge/values"][()] == 1e6).any()
    for name, path in (("clean", clean), ("dirty", dirty)):
        assert train.train(cfg_for(path, tmp_path / name, max_epochs=1, batch_size=20), progress=False) == 0
    assert_same_params(params(tmp_path / "clean" / "best.pt"), params(tmp_path / "dirty" / "best.pt"), atol=0.0)


def test_zero_labels_trains_the_vae_alone_with_a_warning(tmp_path, caplog):
    ligands = make_ligands(tmp_path / "nolabels.h5", n=120, labelled_fraction=None)
    with caplog.at_level(logging.WARNING, logger="gauss_hpc.train"):
        code = train.train(cfg_for(ligands, tmp_path / "run", max_epochs=1, proxy_labels=["none"]), progress=False)
    assert code == 0
    assert "no property labels to train on: training the VAE alone" in caplog.text
    run = load_run(tmp_path / "run")
    assert run.model.proxy is None and run.label_names == []


def test_label_without_values_is_dropped_with_a_warning(tmp_path, caplog):
    ligands = make_ligands(tmp_path / "empty_label.h5", n=120, labelled_fraction=0.0)
    with caplog.at_level(logging.WARNING, logger="gauss_hpc.train"):
        train.train(cfg_for(ligands, tmp_path / "run", max_epochs=1, proxy_labels=["donor_charge"]), progress=False)
    assert "label 'donor_charge' has no value on the training ligands" in caplog.text
    assert "training the VAE alone" in caplog.text


def test_bad_inputs_give_clear_errors(ligands, tmp_path):
    with pytest.raises(train.InputError, match=r"no label\(s\) \['polarisability'\]; available"):
        train.train(cfg_for(ligands, tmp_path / "a", proxy_labels=["polarisability"]), progress=False)
    with pytest.raises(train.InputError, match="no such file"):
        train.train(cfg_for(tmp_path / "missing.h5", tmp_path / "b"), progress=False)
    out = tmp_path / "c"
    out.mkdir()
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: checkpoint not found"):
        train.train(cfg_for(ligands, out), resume=True, progress=False)
    (out / "checkpoint.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: not a readable gauss_hpc checkpoint"):
        train.train(cfg_for(ligands, out), resume=True, progress=False)
    with pytest.raises(train.InputError, match=r"checkpoint\.pt exists: continue it with --resume"):
        train.train(cfg_for(ligands, out), progress=False)


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for key in config.defaults()["train"]:
        assert "--" + key.replace("_", "-") in text, key
    for flag in ("--max-epochs", "--max-minutes", "--train-size", "--resume", "--config"):
        assert flag in text


def test_kd_head_trains_on_complex_labels(tmp_path):
    """GAUSS-I: latent + 6 structural descriptors -> 7 KD gaps, masked like the proxy labels."""
    ligands = make_ligands(tmp_path / "kd.h5", n=120)
    n = len(store.read_ligands(ligands))
    rng = np.random.default_rng(1)
    mask = rng.random(n) < 0.6
    descriptors = rng.normal(size=(n, 6))
    gaps = 100 + 50 * descriptors[:, :1] + rng.normal(size=(n, 7))
    store.update_labels(ligands, {"cf_kd_gaps": (gaps, mask, {"unit": "cm-1"}),
                                  "cf_kd_descriptors": (descriptors, mask, {"unit": "mixed"})})
    out = tmp_path / "run"
    assert train.train(cfg_for(ligands, out, max_epochs=1, kd_head=True), progress=False) == 0
    run = load_run(out)
    assert run.kd_head is not None and run.kd_label_names == ["cf_kd_gaps"]
    assert run.kd_standardization["kd_descriptor_mean"].shape == (6,)
    assert np.isfinite(store.read_history(out / "history.h5")["r2_kd_gaps_mean"]).all()
    # a KD head saved before the gaps became dE0i (no kd_gap_definition) is refused, never read as dE0i
    payload = ckpt.load(out / ckpt.BEST)
    del payload["kd_gap_definition"]
    ckpt.save(out / ckpt.BEST, payload)
    with pytest.raises(ckpt.CheckpointError, match="gauss-hpc upgrade"):
        load_run(out)
    with pytest.raises(train.InputError, match="kd_head needs labels 'cf_kd_gaps'"):
        train.train(cfg_for(make_ligands(tmp_path / "plain.h5", n=60), tmp_path / "r2", kd_head=True),
                    progress=False)


def test_labelled_size_keeps_labels_on_a_random_sample_of_training_ligands(tmp_path):
    """Files list ligands in their source's order (QM9: smallest molecules first), so the labelled subset of a
    semi-supervised run must be drawn at random, not taken from the top; held-out ligands keep their labels."""
    path = make_ligands(tmp_path / "all_labelled.h5", n=200, labelled_fraction=1.0)
    data = dataset.load_dataset(cfg_for(path, tmp_path / "run", labelled_size=20, proxy_labels=["donor_charge"]))
    mask = data.label_mask[:, 0].numpy()
    labelled_train = np.flatnonzero(mask[data.train_rows])
    assert len(labelled_train) == 20
    assert labelled_train.max() > 40                # not the first 20 training rows
    assert mask[data.test_rows].all()
    again = dataset.load_dataset(cfg_for(path, tmp_path / "run", labelled_size=20, proxy_labels=["donor_charge"]))
    assert np.array_equal(again.label_mask.numpy(), data.label_mask.numpy())


def test_eval_size_scores_every_kd_labelled_held_out_ligand_and_a_fixed_sample_of_the_rest(tmp_path):
    path = make_ligands(tmp_path / "l.h5", n=400)
    full = dataset.load_dataset(cfg_for(path, tmp_path / "run"))
    some = dataset.load_dataset(cfg_for(path, tmp_path / "run", eval_size=20))
    assert len(full.test_rows) > 40 and len(some.test_rows) == 20
    assert set(some.test_rows) <= set(full.test_rows)
    assert np.array_equal(some.test_rows, dataset.load_dataset(cfg_for(path, tmp_path / "run", eval_size=20)).test_rows)
    scarce = full.test_rows[:5]
    data = dataset.load_dataset(cfg_for(path, tmp_path / "run"))
    data.kd_mask = torch.zeros(len(data.tokens), 1, dtype=torch.bool)
    data.kd_mask[scarce] = True
    rows = dataset.evaluation_rows(data, 8, seed=1)
    assert len(rows) == 8 and set(scarce) <= set(rows)


def test_epoch_row_turns_global_sums_into_means_and_rates():
    from gauss_hpc.model.objective import TERMS
    from gauss_hpc.train import epoch_row, epoch_summary

    sums = torch.tensor([2.0 * (i + 1) * 100 for i in range(len(TERMS))] + [100.0, 4.0], dtype=torch.float64)
    row = epoch_row(3, sums, 2.0, {"val_loss": 1.5, "val_string_accuracy": 0.9}, 1e-3)
    assert row["epoch"] == 3 and row["lr"] == 1e-3
    assert [row[f"train_{t}"] for t in TERMS] == [2.0 * (i + 1) for i in range(len(TERMS))]
    assert row["samples_per_s"] == 50.0 and row["cpu_seconds"] == 4.0 and row["samples_per_cpu_s"] == 25.0
    assert row["val_loss"] == 1.5
    assert "held-out loss 1.500, string_accuracy 0.900 | lr 1.00e-03 | 50 ligands/s" in epoch_summary(row)
