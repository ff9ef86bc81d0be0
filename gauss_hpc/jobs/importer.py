"""Import calculations a user already has: `python -m gauss_hpc.jobs import PATH... --out results.h5`.

Takes output files and directory trees, recognises the program from the file's content (never its name),
parses each with that program's parser and writes a results.h5 with the schema of `gather` (store.write_results:
the /results table with gather's columns plus path, program, program_version and kind, the N-D columns of the
value schema, /geometry). One row per file, in path order: a file that is not an ORCA or OpenMolcas output, a
failed calculation (truncated, crashed, not converged) or an output without spin-orbit levels is a row with its
status, reason and message, never an error of the import. Binary files and files over MAX_BYTES are rows too.

Each program of abinitio/registry.py PROGRAMS recognises its own outputs (`detect`: ORCA its banner or 'Program
Version' line, OpenMolcas pymolcas's banner or its '--- Start Module:' lines, also in trimmed logs) and reads them
(`read_output`): ORCA CASSCF/NEVPT2+SOC outputs (KD energies, g-tensors, geometry) and optimisations (geometry,
energy), OpenMolcas CASSCF/RASSI-SO logs with or without SINGLE_ANISO. An integer-spin output is an ok row without
KD energies.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from ..abinitio import values as value_schema
from ..abinitio.registry import PROGRAMS, backend, detect_program
from ..abinitio.result import Status
from .gather import TASK_COLUMNS, WIDTH, _fixed_block
from .shards import say

MAX_BYTES = 512 * 1024 * 1024
HEAD_BYTES = 64 * 1024
IMPORT_COLUMNS = ("path", "program", "program_version", "kind")
UNRECOGNIZED = "unrecognized"        # a row status besides Status.ALL: the file is not an output we know

def detect(path: str | Path) -> tuple[str, str]:
    """(program, why not) of a file from its first 64 KiB: ("orca" | "molcas", "") or ("", reason)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as exc:
        return "", f"unreadable: {exc.strerror or exc}"
    if size == 0:
        return "", "empty file"
    if b"\0" in head:
        return "", "binary file"
    if size > MAX_BYTES:
        return "", f"{size / 2**20:.0f} MiB, over the {MAX_BYTES // 2**20} MiB import limit"
    program = detect_program(head.decode("utf-8", errors="replace"))
    if program:
        return program, ""
    names = " or ".join(backend(name).PROGRAM_NAME for name in PROGRAMS)
    return "", f"not an {names} output (no program's banner nor its module lines in the first 64 KiB)"


def import_file(path: str | Path, *, energies: str = "casscf", name: str | None = None) -> dict:
    """One results row (a dict) for one file; never raises for what the file contains."""
    path = Path(path)
    name = name or path.stem
    program, why = detect(path)
    row = {"name": name, "path": str(path.resolve()), "program": program, "program_version": "", "kind": "",
           "method": "",
           "status": UNRECOGNIZED, "reason": "not_an_output", "message": f"{path}: {why}", "values": {}}
    if not program:
        return row
    try:
        result, kind = backend(program).read_output(path, name, energies)
    except Exception as exc:        # a parser bug or content no parser expects: a row saying so, never a crash
        row.update(status=Status.PARSE_ERROR, reason=Status.PARSE_ERROR, kind="",
                   message=f"{path}: {program} output could not be parsed ({type(exc).__name__}: {exc})")
        return row
    message = result.message.replace(f"{name}: ", f"{path}: ", 1) if result.message else ""
    row.update(status=result.status, reason="" if result.ok else result.status, message=message, kind=kind,
               method=result.method, program_version=str(result.values.get("program_version", "")),
               values=result.values)
    return row


def find_files(paths) -> list[Path]:
    """The files named and every file under the directories named (sorted, hidden ones left out); a path that
    does not exist is a FileNotFoundError naming it."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
        else:
            raise FileNotFoundError(f"import: {p} is neither a file nor a directory")
    return list(dict.fromkeys(found))


def _unique_names(files: list[Path]) -> list[str]:
    """File stems, made unique with their parent directories where two files share a stem."""
    stems = [f.stem for f in files]
    return [s if stems.count(s) == 1 else f"{f.parent.name}/{s}" for s, f in zip(stems, files)]


def import_outputs(paths, out: str | Path, *, energies: str = "casscf", quiet: bool = False) -> Path:
    """Parse every file under `paths` into the results file `out` (atomic write); returns `out`."""
    files = find_files(paths)
    rows = [import_file(f, energies=energies, name=n) for f, n in zip(files, _unique_names(files))]
    table, arrays, masks, symbols, coords, counts = [], {k: [] for k in WIDTH}, {k: [] for k in WIDTH}, [], [], []
    for index, row in enumerate(rows):
        values = row.pop("values")
        doublets = len(values.get("kd_energies") or [])
        if doublets > WIDTH["kd_energies"][0]:      # an ion with more doublets than Dy(III)'s 8: say what is kept
            row["message"] = "; ".join(filter(None, [row["message"], f"{doublets} Kramers doublets, results.h5 "
                                                     f"keeps the lowest {WIDTH['kd_energies'][0]}"]))
        digest = hashlib.sha256(row["path"].encode()).hexdigest()[:16]
        record = {"task_id": digest, "index": index, "name": row["name"], "smiles": "", **store.LIGAND_PROVENANCE,
                  "source_file": row["path"], "step": "import", "backend": row["program"],
                  "status": row["status"], "reason": row["reason"], "message": row["message"], "attempt": 0,
                  "job_id": "", "wall_seconds": math.nan, "ground_mj": "", "kd_step": "import" if
                  values.get("kd_energies") else "", "kd_method": row["method"] if values.get("kd_energies") else "",
                  "template": ""}
        record.update({d: math.nan for d in value_schema.DESCRIPTOR_NAMES})
        record.update({k: row[k] for k in IMPORT_COLUMNS})
        table.append(record)
        for key, shape in WIDTH.items():
            block, found = _fixed_block([values.get(key)], shape)
            value, present = block[0], bool(found[0])
            arrays[key].append(value)
            masks[key].append(present and bool(np.isfinite(value).any()))
        atoms = list(values.get("symbols") or [])
        symbols += atoms
        coords += list(values.get("coordinates") or []) if atoms else []
        counts.append(len(atoms))
    columns = list(TASK_COLUMNS) + list(value_schema.DESCRIPTOR_NAMES) + list(IMPORT_COLUMNS)
    results = pd.DataFrame(table, columns=columns)
    n = len(rows)
    out_arrays = {k: np.asarray(v, float).reshape((n,) + WIDTH[k]) for k, v in arrays.items()}
    out_arrays[value_schema.KD_GAPS] = value_schema.kd_gaps(out_arrays["kd_energies"])
    out_arrays.update({f"has_{k}": np.asarray(masks[k], bool) for k in ("kd_energies", "g_tensors")})
    geometry = {"offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), "symbols": symbols,
                "coords": np.asarray(coords, float).reshape(-1, 3)}
    steps = pd.DataFrame(columns=["task_id", "step", "backend", "status", "message", "wall_seconds", "cached"])
    stats = {"n_tasks": n, "n_ok": int((results["status"] == Status.OK).sum()),
             "n_unrecognized": int((results["status"] == UNRECOGNIZED).sum()), "n_unfinished": 0,
             "n_with_kd": int(out_arrays["has_kd_energies"].sum())}
    stats["n_failed"] = n - stats["n_ok"] - stats["n_unrecognized"]
    store.write_results(out, results, out_arrays, geometry, steps,
                        attrs={"imported_from": [str(Path(p).resolve()) for p in paths], "qdpt_energies": energies,
                               **stats},
                        config={"command": "import", "paths": [str(p) for p in paths], "energies": energies},
                        sources=[])
    say(f"{out}: {n} files ({stats['n_ok']} ok, {stats['n_with_kd']} with KD energies, {stats['n_failed']} failed, "
        f"{stats['n_unrecognized']} not outputs)", quiet)
    return Path(out)
