"""Report figures of molecules, shown first: generated ligands beside their seeds, the seeds, the computed complexes
and a 3-D view of the best, ranked by the design target (multireference results first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from . import kd
from .page import Report
from ..abinitio.result import MULTIREFERENCE

TOP_LIGANDS = 24          # generated ligands drawn beside their seeds
MAX_COMPLEXES = 120       # complex cards (a paper-scale campaign has thousands of tasks: the best and failed first)
VIEWS_3D = 2              # 3-D views (each carries its geometry; plotly.js is shared)


def generated_molecules(report: Report, samples: Path, results: pd.DataFrame, ligands_file: Path | None) -> None:
    focus = report.focus
    title = f"Generated ligands beside their seeds, {focus.best_first}"
    table = kd.ranked(samples, results, focus)
    if table.empty:
        return report.skip(title, f"{samples} holds no novel unique ligand")
    from . import molecules

    shown = table.head(TOP_LIGANDS)
    said = ", ".join(f"{(shown['method'] == m).sum()} {kd.METHODS[m]}" for m in kd.METHODS
                     if (shown["method"] == m).any()) or f"no {focus.name} known: ordered by times generated"
    report.add(title, molecules.generated_cards(table, kd.seeds(samples, ligands_file, focus), TOP_LIGANDS,
                                                focus),
               f"{len(shown)} of {len(table)} novel unique ligands, the CASSCF-computed first, then crystal-field, "
               f"then predicted, each {focus.best_first} ({said}); the method is written on each drawing; the "
               f"donor atom (bound to the metal) is highlighted; the seed is drawn on the left with its labelled "
               f"{focus.name} ({focus.kd_label})")


def seed_molecules(report: Report, samples: Path, ligands_file: Path | None) -> None:
    title = "Seeds of the sampling run"
    seeds = kd.seeds(samples, ligands_file, report.focus)
    if seeds.empty:
        return report.skip(title, f"{samples} has no seeds")
    from . import molecules

    counts = kd.generated(samples, report.focus)["seed_id"].value_counts()
    report.add(title, molecules.seed_cards(seeds, counts, report.focus),
               f"{report.focus.name}: from the crystal-field label {report.focus.kd_label} of the ligands file")


def complex_order(results: pd.DataFrame, focus: kd.Focus) -> pd.DataFrame:
    """Multireference results first (CASSCF or NEVPT2 from OpenMolcas, ORCA or imported outputs: the method their
    backend declared), then finished before failed, each best first in the target's direction."""
    multireference = results["kd_method"].isin(MULTIREFERENCE) if "kd_method" in results else \
        pd.Series(False, index=results.index)
    value = results["target"] if "target" in results else pd.Series(np.nan, results.index)
    return results.assign(_casscf=~multireference, _failed=results["status"] != "ok",
                          _value=focus.sort_key(value)) \
        .sort_values(["_casscf", "_failed", "_value"], kind="stable").drop(columns=["_casscf", "_failed", "_value"])


def complex_molecules(report: Report, results: pd.DataFrame) -> None:
    from . import molecules

    focus = report.focus
    shown = complex_order(results, focus).head(MAX_COMPLEXES)
    report.add("Computed complexes", molecules.complex_cards(shown, focus),
               f"{len(shown)} of {len(results)} tasks ({', '.join(results['campaign'].unique())}): the axial ligand "
               f"of each complex, CASSCF first, then {focus.best_first}; red: failed or unfinished")


def complex_views(report: Report, results: pd.DataFrame) -> None:
    title = "3-D view of computed complexes"
    focus = report.focus
    finished = complex_order(results[results["status"] == "ok"], focus)
    if finished.empty:
        return report.skip(title, "no finished complex")
    from . import interactive

    views = []
    for _, row in finished.iterrows():
        symbols, coords = store.read_geometry(row["results_file"], int(row["results_row"]))
        if symbols:
            method = kd.METHODS.get(row.get("kd_method", ""), row["kd_step"])
            value = f", {focus.name} {focus.format(row['target'])} ({method})" if pd.notna(row.get("target")) else ""
            axis = np.array([row.get(f"ground_axis_{a}", np.nan) for a in "xyz"], float)
            views.append(interactive.complex_3d(
                symbols, coords, f"{row['name']}: {row['smiles']}{value}",
                main_axis=axis if np.isfinite(axis).all() else None, main_g=row.get("ground_g3", np.nan)))
        if len(views) == VIEWS_3D:
            break
    if not views:
        return report.skip(title, "the finished tasks carry no geometry")
    report.add(title, "".join(views), f"final geometries, the CASSCF-computed first, then {focus.best_first}; "
               "drag to rotate. "
               "Orange: the ground Kramers doublet's main magnetic axis (the gZ direction) through Dy, from "
               "SINGLE_ANISO (CASSCF) or the crystal-field g-tensor, whichever gave the KDs", plotly=True)
