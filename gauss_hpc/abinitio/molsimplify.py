"""The assembly backend's job steps (backend "molsimplify"): `assemble` builds the complex of a template around a
ligand (chem/complexes.py, molSimplify in-process), `swap_metal` puts another metal on the same geometry (Dy -> Y
before a DFT optimisation, back before CASSCF). Each is `(input, workdir, **params) -> Result` (jobs/steps.py)."""

from __future__ import annotations

import time
from pathlib import Path

from .result import Result, Status
from .step_io import complex_input, complex_values

BACKEND = "molsimplify"


def assemble(smiles: str, workdir: Path, *, name: str, template: str | None = None, **params) -> Result:
    """The complex of `template` (chem/templates.py; default the paper's [Dy(H2O)5L2]+) with the ligand on its
    axial sites, by molSimplify (gauss_hpc.chem.complexes.assemble; params such as relax = "none" | "rotate" |
    "xtb" go to it, defaults there, and may not contradict the template); values: complex, n_atoms, descriptors,
    template, assembly_path ("direct", "rotated", "conformer" or "xtb_relaxed": what produced the geometry). A
    failure says its class in values["assembly_failure"] (complexes.REASONS); an xTB relaxation that did not
    converge is geometry_not_converged, so that resubmitting with a larger relax_max_steps makes sense. The
    geometry is also written to complex.xyz in the step's work directory."""
    from ..chem.complexes import ASSEMBLY_PATHS, AssemblyError, assemble_detailed
    from ..chem.templates import DEFAULT, template as named_template

    start = time.perf_counter()
    if not isinstance(smiles, str):
        return Result.failure(name, BACKEND, Status.INVALID_INPUT,
                              "assemble takes a ligand SMILES; put it first in [[steps]]")
    try:
        shape = named_template(template or DEFAULT).assemble_params()
    except ValueError as exc:
        return Result.failure(name, BACKEND, Status.INVALID_INPUT, str(exc))
    clash = sorted(k for k in set(shape) & set(params) if params[k] != shape[k])
    if template and clash:
        return Result.failure(name, BACKEND, Status.INVALID_INPUT,
                              f"params {clash} contradict template {template!r}; drop them or the template")
    if "xtb_relaxed" in ASSEMBLY_PATHS.get(params.get("relax", ""), ()):
        from .xtb import relax_for_assembly          # the relaxation the chemistry layer is given, not imports

        params = {**params, "relaxer": relax_for_assembly}
    try:
        built = assemble_detailed(smiles, name=name, **{**shape, **params})
    except AssemblyError as exc:
        status = Status.GEOMETRY_NOT_CONVERGED if exc.reason == "xtb_not_converged" else Status.INVALID_INPUT
        return Result.failure(name, BACKEND, status, str(exc), values={"assembly_failure": exc.reason},
                              wall_seconds=time.perf_counter() - start)
    cx = built.complex
    (Path(workdir) / "complex.xyz").write_text(cx.to_xyz())
    return Result(name=name, backend=BACKEND, values={**complex_values(cx), "assembly_path": built.path,
                                                      "template": template or DEFAULT},
                  wall_seconds=time.perf_counter() - start, workdir=str(workdir))


def swap_metal(item, workdir: Path, *, name: str, metal: str, **params) -> Result:
    """The same geometry with another metal (Dy -> Y before a DFT optimisation, Y -> Dy before CASSCF)."""
    from ..chem.structure import AssemblyError, swap_metal as swap

    cx = complex_input(item, "swap_metal", BACKEND, name)
    if isinstance(cx, Result):
        return cx
    try:
        swapped = swap(cx, metal, name=cx.name, **params)
    except (ValueError, AssemblyError) as exc:
        return Result.failure(name, BACKEND, Status.INVALID_INPUT, str(exc))
    return Result(name=name, backend=BACKEND, values=complex_values(swapped), workdir=str(workdir))


def _declare_params() -> None:
    """The params a job spec may give each step: those of the function it forwards to (jobs.steps.accepted_params);
    `relaxer` is wired here, never given."""
    from ..chem import complexes, structure

    assemble.params_of = complexes.assemble
    swap_metal.params_of = structure.swap_metal


_declare_params()
STEPS = {"assemble": assemble, "swap_metal": swap_metal}
