"""`python -m gauss_hpc.jobs <command>` (also `gauss-hpc jobs <command>`)."""

from __future__ import annotations

import argparse
import sys

from .shards import CampaignError
from .spec import SpecError


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be a positive whole number")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gauss_hpc.jobs",
                                description="Ab initio job arrays: submit, status, resubmit, gather, cancel; "
                                            "import existing ORCA/OpenMolcas outputs.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", help="render every task of SPEC and submit those not yet submitted")
    s.add_argument("spec", help="job specification (jobs/*.toml)")
    s.add_argument("--campaign", help="campaign directory (default: [campaign] dir, else campaigns/<name>)")
    s.add_argument("--executor", choices=["auto", "slurm", "local", "debug"], help="override the spec's executor")
    s.add_argument("--input", help="override [input] path (samples.h5, ligands.h5, SMILES file)")
    s.add_argument("--limit", type=int, help="only the first N inputs")
    s.add_argument("--wait", action="store_true", help="wait for the tasks, then gather")
    s.add_argument("--local-workers", type=_positive_int, metavar="N",
                   help="local executor: tasks run at once (default: [resources] local_parallelism, else the CPUs)")
    st = sub.add_parser("status", help="pending / running / done / failed by reason")
    st.add_argument("campaign")
    st.add_argument("--tasks", action="store_true", help="also list every task that is not done")
    r = sub.add_parser("resubmit", help="submit failed tasks again")
    r.add_argument("campaign")
    r.add_argument("--failed", action="store_true", required=True, help="resubmit failed tasks")
    r.add_argument("--reason", action="append", help="only failures with this reason (repeatable)")
    r.add_argument("--time-factor", type=float, default=1.0, help="multiply the time limit")
    r.add_argument("--time-min", type=float, help="minutes per task instead of the steps' times")
    r.add_argument("--mem-gb", type=float, help="memory per job")
    r.add_argument("--executor", choices=["auto", "slurm", "local", "debug"])
    r.add_argument("--local-workers", type=_positive_int, metavar="N",
                   help="local executor: tasks run at once (default: [resources] local_parallelism, else the CPUs)")
    r.add_argument("--wait", action="store_true", help="wait for the tasks, then gather")
    g = sub.add_parser("gather", help="merge the shards into results.h5")
    g.add_argument("campaign")
    g.add_argument("--out", help="output file (default <campaign>/results.h5)")
    g.add_argument("--workers", type=int, help="processes reading the shards (default [jobs] gather_workers)")
    w = sub.add_parser("wait", help="wait until no task is pending or running")
    w.add_argument("campaign")
    w.add_argument("--timeout", type=float)
    c = sub.add_parser("cancel", help="cancel the campaign's pending and running jobs")
    c.add_argument("campaign")
    i = sub.add_parser("import", help="parse existing ORCA/OpenMolcas outputs (files or directory trees) into a "
                                      "results.h5 with gather's schema")
    i.add_argument("paths", nargs="+", metavar="PATH", help="output files or directories (searched recursively)")
    i.add_argument("--out", required=True, help="results file to write")
    i.add_argument("--energies", choices=["casscf", "nevpt2"], default="casscf",
                   help="ORCA QDPT block to read: CASSCF (default) or NEVPT2 diagonal energies")
    return p


def _print_status(campaign, tasks: bool) -> int:
    import pandas as pd

    from .status import status, summary

    table = status(campaign)
    print(summary(table).to_string(index=False))
    if tasks:
        rest = table[table["state"] != "done"][["task_id", "name", "state", "reason", "job_id", "message"]]
        if len(rest):
            with pd.option_context("display.max_colwidth", 80, "display.width", 200):
                print()
                print(rest.to_string(index=False))
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from . import campaign as cp
    from .gather import gather

    try:
        if args.command == "submit":
            c = cp.submit(args.spec, args.campaign, args.executor, input=args.input, limit=args.limit,
                          local_workers=args.local_workers)
            if args.wait:
                c.wait()
                gather(c.dir)
            return _print_status(c.dir, False)
        if args.command == "status":
            return _print_status(args.campaign, args.tasks)
        if args.command == "resubmit":
            c = cp.resubmit(args.campaign, reasons=args.reason, executor=args.executor, time_factor=args.time_factor,
                            time_min=args.time_min, mem_gb=args.mem_gb, local_workers=args.local_workers)
            if args.wait:
                c.wait()
                gather(c.dir)
            return _print_status(c.dir, False)
        if args.command == "gather":
            print(gather(args.campaign, args.out, workers=args.workers))
            return 0
        if args.command == "wait":
            cp.Campaign(args.campaign).wait(timeout=args.timeout)
            return _print_status(args.campaign, False)
        if args.command == "import":
            from .importer import import_outputs

            print(import_outputs(args.paths, args.out, energies=args.energies))
            return 0
        if args.command == "cancel":
            ids = cp.cancel(args.campaign)
            print(f"cancelled {len(ids)} jobs" + (f": {' '.join(ids)}" if ids else ""))
            return 0
    except (SpecError, CampaignError, FileNotFoundError, RuntimeError, TimeoutError) as exc:
        print(f"jobs {args.command}: {exc}", file=sys.stderr)
        return 2
    return 1
