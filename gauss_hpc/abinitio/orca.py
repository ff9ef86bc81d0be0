"""ORCA backend: the published protocol's optimisation of the Y analogue (constrained, then relaxed) and
SA-CASSCF(9,7)+QDPT SOC of the Dy complex. ORCA needs a licence and cannot be installed on these machines, so
this module renders inputs, runs ORCA where it exists (`ORCA` env var or `orca` on PATH) and parses outputs.

Step registry for job arrays (`STEPS`): each step is `(input: Complex, workdir, **params) -> Result`:
"opt_constrained" and "opt" (both on the complex as given; swap the metal to Y first), "casscf".
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from .molcas import kramers_doublets, safe_name
from .process import child_setup
from .result import Result, Status
from .templates import (Geometry, OrcaCasscfContext, OrcaOptContext, Resources, TemplateError,
                        equatorial_plane_constraints, render)

BACKEND = "orca"
NORMAL_END = "****ORCA TERMINATED NORMALLY****"


def program_path() -> str | None:
    """The ORCA executable: $ORCA, else `orca` on PATH if ORCA's own modules sit next to it (the GNOME screen
    reader is also called orca)."""
    candidate = os.environ.get("ORCA") or shutil.which("orca")
    if not candidate or not Path(candidate).is_file():
        return None
    return candidate if (Path(candidate).parent / "orca_scf").exists() or os.environ.get("ORCA") else None


def command(input_name: str) -> list[str]:
    """ORCA's command line (argument list). ORCA wants its absolute path for parallel runs; output is stdout."""
    return [program_path() or "orca", input_name]


def run(workdir: str | Path, input_name: str, *, name: str, timeout: float = 24 * 3600.0) -> Result:
    """Run ORCA on `input_name` in `workdir` (output x.inp -> x.out); status from the output (see check_output)."""
    workdir = Path(workdir)
    if program_path() is None:
        return Result.failure(name, BACKEND, Status.PROGRAM_MISSING,
                              f"{name}: ORCA not found (set ORCA=/path/to/orca or put ORCA's directory on PATH; "
                              f"ORCA is free for academics from orcaforum.kofo.mpg.de), or use the molcas backend",
                              workdir=str(workdir))
    out = workdir / f"{Path(input_name).stem}.out"
    start = time.monotonic()
    with open(out, "wb") as stdout, open(out.with_suffix(".err"), "wb") as stderr:
        proc = subprocess.Popen(command(input_name), cwd=workdir, stdout=stdout, stderr=stderr,
                                start_new_session=True, preexec_fn=child_setup)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)      # ORCA runs its modules (and mpirun) as children
            proc.wait()
            return Result.failure(name, BACKEND, Status.TIMEOUT, f"{name}: ORCA did not finish within {timeout:.0f} s",
                                  wall_seconds=time.monotonic() - start, workdir=str(workdir))
    status, message = check_output(out, name)
    if rc != 0 and status == Status.OK:
        status, message = Status.CRASHED, f"{name}: ORCA exited with code {rc}"
    return Result(name=name, backend=BACKEND, status=status, message=message, values={"output": str(out)},
                  wall_seconds=time.monotonic() - start, workdir=str(workdir))


_ERROR = re.compile(r"error termination|ABORTING|INPUT ERROR|UNRECOGNIZED OR DUPLICATED KEYWORD|Error \(ORCA_|"
                    r"^\s*\[file [^]]+\]", flags=re.I)


def _error_lines(text: str) -> str:
    """ORCA's own error lines (its convergence tables also say 'DIIS Error', hence the narrow patterns)."""
    lines = [ln.strip() for ln in text.splitlines() if _ERROR.search(ln)]
    return " | ".join(dict.fromkeys(lines[-3:]))


def check_output(path: str | Path, name: str) -> tuple[str, str]:
    """(status, message) of an ORCA output: OK on normal termination (and, for optimisations, a converged
    geometry); SCF/CASSCF/geometry not converged, crashed (ORCA's error lines), missing, or truncated."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return Status.MISSING_OUTPUT, f"{name}: no ORCA output at {path}"
    text = path.read_text(errors="replace")
    if re.search(r"SCF NOT CONVERGED|wavefunction IS NOT CONVERGED", text):
        return Status.SCF_NOT_CONVERGED, f"{name}: ORCA SCF did not converge"
    if re.search(r"CASSCF.*(?:NOT CONVERGED|did not converge)", text, flags=re.I):
        return Status.CASSCF_NOT_CONVERGED, f"{name}: ORCA CASSCF did not converge"
    if re.search(r"optimization did not converge", text, flags=re.I):
        return Status.GEOMETRY_NOT_CONVERGED, f"{name}: ORCA geometry optimisation did not converge"
    if NORMAL_END in text:
        return Status.OK, ""
    errors = _error_lines(text)
    if errors:
        return Status.CRASHED, f"{name}: ORCA stopped: {errors}"
    return Status.TRUNCATED_OUTPUT, f"{name}: ORCA output {path} ends without '{NORMAL_END}' (killed or still running)"


def _program_version(text: str) -> str:
    match = re.search(r"Program Version\s+(\S+)", text)
    return match.group(1) if match else ""


def parse_opt(output: str | Path, *, name: str) -> Result:
    """Final geometry (symbols, coordinates in Angstrom) and energy (Eh) of an ORCA optimisation."""
    status, message = check_output(output, name)
    if status != Status.OK:
        return Result.failure(name, BACKEND, status, message)
    text = Path(output).read_text(errors="replace")
    if "OPTIMIZATION RUN DONE" not in text and "HURRAY" not in text:
        return Result.failure(name, BACKEND, Status.PARSE_ERROR, f"{name}: {output} is not a finished optimisation")
    blocks = re.findall(r"CARTESIAN COORDINATES \(ANGSTROEM\)\n-+\n((?:\s*[A-Z][a-z]?\s+\S+\s+\S+\s+\S+\n)+)", text)
    energies = re.findall(r"FINAL SINGLE POINT ENERGY\s+(-?\d+\.\d+)", text)
    if not blocks or not energies:
        return Result.failure(name, BACKEND, Status.PARSE_ERROR, f"{name}: no final geometry or energy in {output}")
    rows = [line.split() for line in blocks[-1].strip().splitlines()]
    values = {"symbols": [r[0] for r in rows], "coordinates": [[float(v) for v in r[1:4]] for r in rows],
              "energy": float(energies[-1]), "optimization_cycles": len(blocks) - 1,
              "program_version": _program_version(text)}
    return Result(name=name, backend=BACKEND, values=values)


def parse_qdpt(output: str | Path, *, name: str, n_doublets: int = 8) -> Result:
    """Kramers doublets from the QDPT-SOC eigenvalues of an ORCA CASSCF output (cm-1, ground 0).

    Not yet checked against a real ORCA CASSCF/QDPT output (none is public in the parser test suites we found):
    it reads the first table of "<state>: <cm-1> <eV> ..." rows after the "QDPT WITH SOC" heading."""
    status, message = check_output(output, name)
    if status != Status.OK:
        return Result.failure(name, BACKEND, status, message)
    text = Path(output).read_text(errors="replace")
    start = text.rfind("QDPT WITH SOC")
    if start < 0:
        return Result.failure(name, BACKEND, Status.PARSE_ERROR,
                              f"{name}: no 'QDPT WITH SOC' section in {output}; was dosoc true set in %casscf rel?")
    rows = re.findall(r"^\s*(\d+):\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)", text[start:], flags=re.M)
    energies, seen = [], set()
    for state, cm, _ in rows:
        if state in seen:        # a second table (e.g. with populations) repeats the states: keep the first
            break
        seen.add(state)
        energies.append(float(cm))
    try:
        kd, gaps = kramers_doublets(energies, n_doublets)
    except ValueError as exc:
        return Result.failure(name, BACKEND, Status.PARSE_ERROR, f"{name}: {exc}")
    return Result(name=name, backend=BACKEND, values={"kd_energies": kd, "kd_gaps": gaps, "so_energies": energies,
                                                      "program_version": _program_version(text)})


def _render_input(template: str, context, workdir: str | Path, template_dir) -> list[Path]:
    """One ORCA input <name>.inp in `workdir` (ORCA runs one input per job)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{safe_name(context.name)}.inp"
    path.write_text(render(template, context, template_dir))
    return [path]


def render_opt(context: OrcaOptContext, workdir: str | Path, template_dir=None) -> list[Path]:
    return _render_input("orca/opt.inp.j2", context, workdir, template_dir)


def render_casscf(context: OrcaCasscfContext, workdir: str | Path, template_dir=None) -> list[Path]:
    return _render_input("orca/casscf_soc.inp.j2", context, workdir, template_dir)


def opt_context(cx, *, constrained: bool, name: str | None = None, cores: int = 1, memory_mb: int = 4000,
                **choices) -> OrcaOptContext:
    """Context of the published optimisation step for `cx` (pass the Y analogue, see chem.complexes.swap_metal)."""
    constraints = equatorial_plane_constraints(cx) if constrained else ()
    return OrcaOptContext(name=name or f"{cx.name}_{'opt_constrained' if constrained else 'opt'}",
                          geometry=Geometry.from_complex(cx), metal_index=cx.metal_index, constraints=constraints,
                          resources=Resources(cores, memory_mb), **choices)


def casscf_context(cx, *, name: str | None = None, cores: int = 1, memory_mb: int = 4000,
                   **choices) -> OrcaCasscfContext:
    return OrcaCasscfContext(name=name or f"{cx.name}_casscf", geometry=Geometry.from_complex(cx),
                             metal_index=cx.metal_index, resources=Resources(cores, memory_mb), **choices)


def _step(render_fn, make_context, parse_fn, cx, workdir, timeout, template_dir, **params) -> Result:
    started = time.monotonic()
    try:
        context = make_context(cx, **params)
        (inp,) = render_fn(context, workdir, template_dir)
    except (TemplateError, ValueError) as exc:
        return Result.failure(params.get("name") or cx.name, BACKEND, Status.INVALID_INPUT, str(exc),
                              workdir=str(workdir))
    result = run(workdir, inp.name, name=context.name, timeout=timeout)
    if result.status != Status.OK:
        return result
    parsed = parse_fn(result.values["output"], name=context.name)
    parsed.values["output"] = result.values["output"]
    parsed.wall_seconds, parsed.workdir = time.monotonic() - started, str(workdir)
    return parsed


def optimise(cx, *, constrained: bool, workdir: str | Path, timeout: float = 48 * 3600.0, template_dir=None,
             **params) -> Result:
    """One optimisation step of the protocol; values: symbols, coordinates (final), energy."""
    return _step(render_opt, lambda c, **p: opt_context(c, constrained=constrained, **p), parse_opt, cx, workdir,
                 timeout, template_dir, **params)


def kd_energies(cx, *, name: str | None = None, workdir: str | Path, timeout: float = 48 * 3600.0,
                template_dir=None, **params) -> Result:
    """SA-CASSCF(9,7)/QDPT-SOC Kramers doublets of a Dy complex with ORCA; values: kd_energies, kd_gaps."""
    return _step(render_casscf, casscf_context, parse_qdpt, cx, workdir, timeout, template_dir, name=name, **params)


def with_geometry(cx, result: Result):
    """`cx` with the final coordinates of an optimisation Result (same atoms, same order)."""
    coords = np.asarray(result.values["coordinates"], dtype=float)
    if list(result.values["symbols"]) != list(cx.symbols):
        raise ValueError(f"{cx.name}: optimised atoms {result.values['symbols']} differ from the complex's")
    return type(cx)(**{**cx.to_dict(), "coords": coords})


def opt_constrained_task(cx, workdir, **params) -> Result:
    """Job-array step "opt_constrained": equatorial donors held in a plane at 72 deg (pass the Y analogue)."""
    return optimise(cx, constrained=True, workdir=workdir, **params)


def opt_task(cx, workdir, **params) -> Result:
    """Job-array step "opt": fully relaxed optimisation (start from opt_constrained's geometry, with_geometry)."""
    return optimise(cx, constrained=False, workdir=workdir, **params)


def casscf_task(cx, workdir, **params) -> Result:
    """Job-array step "casscf": CASSCF(9,7)+QDPT Kramers doublets of the Dy complex."""
    return kd_energies(cx, workdir=workdir, **params)


STEPS = {"opt_constrained": opt_constrained_task, "opt": opt_task, "casscf": casscf_task}
