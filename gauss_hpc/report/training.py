"""Report figures of a training run: learning curves (also over training-set sizes), latent maps, parity plots,
and the held-out reconstruction of the model that sampled (first among the key numbers)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from . import kd
from .page import Report, plt


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
        elif name == kd.KD_GAPS_LABEL and values.shape[1] >= 7:
            out["kd1_gap"] = values[:, 0]
            out["kd7_gap"] = values[:, 6]
    return out


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
    from . import interactive

    report.add(title, interactive.latent_map(data.projected, labels, data.smiles[data.rows], data.rows,
                                             f"2-D PCA of the latent means ({data.explained:.0%} of the variance)"),
               f"{len(data.rows)} ligands of {run_dir}; the menu picks the colour; grey = not labelled", plotly=True)


def parity_data(run_dir: Path) -> dict[str, pd.DataFrame] | str:
    """Per proxy label of a run, its held-out ligands (target, predicted, smiles, row); or why there are none."""
    try:
        import torch

        from ..model.checkpoint import load_run
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
    from . import interactive

    report.add(title, interactive.parity(panels), plotly=True)
