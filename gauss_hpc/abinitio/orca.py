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
import time
from pathlib import Path

from . import aniso as aniso_mod
from .ions import ground_term
from .molcas import safe_name
from .process import Profile, run_profile
from .result import Result, Status
from .templates import (Geometry, OrcaCasscfContext, OrcaOptContext, Resources, TemplateError,
                        equatorial_plane_constraints, render)

BACKEND = "orca"
PROGRAM_NAME = "ORCA"           # its name in messages
NORMAL_END = "****ORCA TERMINATED NORMALLY****"


def program_path() -> str | None:
    """The ORCA executable: $ORCA, else `orca` on PATH if ORCA's own modules sit next to it (the GNOME screen
    reader is also called orca)."""
    candidate = os.environ.get("ORCA") or shutil.which("orca")
    if not candidate or not Path(candidate).is_file():
        return None
    return candidate if (Path(candidate).parent / "orca_scf").exists() or os.environ.get("ORCA") else None


PROFILE = Profile(program="ORCA", backend=BACKEND, executable=program_path, output_suffix=".out",
                  output_key="output", missing="ORCA not found (set ORCA=/path/to/orca or put ORCA's directory on "
                  "PATH; ORCA is free for academics from orcaforum.kofo.mpg.de), or use the molcas backend")


def run(workdir: str | Path, input_name: str, *, name: str, timeout: float = 24 * 3600.0) -> Result:
    """Run ORCA on `input_name` in `workdir` (output x.inp -> x.out); status from the output (see check_output).
    ORCA wants its absolute path for parallel runs, which `program_path` gives."""
    return run_profile(PROFILE, workdir, input_name, name=name, timeout=timeout, check=check_output)


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


program_version = _program_version

_GEOMETRY = re.compile(r"CARTESIAN COORDINATES \(ANGSTROEM\)\n-+\n((?:\s*[A-Z][a-z]?\s+\S+\s+\S+\s+\S+\n)+)")


def final_geometry(text: str) -> tuple[list[str], list[list[float]]]:
    """Symbols and coordinates (Angstrom) of the last 'CARTESIAN COORDINATES (ANGSTROEM)' block; empty if none."""
    blocks = _GEOMETRY.findall(text)
    if not blocks:
        return [], []
    rows = [line.split() for line in blocks[-1].strip().splitlines()]
    return [r[0] for r in rows], [[float(v) for v in r[1:4]] for r in rows]


def parse_opt(output: str | Path, *, name: str) -> Result:
    """Final geometry (symbols, coordinates in Angstrom) and energy (Eh) of an ORCA optimisation."""
    status, message = check_output(output, name)
    if status != Status.OK:
        return Result.failure(name, BACKEND, status, message)
    text = Path(output).read_text(errors="replace")
    if "OPTIMIZATION RUN DONE" not in text and "HURRAY" not in text:
        return Result.failure(name, BACKEND, Status.PARSE_ERROR, f"{name}: {output} is not a finished optimisation")
    symbols, coordinates = final_geometry(text)
    energies = re.findall(r"FINAL SINGLE POINT ENERGY\s+(-?\d+\.\d+)", text)
    if not symbols or not energies:
        return Result.failure(name, BACKEND, Status.PARSE_ERROR, f"{name}: no final geometry or energy in {output}")
    values = {"symbols": symbols, "coordinates": coordinates, "energy": float(energies[-1]),
              "optimization_cycles": len(_GEOMETRY.findall(text)) - 1, "program_version": _program_version(text)}
    return Result(name=name, backend=BACKEND, values=values, method="dft")


# the headings of ORCA 5/6's spin-orbit QDPT, by the diagonal energies it used (NEVPT2 when NEVPT2 ran)
QDPT_HEADINGS = {"casscf": "QDPT WITH CASSCF DIAGONAL ENERGIES", "nevpt2": "QDPT WITH NEVPT2 DIAGONAL ENERGIES"}
INTEGER_SPIN = "The molecule is an integer-spin system"
_EIGENVALUE = re.compile(r"^\s*(\d+):\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+\S+\s*$")
_KRAMERS_PAIR = re.compile(r"^KRAMERS PAIR\s+(\d+)\s*$", flags=re.M)
_G_FACTORS = re.compile(r"g-factors:\s*\n\s*(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)")


def qdpt_levels(text: str, energies: str = "casscf") -> tuple[list[float], dict[int, list[float]]] | None:
    """(spin-orbit energies in cm-1, {Kramers pair index (0-based): g-factors}) of the first QDPT block with
    `energies` diagonal energies; None when the output has no such block. The g-factors are ORCA's principal
    values of the pair's g-matrix ('KRAMERS PAIR n' ... 'g-factors:'), ascending as ORCA prints them."""
    start = text.find(QDPT_HEADINGS[energies])
    if start < 0:
        return None
    block = text[start:]
    ends = [i for i in (block.find(h, 10) for h in (*QDPT_HEADINGS.values(), "Calling the SINGLE_ANISO program"))
            if i > 0]
    block = block[:min(ends)] if ends else block
    levels = []
    head = block.find("Eigenvalues:")
    for line in block[head:].splitlines()[1:] if head >= 0 else []:
        match = _EIGENVALUE.match(line)
        if match is None:
            break
        levels.append(float(match.group(2)))
    pairs = list(_KRAMERS_PAIR.finditer(block))
    g = {}
    for k, pair in enumerate(pairs):
        part = block[pair.end(): pairs[k + 1].start() if k + 1 < len(pairs) else len(block)]
        factors = _G_FACTORS.search(part)
        if factors is not None:
            g[int(pair.group(1)) - 1] = [float(x) for x in factors.groups()]
    return levels, g


def parse_qdpt(output: str | Path, *, name: str, n_doublets: int | None = None, energies: str = "casscf",
               require_kramers: bool = True) -> Result:
    """Kramers doublets of an ORCA 5/6 CASSCF output with spin-orbit QDPT (`%casscf rel DoSOC true end`).

    Reads the spin-orbit levels ('Eigenvalues:  cm-1  eV  Boltzmann populations' rows) of the QDPT block with
    CASSCF diagonal energies (energies="casscf", the default) or NEVPT2 ones ("nevpt2"). g-tensors per doublet:
    from ORCA's SINGLE_ANISO section (the ANISO block, MLTP 2,2,...) when it ran on the same energies, main
    values gX, gY, gZ as OpenMolcas's; else ORCA's own 'KRAMERS PAIR n' g-factors (DoGTensor); NaN where neither.
    n_doublets: how many doublets to report; None takes the SINGLE_ANISO groups' states / 2, else the ground
    J multiplet of the lanthanide in the geometry, else every pair. An integer-spin ion has no Kramers pairs:
    PARSE_ERROR, or with require_kramers False an OK result with so_energies only.

    values: kd_energies, kd_gaps, g_tensors, g_axes (main magnetic axes from SINGLE_ANISO, NaN otherwise),
    so_energies (cm-1, ground 0), g_source, qdpt_energies, symbols,
    coordinates (the input geometry, Angstrom), program_version.
    """
    status, message = check_output(output, name)
    if status != Status.OK:
        return Result.failure(name, BACKEND, status, message)
    if energies not in QDPT_HEADINGS:
        return Result.failure(name, BACKEND, Status.INVALID_INPUT,
                              f"{name}: energies={energies!r}; use one of {sorted(QDPT_HEADINGS)}")
    text = Path(output).read_text(errors="replace")
    found = qdpt_levels(text, energies)
    if found is None or not found[0]:
        present = [h for h in QDPT_HEADINGS.values() if h in text]
        return Result.failure(name, BACKEND, Status.PARSE_ERROR,
                              f"{name}: no '{QDPT_HEADINGS[energies]}' spin-orbit levels in {output}"
                              + (f" (it has {present})" if present else
                                 "; was DoSOC true set in %casscf rel?"))
    so, g = found
    symbols, coordinates = final_geometry(text)
    aniso = aniso_mod.parse_single_aniso(text)
    g_source = "kramers_pair" if g else ""
    axes = {}                       # ORCA's KRAMERS PAIR g-factors come without directions
    if aniso is not None and aniso.g_by_group and _aniso_matches(text, energies):
        g = {**g, **aniso.g_by_doublet()}
        axes = aniso.axes_by_doublet()
        g_source = "single_aniso"
    if n_doublets is None:
        n_doublets = (sum(aniso.groups) // 2 if aniso is not None and aniso.groups else None) or \
            aniso_mod.doublet_count(symbols)
    try:
        values, note = aniso_mod.spectrum_values(so, g, n_doublets, require_kramers=require_kramers,
                                                 axes_by_doublet=axes, ion=aniso_mod.ground_term_of(symbols))
    except aniso_mod.NotKramers as exc:
        said = " ORCA itself says: integer-spin system" if INTEGER_SPIN in text else ""
        return Result.failure(name, BACKEND, Status.PARSE_ERROR, f"{name}: {exc}.{said}")
    if INTEGER_SPIN in text and values.get("kramers", True) and "kd_energies" in values:   # paired by accident
        if require_kramers:
            return Result.failure(name, BACKEND, Status.PARSE_ERROR,
                                  f"{name}: ORCA says integer-spin system: no Kramers doublets")
        values, note = {"so_energies": values["so_energies"]}, "no Kramers doublets (ORCA: integer-spin system)"
    values.update(g_source=g_source, qdpt_energies=energies, symbols=symbols, coordinates=coordinates,
                  program_version=_program_version(text))
    return Result(name=name, backend=BACKEND, message=f"{name}: {note}" if note else "", values=values,
                  method=energies)           # "casscf" or "nevpt2": the QDPT levels read


def _aniso_matches(text: str, energies: str) -> bool:
    """Whether ORCA's SINGLE_ANISO read the data of the chosen QDPT energies (its data file is <base>.CASSCF.
    anisofile or <base>.NEVPT2.anisofile); True when the output does not say."""
    match = re.search(r"Data file for this center -+ :\s*(\S+)", text)
    return match is None or f".{energies.upper()}." in match.group(1).upper()


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
    """The SA-CASSCF/QDPT of the complex's lanthanide (ions.ground_term): CAS(n_f, 7) over every root of the
    highest spin and one SINGLE_ANISO group per (pseudo-)doublet, unless `choices` say otherwise."""
    try:
        term = ground_term(cx.metal)
    except ValueError as exc:
        raise TemplateError(f"{name or cx.name}: {exc}") from None
    ion = {"nel": term.n_f, "mult": int(round(2 * term.S + 1)), "nroots": term.high_spin_roots,
           "n_doublets": term.aniso_groups}
    return OrcaCasscfContext(name=name or f"{cx.name}_casscf", geometry=Geometry.from_complex(cx),
                             metal_index=cx.metal_index, resources=Resources(cores, memory_mb), **{**ion, **choices})


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
    """SA-CASSCF(9,7)/QDPT-SOC Kramers doublets of a Dy complex with ORCA; values: kd_energies, kd_gaps, and from
    the ANISO block (SINGLE_ANISO) g_tensors and g_axes per doublet."""
    return _step(render_casscf, casscf_context, parse_qdpt, cx, workdir, timeout, template_dir, name=name, **params)


def _optimised(item, workdir, constrained: bool, params: dict) -> Result:
    """An optimisation step on the complex the earlier steps made; the optimised complex goes on with its
    descriptors."""
    from ..chem.structure import Complex
    from .step_io import complex_input, with_geometry

    step = "orca_opt_constrained" if constrained else "orca_opt"
    cx = complex_input(item, step, BACKEND, params.get("name") or step)
    if isinstance(cx, Result):
        return cx
    result = optimise(cx, constrained=constrained, workdir=workdir, **params)
    coords = result.values.get("coordinates")
    if coords is None or len(coords) != len(cx.symbols):
        return result
    return with_geometry(result, Complex.from_dict({**cx.to_dict(), "coords": coords}))


def opt_constrained_task(item, workdir, **params) -> Result:
    """Job-array step "opt_constrained": equatorial donors held in a plane at 72 deg (pass the Y analogue)."""
    return _optimised(item, workdir, True, params)


def opt_task(item, workdir, **params) -> Result:
    """Job-array step "opt": fully relaxed optimisation (from opt_constrained's geometry: the job runner
    passes the previous step's coordinates on)."""
    return _optimised(item, workdir, False, params)


def casscf_task(item, workdir, **params) -> Result:
    """Job-array step "casscf": CASSCF(9,7)+QDPT Kramers doublets of the Dy complex."""
    from .step_io import complex_input

    cx = complex_input(item, "orca_casscf", BACKEND, params.get("name") or "orca_casscf")
    return cx if isinstance(cx, Result) else kd_energies(cx, workdir=workdir, **params)


STEPS = {"opt_constrained": opt_constrained_task, "opt": opt_task, "casscf": casscf_task}
# what each step forwards its params to, so that a spec's unknown params are errors (jobs.steps.accepted_params)
opt_constrained_task.params_of = opt_task.params_of = optimise
optimise.params_of, opt_context.params_of = opt_context, OrcaOptContext
casscf_task.params_of, kd_energies.params_of, casscf_context.params_of = kd_energies, casscf_context, OrcaCasscfContext


_BANNER = re.compile(r"\*\s+O\s+R\s+C\s+A\s+\*|Program Version\s+\d+\.\d+\.\d+\s+-\s+RELEASE")


def detect(text: str) -> bool:
    """Whether `text` (the first 64 KiB of a file) is an ORCA output: its banner or its 'Program Version' line."""
    return bool(_BANNER.search(text))


def read_output(path: str | Path, name: str, energies: str = "casscf") -> tuple[Result, str]:
    """An existing ORCA output (`jobs import`) as a Result and its kind: "qdpt" (CASSCF/NEVPT2 + SOC levels),
    "opt" (an optimisation) or "other" (geometry and version only)."""
    text = Path(path).read_text(errors="replace")
    if any(h in text for h in QDPT_HEADINGS.values()):
        return parse_qdpt(path, name=name, energies=energies, require_kramers=False), "qdpt"
    if "GEOMETRY OPTIMIZATION" in text or "OPTIMIZATION RUN DONE" in text:
        return parse_opt(path, name=name), "opt"
    status, message = check_output(path, name)
    symbols, coords = final_geometry(text)
    return Result(name=name, backend=BACKEND, status=status,
                  message=message or f"{name}: an ORCA output without spin-orbit QDPT levels",
                  values={"symbols": symbols, "coordinates": coords, "program_version": program_version(text)}), "other"

