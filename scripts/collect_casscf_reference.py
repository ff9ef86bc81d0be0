"""Turn a finished jobs/casscf_reference.toml campaign into the shipped reference set (data/casscf_reference/).

    python scripts/collect_casscf_reference.py CAMPAIGN [--out data/casscf_reference]
    python scripts/collect_casscf_reference.py CAMPAIGN --add --names cyanate isocyanate   # grow the set

With --add the campaign's complexes (all, or --names) join the set already in --out: a row of the same name is
replaced, the others are kept as they are (results.h5 rows with their geometries and step records, csv rows).

Writes results.h5 (`jobs gather`), geometries/<name>.assembled.xyz and .relaxed.xyz, logs/<name>.log (the CASSCF
log trimmed to what gauss_hpc.abinitio.molcas.parse_casscf reads; refused unless the trimmed log parses to the
same KDs, spin-orbit energies and g-tensors as the full one) with the rendered inputs logs/<name>.inp and
<name>.integrals.inp, and reference.csv: per complex the CASSCF KDs, ground g, axial Dy-donor distances and the
wall time of each step.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gauss_hpc import store  # noqa: E402
from gauss_hpc.abinitio import molcas  # noqa: E402
from gauss_hpc.chem.complexes import Complex, ligand_blocks  # noqa: E402
from gauss_hpc.jobs.gather import gather  # noqa: E402

_G_LINE = re.compile(r"^\s*g[XYZ]\s*=\s*-?\d+\.\d+\s*\|")
_KEEP = ("ENERGY OF THE SPIN-ORBIT STATE", "ENERGY OF THE SPIN-FREE STATE",
         "PSEUDOSPIN HAMILTONIAN TENSORS FOR THE MULTIPLET", "Timing: Wall", "Happy landing", "version: v")


def trim(lines: list[str]) -> list[str]:
    """Module start/stop lines, '::' summaries, the RASSCF iteration table, and from SINGLE_ANISO only the lines
    its parser reads (state energies, MLTP groups, each multiplet's heading and g main values)."""
    out, in_table, in_aniso, after_mltp = [], False, False, False
    for line in lines:
        in_aniso = in_aniso or "Start Module: single_aniso" in line
        in_table = in_table or "Iter CI   SX   CI       RASSCF" in line
        keep = (line.startswith(("--- Start Module", "--- Stop Module", "::")) or any(k in line for k in _KEEP)
                or in_table
                or (in_aniso and (line.startswith("MLTP :") or after_mltp or _G_LINE.match(line))))
        after_mltp = in_aniso and line.startswith("MLTP :")
        if keep:
            out.append(line)
        if "onvergence after" in line:
            in_table = False
    return out


def same(a: dict, b: dict) -> bool:
    return all(np.allclose(np.asarray(a[k], float), np.asarray(b[k], float), equal_nan=True, atol=1e-6)
               for k in ("kd_energies", "so_energies", "g_tensors"))


def xyz(symbols, coords, comment: str) -> str:
    rows = [f"{s:<2} {x:14.8f} {y:14.8f} {z:14.8f}" for s, (x, y, z) in zip(symbols, coords)]
    return f"{len(symbols)}\n{comment}\n" + "\n".join(rows) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("campaign")
    p.add_argument("--out", default=str(ROOT / "data" / "casscf_reference"))
    p.add_argument("--add", action="store_true", help="add to the set in --out instead of writing it anew")
    p.add_argument("--names", nargs="+", help="only these complexes of the campaign")
    args = p.parse_args(argv)
    campaign, out = Path(args.campaign), Path(args.out)
    (out / "geometries").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    results = gather(campaign, out / ("results.added.h5" if args.add else "results.h5"))
    table = store.read_results(results)
    unknown = sorted(set(args.names or ()) - set(table["name"]))
    if unknown:
        raise SystemExit(f"{campaign}: no complexes named {unknown}; it has {sorted(table['name'])}")
    chosen = [row for row, name in enumerate(table["name"]) if not args.names or name in args.names]
    rows = [collect(campaign, results, row, table.iloc[row], out) for row in chosen]
    if args.add:
        rows = add_to_set(out, results, chosen, rows)
    elif args.names:
        store.concat_results([(results, chosen)], out / "results.h5", command=" ".join(sys.argv))
    pd.DataFrame(rows).to_csv(out / "reference.csv", index=False)
    print(json.dumps({"results": str(out / "results.h5"), "n_tasks": len(rows),
                      "n_ok": int(sum(r["status"] == "ok" for r in rows))}))
    return 0


def add_to_set(out: Path, added: Path, chosen: list[int], new_rows: list[dict]) -> list[dict]:
    """The set's results.h5 and csv rows with `new_rows` (rows `chosen` of the results file `added`) in place of
    rows of the same name, appended otherwise; `added` is removed."""
    old_csv = pd.read_csv(out / "reference.csv").to_dict("records")
    new_names = {r["name"] for r in new_rows}
    old_table = store.read_results(out / "results.h5")
    kept = [row for row, name in enumerate(old_table["name"]) if name not in new_names]
    store.concat_results([(out / "results.h5", kept), (added, chosen)], out / "results.h5",
                         command=" ".join(sys.argv))
    added.unlink()
    return [r for r in old_csv if r["name"] not in new_names] + new_rows


def collect(campaign: Path, results: Path, row: int, rec, out: Path) -> dict:
    """One complex's csv row; writes its geometries and trimmed log into `out`."""
    kd = store.read_result_arrays(results, ["kd_energies", "g_tensors"])
    name, task_dir = rec["name"], campaign / "tasks" / rec["task_id"]
    item = {"name": name, "smiles": rec["smiles"], "status": rec["status"], "message": rec["message"]}
    assembled = task_dir / "1_assemble" / "complex.xyz"
    if assembled.is_file():
        shutil.copyfile(assembled, out / "geometries" / f"{name}.assembled.xyz")
    shard_path = campaign / "shards" / f"{rec['task_id']}.json"
    steps = {r["step"]: r for r in json.loads(shard_path.read_text())["steps"]} if shard_path.is_file() else {}
    for step in ("assemble", "xtb_relax", "casscf"):
        item[f"wall_s_{step}"] = round(float(steps[step]["wall_seconds"]), 1) if step in steps else np.nan
    relaxed = steps.get("xtb_relax", {})
    symbols, coords = store.read_geometry(results, row)
    if relaxed.get("status") == "ok" and symbols:
        (out / "geometries" / f"{name}.relaxed.xyz").write_text(
            xyz(symbols, coords, f"{name} {rec['smiles']}: GFN2-xTB relaxed (Y analogue), Dy put back"))
        cx = relaxed["values"]["complex"]
        item["axial_donor_distances"] = " ".join(
            f"{np.linalg.norm(np.subtract(coords[i], coords[cx['metal_index']])):.3f}" for i in cx["axial_donors"])
        # the relaxation may change the binding mode (a carboxylate closing to a chelate): per axial ligand,
        # its N/O atoms within 2.6 A of the metal
        dist = np.linalg.norm(np.subtract(coords, coords[cx["metal_index"]]), axis=1)
        blocks = ligand_blocks(Complex.from_dict(cx))[len(cx["equatorial_donors"]):]
        item["axial_denticity"] = " ".join(
            str(sum(dist[i] < 2.6 and symbols[i] in ("N", "O") for i in range(b.start, b.stop))) for b in blocks)
    log = task_dir / "3_casscf" / f"{molcas.safe_name(name)}.log"
    if rec["status"] == "ok" and log.is_file():
        full = molcas.parse_casscf(log, name=name, n_doublets=8)
        trimmed = out / "logs" / log.name
        trimmed.write_text("".join(trim(log.read_text(errors="replace").splitlines(keepends=True))))
        short = molcas.parse_casscf(trimmed, name=name, n_doublets=8)
        if not (full.ok and short.ok and same(full.values, short.values)):
            raise SystemExit(f"{log}: the trimmed log {trimmed} does not parse to the full log's values "
                             f"({full.status} {short.status} {short.message}); fix trim()")
        for suffix in (".inp", ".integrals.inp"):
            source = log.with_name(log.stem + suffix)
            if source.is_file():
                shutil.copyfile(source, out / "logs" / source.name)
        item["program_version"] = full.values["program_version"]
        item.update({f"kd{k}": round(float(kd["kd_energies"][row][k]), 3) for k in range(1, 8)})
        item.update({f"g{a}_ground": round(float(kd["g_tensors"][row][0][i]), 6) for i, a in enumerate("xyz")})
    return item


if __name__ == "__main__":
    sys.exit(main())
