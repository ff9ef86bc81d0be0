"""Tasks: one per input ligand, identified by a content hash of what it computes; and the runner an array
element executes (`run_chunk`), which runs each of its tasks' steps and writes one shard per task."""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from .. import textio
from ..abinitio.result import Result, Status
from ..store import LIGAND_PROVENANCE, provenance_value
from . import shards
from .spec import Spec, SpecError, StepSpec
from .steps import resolve

SAMPLE_COLUMNS = ("smiles", "canonical", "valid", "novel", "unique", "seed_id", "sigma")
SAMPLE_PROVENANCE = ("seed_ligand_row", "batch", "round")      # read when the samples file has them


# --- inputs -------------------------------------------------------------------------------------------------

def _input_kind(inp: dict) -> str:
    if inp.get("kind"):
        return inp["kind"]
    if inp.get("smiles"):
        return "smiles"
    path = Path(inp["path"])
    if not path.is_file():
        raise SpecError(f"input {path}: no such file (give [input] path or --input)")
    if path.suffix in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as h5:
                kind = h5.attrs.get("kind")
        except OSError as exc:
            raise SpecError(f"input {path}: not a readable HDF5 file ({exc})") from None
        if kind in ("samples", "ligands"):
            return kind
        raise SpecError(f"input {path}: an HDF5 file of kind {kind!r}; expected samples.h5 or ligands.h5 "
                        f"(or set kind = ...)")
    return "smiles"


def _smiles_file(path: Path) -> pd.DataFrame:
    """A SMILES list: one per line, optionally `SMILES<TAB>name`; blank lines and #-comments skipped. Without a
    tab the whole line is the SMILES, so odd SMILES (spaces, quotes) arrive exactly as written."""
    if path.suffix == ".csv":
        records = list(textio.lines(path))
        header = [h.strip() for h in next(csv.reader([records[0].text]), [])] if records else []
        if "smiles" not in header:
            raise SpecError(f"input {path}: a CSV needs a 'smiles' column (has {header})")
        rows = []
        for line in records[1:]:
            if not line.text.strip():
                continue
            row = dict(zip(header, next(csv.reader([line.text]), [])))
            name = "" if line.error else str(row.get("name", "")).strip()
            rows.append({"smiles": str(row.get("smiles", "")).strip(), "name": name or f"line{line.number}",
                         "input_error": line.error})
        return pd.DataFrame(rows, columns=["smiles", "name", "input_error"])
    rows = []
    for line in textio.lines(path):
        # a line that is not text (not UTF-8, a NUL byte) stays a task: its bytes written as \xNN, it fails at
        # once with its encoding error (input_error), and never stops the other lines
        if not line.text.strip() or line.text.lstrip().startswith("#"):
            continue
        smiles, _, name = line.text.partition("\t")
        rows.append({"smiles": smiles.strip(), "name": "" if line.error else name.strip(),
                     "input_error": line.error})
        rows[-1]["name"] = rows[-1]["name"] or f"line{line.number}"
    return pd.DataFrame(rows, columns=["smiles", "name", "input_error"])


def _only_rows(table: pd.DataFrame, rows, path: Path) -> pd.DataFrame:
    """The rows of the input file a spec names (`[input] rows = [...]`, indices of the file's table)."""
    if rows is None:
        return table
    rows = [int(r) for r in rows]
    bad = [r for r in rows if not 0 <= r < len(table)]
    if bad:
        raise SpecError(f"input {path}: rows {bad[:5]} out of range (the file has {len(table)} rows)")
    return table.iloc[rows]


def _canonical(smiles: str) -> str:
    """The novelty key of a ligand given only as SMILES ("" when RDKit cannot read it: assembly will say why);
    RDKit is imported only here, for inputs without the key, so that the job core loads no chemistry."""
    from ..chem.ligands import identity_or_empty

    return identity_or_empty(smiles)


def _samples(path: Path, select, rows=None) -> pd.DataFrame:
    from ..store import SchemaError, open_checked, read_table

    with open_checked(path, "samples") as h5:
        if "samples" not in h5:
            raise SpecError(f"input {path}: no /samples table (was it written by gauss_hpc.sample?)")
        have = set(h5["samples"].keys())
        missing = [c for c in SAMPLE_COLUMNS if c not in have]
        if missing:
            raise SpecError(f"input {path}: /samples lacks columns {missing}; it needs {list(SAMPLE_COLUMNS)}")
        try:
            table = read_table(h5["samples"], SAMPLE_COLUMNS + tuple(c for c in SAMPLE_PROVENANCE if c in have))
        except SchemaError as exc:
            raise SpecError(f"input {path}: {exc}") from None
    table["sample_row"] = range(len(table))
    table = _only_rows(table, rows, path)
    for column in select:
        if column not in table.columns:
            raise SpecError(f"input {path}: select = {column!r} is not a boolean column of /samples "
                            f"(use {['valid', 'novel', 'unique']})")
        table = table[table[column].astype(bool)]
    table["name"] = [f"sample{r}" for r in table["sample_row"]]
    return table


def read_inputs(inp: dict) -> pd.DataFrame:
    """The spec's input as a table with columns smiles, name and the ligand's identity and provenance
    (store.LIGAND_PROVENANCE: canonical always, source_file for files, ligand_row or sample_row, seed_id,
    seed_ligand_row, sigma, batch and round for samples)."""
    kind = _input_kind(inp)
    if inp.get("smiles"):
        smiles = inp["smiles"]
        if isinstance(smiles, str) or not all(isinstance(s, str) for s in smiles):
            raise SpecError(f"[input] smiles should be a list of strings, got {smiles!r}")
        names = inp.get("names") or [f"ligand{i}" for i in range(len(smiles))]
        if len(names) != len(smiles):
            raise SpecError(f"[input] {len(names)} names for {len(smiles)} smiles")
        table = pd.DataFrame({"smiles": list(smiles), "name": [str(n) for n in names]})
        table["canonical"] = [_canonical(x) for x in table["smiles"]]
    else:
        path = Path(inp["path"])
        if not path.is_file():
            raise SpecError(f"input {path}: no such file")
        if kind == "samples":
            table = _samples(path, inp.get("select", ["valid", "unique"]), inp.get("rows"))
        elif kind == "ligands":
            from ..store import read_ligands

            table = read_ligands(path)
            table["ligand_row"] = range(len(table))
            table = _only_rows(table, inp.get("rows"), path)
            table["name"] = [f"ligand{r}" for r in table["ligand_row"]]
        else:
            table = _smiles_file(path)
            table["canonical"] = [_canonical(x) for x in table["smiles"]]
        table["source_file"] = str(path.resolve())
    limit = int(inp.get("limit", 0) or 0)
    if limit > 0:
        table = table.head(limit)
    return table.reset_index(drop=True)


# --- task ids -----------------------------------------------------------------------------------------------

def template_digest(step: StepSpec) -> str:
    """Content hash of the input templates a templated backend renders (changing a template makes new tasks)."""
    if step.backend not in ("molcas", "orca"):
        return ""
    folder = step.params.get("template_dir")
    if not folder:
        from ..abinitio.templates import TEMPLATE_DIR

        folder = TEMPLATE_DIR
    folder = Path(folder) / step.backend if (Path(folder) / step.backend).is_dir() else Path(folder)
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.j2")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def task_ids(smiles: list[str], steps: list[StepSpec], templates: list[str]) -> list[str]:
    """The task id of each SMILES: sha256 of (the ligand SMILES as written, each step's name/backend/parameters,
    template contents); the steps' identities are built once (they are the same for all)."""
    identities = [dict(s.identity(), template=t) for s, t in zip(steps, templates)]
    return [hashlib.sha256(json.dumps({"smiles": x, "steps": identities}, sort_keys=True).encode()).hexdigest()[:20]
            for x in smiles]


def make_tasks(spec: Spec) -> tuple[list[dict], int]:
    """The campaign's tasks in input order, duplicates (same task id) merged; returns (tasks, n_duplicates)."""
    table = read_inputs(spec.input)
    templates = [template_digest(s) for s in spec.steps]
    tasks, seen = [], set()
    ids = task_ids(table["smiles"].tolist(), spec.steps, templates)
    for tid, row in zip(ids, table.to_dict("records")):
        if tid in seen:
            continue
        seen.add(tid)
        task = {"task_id": tid, "index": len(tasks), "name": str(row["name"]), "smiles": row["smiles"]}
        if row.get("input_error"):       # a line that could not be read: the task fails at once, saying so
            task["input_error"] = row["input_error"]
        for key in LIGAND_PROVENANCE:
            if key in row:
                task[key] = provenance_value(key, row[key])
        tasks.append(task)
    return tasks, len(table) - len(tasks)


def render_tasks(campaign: Path, tasks: list[dict], spec: Spec) -> None:
    """Each task's work directory with task.json: everything the runner needs, independent of later spec edits.
    An existing task.json is kept (its task id already fixes its content)."""
    steps = [s.identity() for s in spec.steps]
    for task in tasks:
        folder = shards.task_dir(campaign, task["task_id"])
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            if (folder / "task.json").is_file():
                continue
        shards.write_text_in_own_dir(folder / "task.json", json.dumps({**task, "steps": steps}, sort_keys=True))


# --- running ------------------------------------------------------------------------------------------------

class TimeLimitReached(BaseException):
    """Raised in the running task when the scheduler warns that the time limit is near (USR2). A BaseException
    so that backends catching Exception cannot swallow it."""


class Terminated(BaseException):
    """SIGTERM (scancel, node shutdown) or SIGINT (local cancel): stop at once without a shard, so status
    reports what the scheduler or `jobs cancel` recorded."""


def _on_time_limit(signum, frame):
    raise TimeLimitReached()


def _on_terminate(signum, frame):
    raise Terminated()


def _job_id() -> str:
    try:
        import submitit

        return str(submitit.JobEnvironment().job_id)
    except RuntimeError:
        return f"pid{os.getpid()}"


def _call(fn, item, workdir: Path, name: str, params: dict) -> Result:
    try:
        takes_name = "name" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_name = False
    result = fn(item, workdir, name=name, **params) if takes_name else fn(item, workdir, **params)
    if not isinstance(result, Result):
        raise TypeError(f"step returned {type(result).__name__}, expected a Result")
    result.name = name
    return result


def _next_input(item, result: Result):
    """The input of the next step: the complex this step produced (values["complex"], a plain dict), or the
    complex it was given with the atoms this step moved (values["coordinates"]), or what it was given."""
    values = result.values
    if isinstance(values.get("complex"), dict):
        return values["complex"]
    coords = values.get("coordinates")
    if isinstance(item, dict) and isinstance(coords, list) and len(coords) == len(item.get("symbols", ())):
        return {**item, "coords": coords}
    return item


def _run_step(step: dict, k: int, item, folder: Path, name: str) -> tuple[Result, bool]:
    """(result, cached): an OK result cached by an earlier attempt is reused, so a resubmitted task resumes
    after its last successful step."""
    workdir = folder / f"{k + 1}_{step['name']}"
    workdir.mkdir(parents=True, exist_ok=True)
    cache = workdir / "step.json"
    if cache.is_file():
        try:
            cached = Result.from_json(cache.read_text())
            if cached.ok:
                return cached, True
        except (ValueError, TypeError, KeyError):
            pass
    start = time.perf_counter()
    try:
        fn = resolve(step["name"], step["backend"], step.get("function", ""))
        result = _call(fn, item, workdir, name, dict(step["params"]))
    except (TimeLimitReached, Terminated):
        raise
    except Exception as exc:        # a step must never take the other tasks of the array element down
        tail = "".join(traceback.format_exception(exc)[-3:])
        result = Result.failure(name, step["backend"], Status.FAILED,
                                f"step {step['name']} raised {type(exc).__name__}: {exc}\n{tail}")
    if not result.wall_seconds:
        result.wall_seconds = time.perf_counter() - start
    if result.ok:
        shards.write_json(cache, result.to_dict())
    return result, False


def _shard(task: dict, attempt: int, job_id: str, records: list[dict], status: str, message: str, step: str,
           backend: str, started: float) -> dict:
    return {"task_id": task["task_id"], "name": task["name"], "smiles": task["smiles"],
            "task": {k: v for k, v in task.items() if k != "steps"}, "attempt": attempt, "job_id": job_id,
            "host": socket.gethostname(), "status": status, "reason": "" if status == Status.OK else status,
            "message": message, "step": step, "backend": backend, "steps": records,
            "wall_seconds": time.time() - started, "started": started, "finished": time.time()}


def run_task(campaign: Path, task_id: str, attempt: int, job_id: str) -> dict:
    """Run every step of one task and write its shard (also for failures). Returns the shard."""
    folder = shards.task_dir(campaign, task_id)
    task = json.loads((folder / "task.json").read_text())
    started = time.time()
    shards.write_json(shards.marker_path(campaign, task_id),
                      {"attempt": attempt, "job_id": job_id, "host": socket.gethostname(), "pid": os.getpid(),
                       "started": started})
    item, records, status, message, last = task["smiles"], [], Status.OK, "", task["steps"][-1]
    limit_reached = False
    if task.get("input_error"):
        status, message = Status.INVALID_INPUT, f"input {task.get('source_file', '')}: {task['input_error']}"
    try:
        for k, step in enumerate(task["steps"] if status == Status.OK else []):
            last = step
            result, cached = _run_step(step, k, item, folder, task["name"])
            records.append({"step": step["name"], "cached": cached, **result.to_dict()})
            if not result.ok:
                status, message = result.status, result.message
                break
            item = _next_input(item, result)
    except Terminated:
        shards.marker_path(campaign, task_id).unlink(missing_ok=True)
        raise
    except TimeLimitReached:
        status, limit_reached = Status.TIMEOUT, True
        message = f"step {last['name']} stopped: the job reached its time limit (resubmit with more time)"
    shard = _shard(task, attempt, job_id, records, status, message, last["name"], last["backend"], started)
    shards.write_json(shards.shard_path(campaign, task_id), shard)
    # the marker stays, marked finished: status can tell "this attempt wrote the shard" from "not started yet"
    shards.write_json(shards.marker_path(campaign, task_id),
                      {"attempt": attempt, "job_id": job_id, "host": socket.gethostname(), "pid": os.getpid(),
                       "started": started, "finished": time.time()})
    if limit_reached:           # the job's limit ends the element; a step's own program timeout does not
        raise TimeLimitReached()
    return shard


def run_chunk(campaign: str, attempt: int, task_ids: list[str]) -> dict:
    """What one array element runs: its tasks one after the other, each writing its shard. A task that
    already has an OK shard is skipped (another submission finished it). When the time-limit warning arrives,
    the running task and the ones not yet started get TIMEOUT shards, and the element ends cleanly. On SIGTERM
    (scancel) it stops without a shard: the scheduler's record says what happened."""
    campaign = Path(campaign)
    job_id = _job_id()
    signal.signal(signal.SIGUSR2, _on_time_limit)
    signal.signal(signal.SIGTERM, _on_terminate)
    signal.signal(signal.SIGINT, _on_terminate)       # the local executor cancels with SIGINT
    counts = {"ok": 0, "failed": 0, "skipped": 0, "timeout": 0}
    for i, tid in enumerate(task_ids):
        try:
            previous = shards.read_shard(campaign, tid)
        except shards.CorruptShard:
            previous = None
        if previous is not None and previous["status"] == Status.OK:
            counts["skipped"] += 1
            continue
        try:
            shard = run_task(campaign, tid, attempt, job_id)
        except TimeLimitReached:
            counts["timeout"] = len(task_ids) - i
            _mark_not_started(campaign, task_ids[i + 1:], attempt, job_id)
            print(f"gauss_hpc.jobs: time limit reached in task {tid}; {len(task_ids) - i - 1} later tasks of "
                  f"this job marked timeout", file=sys.stderr)
            break
        counts["ok" if shard["status"] == Status.OK else "failed"] += 1
    return counts


def _mark_not_started(campaign: Path, task_ids: list[str], attempt: int, job_id: str) -> None:
    for tid in task_ids:
        try:
            previous = shards.read_shard(campaign, tid)
        except shards.CorruptShard:
            previous = None
        if previous is not None and previous["status"] == Status.OK:
            continue
        task = json.loads((shards.task_dir(campaign, tid) / "task.json").read_text())
        last = task["steps"][0]
        shards.write_json(shards.shard_path(campaign, tid), _shard(
            task, attempt, job_id, [], Status.TIMEOUT,
            "not started: its array job reached the time limit first (resubmit, or lower tasks_per_job)",
            last["name"], last["backend"], time.time()))
