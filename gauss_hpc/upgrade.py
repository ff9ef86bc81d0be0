"""`gauss-hpc upgrade FILE...`: rewrite gauss_hpc HDF5 files of an older format in the current one, in place.

Format 1 -> 2: KD gaps become the paper's dE0i = E(KD i) - E(KD 0) (they were neighbour differences
E(KD i+1) - E(KD i)). Converted: results.h5 `kd_gaps` (from `kd_energies` where a row has them, else the
running sum of the old gaps), every ligands.h5 label named `<backend>_kd_gaps`, and samples.h5 columns
`predicted_<backend>_kd_gaps`. Each file is rewritten atomically; a file already current is left alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

from . import store
from .abinitio import values as value_schema

GAPS = value_schema.KD_GAPS


def _running_sum(old: np.ndarray) -> np.ndarray:
    """Neighbour gaps (.., 7) -> gaps above the ground doublet; NaN stays NaN."""
    return np.cumsum(np.asarray(old, float), axis=-1)


def _replace(group: h5py.Group, name: str, values: np.ndarray) -> None:
    attrs = dict(group[name].attrs)
    maxshape = group[name].maxshape
    del group[name]
    group.create_dataset(name, data=values, maxshape=maxshape, chunks=True if maxshape[0] is None else None)
    group[name].attrs.update(attrs)


def _convert(h5: h5py.File, kind: str) -> list[str]:
    """Convert the KD gaps of an open format-1 file; the names of what changed."""
    changed = []
    if kind == "results" and GAPS in h5.get("results", {}):
        group = h5["results"]
        old = group[GAPS][()]
        new = _running_sum(old)
        if "kd_energies" in group:
            exact = value_schema.kd_gaps(group["kd_energies"][()])
            new = np.where(np.isfinite(exact), exact, new)
        _replace(group, GAPS, new)
        changed.append(f"/results/{GAPS}")
    elif kind == "ligands":
        for name, label in h5.get("labels", {}).items():
            if name.endswith(f"_{GAPS}"):
                label["values"][...] = _running_sum(label["values"][()])
                changed.append(f"/labels/{name}")
    elif kind == "samples":
        group = h5.get("samples", {})
        for name in list(group):
            if name.startswith("predicted_") and name.endswith(f"_{GAPS}"):
                _replace(group, name, _running_sum(group[name][()]))
                changed.append(f"/samples/{name}")
    return changed


def upgrade(path: str | Path) -> list[str] | None:
    """Bring one file to store.FORMAT_VERSION in place (atomic); the datasets converted, None when the file was
    current already.
    Raises SchemaError for a file that is not a gauss_hpc HDF5 file."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as h5:
            kind, version = h5.attrs.get("kind"), int(h5.attrs.get("format_version", 0))
    except OSError as exc:
        raise store.SchemaError(f"{path}: not a readable HDF5 file ({exc})") from exc
    if not kind:
        raise store.SchemaError(f"{path}: not a gauss_hpc file (no 'kind' attribute)")
    if version >= store.FORMAT_VERSION:
        return None
    with store.atomic_path(path) as tmp:
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as h5:
            changed = _convert(h5, str(kind)) if version == 1 else []
            h5.attrs["format_version"] = store.FORMAT_VERSION
            h5.attrs["upgraded"] = json.dumps({"from_format": version, "converted": changed,
                                               "by": store.provenance("upgrade")["gauss_hpc_version"]})
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gauss-hpc upgrade", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="gauss_hpc HDF5 files (ligands, results, samples, ...)")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.files:
        try:
            changed = upgrade(path)
        except (store.SchemaError, FileNotFoundError) as exc:
            print(f"[upgrade] {exc}", file=sys.stderr)
            failed += 1
            continue
        if changed is None:
            print(f"[upgrade] {path}: already format {store.FORMAT_VERSION}")
        else:
            print(f"[upgrade] {path}: now format {store.FORMAT_VERSION}; KD gaps converted in "
                  f"{', '.join(changed) or 'no dataset (none stored)'}")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
