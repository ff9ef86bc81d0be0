"""`python -m gauss_hpc.analyze`: figures and a report (report/index.html) from the HDF5 files of the stages.

The report shows the molecules first (generated ligands beside their seeds with their KD1, the seeds, the computed
complexes and a 3-D view of them), then interactive maps (plotly, its JavaScript embedded so that the file opens
offline), then the PNG figures for papers. It ranks by the design target of the round (KD1, highest first, unless
`--target`/`--direction` or a loop's `--config` say otherwise) and reads the seeds' crystal-field labels of the
complex template the results were computed on (`--template` when they mix several). Each figure is made from whatever files are given; a figure whose inputs
are missing is listed in the report with the reason instead of failing the whole report.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen before pyplot is imported)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import store  # noqa: E402
from .report import kd  # noqa: E402
from .report.kd import novelty_key  # noqa: E402
from .abinitio.result import MULTIREFERENCE  # noqa: E402
from .targets import Target  # noqa: E402

log = logging.getLogger("gauss_hpc.analyze")

KD_GAPS_LABEL = kd.KD_GAPS_LABEL
# The two gaps the report follows, in the paper's terms: dE0i = E(KD i) - E(KD 0) (abinitio/values.py)
GAP_NAMES = {"kd1": "KD1 gap", "kd7": "KD7 gap ΔE07 (total splitting)"}


@dataclass
class Figure:
    title: str
    file: str | None = None          # PNG name inside the report directory
    caption: str = ""
    missing: str = ""                # why the figure could not be made
    html: str = ""                   # inline content: molecule cards, an interactive map
    plotly: bool = False             # the content needs plotly.js


@dataclass
class Report:
    out: Path
    focus: kd.Focus = field(default_factory=kd.Focus)     # what ligands and complexes are ranked by
    figures: list[Figure] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def save(self, fig, name: str, title: str, caption: str = "") -> None:
        if not fig.get_constrained_layout():
            fig.tight_layout()
        fig.savefig(self.out / name, dpi=110)
        plt.close(fig)
        self.figures.append(Figure(title, name, caption))

    def add(self, title: str, content: str, caption: str = "", plotly: bool = False) -> None:
        self.figures.append(Figure(title, caption=caption, html=content, plotly=plotly))

    def skip(self, title: str, why: str) -> None:
        log.info("figure %r skipped: %s", title, why)
        self.figures.append(Figure(title, missing=why))


# --- inputs ------------------------------------------------------------------------------------------------------

def run_config(run_dir: Path) -> dict:
    path = run_dir / "config.toml"
    if not path.is_file():
        return {}
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    return data.get("train", data)


def r_squared(target: np.ndarray, predicted: np.ndarray) -> float:
    target, predicted = np.asarray(target, float), np.asarray(predicted, float)
    ss_tot = np.sum((target - target.mean()) ** 2)
    return float(1 - np.sum((target - predicted) ** 2) / ss_tot) if ss_tot > 0 else float("nan")


def per_ligand_labels(ligands_file: Path) -> dict[str, np.ndarray]:
    """Scalar labels (NaN where missing) plus KD1 and KD7 gaps when the file holds cf_kd_gaps (n, 7)."""
    out = {}
    for name, (values, mask) in store.read_labels(ligands_file).items():
        values = np.where(mask.reshape(mask.shape + (1,) * (values.ndim - 1)), values, np.nan)
        if values.ndim == 1:
            out[name] = values
        elif name == KD_GAPS_LABEL and values.shape[1] >= 7:
            out["kd1_gap"] = values[:, 0]
            out["kd7_gap"] = values[:, 6]
    return out


# --- figures: training ---------------------------------------------------------------------------------------------

def _metric_groups(history: pd.DataFrame) -> dict[str, list[str]]:
    columns = [c for c in history.columns if c != "epoch" and np.issubdtype(history[c].dtype, np.number)
               and np.isfinite(history[c]).any()]
    groups = {
        "loss terms (training)": [c for c in columns if c.startswith("train_") and history[c].any()],
        "loss terms (held out)": [c for c in columns if c.startswith("val_") and "accuracy" not in c
                                  and history[c].any()],
        "reconstruction accuracy (held out)": [c for c in columns if "accuracy" in c],
        "R² per label (held out)": [c for c in columns if c.startswith("r2")],
        "learning rate": [c for c in columns if c in ("lr", "learning_rate")],
    }
    return {k: v for k, v in groups.items() if v}


def learning_curves(report: Report, run_dir: Path) -> None:
    title = "Learning curves"
    path = run_dir / "history.h5"
    if not path.is_file():
        return report.skip(title, f"no {path}")
    history = store.read_history(path)
    groups = _metric_groups(history)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False)
    x = history["epoch"] if "epoch" in history else np.arange(len(history))
    for ax, (name, columns) in zip(axes[0], groups.items()):
        for column in columns:
            ax.plot(x, history[column], marker=".", label=column)
        ax.set_xlabel("epoch")
        ax.set_title(name, fontsize=10)
        if name == "learning rate" or name.startswith("loss terms"):
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    report.save(fig, "learning_curves.png", title, f"{len(history)} epochs of {run_dir}")
    report.numbers["training run: epochs"] = len(history)


def model_numbers(report: Report, run_dirs: list[Path], samples: Path | None) -> None:
    """Held-out reconstruction of the model that sampled (the generated ligands came from it; samples.h5 names
    it), then of the training run given with --run when that is another model: a short run shown for its
    curves must not stand for the model that wrote the ligands."""
    models = []
    if samples is not None and samples.is_file():
        with store.open_checked(samples, "samples") as h5:
            sampler = str(h5.attrs.get("run_dir", ""))
        if sampler:
            report.numbers["sampling model"] = sampler
            models.append(("sampling model", Path(sampler)))
    if run_dirs and not any(_same_dir(run_dirs[0], m) for _, m in models):
        models.append(("training run", run_dirs[0]))
    for name, run_dir in models:
        history = store.read_history(run_dir / "history.h5") if (run_dir / "history.h5").is_file() else None
        if history is None or history.empty or "val_loss" not in history:
            continue
        best = history.loc[history["val_loss"].idxmin()]
        report.numbers[f"{name}: held-out whole strings / characters (epoch {int(best['epoch'])})"] = \
            f"{best['val_string_accuracy']:.3f} / {best['val_char_accuracy']:.3f}"


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def training_size(run_dir: Path) -> int:
    """Training ligands of a run: its train_size, or (0 = all) the largest training subset of its ligands file."""
    size = int(run_config(run_dir).get("train_size", 0))
    if size:
        return size
    _, subsets = store.read_splits(store.read_latents(run_dir / "latents.h5")["ligands_file"])
    return max(subsets)


def learning_vs_size(report: Report, run_dirs: list[Path]) -> None:
    title = "Learning curve vs training-set size"
    if len(run_dirs) < 2:
        return report.skip(title, "needs several runs (--run A --run B ...) trained on different sizes")
    rows = []
    for run_dir in run_dirs:
        history = store.read_history(run_dir / "history.h5")
        size = training_size(run_dir)
        best = {c: history[c].max() for c in history.columns if "accuracy" in c or c.startswith("r2")}
        rows.append({"train_size": size, **best})
    table = pd.DataFrame(rows).sort_values("train_size")
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for column in table.columns.drop("train_size"):
        ax.plot(table["train_size"], table[column], marker="o", label=column)
    ax.set_xscale("log")
    ax.set_xlabel("training ligands")
    ax.set_ylabel("best held-out value")
    ax.legend(fontsize=7)
    report.save(fig, "learning_vs_size.png", title)


@dataclass
class LatentData:
    mu: np.ndarray
    rows: np.ndarray                 # ligand_row of each latent
    labels: dict[str, np.ndarray]    # per ligand of the ligands file, NaN = not labelled
    smiles: np.ndarray               # per ligand of the ligands file
    projected: np.ndarray            # 2-D PCA of mu
    explained: float                 # variance the two components explain


def latent_data(run_dir: Path) -> LatentData | str:
    """The latents of a run with the labels of its ligands, or why there is nothing to map."""
    path = run_dir / "latents.h5"
    if not path.is_file():
        return f"no {path}"
    from sklearn.decomposition import PCA

    latents = store.read_latents(path)
    ligands_file = Path(latents["ligands_file"])
    if not ligands_file.is_file():
        return f"no ligands file {ligands_file} (named by {path})"
    ligands = store.read_ligands(ligands_file)
    labels = {"donor_z": ligands["donor_z"].to_numpy(float), **per_ligand_labels(ligands_file)}
    labels = {name: values for name, values in labels.items() if np.isfinite(values).sum() >= 10}  # maps need data
    pca = PCA(n_components=2).fit(latents["mu"])
    return LatentData(latents["mu"], latents["ligand_row"], labels, ligands["smiles"].to_numpy(),
                      pca.transform(latents["mu"]), float(pca.explained_variance_ratio_.sum()))


def latent_maps(report: Report, run_dir: Path) -> None:
    title = "Latent space coloured by proxy labels and KD gaps"
    data = latent_data(run_dir)
    if isinstance(data, str):
        return report.skip(title, data)
    labels, mu, rows, projected = data.labels, data.mu, data.rows, data.projected
    names = list(labels)
    fig, axes = plt.subplots(2, len(names), figsize=(3.3 * len(names), 6.2), squeeze=False)
    for col, name in enumerate(names):
        values = labels[name][rows]
        known = np.isfinite(values)
        for row, (xy, xlabel, ylabel) in enumerate([(mu[:, :2], "z0", "z1"), (projected, "PC1", "PC2")]):
            ax = axes[row, col]
            ax.scatter(xy[~known, 0], xy[~known, 1], s=2, c="0.85", rasterized=True)
            points = ax.scatter(xy[known, 0], xy[known, 1], s=3, c=values[known], cmap="viridis",
                                rasterized=True)
            fig.colorbar(points, ax=ax, fraction=0.046)
            ax.set_title(f"{name} ({known.sum()} known)", fontsize=9)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
    report.save(fig, "latent_maps.png", title,
                f"top: latent dimensions 0 and 1; bottom: 2-D PCA (explained variance "
                f"{data.explained:.0%}); grey = unlabelled")


def latent_map_interactive(report: Report, run_dir: Path) -> None:
    title = "Latent map, interactive: point at a ligand"
    data = latent_data(run_dir)
    if isinstance(data, str):
        return report.skip(title, data)
    labels = {name: values[data.rows] for name, values in data.labels.items()}
    # the KD gaps first: the map a chemist opens it for
    labels = dict(sorted(labels.items(), key=lambda item: not item[0].startswith("kd")))
    from .report import interactive

    report.add(title, interactive.latent_map(data.projected, labels, data.smiles[data.rows], data.rows,
                                             f"2-D PCA of the latent means ({data.explained:.0%} of the variance)"),
               f"{len(data.rows)} ligands of {run_dir}; the menu picks the colour; grey = not labelled", plotly=True)


def parity_data(run_dir: Path) -> dict[str, pd.DataFrame] | str:
    """Per proxy label of a run, its held-out ligands (target, predicted, smiles, row); or why there are none."""
    try:
        import torch

        from .model.checkpoint import load_run
    except ImportError as exc:
        return f"cannot load the model ({exc})"
    latents_path = run_dir / "latents.h5"
    if not latents_path.is_file() or not (run_dir / "best.pt").is_file():
        return f"{run_dir} has no best.pt/latents.h5"
    run = load_run(run_dir)
    if not run.label_names:
        return "the run was trained without proxy labels"
    latents = store.read_latents(latents_path)
    ligands_file = Path(latents["ligands_file"])
    test, _ = store.read_splits(ligands_file)
    labels = per_ligand_labels(ligands_file)
    ligands = store.read_ligands(ligands_file)
    labels["donor_z"] = ligands["donor_z"].to_numpy(float)
    rows = latents["ligand_row"][test[latents["ligand_row"]]]
    with torch.no_grad():
        predicted = run.model.predict_proxy(torch.as_tensor(latents["mu"][test[latents["ligand_row"]]])).numpy()
    predicted = predicted * np.asarray(run.label_std) + np.asarray(run.label_mean)
    panels = {}
    for name in (n for n in run.label_names if n in labels):
        table = pd.DataFrame({"target": labels[name][rows], "predicted": predicted[:, run.label_names.index(name)],
                              "smiles": ligands["smiles"].to_numpy()[rows], "row": rows})
        panels[name] = table[np.isfinite(table["target"])]
    return panels


def parity(report: Report, run_dir: Path) -> None:
    title = "Parity of the property heads on the held-out split"
    panels = parity_data(run_dir)
    if isinstance(panels, str):
        return report.skip(title, panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.4), squeeze=False)
    for ax, (name, table) in zip(axes[0], panels.items()):
        target, pred = table["target"].to_numpy(), table["predicted"].to_numpy()
        known = np.isfinite(target)
        r2 = r_squared(target[known], pred[known])
        report.numbers[f"R² {name} (held out)"] = round(r2, 3)
        ax.scatter(target[known], pred[known], s=4, alpha=0.5)
        lo, hi = np.nanmin(target[known]), np.nanmax(target[known])
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_title(f"{name}: R² = {r2:.3f} (n = {known.sum()})", fontsize=9)
        ax.set_xlabel("target")
        ax.set_ylabel("predicted")
    report.save(fig, "parity.png", title)


def parity_interactive(report: Report, run_dir: Path) -> None:
    title = "Parity, interactive: point at a held-out ligand"
    panels = parity_data(run_dir)
    if isinstance(panels, str):
        return report.skip(title, panels)
    from .report import interactive

    report.add(title, interactive.parity(panels), plotly=True)


# --- figures: sampling -----------------------------------------------------------------------------------------------

def sigma_sweep(report: Report, samples: Path) -> None:
    title = "σ sweep: valid / novel / unique per batch and accumulated (paper Fig. 2c)"
    stats = store.read_samples(samples, "sigma_stats")
    if stats.empty:
        return report.skip(title, f"{samples} has no sampling statistics")
    per_sigma = stats.groupby("sigma")[["attempts", "valid", "novel", "unique", "novel_unique"]].sum()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for column in ("valid", "novel", "unique", "novel_unique"):
        axes[0].plot(per_sigma.index, 100 * per_sigma[column] / per_sigma["attempts"], marker="o",
                     label=column.replace("_", "+"))
    axes[0].set_xlabel("σ")
    axes[0].set_ylabel("% of attempts")
    axes[0].legend(fontsize=8)
    axes[0].set_title("all batches", fontsize=10)
    # one colour per σ along a colour map: the default cycle repeats after 10 lines (the paper sweeps 11 σ)
    colour = plt.get_cmap("viridis")
    top = max(float(stats["sigma"].max()), 1e-9)
    for sigma, group in stats.groupby("sigma"):
        style = {"marker": ".", "label": f"σ = {sigma:g}", "color": colour(0.9 * sigma / top)}
        axes[1].plot(group["batch"], 100 * group["valid_fraction"], **style)
        axes[2].plot(group["batch"], group["cum_novel_unique"], **style)
    axes[1].set_xlabel("batch")
    axes[1].set_ylabel("valid % in the batch")
    axes[2].set_xlabel("batch")
    axes[2].set_ylabel("accumulated novel + unique ligands")
    axes[2].legend(fontsize=7)
    report.save(fig, "sigma_sweep.png", title)
    fractions = per_sigma["novel_unique"] / per_sigma["attempts"]
    if fractions.max() > 0:         # no novel ligand at any σ has no peak
        report.numbers["σ of peak novel+unique"] = float(fractions.idxmax())
    report.numbers["sampling attempts"] = int(per_sigma["attempts"].sum())
    report.numbers["valid fraction (all σ)"] = round(float(per_sigma["valid"].sum() / per_sigma["attempts"].sum()), 3)
    flags = store.read_samples(samples, "samples", ["novel", "unique"])
    report.numbers["novel unique ligands"] = int((flags["novel"].astype(bool) & flags["unique"].astype(bool)).sum())


def sigma_sweep_interactive(report: Report, samples: Path, results: pd.DataFrame) -> None:
    title = "σ sweep, interactive: point at a generated ligand"
    stats = store.read_samples(samples, "sigma_stats")
    if stats.empty:
        return report.skip(title, f"{samples} has no sampling statistics")
    from .report import interactive

    focus = report.focus
    report.add(title, interactive.sigma_sweep(stats, kd.ranked(samples, results, focus), focus.name),
               f"right: each novel unique ligand at its σ and its most trusted {focus.name} (CASSCF > crystal field > "
               "predicted from the nearest labelled latents)", plotly=True)


def metrics_table(report: Report, samples: Path) -> None:
    metrics = store.read_samples(samples, "metrics")
    columns = [c for c in ("sigma", "attempts", "validity", "unique_at_1k", "unique_at_10k", "novelty", "intdiv1",
                           "snn") if c in metrics]
    report.tables["Generation metrics per σ (MOSES/GuacaMol style; σ = NaN: all samples)"] = \
        metrics[columns].round(3)


# --- figures: campaigns ------------------------------------------------------------------------------------------

def _results(paths: list[Path], target: Target) -> pd.DataFrame:
    """Every row of the results files, with `target` (the design target from the KD gaps), KD1 and KD7 (the
    paper's fidelity figures), the ground doublet's g values and main axis, and where each row came from."""
    frames = []
    for path in paths:
        table = store.read_results(path)
        arrays = store.read_result_arrays(path, ("kd_gaps", "g_tensors", "g_axes"))
        if "kd_gaps" in arrays:
            table["kd1_gap"] = arrays["kd_gaps"][:, 0]
            table["kd7_gap"] = arrays["kd_gaps"][:, 6]
            table["target"] = target.values(arrays["kd_gaps"])
        if "g_tensors" in arrays:       # principal g values of the ground Kramers doublet
            for k in range(3):
                table[f"ground_g{k + 1}"] = arrays["g_tensors"][:, 0, k]
        if "g_axes" in arrays:          # the ground doublet's main magnetic axis (Zm, the gZ direction)
            for k, axis in enumerate("xyz"):
                table[f"ground_axis_{axis}"] = arrays["g_axes"][:, 0, 2, k]
        table["kd_method"] = kd.kd_methods(table)          # declared by the backend; legacy files by step
        table["campaign"] = path.parent.name
        table["results_file"], table["results_row"] = str(path), np.arange(len(table))
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def campaign_status(report: Report, results: pd.DataFrame) -> None:
    title = "Campaign status (done / failed by reason)"
    counts = results.groupby(["campaign", "status"]).size().unstack(fill_value=0)
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.5 * len(counts)))
    counts.plot.barh(stacked=True, ax=ax)
    ax.set_xlabel("tasks")
    report.save(fig, "campaign_status.png", title)
    for campaign, row in counts.iterrows():
        report.numbers[f"{campaign}: tasks ok / all"] = f"{int(row.get('ok', 0))} / {int(row.sum())}"


def seed_kd_gaps(samples: Path, ligands_file: Path, kd_label: str = KD_GAPS_LABEL) -> pd.DataFrame:
    """Per unique generated ligand (canonical SMILES): its seed's crystal-field KD gaps (`kd_label`) from the
    ligands file."""
    seeds = store.read_samples(samples, "seeds")
    generated = store.read_samples(samples, "samples", ["canonical", "seed_id", "seed_smiles", "sigma", "unique"])
    generated = generated[generated["unique"].astype(bool)]
    labels = store.read_labels(ligands_file)
    if kd_label not in labels:
        return pd.DataFrame()
    values, mask = labels[kd_label]
    rows = seeds.set_index("seed_id")["ligand_row"]
    seed_row = generated["seed_id"].map(rows).to_numpy()
    known = (seed_row >= 0) & mask[np.clip(seed_row, 0, None)]
    out = generated[known].copy()
    out["seed_kd1_gap"] = values[seed_row[known], 0]
    out["seed_kd7_gap"] = values[seed_row[known], 6]
    return out.set_index("canonical")


def fidelity_score(seed: np.ndarray, generated: np.ndarray) -> float:
    """How well the seed's KD gap predicts the generated ligand's: 1 - Σ(gen - seed)² / Σ(gen - mean gen)²."""
    return r_squared(generated, seed)


def fidelity_interval(joined: pd.DataFrame, gap: str = "kd1", rounds: int = 1000, seed: int = 0) -> tuple:
    """5th and 95th percentile of the fidelity score over `rounds` bootstrap resamplings of the seeds (each drawn
    seed brings all its generated ligands): how much the score depends on which seeds were picked."""
    groups = [(g[f"seed_{gap}_gap"].to_numpy(), g[f"{gap}_gap"].to_numpy()) for _, g in joined.groupby("seed_id")]
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(rounds):
        drawn = [groups[i] for i in rng.integers(len(groups), size=len(groups))]
        scores.append(fidelity_score(np.concatenate([d[0] for d in drawn]), np.concatenate([d[1] for d in drawn])))
    return tuple(round(float(q), 3) for q in np.nanpercentile(scores, [5, 95]))


def fidelity_join(results: pd.DataFrame, samples: Path, ligands_file: Path,
                  kd_label: str = KD_GAPS_LABEL) -> pd.DataFrame:
    """Finished generated complexes with their seed's labelled KD gaps, σ and seed SMILES."""
    seeds = seed_kd_gaps(samples, ligands_file, kd_label)
    ok = results[(results["status"] == "ok") & results["kd1_gap"].notna()]
    ok = ok.drop(columns=[c for c in seeds.columns if c in ok.columns])   # the samples file is authoritative
    return ok.assign(key=[novelty_key(c, s) for c, s in zip(ok["canonical"], ok["smiles"])]).join(
        seeds, on="key", how="inner")


def seed_fidelity(report: Report, results: pd.DataFrame, samples: Path, ligands_file: Path) -> None:
    title = "Seed → sample fidelity of the KD gaps (paper Fig. 5, 8)"
    joined = fidelity_join(results, samples, ligands_file, report.focus.kd_label)
    if len(joined) < 3:
        return report.skip(title, f"only {len(joined)} generated complexes with a KD-labelled seed")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for ax, gap in zip(axes, ("kd1", "kd7")):
        seed, gen = joined[f"seed_{gap}_gap"].to_numpy(), joined[f"{gap}_gap"].to_numpy()
        score = fidelity_score(seed, gen)
        report.numbers[f"seed→sample fidelity R² ({GAP_NAMES[gap]})"] = round(score, 3)
        report.numbers[f"seed→sample fidelity R² ({GAP_NAMES[gap]}), 90 % interval over seeds"] = list(
            fidelity_interval(joined, gap))
        points = ax.scatter(seed, gen, c=joined["sigma"], s=12, cmap="plasma")
        lo, hi = min(seed.min(), gen.min()), max(seed.max(), gen.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"seed {GAP_NAMES[gap]} (cm⁻¹)")
        ax.set_ylabel(f"generated {GAP_NAMES[gap]} (cm⁻¹)")
        ax.set_title(f"{GAP_NAMES[gap]}: R²-like score {score:.2f} (n = {len(joined)})", fontsize=10)
    fig.colorbar(points, ax=axes, label="σ")
    report.save(fig, "seed_fidelity.png", title, "score = 1 − Σ(gen − seed)² / Σ(gen − mean gen)²; "
                "colour: σ of the perturbation; KDs from the crystal-field oracle unless the campaign says otherwise")
    report.numbers["seeds with screened generated ligands"] = int(joined["seed_id"].nunique())
    for sigma, group in joined.groupby("sigma"):
        if len(group) >= 3:
            report.numbers[f"seed→sample fidelity R² (KD1 gap) at σ = {sigma:g}"] = round(
                fidelity_score(group["seed_kd1_gap"].to_numpy(), group["kd1_gap"].to_numpy()), 3)
    shift = float(np.mean(joined["kd1_gap"] - joined["seed_kd1_gap"]))
    report.numbers["KD1 shift generated − seed (cm⁻¹, mean)"] = round(shift, 1)


def seed_fidelity_interactive(report: Report, results: pd.DataFrame, samples: Path, ligands_file: Path) -> None:
    title = "Seed → sample fidelity, interactive: point at a generated ligand"
    joined = fidelity_join(results, samples, ligands_file, report.focus.kd_label)
    if joined.empty:
        return report.skip(title, "no generated complex with a computed KD1 and a KD-labelled seed")
    from .report import interactive

    report.add(title, interactive.fidelity(joined), "seed KD1: label of the ligands file; generated KD1: the "
               "campaign's kd_step (crystal field or CASSCF)", plotly=True)


def target_distribution(report: Report, results: pd.DataFrame, ligands_file: Path) -> None:
    focus = report.focus
    title = f"{focus.name} of generated ligands vs the labelled set (paper Fig. 10b)"
    labels = store.read_labels(ligands_file)
    ok = results[(results["status"] == "ok") & results["target"].notna()] if "target" in results else results.iloc[:0]
    if focus.kd_label not in labels or ok.empty:
        return report.skip(title, f"needs {focus.kd_label} labels in the ligands file and finished KD results")
    values, mask = labels[focus.kd_label]
    labelled = focus.target.values(values[mask])
    labelled = labelled[np.isfinite(labelled)]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    bins = np.histogram_bin_edges(np.concatenate([labelled, ok["target"]]), bins=30)
    ax.hist(labelled, bins=bins, alpha=0.6, density=True, label=f"labelled set (n = {len(labelled)})")
    for campaign, group in ok.groupby("campaign"):
        ax.hist(group["target"], bins=bins, alpha=0.6, density=True,
                label=f"generated, {campaign} (n = {len(group)})")
    ax.set_xlabel(f"{focus.name} (cm⁻¹)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    report.save(fig, "target_distribution.png", title)
    report.numbers[f"{focus.name} labelled set, median (cm⁻¹)"] = round(float(np.median(labelled)), 1)
    report.numbers[f"{focus.name} generated, median (cm⁻¹)"] = round(float(ok["target"].median()), 1)


def screen_vs_casscf(report: Report, results: pd.DataFrame) -> None:
    """The target by the screen (crystal field) against CASSCF for every ligand the results have both for: parity
    and rank, with Spearman's rho and the MAE (how far this run's screen can be trusted to pick what CASSCF gets)."""
    from scipy.stats import spearmanr

    name = report.focus.name
    title = f"Screen against CASSCF: {name} of every ligand computed both ways"
    wide = kd.computed(results, report.focus)
    both = wide.dropna(subset=["value_crystal_field", "value_casscf"]) if {"value_crystal_field", "value_casscf"} <= \
        set(wide.columns) else wide.iloc[:0]
    if len(both) < 3:
        return report.skip(title, f"only {len(both)} ligands have both a crystal-field and a CASSCF {name} (run a "
                                  "CASSCF campaign on screened ligands and pass both results files)")
    screen, casscf = both["value_crystal_field"].to_numpy(), both["value_casscf"].to_numpy()
    rho = float(spearmanr(screen, casscf)[0])
    fig, (parity_ax, rank_ax) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    parity_ax.scatter(casscf, screen, s=14)
    top = max(screen.max(), casscf.max()) * 1.05
    parity_ax.plot([0, top], [0, top], "k--", lw=0.8)
    parity_ax.set_xlabel(f"CASSCF {name} (cm⁻¹)")
    parity_ax.set_ylabel(f"screen {name} (cm⁻¹)")
    parity_ax.set_title(f"parity: MAE {np.mean(np.abs(screen - casscf)):.0f} cm⁻¹", fontsize=10)
    rank_ax.scatter(pd.Series(casscf).rank(), pd.Series(screen).rank(), s=14)
    rank_ax.set_xlabel("CASSCF rank")
    rank_ax.set_ylabel("screen rank")
    rank_ax.set_title(f"rank: Spearman ρ {rho:.2f} (n = {len(both)})", fontsize=10)
    report.save(fig, "screen_vs_casscf.png", title, "one point per ligand with both numbers in the results files "
                "given; CASSCF includes ORCA and imported outputs")
    report.numbers["screen vs CASSCF: ligands with both"] = int(len(both))
    report.numbers[f"screen vs CASSCF: Spearman rho ({name})"] = round(rho, 3)
    report.numbers[f"screen vs CASSCF: MAE {name} (cm⁻¹)"] = round(float(np.mean(np.abs(screen - casscf))), 1)


# --- molecules --------------------------------------------------------------------------------------------------

TOP_LIGANDS = 24          # generated ligands drawn beside their seeds
MAX_COMPLEXES = 120       # complex cards (a paper-scale campaign has thousands of tasks: the best and failed first)
VIEWS_3D = 2              # 3-D views (each carries its geometry; plotly.js is shared)


def generated_molecules(report: Report, samples: Path, results: pd.DataFrame, ligands_file: Path | None) -> None:
    focus = report.focus
    title = f"Generated ligands beside their seeds, {focus.best_first}"
    table = kd.ranked(samples, results, focus)
    if table.empty:
        return report.skip(title, f"{samples} holds no novel unique ligand")
    from .report import molecules

    shown = table.head(TOP_LIGANDS)
    said = ", ".join(f"{(shown['method'] == m).sum()} {kd.METHODS[m]}" for m in kd.METHODS
                     if (shown["method"] == m).any()) or f"no {focus.name} known: ordered by times generated"
    report.add(title, molecules.generated_cards(table, kd.seeds(samples, ligands_file, focus), TOP_LIGANDS,
                                                focus.name),
               f"{len(shown)} of {len(table)} novel unique ligands, the CASSCF-computed first, then crystal-field, "
               f"then predicted, each {focus.best_first} ({said}); the method is written on each drawing; the "
               f"donor atom (bound to the metal) is highlighted; the seed is drawn on the left with its labelled "
               f"{focus.name} ({focus.kd_label})")


def seed_molecules(report: Report, samples: Path, ligands_file: Path | None) -> None:
    title = "Seeds of the sampling run"
    seeds = kd.seeds(samples, ligands_file, report.focus)
    if seeds.empty:
        return report.skip(title, f"{samples} has no seeds")
    from .report import molecules

    counts = kd.generated(samples, report.focus)["seed_id"].value_counts()
    report.add(title, molecules.seed_cards(seeds, counts, report.focus.name),
               f"{report.focus.name}: from the crystal-field label {report.focus.kd_label} of the ligands file")


def _complex_order(results: pd.DataFrame, focus: kd.Focus) -> pd.DataFrame:
    """Multireference results first (CASSCF or NEVPT2 from OpenMolcas, ORCA or imported outputs: the method their
    backend declared), then finished before failed, each best first in the target's direction."""
    multireference = results["kd_method"].isin(MULTIREFERENCE) if "kd_method" in results else \
        pd.Series(False, index=results.index)
    value = results["target"] if "target" in results else pd.Series(np.nan, results.index)
    return results.assign(_casscf=~multireference, _failed=results["status"] != "ok",
                          _value=focus.sort_key(value)) \
        .sort_values(["_casscf", "_failed", "_value"], kind="stable").drop(columns=["_casscf", "_failed", "_value"])


def complex_molecules(report: Report, results: pd.DataFrame) -> None:
    from .report import molecules

    focus = report.focus
    shown = _complex_order(results, focus).head(MAX_COMPLEXES)
    report.add("Computed complexes", molecules.complex_cards(shown, focus.name),
               f"{len(shown)} of {len(results)} tasks ({', '.join(results['campaign'].unique())}): the axial ligand "
               f"of each complex, CASSCF first, then {focus.best_first}; red: failed or unfinished")


def complex_views(report: Report, results: pd.DataFrame) -> None:
    title = "3-D view of computed complexes"
    focus = report.focus
    finished = _complex_order(results[results["status"] == "ok"], focus)
    if finished.empty:
        return report.skip(title, "no finished complex")
    from .report import interactive

    views = []
    for _, row in finished.iterrows():
        symbols, coords = store.read_geometry(row["results_file"], int(row["results_row"]))
        if symbols:
            method = kd.METHODS.get(row.get("kd_method", ""), row["kd_step"])
            value = f", {focus.name} {row['target']:.0f} cm⁻¹ ({method})" if pd.notna(row.get("target")) else ""
            axis = np.array([row.get(f"ground_axis_{a}", np.nan) for a in "xyz"], float)
            views.append(interactive.complex_3d(
                symbols, coords, f"{row['name']}: {row['smiles']}{value}",
                main_axis=axis if np.isfinite(axis).all() else None, main_g=row.get("ground_g3", np.nan)))
        if len(views) == VIEWS_3D:
            break
    if not views:
        return report.skip(title, "the finished tasks carry no geometry")
    report.add(title, "".join(views), f"final geometries, the CASSCF-computed first, then {focus.best_first}; "
               "drag to rotate. "
               "Orange: the ground Kramers doublet's main magnetic axis (the gZ direction) through Dy, from "
               "SINGLE_ANISO (CASSCF) or the crystal-field g-tensor, whichever gave the KDs", plotly=True)


# --- report ---------------------------------------------------------------------------------------------------------

def write_html(report: Report) -> Path:
    from .report.molecules import CSS

    plotly = any(figure.plotly for figure in report.figures)
    if plotly:
        from .report import interactive
    parts = ["<!doctype html><meta charset='utf-8'><title>gauss_hpc report</title>",
             "<style>body{font-family:sans-serif;max-width:1300px;margin:auto}img{max-width:100%}"
             f"td,th{{padding:2px 10px;text-align:left}}{CSS}</style>",
             interactive.script() if plotly else "",
             "<h1>gauss_hpc report</h1>", "<h2>Key numbers</h2><table>"]
    parts += [f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
              for k, v in report.numbers.items()]
    parts.append("</table>")
    for title, table in report.tables.items():
        parts += [f"<h2>{html.escape(title)}</h2>", table.to_html(index=False, na_rep="")]
    for figure in report.figures:
        parts.append(f"<h2>{html.escape(figure.title)}</h2>")
        if figure.file or figure.html:
            if figure.caption:
                parts.append(f"<p>{html.escape(figure.caption)}</p>")
            parts.append(f"<div class='figure'>{figure.html}</div>" if figure.html else
                         f"<img src='{html.escape(figure.file)}' alt='{html.escape(figure.title)}'>")
        else:
            parts.append(f"<p><em>Not made: {html.escape(figure.missing)}</em></p>")
    if plotly:
        parts.append(interactive.HOVER_PANEL)
    path = report.out / "index.html"
    store.atomic_write_text(path, "\n".join(parts))
    store.atomic_write_text(report.out / "numbers.json", json.dumps(report.numbers, indent=1, default=str))
    return path


def results_template(paths: list[Path]) -> str:
    """The complex template every row of these results files was computed on (results.h5 `template`, older files
    without it: the default); ValueError when they mix templates, whose labels the report cannot compare."""
    found = set()
    for path in paths:
        table = store.read_results(path)
        found |= set(table["template"].replace("", kd.DEFAULT_TEMPLATE)) if "template" in table else \
            {kd.DEFAULT_TEMPLATE}
    if len(found) > 1:
        raise ValueError(f"the results files mix complex templates {sorted(found)}: give --template to say which "
                         "one the report follows, or report each template on its own")
    return found.pop() if found else kd.DEFAULT_TEMPLATE


def analyze(out: str | Path, runs: list[str | Path] = (), samples: str | Path | None = None,
            results: list[str | Path] = (), ligands: str | Path | None = None, *, target: Target | None = None,
            template: str | None = None) -> Report:
    """Write report/index.html and numbers.json from whatever stage files are given, ranking by `target` (KD1,
    highest first, by default) of complexes on `template` (default: the one the results were computed on)."""
    result_paths = [Path(p) for p in results]
    focus = kd.Focus(template or results_template(result_paths), target or Target())
    report = Report(Path(out), focus)
    report.out.mkdir(parents=True, exist_ok=True)
    run_dirs = [Path(r) for r in runs]
    if ligands is None and run_dirs and (run_dirs[0] / "latents.h5").is_file():
        ligands = store.read_latents(run_dirs[0] / "latents.h5")["ligands_file"]
    table = _results(result_paths, focus.target)
    ligands_path = Path(ligands) if ligands is not None else None
    model_numbers(report, run_dirs, Path(samples) if samples is not None else None)   # first in Key numbers
    report.numbers["ranked by"] = f"{focus.target.describe()} ({focus.name}) on template {focus.template}"
    figures = []
    if samples is not None:     # the molecules first: what a chemist opens the report for
        figures += [("Generated ligands", generated_molecules, (Path(samples), table, ligands_path)),
                    ("Seeds", seed_molecules, (Path(samples), ligands_path))]
    else:
        report.skip("Generated ligands", "no samples file given (--samples)")
    if not table.empty:
        figures += [("Computed complexes", complex_molecules, (table,)), ("3-D view", complex_views, (table,))]
    if run_dirs:
        figures.append(("Latent map, interactive", latent_map_interactive, (run_dirs[0],)))
    if samples is not None:
        figures.append(("σ sweep, interactive", sigma_sweep_interactive, (Path(samples), table)))
    if run_dirs:
        figures.append(("Parity, interactive", parity_interactive, (run_dirs[0],)))
    if not table.empty and samples is not None and ligands is not None:
        figures.append(("Seed → sample fidelity, interactive", seed_fidelity_interactive,
                        (table, Path(samples), ligands_path)))
    if run_dirs:
        figures += [("Learning curves", learning_curves, (run_dirs[0],)),
                    ("Learning curve vs training-set size", learning_vs_size, (run_dirs,)),
                    ("Latent maps", latent_maps, (run_dirs[0],)), ("Parity", parity, (run_dirs[0],))]
    else:
        report.skip("Training figures", "no run directory given (--run)")
    if samples is not None:
        figures += [("σ sweep", sigma_sweep, (Path(samples),)), ("Generation metrics", metrics_table, (Path(samples),))]
    else:
        report.skip("σ sweep", "no samples file given (--samples)")
    if not table.empty:
        figures.append(("Campaign status", campaign_status, (table,)))
        figures.append(("Screen against CASSCF", screen_vs_casscf, (table,)))
        if samples is not None and ligands is not None:
            figures.append(("Seed → sample fidelity", seed_fidelity, (table, Path(samples), Path(ligands))))
        if ligands is not None:
            figures.append(("Target distribution", target_distribution, (table, Path(ligands))))
    else:
        report.skip("Campaigns", "no results file given (--results)")
    for title, make, args in figures:
        try:
            make(report, *args)
        except Exception as exc:  # one unreadable input costs its figure, not the report
            log.exception("figure %r failed", title)
            plt.close("all")
            report.skip(title, f"failed: {type(exc).__name__}: {exc}")
    write_html(report)
    return report


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m gauss_hpc.analyze", description=__doc__)
    ap.add_argument("--run", action="append", default=[], help="training run directory (repeat for a "
                    "learning curve over training-set sizes; the first is used for the other figures)")
    ap.add_argument("--samples", help="samples.h5 from gauss_hpc.sample")
    ap.add_argument("--results", action="append", default=[], help="results.h5 of a campaign (gauss_hpc.jobs "
                    "gather); repeat for several campaigns")
    ap.add_argument("--ligands", help="ligands file with the labels (default: the one the run's latents name)")
    ap.add_argument("--out", default="report", help="report directory (default: report)")
    ap.add_argument("--config", help="TOML of a design loop: its [loop] template and [loop.target] are followed")
    ap.add_argument("--template", help="complex template whose crystal-field labels the seeds carry (default: the "
                    "one the results were computed on)")
    ap.add_argument("--target", help="what to rank by: kd1, total_splitting or gap:N (default: kd1; weighted "
                    "targets come from --config)")
    ap.add_argument("--direction", choices=["max", "min"], help="best is the highest (max, default) or lowest")
    return ap


def focus_options(args) -> tuple[Target | None, str | None]:
    """(target, template) from --config's [loop] section, then --target/--direction/--template over it."""
    template, target_cfg = None, {}
    if args.config:
        with open(args.config, "rb") as fh:
            loop_cfg = tomllib.load(fh).get("loop", {})
        template = loop_cfg.get("template")
        target_cfg = dict(loop_cfg.get("target", {}))
    if args.target:
        target_cfg = {"quantity": args.target, "direction": target_cfg.get("direction", "max")}
    if args.direction:
        target_cfg["direction"] = args.direction
    return (Target.from_config(target_cfg) if target_cfg else None), (args.template or template)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    from .chem.templates import template as named_template

    try:
        target, template = focus_options(args)
        template = template or results_template([Path(p) for p in args.results])
        named_template(template)          # an unknown name fails here, with the known ones
    except (ValueError, OSError, tomllib.TOMLDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = analyze(args.out, args.run, args.samples, args.results, args.ligands, target=target,
                     template=template)
    print(f"report: {report.out / 'index.html'}")
    for key, value in report.numbers.items():
        print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
