"""How close the fast geometry tier comes to the DFT tier: axial metal-donor distances of [Dy(H2O)5L2]+.

Reference: finished rows of DFT-tier results files (jobs/dft_reference.toml: BP86-D3(BJ)/def2-SVP optimisation of
the Y analogue, gauss_hpc.abinitio.pyscf_dft). For each of those ligands the complex is assembled again and relaxed
by each fast variant; the score is the mean |d(fast) - d(DFT)| of the mean axial metal-donor distance, overall and
per donor class, with the seconds each variant took per complex:

  assembled            molSimplify's rigid geometry (no relaxation)
  gfn2                 GFN2-xTB relaxation of the Y analogue (the reference set's old path)
  gfn1                 the same with GFN1-xTB
  gfn2_class_loo       GFN2-xTB with each axial bond restrained to the mean DFT distance of its donor class, the
                       class means fitted on the other complexes only (leave one out: never scored on its own data)
  gfn2_class_eq_loo    the same with each equatorial bond also restrained, to the mean equatorial DFT distance of
                       the other complexes (GFN2-xTB puts the equatorial waters about 0.1 A too far out)
  gfn2_class_geometry_loo  the fast tier (xtb.FAST_TIER): axial and equatorial bonds and the axial metal-donor-
                       neighbour angles (xtb.donor_neighbour) at the means of the other complexes (leave one out)
  gfn2_own_lengths     a ceiling, not a tier (in-sample): the axial and equatorial bonds restrained to the complex's
                       own DFT lengths; what is left is what GFN2-xTB gets wrong besides those seven distances
  gfn2_own_geometry    a ceiling too: the same plus each axial metal-donor-neighbour angle restrained to the
                       complex's own DFT angle (xtb.donor_neighbour)
  gfn2_own_trans       and the axial donor-metal-donor angle at its DFT value as well
  gfn2_offset_loo      GFN2-xTB's own distance plus the mean DFT - GFN2-xTB offset of its donor class (leave one
                       out): keeps GFN2-xTB's differences between ligands of one class, which a class mean erases
                       (the distance of the DFT geometries ranks KD1 within the anions; issue 26). Scored on the
                       distance only; as a geometry it is the restrained relaxation to that length.

The restrained variants relax at the fast tier's electronic temperature (xtb.FAST_TIER), gfn2 and gfn1 at 300 K.
Each variant is scored on the mean axial distance (the target) and, beside it, on the mean equatorial distance.
--casscf also runs the campaign's own CASSCF step (its params from campaign.json next to the results file) on the
geometries of the variants named by --casscf-variants and compares their KD1 with the KD1 the campaign computed on
the DFT geometry: what a geometry error costs in the quantity the screen ranks (minutes per complex and variant).

A DFT complex in which a ligand binds through a second N/O/S/halogen atom (nitrite chelating through both O after
relaxation: more than seven such atoms within bonding distance of the metal, chem.descriptors.metal_contacts) is
not the monodentate complex the fast tier models: it is listed under "excluded" with its contacts and neither
scored nor fitted. Contacts with carbon (a strongly bent M-O-C, as in O-bound cyanate) are reported, not excluded.

--write-calibration also fits the class means on every complex kept and writes gauss_hpc/donor_distances.json (the
fast tier's shipped calibration) with the complexes it came from. Prints one JSON document.

    python bench/geometry_tiers.py campaigns/dft_reference/results.h5 [--write-calibration] [--casscf]
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

from gauss_hpc.abinitio import xtb  # noqa: E402
from gauss_hpc.chem import donor_distances as dd  # noqa: E402
from gauss_hpc.chem.complexes import assemble  # noqa: E402
from gauss_hpc import store  # noqa: E402
from gauss_hpc.abinitio.constants import LANTHANIDES  # noqa: E402
from gauss_hpc.chem.descriptors import metal_contacts, structural_descriptors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def broad_class(smiles: str) -> str:
    """anionic/neutral x O/N: the four classes the issue's target is judged by."""
    cls = dd.donor_class(smiles)
    return ("anionic " if "-" in cls else "neutral ") + cls[0]


def distances(cx) -> tuple[float, float]:
    """(mean axial, mean equatorial) metal-donor distance of a complex."""
    d = structural_descriptors(cx)
    return d["axial_distance_mean"], d["equatorial_distance_mean"]


def axial_angles(cx) -> list[float]:
    """The metal-donor-neighbour angle (degrees) at each axial donor (xtb.donor_neighbour)."""
    out = []
    for donor in cx.axial_donors:
        u = cx.coords[cx.metal_index] - cx.coords[donor]
        v = cx.coords[xtb.donor_neighbour(cx, donor)] - cx.coords[donor]
        out.append(float(np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))))
    return out


def relaxed(cx, axial_distances=None, equatorial_distances=None, method: str = "GFN2-xTB", angles=None, trans=None,
            temperature: float = 300.0):
    """(mean axial distance, mean equatorial distance, seconds, relaxed complex or None)."""
    from gauss_hpc.chem.complexes import Complex

    start = time.perf_counter()
    res = xtb.relax_complex(cx, axial_distances=axial_distances, equatorial_distances=equatorial_distances,
                            axial_angles=angles, trans_angle=trans, method=method,
                            electronic_temperature=temperature)
    seconds = time.perf_counter() - start
    if not res.ok:
        return float("nan"), float("nan"), seconds, None
    out = Complex.from_dict(res.values["complex"])
    return (*distances(out), seconds, out)


def dft_complex(path: Path, row: int, assembled):
    """The DFT geometry of a results row with the roles of a fresh assembly of the same ligand (same atom order:
    the campaign assembled it the same way; checked by element)."""
    import dataclasses

    symbols, coords = store.read_geometry(path, row)
    if [s for s in symbols if s not in METALS] != [s for s in assembled.symbols if s not in METALS]:
        raise SystemExit(f"{path} row {row}: the DFT geometry's atoms are not in the order of a fresh assembly")
    return dataclasses.replace(assembled, coords=np.asarray(coords, float))


def casscf_kd1(cx, params: dict, workdir: Path) -> float:
    from gauss_hpc.abinitio import molcas

    res = molcas.kd_energies(cx, name=cx.name, workdir=workdir, **params)
    return float(res.values["kd_energies"][1]) if res.ok else float("nan")


FAST_TEMPERATURE = xtb.FAST_TIER["electronic_temperature"]    # the calibrated variants relax as the fast tier
METALS = ("Y", *LANTHANIDES)          # the metal of a DFT-tier geometry: the Y analogue or a lanthanide


def contacts_by_name(path: Path) -> dict[str, list[tuple[str, float]]]:
    """{task name: [(element, distance), ...] of the heavy atoms bonded to the metal} of each row's final geometry."""
    out = {}
    names = store.read_results(path, ["name"])["name"]
    for row, name in enumerate(names):
        symbols, coords = store.read_geometry(path, row)
        metal = next((i for i, symbol in enumerate(symbols) if symbol in METALS), None)
        if metal is None:
            continue
        coords = np.asarray(coords, float)
        out[name] = [(symbols[i], round(float(np.linalg.norm(coords[i] - coords[metal])), 3))
                     for i in metal_contacts(symbols, coords, metal)]
    return out


def chelated(contacts: list[tuple[str, float]]) -> bool:
    """More than the seven donors of [M(eq)5L2] among the metal's non-carbon contacts."""
    return sum(element != "C" for element, _ in contacts) > 7


def scores(rows: list[dict], variant: str) -> dict:
    err = np.array([r[variant] - r["dft"] for r in rows])
    eq = np.array([r.get(f"{variant}_eq", np.nan) - r["dft_eq"] for r in rows])
    out = {"n": int(np.isfinite(err).sum()), "mean_abs_error": round(float(np.nanmean(np.abs(err))), 4),
           "mean_signed_error": round(float(np.nanmean(err)), 4),
           "max_abs_error": round(float(np.nanmax(np.abs(err))), 4),
           "equatorial_mean_abs_error": round(float(np.nanmean(np.abs(eq))), 4) if np.isfinite(eq).any() else None,
           "equatorial_mean_signed_error": round(float(np.nanmean(eq)), 4) if np.isfinite(eq).any() else None,
           "seconds_per_complex": round(float(np.mean([r[f"{variant}_s"] for r in rows])), 2)}
    kd1 = np.array([r.get(f"{variant}_kd1", np.nan) - r.get("dft_kd1", np.nan) for r in rows])
    if np.isfinite(kd1).any():
        out["kd1_mean_abs_error_cm"] = round(float(np.nanmean(np.abs(kd1))), 1)
        out["kd1_mean_signed_error_cm"] = round(float(np.nanmean(kd1)), 1)
    for cls in sorted({r["class"] for r in rows}):
        e = np.array([r[variant] - r["dft"] for r in rows if r["class"] == cls])
        out[cls] = {"n": int(np.isfinite(e).sum()), "mean_abs_error": round(float(np.nanmean(np.abs(e))), 4),
                    "mean_signed_error": round(float(np.nanmean(e)), 4)}
    return out


def reference(paths: list[Path]) -> tuple[list[dict], list[dict], dict]:
    """(complexes, excluded, carbon contacts) of DFT-tier results files: per kept complex its name, smiles, mean
    axial DFT distance ("dft"), results file and row ("where"), a fresh assembly ("assembled", "assembly_s") and
    the DFT geometry on its atoms ("dft_geometry"), the mean equatorial DFT distance ("dft_eq"), the equatorial
    ligand and the DFT metal-donor-neighbour angles ("dft_angles")."""
    complexes, excluded, carbon_contacts = [], [], {}
    for path in paths:
        contacts = contacts_by_name(path)
        row_of = {name: row for row, name in enumerate(store.read_results(path, ["name"])["name"])}
        for name, smi, d in zip(*dd.axial_distances_of(path)):
            if chelated(contacts.get(name, [])):
                excluded.append({"name": name, "smiles": smi, "dft": round(float(d), 4), "reason": "chelated",
                                 "metal_contacts": contacts[name]})
                continue
            if any(element == "C" for element, _ in contacts.get(name, [])):
                carbon_contacts[name] = [c for c in contacts[name] if c[0] == "C"]
            start = time.perf_counter()
            cx = assemble(smi, relax="rotate")
            seconds = time.perf_counter() - start
            geometry = dft_complex(path, row_of[name], cx)
            complexes.append({"name": name, "smiles": smi, "dft": float(d), "where": (path, row_of[name]),
                              "assembled": cx, "assembly_s": seconds, "dft_geometry": geometry,
                              "dft_eq": distances(geometry)[1],
                              "equatorial_ligand": cx.equatorial_smiles[0] if cx.equatorial_smiles else "O",
                              "dft_angles": axial_angles(geometry)})
    return complexes, excluded, carbon_contacts


def held_out(complexes: list[dict], k: int) -> dd.Calibration:
    """The calibration fitted on every complex of `reference()` but the k-th (leave one out)."""
    others = [c for j, c in enumerate(complexes) if j != k]
    return dd.fit([c["smiles"] for c in others], [c["dft"] for c in others],
                  equatorial=([c["equatorial_ligand"] for c in others], [c["dft_eq"] for c in others]),
                  angles=[float(np.mean(c["dft_angles"])) for c in others])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="DFT-tier results.h5 files")
    parser.add_argument("--write-calibration", action="store_true",
                        help="fit the class means on every complex into gauss_hpc/donor_distances.json")
    parser.add_argument("--casscf", action="store_true",
                        help="the campaign's CASSCF on the variants' geometries; KD1 against the DFT geometry's")
    parser.add_argument("--casscf-variants", nargs="+", default=["gfn2", "gfn2_class_loo", "gfn2_class_eq_loo"])
    args = parser.parse_args(argv)

    complexes, excluded, carbon_contacts = reference(args.results)
    names = [c["name"] for c in complexes]
    smiles = [c["smiles"] for c in complexes]
    dft = [c["dft"] for c in complexes]
    where = [c["where"] for c in complexes]
    assembled = [c["assembled"] for c in complexes]
    assembly_seconds = [c["assembly_s"] for c in complexes]
    dft_geometries = [c["dft_geometry"] for c in complexes]
    dft_eq = [c["dft_eq"] for c in complexes]
    water = [[c["equatorial_ligand"]] for c in complexes]
    rows, geometries = [], []
    for k, (name, smi, d_dft, cx) in enumerate(zip(names, smiles, dft, assembled)):
        row = {"name": name, "smiles": smi, "class": broad_class(smi), "donor_class": dd.donor_class(smi),
               "dft": round(d_dft, 4), "dft_eq": round(dft_eq[k], 4), "assembled_s": assembly_seconds[k]}
        row["assembled"], row["assembled_eq"] = distances(cx)
        made = {"assembled": cx}
        row["gfn2"], row["gfn2_eq"], row["gfn2_s"], made["gfn2"] = relaxed(cx)
        row["gfn1"], row["gfn1_eq"], row["gfn1_s"], made["gfn1"] = relaxed(cx, method="GFN1-xTB")
        calibration = held_out(complexes, k)
        for variant, equatorial, angles in (("gfn2_class_loo", False, False), ("gfn2_class_eq_loo", True, False),
                                            ("gfn2_class_geometry_loo", True, True)):
            try:
                axial = [calibration.distance(smi)] * 2
                eq = [calibration.equatorial_distance(water[k][0])] * len(cx.equatorial_donors) if equatorial else None
                at = [calibration.angle(smi)] * 2 if angles else None
            except KeyError:
                row[variant] = row[f"{variant}_eq"] = float("nan")
                row[f"{variant}_s"], made[variant] = 0.0, None
                continue
            row[variant], row[f"{variant}_eq"], row[f"{variant}_s"], made[variant] = \
                relaxed(cx, axial, eq, angles=at, temperature=FAST_TEMPERATURE)
        own = [dft_eq[k]] * len(cx.equatorial_donors)
        row["gfn2_own_lengths"], row["gfn2_own_lengths_eq"], row["gfn2_own_lengths_s"], made["gfn2_own_lengths"] = \
            relaxed(cx, [d_dft] * 2, own, temperature=FAST_TEMPERATURE)
        row["dft_angles"] = [round(a, 1) for a in complexes[k]["dft_angles"]]
        row["gfn2_angles"] = [round(a, 1) for a in axial_angles(made["gfn2"])] if made["gfn2"] else None
        row["gfn2_own_geometry"], row["gfn2_own_geometry_eq"], row["gfn2_own_geometry_s"], \
            made["gfn2_own_geometry"] = relaxed(cx, [d_dft] * 2, own, angles=complexes[k]["dft_angles"],
                                                  temperature=FAST_TEMPERATURE)
        trans = structural_descriptors(dft_geometries[k])["axial_angle"]
        row["dft_trans_angle"] = round(trans, 1)
        if made["gfn2"] is not None:
            row["gfn2_trans_angle"] = round(structural_descriptors(made["gfn2"])["axial_angle"], 1)
        row["gfn2_own_trans"], row["gfn2_own_trans_eq"], row["gfn2_own_trans_s"], made["gfn2_own_trans"] = \
            relaxed(cx, [d_dft] * 2, own, angles=complexes[k]["dft_angles"], trans=trans, temperature=FAST_TEMPERATURE)
        rows.append(row)
        geometries.append(made)
        print(f"[geometry_tiers] {name}: DFT {d_dft:.3f}/{dft_eq[k]:.3f}  xTB {row['gfn2']:.3f}/{row['gfn2_eq']:.3f}"
              f"  calibrated {row['gfn2_class_eq_loo']:.3f}/{row['gfn2_class_eq_loo_eq']:.3f}", file=sys.stderr)
    if args.casscf:
        add_casscf(rows, geometries, where, args.casscf_variants)
    offsets = [r["dft"] - r["gfn2"] for r in rows]
    for k, row in enumerate(rows):
        others = [j for j in range(len(rows)) if j != k and np.isfinite(offsets[j])]
        try:
            offset_fit = dd.fit([rows[j]["smiles"] for j in others], [offsets[j] for j in others])
            row["gfn2_offset_loo"] = row["gfn2"] + offset_fit.distance(row["smiles"])
        except KeyError:
            row["gfn2_offset_loo"] = float("nan")
        row["gfn2_offset_loo_s"] = row["gfn2_s"]
    report = {"bench": "geometry_tiers", "date": dt.date.today().isoformat(),
              "reference": [str(p) for p in args.results], "n_complexes": len(rows), "excluded": excluded,
              "carbon_contacts": carbon_contacts,
              "variants": {v: scores(rows, v) for v in ("assembled", "gfn2", "gfn1", "gfn2_class_loo",
                                                         "gfn2_class_eq_loo", "gfn2_class_geometry_loo",
                                                         "gfn2_own_lengths",
                                                         "gfn2_own_geometry", "gfn2_own_trans",
                                                         "gfn2_offset_loo")},
              "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]}
    if args.write_calibration:
        source = {"fitted_on": names, "reference": [str(p) for p in args.results],
                  "method": "BP86-D3(BJ)/def2-SVP (PySCF+geomeTRIC), Y analogue", "date": report["date"],
                  "bench": "bench/geometry_tiers.py"}
        fitted = dd.fit(smiles, dft, equatorial=([w[0] for w in water], dft_eq),
                        angles=[float(np.mean(c["dft_angles"])) for c in complexes], source=source)
        path = ROOT / "gauss_hpc" / dd.CALIBRATION
        path.write_text(json.dumps(fitted.to_dict(), indent=1) + "\n")
        report["calibration_written"] = str(path.relative_to(ROOT))
    print(json.dumps(_finite(report), indent=1))
    return 0


def add_casscf(rows: list[dict], geometries: list[dict], where: list, variants: list[str]) -> None:
    """KD1 of the campaign's CASSCF step on each variant's geometry (`<variant>_kd1`) beside the KD1 it computed on
    the DFT geometry (`dft_kd1`)."""
    import tempfile

    for row, made, (path, index) in zip(rows, geometries, where):
        spec = json.loads((path.parent / "campaign.json").read_text())["spec"]
        params = next(step["params"] for step in spec["steps"] if step["name"] == "casscf")
        kd = store.read_result_arrays(path, ["kd_energies"])["kd_energies"]
        row["dft_kd1"] = float(kd[index][1]) if np.isfinite(kd[index][1]) else float("nan")
        for variant in variants:
            cx = made.get(variant)
            with tempfile.TemporaryDirectory(prefix="geometry_tiers_casscf_") as tmp:
                row[f"{variant}_kd1"] = casscf_kd1(cx, params, Path(tmp)) if cx is not None else float("nan")
            print(f"[geometry_tiers] {row['name']} {variant}: KD1 {row[f'{variant}_kd1']:.0f} cm-1 "
                  f"(DFT geometry {row['dft_kd1']:.0f})", file=sys.stderr)


def _finite(obj):
    """NaN (no complex to score) as JSON null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return None if isinstance(obj, float) and not np.isfinite(obj) else obj


if __name__ == "__main__":
    sys.exit(main())
