"""How many assembly failures of a template the GFN2-xTB path rescues: the ligands a per-ligand log of
`bench/oracles.py --parts assembly_failures --assembly-log LOG` recorded as failed are assembled again with
relax = "xtb" (molSimplify, the rigid rotations and conformers, then a GFN2-xTB relaxation of the Y analogue);
the failure fraction of the logged draw with that path is (failed - rescued) / tried. Prints one JSON document
(and writes it with --out).

    python bench/assembly_xtb_rescue.py bench/results/assembly_dy_thf5_pbp_2026-12-06.jsonl --template dy_thf5_pbp \
        --record rescue.jsonl [--resume]

Minutes per ligand: --record keeps one line per ligand as it finishes, and --resume takes the ligands already in
the record as done (their lines count in the result), so a run stopped by the end of a session goes on where it
stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gauss_hpc.chem.complexes import AssemblyError, assemble_detailed  # noqa: E402
from gauss_hpc.abinitio.xtb import relax_for_assembly  # noqa: E402
from gauss_hpc.chem.templates import template as named_template  # noqa: E402


def rescue(log: Path, template: str, max_steps: int, record: Path | None, resume: bool = False) -> dict:
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    failed = [r for r in rows if r["path"] == "failed"]
    shape = named_template(template).assemble_params()
    outcomes, seconds = {}, {}
    done = {}
    if resume and record and record.is_file():
        done = {d["smiles"]: d for d in map(json.loads, filter(str.strip, record.read_text().splitlines()))}
    out = open(record, "a" if resume else "w") if record else None
    for row in failed:
        if row["smiles"] in done:
            outcome = done[row["smiles"]]["outcome"]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            seconds[outcome] = seconds.get(outcome, 0.0) + done[row["smiles"]]["seconds"]
            continue
        start = time.perf_counter()
        try:
            built = assemble_detailed(row["smiles"], **shape, relax="xtb", relax_max_steps=max_steps,
                                      relaxer=relax_for_assembly)
            outcome, message = built.path, ""
        except AssemblyError as exc:
            outcome, message = f"failed: {exc.reason}", str(exc)
        took = time.perf_counter() - start
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        seconds[outcome] = seconds.get(outcome, 0.0) + took
        if out:
            out.write(json.dumps({"smiles": row["smiles"], "before": row["reason"], "outcome": outcome,
                                  "message": message[:300], "seconds": round(took, 1)}) + "\n")
            out.flush()
    if out:
        out.close()
    rescued = sum(n for k, n in outcomes.items() if not k.startswith("failed"))
    return {"template": template, "log": str(log), "tried": len(rows), "failed_before": len(failed),
            "rescued_by_xtb": rescued, "outcomes": outcomes,
            "seconds_per_ligand_by_outcome": {k: round(seconds[k] / n, 1) for k, n in outcomes.items()},
            "failure_fraction_before": round(len(failed) / len(rows), 4),
            "failure_fraction_with_xtb": round((len(failed) - rescued) / len(rows), 4),
            "relax_max_steps": max_steps, "cpu_count": os.cpu_count(), "load_average_start": os.getloadavg()[0]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("log", type=Path, help="per-ligand JSON lines of bench/oracles.py --assembly-log")
    p.add_argument("--template", required=True, help="the template that log was assembled into")
    p.add_argument("--max-steps", type=int, default=300, help="GFN2-xTB relaxation steps")
    p.add_argument("--record", type=Path, help="one JSON line per ligand as it finishes")
    p.add_argument("--resume", action="store_true", help="ligands already in --record are done: go on after them")
    p.add_argument("--out", type=Path, help="also write the JSON document here")
    args = p.parse_args()
    result = rescue(args.log, args.template, args.max_steps, args.record, args.resume)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
