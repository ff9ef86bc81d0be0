"""Results become labels: what a campaign computed goes back into a ligands file for the next training round.

    python -m gauss_hpc.label merge campaigns/x/results.h5 [more results.h5 ...] --ligands ligands.h5 [--replace]

Per finished task (status ok) the ligand is found by its identity (the canonical key that travelled from
samples.h5 through the campaign's task into results.h5, with the donor: chem.ligands.ligand_key), or appended to /ligands with its provenance (round,
seed, σ, batch, source file and row, campaign, task) in the /generated table. Its values become labels named by
the backend that computed them (abinitio/values.py: cf_kd_gaps (n, 7) and cf_kd_descriptors (n, 6), the
structural descriptors of the complex the KDs were computed on, which the KD head needs; molcas_kd_gaps,
orca_kd_gaps, molcas_donor_charge, ...), so that backends never overwrite each other. A value already in the
file is kept (and counted as a conflict when it differs) unless --replace. Failed tasks add nothing and are
counted by status. A results file merged before (same content hash, recorded in /merges) changes nothing, so
merging twice is merging once. The ligands file is rewritten atomically: a reader (or a killed merge) sees the
old file or the new one.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .cli import deprecated
from . import store
from .abinitio import values as value_schema

log = logging.getLogger("gauss_hpc.merge")
# /generated: `row` is the ligand's row in this file; ligand_row and the rest are where it came from.
GENERATED_COLUMNS = ("row", "smiles", *store.LIGAND_PROVENANCE, "results_file", "campaign", "task_id")
MERGE_COLUMNS = ("content_sha256", "results_file", "campaign", "merged_at", "summary")


@dataclass
class Plan:
    """What a merge will change, before anything is written."""
    n_before: int
    appended: list[dict] = field(default_factory=list)                 # new /ligands rows
    generated: list[dict] = field(default_factory=list)                # their provenance
    values: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)   # label -> {ligand row: value}
    attrs: dict[str, dict] = field(default_factory=dict)               # label -> attrs
    merges: list[dict] = field(default_factory=list)                   # /merges rows to add
    counts: Counter = field(default_factory=Counter)


def results_digest(path: Path) -> str:
    """The content hash gather records (the same campaign state gives the same hash), else the file's own."""
    with h5py.File(path, "r") as h5:
        digest = h5.attrs.get("content_sha256")
    return str(digest) if digest else store.file_sha256(path)


def read_table_or_empty(path: Path, name: str) -> pd.DataFrame:
    with store.open_checked(path, "ligands") as h5:
        return store.read_table(h5[name]) if name in h5 else pd.DataFrame()


def _kd_backends(path: Path, table: pd.DataFrame) -> list[str]:
    """Per row, the backend of the step that gave its KD energies (`kd_step`); the row's backend otherwise."""
    with store.open_checked(path, "results") as h5:
        steps = store.read_table(h5["steps"]) if "steps" in h5 and h5["steps"].attrs.get("n_rows", 0) else None
    lookup = {} if steps is None else {(t, s): b for t, s, b in zip(steps["task_id"], steps["step"], steps["backend"])}
    return [lookup.get((t, s), b) for t, s, b in zip(table["task_id"], table["kd_step"], table["backend"])]


def _key(smiles: str) -> str:
    """Where a result goes: the ligand's molecule AND donor (chem.ligands.ligand_key); the canonical novelty key
    that travels with the task names the molecule only, and a molecule can bind through several atoms."""
    from .chem.ligands import identity_or_empty

    return identity_or_empty(smiles, donor=True)


def _ligand_row(smiles: str, canonical: str, task_id: str) -> dict:
    """A /ligands row for a generated ligand (donor written first, as the decoder writes it)."""
    from rdkit import Chem

    from .chem.ligands import parse_molecule

    mol = parse_molecule(smiles)
    donor = mol.GetAtomWithIdx(0)
    return {"smiles": smiles, "canonical": canonical, "charge": Chem.GetFormalCharge(mol),
            "donor_element": donor.GetSymbol(), "donor_z": donor.GetAtomicNum(), "donor_index": 0,
            "parent_id": f"task:{task_id}", "source": "generated"}


def _row_values(row, kd_gaps: np.ndarray | None, ground_g: np.ndarray | None, backend: str,
                scalar_backend: str) -> dict[str, np.ndarray]:
    """{label name: value} one finished task gives (KD labels named with the complex's template)."""
    out = {}
    if kd_gaps is not None and np.isfinite(kd_gaps).all():
        gaps_name = value_schema.label_name(backend, value_schema.KD_GAPS, str(row.get("template") or ""))
        out[gaps_name] = np.asarray(kd_gaps, float)
        descriptors = np.asarray([row.get(d, np.nan) for d in value_schema.DESCRIPTOR_NAMES], float)
        if np.isfinite(descriptors).all():
            out[value_schema.kd_descriptor_label(gaps_name)] = descriptors
        if ground_g is not None and np.isfinite(ground_g).all():
            out[value_schema.ground_g_label(gaps_name)] = np.asarray(ground_g, float)
    for quantity in value_schema.ligand_labels():
        value = row.get(quantity)
        if value is not None and np.isfinite(value):
            out[value_schema.label_name(scalar_backend, quantity)] = np.asarray(float(value))
    return out


def plan_merge(results: list[Path], into: Path) -> Plan:
    ligands = store.read_ligands(into)
    plan = Plan(n_before=len(ligands))
    index: dict[str, int] = {}              # ligand key (molecule and donor) -> row
    for row, smiles in enumerate(ligands["smiles"]):
        index.setdefault(_key(smiles), row)
    done = set(read_table_or_empty(into, "merges").get("content_sha256", []))
    for path in results:
        path = Path(path)
        digest = results_digest(path)
        if digest in done:
            log.info("%s: merged into %s before (content %s): nothing to do", path, into, digest[:12])
            plan.counts["files_merged_before"] += 1
            continue
        done.add(digest)
        table = store.read_results(path)
        arrays = store.read_result_arrays(path, (value_schema.KD_GAPS, "g_tensors"))
        gaps, g_tensors = arrays.get(value_schema.KD_GAPS), arrays.get("g_tensors")
        backends = _kd_backends(path, table)
        with h5py.File(path, "r") as h5:
            campaign = str(h5.attrs.get("campaign", ""))
        file_counts = Counter()
        for i, row in enumerate(table.to_dict("records")):
            if row["status"] != "ok":
                file_counts[f"failed_{row['status']}"] += 1
                continue
            canonical = str(row.get("canonical") or "")
            if not canonical:
                file_counts["ok_without_identity"] += 1     # e.g. imported outputs: no ligand SMILES
                continue
            kd = gaps[i] if gaps is not None and row.get("kd_step") else None
            ground_g = g_tensors[i, 0] if kd is not None and g_tensors is not None else None
            values = _row_values(row, kd, ground_g, backends[i], row["backend"])
            if not values:
                file_counts["ok_without_values"] += 1
                continue
            key = _key(row["smiles"])
            if not key:
                file_counts["ok_unreadable_smiles"] += 1
                continue
            ligand_row = index.get(key)
            if ligand_row is None:
                ligand_row = plan.n_before + len(plan.appended)
                try:
                    plan.appended.append(_ligand_row(row["smiles"], canonical, row["task_id"]))
                except ValueError as exc:
                    file_counts["ok_unreadable_smiles"] += 1
                    log.warning("%s: task %s: %s: not merged", path, row["task_id"], exc)
                    continue
                index[key] = ligand_row
                plan.generated.append({"row": ligand_row, "smiles": row["smiles"],
                                       **{k: store.provenance_value(k, row.get(k)) for k in store.LIGAND_PROVENANCE},
                                       "results_file": str(path.resolve()), "campaign": campaign,
                                       "task_id": row["task_id"]})
                file_counts["ligands_appended"] += 1
            for name, value in values.items():
                plan.values.setdefault(name, {}).setdefault(ligand_row, value)   # the first result of a run wins
                plan.attrs.setdefault(name, {"method": backends[i] if "kd" in name else row["backend"],
                                             "source": "gauss_hpc.merge"})
            file_counts["tasks_merged"] += 1
        plan.counts.update(file_counts)
        plan.merges.append({"content_sha256": digest, "results_file": str(path.resolve()), "campaign": campaign,
                            "merged_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "summary": json.dumps(dict(file_counts), sort_keys=True)})
    return plan


def _extended(values: np.ndarray, mask: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    grow = n - len(mask)
    if grow <= 0:
        return values.copy(), mask.copy()
    return (np.concatenate([values, np.full((grow,) + values.shape[1:], np.nan)]),
            np.concatenate([mask, np.zeros(grow, bool)]))


def _units(name: str) -> str:
    for quantity, unit in {**value_schema.ligand_labels(), value_schema.KD_GAPS: "cm-1",
                           value_schema.GROUND_G: "1"}.items():
        if name.endswith(quantity):
            return unit
    return "mixed"


def apply_plan(plan: Plan, into: Path, *, replace: bool) -> dict:
    """Write the plan into a copy of the ligands file and rename it into place; returns the label counts."""
    n = plan.n_before + len(plan.appended)
    existing = store.read_labels(into)
    changed: dict[str, tuple[np.ndarray, np.ndarray, dict]] = {}
    counts = Counter()
    for name, by_row in plan.values.items():
        width = np.shape(next(iter(by_row.values())))
        if name in existing:
            values, mask = _extended(*existing[name], n)
            if values.shape[1:] != width:
                raise store.SchemaError(f"{into}: label {name!r} has shape {values.shape[1:]} per ligand, the "
                                        f"results give {width}; merge into another ligands file")
        else:
            values, mask = np.full((n,) + width, np.nan), np.zeros(n, bool)
        for row, value in by_row.items():
            if mask[row] and np.allclose(values[row], value, rtol=0, atol=1e-9, equal_nan=True):
                counts["unchanged"] += 1
            elif mask[row] and not replace:
                counts["conflicts_kept"] += 1
            else:
                counts["replaced" if mask[row] else "labels_added"] += 1
                values[row], mask[row] = value, True
        changed[name] = (values, mask, {"unit": _units(name), "quantity": name.split("_", 1)[1],
                                        **plan.attrs[name]})
    if not plan.merges:
        return dict(counts)
    with store.atomic_path(into) as tmp:
        shutil.copyfile(into, tmp)
        with h5py.File(tmp, "r+") as h5:
            if plan.appended:
                table = pd.concat([store.read_table(h5["ligands"], store.LIGAND_COLUMNS),
                                   pd.DataFrame(plan.appended)], ignore_index=True)
                del h5["ligands"]
                store.write_table(h5.create_group("ligands"), table[list(store.LIGAND_COLUMNS)])
                for name in list(h5["labels"]):
                    if name not in changed:
                        values, mask = _extended(h5[f"labels/{name}/values"][()], h5[f"labels/{name}/mask"][()], n)
                        attrs = dict(h5[f"labels/{name}"].attrs)
                        store.write_label(h5["labels"], name, values, mask, attrs)
                if "splits/test" in h5:       # generated ligands are training ligands of the next round
                    test = np.concatenate([h5["splits/test"][()], np.zeros(len(plan.appended), bool)])
                    del h5["splits/test"]
                    h5["splits"].create_dataset("test", data=test)
            for name, (values, mask, attrs) in changed.items():
                store.write_label(h5["labels"], name, values, mask, attrs)
            for group, rows, columns in (("generated", plan.generated, GENERATED_COLUMNS),
                                         ("merges", plan.merges, MERGE_COLUMNS)):
                old = store.read_table(h5[group]) if group in h5 else pd.DataFrame(columns=columns)
                if group in h5:
                    del h5[group]
                new = pd.DataFrame(rows, columns=columns)
                store.write_table(h5.create_group(group),
                                  pd.concat([old, new], ignore_index=True) if len(old) and len(new) else
                                  (new if len(new) else old))
    return dict(counts)


def merge(results: list[str | Path], into: str | Path, *, replace: bool = False) -> dict:
    """Merge results files into the ligands file `into`; returns a summary (what was added, kept, failed)."""
    into = Path(into)
    results = [Path(p) for p in results]
    for path in results:
        with store.open_checked(path, "results"):
            pass
    plan = plan_merge(results, into)
    labels = apply_plan(plan, into, replace=replace)
    return {"into": str(into), "results": [str(p) for p in results], "ligands_before": plan.n_before,
            "ligands_after": plan.n_before + len(plan.appended),
            "labels": {name: len(rows) for name, rows in plan.values.items()}, **dict(plan.counts), **labels}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gauss_hpc.label merge", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="results.h5 of gauss_hpc.jobs gather (or jobs import)")
    p.add_argument("--ligands", dest="into", help="ligands.h5 to add the labels (and new ligands) to (required)")
    deprecated(p, "--into", "--ligands", "into")
    p.add_argument("--replace", action="store_true",
                   help="overwrite values the file already has for the same label (default: keep them)")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.into is None:
        parser.error("--ligands LIGANDS.h5 (the file the labels go into) is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        summary = merge(args.results, args.into, replace=args.replace)
    except (FileNotFoundError, store.SchemaError, ValueError) as exc:
        print(f"gauss_hpc.label merge: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0
