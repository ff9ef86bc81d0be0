"""Report figures of a sampling run: the σ sweep (the paper's Fig. 2c), interactive, and the generation metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import store
from . import kd
from .page import Report, plt


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
    from . import interactive

    focus = report.focus
    report.add(title, interactive.sigma_sweep(stats, kd.ranked(samples, results, focus), focus.name,
                                                 focus.unit),
               f"right: each novel unique ligand at its σ and its most trusted {focus.name} (CASSCF > crystal field > "
               "predicted from the nearest labelled latents)", plotly=True)


def metrics_table(report: Report, samples: Path) -> None:
    metrics = store.read_samples(samples, "metrics")
    columns = [c for c in ("sigma", "attempts", "validity", "unique_at_1k", "unique_at_10k", "novelty", "intdiv1",
                           "snn") if c in metrics]
    report.tables["Generation metrics per σ (MOSES/GuacaMol style; σ = NaN: all samples)"] = \
        metrics[columns].round(3)
