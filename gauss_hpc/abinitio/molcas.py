"""OpenMolcas backend: LoProp proxy labels of ligands and CASSCF/RASSI-SO/SINGLE_ANISO Kramers doublets of complexes.

Each calculation is rendered from a template into its own work directory and run as
`pymolcas <input>` (argument list, no shell) with MOLCAS_MEM, OMP_NUM_THREADS, a private scratch WorkDir and
MOLCAS_PROJECT set. Outputs are parsed into the shared `Result`; failures become statuses, never exceptions.

Step registry for job arrays (`STEPS`): each step is `(input, workdir, **params) -> Result`,
"loprop" takes a ligand SMILES (donor atom first), "casscf" a `Complex`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from . import aniso as aniso_mod
from . import ricd_library as ricd
from .constants import HARTREE_TO_CM
from .ions import ground_term
from .process import Profile, run_profile
from .result import Result, Status
from .templates import (Geometry, LoPropContext, MolcasCasscfContext, Resources, TemplateError, render)

BACKEND = "molcas"
PROGRAM_NAME = "OpenMolcas"     # its name in messages
PROGRAM = "pymolcas"

# cheap CASSCF for demos and tests: minimal ANO-RCC on the ligands, the ground term's roots only (Dy: the 11 of 6H;
# the eight Kramers doublets of J = 15/2 come from 6H); the paper-quality default keeps every high-spin root. Energy threshold
# 1e-6 Eh = 0.2 cm-1, far below the KD gaps. Measured times and how far the cheap KDs lie from the paper-quality
# ones: README, "Ab initio backends", and tests/fixtures/molcas/README.md.
CHEAP_CASSCF = {"basis": "ANO-RCC-MB", "metal_basis": "ANO-RCC-VDZP", "ciroot": "term",
                "energy_threshold": 1e-6}

_RASSCF_ITERATION = re.compile(r"^\s+(\d+)\s+\d+\s+\d+\s+\d+\s+-?\d+\.\d+\s+-?\d\.\d+E[-+]\d+", flags=re.M)
_STOP = re.compile(r"--- Stop Module:\s+(\w+).*?/rc=(_RC_\w+_)")


def safe_name(name: str) -> str:
    """A file-system and MOLCAS_PROJECT safe version of a user's name (SMILES have / \\ # = ...)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")
    return cleaned[:60] or "job"


def _default_name(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def program_path() -> str | None:
    return shutil.which(PROGRAM)


def environment(workdir: Path, project: str, resources: Resources) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MOLCAS_MEM=str(resources.memory_mb), OMP_NUM_THREADS=str(resources.cores),
               MOLCAS_WORKDIR=str(Path(workdir) / "scratch"), MOLCAS_PROJECT=project, MOLCAS_NPROCS="1")
    return env


PROFILE = Profile(program="OpenMolcas", backend=BACKEND, executable=program_path, output_suffix=".log",
                  output_key="log", missing=f"{PROGRAM} not found on PATH; install OpenMolcas (Debian: apt-get "
                  "install openmolcas) or choose another backend",
                  timeout_hint="raise the timeout or use a smaller basis/fewer roots",
                  stderr_skip=("floating-point exceptions",))


def run(workdir: str | Path, input_name: str, *, name: str, project: str, resources: Resources = Resources(),
        timeout: float = 3600.0) -> Result:
    """Run `pymolcas input_name` in `workdir`; the log goes next to the input (x.inp -> x.log), stderr to x.err.
    Runs sharing `project` share the scratch WorkDir (integrals, orbitals). OK means OpenMolcas finished
    with every module's return code _RC_ALL_IS_WELL_; parse the log for the physics and the detailed status."""
    workdir = Path(workdir).resolve()     # OpenMolcas runs from workdir: a relative scratch path would nest
    (workdir / "scratch").mkdir(parents=True, exist_ok=True)
    return run_profile(PROFILE, workdir, input_name, name=name, timeout=timeout, check=check_log,
                       env=environment(workdir, project, resources))


def _error_box(text: str, before: int) -> str:
    """The last ### error box printed before position `before`, RunFile usage warnings left out."""
    boxes = re.findall(r"((?:^ ###.*\n)+)", text[:before], flags=re.M)
    for box in reversed(boxes):
        words = " ".join(line.strip(" #") for line in box.splitlines()).split()
        message = " ".join(words)
        if message and "RunFile label" not in message:
            return message
    return ""


def check_log(path: str | Path, name: str) -> tuple[str, str]:
    """(status, message) of an OpenMolcas log from its module return codes: OK, SCF/CASSCF not converged,
    crashed (any other non-zero code, with OpenMolcas's error box), missing, or truncated (no final timing)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return Status.MISSING_OUTPUT, f"{name}: no OpenMolcas output at {path}"
    text = path.read_text(errors="replace")
    for match in _STOP.finditer(text):
        module, rc = match.groups()
        if rc == "_RC_ALL_IS_WELL_":
            continue
        box = _error_box(text, match.start())
        if rc == "_RC_NOT_CONVERGED_":
            status = Status.CASSCF_NOT_CONVERGED if module == "rasscf" else (
                Status.SCF_NOT_CONVERGED if module == "scf" else Status.FAILED)
            detail = re.findall(r"No convergence after\s+\d+\s+\w+", text[:match.start()], flags=re.I)
            return status, f"{name}: OpenMolcas {module} did not converge ({detail[-1] if detail else rc})"
        return Status.CRASHED, f"{name}: OpenMolcas {module} stopped with {rc}" + (f": {box}" if box else "")
    if "Timing: Wall=" not in text:
        started = re.findall(r"Start Module:\s+(\w+)", text)
        iterations = _RASSCF_ITERATION.findall(text) if started and started[-1] == "rasscf" else []
        where = f" in {started[-1]}" if started else ""
        where += f" at macro-iteration {iterations[-1]}" if iterations else ""
        return Status.TRUNCATED_OUTPUT, (f"{name}: OpenMolcas output {path} ends{where} before the final timing "
                                         f"(killed, out of time or disk, or still running)")
    return Status.OK, ""


# ----------------------------------------------------------------------------------------------------- LoProp

_DOMAIN = re.compile(r"(ATOMIC|BOND) DOMAIN:\s*([A-Za-z]+\d+)\s*(?:,\s*([A-Za-z]+\d+))?")


def _atom_index(label: str) -> int:
    """OpenMolcas labels atoms of an xyz input as element + 1-based position (O1, C2, H3)."""
    return int(re.search(r"(\d+)$", label).group(1)) - 1


def _field(block: str, pattern: str) -> float:
    match = re.search(pattern + r"\s*:?\s*(-?\d+\.\d+(?:[EeDd][-+]?\d+)?)", block)
    if match is None:
        raise ValueError(f"no {pattern!r}")
    return float(match.group(1).replace("D", "E"))


def parse_loprop(log: str | Path, *, name: str, donor_index: int = 0, charge: int | None = None) -> Result:
    """Per-atom LoProp charges, dipole magnitudes and isotropic polarizabilities (atomic units) and the donor's.

    values: atomic_charges, atomic_dipoles, atomic_polarizabilities (atomic domain plus half of each bond domain,
    LoProp's atom partition), donor_charge, donor_dipole, donor_polarizability, donor_polarizability_domain
    (atomic domain only), total_charge (sum of the atomic charges; bond domains carry none).
    """
    status, message = check_log(log, name)
    if status != Status.OK:
        return Result.failure(name, BACKEND, status, message)
    text = Path(log).read_text(errors="replace")
    start = text.find("The Localized properties")
    if start < 0:
        return Result.failure(name, BACKEND, Status.PARSE_ERROR,
                              f"{name}: no 'Localized properties' section in {log}; was &LOPROP in the input?")
    section = text[start:]
    end = section.find("Molecular Multipole Moments")
    section = section[:end] if end > 0 else section
    heads = list(_DOMAIN.finditer(section))
    atoms: dict[int, dict] = {}
    bonds: list[tuple[int, int, float]] = []
    try:
        for k, head in enumerate(heads):
            block = section[head.end(): heads[k + 1].start() if k + 1 < len(heads) else len(section)]
            alpha = _field(block, "Isotropic Polarizability")
            if head.group(1) == "ATOMIC":
                atoms[_atom_index(head.group(2))] = {"charge": _field(block, "Total charge"),
                                                     "dipole": _field(block, "Dipole magnitude"), "alpha": alpha}
            else:
                bonds.append((_atom_index(head.group(2)), _atom_index(head.group(3)), alpha))
    except (ValueError, AttributeError) as exc:
        return Result.failure(name, BACKEND, Status.PARSE_ERROR, f"{name}: LoProp section of {log} unreadable: {exc}")
    n = len(atoms)
    if n == 0 or sorted(atoms) != list(range(n)) or not 0 <= donor_index < n:
        return Result.failure(name, BACKEND, Status.PARSE_ERROR,
                              f"{name}: LoProp gave atoms {sorted(atoms)}; donor index {donor_index} not among them")
    alpha = np.array([atoms[i]["alpha"] for i in range(n)])
    for i, j, a in bonds:
        alpha[i] += a / 2
        alpha[j] += a / 2
    charges = [atoms[i]["charge"] for i in range(n)]
    total = float(sum(charges))
    if charge is not None and abs(total - charge) > 0.05:
        return Result.failure(name, BACKEND, Status.PARSE_ERROR,
                              f"{name}: LoProp charges sum to {total:.3f}, the molecule's charge is {charge}")
    values = {"atomic_charges": charges, "atomic_dipoles": [atoms[i]["dipole"] for i in range(n)],
              "atomic_polarizabilities": alpha.tolist(), "donor_index": donor_index,
              "donor_charge": charges[donor_index], "donor_dipole": atoms[donor_index]["dipole"],
              "donor_polarizability": float(alpha[donor_index]),
              "donor_polarizability_domain": atoms[donor_index]["alpha"], "total_charge": total}
    return Result(name=name, backend=BACKEND, values=values, method="dft")        # LoProp on a PBE density


def render_loprop(context: LoPropContext, workdir: str | Path, template_dir=None) -> list[Path]:
    """Write <name>.inp for `context` into `workdir`; returns the files written."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{safe_name(context.name)}.inp"
    path.write_text(render("molcas/loprop.inp.j2", context, template_dir))
    return [path]


def _workdir(workdir, prefix: str) -> tuple[Path, bool]:
    """The work directory and whether it is ours to delete afterwards (a temporary one)."""
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        return Path(workdir), False
    return Path(tempfile.mkdtemp(prefix=f"gauss_{prefix}_")), True


def _finish(result: Result, workdir: Path, temporary: bool, keep_scratch: bool) -> Result:
    if not keep_scratch:
        shutil.rmtree(workdir / "scratch", ignore_errors=True)     # integrals and Cholesky vectors: 10-1000 MB
    if temporary:
        shutil.rmtree(workdir, ignore_errors=True)
        result.workdir = ""
        result.values.pop("log", None)
    return result


def label_ligand(smiles: str, *, name: str | None = None, workdir: str | Path | None = None,
                 functional: str = "PBE", basis: str = "ANO-R1", multiplicity: int | None = None, seed: int = 0,
                 cores: int = 1, memory_mb: int = 1000, timeout: float = 1800.0, template_dir=None,
                 keep_scratch: bool = False) -> Result:
    """LoProp proxy labels of one ligand (donor = first SMILES atom): PBE/ANO-R1 SCF on an RDKit/MMFF geometry.

    values: donor_charge (e), donor_dipole (a.u., magnitude), donor_polarizability (a.u., isotropic),
    atomic_charges, total_charge (= the ligand's formal charge) and the rest of `parse_loprop`. Never raises:
    a SMILES RDKit cannot embed, an element without basis or a missing OpenMolcas is a failure Result.
    Without `workdir` a temporary directory is used and removed.
    """
    from ..chem.geometry import ligand_geometry

    name = name or _default_name("ligand", smiles)
    start = time.monotonic()
    try:
        symbols, coords, charge = ligand_geometry(smiles, seed=seed)
    except ValueError as exc:
        return Result.failure(name, BACKEND, Status.INVALID_INPUT, f"{name}: {exc}")
    if multiplicity is None:     # closed shell unless the electron count is odd (a radical ligand)
        multiplicity = 1 + Geometry.from_arrays(symbols, coords, charge, 1).n_electrons % 2
    context = LoPropContext(name=name, geometry=Geometry.from_arrays(symbols, coords, charge, multiplicity),
                            functional=functional, basis=basis, resources=Resources(cores, memory_mb))
    return loprop_step(context, workdir, template_dir=template_dir, timeout=timeout, keep_scratch=keep_scratch,
                       started=start)


def loprop_step(context: LoPropContext, workdir=None, *, template_dir=None, timeout: float = 1800.0,
                keep_scratch: bool = False, started: float | None = None) -> Result:
    """Render, run and parse one LoProp calculation of a prepared context (donor = atom 0)."""
    started = time.monotonic() if started is None else started
    workdir, temporary = _workdir(workdir, "loprop")
    try:
        (inp,) = render_loprop(context, workdir, template_dir)
    except TemplateError as exc:
        return _finish(Result.failure(context.name, BACKEND, Status.INVALID_INPUT, str(exc), workdir=str(workdir)),
                       workdir, temporary, keep_scratch)
    project = safe_name(context.name)
    result = run(workdir, inp.name, name=context.name, project=project, resources=context.resources, timeout=timeout)
    if result.status != Status.OK:
        return _finish(result, workdir, temporary, keep_scratch)
    parsed = parse_loprop(result.values["log"], name=context.name, donor_index=0, charge=context.geometry.charge)
    parsed.values["log"] = result.values["log"]
    parsed.wall_seconds = time.monotonic() - started
    parsed.workdir = str(workdir)
    return _finish(parsed, workdir, temporary, keep_scratch)


# ----------------------------------------------------------------------------------- CASSCF / RASSI-SO / SINGLE_ANISO

kramers_doublets = aniso_mod.kramers_doublets       # one definition, shared with orca (aniso.py)


def f_orbital_weights(h5_path: str | Path, metal_index: int) -> np.ndarray:
    """Mulliken gross population of each orbital on the metal's first f contraction (the 4f of a lanthanide in
    the ANO-RCC basis, whose contractions are ordered by atomic occupation)."""
    with h5py.File(h5_path, "r") as fh:
        n = int(fh.attrs["NBAS"][0])
        mo = fh["MO_VECTORS"][:].reshape(n, n)             # row k = coefficients of orbital k
        overlap = fh["AO_OVERLAP_MATRIX"][:].reshape(n, n)
        ids = fh["BASIS_FUNCTION_IDS"][:]                  # (center 1-based, contraction, l, m)
    f4 = (ids[:, 0] == metal_index + 1) & (ids[:, 2] == 3) & (ids[:, 1] == 1)
    if not f4.any():
        raise ValueError(f"{h5_path}: no f functions on atom {metal_index + 1}; is it a lanthanide?")
    gross = mo * (mo @ overlap)
    return gross[:, f4].sum(axis=1)


def select_f_orbitals(h5_in: str | Path, h5_out: str | Path, *, metal_index: int, n_inactive: int,
                      n_active: int = 7) -> dict:
    """Starting orbitals for CASSCF with the `n_active` orbitals of largest metal-4f weight typed RAS2, the
    `n_inactive` lowest of the rest inactive, the others secondary (OpenMolcas type indices; RASSCF reads them
    with the TypeIndex keyword). Returns the selection: 4f weights of the active orbitals and how many of them
    the plain energy ordering would have left out of the active space."""
    weights = f_orbital_weights(h5_in, metal_index)
    shutil.copyfile(h5_in, h5_out)
    with h5py.File(h5_out, "r+") as fh:
        energies = fh["MO_ENERGIES"][:]
        order = np.argsort(energies, kind="stable")
        active = set(np.argsort(-weights, kind="stable")[:n_active].tolist())
        rest = [k for k in order if k not in active]
        types = np.full(len(energies), b"S", dtype="S1")
        types[rest[:n_inactive]] = b"I"
        types[sorted(active)] = b"2"
        fh["MO_TYPEINDICES"][...] = types
    by_energy = set(order[n_inactive:n_inactive + n_active].tolist())
    return {"active_f_weights": sorted((float(weights[k]) for k in active), reverse=True),
            "swapped_into_active": len(active - by_energy)}


def render_casscf(context: MolcasCasscfContext, workdir: str | Path, template_dir=None) -> list[Path]:
    """Inputs of one CASSCF/RASSI-SO/SINGLE_ANISO job. Without `context.orbital_file`: one input (integrals and
    correlation, OpenMolcas's own guess). With it: <name>.integrals.inp (GATEWAY/SEWARD) and <name>.inp
    (RASSCF from the selected orbitals, RASSI, SINGLE_ANISO), run in that order in one WorkDir."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stem = safe_name(context.name)
    files = []
    if context.orbital_file:
        files.append(workdir / f"{stem}.integrals.inp")
        files[-1].write_text(render("molcas/integrals.inp.j2", context, template_dir))
    files.append(workdir / f"{stem}.inp")
    files[-1].write_text(render("molcas/casscf_so.inp.j2", context, template_dir))
    return files


def casscf_context(cx, *, name: str | None = None, basis: str = "ANO-RCC-VDZP", metal_basis: str = "ANO-RCC-VDZP",
                   ciroot: int | str = "all", n_doublets: int | None = None, cores: int = 2, memory_mb: int = 2000,
                   orbital_file: str = "", energy_threshold: float = 1e-8, xricd: bool = False) -> MolcasCasscfContext:
    """The CASSCF of the complex's lanthanide (ions.ground_term): CAS(n_f, 7) over its highest spin; `ciroot`
    "all" (every high-spin root: Dy 21, Er 35, Tb 7), "term" (the ground term's 2L + 1: Dy 11, Er 13) or a
    number; n_doublets None gives SINGLE_ANISO one pseudospin-1/2 group per (pseudo-)doublet of the ground J."""
    try:
        term = ground_term(cx.metal)
    except ValueError as exc:
        raise TemplateError(f"{name or cx.name}: {exc}") from None
    roots = {"all": term.high_spin_roots, "term": term.term_roots}.get(ciroot, ciroot)
    if not isinstance(roots, int) or isinstance(roots, bool):
        raise TemplateError(f"{name or cx.name}: ciroot {ciroot!r}: expected 'all', 'term' or a number of roots")
    if n_doublets is None:
        n_doublets = term.aniso_groups
    return MolcasCasscfContext(name=name or cx.name, geometry=Geometry.from_complex(cx), metal_index=cx.metal_index,
                               basis=basis, metal_basis=metal_basis, nactel=term.n_f, ciroot=roots,
                               n_doublets=n_doublets, energy_threshold=energy_threshold,
                               resources=Resources(cores, memory_mb), orbital_file=orbital_file, xricd=xricd)


def kd_energies(cx, *, name: str | None = None, workdir: str | Path | None = None, guess: str = "fselect",
                basis: str = "ANO-RCC-VDZP", metal_basis: str = "ANO-RCC-VDZP", ciroot: int | str = "all",
                n_doublets: int | None = None, energy_threshold: float = 1e-8, cores: int = 2, memory_mb: int = 2000,
                timeout: float = 4 * 3600.0, template_dir=None, keep_scratch: bool = False,
                ricd_library: str = "auto") -> Result:
    """Kramers doublets of a Ln(III) complex (Dy: SA-CASSCF(9,7) over 21 sextets) with RASSI-SO/SINGLE_ANISO in
    OpenMolcas; other ions by casscf_context (their active electrons and roots), a non-Kramers ion's
    pseudo-doublets with `kramers` False.

    guess: "fselect" (default) types the 7 orbitals of largest Dy-4f weight in OpenMolcas's starting orbitals as
    active before RASSCF (robust when ligand orbitals lie among the 4f, e.g. phenolates); "molcas" uses the
    program's own guess unchanged. ricd_library: a directory shared by many runs (abinitio/ricd_library.py;
    "auto": ricd_library.default_path(), "" for none): when it holds the auxiliary basis of every element of
    this complex, &GATEWAY reads it (XRICD) instead of building it, otherwise it is built and added; the
    doublets are the same either way (bench/casscf_integrals.py). Paper quality: ANO-RCC-VDZP everywhere, 21 sextet roots, RASSCF energy
    converged to `energy_threshold` (hartree; OpenMolcas's default 1e-8). `CHEAP_CASSCF`
    holds the cheap demo settings. values: kd_energies (cm-1, ground 0), kd_gaps, g_tensors (gx, gy, gz per
    doublet), so_energies, casscf_energies, guess details. Never raises: failures are statuses.
    """
    if guess not in ("fselect", "molcas"):
        return Result.failure(name or cx.name, BACKEND, Status.INVALID_INPUT,
                              f"{name or cx.name}: guess {guess!r} unknown; use 'fselect' or 'molcas'")
    started = time.monotonic()
    workdir, temporary = _workdir(workdir, "casscf")
    name = name or cx.name
    stem = safe_name(name)
    orbital_file = str((workdir / f"{stem}.guess.h5").resolve()) if guess == "fselect" else ""
    ricd_library = str(ricd.default_path()) if ricd_library == "auto" else ricd_library
    needs = [(symbol, metal_basis if k == cx.metal_index else basis) for k, symbol in enumerate(cx.symbols)]
    xricd = bool(ricd_library) and ricd.compose(ricd_library, needs, workdir / "scratch" / stem / f"{stem}.RICDLib")
    try:
        context = casscf_context(cx, name=name, basis=basis, metal_basis=metal_basis, ciroot=ciroot,
                                 n_doublets=n_doublets, energy_threshold=energy_threshold, cores=cores,
                                 memory_mb=memory_mb, orbital_file=orbital_file, xricd=xricd)
        inputs = render_casscf(context, workdir, template_dir)
    except (TemplateError, ValueError) as exc:
        return _finish(Result.failure(name, BACKEND, Status.INVALID_INPUT, str(exc), workdir=str(workdir)),
                       workdir, temporary, keep_scratch)
    result = casscf_step_files(context, inputs, workdir, timeout=timeout, started=started)
    produced = workdir / f"{stem}.RICDLib"        # pymolcas copies it back next to the inputs
    if ricd_library and not xricd and result.ok and produced.is_file():
        ricd.keep(ricd_library, produced)
    if xricd and not result.ok and "RICDLIB" in result.message.upper():
        result.message += (f" (the auxiliary basis came from {ricd_library}: remove that directory, or pass "
                           "ricd_library=\"\" to build it in the run)")
    result.values["ricd_library_used"] = xricd
    return _finish(result, workdir, temporary, keep_scratch)


def casscf_step_files(context: MolcasCasscfContext, inputs: list[Path], workdir: Path, *, timeout: float,
                      started: float) -> Result:
    """Run rendered CASSCF inputs in order (integrals, f-orbital selection, correlation) and parse the last."""
    project, guess_info = safe_name(context.name), {}
    for inp in inputs:
        remaining = timeout - (time.monotonic() - started)
        result = run(workdir, inp.name, name=context.name, project=project, resources=context.resources,
                     timeout=max(remaining, 1.0))
        if result.status != Status.OK:
            result.wall_seconds = time.monotonic() - started
            if result.status == Status.TIMEOUT:      # report the job's whole budget, not the last run's share
                result.message = (f"{context.name}: OpenMolcas did not finish {inp.name} within the job's "
                                  f"{timeout:.0f} s; raise the timeout or use a smaller basis/fewer roots")
            return result
        if inp.name.endswith(".integrals.inp"):
            try:
                guess_info = select_f_orbitals(workdir / f"{project}.guessorb.h5", context.orbital_file,
                                               metal_index=context.metal_index, n_inactive=context.n_inactive,
                                               n_active=context.ras2)
            except (OSError, KeyError, ValueError) as exc:
                return Result.failure(context.name, BACKEND, Status.FAILED,
                                      f"{context.name}: could not select the 4f starting orbitals: {exc}",
                                      wall_seconds=time.monotonic() - started, workdir=str(workdir))
    parsed = parse_casscf(result.values["log"], name=context.name, n_doublets=context.n_doublets,
                          metal=context.geometry.symbols[context.metal_index])
    parsed.values.update(log=result.values["log"], guess="fselect" if context.orbital_file else "molcas",
                         **{f"guess_{k}": v for k, v in guess_info.items()})
    parsed.wall_seconds = time.monotonic() - started
    parsed.workdir = str(workdir)
    return parsed


def loprop_task(smiles: str, workdir, **params) -> Result:
    """Job-array step "loprop": LoProp labels of one ligand SMILES in `workdir` (params as label_ligand)."""
    return label_ligand(smiles, workdir=workdir, **params)


def casscf_task(item, workdir, **params) -> Result:
    """Job-array step "casscf": Kramers doublets of the complex the earlier steps made, in `workdir` (params as
    kd_energies; pass **CHEAP_CASSCF for the cheap demo settings)."""
    from .step_io import complex_input

    cx = complex_input(item, "casscf", BACKEND, params.get("name") or "casscf")
    return cx if isinstance(cx, Result) else kd_energies(cx, workdir=workdir, **params)


STEPS = {"loprop": loprop_task, "casscf": casscf_task}
# what each step forwards its params to, so that a spec's unknown params are errors (jobs.steps.accepted_params)
loprop_task.params_of, casscf_task.params_of = label_ligand, kd_energies


_SO_RASSI = re.compile(r"::\s+SO-RASSI State\s+\d+\s+Total energy:\s+(-?\d+\.\d+)")
_SF_STATE = re.compile(r"ENERGY OF THE SPIN-FREE STATE\s*\(\s*\d+\)\s*=\s*(-?\d+\.\d+)")
_CASSCF_ROOT = re.compile(r"::\s+RASSCF root number\s+\d+\s+Total energy:\s+(-?\d+\.\d+)")
_VERSION = re.compile(r"version:\s*(v?[\w.\-]+)")


_COORD_ROW = re.compile(r"^\s+\d+\s+([A-Z][A-Za-z]?)\d*\s+(?:-?\d+\.\d+\s+){3}(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s*$")


def geometry(text: str) -> tuple[list[str], list[list[float]]]:
    """Symbols and Angstrom coordinates of the last 'Cartesian Coordinates / Bohr, Angstrom' table &GATEWAY
    printed (labels such as DY1 become Dy); empty when the log has none (trimmed logs)."""
    start = text.rfind("Cartesian Coordinates / Bohr, Angstrom")
    if start < 0:
        return [], []
    symbols, coords = [], []
    for line in text[start:].splitlines()[4:]:
        match = _COORD_ROW.match(line)
        if match is None:
            break
        label = match.group(1)
        symbols.append(label[0] + label[1:].lower())
        coords.append([float(v) for v in match.groups()[1:]])
    return symbols, coords


def program_version(text: str) -> str:
    """OpenMolcas's version as its banner prints it ('v22.10'), '' when the banner is not in the log."""
    match = _VERSION.search(text[:20000])
    return match.group(1) if match else ""


def parse_casscf(log: str | Path, *, name: str, n_doublets: int | None = None,
                 require_kramers: bool = True, metal: str | None = None) -> Result:
    """Kramers doublets and g-tensors from an OpenMolcas RASSCF/RASSI-SO(/SINGLE_ANISO) log, any MLTP setting.

    Spin-orbit energies come from SINGLE_ANISO when it ran, else from RASSI's 'SO-RASSI State' energies (a log
    without &SINGLE_ANISO gives KD energies without g-tensors). g-tensors are the pseudospin-1/2 main values of
    every SINGLE_ANISO group that is one Kramers doublet (MLTP 8 / 2 2 2 2 2 2 2 2); a doublet without one
    (MLTP 1 / 16, SINGLE_ANISO's default of the ground doublet only, no SINGLE_ANISO) is NaN, and the message of
    the OK result says which. n_doublets: how many doublets to report; None takes the SINGLE_ANISO groups'
    states / 2, else the ground J multiplet of the lanthanide in the &GATEWAY geometry, else every pair.

    values: kd_energies (cm-1, ground 0), kd_gaps, g_tensors (per doublet [gX, gY, gZ], Z the main magnetic
    axis), g_axes (per doublet the unit vectors Xm, Ym, Zm in the &GATEWAY frame), so_energies (cm-1, ground 0), so_source ("single_aniso" | "rassi"), spin_free_energies (cm-1),
    casscf_energies (Eh, per root), symbols and coordinates (Angstrom, from &GATEWAY; empty if not in the log),
    program_version. `metal` (the complex's, when the caller knows it: a log whose integrals ran apart has no
    &GATEWAY table) decides Kramers doublets or, for a non-Kramers ion, pseudo-doublets (aniso.spectrum_values);
    otherwise the lanthanide in the log's &GATEWAY geometry does. require_kramers False turns unpaired spin-orbit
    states of a Kramers ion into an OK result with so_energies only, instead of PARSE_ERROR.
    """
    status, message = check_log(log, name)
    if status != Status.OK:
        return Result.failure(name, BACKEND, status, message)
    text = Path(log).read_text(errors="replace")
    aniso = aniso_mod.parse_single_aniso(text)
    notes = []
    if aniso is not None and aniso.so_energies:
        so, source = aniso.so_energies, "single_aniso"
        wanted = n_doublets if n_doublets is not None else (sum(aniso.groups) // 2 or None)
        g, axes = aniso.g_by_doublet(), aniso.axes_by_doublet()
    else:
        rassi = np.array([float(x) for x in _SO_RASSI.findall(text)])
        if not len(rassi):
            return Result.failure(name, BACKEND, Status.PARSE_ERROR,
                                  f"{name}: no spin-orbit energies in {log} (neither a SINGLE_ANISO section nor "
                                  f"RASSI 'SO-RASSI State' energies; was Spin(Orbit) set in &RASSI?)")
        wanted = n_doublets if n_doublets is not None else aniso_mod.doublet_count(geometry(text)[0])
        so, source, g, axes = ((rassi - rassi.min()) * HARTREE_TO_CM).tolist(), "rassi", {}, {}
        notes.append("no SINGLE_ANISO section: KD energies from the RASSI spin-orbit states, no g-tensors")
    try:
        values, note = aniso_mod.spectrum_values(so, g, wanted, require_kramers=require_kramers,
                                                 axes_by_doublet=axes,
                                                 ion=aniso_mod.ground_term_of([metal] if metal else geometry(text)[0]))
    except aniso_mod.NotKramers as exc:
        return Result.failure(name, BACKEND, Status.PARSE_ERROR, f"{name}: {exc}")
    if note and source == "single_aniso":
        notes.append(f"SINGLE_ANISO (groups {aniso.groups or 'not printed'}): {note}")
    elif note and "Kramers" in note:
        notes.append(note)
    sf = _SF_STATE.findall(text[text.find("Start Module: single_aniso"):]) if source == "single_aniso" else []
    symbols, coordinates = geometry(text)
    values.update(so_source=source, spin_free_energies=[float(x) for x in sf], symbols=symbols,
                  coordinates=coordinates,
                  casscf_energies=[float(x) for x in _CASSCF_ROOT.findall(text)],
                  program_version=program_version(text))
    return Result(name=name, backend=BACKEND, message="; ".join(f"{name}: {n}" for n in notes), values=values,
                  method="casscf")


_BANNER = re.compile(r"pymolcas driver|OPENMOLCAS|^--- Start Module: \w+ at ", flags=re.M)


def detect(text: str) -> bool:
    """Whether `text` (the first 64 KiB of a file) is an OpenMolcas log: pymolcas's banner or its module lines
    (also in trimmed logs)."""
    return bool(_BANNER.search(text))


def read_output(path: str | Path, name: str, energies: str = "casscf") -> tuple[Result, str]:
    """An existing OpenMolcas log (`jobs import`) as a Result and its kind: "casscf" (RASSI-SO levels, with or
    without SINGLE_ANISO) or "other" (no spin-orbit energies: geometry and version only). `energies`: only the
    CASSCF levels are read from OpenMolcas logs."""
    text = Path(path).read_text(errors="replace")
    result = parse_casscf(path, name=name, require_kramers=False)
    if result.status == Status.PARSE_ERROR and "no spin-orbit energies" in result.message:
        symbols, coords = geometry(text)
        return Result(name=name, backend=BACKEND, message=f"{name}: an OpenMolcas log without spin-orbit energies "
                      "(no RASSI-SO or SINGLE_ANISO)", values={"symbols": symbols, "coordinates": coords,
                                                               "program_version": program_version(text)}), "other"
    if not result.ok:
        result.values.setdefault("program_version", program_version(text))
    return result, "casscf"

