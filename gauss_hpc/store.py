"""The HDF5 schema of every file the stages exchange, in one place.

Conventions (docs/formats.md):
- every file carries provenance attributes: format version, gauss_hpc version, creation time, the command and
  config that made it, and content hashes of its source files;
- tables are groups with one 1-D (or N-D, first axis = rows) dataset per column; strings are variable-length
  UTF-8; missing labels are NaN plus an explicit boolean mask;
- writers never leave a half-written file: `atomic_path` writes to a temporary name in the same directory and
  renames it into place.

Files and their layout:
  ligands.h5   /ligands  table: smiles, canonical, charge, donor_element, donor_z, donor_index, parent_id, source
               /labels/<name>  values (float, NaN = missing), mask (bool), attrs: unit, method
               /splits   test (bool per ligand), train_subsets/<size> (int indices into /ligands, nested)
  history.h5   /epochs   table: epoch, one column per loss term and metric, lr, wall_seconds, samples_per_s
  latents.h5   /latents  mu (n, d), logvar (n, d), ligand_row (int), canonical (str)
  samples.h5   /attempts per (seed, sigma, batch) outcome counts; /samples table of valid samples;
               /sigma_stats per sigma and batch: valid/novel/unique fractions, accumulated counts; /metrics
  results.h5   /results  table: task_id, name, step, backend, status, reason, message, ... ; arrays per result
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import h5py
import numpy as np
import pandas as pd

from . import __version__
from .abinitio import values as value_schema

# 2: KD gaps are the paper's dE0i = E(KD i) - E(KD 0) (abinitio/values.py: kd_gaps); 1 stored neighbour
# differences E(KD i+1) - E(KD i) under the same names. Files of the kinds that hold KD gaps are refused below
# format 2 (never mixed silently); `gauss-hpc upgrade FILE` converts them (gauss_hpc/upgrade.py).
FORMAT_VERSION = 2
KD_GAP_KINDS = ("ligands", "results", "samples")
STR = h5py.string_dtype(encoding="utf-8")
_UMASK = os.umask(0)
os.umask(_UMASK)

LIGAND_COLUMNS = ("smiles", "canonical", "charge", "donor_element", "donor_z", "donor_index", "parent_id",
                  "source")


# A ligand's identity and where it came from, carried by every file from samples.h5 through the campaign's tasks
# to results.h5 and back into ligands.h5 (gauss_hpc.merge): {column: value when unknown}. `canonical` is the
# novelty key (kekulized canonical SMILES); `source_file` the ligands or samples file the task's input row is in.
LIGAND_PROVENANCE = {"canonical": "", "source_file": "", "ligand_row": -1, "sample_row": -1, "round": -1,
                     "seed_id": -1, "seed_ligand_row": -1, "sigma": float("nan"), "batch": -1}


def provenance_value(column: str, value):
    """`value` in the type of the provenance column (its unknown value for None)."""
    default = LIGAND_PROVENANCE[column]
    if value is None:
        return default
    return type(default)(value.item() if hasattr(value, "item") else value)


class SchemaError(ValueError):
    """A file does not have the layout its stage expects."""


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(kind: str, config: Mapping | None = None, sources: Iterable[str | Path] = (),
               command: list[str] | None = None) -> dict:
    """Attributes every file carries: what made it, from what, when."""
    source_hashes = {}
    for src in sources:
        src = Path(src)
        source_hashes[str(src)] = file_sha256(src) if src.is_file() else "not-a-file"
    return {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "gauss_hpc_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": json.dumps(command if command is not None else sys.argv),
        "config": json.dumps(dict(config or {}), default=str, sort_keys=True),
        "sources": json.dumps(source_hashes, sort_keys=True),
    }


def stamp(h5: h5py.File, kind: str, **kwargs) -> None:
    for key, value in provenance(kind, **kwargs).items():
        h5.attrs[key] = value


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`, on error remove it, so
    readers only ever see the old complete file or the new complete file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_UMASK)      # mkstemp makes 0600; results are shared with the group as usual
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _column_array(values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "OUS":
        return np.asarray([("" if v is None else str(v)) for v in values], dtype=object)
    return arr


def write_table(group: h5py.Group, table: pd.DataFrame | Mapping[str, Iterable], **dataset_kwargs) -> None:
    """One dataset per column; strings as variable-length UTF-8."""
    columns = table.items() if isinstance(table, Mapping) else ((c, table[c].to_numpy()) for c in table.columns)
    n_rows = None
    for name, values in columns:
        arr = _column_array(values)
        if n_rows is None:
            n_rows = len(arr)
        elif len(arr) != n_rows:
            raise SchemaError(f"column {name!r} has {len(arr)} rows, expected {n_rows}")
        if arr.dtype == object:
            group.create_dataset(name, data=arr, dtype=STR, **dataset_kwargs)
        else:
            group.create_dataset(name, data=arr, **dataset_kwargs)
    group.attrs["n_rows"] = n_rows or 0


def read_table(group: h5py.Group, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Columns of 1-D datasets as a DataFrame (strings decoded)."""
    names = list(columns) if columns is not None else [k for k in group if group[k].ndim == 1]
    data = {}
    for name in names:
        if name not in group:
            raise SchemaError(f"{group.file.filename}:{group.name} has no column {name!r}")
        ds = group[name]
        data[name] = ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()]
    return pd.DataFrame(data)


def open_checked(path: str | Path, kind: str, mode: str = "r") -> h5py.File:
    """Open a gauss_hpc file and check it is of the expected kind, with an error that says what to do."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a {kind} file made by gauss_hpc)")
    try:
        h5 = h5py.File(path, mode)
    except OSError as exc:
        raise SchemaError(f"{path}: not a readable HDF5 file ({exc})") from exc
    found = h5.attrs.get("kind")
    if found != kind:
        h5.close()
        raise SchemaError(f"{path}: is a {found or 'foreign'} file, expected {kind}")
    version = int(h5.attrs.get("format_version", 0))
    if kind in KD_GAP_KINDS and version < FORMAT_VERSION:
        h5.close()
        raise SchemaError(f"{path}: format {version} stores KD gaps between neighbouring doublets; this release "
                          f"reads format {FORMAT_VERSION} (gaps above the ground doublet, the paper's dE0i). Convert "
                          f"it with: gauss-hpc upgrade {path}")
    return h5


# --- ligands.h5 ---------------------------------------------------------------------------------------------

def write_ligands(path: str | Path, ligands: pd.DataFrame, *, labels: Mapping[str, tuple] | None = None,
                  test_mask: np.ndarray | None = None, train_subsets: Mapping[int, np.ndarray] | None = None,
                  counts: Mapping[str, int] | None = None, **prov) -> None:
    """Write a complete ligands file atomically. `labels[name] = (values, mask, attrs)`."""
    missing = [c for c in LIGAND_COLUMNS if c not in ligands.columns]
    if missing:
        raise SchemaError(f"ligand table lacks columns {missing}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        stamp(h5, "ligands", **prov)
        for key, value in (counts or {}).items():
            h5.attrs[f"count_{key}"] = int(value)
        write_table(h5.create_group("ligands"), ligands[list(LIGAND_COLUMNS)])
        lab = h5.create_group("labels")
        for name, (values, mask, *attrs) in (labels or {}).items():
            write_label(lab, name, values, mask, attrs[0] if attrs else {})
        splits = h5.create_group("splits")
        if test_mask is not None:
            splits.create_dataset("test", data=np.asarray(test_mask, bool))
        subs = splits.create_group("train_subsets")
        for size, idx in (train_subsets or {}).items():
            subs.create_dataset(str(size), data=np.asarray(idx, np.int64))


def write_label(group: h5py.Group, name: str, values, mask, attrs: Mapping) -> None:
    values = np.asarray(values, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if values.shape[0] != mask.shape[0]:
        raise SchemaError(f"label {name!r}: {values.shape[0]} values but {mask.shape[0]} mask entries")
    values = np.where(mask.reshape(mask.shape + (1,) * (values.ndim - 1)), values, np.nan)
    if name in group:
        del group[name]
    g = group.create_group(name)
    g.create_dataset("values", data=values)
    g.create_dataset("mask", data=mask)
    for key, value in attrs.items():
        g.attrs[key] = value


def read_ligands(path: str | Path) -> pd.DataFrame:
    with open_checked(path, "ligands") as h5:
        return read_table(h5["ligands"], LIGAND_COLUMNS)


def read_labels(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (values, mask)} for every proxy label in a ligands file."""
    with open_checked(path, "ligands") as h5:
        return {name: (g["values"][()], g["mask"][()]) for name, g in h5["labels"].items()}


def read_splits(path: str | Path) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(test mask, {size: training row indices}) of a ligands file."""
    with open_checked(path, "ligands") as h5:
        test = h5["splits/test"][()]
        subsets = {int(k): v[()] for k, v in h5["splits/train_subsets"].items()}
    return test, subsets


def update_labels(path: str | Path, labels: Mapping[str, tuple], **prov) -> None:
    """Add or replace labels in an existing ligands file, atomically (copy, edit, rename)."""
    import shutil

    path = Path(path)
    with open_checked(path, "ligands"):
        pass
    with atomic_path(path) as tmp:
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as h5:
            n = int(h5["ligands"].attrs["n_rows"])
            for name, (values, mask, *attrs) in labels.items():
                if len(mask) != n:
                    raise SchemaError(f"label {name!r} has {len(mask)} rows; {path} has {n} ligands")
                write_label(h5["labels"], name, values, mask, attrs[0] if attrs else {})
            if prov:
                h5.attrs["labels_provenance"] = json.dumps(provenance("labels", **prov))

# Sections below are appended by each stage for its own file kind (history/latents, samples, results).


# --- history.h5 / latents.h5 (gauss_hpc.train) --------------------------------------------------------------

def write_history(path: str | Path, epochs: pd.DataFrame | Mapping[str, Iterable], **prov) -> None:
    """Per-epoch training history (one row per epoch): loss terms, held-out metrics, lr, wall time."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        stamp(h5, "history", **prov)
        write_table(h5.create_group("epochs"), epochs)


def read_history(path: str | Path) -> pd.DataFrame:
    with open_checked(path, "history") as h5:
        return read_table(h5["epochs"])


def write_latents(path: str | Path, mu: np.ndarray, logvar: np.ndarray, ligand_row: np.ndarray,
                  canonical: Iterable[str], ligands_file: str | Path, **prov) -> None:
    """Latent means and log-variances of ligands; ligand_row indexes the /ligands table of `ligands_file`."""
    mu = np.asarray(mu, np.float32)
    logvar = np.asarray(logvar, np.float32)
    ligand_row = np.asarray(ligand_row, np.int64)
    canonical = _column_array(list(canonical))
    if not (mu.shape == logvar.shape and mu.ndim == 2 and len(ligand_row) == len(canonical) == mu.shape[0]):
        raise SchemaError(f"latents: mu {mu.shape}, logvar {logvar.shape}, {len(ligand_row)} rows and "
                          f"{len(canonical)} SMILES do not match")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        stamp(h5, "latents", **prov)
        group = h5.create_group("latents")
        group.create_dataset("mu", data=mu)
        group.create_dataset("logvar", data=logvar)
        group.create_dataset("ligand_row", data=ligand_row)
        group.create_dataset("canonical", data=canonical, dtype=STR)
        group.attrs["n_rows"] = mu.shape[0]
        h5.attrs["ligands_file"] = str(ligands_file)


def read_latents(path: str | Path) -> dict:
    """{"mu", "logvar", "ligand_row", "canonical", "ligands_file"} of a latents file."""
    with open_checked(path, "latents") as h5:
        group = h5["latents"]
        return {"mu": group["mu"][()], "logvar": group["logvar"][()], "ligand_row": group["ligand_row"][()],
                "canonical": group["canonical"].asstr()[()], "ligands_file": str(h5.attrs["ligands_file"])}


# --- samples.h5 (gauss_hpc.sample) --------------------------------------------------------------------------
# /seeds        table: seed_id, smiles, canonical, ligand_row (-1 = given as SMILES), source, mu (n, d)
# /samples      table, one row per valid sample in generation order: key, seed_id, seed_smiles, seed_ligand_row,
#               sigma, batch, attempt, smiles, canonical, charge, valid, novel, unique (first in the whole run),
#               unique_in_sigma, times_generated, rank, z (n, d) decoded latent, mu (n, d) re-encoded mean,
#               proxy_<label> (property head), predicted_<label> and neighbour_distance_<label> (mean label and
#               latent distance of the k nearest labelled ligands: the KD cross-mapping, e.g. predicted_kd_gaps)
# /attempts     table, one row per (seed, sigma, batch): attempts, valid, novel, unique, unique_in_sigma,
#               novel_unique_in_sigma, invalid_<reason> for every rejection reason
# /sigma_stats  table per (sigma, batch): counts and fractions of attempts, per batch and accumulated (cum_*)
# /metrics      table per sigma and for all samples (sigma = NaN): MOSES/GuacaMol-style generation metrics
SAMPLE_TABLES = ("seeds", "samples", "attempts", "sigma_stats", "metrics")


def write_samples(path: str | Path, tables: Mapping[str, pd.DataFrame | Mapping[str, Iterable]],
                  attrs: Mapping | None = None, **prov) -> None:
    """Write a complete samples file atomically; `tables` maps each of SAMPLE_TABLES to its columns."""
    missing = [name for name in SAMPLE_TABLES if name not in tables]
    if missing:
        raise SchemaError(f"samples file needs tables {missing}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        stamp(h5, "samples", **prov)
        for key, value in (attrs or {}).items():
            h5.attrs[key] = value if isinstance(value, (int, float, str, np.number)) else json.dumps(value)
        for name in SAMPLE_TABLES:
            write_table(h5.create_group(name), tables[name])


def read_samples(path: str | Path, table: str = "samples", columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A table of a samples file (1-D columns; read `/samples/z` and `/samples/mu` with h5py)."""
    if table not in SAMPLE_TABLES:
        raise SchemaError(f"samples files have tables {SAMPLE_TABLES}, not {table!r}")
    with open_checked(path, "samples") as h5:
        return read_table(h5[table], columns)


# Partial samples file of one sampling array element (`gauss_hpc.sample … --array N`), merged into samples.h5 by
# `gauss_hpc.sample merge`: attrs element, elements, sample_config (JSON of the options that fix the result),
# seconds; /units unit, attempts, invalid (n, len(REASONS)) · /valid key, unit, valid_rank, smiles, canonical,
# charge, z.
SAMPLE_PART_TABLES = ("units", "valid")


def write_sample_part(path: str | Path, tables: Mapping[str, Mapping[str, Iterable]], attrs: Mapping,
                      **prov) -> None:
    """Write one array element's partial samples file atomically (a failed element leaves no file)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        stamp(h5, "samples_part", **prov)
        for key, value in attrs.items():
            h5.attrs[key] = value if isinstance(value, (int, float, str, np.number)) else json.dumps(value)
        for name in SAMPLE_PART_TABLES:
            group = h5.create_group(name)
            for column, values in tables[name].items():
                arr = _column_array(values)
                group.create_dataset(column, data=arr, dtype=STR if arr.dtype == object else None)


def read_sample_part(path: str | Path) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """(attrs, {table: {column: array}}) of a partial samples file."""
    with open_checked(path, "samples_part") as h5:
        attrs = dict(h5.attrs)
        tables = {name: {c: (h5[name][c].asstr()[()] if h5py.check_string_dtype(h5[name][c].dtype)
                             else h5[name][c][()]) for c in h5[name]} for name in SAMPLE_PART_TABLES}
    return attrs, tables


# --- results.h5 (gauss_hpc.jobs) ----------------------------------------------------------------------------
# /results   table, one row per task of the campaign (every task exactly once, task order): task_id, index,
#            name, smiles (axial ligand), canonical, seed_id (-1 = input not samples.h5), sigma (NaN), step (the
#            failing or last step), backend, status (ok | a Result failure status | a scheduler reason when the
#            job died without a shard | pending | running | not_submitted), reason, message, attempt, job_id,
#            wall_seconds, ground_mj, kd_step (the step that gave kd_energies: a failed CASSCF after a
#            crystal-field step leaves the crystal-field KDs, said so here), kd_method (the level of theory that
#            step's Result declared: casscf, nevpt2, crystal_field; Result.METHODS), the structural descriptors (NaN
#            without a complex), scalar values of the steps (last step wins: energy, donor_charge, ...);
#            N-D columns: kd_energies (n, 8) cm-1 ground = 0, kd_gaps (n, 7) cm-1, g_tensors (n, 8, 3), NaN where
#            absent, with masks has_kd_energies, has_g_tensors (shapes and units: abinitio/values.py).
#            `jobs import` writes the same table, one row per file, plus path, program, program_version, kind;
#            its status is also "unrecognized" for a file that is no ORCA/OpenMolcas output
# /geometry  final complex of each task: offsets (n + 1) into symbols (atoms) and coords (atoms, 3) Angstrom
# /steps     table, one row per step run: task_id, step, backend, status, message, wall_seconds, cached
# attrs      provenance (stamp) + campaign, n_tasks, n_ok, n_failed, n_unfinished, content_sha256
RESULT_ARRAYS = tuple(value_schema.result_arrays())      # kd_energies, kd_gaps, g_tensors (abinitio/values.py)


def write_results(path: str | Path, results: pd.DataFrame, arrays: Mapping[str, np.ndarray],
                  geometry: Mapping[str, np.ndarray], steps: pd.DataFrame, attrs: Mapping | None = None,
                  **prov) -> None:
    """Write a complete results file atomically (readers never see a partial file)."""
    n = len(results)
    for name, values in arrays.items():
        if len(values) != n:
            raise SchemaError(f"results array {name!r} has {len(values)} rows, the table {n}")
    if len(geometry["offsets"]) != n + 1:
        raise SchemaError(f"geometry offsets need {n + 1} entries, got {len(geometry['offsets'])}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        stamp(h5, "results", **prov)
        for key, value in (attrs or {}).items():
            h5.attrs[key] = value if isinstance(value, (int, float, str, np.number)) else json.dumps(value)
        group = h5.create_group("results")
        write_table(group, results)
        for name, values in arrays.items():
            group.create_dataset(name, data=values)
        geo = h5.create_group("geometry")
        geo.create_dataset("offsets", data=np.asarray(geometry["offsets"], np.int64))
        geo.create_dataset("symbols", data=np.asarray(geometry["symbols"], dtype=object), dtype=STR)
        geo.create_dataset("coords", data=np.asarray(geometry["coords"], float).reshape(-1, 3))
        write_table(h5.create_group("steps"), steps)


class _Unchanged(Exception):
    """Raised inside results_writer to keep the old file."""


class ResultsWriter:
    """Appends row chunks to the groups of write_results (same layout), so that a gather of 100k tasks holds
    one chunk in memory, not every row. Columns first seen in a later chunk are NaN for the rows before."""

    def __init__(self, h5: h5py.File):
        self.h5 = h5
        self.n = 0                   # rows of /results
        self.atoms = 0               # rows of /geometry/coords
        self.steps = 0               # rows of /steps
        self.keep_old = False
        self.offsets = h5.create_group("geometry").create_dataset("offsets", data=np.zeros(1, np.int64),
                                                                  maxshape=(None,), chunks=True)

    @staticmethod
    def _extend(group: h5py.Group, name: str, values: np.ndarray, start: int) -> None:
        """Write values at rows start… of the column, creating it (NaN / empty before `start`) or growing it."""
        if name not in group:
            dtype = STR if values.dtype == object else values.dtype
            fill = "" if values.dtype == object else (np.nan if values.dtype.kind == "f" else 0)
            group.create_dataset(name, shape=(start,) + values.shape[1:], maxshape=(None,) + values.shape[1:],
                                 dtype=dtype, chunks=True, fillvalue=fill if dtype is not STR else None)
            if start and values.dtype.kind == "f":
                group[name][:start] = np.nan
        ds = group[name]
        ds.resize(start + len(values), axis=0)
        if len(values):
            ds[start:start + len(values)] = values

    def _table(self, group: h5py.Group, table: pd.DataFrame | Mapping[str, np.ndarray], start: int) -> int:
        columns = dict(table.items()) if isinstance(table, Mapping) else {c: table[c].to_numpy() for c in table}
        n = len(next(iter(columns.values()))) if columns else 0
        for name, values in columns.items():
            self._extend(group, name, _column_array(values) if np.asarray(values).ndim == 1 else np.asarray(values),
                         start)
        for name in group:           # columns this chunk lacks
            if name not in columns and group[name].shape[0] < start + n:
                ds = group[name]
                ds.resize(start + n, axis=0)
                if ds.dtype.kind == "f":
                    ds[start:start + n] = np.nan
        return n

    def append(self, results: pd.DataFrame, arrays: Mapping[str, np.ndarray], atom_counts: np.ndarray,
               symbols: np.ndarray, coords: np.ndarray, steps: pd.DataFrame) -> None:
        """Rows of /results (1-D columns and N-D `arrays`); the rows' geometries, concatenated (`atom_counts`
        atoms each: their `symbols` and `coords`); their /steps rows."""
        group = self.h5.require_group("results")
        n = self._table(group, {**{c: results[c].to_numpy() for c in results}, **arrays}, self.n)
        geo = self.h5["geometry"]
        counts = np.asarray(atom_counts, np.int64)
        if len(counts) != n or int(counts.sum()) != len(symbols) or len(symbols) != len(coords):
            raise SchemaError(f"geometry of {len(counts)} rows with {int(counts.sum())} atoms does not match "
                              f"{n} rows, {len(symbols)} symbols and {len(coords)} coordinates")
        self.offsets.resize(self.n + n + 1, axis=0)
        self.offsets[self.n + 1:] = self.atoms + np.cumsum(counts)
        self._extend(geo, "symbols", np.asarray(symbols, dtype=object), self.atoms)
        self._extend(geo, "coords", coords, self.atoms)
        self.atoms += int(counts.sum())
        self.steps += self._table(self.h5.require_group("steps"), steps, self.steps)
        self.n += n


@contextlib.contextmanager
def results_writer(path: str | Path, old_content: str | None = None, **prov) -> Iterator[ResultsWriter]:
    """Write a results file in chunks, atomically: readers see the old file until the new one is complete.
    Set `writer.keep_old = True` before leaving to discard the new file (the gather was unchanged)."""
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
            stamp(h5, "results", **prov)
            writer = ResultsWriter(h5)
            yield writer
            h5["results"].attrs["n_rows"] = writer.n
            h5.require_group("steps").attrs["n_rows"] = writer.steps
            if writer.keep_old:
                raise _Unchanged
    except _Unchanged:
        pass


def concat_results(parts: Iterable[tuple[str | Path, Sequence[int]]], path: str | Path, **prov) -> None:
    """One results file of chosen rows of several (`parts`: (results file, its row numbers), in order), with
    their geometries and step records; a column one file lacks is NaN (or empty) for its rows. Atomic."""
    with results_writer(path, **prov) as writer:
        for source, rows in parts:
            rows = np.asarray(rows, np.int64)
            table = read_results(source).iloc[rows].reset_index(drop=True)
            arrays = {name: values[rows] for name, values in read_result_arrays(source).items()}
            with open_checked(source, "results") as h5:
                offsets = h5["geometry/offsets"][()]
                symbols = np.asarray(h5["geometry/symbols"].asstr()[()], dtype=object)
                coords = h5["geometry/coords"][()].reshape(-1, 3)
                steps = read_table(h5["steps"])
            atoms = np.concatenate([np.arange(offsets[r], offsets[r + 1]) for r in rows] or [np.zeros(0, np.int64)])
            steps = steps[steps["task_id"].isin(table["task_id"])] if "task_id" in steps else steps.iloc[:0]
            writer.append(table, arrays, offsets[rows + 1] - offsets[rows], symbols[atoms], coords[atoms],
                          steps.reset_index(drop=True))


def read_results(path: str | Path, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """The /results table (1-D columns) of a results file."""
    with open_checked(path, "results") as h5:
        return read_table(h5["results"], columns)


def read_result_arrays(path: str | Path, names: Iterable[str] = RESULT_ARRAYS) -> dict[str, np.ndarray]:
    """{name: array} of the N-D result columns (kd_energies (n, 8), kd_gaps (n, 7), g_tensors (n, 8, 3))."""
    with open_checked(path, "results") as h5:
        return {name: h5["results"][name][()] for name in names if name in h5["results"]}


def read_geometry(path: str | Path, row: int) -> tuple[list[str], np.ndarray]:
    """(symbols, coords) of the final complex of one task (empty when the task has none)."""
    with open_checked(path, "results") as h5:
        start, stop = h5["geometry/offsets"][row:row + 2]
        return list(h5["geometry/symbols"].asstr()[start:stop]), h5["geometry/coords"][start:stop]
