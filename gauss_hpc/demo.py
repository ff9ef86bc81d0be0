"""`python -m gauss_hpc.demo` (`make demo`): the GAUSS method end to end on the bundled ligands.

bundled ligands → xTB proxy labels (+ a few real OpenMolcas LoProps) → crystal-field KD labels for part of the
set → semi-supervised VAE on 2 MPI ranks → sampling on 2 ranks around the best seeds → assembly + crystal-field
KDs of the generated ligands and real OpenMolcas CASSCF for a few, through local job arrays → gather → report.

Every step writes its files under --out and is skipped when they already exist, so an interrupted demo
continues where it stopped (`--fresh` starts over).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import config, store
from .launch import REPO, mpi_launcher, run
from .loop import generated_for_screen, run_campaign, sample_rows_input
from .abinitio import values as value_schema

log = logging.getLogger("gauss_hpc.demo")
PROXY_LABELS = ["donor_z", "donor_mulliken_charge", "xtb_donor_charge", "xtb_donor_dipole",
                "xtb_donor_polarizability"]


def kd_label(cfg: dict) -> str:
    """The crystal-field KD label of the demo's template that the KD head learns and seeds are binned by:
    cf_kd_gaps for the paper's [Dy(H2O)5L2]+, cf_<template>_kd_gaps for another."""
    return value_schema.label_name("crystal_field", value_schema.KD_GAPS, cfg["template"])


def banner(step: int, total: int, text: str) -> None:
    print(f"\n=== [{step}/{total}] {text}", flush=True)


def have_molcas() -> bool:
    return shutil.which("pymolcas") is not None


# --- steps -----------------------------------------------------------------------------------------------------

def prepare(cfg: dict, out: Path) -> Path:
    ligands = out / "ligands.h5"
    if not ligands.exists():
        shutil.copyfile(REPO / cfg["ligands"], ligands)      # labels go into the demo's copy only
    return ligands


def label_proxies(cfg: dict, ligands: Path) -> dict:
    from . import label

    summary = {"xtb": label.label_file(ligands, backend="xtb", limit=int(cfg["xtb_labels"]),
                                       rows=f"0:{int(cfg['xtb_labels'])}", workers=int(cfg["workers"]))}
    if int(cfg["loprop_labels"]) > 0:
        if have_molcas():
            summary["molcas"] = label.label_file(ligands, backend="molcas", rows=cfg["loprop_rows"],
                                                 limit=int(cfg["loprop_labels"]))
        else:
            print("WARNING: pymolcas not found: SKIPPING the real OpenMolcas LoProp labels "
                  "(apt-get install openmolcas)", flush=True)
    return summary


def choose_kd_rows(ligands: Path, n: int, seed: int) -> np.ndarray:
    """Ligands given crystal-field KD labels: a random sample (the paper's ~1k CASSCF set), held-out ones
    included so that the KD head's R² can be measured."""
    n_rows = len(store.read_ligands(ligands))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=min(n, n_rows), replace=False))


def kd_labels(cfg: dict, ligands: Path, out: Path, rows: np.ndarray | None = None) -> dict:
    """Crystal-field KDs of [Dy(H2O)5L2]+ for `rows` of the ligands file (default: a random `kd_labels` of
    them), through a local job array, merged back as the labels cf_kd_gaps (n, 7) and cf_kd_descriptors (n, 6)
    that the GAUSS-I head learns (gauss_hpc.merge: the ligand rows travel with the tasks)."""
    from .merge import merge

    if rows is None:
        rows = choose_kd_rows(ligands, int(cfg["kd_labels"]), int(cfg["seed"]))
    spec = screen_spec("kd-labels", {"path": str(ligands), "kind": "ligands", "rows": [int(r) for r in rows]}, cfg)
    return merge([run_campaign(spec, out / "campaigns" / "kd_labels")], ligands)


def screen_spec(name: str, source: dict, cfg: dict, casscf: bool = False) -> dict:
    """A local campaign on `source` (the spec's [input]: a file and the rows of it to compute)."""
    steps = [{"name": "assemble", "params": {"template": cfg["template"]}}, {"name": "crystal_field"}]
    if casscf:
        steps.append({"name": "casscf", "params": dict(cfg["casscf_params"]),
                      "resources": {"cpus": 2, "time_min": 30}})
    return {"campaign": {"name": name, "executor": "local"}, "input": source,
            "resources": {"local_parallelism": 1 if casscf else int(cfg["workers"]),
                          "tasks_per_job": 1 if casscf else int(cfg["tasks_per_job"])},
            "steps": steps}


def train(cfg: dict, ligands: Path, run_dir: Path) -> None:
    if (run_dir / "checkpoint.pt").exists():            # an interrupted training goes on with its stored config
        arguments = ["--out", str(run_dir), "--resume"]
    else:
        settings = {"ligands": str(ligands), "out": str(run_dir), "max_minutes": float(cfg["train_minutes"]),
                    "max_epochs": int(cfg["train_max_epochs"]), "threads": 1, "train_size": int(cfg["train_size"]),
                    "batch_size": int(cfg["train_batch_size"]), "lr": float(cfg["train_lr"]),
                    "proxy_labels": list(PROXY_LABELS), "kd_head": True, "kd_label": kd_label(cfg)}
        arguments = ["--config", str(config.write_section(run_dir.with_name("train.toml"), "train", settings,
                                                          "written by gauss_hpc.demo"))]
    run(mpi_launcher(int(cfg["ranks"])) + [sys.executable, "-m", "gauss_hpc.train", *arguments, "--quiet"])


def reconstructs(run_dir: Path, smiles: list[str]) -> np.ndarray:
    """Whether the trained model decodes each ligand's latent mean back to the same molecule."""
    import torch

    from .chem.ligands import LigandError, kekulized_canonical
    from .model.checkpoint import load_run

    run = load_run(run_dir)
    writable = [s for s in smiles if run.vocab.encodable(s)]
    with torch.no_grad():
        mu, _ = run.model.encode(torch.as_tensor(run.vocab.encode(writable)))
        decoded = dict(zip(writable, run.vocab.decode(run.model.generate(mu).numpy())))
    same = []
    for original, back in ((s, decoded.get(s, "")) for s in smiles):
        try:
            same.append(kekulized_canonical(back) == kekulized_canonical(original))
        except LigandError:
            same.append(False)
    return np.asarray(same, bool)


def binned_seeds(ligands: Path, run_dir: Path, n_bins: int, seed: int, per_bin: int = 1,
                 label: str = value_schema.label_name("crystal_field", value_schema.KD_GAPS)) -> list[int]:
    """`per_bin` KD-labelled training ligands from each of `n_bins` equal-width bins of the crystal-field KD1 gap
    (the paper's Fig. 8: seeds across the range, so that seed -> sample fidelity can show), each one a ligand the
    model reconstructs, so that σ -> 0 samples stay at a known molecule. A bin with fewer such ligands gives what
    it has. More than one per bin because the fidelity score over six seeds swings with the pick (a bootstrap
    over the seeds of one 6-seed run spanned -0.09 to 0.84)."""
    values, mask = store.read_labels(ligands)[label]
    test, _ = store.read_splits(ligands)
    rows = np.flatnonzero(mask & ~test & np.isfinite(values[:, 0]))
    rows = np.random.default_rng(seed).permutation(rows)
    smiles = store.read_ligands(ligands)["smiles"].to_numpy()
    rows = rows[reconstructs(run_dir, list(smiles[rows]))]
    kd1 = values[rows, 0]
    edges = np.linspace(kd1.min(), kd1.max(), n_bins + 1)
    which = np.clip(np.searchsorted(edges, kd1, side="right") - 1, 0, n_bins - 1)
    picked = [int(row) for b in range(n_bins) for row in rows[which == b][:per_bin]]
    if len(picked) < n_bins * per_bin:
        short = [b for b in range(n_bins) if (which == b).sum() < per_bin]
        print(f"WARNING: KD1 bins {short} of {n_bins} hold fewer than {per_bin} ligands the model reconstructs: "
              f"{len(picked)} seeds", flush=True)
    return picked


def sampling_run(cfg: dict, ligands: Path, out: Path, own_run: Path) -> Path:
    """The run to sample from: the shipped model put to work on the demo's ligands (gauss_hpc.encode), or the
    demo's own short run when no model is shipped in this checkout."""
    from .encode import encode

    shipped = REPO / cfg["model"]
    if not (shipped / "best.pt").is_file():
        print(f"WARNING: no shipped model at {shipped}: sampling from the demo's own {cfg['train_minutes']}-minute "
              f"run instead", flush=True)
        return own_run
    run_dir = out / "shipped_model"
    if not (run_dir / "latents.h5").is_file():
        print(json.dumps(encode(shipped, ligands, run_dir)), flush=True)
    return run_dir


def sample(cfg: dict, ligands: Path, run_dir: Path, samples: Path) -> None:
    seeds = binned_seeds(ligands, run_dir, int(cfg["kd1_bins"]), int(cfg["seed"]), int(cfg["seeds_per_bin"]),
                         kd_label(cfg))
    settings = {"run": str(run_dir), "ligands": str(ligands), "out": str(samples),
                "seed_ids": [int(s) for s in seeds], "sigmas": list(cfg["sigmas"]), "batches": int(cfg["batches"]),
                "batch_size": int(cfg["batch_size"]), "threads": 1, "keep_donor": bool(cfg["keep_donor"]),
                "knn_labels": [kd_label(cfg)]}
    path = config.write_section(samples.with_name("sample.toml"), "sample", settings, "written by gauss_hpc.demo")
    run(mpi_launcher(int(cfg["ranks"])) + [sys.executable, "-m", "gauss_hpc.sample", "--config", str(path), "--quiet"])


def screen(cfg: dict, samples: Path, ligands: Path, out: Path) -> dict:
    chosen = generated_for_screen(samples, int(cfg["screen_top"]))
    if chosen.empty:
        print(f"WARNING: {samples} holds no novel unique ligand: nothing to screen. Train longer "
              f"(--train-minutes) or sample more (sigmas, batches).", flush=True)
        return {"screened": 0}
    spec = screen_spec("screen", sample_rows_input(samples, chosen.index), cfg)
    results = store.read_results(run_campaign(spec, out / "campaigns" / "screen"))
    return {"screened": len(results), "ok": int((results["status"] == "ok").sum())}


def design_round(cfg: dict, ligands: Path, out: Path) -> dict:
    """One closed-loop round (gauss_hpc.loop) from the demo's KD-labelled ligands and the shipped model, with the
    crystal field as the oracle: what it changed (labels added, the KD head's R² on them before and after the
    fine-tuning, generated ligands beating the best seed, the Fig. 10 numbers)."""
    from . import loop

    round_cfg = config.load("loop", overrides={
        "ligands": str(ligands), "model": str(REPO / cfg["model"]), "seeds": cfg["round_seeds"],
        "sigmas": cfg["round_sigmas"], "batches": cfg["batches"], "batch_size": cfg["batch_size"],
        "screen": cfg["round_screen"], "oracle": "screen", "executor": "local", "workers": cfg["workers"],
        "tasks_per_job": cfg["tasks_per_job"], "ranks": cfg["ranks"], "seed": cfg["seed"],
        "template": cfg["template"], "kd_label": kd_label(cfg),
        "train": {"max_epochs": cfg["round_epochs"], "proxy_labels": PROXY_LABELS}})
    loop.check(round_cfg)
    summary = loop.run_round(out / "rounds", 0, round_cfg, ligands)
    fig10 = summary["fig10"]
    return {"labels added": summary["labels_added"],
            "KD head on them, KD1 R² before / after fine-tuning": f"{summary['kd1_r2_before']} / {summary['kd1_r2_after']}",
            "KD head on them, KD1 MAE before / after (cm-1; their std)":
            f"{summary['kd1_mae_before_cm1']} / {summary['kd1_mae_after_cm1']} ({summary['kd1_new_labels_std_cm1']})",
            "generated ligands beating the best seed's KD1": summary["generated_beating_best_seed"],
            "unique novel per seed (mean, min-max)": fig10["unique_novel_per_seed"],
            "KD1 shift of means, generated - labelled (cm-1)": fig10["kd1_shift_of_means"]}


def casscf_candidates(screen_results: Path, n: int) -> pd.DataFrame:
    """Generated ligands whose complex assembled and whose crystal-field KD1 gap is in the top quarter; the
    smallest of those first, because CASSCF time grows steeply with the ligand size."""
    table = store.read_results(screen_results)
    table["kd1_gap"] = store.read_result_arrays(screen_results, ("kd_gaps",))["kd_gaps"][:, 0]
    ok = table[(table["status"] == "ok") & table["kd1_gap"].notna()]
    good = ok[ok["kd1_gap"] >= ok["kd1_gap"].quantile(0.75)]
    return good.assign(size=good["smiles"].str.len()).sort_values(["size", "kd1_gap"],
                                                                  ascending=[True, False]).head(n)


def casscf(cfg: dict, out: Path) -> dict:
    if int(cfg["casscf"]) <= 0:
        return {"skipped": "casscf = 0"}
    if not have_molcas():
        print("WARNING: pymolcas not found: SKIPPING the real OpenMolcas CASSCF validation "
              "(apt-get install openmolcas)", flush=True)
        return {"skipped": "no pymolcas"}
    screened = out / "campaigns" / "screen" / "results.h5"
    chosen = casscf_candidates(screened, int(cfg["casscf"])) if screened.exists() else pd.DataFrame()
    if chosen.empty:
        return {"skipped": "no generated complex passed the crystal-field screen"}
    samples = Path(store.read_results(screened, ["source_file"])["source_file"].iloc[0])
    spec = screen_spec("casscf", sample_rows_input(samples, chosen["sample_row"]), cfg, casscf=True)
    path = run_campaign(spec, out / "campaigns" / "casscf")
    results, arrays = store.read_results(path), store.read_result_arrays(path)
    ok = (results["status"] == "ok").to_numpy()
    return {"complexes": len(results), "ok": int(ok.sum()),
            "casscf_kd_gaps": arrays["kd_gaps"][ok].round(1).tolist(), "messages": results.loc[~ok, "message"].tolist()}


def demo(cfg: dict, out: Path) -> Path:
    from .analyze import analyze

    out.mkdir(parents=True, exist_ok=True)
    run_dir, samples, timings = out / "run", out / "samples.h5", {}
    total = 10

    def step(number: int, text: str, fn, done: bool = False):
        banner(number, total, text + (" (done before, skipped)" if done else ""))
        start = time.perf_counter()
        value = None if done else fn()
        timings[text] = round(time.perf_counter() - start, 1)
        if isinstance(value, dict):
            print(json.dumps(value, default=str), flush=True)
        return value

    ligands = prepare(cfg, out)
    labels = store.read_labels(ligands)
    step(1, f"xTB proxy labels for {cfg['xtb_labels']} ligands (+ real OpenMolcas LoProp for "
            f"{cfg['loprop_labels']})", lambda: label_proxies(cfg, ligands), "xtb_donor_charge" in labels)
    step(2, f"crystal-field KD labels for {cfg['kd_labels']} ligands (local job array)",
         lambda: kd_labels(cfg, ligands, out), kd_label(cfg) in labels)
    step(3, f"semi-supervised VAE on {cfg['ranks']} MPI ranks (at most {cfg['train_minutes']} min)",
         lambda: train(cfg, ligands, run_dir), (run_dir / "latents.h5").exists())
    sampler = step(4, f"the shipped model ({cfg['model']}) encodes the demo's ligands",
                   lambda: sampling_run(cfg, ligands, out, run_dir))
    step(5, f"sampling on {cfg['ranks']} MPI ranks around {cfg['seeds_per_bin']} seeds from each of "
            f"{cfg['kd1_bins']} bins of KD1",
         lambda: sample(cfg, ligands, sampler, samples), samples.exists())
    step(6, f"assembly + crystal-field KDs of {cfg['screen_top']} generated ligands (local job array)",
         lambda: screen(cfg, samples, ligands, out), (out / "campaigns/screen/results.h5").exists())
    round_summary = step(7, f"one closed-loop round: {cfg['round_seeds']} best seeds → {cfg['round_screen']} screened "
                            f"→ labels → fine-tuning (gauss_hpc.loop, crystal-field oracle)",
                         lambda: design_round(cfg, ligands, out))
    step(8, f"real OpenMolcas CASSCF/SINGLE_ANISO for {cfg['casscf']} generated complexes (local job array)",
         lambda: casscf(cfg, out), (out / "campaigns/casscf/results.h5").exists())
    results = [p for p in (out / "campaigns/screen/results.h5", out / "campaigns/casscf/results.h5") if p.exists()]
    step(9, "report", lambda: analyze(out / "report", [run_dir], samples, results, ligands=ligands))
    banner(10, total, "summary")
    numbers = {**json.loads((out / "report" / "numbers.json").read_text()),
               **{f"round: {k}": v for k, v in (round_summary or {}).items()}}
    width = max(map(len, list(numbers) + list(timings)))
    for key, value in numbers.items():
        print(f"  {key:<{width}}  {value}")
    print("\n  step timings (s):")
    for key, value in timings.items():
        print(f"  {key[:width]:<{width}}  {value}")
    print(f"\nreport: {out / 'report' / 'index.html'}")
    return out / "report" / "index.html"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m gauss_hpc.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="demo directory (default demo_out)")
    ap.add_argument("--config", help="TOML file with a [demo] section")
    ap.add_argument("--fresh", action="store_true", help="delete the demo directory first")
    ap.add_argument("--train-minutes", type=float, help="time budget of the training")
    ap.add_argument("--ranks", type=int, help="MPI ranks for training and sampling")
    ap.add_argument("--template", help="complex template of every screen and round (gauss_hpc/complex_templates.toml; "
                                       "default [demo] template, the paper's dy_h2o5_pbp)")
    return ap


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    cfg = config.load("demo", args.config, {"out": args.out, "train_minutes": args.train_minutes,
                                            "ranks": args.ranks, "template": args.template})
    from .chem.templates import template as named_template

    try:
        named_template(cfg["template"])
    except ValueError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    out = Path(cfg["out"])
    if args.fresh and out.exists():
        shutil.rmtree(out)
    start = time.perf_counter()
    demo(cfg, out)
    print(f"demo finished in {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
