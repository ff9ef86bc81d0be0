"""Job specifications (`jobs/*.toml`): input, steps with backend and resources, executor.

    [campaign]  name, executor ("auto" | "slurm" | "local" | "debug"), dir (campaign directory, optional)
    [input]     path (samples.h5, ligands.h5, .smi/.txt, .csv) or smiles = [...] inline; kind (inferred from
                the file when absent); select (samples.h5 boolean columns that must be true); limit (0 = all)
    [resources] partition, array_parallelism, tasks_per_job, and defaults cpus / mem_gb / time_min per step
    [[steps]]   name, backend (default per step), params = {...}, function = "module:callable" (custom step),
                [steps.resources] cpus / mem_gb / time_min

All steps of one complex run in one array task (see `resources_for_job`): each step consumes the previous
step's geometry, the intermediates are small, and a per-step cache in the task directory lets a resubmitted
task continue after its last successful step instead of waiting on a chain of dependent arrays.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .. import config
from ..abinitio.registry import STEP_BACKENDS

EXECUTORS = ("auto", "slurm", "local", "debug")
INPUT_KINDS = ("samples", "ligands", "smiles")
# The backend each step uses when the spec does not say.
class SpecError(ValueError):
    """A job specification is malformed; the message names the file, the key and what to write instead."""


@dataclass
class StepSpec:
    name: str
    backend: str
    params: dict = field(default_factory=dict)
    function: str = ""
    cpus: int = 1
    mem_gb: float = 2.0
    time_min: float = 10.0

    def identity(self) -> dict:
        """What makes two runs of this step the same computation (its content-hash key)."""
        return {"name": self.name, "backend": self.backend, "params": self.params, "function": self.function}


@dataclass
class Spec:
    name: str
    executor: str
    input: dict
    steps: list[StepSpec]
    partition: str = ""
    array_parallelism: int = 64
    tasks_per_job: int = 1
    local_parallelism: int = 0
    signal_delay_s: int = 60
    campaign_dir: str = ""
    source: str = ""

    def to_dict(self) -> dict:
        return {"campaign": {"name": self.name, "executor": self.executor, "dir": self.campaign_dir},
                "input": copy.deepcopy(self.input),
                "resources": {"partition": self.partition, "array_parallelism": self.array_parallelism,
                              "tasks_per_job": self.tasks_per_job, "local_parallelism": self.local_parallelism,
                              "signal_delay_s": self.signal_delay_s},
                "steps": [{"name": s.name, "backend": s.backend, "params": copy.deepcopy(s.params),
                           "function": s.function,
                           "resources": {"cpus": s.cpus, "mem_gb": s.mem_gb, "time_min": s.time_min}}
                          for s in self.steps]}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _require(mapping: Mapping, key: str, kind, where: str):
    value = mapping[key]
    if not isinstance(value, kind):
        raise SpecError(f"{where}: {key} = {value!r} should be a {getattr(kind, '__name__', kind)}")
    return value


def _positive(value, key: str, where: str, integer: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
            (integer and int(value) != value) or (isinstance(value, float) and not math.isfinite(value)):
        raise SpecError(f"{where}: {key} = {value!r} should be a non-negative {'integer' if integer else 'number'}")
    return int(value) if integer else float(value)


def _step(raw: Mapping, index: int, defaults: Mapping, where: str) -> StepSpec:
    where = f"{where} [[steps]] #{index + 1}"
    if not isinstance(raw, Mapping) or "name" not in raw:
        raise SpecError(f"{where}: every step needs a name, e.g. name = \"crystal_field\"")
    unknown = sorted(set(raw) - {"name", "backend", "params", "function", "resources"})
    if unknown:
        raise SpecError(f"{where}: unknown keys {unknown}; a step has name, backend, params, function, resources")
    name = _require(raw, "name", str, where)
    backend = raw.get("backend") or STEP_BACKENDS.get(name, "")
    if not backend and not raw.get("function"):
        raise SpecError(f"{where}: step {name!r} is not built in ({', '.join(sorted(STEP_BACKENDS))}); "
                        f"give backend = \"...\" or function = \"module:callable\"")
    params = raw.get("params", {})
    if not isinstance(params, Mapping):
        raise SpecError(f"{where}: params should be a table, e.g. params = {{ metal = \"Dy\" }}")
    res = dict(raw.get("resources", {}))
    unknown = sorted(set(res) - {"cpus", "mem_gb", "time_min"})
    if unknown:
        raise SpecError(f"{where}: unknown resources {unknown}; use cpus, mem_gb, time_min")
    return StepSpec(name=name, backend=backend or "custom", params=dict(params), function=raw.get("function", ""),
                    cpus=max(1, _positive(res.get("cpus", defaults["cpus"]), "cpus", where, integer=True)),
                    mem_gb=_positive(res.get("mem_gb", defaults["mem_gb"]), "mem_gb", where),
                    time_min=_positive(res.get("time_min", defaults["time_min"]), "time_min", where))


def _check_step_params(steps: list[StepSpec], source: str) -> None:
    """Every step's params must be ones its function takes (an unknown key would change the task id and be
    silently ignored); a step whose function cannot be found is an error too."""
    from .steps import check_params

    for index, step in enumerate(steps):
        try:
            check_params(step.name, step.backend, step.function, step.params)
        except (ValueError, ImportError, AttributeError) as exc:
            raise SpecError(f"{source} [[steps]] #{index + 1} ({step.name}): {exc}") from None


def parse_spec(data: Mapping, source: str = "<dict>") -> Spec:
    """A Spec from the TOML tables (or the same structure as a dict), with defaults from [jobs]."""
    defaults = config.load("jobs")
    unknown = sorted(set(data) - {"campaign", "input", "resources", "steps"})
    if unknown:
        raise SpecError(f"{source}: unknown tables {unknown}; a spec has [campaign], [input], [resources], "
                        f"[[steps]]")
    campaign = dict(data.get("campaign", {}))
    resources = {**{k: defaults[k] for k in ("cpus", "mem_gb", "time_min", "partition", "array_parallelism",
                                             "tasks_per_job", "local_parallelism", "signal_delay_s")},
                 **dict(data.get("resources", {}))}
    unknown = sorted(set(resources) - {"cpus", "mem_gb", "time_min", "partition", "array_parallelism",
                                       "tasks_per_job", "local_parallelism", "signal_delay_s"})
    if unknown:
        raise SpecError(f"{source} [resources]: unknown keys {unknown}")
    executor = campaign.get("executor", defaults["executor"])
    if executor not in EXECUTORS:
        raise SpecError(f"{source} [campaign]: executor = {executor!r}; use one of {', '.join(EXECUTORS)}")
    inp = dict(data.get("input", {}))
    if not inp.get("path") and not inp.get("smiles"):
        raise SpecError(f"{source} [input]: give path = \"samples.h5\" (or a ligands.h5 / SMILES file) or "
                        f"smiles = [\"[O-]C\", ...]")
    if inp.get("kind") and inp["kind"] not in INPUT_KINDS:
        raise SpecError(f"{source} [input]: kind = {inp['kind']!r}; use one of {', '.join(INPUT_KINDS)}")
    raw_steps = data.get("steps", [])
    if not raw_steps:
        raise SpecError(f"{source}: no [[steps]]; add at least one, e.g. [[steps]] name = \"assemble\"")
    steps = [_step(raw, i, resources, source) for i, raw in enumerate(raw_steps)]
    _check_step_params(steps, source)
    return Spec(name=str(campaign.get("name") or Path(source).stem or "campaign"), executor=executor, input=inp,
                steps=steps, partition=str(resources["partition"]),
                array_parallelism=max(1, _positive(resources["array_parallelism"], "array_parallelism", source, True)),
                tasks_per_job=max(1, _positive(resources["tasks_per_job"], "tasks_per_job", source, True)),
                local_parallelism=_positive(resources["local_parallelism"], "local_parallelism", source, True),
                signal_delay_s=_positive(resources["signal_delay_s"], "signal_delay_s", source, True),
                campaign_dir=str(campaign.get("dir", "")), source=source)


def load_spec(spec: str | Path | Mapping | Spec) -> Spec:
    """A Spec from a TOML file path, a dict of the same tables, or a Spec (returned as is)."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, Mapping):
        return parse_spec(spec)
    path = Path(spec)
    if not path.is_file():
        raise SpecError(f"{path}: job specification not found (see jobs/*.toml for examples)")
    try:
        data = config.read_toml(path)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    return parse_spec(data, str(path))


def resources_for_job(steps: list[StepSpec], tasks_per_job: int) -> dict:
    """One array element runs `tasks_per_job` tasks, each all steps in order: the most CPUs and memory any
    step asks for, and the sum of the steps' times per task (whole minutes, at least one)."""
    cpus = max(s.cpus for s in steps)
    mem_gb = max(s.mem_gb for s in steps)
    minutes = sum(s.time_min for s in steps) * tasks_per_job
    return {"cpus": cpus, "mem_gb": mem_gb, "time_min": max(1, int(math.ceil(minutes)))}
