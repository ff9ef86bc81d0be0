"""Merge a campaign's shards into results.h5: every task exactly once (in task order, unfinished and lost
tasks with their state), atomic replace, idempotent (an unchanged campaign leaves the file untouched). Shards
are read and written in chunks of rows, so memory does not grow with the campaign; reading and parsing them can
run in several processes (`workers`)."""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .. import config, store
from ..abinitio import values as value_schema
from . import shards
from .shards import say as _say
from .executor import JobStates
from .status import latest_submission, task_state_and_shard

TASK_COLUMNS = ("task_id", "index", "name", "smiles", *store.LIGAND_PROVENANCE, "step", "backend", "status",
                "reason", "message", "attempt", "job_id", "wall_seconds", "ground_mj", "kd_step", "kd_method", "template")
WIDTH = value_schema.result_arrays()      # {name: per-row shape}, declared once in abinitio/values.py
_RESERVED = set(TASK_COLUMNS) | set(value_schema.DESCRIPTOR_NAMES) | set(WIDTH) | {"has_kd_energies", "has_g_tensors"}


def _scalar(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fixed_block(values: list, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(rows × shape array, present mask) of one chunk's values: NaN-padded or cut to `shape`; a value that is
    absent or has the wrong number of dimensions is all NaN and not present. One conversion per chunk when
    every present value has the full shape (the usual case), row by row otherwise."""
    block = np.full((len(values),) + shape, np.nan)
    rows = [i for i, v in enumerate(values) if v is not None]
    try:
        stacked = np.asarray([values[i] for i in rows], dtype=float)
    except (ValueError, TypeError):
        stacked = None
    if stacked is not None and stacked.shape[1:] == shape:
        block[rows] = stacked
        present = np.zeros(len(values), bool)
        present[rows] = True
        return block, present
    present = np.zeros(len(values), bool)
    for i in rows:
        try:
            arr = np.asarray(values[i], dtype=float)
        except (ValueError, TypeError):
            continue
        if arr.ndim == len(shape):
            region = tuple(slice(0, min(a, b)) for a, b in zip(arr.shape, shape))
            block[(i,) + region] = arr[region]
            present[i] = True
    return block, present


def _merged_values(shard: dict) -> dict:
    """Values of all steps of a task, a later step overriding an earlier one."""
    merged = {}
    for record in shard.get("steps", []):
        merged.update(record.get("values") or {})
    return merged


def _kd_source(shard: dict) -> tuple[str, str]:
    """The step whose KD energies the row holds (e.g. crystal_field when a later CASSCF step failed) and the
    method its Result declared (casscf, nevpt2, crystal_field; "" from a shard written before methods were)."""
    steps = [r for r in shard.get("steps", []) if (r.get("values") or {}).get("kd_energies")]
    return (steps[-1].get("step", ""), steps[-1].get("method", "")) if steps else ("", "")


def _geometry(values: dict) -> tuple[list[str], np.ndarray]:
    """The task's final geometry, or none when the shard's is malformed (a hand-edited or foreign shard must not
    stop the gather of every other task)."""
    cx = values.get("complex")
    none = ([], np.zeros((0, 3)))
    if not isinstance(cx, dict):
        return none
    try:
        symbols = [str(s) for s in cx["symbols"]]
        coords = np.asarray(cx["coords"], dtype=float)
    except (KeyError, TypeError, ValueError):
        return none
    return (symbols, coords) if coords.shape == (len(symbols), 3) else none


def _row(task: dict, state: dict, shard: dict | None) -> tuple[dict, dict]:
    values = _merged_values(shard) if shard else {}
    kd_step, kd_method = _kd_source(shard) if shard else ("", "")
    status_word = state["state"] if state["state"] not in ("done", "failed") else \
        ("ok" if state["state"] == "done" else state["reason"])
    row = {"task_id": task["task_id"], "index": task["index"], "name": task["name"], "smiles": task["smiles"],
           **{key: store.provenance_value(key, task.get(key)) for key in store.LIGAND_PROVENANCE},
           "step": state["step"], "backend": state["backend"],
           "status": status_word, "reason": state["reason"], "message": state["message"],
           "attempt": int(state["attempt"]), "job_id": str(state["job_id"]),
           "wall_seconds": float(state["wall_seconds"]), "ground_mj": str(values.get("ground_mj", "")),
           "kd_step": kd_step, "kd_method": kd_method, "template": str(values.get("template", ""))}
    # the geometry step's descriptors (values["descriptors"]); shards written before steps gave them: the task's
    descriptors = values.get("descriptors") or (shard.get("descriptors", {}) if shard else {})
    descriptors = descriptors if isinstance(descriptors, dict) else {}
    for name in value_schema.DESCRIPTOR_NAMES:
        value = descriptors.get(name)
        row[name] = float(value) if _scalar(value) else math.nan
    return row, values


def _reduce(campaign: Path, task: dict, latest, jobs: JobStates) -> dict:
    """Everything results.h5 needs from one task, compact."""
    state, shard, text = task_state_and_shard(campaign, task, latest, jobs)
    row, values = _row(task, state, shard)
    key = f"{state['task_id']}|{state['state']}|{state['reason']}|{state['attempt']}|{len(text)}|"
    arrays = {name: values.get(name) for name in WIDTH}
    symbols, coords = _geometry(values)
    steps = [{"task_id": task["task_id"], "step": r.get("step", ""), "backend": r.get("backend", ""),
              "status": r.get("status", ""), "message": r.get("message", ""),
              "wall_seconds": float(r.get("wall_seconds", math.nan)), "cached": bool(r.get("cached", False))}
             for r in (shard or {}).get("steps", [])]
    return {"row": row, "digest": hashlib.sha256((key + text).encode()).digest(),
            "scalars": {k: float(v) for k, v in values.items() if _scalar(v) and k not in _RESERVED},
            "arrays": arrays, "symbols": symbols, "coords": coords, "steps": steps}


CHUNK_ROWS = 2000        # tasks reduced and written at a time
_SHARED: tuple | None = None     # (campaign, tasks, latest, jobs) for the forked workers of a parallel gather


@dataclass
class Chunk:
    """Consecutive tasks as results.h5 stores them, column by column: what a worker hands the writer (numpy
    blocks pass between processes far faster than one dict per task)."""
    results: pd.DataFrame              # /results columns (task columns, descriptors, scalar values)
    arrays: dict[str, np.ndarray]      # fixed-shape values (WIDTH), NaN where absent, and has_<name> masks
    atom_counts: np.ndarray            # atoms of each task's final geometry
    symbols: np.ndarray
    coords: np.ndarray                 # (atoms, 3)
    steps: pd.DataFrame                # /steps rows of these tasks
    digests: list[bytes]               # one per task, in order: the content hash of the gather


def _chunk(reduced: list[dict]) -> Chunk:
    results = pd.DataFrame([r["row"] for r in reduced], columns=list(TASK_COLUMNS) + list(value_schema.DESCRIPTOR_NAMES))
    extra = pd.DataFrame([r["scalars"] for r in reduced], index=results.index)
    arrays = {}
    for name, shape in WIDTH.items():
        arrays[name], present = _fixed_block([r["arrays"][name] for r in reduced], shape)
        if name in ("kd_energies", "g_tensors"):
            arrays[f"has_{name}"] = present
    # the gaps follow from the energies by one definition, whatever a shard of an older release stored
    arrays[value_schema.KD_GAPS] = value_schema.kd_gaps(arrays["kd_energies"])
    steps = pd.DataFrame([s for r in reduced for s in r["steps"]],
                         columns=["task_id", "step", "backend", "status", "message", "wall_seconds", "cached"])
    return Chunk(results=pd.concat([results, extra], axis=1), arrays=arrays,
                 atom_counts=np.asarray([len(r["symbols"]) for r in reduced], np.int64),
                 symbols=np.asarray([s for r in reduced for s in r["symbols"]], dtype=object),
                 coords=np.concatenate([r["coords"] for r in reduced]) if reduced else np.zeros((0, 3)),
                 steps=steps, digests=[r["digest"] for r in reduced])


def _reduce_chunk(first: int) -> Chunk:
    campaign, tasks, latest, jobs = _SHARED
    return _chunk([_reduce(campaign, t, latest.get(t["task_id"]), jobs) for t in tasks[first:first + CHUNK_ROWS]])


def _reduced_chunks(campaign: Path, tasks: list[dict], latest: dict, jobs: JobStates, workers: int):
    """The tasks as Chunks, in task order. With workers > 1 the shards are read, parsed and put in columns
    (what gather's time goes to) in that many forked processes, a few chunks ahead of the writer, so memory
    stays bounded; the scheduler is asked once, here, before the fork."""
    global _SHARED
    starts = iter(range(0, max(1, len(tasks)), CHUNK_ROWS))
    _SHARED = (campaign, tasks, latest, jobs)
    try:
        if workers <= 1 or len(tasks) <= CHUNK_ROWS:
            yield from (_reduce_chunk(first) for first in starts)
            return
        jobs.resolve()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            ahead = collections.deque(pool.submit(_reduce_chunk, first)
                                      for first in itertools.islice(starts, 2 * workers))
            while ahead:
                chunk = ahead.popleft().result()
                for first in itertools.islice(starts, 1):
                    ahead.append(pool.submit(_reduce_chunk, first))
                yield chunk
    finally:
        _SHARED = None


def gather_workers(requested: int | None = None) -> int:
    """Processes that read shards: `requested`, else [jobs] gather_workers; 0 means the CPUs this process may
    use, at most 8 (beyond that the file system, not the parsing, sets the pace)."""
    n = int(config.load("jobs")["gather_workers"] if requested is None else requested)
    if n < 0:
        raise ValueError(f"gather workers must be >= 0 (0 = the CPU count, at most 8); got {n}")
    return n or min(8, len(os.sched_getaffinity(0)))


def gather(campaign: str | Path, out: str | Path | None = None, *, quiet: bool = False,
           workers: int | None = None) -> Path:
    """Write (or leave, when nothing changed) `out` (default <campaign>/results.h5); returns its path. `workers`
    processes read the shards (default: gather_workers()); the file is the same whatever their number."""
    campaign = Path(campaign)
    out = Path(out) if out is not None else campaign / "results.h5"
    start = time.perf_counter()
    with shards.campaign_lock(campaign):
        tasks = shards.read_tasks(campaign)
        submissions = shards.read_submissions(campaign)
        latest = latest_submission(submissions)
        meta = json.loads((campaign / "campaign.json").read_text())
        jobs = JobStates(campaign, submissions)
        old = None
        if out.is_file():
            try:
                with h5py.File(out, "r") as h5:
                    old = h5.attrs.get("content_sha256")
            except OSError:
                pass
        digest = hashlib.sha256(meta["spec_sha256"].encode())
        counts = {"n_tasks": len(tasks), "n_ok": 0, "n_unfinished": 0}
        source = meta["spec"]["input"].get("path")
        # written next to `out` while the shards are read; kept only when the content changed
        with store.results_writer(out, config=meta["spec"], sources=[source] if source else []) as writer:
            for chunk in _reduced_chunks(campaign, tasks, latest, jobs, gather_workers(workers)):
                for item in chunk.digests:
                    digest.update(item)
                status_words = chunk.results["status"]
                counts["n_ok"] += int((status_words == "ok").sum())
                counts["n_unfinished"] += int(status_words.isin(("pending", "running", "not_submitted")).sum())
                writer.append(chunk.results, chunk.arrays, chunk.atom_counts, chunk.symbols, chunk.coords,
                              chunk.steps)
            content = digest.hexdigest()
            counts["n_failed"] = counts["n_tasks"] - counts["n_ok"] - counts["n_unfinished"]
            if content == old:
                writer.keep_old = True
            else:
                for key, value in {"campaign": str(campaign.resolve()), "content_sha256": content, **counts}.items():
                    writer.h5.attrs[key] = value
    seconds = time.perf_counter() - start
    if content == old:
        _say(f"{out}: up to date ({counts['n_tasks']} tasks)", quiet)
    else:
        _say(f"{out}: {counts['n_tasks']} tasks ({counts['n_ok']} ok, {counts['n_failed']} failed, "
             f"{counts['n_unfinished']} unfinished) in {seconds:.2f} s", quiet)
    return out
