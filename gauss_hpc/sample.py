"""Local-perturbation sampling around seed ligands, sharded over MPI ranks with global deduplication.

    srun -n 4 --mpi=pmi2 python -m gauss_hpc.sample runs/train --seed-top donor_mulliken_charge 10 \\
        --sigmas 0.1 0.2 0.3 0.4 0.5 --batches 50 --batch-size 100 --out runs/samples.h5
    mpiexec -n 2 python -m gauss_hpc.sample runs/train --seed-ids 12 57 --out samples.h5
    python -m gauss_hpc.sample runs/train --seed-smiles '[O-]c1ccccc1' --sigmas 0.3 --batches 5
    RUN=runs/train OUT=s.h5 sbatch --array=0-63 slurm/sample_array.sbatch 64 --seed-ids 12 57   # 64 elements
    python -m gauss_hpc.sample merge s.part*of0064.h5 --out s.h5      # = one MPI run of the same plan

For every seed, σ and batch: z' = z + σε, decode (greedy or temperature), check with RDKit that the string is a
monodentate ligand with its donor first, key it by its kekulized canonical SMILES, then decide globally which
occurrence came first (unique) and whether it is absent from the training set (novel). Every rank samples its
own units with its own random streams; the set of results does not depend on the number of ranks.
Output: samples.h5 (see gauss_hpc.store) and a summary table on rank 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gauss_hpc import config
from gauss_hpc import dist, store
from gauss_hpc.cli import add_quiet, deprecated
from gauss_hpc.dist import InputError
from gauss_hpc.sampling import dedup, metrics
from gauss_hpc.sampling.engine import DECODING_MODES, PRECISIONS, LatentDecoder, RankSamples, donor_prefix, sample_groups
from gauss_hpc.sampling.plan import Plan
from gauss_hpc.sampling.predict import KnnLabels, sample_properties
from gauss_hpc.sampling.seeds import Latents, SeedSpec, resolve_seeds
from gauss_hpc.sampling.validate import REASONS, Validator

log = logging.getLogger("gauss_hpc.sample")

KEEP_MODES = ("valid", "unique")


# --- options ------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gauss_hpc.sample", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?", help="run directory of gauss_hpc.train (default: [sample] run)")
    p.add_argument("--out", help="samples file to write (HDF5)")
    p.add_argument("--config", help="TOML file with a [sample] section")
    p.add_argument("--ligands", help="ligands file (default: the one the run's latents.h5 names)")
    seeds = p.add_argument_group("seeds (combine freely; duplicates by canonical SMILES are dropped)")
    seeds.add_argument("--seed-ids", nargs="+", type=int, help="rows of the ligands file's /ligands table")
    seeds.add_argument("--seed-smiles", nargs="+", help="donor-first SMILES, encoded by the model")
    seeds.add_argument("--seed-file", help="file with one ligand row or SMILES per line (# comments)")
    seeds.add_argument("--seed-top", nargs=2, metavar=("LABEL", "K"), help="the K best ligands by LABEL")
    seeds.add_argument("--seed-bins", nargs=3, metavar=("LABEL", "N_BINS", "PER_BIN"),
                       help="PER_BIN random ligands from each of N_BINS equal-width bins of LABEL")
    seeds.add_argument("--seed-random", type=int, metavar="N", help="N random ligands")
    seeds.add_argument("--seed-by", choices=("label", "prediction"),
                       help="rules use the file's label values or the model's predictions")
    seeds.add_argument("--seed-order", choices=("high", "low"), help="top-k: highest or lowest first")
    s = p.add_argument_group("sampling")
    s.add_argument("--sigmas", nargs="+", type=float, help="noise scales, e.g. 0 0.1 0.2 ... 1.0")
    s.add_argument("--batches", type=int, help="batches per seed and sigma")
    s.add_argument("--batch-size", type=int, help="attempts per batch")
    s.add_argument("--decoding", choices=DECODING_MODES)
    s.add_argument("--temperature", type=float)
    s.add_argument("--precision", choices=PRECISIONS,
                   help="the decoder's matrix products (auto: bfloat16 where the CPU has it natively)")
    s.add_argument("--keep-donor", action="store_true", default=None,
                   help="every sample starts with its seed's donor atom (autoregressive decoder)")
    s.add_argument("--seed", type=int, help="base of every random stream (the seed ligands are --seed-*)")
    deprecated(s, "--rng-seed", "--seed", "seed", type=int)
    s.add_argument("--units-per-group", type=int, help="batches decoded in one forward pass")
    s.add_argument("--keep", choices=KEEP_MODES,
                   help="rows of /samples: every valid sample, or only first occurrences (overall and per sigma)")
    s.add_argument("--knn-k", type=int, help="neighbours for the KD cross-mapping")
    s.add_argument("--no-metrics", dest="metrics", action="store_false", default=None,
                   help="skip IntDiv/SNN and the other generation metrics")
    s.add_argument("--metrics-max-samples", type=int)
    s.add_argument("--threads", type=int, help="torch threads per rank")
    s.add_argument("--round", type=int, help="design round recorded with every sample (gauss_hpc.loop)")
    a = p.add_argument_group("job array (instead of MPI ranks; then `python -m gauss_hpc.sample merge PARTS… --out F`)")
    a.add_argument("--array", type=int, metavar="N",
                   help="run one of N array elements: its share of the units into <out stem>.partIIIIofNNNN.h5")
    a.add_argument("--array-index", type=int, metavar="I",
                   help="this element's index (default: $SLURM_ARRAY_TASK_ID)")
    add_quiet(p)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def parse_args(argv) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def load_config(args: argparse.Namespace) -> dict:
    overrides = {key: getattr(args, key) for key in (
        "run", "out", "ligands", "seed_ids", "seed_smiles", "seed_file", "seed_top", "seed_bins", "seed_random",
        "seed_by", "seed_order", "sigmas", "batches", "batch_size", "decoding", "temperature", "precision", "keep_donor",
        "seed", "units_per_group", "keep", "knn_k", "metrics", "metrics_max_samples", "threads", "round")}
    return config.load("sample", args.config, overrides)


def seed_spec(cfg: dict) -> SeedSpec:
    top = cfg["seed_top"]
    bins = cfg["seed_bins"]
    if top and len(top) != 2:
        raise ValueError(f"seed_top is [label, k], got {top}")
    if bins and len(bins) != 3:
        raise ValueError(f"seed_bins is [label, n_bins, per_bin], got {bins}")
    try:
        top = (str(top[0]), int(top[1])) if top else None
        bins = (str(bins[0]), int(bins[1]), int(bins[2])) if bins else None
    except ValueError as exc:
        raise ValueError(f"seed_top / seed_bins need whole numbers after the label ({exc})") from None
    return SeedSpec(ids=[int(i) for i in cfg["seed_ids"]], smiles=list(cfg["seed_smiles"]),
                    file=cfg["seed_file"] or None, top=top, bins=bins, random=int(cfg["seed_random"]),
                    by=cfg["seed_by"], order=cfg["seed_order"], random_seed=int(cfg["seed"]))


def check_options(cfg: dict) -> None:
    """Errors every rank detects identically before any communication."""
    if cfg["keep"] not in KEEP_MODES:
        raise ValueError(f"keep must be one of {KEEP_MODES}, not {cfg['keep']!r}")
    parent = Path(cfg["out"]).parent
    if parent.exists() and not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write {cfg['out']}: directory {parent} is not writable")
    if cfg["knn_k"] < 1 or cfg["metrics_max_samples"] < 1:
        raise ValueError("knn_k and metrics_max_samples must be >= 1")


# --- the run ------------------------------------------------------------------------------------------------

def _unit_counts(local, result, sample_units: np.ndarray) -> dict:
    """Per local unit: novel, unique, unique_in_sigma and novel_unique_in_sigma counts of its valid samples."""
    row = np.searchsorted(local.units, sample_units)

    def count(mask):
        return np.bincount(row[mask], minlength=len(local.units)).astype(np.int64)

    return {"novel": count(result.novel), "unique": count(result.unique),
            "unique_in_sigma": count(result.unique_in_sigma),
            "novel_unique_in_sigma": count(result.unique_in_sigma & result.novel)}


def _gather_columns(comm: dist.Collectives, columns: dict) -> dict | None:
    """Rank 0 gets every rank's columns concatenated (2-D columns stay 2-D); other ranks get None."""
    parts = comm.gather(columns, root=0)
    if comm.rank != 0:
        return None
    return {key: np.concatenate([np.asarray(part[key]) for part in parts]) for key in parts[0]}


def sigma_statistics(attempts: pd.DataFrame) -> pd.DataFrame:
    """Per (σ, batch), summed over seeds: counts and fractions of attempts, per batch and accumulated over
    batches (the data of the paper's validity / novelty / uniqueness curves over σ)."""
    counts = ["attempts", "valid", "novel", "unique_in_sigma", "novel_unique_in_sigma"]
    stats = attempts.groupby(["sigma", "batch"], as_index=False)[counts].sum()
    stats = stats.rename(columns={"unique_in_sigma": "unique", "novel_unique_in_sigma": "novel_unique"})
    names = ["valid", "novel", "unique", "novel_unique"]
    cumulative = stats.groupby("sigma")[["attempts", *names]].cumsum()
    for name in names:
        stats[f"{name}_fraction"] = stats[name] / stats["attempts"]
    for name in ["attempts", *names]:
        stats[f"cum_{name}"] = cumulative[name]
    for name in names:
        stats[f"cum_{name}_fraction"] = stats[f"cum_{name}"] / stats["cum_attempts"]
    return stats


def summary_text(stats: pd.DataFrame, metric_rows: pd.DataFrame | None, units: pd.DataFrame, unique: int,
                 novel_unique: int, seconds: dict) -> str:
    """The table printed at the end: accumulated fractions per σ, metrics, rejection reasons, timings."""
    last = stats.sort_values("batch").groupby("sigma").tail(1).sort_values("sigma")
    header = f"{'sigma':>6} {'attempts':>9} {'valid%':>7} {'novel%':>7} {'unique%':>8} {'nov+uniq%':>9}"
    lines = [header + ("  unique@1k  IntDiv1    SNN" if metric_rows is not None else "")]
    by_sigma = metric_rows.set_index("sigma") if metric_rows is not None else None
    for _, r in last.iterrows():
        line = (f"{r.sigma:6.3f} {int(r.cum_attempts):9d} {100 * r.cum_valid_fraction:7.1f} "
                f"{100 * r.cum_novel_fraction:7.1f} {100 * r.cum_unique_fraction:8.1f} "
                f"{100 * r.cum_novel_unique_fraction:9.1f}")
        if by_sigma is not None:
            m = by_sigma.loc[r.sigma]
            line += f"  {m.unique_at_1k:9.3f} {m.intdiv1:8.3f} {m.snn:6.3f}"
        lines.append(line)
    invalid = {r: int(units[f"invalid_{r}"].sum()) for r in REASONS}
    ranked = sorted(((n, r) for r, n in invalid.items() if n), reverse=True)
    lines.append("invalid by reason: " + (", ".join(f"{r} {n}" for n, r in ranked) or "none"))
    lines.append(f"unique ligands over all sigmas: {unique} ({novel_unique} novel)")
    lines.append("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()))
    return "\n".join(lines)


@dataclass
class Setup:
    """Everything a rank (or an array element, or the merge) resolves from the options and the run's files."""
    loaded: Any
    latents: Latents | None             # None: the run has no latents.h5 and the seeds are SMILES only
    seeds: list
    plan: Plan
    decoder: LatentDecoder
    knn: KnnLabels
    seed_mu: np.ndarray
    seed_prefix: np.ndarray | None      # the seeds' donor atoms as tokens (keep_donor), else None


def _latents(cfg: dict) -> Latents | None:
    """The run's dataset latents; None for a model directory without latents.h5 (the shipped model) when no
    ligands file is given: SMILES seeds need none, and novelty is then judged against the ligands the model was
    trained on (its training_ligands.txt.gz)."""
    from gauss_hpc.model.checkpoint import TRAINING_LIGANDS

    run = Path(cfg["run"])
    if (run / "latents.h5").is_file() or cfg["ligands"]:
        return Latents.load(run, cfg["ligands"] or None)
    if not (run / TRAINING_LIGANDS).is_file():
        raise FileNotFoundError(f"{run}: neither latents.h5 nor {TRAINING_LIGANDS}, so novelty cannot be judged; "
                                f"encode a ligands file first: python -m gauss_hpc.encode {run} --ligands LIGANDS.h5 "
                                "--out RUN")
    return None


def prepare(cfg: dict) -> Setup:
    """Check the options and resolve seeds, plan and model. Every rank does this alike from the same files before
    any exchange, so bad input fails identically everywhere: here, and only here, it is an InputError."""
    import torch

    from gauss_hpc.model.checkpoint import CheckpointError, load_run
    from gauss_hpc.model.decoders import AutoregressiveDecoder

    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    try:
        check_options(cfg)
        loaded = load_run(cfg["run"])
        latents = _latents(cfg)
        seeds = resolve_seeds(loaded, latents, seed_spec(cfg))
        plan = Plan(tuple(s.canonical for s in seeds), tuple(float(x) for x in cfg["sigmas"]),
                    int(cfg["batches"]), int(cfg["batch_size"]), int(cfg["seed"]), int(cfg["units_per_group"]))
        decoder = LatentDecoder(loaded.model, loaded.vocab, cfg["decoding"], float(cfg["temperature"]),
                                cfg["precision"])
        knn = KnnLabels.from_files(latents, cfg["knn_labels"], int(cfg["knn_k"])) if latents else None
        prefix = None
        if cfg["keep_donor"]:
            if not isinstance(loaded.model.decoder, AutoregressiveDecoder):
                raise ValueError(f"keep_donor needs a model with the autoregressive decoder; {cfg['run']} has "
                                 f"the {type(loaded.model.decoder).__name__}")
            prefix = donor_prefix([s.smiles for s in seeds], loaded.vocab)
    except (ValueError, FileNotFoundError, PermissionError, CheckpointError, store.SchemaError) as exc:
        raise InputError(str(exc)) from exc
    return Setup(loaded, latents, seeds, plan, decoder, knn, np.stack([s.mu for s in seeds]).astype(np.float32),
                 prefix)


def generate(setup: Setup, worker: int, workers: int, progress: bool) -> RankSamples:
    """Decode and validate this worker's share of the plan's units (worker = rank or array element)."""
    plan = setup.plan
    groups = plan.groups_of_rank(worker, workers)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=sum(len(plan.group_units(g)) for g in groups) * plan.batch_size, unit="attempt",
                   desc=f"sampling ({worker} of {workers})", file=sys.stderr)
    local = sample_groups(plan, groups, setup.seed_mu, setup.decoder, Validator(), bar, setup.seed_prefix)
    if bar is not None:
        bar.close()
    return local


def run_sampling(comm: dist.Collectives, cfg: dict, progress: bool = True) -> dict | None:
    """The whole stage on every rank of `comm` (the run's dist.Collectives: any launcher, or one process); rank 0
    writes cfg["out"] and returns a summary, others None."""
    rank, size = comm.rank, comm.size
    t_start = time.perf_counter()
    setup = prepare(cfg)
    plan = setup.plan
    if rank == 0:
        log.info("%d seeds x %d sigmas x %d batches x %d = %d attempts on %d rank(s)", plan.n_seeds,
                 len(plan.sigmas), plan.batches, plan.batch_size, plan.attempts, size)
    t_setup = time.perf_counter()
    local = generate(setup, rank, size, progress and rank == 0)
    return finish(comm, cfg, setup, local, {"setup": t_setup - t_start}, t_start)


def finish(comm: dist.Collectives, cfg: dict, setup: Setup, local: RankSamples, phase: dict, t_start: float,
           origin: np.ndarray | None = None, workers: int | None = None) -> dict | None:
    """Global dedup, novelty, predictions, metrics and the samples file, from each rank's generated samples.
    `origin` is the worker that generated each sample (default: this rank); `workers` how many there were."""
    from gauss_hpc.model.checkpoint import TRAINING_LIGANDS

    rank, size = comm.rank, comm.size
    loaded, latents, seeds, plan, knn, seed_mu = (setup.loaded, setup.latents, setup.seeds, setup.plan, setup.knn,
                                                  setup.seed_mu)
    t_sampled = time.perf_counter()

    # Each rank reads one block of the training canonicals; the block also serves the SNN metric below.
    # Novel = neither in the ligands file nor among the ligands the model was trained on (they differ when a
    # trained or shipped model samples around another file, see gauss_hpc.encode; without a ligands file, the
    # model's own training ligands are the reference of both).
    trained_on = Path(cfg["run"]) / TRAINING_LIGANDS
    trained_block = dedup.read_key_file_block(trained_on, rank, size) if trained_on.is_file() else []
    training_block = dedup.read_canonical_block(latents.ligands_file, rank, size) if latents else trained_block
    known_block = list(training_block) + (trained_block if latents else [])
    training = dedup.training_share(comm, known_block)
    keys = np.asarray(local.key, np.int64)
    sample_units = np.asarray(local.unit, np.int64)
    sample_batch, sigma_index, seed_index = plan.unit_arrays(sample_units)
    result = dedup.global_dedup(comm, local.canonical, sigma_index, keys, training)
    t_exchanged = time.perf_counter()

    counts = _unit_counts(local, result, sample_units)
    # keep = "unique" still keeps the first occurrence per σ, which the per-σ metrics need.
    keep = (result.unique | result.unique_in_sigma) if cfg["keep"] == "unique" else np.ones(len(keys), bool)
    kept_smiles = [s for s, k in zip(local.smiles, keep) if k]
    properties = sample_properties(loaded, kept_smiles, knn)
    t_predicted = time.perf_counter()

    batch, unit_sigma, unit_seed = plan.unit_arrays(local.units)
    sigmas = np.asarray(plan.sigmas)
    unit_columns = {"unit": local.units, "seed_id": unit_seed, "sigma": sigmas[unit_sigma], "batch": batch,
                    "attempts": local.attempts, "valid": local.valid, **counts}
    unit_columns.update({f"invalid_{r}": local.invalid[:, i] for i, r in enumerate(REASONS)})
    sample_columns = {
        "key": keys[keep], "seed_id": seed_index[keep], "sigma": sigmas[sigma_index[keep]],
        "batch": sample_batch[keep], "attempt": keys[keep] % plan.batch_size,
        "round": np.full(int(keep.sum()), int(cfg["round"]), np.int64),
        "smiles": np.asarray(kept_smiles, dtype=object),
        "canonical": np.asarray(local.canonical, dtype=object)[keep], "charge": np.asarray(local.charge)[keep],
        "valid": np.ones(int(keep.sum()), bool), "novel": result.novel[keep], "unique": result.unique[keep],
        "unique_in_sigma": result.unique_in_sigma[keep], "times_generated": result.times_generated[keep],
        "rank": (np.full(int(keep.sum()), rank, np.int64) if origin is None else np.asarray(origin)[keep]),
        "unit": sample_units[keep],
        "valid_rank": np.asarray(local.valid_rank, np.int64)[keep],
        "z": local.z_matrix(loaded.model.latent_dim)[keep], **properties}
    units = _gather_columns(comm, unit_columns)
    samples = _gather_columns(comm, sample_columns)
    phase = {**phase, "decode": local.seconds["decode"], "validate": local.seconds["validate"],
             "exchange": t_exchanged - t_sampled, "predict": t_predicted - t_exchanged}
    phases = comm.gather(phase, root=0)
    if rank == 0:
        units = pd.DataFrame(units).sort_values("unit").reset_index(drop=True)
        order = np.argsort(samples["key"], kind="stable")
        samples = {name: column[order] for name, column in samples.items()}
        flat = pd.DataFrame({name: column for name, column in samples.items() if column.ndim == 1})
    t_gathered = time.perf_counter()

    metric_rows = None
    if cfg["metrics"]:
        subsets = (metrics.diversity_subsets(flat, plan.sigmas, int(cfg["metrics_max_samples"]))
                   if rank == 0 else None)
        subsets = comm.bcast(subsets, root=0)
        distinct = sorted({c for subset in subsets for c in subset})
        similarity = metrics.nearest_training_similarity(comm, distinct, training_block)
        if rank == 0:
            metric_rows = metrics.metrics_table(units, flat, plan.sigmas, subsets,
                                                dict(zip(distinct, similarity.tolist())))
    t_metrics = time.perf_counter()
    if rank != 0:
        return None

    seed_table = {"seed_id": np.arange(len(seeds)), "smiles": np.asarray([s.smiles for s in seeds], object),
                  "canonical": np.asarray([s.canonical for s in seeds], object),
                  "ligand_row": np.asarray([s.ligand_row for s in seeds], np.int64),
                  "source": np.asarray([s.source for s in seeds], object), "mu": seed_mu}
    del samples["unit"], samples["valid_rank"]
    samples = {"key": samples.pop("key"), "seed_id": samples["seed_id"],
               "seed_smiles": seed_table["smiles"][samples["seed_id"]],
               "seed_ligand_row": seed_table["ligand_row"][samples["seed_id"]], **samples}
    stats = sigma_statistics(units)
    seconds = {name: max(p[name] for p in phases) for name in phases[0]}
    seconds.update({"gather": t_gathered - t_predicted, "metrics": t_metrics - t_gathered,
                    "total": time.perf_counter() - t_start})     # everything but writing the file
    tables = {"seeds": seed_table, "samples": samples, "attempts": units, "sigma_stats": stats,
              "metrics": metric_rows if metric_rows is not None else pd.DataFrame({"sigma": []})}
    t_write = time.perf_counter()
    store.write_samples(cfg["out"], tables, _file_attrs(cfg, setup, workers or size, seconds),
                        config=cfg, sources=_sources(cfg, latents))
    seconds["write"] = time.perf_counter() - t_write
    unique = int(units["unique"].sum())
    novel_unique = int((samples["unique"] & samples["novel"]).sum())
    print(summary_text(stats, metric_rows, units, unique, novel_unique, seconds))
    print(f"wrote {cfg['out']}: {int(units['valid'].sum())} valid of {plan.attempts} attempts, "
          f"{unique} unique ligands ({novel_unique} novel) on {workers or size} "
          f"{'array element(s)' if workers else 'rank(s)'}")
    return {"attempts": plan.attempts, "valid": int(units["valid"].sum()), "unique": unique,
            "novel_unique": novel_unique, "ranks": workers or size, "seconds": seconds, "out": str(cfg["out"])}


def _sources(cfg, latents: Latents | None) -> list[Path]:
    return [Path(cfg["run"]) / "best.pt"] + ([latents.ligands_file] if latents else [])


def _file_attrs(cfg, setup: Setup, size: int, seconds: dict) -> dict:
    plan, latents, loaded = setup.plan, setup.latents, setup.loaded
    return {"run_dir": str(Path(cfg["run"]).resolve()), "ligands_file": str(latents.ligands_file) if latents else "",
            "sigmas": list(plan.sigmas), "batches": plan.batches, "batch_size": plan.batch_size,
            "decoding": cfg["decoding"], "temperature": float(cfg["temperature"]),
            "precision": setup.decoder.precision, "keep_donor": bool(cfg["keep_donor"]), "rng_seed": plan.base_seed,
            "ranks": size, "reasons": list(REASONS), "label_names": list(loaded.label_names),
            "model_epoch": int(loaded.epoch), "seconds": seconds}


# --- sampling as a job array ------------------------------------------------------------------------------

def part_path(out: str | Path, element: int, elements: int) -> Path:
    """Where array element `element` of `elements` writes its part of the samples file `out`."""
    out = Path(out)
    return out.with_name(f"{out.stem}.part{element:04d}of{elements:04d}{out.suffix or '.h5'}")


def _result_config(cfg: dict) -> str:
    """The options that fix the result (all but where it goes and the threads), as the parts must agree on them."""
    return json.dumps({k: v for k, v in cfg.items() if k not in ("out", "threads")}, sort_keys=True)


def run_array_element(cfg: dict, element: int, elements: int, progress: bool = True) -> Path:
    """One element of a sampling array: its share of the plan's units (the share rank `element` of `elements`
    MPI ranks would sample), written as a partial samples file for `merge`."""
    if elements < 1 or not 0 <= element < elements:
        raise InputError(f"array element {element} of {elements}: the index must be 0 … {elements - 1}")
    setup = prepare(cfg)
    local = generate(setup, element, elements, progress)
    path = part_path(cfg["out"], element, elements)
    valid = {"key": np.asarray(local.key, np.int64), "unit": np.asarray(local.unit, np.int64),
             "valid_rank": np.asarray(local.valid_rank, np.int64), "smiles": np.asarray(local.smiles, object),
             "canonical": np.asarray(local.canonical, object), "charge": np.asarray(local.charge, np.int64),
             "z": local.z_matrix(setup.loaded.model.latent_dim)}
    store.write_sample_part(path, {"units": {"unit": local.units, "attempts": local.attempts,
                                             "invalid": local.invalid}, "valid": valid},
                            {"element": element, "elements": elements,
                             # "auto" resolved: parts decoded at different precisions are not one plan's
                             "sample_config": _result_config({**cfg, "precision": setup.decoder.precision}),
                             "seconds": local.seconds},
                            config=cfg, sources=_sources(cfg, setup.latents))
    print(f"wrote {path}: element {element} of {elements}, {int(local.valid.sum())} valid of "
          f"{int(local.attempts.sum())} attempts; merge all parts with "
          f"`python -m gauss_hpc.sample merge {part_path(cfg['out'], 0, elements).name.replace('part0000', 'part*')} "
          f"--out {cfg['out']}`")
    return path


def merge(parts: list[str | Path], out: str | Path) -> dict:
    """Merge the partial files of a sampling array into `out`: the same global dedup, novelty, predictions and
    metrics as one MPI run of the plan, so the file equals what that run writes (the `rank` column says which
    element generated a sample). Missing, repeated, unreadable or foreign parts are named."""
    t_start = time.perf_counter()
    read, bad = [], []
    for path in parts:
        try:
            read.append((Path(path), *store.read_sample_part(path)))
        except (FileNotFoundError, store.SchemaError) as exc:
            bad.append(str(exc))
    if bad:
        raise InputError("cannot read these parts (rerun their elements): " + "; ".join(bad))
    if not read:
        raise InputError("no parts given: merge PART… --out samples.h5")
    first_path, first, _ = read[0]
    differ = [str(p) for p, attrs, _ in read if attrs["sample_config"] != first["sample_config"]
              or int(attrs["elements"]) != int(first["elements"])]
    if differ:
        raise InputError(f"parts of different sampling runs: {', '.join(differ)} differ from {first_path} "
                         f"(options or element count)")
    elements = int(first["elements"])
    seen: dict[int, Path] = {}
    for path, attrs, _ in read:
        element = int(attrs["element"])
        if element in seen:
            raise InputError(f"array element {element} given twice: {seen[element]} and {path}")
        seen[element] = path
    missing = sorted(set(range(elements)) - set(seen))
    if missing:
        listing = ",".join(str(m) for m in missing)
        raise InputError(f"missing array element(s) {listing} of {elements} (no part file for them): rerun only "
                         f"those (`sbatch --array={listing} slurm/sample_array.sbatch {elements} …` with the same "
                         f"options, or `python -m gauss_hpc.sample … --array {elements} --array-index I`), then "
                         f"merge again")
    cfg = {**config.load("sample"), **json.loads(first["sample_config"]), "out": str(out)}
    setup = prepare(cfg)
    t_setup = time.perf_counter()
    units = {name: np.concatenate([t["units"][name] for _, _, t in read]) for name in read[0][2]["units"]}
    valid = {name: np.concatenate([t["valid"][name] for _, _, t in read]) for name in read[0][2]["valid"]}
    origin = np.concatenate([np.full(len(t["valid"]["key"]), int(a["element"]), np.int64) for _, a, t in read])
    by_unit, by_key = np.argsort(units["unit"], kind="stable"), np.argsort(valid["key"], kind="stable")
    units = {name: column[by_unit] for name, column in units.items()}
    valid = {name: column[by_key] for name, column in valid.items()}
    seconds = [json.loads(a["seconds"]) for _, a, _ in read]
    local = RankSamples(units=units["unit"], attempts=units["attempts"], invalid=units["invalid"],
                        key=valid["key"], unit=valid["unit"], valid_rank=valid["valid_rank"],
                        smiles=valid["smiles"].tolist(), canonical=valid["canonical"].tolist(),
                        charge=valid["charge"], z=[valid["z"]],
                        seconds={k: max(s[k] for s in seconds) for k in seconds[0]})
    return finish(dist.Collectives(), cfg, setup, local, {"setup": t_setup - t_start}, t_start,
                  origin=origin[by_key], workers=elements)


def _merge_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m gauss_hpc.sample merge",
                                description="Merge the partial files of a sampling array (--array N) into one "
                                            "samples file, with the global dedup and novelty of one MPI run.")
    p.add_argument("parts", nargs="+", metavar="PART", help="partial files (<out stem>.partIIIIofNNNN.h5)")
    p.add_argument("--out", required=True, help="samples file to write")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    def body() -> int:
        merge(args.parts, args.out)
        return 0

    return dist.run_main("gauss_hpc.sample merge", body)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:
        return _merge_main(argv[1:])
    args = parse_args(argv)
    rank = dist.detect().rank
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s rank {rank} %(levelname)s %(message)s")

    def body() -> int:
        try:
            cfg = load_config(args)
        except (ValueError, FileNotFoundError) as exc:         # the config file or a flag
            raise InputError(str(exc)) from exc
        if args.array:
            try:
                element = dist.array_element(args.array_index)
            except InputError as exc:
                raise InputError(f"--array {args.array}: {exc} (sbatch --array=0-{args.array - 1} "
                                 f"slurm/sample_array.sbatch {args.array} …)") from exc
            run_array_element(cfg, element, args.array, progress=not args.quiet)
            return 0
        ctx = dist.init(backend="mpi")
        run_sampling(ctx.comm, cfg, progress=not args.quiet)
        return 0

    return dist.run_main("gauss_hpc.sample", body)


if __name__ == "__main__":
    sys.exit(main())
