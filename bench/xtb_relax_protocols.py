"""Which settings make the fast tier's restrained GFN2-xTB relaxation finish: electronic temperature and L-BFGS memory.

The fast geometry tier relaxes [Y(H2O)5L2]+ with GFN2-xTB while restraints hold metal-donor bonds (and angles at
the donor) at DFT values; at 300 K and scipy's default L-BFGS memory (10) some of those relaxations end unconverged
or with an SCF failure (O-bound cyanate, isocyanate), and which one fails changes with hundredths of an Angstrom in
the targets. Each protocol below relaxes every DFT-tier complex of the results files (bench/geometry_tiers.py
reference(): chelates excluded) with three sets of targets:

  class_eq         axial and equatorial bonds at the class means of the other complexes (leave one out)
  class_geometry   the same plus the axial metal-donor-neighbour angles at their class means (xtb.FAST_TIER)
  own_geometry     the complex's own DFT lengths and angles

and reports per protocol how many finished (status ok), the failures by status, the mean L-BFGS steps and seconds,
and how far the finished ones' mean axial distance lies from the same targets relaxed at 300 K with memory 40
(what the temperature itself does to the geometry). Prints one JSON document.

    python bench/xtb_relax_protocols.py campaigns/dft_reference/results.h5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gauss_hpc.abinitio import xtb  # noqa: E402
from gauss_hpc.chem.complexes import Complex  # noqa: E402
from geometry_tiers import distances, held_out, reference  # noqa: E402

PROTOCOLS = {"300K_memory10": (300.0, 10), "300K_memory40": (300.0, 40),
             "1000K_memory40": (1000.0, 40), "3000K_memory40": (3000.0, 40)}
BASELINE = "300K_memory40"


def targets(complexes: list[dict], k: int) -> dict[str, dict]:
    """The relax_complex restraint arguments of complex k for each target set."""
    calibration = held_out(complexes, k)
    c = complexes[k]
    n_eq = len(c["assembled"].equatorial_donors)
    lengths = {"axial_distances": [calibration.distance(c["smiles"])] * 2,
               "equatorial_distances": [calibration.equatorial_distance(c["equatorial_ligand"])] * n_eq}
    return {"class_eq": lengths,
            "class_geometry": {**lengths, "axial_angles": [calibration.angle(c["smiles"])] * 2},
            "own_geometry": {"axial_distances": [c["dft"]] * 2, "equatorial_distances": [c["dft_eq"]] * n_eq,
                             "axial_angles": c["dft_angles"]}}


def run(cx, temperature: float, memory: int, restraints: dict) -> dict:
    xtb.LBFGS_HISTORY = memory          # read by xtb.relax at each call
    start = time.perf_counter()
    res = xtb.relax_complex(cx, electronic_temperature=temperature, **restraints)
    out = {"status": str(res.status), "steps": res.values.get("steps"), "seconds": time.perf_counter() - start,
           "axial": None}
    if res.ok:
        out["axial"] = distances(Complex.from_dict(res.values["complex"]))[0]
    return out


def summary(runs: list[dict], baseline: list[dict]) -> dict:
    ok = [r for r in runs if r["status"] == "ok"]
    failed: dict[str, list[str]] = {}
    for r in runs:
        if r["status"] != "ok":
            failed.setdefault(r["status"], []).append(f"{r['name']}/{r['targets']}")
    shift = [abs(r["axial"] - b["axial"]) for r, b in zip(runs, baseline)
             if r["axial"] is not None and b["axial"] is not None]
    return {"finished": len(ok), "of": len(runs), "failed": failed,
            "mean_steps_finished": round(float(np.mean([r["steps"] for r in ok])), 1) if ok else None,
            "mean_seconds": round(float(np.mean([r["seconds"] for r in runs])), 2),
            "max_seconds": round(float(np.max([r["seconds"] for r in runs])), 1),
            f"max_axial_shift_vs_{BASELINE}_A": round(float(np.max(shift)), 4) if shift else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="DFT-tier results.h5 files")
    args = parser.parse_args(argv)
    complexes, excluded, _ = reference(args.results)
    runs: dict[str, list[dict]] = {name: [] for name in PROTOCOLS}
    for k, c in enumerate(complexes):
        for label, restraints in targets(complexes, k).items():
            for name, (temperature, memory) in PROTOCOLS.items():
                r = run(c["assembled"], temperature, memory, restraints)
                runs[name].append({"name": c["name"], "targets": label, **r})
                print(f"[xtb_relax_protocols] {c['name']} {label} {name}: {r['status']} {r['steps']} steps "
                      f"{r['seconds']:.1f} s", file=sys.stderr)
    report = {"bench": "xtb_relax_protocols", "date": dt.date.today().isoformat(),
              "reference": [str(p) for p in args.results], "complexes": [c["name"] for c in complexes],
              "excluded": [e["name"] for e in excluded],
              "protocols": {name: {"electronic_temperature_K": t, "lbfgs_memory": m,
                                   **summary(runs[name], runs[BASELINE])} for name, (t, m) in PROTOCOLS.items()},
              "runs": {name: [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rs]
                       for name, rs in runs.items()}}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
