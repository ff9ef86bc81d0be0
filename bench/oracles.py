"""Fast local oracles: complex assembly, crystal-field KDs, xTB proxy labels, and one real OpenMolcas LoProp run.

    python bench/oracles.py                       # defaults below
    python bench/oracles.py --ligands 400 --complexes 5000 --skip-loprop
    python bench/oracles.py --assembly-ligands 1000 --assembly-ligands-file qm9_ligands.h5 --skip-loprop
    python bench/oracles.py --parts assembly_failures --assembly-ligands 1000 --template dy_py5_pbp

All rates are per core: one process, one OpenMP thread. The machine's load average is reported because
shared nodes distort wall times. --parts measures only some parts. The last line is one JSON object with
(when every part is measured) at least assembly_per_s,
crystal_field_per_s, xtb_labels_per_s and loprop_seconds (null when gauss_hpc.abinitio.molcas has no
label_ligand or pymolcas is not on PATH), and assembly_failure_fraction over assembly_ligands_tried random
ligands of a ligands file (the bundled QM9 subset unless --assembly-ligands-file says otherwise) with the
default assembly (`relax` = gauss_hpc.chem.complexes.RELAX): the failures by reason class, how many complexes
each path produced and its seconds per complex, and assembly_direct_failure_fraction, the fraction whose
unrelaxed molSimplify geometry fails the checks (all that assembly did before the rotated and xTB paths).
The JSON is also written to bench/results/oracles_<date>.json (--out).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):   # per-core rates: one thread
    os.environ.setdefault(_var, "1")
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gauss_hpc import store  # noqa: E402
from gauss_hpc.abinitio import crystal_field, xtb  # noqa: E402
from gauss_hpc.chem.complexes import AssemblyError, assemble, assemble_detailed  # noqa: E402
from gauss_hpc.chem.templates import DEFAULT as DEFAULT_TEMPLATE, template as named_template  # noqa: E402

# O-, N-, neutral O and N donors, aromatic and aliphatic: the assembly workload of the demo
ASSEMBLY_LIGANDS = ["[O-]C", "[O-]c1ccccc1", "[O-]C(C)=O", "[O-]C(C)(C)C", "[NH-]C", "[n-]1cccc1", "OC",
                    "O=C(C)C", "O1CCCC1", "n1ccccc1", "N#CC", "N1CCCC1"]


def bench_assembly(repeats: int) -> dict:
    assemble("[O-]C")                                   # molSimplify import and its ligand library: once
    times, failed = [], 0
    for _ in range(repeats):
        for smiles in ASSEMBLY_LIGANDS:
            start = time.perf_counter()
            try:
                assemble(smiles)
            except AssemblyError:
                failed += 1
            times.append(time.perf_counter() - start)
    return {"assembly_per_s": len(times) / sum(times), "assembly_seconds_mean": sum(times) / len(times),
            "assembly_count": len(times), "assembly_failed": failed}


def bench_assembly_failures(n_ligands: int, ligands_path: Path, seed: int, log: Path | None = None,
                            template: str = DEFAULT_TEMPLATE) -> dict:
    """Assemble n random ligands of a ligands file (rows drawn without replacement, seeded) into `template`
    (chem/templates.py) with the default relax path; count failures by reason and successes by path, with the
    mean seconds per complex of each. `log`: one JSON line per ligand as it finishes (long runs can be watched
    and read when cut short)."""
    import numpy as np

    shape = named_template(template).assemble_params()

    smiles = store.read_ligands(ligands_path).smiles.tolist()
    rows = np.random.default_rng(seed).choice(len(smiles), min(n_ligands, len(smiles)), replace=False)
    assemble("[O-]C")                                   # imports and molSimplify's library, outside the timing
    reasons, paths, seconds, failed_examples = {}, {}, {}, {}
    direct_failed = 0
    log_file = open(log, "w") if log else None
    for row in rows:
        start = time.perf_counter()
        rejected, reason = [], None
        try:
            built = assemble_detailed(smiles[row], **shape)
            path, rejected = built.path, [f"{p}: {e.reason}" for p, e in built.rejected]
            direct_failed += path != "direct"
        except AssemblyError as exc:
            path, reason = "failed", exc.reason
            direct_failed += 1
            reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
            failed_examples.setdefault(exc.reason, []).append(smiles[row])
        paths[path] = paths.get(path, 0) + 1
        seconds[path] = seconds.get(path, 0.0) + time.perf_counter() - start
        if log_file:
            log_file.write(json.dumps({"row": int(row), "smiles": smiles[row], "path": path, "reason": reason,
                                       "rejected": rejected, "seconds": round(time.perf_counter() - start, 3)}) + "\n")
            log_file.flush()
    if log_file:
        log_file.close()
    return {"assembly_failure_fraction": paths.get("failed", 0) / len(rows), "assembly_ligands_tried": len(rows),
            "assembly_direct_failure_fraction": direct_failed / len(rows),
            "assembly_failure_reasons": reasons, "assembly_paths": paths,
            "assembly_seconds_per_complex_by_path": {p: round(seconds[p] / paths[p], 3) for p in paths},
            "assembly_failed_examples": {r: examples[:5] for r, examples in failed_examples.items()},
            "assembly_ligands_file": str(ligands_path), "assembly_sample_seed": seed, "assembly_template": template}


def bench_crystal_field(n_complexes: int) -> dict:
    complexes = [assemble(s) for s in ASSEMBLY_LIGANDS]
    batch = [complexes[i % len(complexes)] for i in range(n_complexes)]
    crystal_field.kd_energies_many(batch[:10])
    start = time.perf_counter()
    results = crystal_field.kd_energies_many(batch)
    batch_seconds = time.perf_counter() - start
    n_single = min(500, n_complexes)
    start = time.perf_counter()
    for cx in batch[:n_single]:
        crystal_field.kd_energies(cx)
    single_seconds = time.perf_counter() - start
    return {"crystal_field_per_s": n_complexes / batch_seconds, "crystal_field_single_call_per_s":
            n_single / single_seconds, "crystal_field_count": n_complexes,
            "crystal_field_ok": sum(r.ok for r in results)}


def bench_xtb(n_ligands: int, ligands_path: Path) -> dict:
    smiles = store.read_ligands(ligands_path).smiles.tolist()
    step = max(1, len(smiles) // n_ligands)
    sample = smiles[::step][:n_ligands]
    xtb.label_ligand("[O-]C")                           # load tblite/dftd4 and set one OpenMP thread
    start = time.perf_counter()
    results = [xtb.label_ligand(s) for s in sample]
    seconds = time.perf_counter() - start
    return {"xtb_labels_per_s": len(sample) / seconds, "xtb_count": len(sample),
            "xtb_ok": sum(r.ok for r in results), "xtb_ligands": str(ligands_path)}


def bench_loprop() -> dict:
    molcas = importlib.import_module("gauss_hpc.abinitio.molcas")
    if not hasattr(molcas, "label_ligand"):
        return {"loprop_seconds": None, "loprop_note": "gauss_hpc.abinitio.molcas has no label_ligand"}
    if shutil.which("pymolcas") is None:
        return {"loprop_seconds": None, "loprop_note": "pymolcas not on PATH"}
    with tempfile.TemporaryDirectory(prefix="bench-loprop-") as work:
        start = time.perf_counter()
        result = molcas.label_ligand("[O-]C", name="methanolate", workdir=work)
        seconds = time.perf_counter() - start
    if not result.ok:
        return {"loprop_seconds": None, "loprop_note": f"{result.status}: {result.message[:200]}"}
    return {"loprop_seconds": seconds, "loprop_donor_charge": result.values.get("donor_charge")}


PARTS = ["assembly", "assembly_failures", "crystal_field", "xtb", "loprop"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assembly-repeats", type=int, default=2, help="passes over the 12 assembly ligands")
    p.add_argument("--complexes", type=int, default=5000, help="complexes in the crystal-field batch")
    p.add_argument("--ligands", type=int, default=300, help="bundled ligands labelled with xtb")
    p.add_argument("--ligands-file", default=str(ROOT / "data" / "ligands.h5"))
    p.add_argument("--assembly-ligands", type=int, default=200,
                   help="random ligands assembled for the failure fraction")
    p.add_argument("--assembly-ligands-file", default=str(ROOT / "data" / "ligands.h5"),
                   help="ligands file they are drawn from (e.g. a full QM9 build)")
    p.add_argument("--assembly-seed", type=int, default=12, help="seed of the random draw")
    p.add_argument("--assembly-log", default=None, help="one JSON line per random ligand assembled, as it finishes")
    p.add_argument("--template", default=DEFAULT_TEMPLATE,
                   help="complex template of the assembly failure count (gauss_hpc/complex_templates.toml)")
    p.add_argument("--skip-loprop", action="store_true", help="no OpenMolcas run (about 20 s)")
    p.add_argument("--parts", nargs="+", default=PARTS, choices=PARTS, help="what to measure (default: all)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / f"oracles_{time.strftime('%Y-%m-%d')}.json"),
                   help="also write the JSON here")
    args = p.parse_args(argv)
    out = {"cpu_count": os.cpu_count(), "load_average_start": os.getloadavg()[0], "python": platform.python_version()}
    if "assembly" in args.parts:
        out.update(bench_assembly(args.assembly_repeats))
    if "assembly_failures" in args.parts:
        out.update(bench_assembly_failures(args.assembly_ligands, Path(args.assembly_ligands_file), args.assembly_seed,
                                           Path(args.assembly_log) if args.assembly_log else None, args.template))
    if "crystal_field" in args.parts:
        out.update(bench_crystal_field(args.complexes))
    if "xtb" in args.parts:
        out.update(bench_xtb(args.ligands, Path(args.ligands_file)))
    if "loprop" in args.parts:
        out.update({"loprop_seconds": None, "loprop_note": "skipped (--skip-loprop)"} if args.skip_loprop
                   else bench_loprop())
    out["load_average_end"] = os.getloadavg()[0]
    text = json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
