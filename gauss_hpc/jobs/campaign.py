"""Submitting a spec, resubmitting failures, waiting and cancelling: the Campaign handle."""

from __future__ import annotations

import datetime as _dt
import json
import math
import socket
import sys
import time
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from .. import config
from . import shards
from .shards import say as _say
from .executor import (ACTIVE, SCHEDULER_CALLS, JobStates, cancel_jobs, choose, chunks, make_executor,
                       outside_this_job, per_array_parallelism, slurm_limits, split_arrays)
from .spec import Spec, load_spec, parse_spec, resources_for_job
from .status import status as _status
from .status import summary
from .tasks import make_tasks, render_tasks, run_chunk


class Campaign:
    """A campaign directory: `status()`, `wait()`, `gather()`, `resubmit()`, `cancel()`."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        if not (self.dir / "campaign.json").is_file():
            raise shards.CampaignError(f"{self.dir}: not a campaign directory (no campaign.json)")

    def __repr__(self) -> str:
        return f"Campaign({str(self.dir)!r})"

    @property
    def spec(self) -> Spec:
        return parse_spec(json.loads((self.dir / "campaign.json").read_text())["spec"], str(self.dir))

    def tasks(self) -> list[dict]:
        return shards.read_tasks(self.dir)

    def status(self) -> pd.DataFrame:
        return _status(self.dir)

    def summary(self) -> pd.DataFrame:
        return summary(self.status())

    def wait(self, timeout: float | None = None, poll: float | None = None, max_poll: float | None = None,
             progress: bool = True) -> pd.DataFrame:
        """Block until no task is pending or running (or `timeout` seconds); returns the final status table.
        Each check asks the scheduler once for the whole campaign; the interval starts at `poll` seconds and
        doubles up to `max_poll` while nothing finishes (back to `poll` when something does)."""
        settings = config.load("jobs")
        poll = poll if poll is not None else float(settings["poll_interval_s"])
        max_poll = max(poll, max_poll if max_poll is not None else float(settings["poll_max_interval_s"]))
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(self.tasks()), desc=f"{self.dir.name}", unit="task", file=sys.stderr)
        interval, finished_before = poll, -1
        try:
            while True:
                table = self.status()
                finished = int(table["state"].isin(["done", "failed"]).sum())
                if bar is not None:
                    bar.n = finished
                    bar.set_postfix(failed=int((table["state"] == "failed").sum()))
                    bar.refresh()
                if not table["state"].isin(ACTIVE).any():
                    return table
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"{self.dir}: {int(table['state'].isin(ACTIVE).sum())} tasks still pending "
                                       f"or running after {timeout} s")
                interval = poll if finished != finished_before else min(max_poll, interval * 2)
                finished_before = finished
                time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic())))
        finally:
            if bar is not None:
                bar.close()

    def gather(self, out: str | Path | None = None) -> Path:
        from .gather import gather

        return gather(self.dir, out)

    def resubmit(self, **kwargs) -> "Campaign":
        return resubmit(self.dir, **kwargs)

    def cancel(self) -> list[str]:
        return cancel(self.dir)


def default_campaign_dir(spec: Spec) -> Path:
    return Path(spec.campaign_dir) if spec.campaign_dir else Path(config.load("jobs")["campaign_root"]) / spec.name


def _write_campaign(campaign: Path, spec: Spec, tasks: list[dict]) -> None:
    meta_path = campaign / "campaign.json"
    created = json.loads(meta_path.read_text())["created"] if meta_path.is_file() else None
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    shards.write_json(meta_path, {"spec": spec.to_dict(), "spec_sha256": spec.digest(), "source": spec.source,
                                  "created": created or now, "updated": now})
    shards.write_json(campaign / "tasks.json", tasks)
    render_tasks(campaign, tasks, spec)


def _submit_tasks(campaign: Path, spec: Spec, task_ids: list[str], executor: str, *, time_factor: float = 1.0,
                  time_min: float | None = None, mem_gb: float | None = None, local_workers: int | None = None,
                  quiet: bool = False) -> dict | None:
    """Submit the tasks as one submission record: one array, or on Slurm as many arrays as the cluster's
    MaxArraySize needs (each indexed from 0, its offset in the record). `local_workers` replaces the spec's
    local_parallelism for this submission (how many tasks the local executor runs at once). Returns the record."""
    if not task_ids:
        return None
    kind, note = choose(executor)
    _say(note, quiet)
    groups = chunks(task_ids, kind, spec.tasks_per_job, local_workers or spec.local_parallelism)
    per_job = max(len(g) for g in groups)
    res = resources_for_job(spec.steps, per_job)
    if time_min is not None:
        res["time_min"] = time_min * per_job
    res["time_min"] = max(1, int(math.ceil(res["time_min"] * time_factor)))
    if mem_gb is not None:
        res["mem_gb"] = mem_gb
    parts = [(0, len(groups))]
    if kind == "slurm":
        max_array, max_jobs, limits = slurm_limits()
        _say(f"Slurm limits: {limits}", quiet)
        if max_jobs is not None and len(groups) > max_jobs:
            raise RuntimeError(f"{len(groups)} array elements exceed the cluster's MaxJobCount {max_jobs} (every "
                               f"element counts as a job); set [resources] tasks_per_job to at least "
                               f"{math.ceil(len(task_ids) / max_jobs)} in {spec.source or 'the spec'}")
        parts = split_arrays(len(groups), max_array)
    number = len(shards.read_submissions(campaign)) + 1
    ex = make_executor(kind, campaign / "logs", name=f"gauss-{spec.name}", cpus=res["cpus"], mem_gb=res["mem_gb"],
                       time_min=res["time_min"], partition=spec.partition,
                       array_parallelism=per_array_parallelism(spec.array_parallelism, len(parts)),
                       signal_delay_s=spec.signal_delay_s)
    jobs, arrays = [], []
    try:
        for offset, size in parts:
            part = groups[offset:offset + size]
            with outside_this_job(kind):
                submitted = ex.map_array(run_chunk, [str(campaign.resolve())] * size, [number] * size, part)
            if kind == "slurm":
                SCHEDULER_CALLS["sbatch"] += 1          # submitit runs one sbatch per array
                arrays.append({"array_id": str(submitted[0].job_id).split("_")[0], "offset": offset,
                               "elements": size})
            jobs += submitted
    finally:
        # arrays already accepted are recorded even when a later sbatch fails, so status and cancel see them
        record = {"number": number, "executor": kind, "host": socket.gethostname(), "resources": res,
                  "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "jobs": [{"job_id": str(j.job_id), "tasks": g} for j, g in zip(jobs, groups)]}
        if arrays:
            record["arrays"] = arrays
        if jobs:
            shards.write_json(campaign / "submissions" / f"{number:05d}.json", record)
    where = (f"array{'s' if len(arrays) > 1 else ''} {', '.join(a['array_id'] for a in arrays)}, "
             if kind == "slurm" else "")
    _say(f"submission {number}: {len(task_ids)} tasks in {len(groups)} {kind} jobs "
         f"({where}{res['cpus']} cpu, {res['mem_gb']} GB, {res['time_min']} min each)", quiet)
    if kind == "debug":
        for job in jobs:
            job.result()
    return record


def submit(spec: str | Path | Mapping | Spec, campaign_dir: str | Path | None = None, executor: str | None = None,
           *, input: str | Path | None = None, limit: int | None = None, local_workers: int | None = None,
           quiet: bool = False) -> Campaign:
    """Render every task of the spec into the campaign directory and submit the ones not yet submitted (tasks
    already done, failed or active are left alone: resubmitting a spec is idempotent). `executor` overrides
    the spec's; `input`/`limit` override its [input]; `local_workers` its local_parallelism."""
    spec = load_spec(spec)
    if input is not None:
        spec.input = {k: v for k, v in spec.input.items() if k not in ("path", "smiles", "names", "kind")}
        spec.input["path"] = str(input)
    if limit is not None:
        spec.input["limit"] = limit
    if spec.input.get("path"):        # recorded absolute: status and gather may run from another directory
        spec.input["path"] = str(Path(spec.input["path"]).resolve())
    campaign = Path(campaign_dir) if campaign_dir is not None else default_campaign_dir(spec)
    start = time.perf_counter()
    tasks, duplicates = make_tasks(spec)          # bad input fails here, before the campaign directory exists
    with shards.campaign_lock(campaign):
        _write_campaign(campaign, spec, tasks)
        _say(f"{campaign}: {len(tasks)} tasks rendered in {time.perf_counter() - start:.2f} s"
             + (f" ({duplicates} duplicate inputs merged)" if duplicates else ""), quiet)
        table = _status(campaign)
        counts = table["state"].value_counts().to_dict()
        todo = table.loc[table["state"] == "not_submitted", "task_id"].tolist()
        _say(f"{counts.get('done', 0)} done, {counts.get('failed', 0)} failed (see `jobs status`; "
             f"`jobs resubmit --failed`), {counts.get('pending', 0) + counts.get('running', 0)} active, "
             f"{len(todo)} to submit", quiet)
        _submit_tasks(campaign, spec, todo, executor or spec.executor, local_workers=local_workers, quiet=quiet)
    return Campaign(campaign)


def resubmit(campaign_dir: str | Path, *, failed: bool = True, reasons: Iterable[str] | None = None,
             executor: str | None = None, time_factor: float = 1.0, time_min: float | None = None,
             mem_gb: float | None = None, local_workers: int | None = None, quiet: bool = False) -> Campaign:
    """Submit again the failed tasks (optionally only those with the given reasons), and any not yet
    submitted, optionally with more time (`time_factor`, or `time_min` per task), memory, or local workers."""
    campaign = Campaign(campaign_dir)
    spec = campaign.spec
    with shards.campaign_lock(campaign.dir):
        table = campaign.status()
        wanted = table["state"] == "not_submitted"
        if failed:
            bad = table["state"] == "failed"
            if reasons:
                bad &= table["reason"].isin(list(reasons))
            wanted |= bad
        todo = table.loc[wanted, "task_id"].tolist()
        _say(f"resubmitting {len(todo)} tasks"
             + (f" ({', '.join(f'{r}: {n}' for r, n in table.loc[wanted, 'reason'].value_counts().items() if r)})"
                if len(todo) else ""), quiet)
        _submit_tasks(campaign.dir, spec, todo, executor or spec.executor, time_factor=time_factor,
                      time_min=time_min, mem_gb=mem_gb, local_workers=local_workers, quiet=quiet)
    return campaign


def cancel(campaign_dir: str | Path) -> list[str]:
    """Cancel every pending or running job of the campaign; returns their job ids."""
    campaign = Campaign(campaign_dir)
    with shards.campaign_lock(campaign.dir):
        submissions = shards.read_submissions(campaign.dir)
        return cancel_jobs(campaign.dir, submissions, JobStates(campaign.dir, submissions))
