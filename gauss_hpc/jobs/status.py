"""Where every task of a campaign stands, from its shard, its running marker and the scheduler.

States: not_submitted, pending, running, done, failed. A failed task has a reason: the backend's status
(scf_not_converged, casscf_not_converged, invalid_input, timeout, ...) from its shard, or, when its job ended
without a shard, the scheduler's (timeout, cancelled, killed, out_of_memory, node_fail, crashed, lost), or
corrupt_shard when its shard cannot be read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import shards
from .executor import ACTIVE, JobStates

STATES = ("not_submitted", "pending", "running", "done", "failed")
COLUMNS = ("task_id", "index", "name", "smiles", "state", "reason", "message", "attempt", "job_id", "executor",
           "step", "backend", "wall_seconds")


def latest_submission(submissions: list[dict]) -> dict[str, tuple[dict, str]]:
    """{task_id: (submission, job id)} of the last submission that included each task."""
    latest = {}
    for sub in submissions:
        for job in sub["jobs"]:
            for tid in job["tasks"]:
                latest[tid] = (sub, job["job_id"])
    return latest


def _from_shard(row: dict, shard: dict) -> dict:
    ok = shard["status"] == "ok"
    row.update(state="done" if ok else "failed", reason="" if ok else shard.get("reason") or shard["status"],
               message=shard.get("message", ""), attempt=shard["attempt"], job_id=shard.get("job_id", ""),
               step=shard.get("step", ""), backend=shard.get("backend", ""),
               wall_seconds=float(shard.get("wall_seconds", float("nan"))))
    return row


def task_state(campaign: Path, task: dict, latest: tuple[dict, str] | None, jobs: JobStates) -> dict:
    """The status row of one task."""
    return task_state_and_shard(campaign, task, latest, jobs)[0]


def task_state_and_shard(campaign: Path, task: dict, latest: tuple[dict, str] | None,
                         jobs: JobStates) -> tuple[dict, dict | None, str]:
    """(status row, the shard the row comes from or None, its text): gather reads each shard once."""
    row = {"task_id": task["task_id"], "index": task["index"], "name": task["name"], "smiles": task["smiles"],
           "state": "not_submitted", "reason": "", "message": "", "attempt": 0, "job_id": "", "executor": "",
           "step": "", "backend": "", "wall_seconds": float("nan")}
    corrupt, text = "", ""
    try:
        shard, text = shards.read_shard_text(campaign, task["task_id"])
    except shards.CorruptShard as exc:
        shard, corrupt = None, str(exc)
    if latest is None:
        if shard is not None:
            return _from_shard(row, shard), shard, text
        if corrupt:
            row.update(state="failed", reason="corrupt_shard", message=corrupt)
        return row, None, ""
    sub, job_id = latest
    row.update(attempt=sub["number"], job_id=job_id, executor=sub["executor"])
    # An OK shard is final whatever attempt wrote it: the task runner skips a task that has one.
    if shard is not None and (shard["attempt"] >= sub["number"] or shard["status"] == "ok"):
        row["executor"] = sub["executor"] if shard["attempt"] == sub["number"] else ""
        return _from_shard(row, shard), shard, text
    state = jobs.state(sub, job_id)
    marker = shards.read_marker(campaign, task["task_id"])
    this_attempt = marker is not None and marker.get("attempt") == sub["number"]
    finished = this_attempt and bool(marker.get("finished"))
    if corrupt and (finished or state not in ACTIVE):
        # this attempt wrote the shard (its job may still be exiting), or no running job will rewrite it
        row.update(state="failed", reason="corrupt_shard", message=corrupt)
    elif state in ACTIVE:
        row["state"] = "running" if state == "running" and this_attempt and not finished else "pending"
    elif state == "unknown":
        row.update(state="pending", reason="unknown",
                   message=f"{sub['executor']} job {job_id} of host {sub.get('host')} cannot be checked from here")
    else:
        reason, message = jobs.ended_reason(sub, job_id)
        row.update(state="failed", reason=reason, message=message)
    return row, None, ""


def status(campaign: str | Path) -> pd.DataFrame:
    """One row per task (COLUMNS), in task order."""
    campaign = Path(campaign)
    submissions = shards.read_submissions(campaign)
    latest = latest_submission(submissions)
    jobs = JobStates(campaign, submissions)
    rows = [task_state(campaign, t, latest.get(t["task_id"]), jobs) for t in shards.read_tasks(campaign)]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Counts per state, failures split by reason: the table `jobs status` prints."""
    rows = []
    for state in STATES:
        sub = table[table["state"] == state]
        if state == "failed":
            for reason, count in sub["reason"].value_counts().sort_index().items():
                rows.append({"state": "failed", "reason": reason, "tasks": int(count)})
        elif len(sub):
            rows.append({"state": state, "reason": "", "tasks": len(sub)})
    rows.append({"state": "total", "reason": "", "tasks": len(table)})
    return pd.DataFrame(rows, columns=["state", "reason", "tasks"])
