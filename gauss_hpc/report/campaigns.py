"""Report figures of computed complexes: the campaigns' status, seed -> sample fidelity of the KD gaps (the paper's
Fig. 5, 8), the target's distribution against the labelled set (Fig. 10b), and the screen against CASSCF; and the
results table they all read (`results_table`, with the design target and the method of each row's KDs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from . import kd
from .page import Report, plt
from ..targets import Target
from .kd import KD_GAPS_LABEL, novelty_key
from .training import r_squared

# The two gaps the report follows, in the paper's terms: dE0i = E(KD i) - E(KD 0) (abinitio/values.py)
GAP_NAMES = {"kd1": "KD1 gap", "kd7": "KD7 gap ΔE07 (total splitting)"}


def results_table(paths: list[Path], target: Target) -> pd.DataFrame:
    """Every row of the results files, with `target` (the design target from the KD gaps), KD1 and KD7 (the
    paper's fidelity figures), the ground doublet's g values and main axis, and where each row came from."""
    frames = []
    for path in paths:
        table = store.read_results(path)
        arrays = store.read_result_arrays(path, ("kd_gaps", "g_tensors", "g_axes"))
        if "kd_gaps" in arrays:
            table["kd1_gap"] = arrays["kd_gaps"][:, 0]
            table["kd7_gap"] = arrays["kd_gaps"][:, 6]
            table["target"] = target.result_values(arrays)
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
    from . import interactive

    report.add(title, interactive.fidelity(joined), "seed KD1: label of the ligands file; generated KD1: the "
               "campaign's kd_step (crystal field or CASSCF)", plotly=True)


def target_distribution(report: Report, results: pd.DataFrame, ligands_file: Path) -> None:
    focus = report.focus
    title = f"{focus.name} of generated ligands vs the labelled set (paper Fig. 10b)"
    labels = store.read_labels(ligands_file)
    ok = results[(results["status"] == "ok") & results["target"].notna()] if "target" in results else results.iloc[:0]
    if focus.kd_label not in labels or ok.empty:
        return report.skip(title, f"needs {focus.kd_label} labels in the ligands file and finished KD results")
    labelled = focus.target.label_values(labels, focus.kd_label)
    labelled = labelled[np.isfinite(labelled)]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    bins = np.histogram_bin_edges(np.concatenate([labelled, ok["target"]]), bins=30)
    ax.hist(labelled, bins=bins, alpha=0.6, density=True, label=f"labelled set (n = {len(labelled)})")
    for campaign, group in ok.groupby("campaign"):
        ax.hist(group["target"], bins=bins, alpha=0.6, density=True,
                label=f"generated, {campaign} (n = {len(group)})")
    ax.set_xlabel(focus.labelled(focus.name))
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    report.save(fig, "target_distribution.png", title)
    report.numbers[focus.labelled(f"{focus.name} labelled set, median")] = focus.rounded(np.median(labelled))
    report.numbers[focus.labelled(f"{focus.name} generated, median")] = focus.rounded(ok["target"].median())


def screen_vs_casscf(report: Report, results: pd.DataFrame) -> None:
    """The target by the screen (crystal field) against CASSCF for every ligand the results have both for: parity
    and rank, with Spearman's rho and the MAE (how far this run's screen can be trusted to pick what CASSCF gets)."""
    from scipy.stats import spearmanr

    focus = report.focus
    name = focus.name
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
    mae = float(np.mean(np.abs(screen - casscf)))
    parity_ax.set_xlabel(focus.labelled(f"CASSCF {name}"))
    parity_ax.set_ylabel(focus.labelled(f"screen {name}"))
    parity_ax.set_title(f"parity: MAE {focus.format(mae)}", fontsize=10)
    rank_ax.scatter(pd.Series(casscf).rank(), pd.Series(screen).rank(), s=14)
    rank_ax.set_xlabel("CASSCF rank")
    rank_ax.set_ylabel("screen rank")
    rank_ax.set_title(f"rank: Spearman ρ {rho:.2f} (n = {len(both)})", fontsize=10)
    report.save(fig, "screen_vs_casscf.png", title, "one point per ligand with both numbers in the results files "
                "given; CASSCF includes ORCA and imported outputs")
    report.numbers["screen vs CASSCF: ligands with both"] = int(len(both))
    report.numbers[f"screen vs CASSCF: Spearman rho ({name})"] = round(rho, 3)
    report.numbers[focus.labelled(f"screen vs CASSCF: MAE {name}")] = focus.rounded(mae)


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
