"""The step registry: a spec step name → a callable `(input, workdir, **params) -> Result`, resolved by import at
run time so a new backend plugs in without touching the runner.

Resolution order for a step (name, backend, function):
  1. `function = "package.module:callable"` given in the spec (a user's own step);
  2. `gauss_hpc.abinitio.<backend>.STEPS[key]`, the backend's own registry, where key is the step name without
     a "<backend>_" prefix ("orca_opt" → orca.STEPS["opt"], "casscf" → molcas.STEPS["casscf"]);
  3. the built-in steps below (`BUILTIN`): steps of no program backend (assemble, swap_metal, program) and thin
     adapters to backends without a STEPS registry (crystal_field, xtb).

Input: a step receives the latest complex an earlier step produced (`Result.values["complex"]`, or the previous
complex with new `coordinates`), or the ligand SMILES when no step has produced a complex yet.
"""

from __future__ import annotations

import importlib
import inspect
import time
from pathlib import Path
from typing import Callable

from ..abinitio.process import run_program
from ..abinitio.result import Result, Status

StepFunction = Callable[..., Result]


def assemble(smiles: str, workdir: Path, *, name: str, template: str | None = None, **params) -> Result:
    """The complex of `template` (chem/templates.py; default the paper's [Dy(H2O)5L2]+) with the ligand on its
    axial sites, by molSimplify (gauss_hpc.chem.complexes.assemble; params such as relax = "none" | "rotate" |
    "xtb" go to it, defaults there, and may not contradict the template); values: complex, n_atoms, template,
    assembly_path ("direct", "rotated",
    "conformer" or "xtb_relaxed": what produced the geometry). A failure says its class in values["assembly_failure"]
    (complexes.REASONS); an xTB relaxation that did not converge is geometry_not_converged, so that resubmitting
    with a larger relax_max_steps makes sense. The geometry is also written to complex.xyz in the step's work
    directory."""
    from ..chem.complexes import AssemblyError, assemble_detailed

    start = time.perf_counter()
    if not isinstance(smiles, str):
        return Result.failure(name, "molsimplify", Status.INVALID_INPUT,
                              "assemble takes a ligand SMILES; put it first in [[steps]]")
    from ..chem.templates import DEFAULT, template as named_template

    try:
        shape = named_template(template or DEFAULT).assemble_params()
    except ValueError as exc:
        return Result.failure(name, "molsimplify", Status.INVALID_INPUT, str(exc))
    clash = sorted(k for k in set(shape) & set(params) if params[k] != shape[k])
    if template and clash:
        return Result.failure(name, "molsimplify", Status.INVALID_INPUT,
                              f"params {clash} contradict template {template!r}; drop them or the template")
    try:
        built = assemble_detailed(smiles, name=name, **{**shape, **params})
    except AssemblyError as exc:
        status = Status.GEOMETRY_NOT_CONVERGED if exc.reason == "xtb_not_converged" else Status.INVALID_INPUT
        return Result.failure(name, "molsimplify", status, str(exc), values={"assembly_failure": exc.reason},
                              wall_seconds=time.perf_counter() - start)
    cx = built.complex
    (Path(workdir) / "complex.xyz").write_text(cx.to_xyz())
    return Result(name=name, backend="molsimplify", values={"complex": cx.to_dict(), "n_atoms": len(cx.symbols),
                                                            "assembly_path": built.path,
                                                            "template": template or DEFAULT},
                  wall_seconds=time.perf_counter() - start, workdir=str(workdir))


def _needs_complex(step: str, backend: str, cx, name: str) -> Result | None:
    from ..chem.complexes import Complex

    if isinstance(cx, Complex):
        return None
    return Result.failure(name, backend, Status.INVALID_INPUT,
                          f"step {step} needs a complex; run 'assemble' (or another geometry step) before it")


def swap_metal(cx, workdir: Path, *, name: str, metal: str, **params) -> Result:
    """The same geometry with another metal (Dy → Y before a DFT optimisation, Y → Dy before CASSCF)."""
    from ..chem.complexes import swap_metal as swap

    bad = _needs_complex("swap_metal", "molsimplify", cx, name)
    if bad:
        return bad
    try:
        swapped = swap(cx, metal, name=cx.name, **params)
    except ValueError as exc:
        return Result.failure(name, "molsimplify", Status.INVALID_INPUT, str(exc))
    return Result(name=name, backend="molsimplify", values={"complex": swapped.to_dict()}, workdir=str(workdir))


def crystal_field(cx, workdir: Path, *, name: str, **params) -> Result:
    """Point-charge crystal-field KDs (gauss_hpc.abinitio.crystal_field.kd_energies)."""
    from ..abinitio import crystal_field as oracle

    return _needs_complex("crystal_field", oracle.BACKEND, cx, name) or oracle.kd_energies(cx, name=name, **params)


def xtb_relax(cx, workdir: Path, *, name: str, **params) -> Result:
    """GFN2-xTB relaxation of the (Y-swapped) complex; values["complex"] carries the relaxed geometry on."""
    from ..abinitio import xtb

    return _needs_complex("xtb_relax", xtb.BACKEND, cx, name) or xtb.relax_complex(cx, name=name, **params)


def xtb_label(smiles: str, workdir: Path, *, name: str, **params) -> Result:
    """GFN2-xTB/D4 donor-atom proxy labels of the free ligand."""
    from ..abinitio import xtb

    return xtb.label_ligand(smiles, name=name, **params)


def program(item, workdir: Path, *, name: str, command: list[str], timeout_s: float = 3600.0) -> Result:
    """Run an external program given as an argument list (no shell) in the step's work directory, with the
    ligand SMILES in input.smi (or the complex in input.xyz). OK when it exits 0; its output is in
    program.out. A stand-in for any program without a parser, e.g. `command = ["sleep", "600"]`."""
    workdir = Path(workdir)
    if isinstance(item, str):
        (workdir / "input.smi").write_text(item + "\n")
    else:
        (workdir / "input.xyz").write_text(item.to_xyz())
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


BUILTIN: dict[str, StepFunction] = {"assemble": assemble, "swap_metal": swap_metal, "crystal_field": crystal_field,
                                    "xtb_relax": xtb_relax, "xtb_label": xtb_label, "program": program}


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
    try:
        module = importlib.import_module(f"gauss_hpc.abinitio.{backend}")
    except ModuleNotFoundError:
        module = None
    registry = getattr(module, "STEPS", {}) if module is not None else {}
    if key in registry:
        return registry[key]
    if name in BUILTIN:
        return BUILTIN[name]
    raise ValueError(f"step {name!r} (backend {backend!r}): not in gauss_hpc.abinitio.{backend}.STEPS "
                     f"({', '.join(sorted(registry)) or 'none'}) nor built in ({', '.join(sorted(BUILTIN))}); "
                     f"give function = \"module:callable\"")


# set by the runner (name, workdir) or by the backend's own input builders from the complex (an input
# template's geometry, metal index, resources, the constrained optimisation's constraints): never a spec's params
_NOT_FROM_THE_SPEC = {"name", "workdir", "geometry", "metal_index", "resources", "constraints", "constrained"}


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


def _declare_targets() -> None:
    """Which function each built-in step forwards its **params to (read by accepted_params; the program
    backends declare theirs next to their job-array steps)."""
    from ..abinitio import crystal_field as cf
    from ..abinitio import xtb
    from ..chem import complexes

    assemble.params_of = complexes.assemble
    swap_metal.params_of = complexes.swap_metal
    crystal_field.params_of = cf.kd_energies
    xtb_relax.params_of = xtb.relax_complex
    xtb_label.params_of = xtb.label_ligand


_declare_targets()
