"""The campaign directory: where every file of a campaign lives, and the per-task files the array tasks write.

    campaign.json            the spec (resolved) and when the campaign was first submitted
    tasks.json               every task of the spec: task_id, name, smiles, seed info (written atomically)
    tasks/<task_id>/         the task's work directory: task.json (its inputs), one folder per step with the
                             step's files and its cached result (step.json)
    shards/<task_id>.json    the task's result: one Result per step plus task metadata (written atomically)
    running/<task_id>.json   the latest attempt of the task: attempt, job id, host, pid, and `finished` once
                             its shard is written
    submissions/<n>.json     one file per submission: executor, job ids and the tasks of each array element,
                             and on Slurm its arrays (id, offset, elements: one submission may be several)
    cancelled/<time>.json    job ids `jobs cancel` cancelled (a cancelled local job leaves no other trace)
    logs/                    submitit's folder (pickles, stdout/stderr of every array element); never read by
                             status or gather

Array tasks only ever write their own files, each by temp + rename; only `gather` writes results.h5.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from pathlib import Path
from typing import Iterator

from ..store import atomic_write_text


def say(message: str, quiet: bool = False) -> None:
    """A progress line of the jobs commands on stderr ('[jobs] ...'), unless quiet."""
    if not quiet:
        print(f"[jobs] {message}", file=sys.stderr, flush=True)


class CampaignError(ValueError):
    """A campaign directory is missing or not a gauss_hpc campaign."""


def task_dir(campaign: Path, task_id: str) -> Path:
    return campaign / "tasks" / task_id


def shard_path(campaign: Path, task_id: str) -> Path:
    return campaign / "shards" / f"{task_id}.json"


def marker_path(campaign: Path, task_id: str) -> Path:
    return campaign / "running" / f"{task_id}.json"


def write_json(path: Path, data) -> None:
    """Atomic JSON write: readers see the old complete file or the new complete file."""
    atomic_write_text(path, json.dumps(data, sort_keys=True, allow_nan=True))


def write_text_in_own_dir(path: Path, text: str) -> None:
    """Atomic write into a directory no other process writes at the same time (a task's folder while submit
    holds the campaign lock): a fixed temporary name instead of mkstemp's, half the file-system calls, which
    is what rendering 100k tasks spends its time on."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


try:        # parsing floats dominates gather; orjson parses them faster than json (same results, bench/jobs.py)
    from orjson import loads as _loads
except ImportError:
    from json import loads as _loads


class CorruptShard(Exception):
    """A shard exists but is not a complete gauss_hpc shard (truncated, overwritten, foreign)."""


SHARD_KEYS = ("task_id", "status", "attempt", "steps")


def read_shard(campaign: Path, task_id: str) -> dict | None:
    """The task's shard, None when there is none; raises CorruptShard when it cannot be trusted."""
    return read_shard_text(campaign, task_id)[0]


def read_shard_text(campaign: Path, task_id: str) -> tuple[dict | None, str]:
    """(shard, its text) as read_shard, with the exact text (for content hashes of gathers)."""
    path = os.path.join(campaign, "shards", f"{task_id}.json")      # a string: gather reads 100k of them
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return None, ""
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptShard(f"{path}: unreadable ({exc})") from None
    try:
        data = _loads(text)
    except ValueError as exc:        # json.JSONDecodeError and orjson.JSONDecodeError are ValueErrors
        raise CorruptShard(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or any(k not in data for k in SHARD_KEYS):
        raise CorruptShard(f"{path}: lacks {[k for k in SHARD_KEYS if k not in (data if isinstance(data, dict) else {})]}")
    if data["task_id"] != task_id:
        raise CorruptShard(f"{path}: belongs to task {data['task_id']!r}")
    return data, text


def read_marker(campaign: Path, task_id: str) -> dict | None:
    try:
        return json.loads(marker_path(campaign, task_id).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def read_tasks(campaign: Path) -> list[dict]:
    path = Path(campaign) / "tasks.json"
    if not path.is_file():
        raise CampaignError(f"{campaign}: not a campaign directory (no tasks.json); create one with "
                            f"`python -m gauss_hpc.jobs submit SPEC --campaign {campaign}`")
    return json.loads(path.read_text())


def read_submissions(campaign: Path) -> list[dict]:
    """Every submission of the campaign, oldest first."""
    folder = Path(campaign) / "submissions"
    if not folder.is_dir():
        return []
    subs = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    return sorted(subs, key=lambda s: s["number"])


@contextlib.contextmanager
def campaign_lock(campaign: Path) -> Iterator[None]:
    """Serialise submit / resubmit / gather / cancel on one campaign (array tasks never take it)."""
    campaign = Path(campaign)
    campaign.mkdir(parents=True, exist_ok=True)
    with open(campaign / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

