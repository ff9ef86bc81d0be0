"""`python -m gauss_hpc.analyze`: figures and a report (report/index.html) from the HDF5 files of the stages.

The report shows the molecules first (generated ligands beside their seeds with their KD1, the seeds, the computed
complexes and a 3-D view of them), then interactive maps (plotly, its JavaScript embedded so that the file opens
offline), then the PNG figures for papers. It ranks by the design target of the round (KD1, highest first, unless
`--target`/`--direction` or a loop's `--config` say otherwise) and reads the seeds' crystal-field labels of the
complex template the results were computed on (`--template` when they mix several). Each figure is made from
whatever files are given; a figure whose inputs are missing is listed in the report with the reason instead of
failing the whole report. The figures live in gauss_hpc/report/ (training, sampling, campaigns, molecule_figures;
the page itself in page.py); this module chooses them and runs them.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tomllib
from pathlib import Path

from . import store
from .report import kd
from .report.campaigns import (campaign_status, results_table, results_template, screen_vs_casscf, seed_fidelity,
                               seed_fidelity_interactive, target_distribution)
from .report.molecule_figures import complex_molecules, complex_views, generated_molecules, seed_molecules
from .report.page import Report, plt, write_html
from .report.sampling import metrics_table, sigma_sweep, sigma_sweep_interactive
from .report.training import (latent_map_interactive, latent_maps, learning_curves, learning_vs_size,
                              model_numbers, parity, parity_interactive)
from .targets import Target

log = logging.getLogger("gauss_hpc.analyze")


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
    table = results_table(result_paths, focus.target)
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
    ap.add_argument("--target", help="what to rank by: kd1, total_splitting, gap:N or g_perp (default: kd1; weighted "
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
