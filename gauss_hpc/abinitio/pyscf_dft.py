"""DFT geometry tier: the published protocol's optimisation of the Y(III) analogue, with PySCF and geomeTRIC.

The paper optimises [Y(H2O)5L2]+ (the diamagnetic stand-in of the Dy complex) with BP86-D3(BJ), first with the
five equatorial donors held in their plane at 72 degrees to each other, then free, and computes the Dy complex
on that geometry. ORCA does this on a cluster (jobs/orca_protocol.toml); this backend does it with programs on
PyPI, so that faithful geometries can be made anywhere:

  phase "constrained"  equatorial donors coplanar with the metal, neighbouring donors 72 degrees apart
                       (geomeTRIC constraints), everything else free;
  phase "free"         no constraints, from the constrained minimum.

The optimisation runs in a child process (`python -m gauss_hpc.abinitio.pyscf_dft WORKDIR`) started through
`process.run_program`, so that it has a timeout, a crash or an out-of-memory kill is a status, and the PySCF log
(pyscf.log) and geomeTRIC trajectories stay in the work directory. The child writes each phase's result as soon
as the phase ends (phase_<name>.json) and the latest geometry after every step (latest_<name>.json); the step run
again in the same directory (a resubmitted array task) skips the finished phases and continues an interrupted one
from its latest geometry, so a timeout or a killed job costs at most one step.

Profile: how the child is started (argv, environment: OMP threads, PySCF memory). Settings (`DftSettings`,
presets in PRESETS): what is asked. Values of the Result: complex (the original metal back on the optimised
geometry), symbols and coordinates as computed (Y), energy (Eh), steps per phase, metal_donor_distances.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .process import run_program
from .result import Result, Status


class _BondsChanged(Exception):
    """Raised inside geomeTRIC's callback to end an optimisation that became another molecule."""

BACKEND = "pyscf_dft"
METHOD = "dft"
PHASES = ("constrained", "free")
EQUATORIAL_ANGLE = 72.0           # degrees between neighbouring equatorial donors of a pentagonal bipyramid


@dataclass(frozen=True)
class DftSettings:
    """What the optimisation is asked; the defaults are the measured choice for this machine (bench/dft_tier.py,
    docs/geometry_tiers.md). `xc` is PySCF's name of the functional; `basis` applies to every atom and brings its
    own ECP for heavy atoms (def2: Y has a 28-electron ECP, which also carries the scalar-relativistic effect
    the paper treats with DKH2)."""

    xc: str = "bp86"
    dispersion: str = "d3bj"           # "" for none
    basis: str = "def2-svp"
    grid_level: int = 2
    density_fit: bool = True
    scf_conv_tol: float = 1e-8
    max_scf_cycles: int = 100
    constrained_steps: int = 30        # 0 skips it; it only has to bring the free phase close (converged or not)
    free_steps: int = 100
    convergence: str = "GAU"           # geomeTRIC convergence set of the free phase (GAU, GAU_LOOSE, GAU_TIGHT, ...)
    constrained_convergence: str = "GAU_LOOSE"     # the constrained phase only brings the free one close
    swap_to: str = "Y"                 # the closed-shell analogue optimised instead of an open-shell 4f metal
    threads: int = 1
    memory_mb: int = 2000
    timeout: float = 12 * 3600.0       # seconds for the whole optimisation (both phases)
    bonds_changed_steps: int = 3       # stop when the ligand bonds differ from the input's for this many steps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Named settings. "default": the tier as measured here. "quick": the coarsest grid and no dispersion, for tests of
# the machinery only (its geometries are not the tier's).
PRESETS = {"default": DftSettings(),
           "quick": DftSettings(dispersion="", grid_level=0, convergence="GAU_LOOSE")}


def settings(preset: str = "default", **overrides) -> DftSettings:
    """A preset with some fields replaced; ValueError naming an unknown preset or field."""
    if preset not in PRESETS:
        raise ValueError(f"DFT preset {preset!r}: expected one of {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(DftSettings)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown DFT settings {unknown}; known: {sorted(fields)}")
    return dataclasses.replace(PRESETS[preset], **overrides)


# --- the geometry problem ---------------------------------------------------------------------------------------

def equatorial_ring(coords: np.ndarray, metal: int, equatorial: list[int], axial: list[int]) -> list[int]:
    """The equatorial donors in order around the metal (by azimuth about the axial direction), so that
    neighbours in the list are neighbours in the pentagon."""
    centre = coords[metal]
    if len(axial) >= 2:
        axis = coords[axial[0]] - coords[axial[1]]
    else:           # no trans pair: the normal of the donors' best plane
        axis = np.linalg.svd(coords[equatorial] - coords[equatorial].mean(axis=0))[2][-1]
    axis = axis / np.linalg.norm(axis)
    ref = coords[equatorial[0]] - centre
    ref = ref - axis * (ref @ axis)
    ref /= np.linalg.norm(ref)
    other = np.cross(axis, ref)
    azimuth = [np.arctan2((coords[i] - centre) @ other, (coords[i] - centre) @ ref) % (2 * np.pi)
               for i in equatorial]
    return [equatorial[k] for k in np.argsort(azimuth)]


def constraints_text(ring: list[int], metal: int) -> str:
    """geomeTRIC constraints (1-based atom numbers) holding a pentagon of donors in one plane with the metal at
    72 degrees between neighbours: four neighbour angles (the fifth follows in a plane) and three dihedrals that
    put the donors and the metal in one plane. Only for five equatorial donors."""
    if len(ring) != 5:
        raise ValueError(f"the constrained phase holds 5 equatorial donors in a plane; this complex has {len(ring)}")
    a = [i + 1 for i in ring]
    m = metal + 1
    lines = ["$set"]
    lines += [f"angle {a[k]} {m} {a[k + 1]} {EQUATORIAL_ANGLE:.1f}" for k in range(4)]
    lines += [f"dihedral {a[0]} {a[1]} {a[2]} {a[3]} 0.0", f"dihedral {a[1]} {a[2]} {a[3]} {a[4]} 0.0",
              f"dihedral {a[0]} {a[1]} {a[2]} {m} 0.0"]
    return "\n".join(lines) + "\n"


def metal_donor_distances(coords: np.ndarray, metal: int, donors: list[int]) -> list[float]:
    return [float(np.linalg.norm(coords[d] - coords[metal])) for d in donors]


# --- the child process ---------------------------------------------------------------------------------------

INPUT_FILE, LOG_FILE = "dft_input.json", "pyscf.log"


def _phase_file(workdir: Path, phase: str) -> Path:
    return workdir / f"phase_{phase}.json"


def _latest_file(workdir: Path, phase: str) -> Path:
    return workdir / f"latest_{phase}.json"


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _mean_field(mol, s: DftSettings):
    from pyscf import dft

    mf = dft.RKS(mol)
    mf.xc = s.xc
    mf.grids.level = s.grid_level
    mf.conv_tol = s.scf_conv_tol
    mf.max_cycle = s.max_scf_cycles
    if s.dispersion:
        mf.disp = s.dispersion
    if s.density_fit:
        mf = mf.density_fit()
    return mf


def _optimise(mol, s: DftSettings, workdir: Path, phase: str, constraints: str | None, max_steps: int,
              before: dict, metal_index: int, input_bonds: np.ndarray) -> dict:
    """One geomeTRIC optimisation; returns the phase record (geometry in Angstrom, energy, steps, converged).
    `before`: steps and seconds an interrupted run of this phase already spent (it continues from its latest
    geometry, with a new Hessian guess). The optimisation ends early, with bonds_changed in its record, when the
    ligand bonds differ from `input_bonds` for s.bonds_changed_steps steps in a row: a water's proton taken by a
    strongly basic ligand does not come back, and every further step would be spent on another complex."""
    from pyscf.geomopt import geometric_solver

    mf = _mean_field(mol, s)
    symbols = [mol.atom_pure_symbol(i) for i in range(mol.natm)]
    steps, scf_converged, changed = [], [], []
    start = time.monotonic()
    latest = mol.atom_coords(unit="Angstrom")

    def record(env):          # geomeTRIC calls this after each gradient: keep a trace and the latest geometry
        nonlocal latest
        steps.append(float(env["energy"]))
        scf_converged.append(bool(env["g_scanner"].converged))
        latest = env["mol"].atom_coords(unit="Angstrom")
        _write_json(_latest_file(workdir, phase), {"coordinates": latest.tolist(),
                                                   "steps": before.get("steps", 0) + len(steps),
                                                   "seconds": before.get("seconds", 0.0) + time.monotonic() - start})
        changed.append(bool((_ligand_bonds(symbols, latest, metal_index) != input_bonds).any()))
        if len(changed) >= s.bonds_changed_steps and all(changed[-s.bonds_changed_steps:]):
            raise _BondsChanged

    constraint_file = None
    if constraints:
        constraint_file = workdir / f"constraints_{phase}.txt"
        constraint_file.write_text(constraints)
    try:
        converged, final = geometric_solver.kernel(
            mf, assert_convergence=False, constraints=str(constraint_file) if constraint_file else None,
            callback=record, maxsteps=max(1, max_steps - before.get("steps", 0)),
            convergence_set=s.constrained_convergence if constraints else s.convergence,
            prefix=str(workdir / f"geometric_{phase}"))
        coordinates, bonds_changed = final.atom_coords(unit="Angstrom"), False
    except _BondsChanged:
        converged, coordinates, bonds_changed = False, latest, True
    return {"phase": phase, "converged": bool(converged), "steps": before.get("steps", 0) + len(steps),
            "energy": steps[-1], "scf_converged": scf_converged[-1], "bonds_changed": bonds_changed,
            "coordinates": coordinates.tolist(), "seconds": before.get("seconds", 0.0) + time.monotonic() - start}


def _ligand_bonds(symbols, coords: np.ndarray, metal: int) -> np.ndarray:
    """Covalent bonds between the atoms other than the metal, as chem.complexes.check_relaxation sees them."""
    from ..chem.complexes import _bonded

    keep = [i for i in range(len(symbols)) if i != metal]
    return _bonded([symbols[i] for i in keep], np.asarray(coords)[keep])


def _molecule(symbols, coords, charge: int, spin: int, s: DftSettings, log: Path):
    from pyscf import gto

    heavy = {sym: s.basis for sym in set(symbols) if gto.charge(sym) > 36}     # def2 ECPs start at Rb
    return gto.M(atom=[(sym, tuple(xyz)) for sym, xyz in zip(symbols, coords)], unit="Angstrom", charge=charge,
                 spin=spin, basis=s.basis, ecp=heavy, verbose=4, output=str(log), max_memory=s.memory_mb)


def child_main(workdir: Path) -> int:
    """Run the phases not yet done in `workdir` (see the module docstring); exit status 0 when both ended,
    converged or not (the parent reads the phase files), 2 for an input it cannot use."""
    request = json.loads((workdir / INPUT_FILE).read_text())
    s = DftSettings(**request["settings"])
    symbols, coords = request["symbols"], np.asarray(request["coordinates"], float)
    ring, metal = request["ring"], request["metal_index"]
    input_bonds = _ligand_bonds(symbols, coords, metal)
    for phase in PHASES:
        if _phase_file(workdir, phase).exists():
            coords = np.asarray(json.loads(_phase_file(workdir, phase).read_text())["coordinates"])
            continue
        max_steps = s.constrained_steps if phase == "constrained" else s.free_steps
        if max_steps <= 0:
            continue
        before = json.loads(_latest_file(workdir, phase).read_text()) if _latest_file(workdir, phase).exists() else {}
        if before:            # interrupted in this phase (a timeout, a killed job): continue from where it was
            coords = np.asarray(before["coordinates"], float)
        mol = _molecule(symbols, coords, request["charge"], request["spin"], s, workdir / LOG_FILE)
        record = _optimise(mol, s, workdir, phase, constraints_text(ring, metal) if phase == "constrained" else None,
                           max_steps, before, metal, input_bonds)
        _write_json(_phase_file(workdir, phase), record)
        if record["bonds_changed"]:      # the parent's check_relaxation reports it, with this geometry
            break
        coords = np.asarray(record["coordinates"])
    return 0


# --- the parent: a job step ----------------------------------------------------------------------------------

def profile(s: DftSettings, workdir: Path) -> tuple[list[str], dict[str, str]]:
    """How the child is started: argv and environment (threads for PySCF's BLAS and OpenMP, its memory and
    scratch in the work directory)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(s.threads), OPENBLAS_NUM_THREADS=str(s.threads),
               MKL_NUM_THREADS=str(s.threads), PYSCF_MAX_MEMORY=str(s.memory_mb), PYSCF_TMPDIR=str(workdir))
    return [sys.executable, "-m", "gauss_hpc.abinitio.pyscf_dft", str(workdir)], env


def _scratch(workdir, name: str) -> Path:
    if workdir is None:
        import tempfile
        return Path(tempfile.mkdtemp(prefix=f"dft_{name}_"))
    path = Path(workdir).resolve()          # the child runs inside it: a relative path would not be found
    path.mkdir(parents=True, exist_ok=True)
    return path


# settings that change how, not what, is computed (bonds_changed_steps: only when a doomed run gives up)
RUN_ONLY = ("threads", "memory_mb", "timeout", "bonds_changed_steps")


def _what_is_computed(request: dict) -> dict:
    """A request without its run-only settings: a rerun with more time or threads resumes the same optimisation."""
    return {**request, "settings": {k: v for k, v in request["settings"].items() if k not in RUN_ONLY}}


def relax_complex(cx, *, name: str | None = None, workdir=None, preset: str = "default", **overrides) -> Result:
    """BP86-D3(BJ) optimisation of the closed-shell analogue of a complex (see the module docstring); `preset`
    and any DftSettings field as keyword. Never raises: a bad setting, a missing PySCF, a crash, a timeout or
    an unconverged optimisation is the Result's status (the last geometry is kept in values where there is
    one). Reruns in the same `workdir` resume after the last finished phase."""
    from ..chem.complexes import AssemblyError, Complex, check_relaxation, swap_metal   # chem builds on abinitio

    name = name or cx.name
    start = time.monotonic()
    try:
        s = settings(preset, **overrides)
    except ValueError as exc:
        return Result.failure(name, BACKEND, Status.INVALID_INPUT, f"{name}: {exc}")
    workdir = _scratch(workdir, name)
    try:
        work = swap_metal(cx, s.swap_to) if s.swap_to and cx.metal != s.swap_to else cx
        ring = equatorial_ring(work.coords, work.metal_index, list(work.equatorial_donors), list(work.axial_donors))
        if s.constrained_steps > 0:
            constraints_text(ring, work.metal_index)
    except Exception as exc:      # swap_metal's AssemblyError for an ion without a spin rule, too few donors
        return Result.failure(name, BACKEND, Status.INVALID_INPUT, f"{name}: {exc}", workdir=str(workdir))
    request = {"name": name, "symbols": list(work.symbols), "coordinates": work.coords.tolist(),
               "charge": int(work.charge), "spin": int(work.multiplicity - 1), "metal_index": int(work.metal_index),
               "ring": [int(i) for i in ring], "settings": s.to_dict()}
    input_path = workdir / INPUT_FILE
    if input_path.exists() and _what_is_computed(json.loads(input_path.read_text())) != _what_is_computed(request):
        for phase in PHASES:      # another complex or other settings in this directory: start over
            _phase_file(workdir, phase).unlink(missing_ok=True)
            _latest_file(workdir, phase).unlink(missing_ok=True)
    _write_json(input_path, request)
    argv, env = profile(s, workdir)
    run = run_program(argv, workdir, stdout=workdir / "child.out", stderr=workdir / "child.err", env=env,
                      timeout=s.timeout)
    seconds = time.monotonic() - start
    phases = {p: json.loads(_phase_file(workdir, p).read_text()) for p in PHASES if _phase_file(workdir, p).exists()}
    values = {"settings": s.to_dict(), "relaxed_metal": work.metal,
              "phase_steps": {p: r["steps"] for p, r in phases.items()},
              "phase_seconds": {p: r["seconds"] for p, r in phases.items()}}
    last = phases.get("free") or phases.get("constrained")
    if last is not None:
        coords = np.asarray(last["coordinates"], float)
        donors = list(work.axial_donors) + list(work.equatorial_donors)
        moved = Complex.from_dict({**cx.to_dict(), "coords": coords.tolist()})
        values.update(symbols=list(work.symbols), coordinates=coords.tolist(), complex=moved.to_dict(),
                      energy=last["energy"], steps=sum(r["steps"] for r in phases.values()),
                      metal_donor_distances=metal_donor_distances(coords, work.metal_index, donors))
    if not run.started:
        return Result.failure(name, BACKEND, Status.PROGRAM_MISSING, run.error, values=values, wall_seconds=seconds,
                              workdir=str(workdir))
    if run.timed_out:
        return Result.failure(name, BACKEND, Status.TIMEOUT,
                              f"{name}: DFT optimisation ran past {s.timeout:.0f} s (finished phases: "
                              f"{', '.join(phases) or 'none'}); rerun in the same work directory to resume",
                              values=values, wall_seconds=seconds, workdir=str(workdir))
    if run.returncode != 0 or last is None:
        tail = run.stderr_tail
        status = Status.SCF_NOT_CONVERGED if "converge" in tail.lower() else Status.CRASHED
        return Result.failure(name, BACKEND, status, f"{name}: DFT optimisation exited with {run.returncode}: {tail}",
                              values=values, wall_seconds=seconds, workdir=str(workdir))
    if not last.get("scf_converged", True):
        return Result.failure(name, BACKEND, Status.SCF_NOT_CONVERGED,
                              f"{name}: the SCF of the last optimisation step did not converge in "
                              f"{s.max_scf_cycles} cycles", values=values, wall_seconds=seconds, workdir=str(workdir))
    try:      # a geometry where a water gave its proton to the ligand is another complex, not this one's minimum
        check_relaxation(cx, Complex.from_dict(values["complex"]), method="DFT")
    except AssemblyError as exc:
        return Result.failure(name, BACKEND, Status.FAILED, f"{exc} ({exc.reason}; values hold that geometry)",
                              values=values, wall_seconds=seconds, workdir=str(workdir))
    if not last["converged"]:       # the constrained phase only has to bring the free one close
        return Result.failure(name, BACKEND, Status.GEOMETRY_NOT_CONVERGED,
                              f"{name}: {last['phase']} DFT optimisation not converged in {last['steps']} steps "
                              "(values hold the last geometry)", values=values, wall_seconds=seconds,
                              workdir=str(workdir))
    return Result(name=name, backend=BACKEND, values=values, wall_seconds=seconds, workdir=str(workdir),
                  method="dft")


def dft_relax(item, workdir: Path, *, name: str, **params) -> Result:
    """Job step `dft_relax`: relax_complex on the complex of the previous step; the optimised complex goes on
    with its descriptors."""
    from .step_io import complex_input, with_geometry

    cx = complex_input(item, "dft_relax", BACKEND, name)
    return cx if isinstance(cx, Result) else with_geometry(relax_complex(cx, name=name, workdir=workdir, **params))


dft_relax.param_names = frozenset({"preset"} | {f.name for f in dataclasses.fields(DftSettings)})
STEPS = {"dft_relax": dft_relax}


if __name__ == "__main__":
    sys.exit(child_main(Path(sys.argv[1])))
