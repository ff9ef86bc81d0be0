"""`python -m gauss_hpc.screen LIGANDS --out screen.h5`: the fast screen of a list of ligands in one command.

Each ligand L takes the axial sites of a complex template (--template, gauss_hpc/complex_templates.toml; the
paper's [Dy(H2O)5L2]+ by default) by molSimplify, gets a geometry from the chosen tier and the (Kramers or
pseudo-) doublets of the point-charge crystal field of the template's ion ([screen] in defaults.toml;
--geometry, --charge-model):

  geometry "fast"    GFN2-xTB relaxation of the Y analogue with the metal-donor bonds and the angle at each axial
                     donor held at the DFT tier's values for their donor class (xtb.FAST_TIER,
                     chem/donor_distances.py; seconds per complex)
           "rigid"   molSimplify's assembly as built (the screen before the geometry tiers)

It is a job campaign underneath (assemble → xtb_relax → crystal_field; gauss_hpc.jobs): `--workers N` runs N local
processes, `--executor slurm` a Slurm job array, and a rerun with the same arguments resumes (the campaign
directory, by default next to --out, keeps every finished task). The output has the schema of `jobs gather`, with
one row per input line in input order (a line repeated is computed once and written for each occurrence), its
name, status and reason (a line that is no SMILES is a row with status invalid_input), kd_energies, kd_gaps (the
paper's dE0i), the structural descriptors and the final geometry.

Input: a SMILES file (.smi/.txt: `SMILES<TAB>name` per line), a CSV with a `smiles` column (and `name`), or a
ligands.h5. `--reinvent` instead reads SMILES on standard input and answers in REINVENT 4's ExternalProcess JSON,
with a cache across calls (gauss_hpc/reinvent.py; reinvent/gauss_screen.toml is the REINVENT side).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import h5py
import numpy as np

from .cli import add_quiet
from . import config, store
from .abinitio.xtb import FAST_TIER
from .chem.templates import DEFAULT as DEFAULT_TEMPLATE, template as named_template

GEOMETRIES = ("fast", "rigid")


def screen_spec(input_path: Path, *, geometry: str, charge_model: str, workers: int, tasks_per_job: int,
                template: str = DEFAULT_TEMPLATE) -> dict:
    """The job spec of a screen (a dict in the jobs TOML layout)."""
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry {geometry!r}: expected one of {GEOMETRIES}")
    named_template(template)          # ValueError listing the shipped ones
    steps = [{"name": "assemble", "params": {"relax": "rotate", "template": template}, "resources": {"time_min": 3}}]
    if geometry == "fast":
        steps.append({"name": "xtb_relax", "params": dict(FAST_TIER), "resources": {"time_min": 10}})
    steps.append({"name": "crystal_field", "params": {"charge_model": charge_model}, "resources": {"time_min": 1}})
    return {"campaign": {"name": "screen", "executor": "local"},
            "input": {"path": str(input_path)},
            "resources": {"local_parallelism": workers, "tasks_per_job": tasks_per_job, "array_parallelism": 64},
            "steps": steps}


def _one_row_per_line(campaign_results: Path, spec: dict, out: Path) -> int:
    """Write `out` with one row per input row (in input order) from the campaign's results; returns the rows."""
    from .jobs.spec import load_spec
    from .jobs.tasks import read_inputs, task_ids, template_digest

    parsed = load_spec(spec)
    inputs = read_inputs(parsed.input)
    ids = task_ids(inputs["smiles"].tolist(), parsed.steps, [template_digest(s) for s in parsed.steps])
    computed = store.read_results(campaign_results, ["task_id"])["task_id"].tolist()
    row_of = {tid: k for k, tid in enumerate(computed)}
    rows = [row_of[tid] for tid in ids]
    store.concat_results([(campaign_results, rows)], out, config=spec)
    with h5py.File(out, "r+") as h5:       # repeated lines keep their own names
        names = h5["results/name"]
        names[...] = np.asarray(inputs["name"].astype(str).tolist(), dtype=object)
    return len(rows)


def screen(input_path: str | Path, out: str | Path, *, geometry: str | None = None, charge_model: str | None = None,
           workers: int | None = None, executor: str | None = None, campaign_dir: str | Path | None = None,
           template: str | None = None, quiet: bool = False, config_file: str | Path | None = None) -> Path:
    """Screen every ligand of `input_path` into the results file `out` (see the module docstring); settings not
    given come from `config_file`'s [screen], then the defaults."""
    from . import jobs

    settings = config.load("screen", config_file, overrides={"geometry": geometry, "charge_model": charge_model, "workers": workers,
                                                "executor": executor, "template": template})
    input_path, out = Path(input_path).resolve(), Path(out)
    spec = screen_spec(input_path, geometry=settings["geometry"], charge_model=settings["charge_model"],
                       workers=int(settings["workers"]), tasks_per_job=int(settings["tasks_per_job"]),
                       template=settings["template"])
    campaign_dir = Path(campaign_dir) if campaign_dir else out.with_name(out.name + ".campaign")
    campaign = jobs.submit(spec, campaign_dir, executor=settings["executor"], quiet=quiet)
    campaign.wait(progress=not quiet)
    gathered = jobs.gather(campaign.dir, quiet=quiet)
    n = _one_row_per_line(gathered, spec, out)
    if not quiet:
        table = store.read_results(out, ["status"])
        ok = int((table["status"] == "ok").sum())
        print(f"[screen] {out}: {n} ligands, {ok} screened, {n - ok} failed (status and reason per row)",
              file=sys.stderr)
    return out


def build_parser() -> argparse.ArgumentParser:
    defaults = config.load("screen")
    parser = argparse.ArgumentParser(prog="python -m gauss_hpc.screen", description=__doc__.split("\n\n")[0])
    parser.add_argument("ligands", type=Path, nargs="?",
                        help="SMILES file (.smi/.txt), CSV with a smiles column, or ligands.h5")
    parser.add_argument("--out", type=Path, help="results file (schema of `jobs gather`)")
    parser.add_argument("--reinvent", action="store_true",
                        help="SMILES on standard input, REINVENT 4 ExternalProcess JSON on standard output")
    parser.add_argument("--property", choices=("kd1", "total_splitting", "g_perp"), default="kd1",
                        help="--reinvent: the value given as predictions (default kd1)")
    parser.add_argument("--cache", type=Path, help=f"--reinvent: score cache (default {defaults['reinvent_cache']})")
    parser.add_argument("--geometry", choices=GEOMETRIES, help=f"geometry tier (default {defaults['geometry']})")
    parser.add_argument("--template", help=f"complex template (gauss_hpc/complex_templates.toml; default "
                                           f"{defaults['template']})")
    parser.add_argument("--charge-model", choices=("gasteiger", "xtb"),
                        help=f"crystal-field charges of the free ligand (default {defaults['charge_model']})")
    parser.add_argument("--workers", type=int, help=f"local processes (default {defaults['workers']})")
    parser.add_argument("--executor", choices=("auto", "local", "slurm", "debug"),
                        help=f"where the tasks run (default {defaults['executor']})")
    parser.add_argument("--campaign", type=Path, help="campaign directory (default: next to --out)")
    parser.add_argument("--config", help="TOML file with a [screen] section overriding the defaults")
    add_quiet(parser, "no progress bar or summary")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        defaults = config.load("screen", args.config)
    except (ValueError, OSError) as exc:
        print(f"screen: {exc}", file=sys.stderr)
        return 2
    if args.reinvent:
        from . import reinvent

        if args.ligands or args.out:
            parser.error("--reinvent reads SMILES on standard input and answers on standard output: "
                         "give no LIGANDS file and no --out")
        cache = args.cache or Path(os.path.expanduser(defaults["reinvent_cache"]))
        return reinvent.answer_screen(prop=args.property, cache=cache,
                                      geometry=args.geometry or defaults["geometry"],
                                      charge_model=args.charge_model or defaults["charge_model"],
                                      workers=args.workers, template=args.template or defaults["template"])
    if args.ligands is None or args.out is None:
        parser.error("give a LIGANDS file and --out (or --reinvent)")
    if not args.ligands.is_file():
        print(f"screen: {args.ligands}: no such file (give a .smi, .csv or ligands.h5)", file=sys.stderr)
        return 2
    try:
        screen(args.ligands, args.out, geometry=args.geometry, charge_model=args.charge_model, workers=args.workers,
               executor=args.executor, campaign_dir=args.campaign, template=args.template, quiet=args.quiet,
               config_file=args.config)
    except (ValueError, store.SchemaError) as exc:      # SpecError included: bad input, said once
        print(f"screen: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
