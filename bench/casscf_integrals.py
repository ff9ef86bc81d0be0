"""What the two-electron integral treatment costs in one cheap CASSCF of the reference set, and what it changes.

The reference set's CASSCF (jobs/casscf_reference.toml: ANO-RCC-MB ligands, ANO-RCC-VDZ Dy, 11 sextets) spends a
large part of its time in &GATEWAY/&SEWARD, where RICD builds an atomic-compact Cholesky auxiliary basis for every
atom type, Dy included, again for every complex. Variants (the template's integral keywords; everything else
the same, one core):

  ricd          RICD (the shipped template)
  conventional  no RICD: conventional two-electron integrals
  cholesky      Cholesky decomposition of the integrals (SEWARD's Cholesky keyword) instead of RICD
  ricd_loose    RICD with a looser decomposition threshold (CDThreshold 1e-3; OpenMolcas's default 1e-4)
  ricd_library  RICD with the auxiliary basis read from a shared library (molcas.kd_energies(ricd_library=...),
                abinitio/ricd_library.py) that another complex with the same elements filled (--library-ligand,
                computed first and reported as library_source)

Per variant: wall seconds of the whole CASSCF step and of each OpenMolcas module (from the logs), KD energies and
their largest difference from the ricd variant. One JSON document on stdout.

    python bench/casscf_integrals.py [--ligand "[O-]C"] [--variants ricd conventional cholesky]
    python bench/casscf_integrals.py --variants ricd ricd_library --library-ligand "[O-]CC"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gauss_hpc.abinitio import molcas  # noqa: E402
from gauss_hpc.abinitio.templates import TEMPLATE_DIR  # noqa: E402
from gauss_hpc.chem.complexes import assemble  # noqa: E402

CHEAP = {"basis": "ANO-RCC-MB", "metal_basis": "ANO-RCC-VDZ", "ciroot": 11, "energy_threshold": 1e-6, "cores": 1,
         "memory_mb": 3000}
VARIANTS = {"ricd": ("  RICD\n", "  RICD\n"), "conventional": ("  RICD\n", ""),
            "cholesky": ("  RICD\n", ""), "ricd_loose": ("  RICD\n", "  RICD\n  CDThreshold = 1.0d-3\n"),
            "ricd_library": ("  RICD\n", "  RICD\n")}
MODULE = re.compile(r"--- Start Module: (\w+) at (.+?) ---.*?--- Stop Module: \1 at (.+?) /rc", re.S)


def template_dir(variant: str, root: Path) -> Path:
    """A copy of the shipped templates with the variant's integral keywords."""
    out = root / variant
    shutil.copytree(TEMPLATE_DIR, out)
    path = out / "molcas" / "integrals.inp.j2"
    text = path.read_text()
    old, new = VARIANTS[variant]
    if old not in text:
        raise SystemExit(f"{path}: no {old.strip()!r} line to replace; has the template changed?")
    text = text.replace(old, new)
    if variant == "cholesky":
        text = text.replace("&SEWARD", "&SEWARD\n  Cholesky")
    path.write_text(text)
    return out


def module_seconds(workdir: Path) -> dict[str, float]:
    fmt = "%a %b %d %H:%M:%S %Y"
    out: dict[str, float] = {}
    for log in sorted(workdir.glob("*.log")):
        for name, start, stop in MODULE.findall(log.read_text(errors="replace")):
            seconds = (dt.datetime.strptime(" ".join(stop.split()), fmt)
                       - dt.datetime.strptime(" ".join(start.split()), fmt)).total_seconds()
            out[name] = out.get(name, 0.0) + seconds
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ligand", default="[O-]C")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--library-ligand", default="[O-]CC",
                   help="ricd_library: the complex that fills the library first (same elements as --ligand)")
    args = p.parse_args(argv)
    cx = assemble(args.ligand)
    rows = []
    with tempfile.TemporaryDirectory(prefix="casscf_integrals_") as tmp:
        library = Path(tmp) / "aux_basis_library"
        for variant in args.variants:
            templates = template_dir(variant, Path(tmp))
            runs = [("library_source", assemble(args.library_ligand))] if variant == "ricd_library" else []
            for label, complex_ in runs + [(variant, cx)]:
                workdir = Path(tmp) / f"run_{label}"
                start = time.perf_counter()
                res = molcas.kd_energies(complex_, name=label, workdir=workdir,
                                         template_dir=templates, keep_scratch=False,
                                         ricd_library=str(library) if variant == "ricd_library" else "", **CHEAP)
                rows.append({"variant": label, "status": res.status, "message": res.message[:300],
                             "wall_seconds": round(time.perf_counter() - start, 1),
                             "module_seconds": module_seconds(workdir),
                             "ricd_library_used": bool(res.values.get("ricd_library_used")),
                             "kd_energies": [round(float(e), 2) for e in res.values.get("kd_energies", [])]})
                print(f"[casscf_integrals] {label}: {rows[-1]['status']} {rows[-1]['wall_seconds']} s "
                      f"{rows[-1]['module_seconds']}", file=sys.stderr)
    base = next((r for r in rows if r["variant"] == "ricd" and r["kd_energies"]), None)
    for r in rows:
        if base and r["kd_energies"] and r["variant"] != "library_source":
            r["max_kd_difference_cm"] = round(float(np.max(np.abs(np.subtract(r["kd_energies"],
                                                                              base["kd_energies"])))), 2)
    print(json.dumps({"bench": "casscf_integrals", "date": dt.date.today().isoformat(), "ligand": args.ligand,
                      "library_ligand": args.library_ligand if "ricd_library" in args.variants else None,
                      "settings": CHEAP, "load_average": os.getloadavg()[0], "variants": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
