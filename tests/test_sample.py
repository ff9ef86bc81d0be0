"""The sampling stage end to end on a small model trained here (gauss_hpc.train, ~30 s): 1 rank vs 2 real MPI
ranks (and srun when the local test Slurm answers), σ = 0, counts, novelty, the KD cross-mapping, bad input."""

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from gauss_hpc import config, sample, store
from gauss_hpc.model.checkpoint import load_run
from gauss_hpc.sampling.engine import matmul_dtype
from gauss_hpc.sampling.predict import encoder_form
from gauss_hpc.sampling.validate import REASONS, check_ligand
from gauss_hpc.train import train

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "data" / "ligands.h5"
PY = sys.executable
MPIEXEC = Path(PY).with_name("mpiexec")
N_LIGANDS = 250


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run: the first 250 short ligands of the bundled QM9 set, a small VAE trained for 25 epochs.
    The ligands file also carries a `kd_gaps` label on half the rows (values = row number x (1..7), a test
    label whose only purpose is to check that the cross-mapping returns the neighbour's value)."""
    root = tmp_path_factory.mktemp("sample")
    table = store.read_ligands(BUNDLED)
    pick = np.flatnonzero(table["smiles"].str.len().to_numpy() <= 9)[:N_LIGANDS]
    ligands = table.iloc[pick].reset_index(drop=True)
    charge, charge_mask = store.read_labels(BUNDLED)["donor_mulliken_charge"]
    kd_mask = np.arange(len(ligands)) % 2 == 0
    kd_gaps = np.arange(len(ligands))[:, None] * np.arange(1.0, 8.0)[None, :]
    test = np.zeros(len(ligands), bool)
    test[::10] = True
    store.write_ligands(root / "ligands.h5", ligands, test_mask=test, train_subsets={},
                        labels={"donor_mulliken_charge": (charge[pick], charge_mask[pick], {"unit": "e"}),
                                "cf_kd_gaps": (kd_gaps, kd_mask, {"unit": "cm-1", "method": "test"})})
    cfg = config.load("train", overrides=dict(
        ligands=str(root / "ligands.h5"), out=str(root / "run"), max_epochs=25, encoder_hidden=[64, 32],
        decoder_hidden=64, lr=3e-3, batch_size=25, threads=1, early_stop_patience=100))
    assert train(cfg, progress=False) == 0
    return root / "run"


def sample_cli(run_dir, out, *extra):
    return ["--quiet", str(run_dir), "--out", str(out), *extra]


COMMON = ["--seed-random", "12", "--sigmas", "0.1", "0.5", "--batches", "3", "--batch-size", "40",
          "--units-per-group", "2", "--metrics-max-samples", "200"]


@pytest.fixture(scope="module")
def one_rank(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "samples.h5"
    assert sample.main(sample_cli(run_dir, out, *COMMON)) == 0
    return out


def read(path):
    return {name: store.read_samples(path, name) for name in store.SAMPLE_TABLES}


def assert_same_result(a, b):
    """Same samples in the same (generation) order, same flags and statistics; only the rank differs."""
    ta, tb = read(a), read(b)
    cols = [c for c in ta["samples"].columns if c != "rank"]
    pd.testing.assert_frame_equal(ta["samples"][cols], tb["samples"][cols])
    for name in ("attempts", "sigma_stats", "metrics", "seeds"):
        pd.testing.assert_frame_equal(ta[name], tb[name])
    with h5py.File(a) as ha, h5py.File(b) as hb:
        assert np.array_equal(ha["samples/z"][()], hb["samples/z"][()])
    assert set(ta["samples"]["canonical"][ta["samples"]["unique"]]) == \
        set(tb["samples"]["canonical"][tb["samples"]["unique"]])


def assert_consistent(path, ligands_file):
    t = read(path)
    samples, attempts = t["samples"], t["attempts"]
    invalid = attempts[[f"invalid_{r}" for r in REASONS]].sum(axis=1)
    assert (attempts["attempts"] == attempts["valid"] + invalid).all()
    with h5py.File(path) as h5:
        assert attempts["attempts"].sum() == h5.attrs["batches"] * h5.attrs["batch_size"] * len(t["seeds"]) * \
            len(np.unique(attempts["sigma"]))
    assert attempts["valid"].sum() == len(samples) > 0
    assert samples["valid"].all()
    # no duplicates anywhere: each canonical is unique once overall and once per sigma
    assert samples[samples["unique"]]["canonical"].is_unique
    assert set(samples[samples["unique"]]["canonical"]) == set(samples["canonical"])
    per_sigma = samples[samples["unique_in_sigma"]]
    assert not per_sigma.duplicated(["sigma", "canonical"]).any()
    assert len(per_sigma) == samples.drop_duplicates(["sigma", "canonical"]).shape[0]
    # the first occurrence in generation order wins
    first = samples.sort_values("key").drop_duplicates("canonical")
    assert set(first.index) == set(samples.index[samples["unique"]])
    assert (samples["times_generated"] == samples.groupby("canonical")["canonical"].transform("size")).all()
    training = set(store.read_ligands(ligands_file)["canonical"])
    assert (samples["novel"] == ~samples["canonical"].isin(training)).all()
    assert all(check_ligand(s).canonical == c for s, c in zip(samples["smiles"], samples["canonical"]))
    stats = t["sigma_stats"]
    totals = stats.groupby("sigma")[["attempts", "valid", "unique"]].sum()
    assert (totals["attempts"] == attempts.groupby("sigma")["attempts"].sum()).all()
    assert (totals["unique"] == per_sigma.groupby("sigma").size()).all()
    last = stats.sort_values("batch").groupby("sigma").tail(1).set_index("sigma")
    assert (last["cum_valid"] == totals["valid"]).all()


@pytest.mark.skipif(not MPIEXEC.exists(), reason="LOUD SKIP: no mpiexec in the venv (pip install mpich)")
def test_two_mpi_ranks_give_the_same_result_as_one(run_dir, one_rank, tmp_path):
    out = tmp_path / "two.h5"
    done = subprocess.run([str(MPIEXEC), "-n", "2", PY, "-m", "gauss_hpc.sample", *sample_cli(run_dir, out, *COMMON)],
                          capture_output=True, text=True, timeout=300, env=env(), cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 2 rank(s)" in done.stdout
    assert set(store.read_samples(out)["rank"]) == {0, 1}      # both ranks generated samples
    assert_same_result(one_rank, out)
    assert_consistent(out, run_dir.parent / "ligands.h5")


def test_srun_two_ranks_give_the_same_result_as_one(run_dir, one_rank, tmp_path):
    from slurm_cluster import cluster_reason, ensure_cluster

    if not ensure_cluster():
        pytest.skip(f"LOUD SKIP: no Slurm cluster, srun -n 2 --mpi=pmi2 not checked: {cluster_reason()}")
    out = tmp_path / "srun.h5"
    done = subprocess.run(["srun", "-n", "2", "--mpi=pmi2", "--time=10", f"--chdir={ROOT}", PY, "-m",
                           "gauss_hpc.sample", *sample_cli(run_dir, out, *COMMON)],
                          capture_output=True, text=True, timeout=400, env=env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 2 rank(s)" in done.stdout
    assert_same_result(one_rank, out)


def test_one_rank_run_is_consistent(run_dir, one_rank):
    assert_consistent(one_rank, run_dir.parent / "ligands.h5")
    t = read(one_rank)
    metrics = t["metrics"]
    assert list(metrics["sigma"][:2]) == [0.1, 0.5] and np.isnan(metrics["sigma"].iloc[2])
    assert ((metrics["validity"] >= 0) & (metrics["validity"] <= 1)).all()
    assert metrics["unique"].iloc[2] == t["samples"]["unique"].sum()
    with h5py.File(one_rank) as h5:
        assert h5.attrs["kind"] == "samples" and "best.pt" in h5.attrs["sources"]
        # the default precision "auto", resolved for this CPU
        assert h5.attrs["precision"] == str(matmul_dtype("auto")).removeprefix("torch.")
        assert h5["samples/mu"].shape == (len(t["samples"]), 32)


def test_sigma_zero_reproduces_the_seed_decoding(run_dir, tmp_path):
    run = load_run(run_dir)
    latents = store.read_latents(run_dir / "latents.h5")
    with torch.inference_mode():
        decoded = run.vocab.decode(run.model.generate(torch.from_numpy(latents["mu"][:40])).numpy())
    verdicts = [check_ligand(s) for s in decoded]
    good = next(i for i, v in enumerate(verdicts) if v.valid)
    bad = next(i for i, v in enumerate(verdicts) if not v.valid)
    out = tmp_path / "zero.h5"
    assert sample.main(sample_cli(run_dir, out, "--seed-ids", str(good), str(bad), "--sigmas", "0",
                                  "--batches", "2", "--batch-size", "25", "--no-metrics",
                                  "--precision", "float32")) == 0
    t = read(out)
    assert (t["samples"]["smiles"] == decoded[good]).all() and len(t["samples"]) == 50
    with h5py.File(out) as h5:
        assert h5.attrs["precision"] == "float32"
    assert t["samples"]["unique"].sum() == 1
    bad_rows = t["attempts"][t["attempts"]["seed_id"] == 1]
    assert bad_rows[f"invalid_{verdicts[bad].reason}"].sum() == 50


def test_decoding_batches_do_not_change_results_and_temperature_is_reproducible(run_dir, tmp_path):
    args = ["--seed-ids", "3", "8", "--sigmas", "0.4", "--batches", "3", "--batch-size", "20", "--no-metrics",
            "--decoding", "temperature", "--temperature", "0.7"]
    outs = []
    for group in (1, 4, 4):
        outs.append(tmp_path / f"t{len(outs)}.h5")
        assert sample.main(sample_cli(run_dir, outs[-1], *args, "--units-per-group", str(group))) == 0
    assert_same_result(outs[0], outs[1])
    assert_same_result(outs[1], outs[2])
    greedy = tmp_path / "greedy.h5"
    assert sample.main(sample_cli(run_dir, greedy, *args[:-4], "--units-per-group", "4")) == 0
    assert not store.read_samples(greedy)[["key", "smiles"]].equals(store.read_samples(outs[0])[["key", "smiles"]])


def test_keep_donor_samples_start_with_their_seeds_donor_atom(run_dir, tmp_path):
    from gauss_hpc.chem.vocab import tokenize

    out = tmp_path / "donor.h5"
    assert sample.main(sample_cli(run_dir, out, "--seed-random", "6", "--sigmas", "0.5", "1.0", "--batches", "2",
                                  "--batch-size", "40", "--no-metrics", "--keep-donor")) == 0
    t = read(out)
    run = load_run(run_dir)
    donor = {row.seed_id: tokenize(encoder_form(row.smiles, run.vocab), "atom")[0] for row in t["seeds"].itertuples()}
    written = [tokenize(s, "atom")[0] for s in t["samples"]["smiles"]]
    assert len(written) > 0 and written == [donor[i] for i in t["samples"]["seed_id"]]
    assert t["attempts"]["invalid_first_atom_not_n_or_o"].sum() == 0
    with h5py.File(out, "r") as h5:
        assert bool(h5.attrs["keep_donor"]) is True


def test_predictions_and_kd_cross_mapping(run_dir, one_rank, tmp_path):
    out = tmp_path / "knn.h5"
    assert sample.main(sample_cli(run_dir, out, "--seed-ids", "2", "5", "6", "--sigmas", "0.2", "--batches", "2",
                                  "--batch-size", "50", "--knn-k", "1", "--keep", "unique", "--no-metrics")) == 0
    samples = store.read_samples(out)
    assert (samples["unique"] | samples["unique_in_sigma"]).all()
    assert {"proxy_donor_z", "proxy_donor_mulliken_charge"} <= set(samples.columns)
    assert samples["proxy_donor_z"].between(5, 10).all()          # N (7) and O (8) donors
    with h5py.File(out) as h5:
        knn = h5["samples/predicted_cf_kd_gaps"][()]
        distance = h5["samples/neighbour_distance_cf_kd_gaps"][()]
    ligands = store.read_ligands(run_dir.parent / "ligands.h5")
    row_of = {s: i for i, s in enumerate(ligands["smiles"])}
    run = load_run(run_dir)
    checked = 0
    for i, smiles in enumerate(samples["smiles"]):
        row = row_of.get(encoder_form(smiles, run.vocab))
        if row is not None and row % 2 == 0:      # a labelled training ligand: its own label comes back
            np.testing.assert_allclose(knn[i], row * np.arange(1.0, 8.0))
            assert distance[i] == pytest.approx(0.0, abs=1e-5)
            checked += 1
    assert knn.shape == (len(samples), 7) and np.isfinite(knn).all()
    assert checked > 0


def test_seed_rules_pick_ligands_by_label(run_dir, tmp_path):
    out = tmp_path / "top.h5"
    assert sample.main(sample_cli(run_dir, out, "--seed-top", "donor_mulliken_charge", "3", "--seed-order", "low",
                                  "--seed-bins", "donor_mulliken_charge", "2", "1", "--sigmas", "0.1",
                                  "--batches", "1", "--batch-size", "10", "--no-metrics")) == 0
    seeds = store.read_samples(out, "seeds")
    values, mask = store.read_labels(run_dir.parent / "ligands.h5")["donor_mulliken_charge"]
    lowest = np.argsort(np.where(mask, values, np.inf))[:3]
    assert list(seeds["ligand_row"][:3]) == list(lowest)
    assert list(seeds["source"]) == ["top:donor_mulliken_charge"] * 3 + ["bins:donor_mulliken_charge"] * 2
    predicted = tmp_path / "predicted.h5"
    assert sample.main(sample_cli(run_dir, predicted, "--seed-top", "donor_z", "2", "--seed-by", "prediction",
                                  "--sigmas", "0.1", "--batches", "1", "--batch-size", "10", "--no-metrics")) == 0
    ligands = store.read_ligands(run_dir.parent / "ligands.h5")
    rows = store.read_samples(predicted, "seeds")["ligand_row"]
    assert (ligands["donor_element"][rows] == "O").all()        # the largest predicted donor Z: oxygen donors


def test_seed_file_mixes_ligand_rows_and_smiles(run_dir, tmp_path, capsys):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("# best ligands so far\n4\n[O-]C  # methoxide\n\nOC\n4\n")
    out = tmp_path / "file.h5"
    assert sample.main(sample_cli(run_dir, out, "--seed-file", str(seeds), "--sigmas", "0.1", "--batches", "1",
                                  "--batch-size", "5", "--no-metrics")) == 0
    table = store.read_samples(out, "seeds")
    assert list(table["source"]) == ["file"] * len(table)
    assert table["ligand_row"].iloc[0] == 4 and set(table["smiles"][1:]) <= {"[O-]C", "OC"}
    assert table["canonical"].is_unique                       # row 4 twice, and duplicates by canonical, dropped
    seeds.write_text("4\nOC CC\n")
    assert sample.main(sample_cli(run_dir, out, "--seed-file", str(seeds))) == 2
    assert f"{seeds}:2: one ligand id or SMILES per line" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--seed-smiles", "C1CC"], "seed SMILES 'C1CC' is not a usable monodentate ligand (unparsable)"),
    (["--seed-smiles", "CO"], "first_atom_not_n_or_o"),
    (["--seed-smiles", "OCl"], "cannot be encoded by this model"),
    (["--sigmas", "0.1"], "the seed set is empty"),
    (["--seed-ids", "1", "--sigmas", "-0.1"], "sigma must be a finite number >= 0"),
    (["--seed-ids", "99999"], "ligand rows [99999] have no latent"),
    (["--seed-top", "no_such_label", "3"], "has no label 'no_such_label'"),
    (["--seed-ids", "1", "--decoding", "temperature", "--temperature", "0"], "temperature must be > 0"),
])
def test_bad_input_is_a_clear_error(run_dir, tmp_path, capsys, args, message):
    out = tmp_path / "bad.h5"
    assert sample.main(sample_cli(run_dir, out, "--batches", "1", "--batch-size", "5", *args)) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_missing_run_directory_is_a_clear_error(tmp_path, capsys):
    assert sample.main(sample_cli(tmp_path / "nowhere", tmp_path / "x.h5", "--seed-ids", "1")) == 2
    assert "not a directory" in capsys.readouterr().err


def test_srun_without_mpi_plugin_is_refused(run_dir, tmp_path, capsys, monkeypatch):
    # what `srun -n 2` without --mpi=pmi2 looks like to each task: Slurm says 2 tasks, MPI sees one rank
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    assert sample.main(sample_cli(run_dir, tmp_path / "x.h5", "--seed-ids", "1")) == 2
    assert "srun --mpi=pmi2" in capsys.readouterr().err


@pytest.mark.slow
def test_sbatch_script_on_two_ranks(run_dir, one_rank, tmp_path):
    from slurm_cluster import cluster_reason, ensure_cluster

    if not ensure_cluster():
        pytest.skip(f"LOUD SKIP: no Slurm cluster, slurm/sample.sbatch not checked: {cluster_reason()}")
    out = tmp_path / "sbatch.h5"
    done = subprocess.run(["sbatch", "--wait", "--ntasks=2", "--time=10", f"--chdir={ROOT}",
                           f"--output={tmp_path / 'job.out'}", str(ROOT / "slurm" / "sample.sbatch"), *COMMON],
                          env=dict(env(), PYTHON=PY, RUN=str(run_dir), OUT=str(out)), capture_output=True,
                          text=True, timeout=600)
    log = (tmp_path / "job.out").read_text() if (tmp_path / "job.out").exists() else ""
    assert done.returncode == 0, done.stderr + log[-3000:]
    assert "on 2 rank(s)" in log
    assert_same_result(one_rank, out)


def test_encoded_run_samples_around_another_file_and_novelty_remembers_the_training_set(run_dir, tmp_path):
    """gauss_hpc.encode puts a trained model to work on another ligands file (here: 40 of its training ligands):
    seeds and labels come from that file, and a generated ligand the model was trained on is never novel."""
    from gauss_hpc import encode

    full = store.read_ligands(run_dir.parent / "ligands.h5")
    subset = tmp_path / "subset.h5"
    store.write_ligands(subset, full.iloc[:40].reset_index(drop=True), test_mask=np.zeros(40, bool),
                        train_subsets={}, labels={})
    assert encode.main([str(run_dir), "--ligands", str(subset), "--out", str(tmp_path / "encoded")]) == 0
    latents = store.read_latents(tmp_path / "encoded" / "latents.h5")
    assert latents["mu"].shape == (40, 32) and list(latents["canonical"]) == full["canonical"][:40].tolist()
    out = tmp_path / "samples.h5"
    assert sample.main(sample_cli(tmp_path / "encoded", out, "--seed-random", "6", "--sigmas", "0.5",
                                  "--batches", "3", "--batch-size", "40", "--no-metrics")) == 0
    samples = store.read_samples(out)
    assert set(store.read_samples(out, "seeds")["ligand_row"]) <= set(range(40))
    trained_on = set(full["canonical"])
    assert not samples.loc[samples["canonical"].isin(trained_on), "novel"].any()
    assert samples.loc[~samples["canonical"].isin(trained_on), "novel"].all()


def test_shipped_model_samples_around_smiles_seeds_without_a_ligands_file(tmp_path, capsys):
    """The shipped model directory has no latents.h5: SMILES seeds need none, and novelty is judged against the
    ligands the model was trained on (its training_ligands.txt.gz)."""
    import gzip

    shipped = ROOT / "data" / "models" / "qm9_autoregressive"
    out = tmp_path / "samples.h5"
    assert sample.main(["--quiet", str(shipped), "--seed-smiles", "[O-]c1ccccc1", "n1ccccc1", "--sigmas",
                        "0.3", "--batches", "2", "--batch-size", "50", "--no-metrics", "--out", str(out)]) == 0
    seeds, samples = store.read_samples(out, "seeds"), store.read_samples(out)
    assert sorted(seeds["smiles"]) == ["[O-]c1ccccc1", "n1ccccc1"] and (seeds["ligand_row"] == -1).all()
    with gzip.open(shipped / "training_ligands.txt.gz", "rt") as fh:
        trained_on = {line.strip() for line in fh}
    assert len(samples) > 0 and samples["novel"].to_numpy().tolist() == \
        [c not in trained_on for c in samples["canonical"]]
    assert sample.main(["--quiet", str(shipped), "--seed-ids", "3", "--out", str(tmp_path / "x.h5")]) == 2
    assert "need its latents: encode the ligands file first" in capsys.readouterr().err


def test_encode_names_a_missing_model(tmp_path):
    from gauss_hpc import encode

    assert encode.main([str(tmp_path / "nothing"), "--ligands", str(BUNDLED), "--out", str(tmp_path / "x")]) == 2


def test_array_elements_merged_equal_one_run_and_a_missing_element_is_named(run_dir, one_rank, tmp_path, capsys):
    """Three array elements run here one after the other (--array-index), merged: the file one run writes."""
    out = tmp_path / "samples.h5"
    for element in range(3):
        assert sample.main(sample_cli(run_dir, out, *COMMON, "--array", "3", "--array-index", str(element))) == 0
    parts = sorted(tmp_path.glob("samples.part*of0003.h5"))
    assert [p.name for p in parts] == [f"samples.part{i:04d}of0003.h5" for i in range(3)]
    capsys.readouterr()
    assert sample.main(["merge", str(parts[0]), str(parts[2]), "--out", str(tmp_path / "x.h5")]) == 2
    assert "missing array element(s) 1 of 3" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
    assert sample.main(["merge", *map(str, parts), "--out", str(out)]) == 0
    assert_same_result(one_rank, out)
    assert set(store.read_samples(out)["rank"]) == {0, 1, 2}
    # parts of another plan are refused by name
    other = tmp_path / "other.h5"
    assert sample.main(sample_cli(run_dir, other, *COMMON, "--batch-size", "20", "--array", "3",
                                  "--array-index", "1")) == 0
    assert sample.main(["merge", str(parts[0]), str(tmp_path / "other.part0001of0003.h5"), str(parts[2]),
                        "--out", str(tmp_path / "y.h5")]) == 2
    assert "parts of different sampling runs" in capsys.readouterr().err


def test_slurm_sampling_array_merged_equals_mpiexec_two_ranks(run_dir, tmp_path):
    """A 4-element array on the local Slurm (slurm/sample_array.sbatch) + merge == mpiexec -n 2, same plan."""
    from slurm_cluster import cluster_reason, ensure_cluster

    if not ensure_cluster():
        pytest.skip(f"LOUD SKIP: no Slurm cluster, the sampling array not checked: {cluster_reason()}")
    if not MPIEXEC.exists():
        pytest.skip("LOUD SKIP: no mpiexec in the venv (pip install mpich)")
    mpi = tmp_path / "mpi.h5"
    done = subprocess.run([str(MPIEXEC), "-n", "2", PY, "-m", "gauss_hpc.sample", *sample_cli(run_dir, mpi, *COMMON)],
                          capture_output=True, text=True, timeout=300, env=env(), cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "array" / "samples.h5"
    out.parent.mkdir()
    done = subprocess.run(["sbatch", "--wait", "--array=0-3", f"--chdir={ROOT}", "--time=10",
                           f"--output={out.parent}/element-%a.out", str(ROOT / "slurm" / "sample_array.sbatch"), "4",
                           *COMMON], capture_output=True, text=True, timeout=600,
                          env=dict(env(), RUN=str(run_dir), OUT=str(out), PYTHON=PY))
    logs = "".join(p.read_text() for p in sorted(out.parent.glob("element-*.out")))
    assert done.returncode == 0, done.stderr[-2000:] + logs[-3000:]
    parts = sorted(out.parent.glob("samples.part*of0004.h5"))
    assert len(parts) == 4, logs[-3000:]
    merged = subprocess.run([PY, "-m", "gauss_hpc.sample", "merge", *map(str, parts), "--out", str(out)],
                            capture_output=True, text=True, timeout=300, env=env(), cwd=ROOT)
    assert merged.returncode == 0, merged.stderr[-3000:]
    assert "on 4 array element(s)" in merged.stdout
    assert_same_result(mpi, out)
    assert set(store.read_samples(out)["rank"]) == {0, 1, 2, 3}
