"""Design rounds: sample around good seeds → screen → oracle → results become labels → fine-tune → again.

    python -m gauss_hpc.loop rounds/ --rounds 2 [--config loop.toml]     ([loop] section; flags override it)

Round NN writes rounds/NN/, each stage reading the previous stage's files and writing its own:
  model_in/    the model that samples, put to work on the round's ligands (gauss_hpc.encode): the configured
               model in round 0, the previous round's fine-tuned model after that
  samples.h5   z' = z + σε around the seeds (top-k or bins of a label or of the model's prediction), on MPI
               ranks; every sample records the round
  screen/      campaign: assembly + crystal field of `screen` novel unique samples, taken from each seed in turn
  oracle/      campaign: the expensive oracle (a job spec, e.g. jobs/kd_casscf_molcas.toml) on the `oracle_top`
               screened ligands best by the target ([loop.target]: crystal-field KD1, largest first, by
               default); with oracle = "screen" the crystal field is
               the oracle (a fast loop) and there is no second campaign
  ligands.h5   the round's ligands plus the oracle's results as backend-named labels (gauss_hpc.merge)
  model/       fine-tuned from model_in on ligands.h5 with the KD head on `kd_label` (gauss_hpc.train)
  round.json   what the round changed: labels added, the KD head's R² on them before and after fine-tuning,
               generated ligands that beat the best seed on the target, and the paper's Fig. 10 numbers
Every stage is skipped when its output exists and every writer is atomic, so a driver that was killed (or a
Slurm job that ran out of time) continues where it stopped and ends with the files of an uninterrupted run.
Campaigns go to Slurm when it answers (`executor = "auto"`); the driver waits for them and resubmitting a
campaign leaves finished and running tasks alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from . import config, store
from .abinitio import values as value_schema
from .chem.templates import DEFAULT as DEFAULT_TEMPLATE, template as named_template
from .targets import Target
from .launch import bundled, mpi_launcher, run

log = logging.getLogger("gauss_hpc.loop")


def cf_screen(template: str) -> list[dict]:
    """The fast screen's steps: assembly into `template` (named only when not the paper's, so the default's task
    ids stay those of earlier rounds) and the crystal field."""
    assemble = {"name": "assemble"} if template == DEFAULT_TEMPLATE else {"name": "assemble",
                                                                         "params": {"template": template}}
    return [assemble, {"name": "crystal_field"}]


# --- campaigns ----------------------------------------------------------------------------------------------

def generated_for_screen(samples: Path, n: int) -> pd.DataFrame:
    """`n` novel unique generated ligands spread evenly over the seeds: from each seed in turn its next one in
    generation order (smallest σ first), so that every seed is screened. The index is the row of /samples."""
    with store.open_checked(samples, "samples") as h5:
        table = store.read_table(h5["samples"])
    table = table[table["novel"].astype(bool) & table["unique"].astype(bool)].sort_values(["sigma", "key"])
    table = table.assign(turn=table.groupby("seed_id").cumcount())
    return table.sort_values(["turn", "seed_id"]).head(n).drop(columns="turn")


def sample_rows_input(samples: Path, rows) -> dict:
    """A spec's [input]: these rows of a samples file (their identity and provenance travel with the tasks)."""
    return {"path": str(samples), "rows": [int(r) for r in rows], "select": []}


def campaign_spec(name: str, source: dict, steps: list[dict], executor: str, parallelism: int,
                  tasks_per_job: int) -> dict:
    return {"campaign": {"name": name, "executor": executor}, "input": source,
            "resources": {"local_parallelism": parallelism, "tasks_per_job": tasks_per_job}, "steps": steps}


# failure reasons that say the task was stopped from outside (the driver's session ended and took its local jobs,
# a node went away, a cancel), not that the chemistry failed: a rerun of the driver runs such tasks again
INTERRUPTED = ("killed", "lost", "cancelled")


def run_campaign(spec, campaign: Path, executor: str | None = None) -> Path:
    """Submit (idempotent: finished and active tasks are left alone) and resubmit the tasks an interruption
    stopped, wait, gather; the results file."""
    from . import jobs

    submitted = jobs.submit(spec, campaign, executor=executor)
    table = submitted.status()
    interrupted = (table["state"] == "failed") & table["reason"].isin(INTERRUPTED)
    if interrupted.any():
        log.info("%s: %d tasks were interrupted (%s): submitting them again", campaign, int(interrupted.sum()),
                 ", ".join(f"{k} {v}" for k, v in table.loc[interrupted, "reason"].value_counts().items()))
        submitted = jobs.resubmit(campaign, reasons=INTERRUPTED, executor=executor)
    submitted.wait()
    return jobs.gather(campaign)


def oracle_spec(path: str | Path, source: dict, template: str = DEFAULT_TEMPLATE) -> dict:
    """A user's job spec (TOML) with the round's ligands as its input, its assemble steps in the loop's template
    unless they name one."""
    path = bundled(path)
    if not path.is_file():
        raise FileNotFoundError(f"[loop] oracle = {str(path)!r}: no such job spec (or use oracle = \"screen\")")
    with open(path, "rb") as fh:
        spec = tomllib.load(fh)
    spec["input"] = source
    if template != DEFAULT_TEMPLATE:
        for step in spec.get("steps", []):
            if step.get("name") == "assemble":
                step.setdefault("params", {}).setdefault("template", template)
    return spec


# --- the round's stages -------------------------------------------------------------------------------------

def target_seed_rows(model: Path, ligands: Path, target: Target, kd_label: str, rule: str, n: int,
                     seed: int) -> list[int]:
    """Ligand rows to sample around, ranked by the target on the labels: the `n` best (rule "top") or one from
    each of `n` equal-width bins of the target (rule "bins"); only ligands the model has latents for."""
    from .sampling.seeds import binned_rows, top_rows

    latent_rows = store.read_latents(model / "latents.h5")["ligand_row"].astype(np.int64)
    values = target.label_values(store.read_labels(ligands), kd_label)[latent_rows]
    if rule == "top":
        picked = top_rows(values, n, target.order)
    else:
        picked = binned_rows(values, n, 1, np.random.default_rng(seed))
    if not len(picked):
        raise ValueError(f"{ligands}: no ligand has a value of the target {target.describe()!r} on {kd_label} "
                         "(and its g values for a g target); label some first (gauss_hpc.merge)")
    return [int(row) for row in latent_rows[picked]]


class Round:
    """The files of round `number` under `root`, and the inputs it reads from the round before."""

    def __init__(self, root: Path, number: int, cfg: dict, start: Path):
        self.root, self.number, self.cfg = root, number, cfg
        self.dir = root / f"{number:02d}"
        previous = root / f"{number - 1:02d}"
        self.ligands_in = start if number == 0 else previous / "ligands.h5"
        self.model_source = Path(cfg["model"]) if number == 0 else previous / "model"
        self.model_in = self.dir / "model_in"
        self.samples = self.dir / "samples.h5"
        self.screen = self.dir / "screen"
        self.oracle = self.dir / "oracle"
        self.ligands = self.dir / "ligands.h5"
        self.model = self.dir / "model"
        self.summary = self.dir / "round.json"

    def encode(self) -> None:
        from .encode import encode

        if not (self.model_in / "latents.h5").is_file():
            encode(self.model_source, self.ligands_in, self.model_in)

    def sample(self) -> None:
        cfg = self.cfg
        if self.samples.is_file():
            return
        settings = {"run": str(self.model_in), "ligands": str(self.ligands_in), "out": str(self.samples),
                    **self.seed_settings(),
                    "sigmas": list(cfg["sigmas"]), "batches": int(cfg["batches"]),
                    "batch_size": int(cfg["batch_size"]), "round": self.number,
                    "seed": int(cfg["seed"]) + self.number, "threads": 1, "keep_donor": bool(cfg["keep_donor"]),
                    "knn_labels": [cfg["kd_label"]]}
        run(mpi_launcher(int(cfg["ranks"])) + [sys.executable, "-m", "gauss_hpc.sample", "--config",
                                               str(self.stage_config("sample", settings)), "--quiet"])

    def seed_settings(self) -> dict:
        """The sample stage's seed keys. By the target on the labels (the default): the loop ranks the ligands by
        [loop.target] itself, so any target (a g value, a weighted sum) chooses seeds, and names them by row.
        Otherwise by one label column or the model's prediction of it (sample --seed-top / --seed-bins)."""
        cfg = self.cfg
        target = Target.from_config(cfg["target"])
        if cfg["seed_label"] == "target" and cfg["seed_by"] == "label":
            return {"seed_ids": target_seed_rows(self.model_in, self.ligands_in, target, cfg["kd_label"],
                                                 cfg["seed_rule"], int(cfg["seeds"]),
                                                 int(cfg["seed"]) + self.number)}
        label = target.seed_label(cfg["kd_label"]) if cfg["seed_label"] == "target" else cfg["seed_label"]
        if cfg["seed_rule"] == "top":
            return {"seed_top": [label, int(cfg["seeds"])], "seed_order": target.order, "seed_by": cfg["seed_by"]}
        return {"seed_bins": [label, int(cfg["seeds"]), 1], "seed_by": cfg["seed_by"]}

    def stage_config(self, stage: str, settings: dict) -> Path:
        """The round's settings of a stage as that stage's own TOML section (rounds/NN/<stage>.toml): the stage
        reads them as any user config, rejects a key it does not know, and the round keeps what it asked."""
        return config.write_section(self.dir / f"{stage}.toml", stage, settings,
                                    f"written by gauss_hpc.loop for round {self.number}")

    def screen_results(self) -> Path:
        chosen = generated_for_screen(self.samples, int(self.cfg["screen"]))
        if chosen.empty:
            raise ValueError(f"{self.samples}: no novel unique ligand to screen; delete it and sample more "
                             f"([loop] batches, sigmas) or from other seeds, then rerun")
        spec = campaign_spec(f"round{self.number:02d}-screen", sample_rows_input(self.samples, chosen.index),
                             cf_screen(self.cfg["template"]), self.cfg["executor"], int(self.cfg["workers"]),
                             int(self.cfg["tasks_per_job"]))
        return run_campaign(spec, self.screen, self.cfg["executor"])

    def oracle_results(self, screened: Path) -> Path:
        if self.cfg["oracle"] == "screen":
            return screened
        table = store.read_results(screened, ["status", "sample_row"])
        target = Target.from_config(self.cfg["target"])
        value = np.where(table["status"] == "ok", target.result_values(store.read_result_arrays(screened, ("kd_gaps", "g_tensors"))), np.nan)
        best = table.iloc[target.ranked(value)[: int(self.cfg["oracle_top"])]]
        spec = oracle_spec(self.cfg["oracle"], sample_rows_input(self.samples, best["sample_row"]),
                           self.cfg["template"])
        return run_campaign(spec, self.oracle, self.cfg["executor"])

    def merge(self, results: Path) -> None:
        if not self.ligands.is_file():
            merged_copy(self.ligands_in, results, self.ligands)

    def fine_tune(self) -> None:
        if (self.model / "latents.h5").is_file():
            return
        if (self.model / "checkpoint.pt").is_file():        # an interrupted fine-tuning: its stored config goes on
            arguments = ["--out", str(self.model), "--resume"]
        else:
            settings = {**self.cfg["train"], "ligands": str(self.ligands), "out": str(self.model),
                        "init_from": str(self.model_in), "kd_head": True, "kd_label": self.cfg["kd_label"],
                        "threads": 1, "seed": int(self.cfg["seed"]) + self.number}
            arguments = ["--config", str(self.stage_config("train", settings))]
        run(mpi_launcher(int(self.cfg["ranks"])) + [sys.executable, "-m", "gauss_hpc.train", *arguments, "--quiet"])


# --- what a round changed -----------------------------------------------------------------------------------

def kd_head_kd1(run_dir: Path, smiles: list[str], descriptors: np.ndarray) -> np.ndarray | None:
    """KD1 the run's KD head predicts for ligands (SMILES) in complexes with these structural descriptors, or
    None when the run has no KD head."""
    import torch

    from .model.checkpoint import load_run
    from .sampling.predict import latent_means

    loaded = load_run(run_dir)
    if loaded.kd_head is None or not len(smiles):
        return None
    scale = loaded.kd_standardization
    mu = torch.as_tensor(latent_means(loaded, smiles), dtype=torch.float32)
    desc = torch.as_tensor((descriptors - scale["kd_descriptor_mean"]) / scale["kd_descriptor_std"],
                           dtype=torch.float32)
    with torch.no_grad():
        gaps = loaded.model.predict_kd(mu, desc).numpy() * scale["kd_std"] + scale["kd_mean"]
    return gaps[:, 0]


def mean_abs_error(truth: np.ndarray, predicted: np.ndarray | None) -> float | None:
    if predicted is None or not len(truth):
        return None
    return round(float(np.nanmean(np.abs(truth - predicted))), 2)


def r_squared(truth: np.ndarray, predicted: np.ndarray | None) -> float | None:
    if predicted is None or len(truth) < 2:
        return None
    ok = np.isfinite(predicted)
    residual = np.sum((truth[ok] - predicted[ok]) ** 2)
    total = np.sum((truth[ok] - truth[ok].mean()) ** 2)
    return float(1 - residual / total) if total > 0 else None


def repopulation(samples: Path, screened: Path, labelled_kd1: np.ndarray) -> dict:
    """The paper's Fig. 10 for one round: per seed, unique novel ligands generated against those screened (mean
    and range over the seeds), and the crystal-field KD1 of the screened generated ligands against the
    labelled set the seeds came from."""
    generated = store.read_samples(samples, "samples", ["seed_id", "novel", "unique"])
    per_seed = generated[generated["novel"] & generated["unique"]].groupby("seed_id").size()
    results = store.read_results(screened, ["status", "seed_id"])
    results["kd1"] = store.read_result_arrays(screened, ("kd_gaps",))["kd_gaps"][:, 0]
    ok = results[(results["status"] == "ok") & results["kd1"].notna()]
    screened_per_seed = results.groupby("seed_id").size()
    seeds = store.read_samples(samples, "seeds", ["seed_id"])["seed_id"]
    unique = per_seed.reindex(seeds, fill_value=0)
    screened_n = screened_per_seed.reindex(seeds, fill_value=0)

    def spread(series) -> dict:
        return {"mean": round(float(series.mean()), 1), "min": int(series.min()), "max": int(series.max())}

    gen = ok["kd1"].to_numpy()
    return {"seeds": int(len(seeds)), "unique_novel_per_seed": spread(unique), "screened_per_seed": spread(screened_n),
            "screened_ok": int(len(ok)), "screened": int(len(results)),
            "kd1_generated_mean": round(float(gen.mean()), 1) if len(gen) else None,
            "kd1_labelled_mean": round(float(labelled_kd1.mean()), 1) if len(labelled_kd1) else None,
            "kd1_generated_quartiles": np.round(np.percentile(gen, [25, 50, 75]), 1).tolist() if len(gen) else [],
            "kd1_labelled_quartiles": np.round(np.percentile(labelled_kd1, [25, 50, 75]), 1).tolist()
            if len(labelled_kd1) else [],
            "kd1_shift_of_means": round(float(gen.mean() - labelled_kd1.mean()), 1) if len(gen) and len(labelled_kd1)
            else None}


def last_merge(ligands: Path) -> dict:
    """The summary of the last merge into a ligands file (its /merges table)."""
    with store.open_checked(ligands, "ligands") as h5:
        merges = store.read_table(h5["merges"]) if "merges" in h5 else pd.DataFrame()
    return json.loads(merges["summary"].iloc[-1]) if len(merges) else {}


def round_summary(rnd: Round, screened: Path) -> dict:
    """What the round changed, from its files."""
    label = rnd.cfg["kd_label"]
    gaps_in, mask_in = store.read_labels(rnd.ligands_in).get(label, (np.zeros((0, 7)), np.zeros(0, bool)))
    labels = store.read_labels(rnd.ligands)
    gaps, mask = labels[label]
    descriptors, _ = labels[value_schema.kd_descriptor_label(label)]
    new = np.flatnonzero(mask & ~np.pad(mask_in, (0, len(mask) - len(mask_in))))
    smiles = store.read_ligands(rnd.ligands)["smiles"].to_numpy()[new].tolist()
    truth = gaps[new, 0]
    seeds = store.read_samples(rnd.samples, "seeds", ["ligand_row"])["ligand_row"].to_numpy()
    target = Target.from_config(rnd.cfg["target"])
    seed_values = target.label_values(store.read_labels(rnd.ligands_in), label)[seeds[seeds >= 0]] \
        if len(gaps_in) else np.zeros(0)
    best_seed = target.best(seed_values)
    before = kd_head_kd1(rnd.model_in, smiles, descriptors[new])
    after = kd_head_kd1(rnd.model, smiles, descriptors[new])
    history = store.read_history(rnd.model / "history.h5")
    return {
        "round": rnd.number, "kd_label": label, "labels_added": int(len(new)), "merge": last_merge(rnd.ligands),
        "kd1_r2_before": r_squared(truth, before),
        "kd1_r2_before_note": None if before is not None else f"{rnd.model_in} has no KD head",
        "kd1_r2_after": r_squared(truth, after),
        "kd1_r2_after_note": "on the new labels, which the fine-tuning trained on; R² is small or negative when "
                             "they spread little (then read the MAE)",
        "kd1_mae_before_cm1": mean_abs_error(truth, before), "kd1_mae_after_cm1": mean_abs_error(truth, after),
        "kd1_new_labels_std_cm1": round(float(truth.std()), 2) if len(truth) else None,
        "held_out_r2_kd_gaps_after": float(history["r2_kd_gaps_mean"].iloc[-1])
        if "r2_kd_gaps_mean" in history else None,
        "target": target.describe(), "best_seed_target": best_seed,
        "generated_beating_best_seed": int(target.beats(target.label_values(labels, label)[new], best_seed).sum())
        if best_seed is not None else None,
        "fig10": repopulation(rnd.samples, screened, gaps_in[mask_in, 0] if len(gaps_in) else np.zeros(0)),
    }


def merged_copy(source: Path, results: Path, out: Path) -> dict:
    """`out` = `source` + the labels of `results`; renamed into place when complete, so existence means done."""
    from .merge import merge

    work = out.with_name(f".{out.name}.merging")
    shutil.copyfile(source, work)
    summary = merge([results], work)
    work.replace(out)
    return summary


class StageFailed(RuntimeError):
    """A stage ran but left nothing the next one can use; the message says what to do."""


def labelled_start(root: Path, cfg: dict) -> Path:
    """Round 0's ligands: the configured file when it holds values of the target on `kd_label` (for a g target,
    the ground g values too); else a copy (root/labelled.h5) in which `initial_labels` random ligands got them from
    the oracle (the paper's ~1k labelled set)."""
    ligands = Path(cfg["ligands"])
    labels = store.read_labels(ligands)
    if cfg["kd_label"] in labels and np.isfinite(Target.from_config(cfg["target"]).label_values(
            labels, cfg["kd_label"])).any():
        return ligands
    out = root / "labelled.h5"
    if out.is_file():
        return out
    n = len(store.read_ligands(ligands))
    rows = np.sort(np.random.default_rng(int(cfg["seed"])).choice(n, min(int(cfg["initial_labels"]), n),
                                                                   replace=False))
    log.info("%s has no %s values of the target: labelling %d random ligands with the oracle first", ligands,
             cfg["kd_label"], len(rows))
    source = {"path": str(ligands), "kind": "ligands", "rows": rows.tolist()}
    spec = (campaign_spec("initial-labels", source, cf_screen(cfg["template"]), cfg["executor"], int(cfg["workers"]),
                          int(cfg["tasks_per_job"])) if cfg["oracle"] == "screen"
            else oracle_spec(cfg["oracle"], source, cfg["template"]))
    campaign = root / "initial_labels"
    results = run_campaign(spec, campaign, cfg["executor"])
    status = store.read_results(results, ["status"])["status"]
    if not (status == "ok").any():
        failures = ", ".join(f"{reason} {count}" for reason, count in status.value_counts().items())
        raise StageFailed(f"none of the {len(status)} initial ligands got a {cfg['kd_label']} label ({failures}): "
                          f"see `python -m gauss_hpc.jobs status {campaign} --tasks` and the job logs in "
                          f"{campaign / 'logs'}; fix the cause, `python -m gauss_hpc.jobs resubmit {campaign} "
                          f"--failed --wait`, then rerun this command")
    log.info("%s", json.dumps(merged_copy(ligands, results, out)))
    return out


def run_round(root: Path, number: int, cfg: dict, start: Path) -> dict:
    rnd = Round(root, number, cfg, start)
    if rnd.summary.is_file():
        return json.loads(rnd.summary.read_text())
    rnd.dir.mkdir(parents=True, exist_ok=True)
    stages = [("encode", rnd.encode), ("sample", rnd.sample)]
    for name, stage in stages:
        log.info("round %02d: %s", number, name)
        stage()
    log.info("round %02d: screen", number)
    screened = rnd.screen_results()
    log.info("round %02d: oracle (%s)", number, cfg["oracle"])
    results = rnd.oracle_results(screened)
    log.info("round %02d: merge %s into %s", number, results, rnd.ligands)
    rnd.merge(results)
    log.info("round %02d: fine-tune", number)
    rnd.fine_tune()
    summary = round_summary(rnd, screened)
    store.atomic_write_text(rnd.summary, json.dumps(summary, indent=1, default=str))
    return summary


def check(cfg: dict) -> None:
    target = Target.from_config(cfg["target"])
    if cfg["seed_label"] == "target" and cfg["seed_by"] == "prediction":
        target.seed_label(cfg["kd_label"])          # a KD head predicts KD gaps: one gap, or a seed_label of its own
    if cfg["seed_rule"] not in ("top", "bins"):
        raise ValueError(f"[loop] seed_rule = {cfg['seed_rule']!r}: use \"top\" or \"bins\"")
    if cfg["seed_by"] not in ("label", "prediction"):
        raise ValueError(f"[loop] seed_by = {cfg['seed_by']!r}: use \"label\" or \"prediction\"")
    value_schema.kd_descriptor_label(cfg["kd_label"])
    named_template(cfg["template"])
    if cfg["oracle"] != "screen":
        oracle_spec(cfg["oracle"], {})
    for key in ("seeds", "batches", "batch_size", "screen", "oracle_top", "ranks", "workers", "initial_labels"):
        if int(cfg[key]) < 1:
            raise ValueError(f"[loop] {key} = {cfg[key]}: must be at least 1")
    for path in (cfg["ligands"], Path(cfg["model"]) / "best.pt"):
        if not Path(path).is_file():
            raise FileNotFoundError(f"[loop] {path}: no such file")
    unknown = sorted(set(cfg["train"]) - set(config.defaults()["train"]))
    if unknown:
        raise ValueError(f"[loop.train] unknown keys {unknown}: they are [train] settings of the fine-tuning")


def template_kd_label(kd_label: str, template: str) -> str:
    """The KD label of the loop's template: labels of another template than the paper's carry its name
    (abinitio/values.py label_name), so cf_kd_gaps becomes cf_<template>_kd_gaps."""
    suffix = f"_{value_schema.KD_GAPS}"
    if template == DEFAULT_TEMPLATE or f"_{template}{suffix}" in kd_label or not kd_label.endswith(suffix):
        return kd_label
    return f"{kd_label[: -len(suffix)]}_{template}{suffix}"


def loop(root: str | Path, cfg: dict, rounds: int) -> list[dict]:
    cfg = {**cfg, "model": str(bundled(cfg["model"])), "ligands": str(bundled(cfg["ligands"])),
           "kd_label": template_kd_label(cfg["kd_label"], cfg["template"])}
    check(cfg)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    store.atomic_write_text(root / "loop.toml", config.dumps(cfg, "loop"))
    start = labelled_start(root, cfg)
    summaries = []
    for number in range(rounds):
        began = time.perf_counter()
        summaries.append(run_round(root, number, cfg, start))
        log.info("round %02d done in %.0f s: %s", number, time.perf_counter() - began,
                 json.dumps({k: summaries[-1][k] for k in ("labels_added", "kd1_r2_after",
                                                           "generated_beating_best_seed")}))
    return summaries


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m gauss_hpc.loop", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("root", help="directory of the rounds (rounds/00, rounds/01, ...)")
    ap.add_argument("--rounds", type=int, help="rounds to run (finished rounds are kept and skipped)")
    ap.add_argument("--config", help="TOML file with a [loop] section (and [loop.train] for the fine-tuning)")
    ap.add_argument("--ligands", help="the ligands file of round 0")
    ap.add_argument("--model", help="the run directory round 0 samples from")
    ap.add_argument("--oracle", help='"screen" (the crystal field) or a job spec TOML')
    ap.add_argument("--executor", help="auto, slurm, local")
    ap.add_argument("--ranks", type=int, help="MPI ranks for sampling and fine-tuning")
    ap.add_argument("--template", help="complex template of the screen and oracle (gauss_hpc/complex_templates.toml)")
    return ap


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    try:
        cfg = config.load("loop", args.config, {k: getattr(args, k) for k in
                                                ("rounds", "ligands", "model", "oracle", "executor", "ranks",
                                                 "template")})
        summaries = loop(args.root, cfg, int(cfg["rounds"]))
    except (FileNotFoundError, ValueError, store.SchemaError) as exc:
        print(f"gauss_hpc.loop: {exc}", file=sys.stderr)
        return 2
    except StageFailed as exc:
        print(f"gauss_hpc.loop: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"gauss_hpc.loop: a stage failed ({' '.join(map(str, exc.cmd[:6]))} ... exit {exc.returncode}); "
              f"fix it and rerun the same command: finished stages are kept", file=sys.stderr)
        return 1
    print(json.dumps(summaries, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
