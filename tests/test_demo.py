"""The README's main command, shrunk: every stage of the method runs for real (2 MPI ranks, local job arrays)
on a sixth of the bundled ligands, and the report shows the figures with numbers from this run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.mpi       # the demo trains and samples on 2 MPI ranks

REPO = Path(__file__).resolve().parents[1]

TINY = """
[demo]
xtb_labels = 60
loprop_labels = 0
kd_labels = 60
train_minutes = 0.5
train_max_epochs = 4
train_size = 300
kd1_bins = 2
seeds_per_bin = 2
sigmas = [0.0, 0.3]
batches = 2
batch_size = 50
screen_top = 8
round_seeds = 2
round_sigmas = [0.5]
round_screen = 6
casscf = 0
"""


def ligand_subset(path: Path, every: int = 6) -> Path:
    """Every `every`-th bundled ligand with its labels: the shipped model encodes, and the round fine-tunes it on,
    the whole ligands file, which took 167 s and most of 246 s of the tiny plan on the full 9,492."""
    import numpy as np

    from gauss_hpc import store

    bundled = REPO / "data" / "ligands.h5"
    rows = np.arange(0, len(store.read_ligands(bundled)), every)
    labels = {name: (values[rows], mask[rows], {}) for name, (values, mask) in store.read_labels(bundled).items()}
    test = np.zeros(len(rows), bool)
    test[::10] = True
    store.write_ligands(path, store.read_ligands(bundled).iloc[rows].reset_index(drop=True), labels=labels,
                        test_mask=test, train_subsets={})
    return path


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    config = out / "tiny.toml"
    config.write_text(TINY + f'ligands = "{ligand_subset(out / "ligands.h5")}"\n')
    proc = subprocess.run([sys.executable, "-m", "gauss_hpc.demo", "--config", str(config), "--out",
                           str(out / "run")], cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "run", proc.stdout


def test_demo_runs_every_stage_and_writes_the_report(demo_dir):
    out, stdout = demo_dir
    for path in ("ligands.h5", "run/best.pt", "run/latents.h5", "samples.h5", "campaigns/kd_labels/results.h5",
                 "campaigns/screen/results.h5", "report/index.html"):
        assert (out / path).is_file(), path
    page = (out / "report" / "index.html").read_text()
    for figure in ("learning_curves.png", "latent_maps.png", "parity.png", "sigma_sweep.png",
                   "campaign_status.png", "target_distribution.png"):
        assert figure in page and (out / "report" / figure).is_file(), figure
    numbers = json.loads((out / "report" / "numbers.json").read_text())
    assert numbers["sampling attempts"] == 2 * 2 * 2 * 2 * 50      # 2 seeds from each of 2 KD1 bins
    assert "report:" in stdout and "step timings" in stdout
    closed_loop = json.loads((out / "rounds" / "00" / "round.json").read_text())     # one design round
    assert closed_loop["labels_added"] > 0 and closed_loop["fig10"]["seeds"] == 2
    assert "round: labels added" in stdout


def test_demo_rerun_skips_finished_steps(demo_dir):
    out, _ = demo_dir
    config = out.parent / "tiny.toml"
    proc = subprocess.run([sys.executable, "-m", "gauss_hpc.demo", "--config", str(config), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done before, skipped") >= 5
