"""Proxy labels of the donor atom for the ligands of a ligands.h5 file, from any backend with `label_ligand`.

    python -m gauss_hpc.label --backend xtb --ligands data/ligands.h5 [--limit N] [--rows 0:500,900] [--workers 2]
    python -m gauss_hpc.label --backend molcas --ligands data/ligands.h5 --rows 0:5
    python -m gauss_hpc.label merge campaigns/x/results.h5 --ligands ligands.h5     (see gauss_hpc.merge)

The backend is the module gauss_hpc.abinitio.<backend>; its `label_ligand(smiles, name=, workdir=, **options)`
returns a Result with donor_charge, donor_dipole and donor_polarizability. Labels are written into the ligands
file as /labels/<backend>_donor_charge, <backend>_donor_dipole, <backend>_donor_polarizability (values NaN where
not labelled, mask, attrs unit/method/quantity), so backends never overwrite each other and a trainer can use
every label in the file.

Resumable: each finished chunk of ligands is recorded, with its status, in the sidecar <ligands>.label-<backend>.json
(rewritten atomically); a rerun skips rows already there (failed ones too, unless --retry-failed) and the labels
are written into the HDF5 file at the end of every run, also when it is interrupted (Ctrl-C, SIGTERM from a
Slurm time limit). A bad ligand gets a status and a message in the sidecar, never a crash.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .cli import add_quiet, deprecated
from . import config, store
from .abinitio import values as value_schema

log = logging.getLogger("gauss_hpc.label")

QUANTITIES = value_schema.ligand_labels()          # {quantity: unit}, declared once in abinitio/values.py
SIDECAR_VERSION = 1


label_name = value_schema.label_name      # <backend prefix>_<quantity>: the one naming rule of labels


def sidecar_path(ligands_path: str | Path, backend: str) -> Path:
    ligands_path = Path(ligands_path)
    return ligands_path.with_name(f"{ligands_path.name}.label-{backend}.json")


def parse_rows(spec: str | None, n_rows: int) -> np.ndarray:
    """'0:100,250,300:310' -> sorted unique row indices (Python slice semantics, negative allowed); None = all."""
    if spec is None or str(spec).strip() == "":
        return np.arange(n_rows)
    rows: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        try:
            if ":" in part:
                start, stop = (int(x) if x.strip() else None for x in part.split(":", 1))
                rows.update(range(n_rows)[slice(start, stop)])
            else:
                index = int(part)
                if not -n_rows <= index < n_rows:
                    raise IndexError
                rows.add(index % n_rows)
        except (ValueError, IndexError):
            raise ValueError(f"--rows {spec!r}: cannot use {part!r} (the file has {n_rows} ligands, rows 0.."
                             f"{n_rows - 1}; write e.g. 0:100,250)") from None
    return np.array(sorted(rows), dtype=np.int64)


def load_backend(name: str):
    """The backend module, checked to have label_ligand; ValueError listing what exists otherwise."""
    try:
        module = importlib.import_module(f"gauss_hpc.abinitio.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"gauss_hpc.abinitio.{name}":
            raise
        module = None
    if module is None or not hasattr(module, "label_ligand"):
        available = list(value_schema.label_backends())
        raise ValueError(f"backend {name!r} has no label_ligand; backends that label ligands: {available}")
    return module


def _smiles_digest(smiles) -> str:
    digest = hashlib.sha256()
    for s in smiles:
        digest.update(s.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def load_sidecar(path: Path, *, backend: str, digest: str, options: dict, restart: bool) -> dict:
    """The progress record of earlier runs, or a fresh one. Refuses a record made for another ligand file or
    other options, since mixing them would silently mix labels."""
    fresh = {"version": SIDECAR_VERSION, "backend": backend, "smiles_sha256": digest, "options": options,
             "rows": {}}
    if restart or not path.exists():
        return fresh
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: unreadable progress file ({exc}); delete it or rerun with --restart") from None
    if record.get("smiles_sha256") != digest:
        raise ValueError(f"{path}: progress of another ligand file (its SMILES differ); delete it or rerun "
                         "with --restart")
    if record.get("options") != options:
        raise ValueError(f"{path}: earlier run used options {record.get('options')}, this one {options}; rerun "
                         "with the same options or with --restart")
    return record


def _label_one(args) -> tuple[int, dict]:
    """Worker: one ligand -> (row, sidecar entry). Never raises: a backend that breaks its contract by
    raising is recorded as a failure of that ligand."""
    backend, row, smiles, workdir, options = args
    module = load_backend(backend)
    start = time.perf_counter()
    try:
        result = module.label_ligand(smiles, name=f"row{row}", workdir=workdir, **options)
        entry = {"status": result.status, "message": result.message,
                 "values": {q: _finite(result.values.get(q)) for q in QUANTITIES} if result.ok else {},
                 "wall_seconds": round(result.wall_seconds, 4)}
    except Exception as exc:      # noqa: BLE001 - the batch goes on; the sidecar keeps the reason
        entry = {"status": "failed", "message": f"{type(exc).__name__}: {exc}", "values": {},
                 "wall_seconds": round(time.perf_counter() - start, 4)}
    if entry["status"] == "ok" and any(v is None for v in entry["values"].values()):
        missing = [q for q, v in entry["values"].items() if v is None]
        entry = {**entry, "status": "failed", "message": f"backend returned no finite {', '.join(missing)}"}
    return row, entry


def _finite(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _init_worker():
    os.environ["OMP_NUM_THREADS"] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # the parent handles Ctrl-C and writes what is done


def labels_from_sidecar(record: dict, n_rows: int, backend: str) -> dict:
    """{label name: (values, mask, attrs)} for store.update_labels from the rows recorded so far."""
    labels = {}
    for quantity, unit in QUANTITIES.items():
        values = np.full(n_rows, np.nan)
        mask = np.zeros(n_rows, dtype=bool)
        for row, entry in record["rows"].items():
            value = entry.get("values", {}).get(quantity)
            if entry.get("status") == "ok" and value is not None:
                values[int(row)] = value
                mask[int(row)] = True
        labels[label_name(backend, quantity)] = (values, mask, {"unit": unit, "method": backend,
                                                                 "quantity": quantity})
    return labels


def label_file(path: str | Path, *, backend: str = "xtb", rows: str | None = None, limit: int = 0,
               chunk: int = 200, workers: int = 1, options: dict | None = None, retry_failed: bool = False,
               restart: bool = False, workdir: str | Path | None = None, progress: bool = True,
               run_config: dict | None = None) -> dict:
    """Label (a subset of) the ligands of `path` with `backend`; returns a summary dict. See the module
    docstring for the label names and the resume rule."""
    path = Path(path)
    options = dict(options or {})
    load_backend(backend)
    ligands = store.read_ligands(path)
    smiles = ligands["smiles"].tolist()
    n_rows = len(smiles)
    selected = parse_rows(rows, n_rows)
    side = sidecar_path(path, backend)
    record = load_sidecar(side, backend=backend, digest=_smiles_digest(smiles), options=options, restart=restart)
    done = {int(r) for r, e in record["rows"].items() if e["status"] == "ok" or not retry_failed}
    todo = [int(r) for r in selected if int(r) not in done]
    if limit and limit > 0:
        todo = todo[:limit]
    workroot = Path(workdir) if workdir else path.with_name(f"{path.name}.label-{backend}.work")
    jobs = [(backend, row, smiles[row], str(workroot / f"row{row}"), options) for row in todo]
    log.info("%s: %d ligands selected, %d of them done before, labelling %d with %s", path, len(selected),
             int(np.isin(selected, list(done)).sum()), len(jobs), backend)

    from tqdm import tqdm
    start = time.perf_counter()
    new = Counter()
    previous_term = signal.getsignal(signal.SIGTERM) if _main_thread() else None
    if _main_thread():      # a Slurm time limit sends SIGTERM: leave through `finally` and keep the labels
        signal.signal(signal.SIGTERM, _raise_interrupt)
    pool = None
    try:
        if workers > 1 and len(jobs) > 1:
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                          initializer=_init_worker)
        with tqdm(total=len(jobs), desc=f"label {backend}", unit="lig", disable=not progress) as bar:
            for first in range(0, len(jobs), max(1, chunk)):
                batch = jobs[first:first + max(1, chunk)]
                results = (pool.map(_label_one, batch, chunksize=max(1, len(batch) // (4 * workers)))
                           if pool else map(_label_one, batch))
                for row, entry in results:
                    record["rows"][str(row)] = entry
                    new[entry["status"]] += 1
                    bar.update(1)
                store.atomic_write_text(side, json.dumps(record, sort_keys=True))   # the checkpoint
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if _main_thread():
            signal.signal(signal.SIGTERM, previous_term)
        if record["rows"]:
            store.atomic_write_text(side, json.dumps(record, sort_keys=True))
            store.update_labels(path, labels_from_sidecar(record, n_rows, backend),
                                config=run_config or {"backend": backend, **options}, sources=[side])
    seconds = time.perf_counter() - start
    total = Counter(e["status"] for e in record["rows"].values())
    failures = {r: e["message"] for r, e in record["rows"].items() if e["status"] != "ok"}
    return {"file": str(path), "backend": backend, "labelled_now": sum(new.values()), "status_now": dict(new),
            "status_total": dict(total), "seconds": seconds,
            "ligands_per_s": sum(new.values()) / seconds if seconds > 0 else None,
            "labels": [label_name(backend, q) for q in QUANTITIES], "sidecar": str(side),
            "failures_sample": dict(list(failures.items())[:5])}


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _parse_option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option {text!r}: expected key=value")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gauss_hpc.label", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="subcommand:\n  merge RESULTS.h5... --ligands LIGANDS.h5   computed results become "
                                       "labels (python -m gauss_hpc.label merge --help)")
    p.add_argument("--ligands", dest="path", help="ligands.h5 made by gauss_hpc.data (required)")
    deprecated(p, "--in", "--ligands", "path")
    p.add_argument("--backend", help="module of gauss_hpc.abinitio with label_ligand (default from [label])")
    p.add_argument("--config", help="TOML file with a [label] section")
    p.add_argument("--rows", help="subset of rows, e.g. 0:1000,1500 (default: all)")
    p.add_argument("--limit", type=int, help="label at most N not-yet-labelled ligands of the selection")
    p.add_argument("--chunk", type=int, help="ligands per checkpoint of the progress file")
    p.add_argument("--workers", type=int, help="processes (each single-threaded)")
    p.add_argument("--relax", action="store_true", default=None, help="relax the geometry with the backend first")
    p.add_argument("--option", action="append", type=_parse_option, default=[],
                   help="key=value passed to the backend's label_ligand (JSON values), repeatable")
    p.add_argument("--retry-failed", action="store_true", default=None, help="rerun ligands that failed before")
    p.add_argument("--restart", action="store_true", help="ignore the progress file and start over")
    p.add_argument("--workdir", help="where backends that write files work (default next to the ligands file)")
    add_quiet(p)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:                     # results become labels: gauss_hpc.merge
        from . import merge

        return merge.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.path is None:
        parser.error("--ligands LIGANDS.h5 is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")   # many small molecules: processes, not threads
    try:
        cfg = config.load("label", args.config, {"backend": args.backend, "chunk": args.chunk,
                                                 "workers": args.workers, "limit": args.limit, "relax": args.relax,
                                                 "retry_failed": args.retry_failed})
        options = dict(cfg.get("options", {}))
        options.update(dict(args.option))
        if cfg["relax"]:
            options["relax_geometry"] = True
        summary = label_file(args.path, backend=cfg["backend"], rows=args.rows, limit=int(cfg["limit"]),
                             chunk=int(cfg["chunk"]), workers=int(cfg["workers"]), options=options,
                             retry_failed=bool(cfg["retry_failed"]), restart=args.restart, workdir=args.workdir,
                             progress=not args.quiet, run_config=cfg)
    except (ValueError, FileNotFoundError, store.SchemaError) as exc:
        print(f"gauss_hpc.label: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gauss_hpc.label: interrupted; finished chunks are kept, rerun the same command to continue",
              file=sys.stderr)
        return 130
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
