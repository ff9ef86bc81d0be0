"""The step registry: a spec step name → a callable `(input, workdir, **params) -> Result`, resolved by import at
run time so a new backend plugs in without touching the runner, and the runner knows no chemistry.

Resolution order for a step (name, backend, function):
  1. `function = "package.module:callable"` given in the spec (a user's own step);
  2. `gauss_hpc.abinitio.<backend>.STEPS[key]`, the backend's own registry, where key is the step name without
     a "<backend>_" prefix ("orca_opt" → orca.STEPS["opt"], "casscf" → molcas.STEPS["casscf"], "xtb_relax" →
     xtb.STEPS["relax"], "assemble" → molsimplify.STEPS["assemble"]);
  3. the built-in step below (`BUILTIN`): `program`, any external program without a parser.

Input: a step receives the ligand SMILES when no step has produced a complex yet, else the latest complex as a
plain dict (Complex.to_dict: an earlier step's `values["complex"]`, with the `coordinates` a later step moved);
abinitio/step_io.py turns it into a Complex for the steps that need one.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Callable

from ..abinitio import registry as backends
from ..abinitio.process import run_program
from ..abinitio.result import Result, Status

StepFunction = Callable[..., Result]


def program(item, workdir: Path, *, name: str, command: list[str], timeout_s: float = 3600.0) -> Result:
    """Run an external program given as an argument list (no shell) in the step's work directory, with the
    ligand SMILES in input.smi (or the complex in input.xyz). OK when it exits 0; its output is in
    program.out. A stand-in for any program without a parser, e.g. `command = ["sleep", "600"]`."""
    workdir = Path(workdir)
    if isinstance(item, str):
        (workdir / "input.smi").write_text(item + "\n")
    else:
        (workdir / "input.xyz").write_text(_xyz(item))
    if not command or not all(isinstance(a, str) for a in command):
        return Result.failure(name, "program", Status.INVALID_INPUT,
                              f"params.command = {command!r}: give a list of strings")
    outcome = run_program(list(command), workdir, stdout=workdir / "program.out", stderr=None, timeout=timeout_s)
    if not outcome.started:
        return Result.failure(name, "program", Status.PROGRAM_MISSING, outcome.error)
    if outcome.timed_out:
        return Result.failure(name, "program", Status.TIMEOUT, f"{command[0]} ran past {timeout_s} s",
                              wall_seconds=outcome.wall_seconds, workdir=str(workdir))
    if outcome.returncode != 0:
        return Result.failure(name, "program", Status.CRASHED, f"{command[0]} exited with {outcome.returncode}",
                              wall_seconds=outcome.wall_seconds, workdir=str(workdir))
    return Result(name=name, backend="program", values={"exit_code": 0}, wall_seconds=outcome.wall_seconds,
                  workdir=str(workdir))


def _xyz(item: dict) -> str:
    """XYZ text of a complex given as a dict (symbols, coords, name)."""
    lines = [str(len(item["symbols"])), str(item.get("name", ""))]
    lines += [f"{s:<2} {x:14.8f} {y:14.8f} {z:14.8f}" for s, (x, y, z) in zip(item["symbols"], item["coords"])]
    return "\n".join(lines) + "\n"


BUILTIN: dict[str, StepFunction] = {"program": program}


def _import(target: str) -> StepFunction:
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise ValueError(f"function = {target!r}: write it as 'package.module:callable'")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"function = {target!r} is not callable")
    return obj


def resolve(name: str, backend: str, function: str = "") -> StepFunction:
    """The callable for a step (see the module docstring for the order). Raises ValueError naming the step
    when nothing provides it."""
    if function:
        return _import(function)
    key = name[len(backend) + 1:] if name.startswith(backend + "_") else name
    registry = getattr(backends.backend(backend), "STEPS", {}) if backend in backends.BACKENDS else {}
    if key in registry:
        return registry[key]
    if name in BUILTIN:
        return BUILTIN[name]
    raise ValueError(f"step {name!r} (backend {backend!r}): not in gauss_hpc.abinitio.{backend}.STEPS "
                     f"({', '.join(sorted(registry)) or 'none'}) nor built in ({', '.join(sorted(BUILTIN))}); "
                     f"give function = \"module:callable\"")


# set by the runner (name, workdir) or by the backend's own input builders from the complex (an input
# template's geometry, metal index, resources, the constrained optimisation's constraints): never a spec's params
_NOT_FROM_THE_SPEC = {"name", "workdir", "geometry", "metal_index", "resources", "constraints", "constrained",
                      "relaxer"}


def accepted_params(fn: StepFunction) -> set[str] | None:
    """The params a step accepts: the keyword parameters of its signature and, when it forwards **params, of the
    function it declares it forwards to (`fn.params_of`, followed along a chain), the first parameter of each
    being the input. None when that cannot be told (a **params catch-all with no declared target): such a
    step's params are not checked."""
    declared = getattr(fn, "param_names", None)       # a step whose settings are a dataclass says so itself
    if declared is not None:
        return set(declared) - _NOT_FROM_THE_SPEC
    names: set[str] = set()
    target = fn
    for _ in range(5):
        forwards_to = getattr(target, "params_of", None)
        for p in list(inspect.signature(target).parameters.values())[1:]:
            if p.kind is inspect.Parameter.VAR_KEYWORD and forwards_to is None:
                if p.name.startswith("_"):      # **_options: swallowed (shared oracle options), not forwarded
                    continue
                return None
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
                names.add(p.name)
        if forwards_to is None:
            break
        target = forwards_to
    return names - _NOT_FROM_THE_SPEC


def check_params(name: str, backend: str, function: str, params: dict) -> None:
    """ValueError naming the unknown keys of a step's params: they would change the task id and be ignored."""
    accepted = accepted_params(resolve(name, backend, function))
    unknown = sorted(set(params) - accepted) if accepted is not None else []
    if unknown:
        raise ValueError(f"unknown params {unknown} for step {name!r}; it takes {sorted(accepted)}")
