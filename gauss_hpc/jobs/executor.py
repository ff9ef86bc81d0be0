"""Schedulers behind one interface: which executor to use, submitting array elements through submitit, the
state of their jobs, why an ended job left no shard, and cancelling.

  slurm  submitit.SlurmExecutor.map_array: one Slurm job array per submission (%array_parallelism), one array
         element per chunk of `tasks_per_job` tasks.
  local  submitit.LocalExecutor.map_array on this machine: `local_parallelism` jobs (default: CPU count), the
         tasks dealt round-robin among them; jobs survive the submitting process.
  debug  submitit.DebugExecutor: everything in this process, one task after the other (for pdb).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from .shards import write_json

ACTIVE = ("pending", "running")
# Slurm job states → our words (squeue %T / scontrol JobState)
_SLURM_ACTIVE = {"PENDING": "pending", "CONFIGURING": "pending", "REQUEUED": "pending", "RESV_DEL_HOLD": "pending",
                 "REQUEUE_HOLD": "pending", "REQUEUE_FED": "pending", "RUNNING": "running", "COMPLETING": "running",
                 "SUSPENDED": "running", "STAGE_OUT": "running", "SIGNALING": "running", "RESIZING": "running"}
_SLURM_ENDED = {"TIMEOUT": "timeout", "CANCELLED": "cancelled", "NODE_FAIL": "node_fail", "PREEMPTED": "cancelled",
                "OUT_OF_MEMORY": "out_of_memory", "BOOT_FAIL": "node_fail", "DEADLINE": "timeout",
                "FAILED": "crashed", "COMPLETED": "lost"}
# Lines slurmstepd writes into the job's stderr
_LOG_REASONS = (("DUE TO TIME LIMIT", "timeout"), ("DUE TO NODE FAIL", "node_fail"), ("DUE TO PREEMPTION", "cancelled"),
                ("CANCELLED AT", "cancelled"), ("oom-kill", "out_of_memory"), ("Out Of Memory", "out_of_memory"),
                ("timed-out and not checkpointable", "timeout"))


def slurm_reachable() -> tuple[bool, str]:
    """(True, "") when `sinfo` answers with a usable node, else (False, why)."""
    if shutil.which("sinfo") is None:
        return False, "sinfo not found"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return False, "sinfo did not answer in 15 s"
    if proc.returncode != 0:
        return False, f"sinfo failed: {proc.stderr.strip()[:200]}"
    states = {s.strip("*~#!%$@^-") for s in proc.stdout.split()}
    if not states & {"idle", "mixed", "allocated", "completing"}:
        return False, f"no usable Slurm node (states: {', '.join(sorted(states)) or 'none'})"
    return True, ""


def choose(executor: str) -> tuple[str, str]:
    """(kind, note for the user). `auto` is slurm when reachable, else local, and the note says which and why."""
    if executor in ("local", "debug"):
        return executor, f"executor: {executor}"
    ok, why = slurm_reachable()
    if ok:
        return "slurm", "executor: slurm (sinfo answers)"
    if executor == "slurm":
        raise RuntimeError(f"executor = slurm but no Slurm is reachable ({why}); start the local cluster with "
                           f"`sudo slurm/start_cluster.sh` or use --executor local")
    return "local", f"executor: local (no Slurm reachable: {why}; start one with `sudo slurm/start_cluster.sh`)"


def chunks(task_ids: list[str], kind: str, tasks_per_job: int, local_parallelism: int) -> list[list[str]]:
    """The tasks of each array element: consecutive groups of tasks_per_job on Slurm; round-robin over the
    local worker count on the local executor (submitit starts every local job at once)."""
    if kind == "slurm":
        return [task_ids[i:i + tasks_per_job] for i in range(0, len(task_ids), tasks_per_job)]
    n = min(len(task_ids), local_parallelism or os.cpu_count() or 1) if kind == "local" else 1
    return [task_ids[i::n] for i in range(n)] if n else []


def make_executor(kind: str, folder: Path, *, name: str, cpus: int, mem_gb: float, time_min: int,
                  partition: str = "", array_parallelism: int = 64, signal_delay_s: int = 60):
    import submitit

    # the warning must come before the limit, and a short job needs a short warning
    delay = int(max(10, min(signal_delay_s, time_min * 60 // 4)))
    if kind == "slurm":
        ex = submitit.SlurmExecutor(folder=folder, python=sys.executable)
        params = {"job_name": name, "time": int(time_min), "cpus_per_task": int(cpus),
                  "mem": f"{max(1, int(round(mem_gb * 1024)))}MB", "array_parallelism": int(array_parallelism),
                  "signal_delay_s": delay}
        if partition:
            params["partition"] = partition
        ex.update_parameters(**params)
    elif kind == "local":
        ex = submitit.LocalExecutor(folder=folder, python=sys.executable)
        ex.update_parameters(timeout_min=time_min, signal_delay_s=delay)
    elif kind == "debug":
        ex = submitit.DebugExecutor(folder=folder)
    else:
        raise ValueError(f"executor {kind!r}: use slurm, local or debug")
    return ex


# --- job states ---------------------------------------------------------------------------------------------

def _squeue() -> dict[str, str] | None:
    """{job id ("123_4" for array elements): our state} of every job Slurm still lists; None if unreachable."""
    if shutil.which("squeue") is None:
        return None
    try:
        proc = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        return None
    out = {}
    for line in proc.stdout.splitlines():
        jid, _, state = line.strip().partition("|")
        out[jid] = _SLURM_ACTIVE.get(state, "ended")
    return out


def _scontrol(master: str) -> dict[str, tuple[str, str]]:
    """{"123_4": (JobState, ExitCode)} for an array Slurm still remembers (MinJobAge), else {}."""
    try:
        proc = subprocess.run(["scontrol", "-o", "show", "job", master], capture_output=True, text=True,
                              timeout=30)
    except (subprocess.TimeoutExpired, FileNotFoundError):
        return {}
    out = {}
    for line in proc.stdout.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        jid = fields.get("JobId", "")
        if fields.get("ArrayTaskId") and fields.get("ArrayJobId"):
            jid = f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}"
        out[jid] = (fields.get("JobState", ""), fields.get("ExitCode", ""))
    return out


def _local_alive(pid: int) -> bool:
    """Whether the local job's submitit controller still runs (not a zombie; a python process: guards against
    the pid having been reused; right after the fork the cmdline is still the submitting python's)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z" and b"python" in cmdline


class JobStates:
    """The state of the jobs of a campaign's submissions, queried once per status call."""

    def __init__(self):
        self._squeue: dict | None | bool = False
        self._scontrol: dict[str, dict] = {}
        self._cancelled: dict[str, str] | None = None

    def state(self, submission: dict, job_id: str) -> str:
        """pending | running | ended | unknown (a local job of another host)."""
        kind = submission["executor"]
        if kind == "slurm":
            if self._squeue is False:
                self._squeue = _squeue()
            if self._squeue is None:
                return "unknown"
            return self._squeue.get(job_id, "ended")
        if kind == "local":
            if submission.get("host") != socket.gethostname():
                return "unknown"
            return "running" if _local_alive(int(job_id)) else "ended"
        return "ended"

    def ended_reason(self, campaign: Path, submission: dict, job_id: str) -> tuple[str, str]:
        """(reason, message) for a job that ended without writing a task's shard."""
        if self._cancelled is None:
            self._cancelled = cancelled_jobs(campaign)
        if job_id in self._cancelled:
            return "cancelled", f"job {job_id} cancelled by `jobs cancel` at {self._cancelled[job_id]}"
        if submission["executor"] == "slurm":
            master = job_id.split("_")[0]
            if master not in self._scontrol:
                self._scontrol[master] = _scontrol(master)
            state, exit_code = self._scontrol[master].get(job_id, ("", ""))
            state = state.split()[0] if state else ""
            if state:
                reason = _SLURM_ENDED.get(state, "crashed")
                code, _, sig = exit_code.partition(":")
                if state == "FAILED" and (sig == "9" or code == "137"):     # SIGKILL of the task or its shell
                    reason = "killed"
                return reason, f"Slurm job {job_id}: {state} (exit code {exit_code})"
        logs = Path(campaign) / "logs"
        err = logs / f"{job_id}_0_log.err"
        if err.is_file():
            text = err.read_text(errors="replace")
            for needle, reason in _LOG_REASONS:
                if needle in text:
                    line = next((ln for ln in text.splitlines() if needle in ln), needle)
                    return reason, f"job {job_id}: {line.strip()[:300]}"
        result = logs / f"{job_id}_0_result.pkl"
        if result.is_file():
            try:
                import pickle

                outcome, value = pickle.loads(result.read_bytes())
            except Exception as exc:       # a half-written pickle of a killed job says as much as no pickle
                return "crashed", f"job {job_id}: unreadable submitit result ({exc})"
            if outcome == "error":
                last = str(value).strip().splitlines()[-1:] or [""]
                text = str(value)
                # the local executor cancels with SIGINT: the task ends in KeyboardInterrupt
                reason = "timeout" if "timed-out" in text else "cancelled" if "KeyboardInterrupt" in text else "crashed"
                return reason, f"job {job_id} raised: {last[0][:300]}"
            return "lost", f"job {job_id} finished without writing this task's shard"
        return "killed", (f"job {job_id} ended without a result or a scheduler message (killed by a signal, "
                          f"e.g. SIGKILL or the OOM killer); see {err}")


def cancelled_jobs(campaign: Path) -> dict[str, str]:
    """{job id: when} of the jobs `jobs cancel` cancelled (recorded because a local job leaves no trace)."""
    out = {}
    for path in sorted((Path(campaign) / "cancelled").glob("*.json")):
        record = json.loads(path.read_text())
        out.update({jid: record["time"] for jid in record["job_ids"]})
    return out


def cancel_jobs(campaign: Path, submissions: list[dict], states: JobStates) -> list[str]:
    """Cancel every active job of the submissions, recording them first; returns the job ids cancelled."""
    active = [(sub, job["job_id"]) for sub in submissions for job in sub["jobs"]
              if states.state(sub, job["job_id"]) in ACTIVE]
    cancelled = [jid for _, jid in active]
    if not cancelled:
        return []
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    write_json(Path(campaign) / "cancelled" / f"{now.replace(':', '')}-{os.getpid()}.json",
               {"time": now, "job_ids": cancelled})
    slurm_masters = set()
    for sub, jid in active:
        if sub["executor"] == "slurm":
            slurm_masters.add(jid.split("_")[0])
        elif sub["executor"] == "local":
            try:
                os.kill(int(jid), signal.SIGINT)     # the submitit controller then stops its task
            except ProcessLookupError:
                pass
    if slurm_masters:
        subprocess.run(["scancel", *sorted(slurm_masters)], check=False, timeout=60)
    return cancelled
