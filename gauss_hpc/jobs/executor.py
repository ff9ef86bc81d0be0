"""Schedulers behind one interface: which executor to use, the cluster's array limits, submitting array
elements through submitit, the state of their jobs, why an ended job left no shard, and cancelling.

  slurm  submitit.SlurmExecutor.map_array: one Slurm job array per submission, split into several arrays (each
         indexed from 0) when it has more elements than the cluster's MaxArraySize; one array element per chunk
         of `tasks_per_job` tasks.
  local  submitit.LocalExecutor.map_array on this machine: `local_parallelism` jobs (default: CPU count), the
         tasks dealt round-robin among them; jobs survive the submitting process.
  debug  submitit.DebugExecutor: everything in this process, one task after the other (for pdb).

State comes from our JSON files and the scheduler's answer only, never from submitit's pickles or logs (a
campaign directory may be writable by others; unpickling a file from it would run their code). Slurm is asked
once per status call for the whole campaign (one `squeue` over all its arrays), which works without accounting.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from .shards import write_json

ACTIVE = ("pending", "running")
# Slurm job states → our words (squeue State)
_SLURM_ACTIVE = {"PENDING": "pending", "CONFIGURING": "pending", "REQUEUED": "pending", "RESV_DEL_HOLD": "pending",
                 "REQUEUE_HOLD": "pending", "REQUEUE_FED": "pending", "RUNNING": "running", "COMPLETING": "running",
                 "SUSPENDED": "running", "STAGE_OUT": "running", "SIGNALING": "running", "RESIZING": "running"}
_SLURM_ENDED = {"TIMEOUT": "timeout", "CANCELLED": "cancelled", "NODE_FAIL": "node_fail", "PREEMPTED": "cancelled",
                "OUT_OF_MEMORY": "out_of_memory", "BOOT_FAIL": "node_fail", "DEADLINE": "timeout",
                "FAILED": "crashed", "COMPLETED": "lost"}
DEFAULT_MAX_ARRAY_SIZE = 1001       # Slurm's own default, used when `scontrol show config` cannot be read

# Calls of scheduler commands made by this process, by command (the bench reports them; tests bound them).
SCHEDULER_CALLS: collections.Counter = collections.Counter()


def _scheduler(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess | None:
    """Run one scheduler command (argument list), counted; None when it is missing or does not answer."""
    SCHEDULER_CALLS[argv[0]] += 1
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (subprocess.TimeoutExpired, FileNotFoundError):
        return None


def slurm_reachable() -> tuple[bool, str]:
    """(True, "") when `sinfo` answers with a usable node, else (False, why)."""
    if shutil.which("sinfo") is None:
        return False, "sinfo not found"
    proc = _scheduler(["sinfo", "-h", "-o", "%T"], timeout=15)
    if proc is None:
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


def slurm_limits() -> tuple[int, int | None, str]:
    """(MaxArraySize, MaxJobCount or None, note for the user) from `scontrol show config`; MaxArraySize falls
    back to Slurm's default 1001 when it cannot be read, and the note says so."""
    proc = _scheduler(["scontrol", "show", "config"])
    fields = {}
    if proc is not None and proc.returncode == 0:
        for line in proc.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip()] = value.strip()
    count = int(fields["MaxJobCount"]) if fields.get("MaxJobCount", "").isdigit() else None
    if not fields.get("MaxArraySize", "").isdigit():
        why = ("scontrol did not answer" if proc is None else
               f"scontrol failed: {proc.stderr.strip()[:200]}" if proc.returncode else "no MaxArraySize in its output")
        return DEFAULT_MAX_ARRAY_SIZE, count, (f"could not read MaxArraySize from `scontrol show config` ({why}); "
                                               f"assuming Slurm's default {DEFAULT_MAX_ARRAY_SIZE}")
    size = int(fields["MaxArraySize"])
    return size, count, f"MaxArraySize {size}" + (f", MaxJobCount {count}" if count else "")


def split_arrays(n_elements: int, max_array_size: int) -> list[tuple[int, int]]:
    """(offset, size) of each array: the cap applies to the index, so every array is indexed from 0 and holds
    at most MaxArraySize elements (indices 0 … MaxArraySize − 1)."""
    size = max(1, max_array_size)
    return [(offset, min(size, n_elements - offset)) for offset in range(0, n_elements, size)]


def per_array_parallelism(array_parallelism: int, n_arrays: int) -> int:
    """The spec's array_parallelism is for the whole submission: each of its arrays gets an equal share."""
    return max(1, math.ceil(array_parallelism / max(1, n_arrays)))


def chunks(task_ids: list[str], kind: str, tasks_per_job: int, local_parallelism: int) -> list[list[str]]:
    """The tasks of each array element: consecutive groups of tasks_per_job on Slurm; round-robin over the
    local worker count on the local executor (submitit starts every local job at once)."""
    if kind == "slurm":
        return [task_ids[i:i + tasks_per_job] for i in range(0, len(task_ids), tasks_per_job)]
    n = min(len(task_ids), local_parallelism or os.cpu_count() or 1) if kind == "local" else 1
    return [task_ids[i::n] for i in range(n)] if n else []


def outside_this_job(kind: str):
    """Where sbatch runs: without this process's own SLURM_* variables when it runs inside a Slurm job (a driver
    such as slurm/loop.sbatch), which sbatch would pass on to the new jobs (their srun then fails on the outer
    job's SLURM_MEM_PER_CPU beside the array's --mem, or runs in the outer job's allocation)."""
    import contextlib

    import submitit

    return submitit.helpers.clean_env() if kind == "slurm" else contextlib.nullcontext()


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

def _squeue(arrays: list[str]) -> dict[str, tuple[str, int]] | None:
    """{job id ("123_4" for array elements): (Slurm state, wait status)} of the arrays' jobs that Slurm still
    lists (pending, running, and ended within MinJobAge), from one squeue call; None when Slurm cannot be asked."""
    if not arrays:
        return {}
    if shutil.which("squeue") is None:
        return None
    proc = _scheduler(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(arrays),
                       "-O", "JobArrayID:64,State:32,exit_code:16"])
    if proc is None:
        return None
    if proc.returncode != 0:
        # squeue refuses a list in which no job is known any more: then none is listed
        return {} if "Invalid job id" in proc.stderr else None
    out = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            code = parts[2] if len(parts) > 2 else "0"
            out[parts[0]] = (parts[1], int(code) if code.isdigit() else 0)
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


def slurm_arrays(submissions: list[dict]) -> list[str]:
    """Array ids of every Slurm submission of a campaign, oldest first."""
    arrays = []
    for sub in submissions:
        if sub["executor"] == "slurm":
            arrays += [a["array_id"] for a in sub.get("arrays", [])] or \
                sorted({j["job_id"].split("_")[0] for j in sub["jobs"]})
    return list(dict.fromkeys(arrays))


class JobStates:
    """The scheduler's view of one campaign's jobs: Slurm is asked once (one squeue over all the campaign's
    arrays, on first need), local jobs are looked up in /proc, cancellations in our own records."""

    def __init__(self, campaign: Path, submissions: list[dict]):
        self.campaign = Path(campaign)
        self._arrays = slurm_arrays(submissions)
        self._slurm: dict | None = None
        self._asked = False
        self._cancelled: dict[str, str] | None = None

    def resolve(self) -> None:
        """Ask the scheduler and read the cancellation records now, so that processes forked afterwards (the
        workers of a parallel gather) share this one answer instead of each asking again."""
        if self._arrays:
            self._slurm_jobs()
        if self._cancelled is None:
            self._cancelled = cancelled_jobs(self.campaign)

    def _slurm_jobs(self) -> dict | None:
        if not self._asked:
            self._slurm, self._asked = _squeue(self._arrays), True
        return self._slurm

    def state(self, submission: dict, job_id: str) -> str:
        """pending | running | ended | unknown (Slurm does not answer; a local job of another host)."""
        kind = submission["executor"]
        if kind == "slurm":
            jobs = self._slurm_jobs()
            if jobs is None:
                return "unknown"
            return _SLURM_ACTIVE.get(jobs.get(job_id, ("",))[0], "ended")
        if kind == "local":
            if submission.get("host") != socket.gethostname():
                return "unknown"
            return "running" if _local_alive(int(job_id)) else "ended"
        return "ended"

    def ended_reason(self, submission: dict, job_id: str) -> tuple[str, str]:
        """(reason, message) for a job that ended without writing a task's shard."""
        if self._cancelled is None:
            self._cancelled = cancelled_jobs(self.campaign)
        if job_id in self._cancelled:
            return "cancelled", f"job {job_id} cancelled by `jobs cancel` at {self._cancelled[job_id]}"
        log = self.campaign / "logs" / f"{job_id}_0_log.err"
        if submission["executor"] == "slurm":
            state, status = (self._slurm_jobs() or {}).get(job_id, ("", 0))
            if not state:
                return "lost", (f"Slurm job {job_id} ended without writing this task's shard and Slurm no longer "
                                f"lists it (older than MinJobAge); its log: {log}")
            reason = _SLURM_ENDED.get(state, "crashed")
            code, sig = status >> 8, status & 0x7F
            if state == "FAILED" and (sig == 9 or code == 137):      # SIGKILL of the task or its shell
                reason = "killed"
            return reason, f"Slurm job {job_id}: {state} (exit code {code}:{sig}); its log: {log}"
        return "killed", (f"job {job_id} ended without writing this task's shard (killed by a signal, e.g. SIGKILL "
                          f"or the OOM killer, or its Python process crashed); see {log}")


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
        _scheduler(["scancel", *sorted(slurm_masters)], timeout=60)
    return cancelled
