"""Tight-binding oracle: proxy labels of a free ligand's donor atom and cheap relaxations, in-process.

label_ligand(smiles): RDKit 3D geometry (gauss_hpc.chem.geometry, donor = atom 0), optionally relaxed with
GFN2-xTB, then one GFN2-xTB single point (tblite) and a D4 model evaluation (dftd4):
  donor_charge          GFN2-xTB partial charge of the donor atom (e)
  donor_dipole          norm of the donor's GFN2-xTB atomic dipole moment (e*bohr), from tblite's xtbml features
  donor_polarizability  static D4 atomic polarizability alpha(0) of the donor, charge-dependent via EEQ (bohr^3)
  atomic_charges        GFN2-xTB charges of all atoms (RDKit order, explicit H last)
These are milliseconds-cheap stand-ins for the LoProp charge, dipole and polarizability of the published method.

relax_complex(cx): GFN2-xTB relaxation of a complex (L-BFGS on tblite gradients). An open-shell lanthanide is
replaced by Y(III) for the relaxation, as in the published protocol (swap_to="Y"); the returned geometry carries
the original metal back.

Both return a Result and never raise for bad input or failed calculations. They run tblite and dftd4 on
`threads` OpenMP threads (default 1, set process-wide): parallelism comes from processes (gauss_hpc.label
--workers, job arrays), one small molecule per thread.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..chem import donor_distances
from ..chem.structure import AssemblyError, Complex, ligand_blocks, swap_metal
from ..chem.geometry import ligand_geometry
from .basis import atomic_number
from .constants import BOHR_TO_ANGSTROM, KELVIN_TO_HARTREE, LANTHANIDES
from .result import Result, Status

BACKEND = "xtb"
METHOD = "GFN2-xTB"
_OPEN_SHELL_4F = LANTHANIDES[1:-1]                 # Ce..Yb: La(III) is 4f0, Lu(III) 4f14


def atomic_numbers(symbols) -> np.ndarray:
    """Z of each symbol (basis.atomic_number: ValueError naming a symbol that is not an element)."""
    return np.array([atomic_number(s) for s in symbols], dtype=np.int32)


_threads_set: int | None = None


def set_threads(threads: int) -> None:
    """OpenMP threads of tblite and dftd4 in this process. Small molecules run fastest on one thread, and
    spinning OpenMP threads on a shared, loaded node slow everything down by an order of magnitude, so the
    oracle functions set 1 unless told otherwise (process-wide; only when the value changes)."""
    global _threads_set
    if threads != _threads_set:
        from threadpoolctl import threadpool_limits
        import tblite.interface  # noqa: F401 - load the OpenMP runtimes before limiting them
        import dftd4.interface  # noqa: F401
        threadpool_limits(limits=int(threads), user_api="openmp")
        _threads_set = threads


METHODS = ("GFN2-xTB", "GFN1-xTB")      # tblite's parametrisations a relaxation may use


def _calculator(numbers, positions_bohr, charge: int, uhf: int, *, accuracy: float, max_iterations: int,
                features: bool = False, method: str = METHOD, electronic_temperature: float = 300.0):
    from tblite.interface import Calculator
    if method not in METHODS:
        raise ValueError(f"xTB method {method!r}: expected one of {METHODS}")
    calc = Calculator(method, numbers, positions_bohr, charge=float(charge), uhf=int(uhf))
    calc.set("verbosity", 0)
    calc.set("accuracy", float(accuracy))
    calc.set("max-iter", int(max_iterations))
    calc.set("temperature", float(electronic_temperature) * KELVIN_TO_HARTREE)   # Fermi smearing, K -> Eh
    if features:
        calc.add("xtbml")      # atomic dipole moments (dipm_A) of the GFN2 multipole electrostatics
    return calc


def _failure_status(exc: Exception) -> str:
    text = str(exc).lower()
    if "converge" in text:
        return Status.SCF_NOT_CONVERGED
    if type(exc).__name__ == "TBLiteValueError" or isinstance(exc, ValueError):
        return Status.INVALID_INPUT
    return Status.FAILED


def _singlepoint_features(numbers, positions_bohr, charge: int, uhf: int, *, accuracy: float,
                          max_iterations: int):
    """GFN2-xTB single point with atomic multipole features; a second, damped attempt with four times the
    SCF cycles when the first does not converge (some small anions oscillate with the default mixer)."""
    calc = _calculator(numbers, positions_bohr, charge, uhf, accuracy=accuracy, max_iterations=max_iterations,
                       features=True)
    try:
        return calc.singlepoint()
    except Exception as exc:      # tblite's TBLiteRuntimeError; only SCF trouble deserves a retry
        if _failure_status(exc) != Status.SCF_NOT_CONVERGED:
            raise
    calc = _calculator(numbers, positions_bohr, charge, uhf, accuracy=accuracy,
                       max_iterations=4 * max_iterations, features=True)
    calc.set("mixer-damping", 0.2)
    return calc.singlepoint()


LBFGS_HISTORY = 40         # L-BFGS memory (scipy's default is 10): stiff restraints need the longer history
RESTRAINT_K = 2.0          # Eh/bohr^2 of a distance restraint: holds a metal-donor bond within about 0.02 A
ANGLE_RESTRAINT_K = 0.5    # Eh/rad^2 of an angle restraint: holds a metal-donor-neighbour angle within a few degrees


def _restraint(flat: np.ndarray, restraints, k: float, k_angle: float = ANGLE_RESTRAINT_K) -> tuple[float, np.ndarray]:
    """Energy and gradient of harmonic restraints: k (r - r0)^2 on (i, j, r0 in bohr) atom pairs, k_angle
    (theta - theta0)^2 on (i, j, k, theta0 in radians) angles at j."""
    xyz = flat.reshape(-1, 3)
    energy, grad = 0.0, np.zeros_like(xyz)
    for term in restraints:
        if len(term) == 3:
            i, j, r0 = term
            d = xyz[i] - xyz[j]
            r = float(np.linalg.norm(d))
            energy += k * (r - r0) ** 2
            grad[i] += 2 * k * (r - r0) * d / r
            grad[j] -= 2 * k * (r - r0) * d / r
            continue
        i, j, m, theta0 = term
        u, v = xyz[i] - xyz[j], xyz[m] - xyz[j]
        lu, lv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
        cos = float(np.clip(u @ v / (lu * lv), -1 + 1e-12, 1 - 1e-12))
        theta = np.arccos(cos)
        energy += k_angle * (theta - theta0) ** 2
        # d(theta)/dx = -1/sin(theta) d(cos)/dx
        factor = -2 * k_angle * (theta - theta0) / np.sqrt(1 - cos ** 2)
        d_u = (v / (lu * lv) - cos * u / lu ** 2) * factor
        d_v = (u / (lu * lv) - cos * v / lv ** 2) * factor
        grad[i] += d_u
        grad[m] += d_v
        grad[j] -= d_u + d_v
    return energy, grad.ravel()


def relax(numbers, positions_bohr, charge: int, uhf: int = 0, *, max_steps: int = 300, gradient_tol: float = 1e-3,
          accuracy: float = 1.0, max_iterations: int = 250, restraints=(), restraint_k: float = RESTRAINT_K,
          method: str = METHOD, electronic_temperature: float = 300.0) -> tuple[np.ndarray, float, bool, int]:
    """GFN2-xTB minimum near `positions_bohr`: (positions in bohr, energy in Eh, converged, steps). L-BFGS on
    tblite energies and gradients; converged when the largest gradient component is below `gradient_tol`.
    `restraints`: (i, j, r0 in bohr) atom pairs held near r0, or (i, j, k, theta0 in radians) angles at j held
    near theta0, by harmonic terms (the fast geometry tier's metal-donor distances and metal-donor-neighbour
    angles); the energy returned is the xTB energy without them.

    Each step's SCF starts from the previous step's wavefunction, as geometry optimisers do: from the atomic
    guess every time, the SCF of some anionic complexes fails to converge a few steps in, at geometries a tenth of
    a bohr from a converged one ([Dy(H2O)5L2]+ with L = [O-]c1cc[nH]c1CN, generated in a design round). Where the
    restart fails too, the step is tried once more from the atomic guess. `electronic_temperature` (K) of the
    Fermi smearing: the fast tier's restrained relaxations use 1000 K (FAST_TIER), where the SCF of pseudohalide
    complexes held at stretched bonds fails at 300 K (bench/results/xtb_relax_protocols_*.json)."""
    from scipy.optimize import minimize

    calc = _calculator(numbers, positions_bohr, charge, uhf, accuracy=accuracy, max_iterations=max_iterations,
                       method=method, electronic_temperature=electronic_temperature)
    shape = np.shape(positions_bohr)
    previous = []           # the last converged wavefunction (tblite Result), the restart of the next step

    def energy_and_gradient(flat):
        calc.update(positions=flat.reshape(shape))
        try:
            res = calc.singlepoint(previous[-1], copy=True) if previous else calc.singlepoint()
        except Exception as exc:      # tblite's TBLiteRuntimeError
            if not previous or _failure_status(exc) != Status.SCF_NOT_CONVERGED:
                raise
            res = calc.singlepoint()
        previous[:] = [res]
        return float(res.get("energy")), np.asarray(res.get("gradient")).ravel()

    def restrained(flat):
        energy, grad = energy_and_gradient(flat)
        extra, extra_grad = _restraint(flat, restraints, restraint_k)
        return energy + extra, grad + extra_grad

    opt = minimize(restrained, np.asarray(positions_bohr, float).ravel(), jac=True, method="L-BFGS-B",
                   options={"maxiter": int(max_steps), "gtol": float(gradient_tol), "ftol": 1e-12,
                            "maxcor": LBFGS_HISTORY})
    energy, grad = restrained(opt.x)
    converged = bool(np.abs(grad).max() < gradient_tol * 5)   # L-BFGS stops on the projected gradient
    return opt.x.reshape(shape), energy - _restraint(opt.x, restraints, restraint_k)[0], converged, int(opt.nit)


def label_ligand(smiles: str, *, name: str | None = None, workdir=None, relax_geometry: bool = False,
                 seed: int = 0, accuracy: float = 1.0, max_iterations: int = 250, max_steps: int = 200,
                 threads: int = 1, **_options) -> Result:
    """Donor-atom proxy labels of one free ligand (see module docstring). `workdir` is accepted for the shared
    oracle interface and unused: everything runs in memory."""
    start = time.perf_counter()
    set_threads(threads)
    name = name or smiles
    try:
        symbols, coords, charge = ligand_geometry(smiles, seed=seed)
    except ValueError as exc:
        return Result.failure(name, BACKEND, Status.INVALID_INPUT, str(exc),
                              wall_seconds=time.perf_counter() - start)
    numbers = atomic_numbers(symbols)
    n_electrons = int(numbers.sum()) - charge
    uhf = n_electrons % 2          # a radical keeps one unpaired electron
    try:
        positions = coords / BOHR_TO_ANGSTROM
        if relax_geometry and len(symbols) > 1:
            positions, _, converged, steps = relax(numbers, positions, charge, uhf, max_steps=max_steps,
                                                   accuracy=accuracy, max_iterations=max_iterations)
            if not converged:
                return Result.failure(name, BACKEND, Status.GEOMETRY_NOT_CONVERGED,
                                      f"ligand {smiles!r}: GFN2-xTB relaxation not converged in {steps} steps",
                                      wall_seconds=time.perf_counter() - start)
        res = _singlepoint_features(numbers, positions, charge, uhf, accuracy=accuracy,
                                    max_iterations=max_iterations)
        charges = np.asarray(res.get("charges"), float)
        atomic_dipoles = np.asarray(res.get("post-processing-dict")["dipm_A"], float)
        from dftd4.interface import DispersionModel
        alpha = np.asarray(DispersionModel(numbers, positions, charge=float(charge))
                           .get_properties()["polarizabilities"], float)
        energy = float(res.get("energy"))
    except Exception as exc:     # tblite/dftd4 raise their own types; one bad ligand must not stop a batch
        return Result.failure(name, BACKEND, _failure_status(exc), f"ligand {smiles!r}: {exc}",
                              wall_seconds=time.perf_counter() - start)
    values = {"donor_charge": float(charges[0]), "donor_dipole": float(atomic_dipoles[0]),
              "donor_polarizability": float(alpha[0]), "atomic_charges": charges, "energy": energy,
              "donor_element": symbols[0], "symbols": symbols, "coordinates": positions * BOHR_TO_ANGSTROM}
    bad = [k for k in ("donor_charge", "donor_dipole", "donor_polarizability") if not np.isfinite(values[k])]
    if bad:
        return Result.failure(name, BACKEND, Status.FAILED, f"ligand {smiles!r}: non-finite {', '.join(bad)}",
                              wall_seconds=time.perf_counter() - start)
    return Result(name=name, backend=BACKEND, values=values, wall_seconds=time.perf_counter() - start,
                  method="gfn2_xtb")


def complex_charges(cx: Complex, *, swap_to: str | None = "Y", accuracy: float = 1.0,
                    max_iterations: int = 250, threads: int = 1) -> np.ndarray:
    """GFN2-xTB charges of every atom of a complex at its geometry, an open-shell 4f metal swapped to `swap_to`
    as in relax_complex (charge transfer to the metal included). Raises ValueError naming the complex."""
    set_threads(threads)
    work = swap_metal(cx, swap_to) if (swap_to and cx.metal in _OPEN_SHELL_4F) else cx
    try:
        res = _calculator(atomic_numbers(work.symbols), work.coords / BOHR_TO_ANGSTROM, work.charge,
                          work.multiplicity - 1, accuracy=accuracy, max_iterations=max_iterations).singlepoint()
    except Exception as exc:      # tblite's own error types
        raise ValueError(f"complex {cx.name}: GFN2-xTB single point failed: {exc}") from None
    return np.asarray(res.get("charges"), float)


# The fast geometry tier (screen --geometry fast, jobs/casscf_second_set.toml): GFN2-xTB of the Y analogue with
# the axial and equatorial metal-donor bonds and the axial metal-donor-neighbour angles held at the DFT tier's
# values for their donor class, and Fermi smearing at 1000 K so that the SCF holds at those stretched bonds
# (bench/geometry_tiers.py, bench/xtb_relax_protocols.py measure both).
FAST_TIER = {"swap_to": "Y", "axial_distances": "calibrated", "equatorial_distances": "calibrated",
             "axial_angles": "calibrated", "electronic_temperature": 1000.0}


def relax_complex(cx: Complex, *, name: str | None = None, workdir=None, swap_to: str | None = "Y",
                  max_steps: int = 300, gradient_tol: float = 1e-3, accuracy: float = 1.0,
                  max_iterations: int = 250, threads: int = 1, axial_distances=None, equatorial_distances=None,
                  axial_angles=None, trans_angle=None, method: str = METHOD, electronic_temperature: float = 300.0,
                  **_options) -> Result:
    """GFN2-xTB relaxation of a complex. An open-shell 4f metal is swapped to `swap_to` (Y: closed shell,
    similar ionic radius) for the calculation. `axial_distances` (Angstrom, one per axial donor, None = free)
    restrains the metal-axial donor bonds near those lengths; "calibrated" takes them from the shipped calibration
    by donor class (the fast geometry tier: GFN2-xTB puts anionic donors about 0.2 A too close to the metal;
    chem/donor_distances.py holds the lengths calibrated on the DFT tier). `equatorial_distances`: the same for
    the equatorial donors, one per equatorial donor or "calibrated" (by the class of each equatorial ligand;
    water where the complex does not name them). `axial_angles`: degrees, one per axial donor (None = free), at
    which the metal-donor-neighbour angle is restrained (`donor_neighbour`: GFN2-xTB bends pseudohalides and binds
    O-bound cyanate nearly side-on), or "calibrated" (by donor class, as the distances); `trans_angle`: degrees
    at which the donor-metal-donor angle of the two axial donors is restrained (GFN2-xTB makes it nearly linear).
    `method`: GFN2-xTB or GFN1-xTB; `electronic_temperature` in K (`relax`). FAST_TIER holds the fast geometry
    tier's settings. Values: symbols and
    coordinates (Angstrom) of the relaxed structure as computed, `complex` (Complex.to_dict with the original metal
    back), energy (Eh), atomic_charges, steps, relaxed_metal."""
    start = time.perf_counter()
    name = name or cx.name
    set_threads(threads)
    try:
        work = swap_metal(cx, swap_to) if (swap_to and cx.metal in _OPEN_SHELL_4F) else cx
        numbers = atomic_numbers(work.symbols)
        targets = bond_targets(work, axial_distances, equatorial_distances)
        restraints = [(work.metal_index, donor, r / BOHR_TO_ANGSTROM) for donor, r in targets.items()]
        restraints += angle_terms(work, axial_angles, trans_angle)

        def relax_from(coords):
            return relax(numbers, coords / BOHR_TO_ANGSTROM, work.charge, work.multiplicity - 1,
                         max_steps=max_steps, gradient_tol=gradient_tol, accuracy=accuracy,
                         max_iterations=max_iterations, restraints=restraints, method=method,
                         electronic_temperature=electronic_temperature)

        try:
            positions, energy, converged, steps = relax_from(place_donors(work, targets))
        except Exception as exc:
            # The SCF can fail on the moved ligands (O-bound cyanate at its DFT length next to rigid waters):
            # start again where the assembly put them; the restraints pull them in more slowly.
            if not targets or _failure_status(exc) != Status.SCF_NOT_CONVERGED:
                raise
            positions, energy, converged, steps = relax_from(work.coords)
        calc = _calculator(numbers, positions, work.charge, work.multiplicity - 1, accuracy=accuracy,
                           max_iterations=max_iterations, method=method, electronic_temperature=electronic_temperature)
        charges = np.asarray(calc.singlepoint().get("charges"), float)
    except Exception as exc:      # one bad complex (or swap_metal refusing a metal) must not stop a batch
        return Result.failure(name, BACKEND, _failure_status(exc), f"complex {name}: {exc}",
                              wall_seconds=time.perf_counter() - start)
    coords = positions * BOHR_TO_ANGSTROM
    relaxed = dataclasses.replace(cx, coords=coords)          # the same complex, moved atoms
    values = {"symbols": list(work.symbols), "coordinates": coords, "complex": relaxed.to_dict(),
              "energy": energy, "atomic_charges": charges, "steps": steps, "relaxed_metal": work.metal}
    if not converged:
        return Result.failure(name, BACKEND, Status.GEOMETRY_NOT_CONVERGED,
                              f"complex {name}: {method} relaxation not converged in {steps} steps "
                              "(values hold the last geometry)", values=values,
                              wall_seconds=time.perf_counter() - start)
    return Result(name=name, backend=BACKEND, values=values, wall_seconds=time.perf_counter() - start,
                  method=method.lower().replace("-", "_"))


def bond_targets(cx: Complex, axial_distances, equatorial_distances) -> dict[int, float]:
    """{donor atom: metal-donor length in Angstrom} of the restrained bonds, from lengths or "calibrated"."""
    axial = _per_donor(axial_distances, "axial_distances", cx.ligand_smiles,
                       lambda smi: donor_distances.shipped().distance(smi))
    equatorial = _per_donor(equatorial_distances, "equatorial_distances",
                            cx.equatorial_smiles or ["O"] * len(cx.equatorial_donors),
                            lambda smi: donor_distances.shipped().equatorial_distance(smi))
    return {donor: float(r) for donors, lengths in ((cx.axial_donors, axial), (cx.equatorial_donors, equatorial))
            if lengths is not None for donor, r in zip(donors, lengths, strict=True) if r is not None}


def angle_terms(cx: Complex, axial_angles, trans_angle) -> list[tuple]:
    """(i, j, k, radians) angle restraints: metal-donor-neighbour at each axial donor given an angle in degrees
    or "calibrated", and the axial donor-metal-donor angle."""
    angles = _per_donor(axial_angles, "axial_angles", cx.ligand_smiles,
                        lambda smi: donor_distances.shipped().angle(smi))
    terms = [(cx.metal_index, donor, donor_neighbour(cx, donor), np.radians(float(angle)))
             for donor, angle in zip(cx.axial_donors, angles or [None] * len(cx.axial_donors), strict=True)
             if angle is not None]
    if trans_angle is not None:
        first, second = cx.axial_donors
        terms.append((first, cx.metal_index, second, np.radians(float(trans_angle))))
    return terms


def donor_neighbour(cx: Complex, donor: int) -> int:
    """The atom of the donor's ligand that an angle at the donor is measured to: the nearest heavy atom of that
    ligand, else (water, hydroxide) its nearest atom."""
    block = next(b for b in ligand_blocks(cx) if b.start == donor)
    others = [a for a in range(block.start, block.stop) if a != donor]
    if not others:
        raise ValueError(f"complex {cx.name}: the ligand of donor {donor} has no other atom to measure an angle to")
    heavy = [a for a in others if cx.symbols[a] != "H"] or others
    return min(heavy, key=lambda a: float(np.linalg.norm(cx.coords[a] - cx.coords[donor])))


def place_donors(cx: Complex, targets: dict[int, float]) -> np.ndarray:
    """Coordinates with each ligand whose donor has a target metal-donor length (Angstrom) moved rigidly along
    the metal-donor line to that length: the restrained relaxation then starts next to its minimum instead of
    spending hundreds of steps pulling seven bonds through stiff restraints."""
    coords = cx.coords.copy()
    metal = coords[cx.metal_index]
    for block in ligand_blocks(cx):
        donor = block.start
        if donor in targets:
            bond = coords[donor] - metal
            length = float(np.linalg.norm(bond))
            coords[block] += (targets[donor] - length) * bond / length
    return coords


def _per_donor(values, what: str, ligands: list[str], calibrated) -> list | None:
    """Restraint targets, one per donor (None: free), from numbers or "calibrated" (by each donor's ligand)."""
    if not isinstance(values, str):
        return values
    if values != "calibrated":
        raise ValueError(f"{what} {values!r}: give the values (Angstrom, degrees) or 'calibrated'")
    return [calibrated(smi) for smi in ligands]


def relax_for_assembly(cx: Complex, max_steps: int) -> Complex:
    """The relaxer of assembly's "xtb_relaxed" path (chem.complexes.assemble(relax="xtb", relaxer=this)): GFN2-xTB
    of the Y analogue, the metal put back; AssemblyError xtb_not_converged / xtb_failed otherwise."""
    result = relax_complex(cx, max_steps=max_steps)
    if not result.ok:
        reason = "xtb_not_converged" if result.status == Status.GEOMETRY_NOT_CONVERGED else "xtb_failed"
        raise AssemblyError(result.message, reason)
    return Complex.from_dict(result.values["complex"])


def relax_step(item, workdir, *, name: str, **params) -> Result:
    """Job step `xtb_relax`: GFN2-xTB relaxation of the (Y-swapped) complex; the relaxed geometry goes on with its
    descriptors. A relaxation that made another complex (a bond changed, a donor left, a ligand chelates:
    chem.complexes.check_relaxation) fails with that reason, its geometry kept in values for inspection."""
    from ..chem.complexes import check_relaxation     # chem builds on abinitio: imported when a step runs
    from .step_io import complex_input, with_geometry

    cx = complex_input(item, "xtb_relax", BACKEND, name)
    if isinstance(cx, Result):
        return cx
    result = with_geometry(relax_complex(cx, name=name, **params))
    if result.ok:
        try:
            check_relaxation(cx, Complex.from_dict(result.values["complex"]), method=params.get("method", METHOD))
        except AssemblyError as exc:
            return Result.failure(name, BACKEND, Status.FAILED, f"{exc} ({exc.reason}; values hold that geometry)",
                                  values=result.values, wall_seconds=result.wall_seconds)
    return result


def label_step(smiles: str, workdir, *, name: str, **params) -> Result:
    """Job step `xtb_label`: GFN2-xTB/D4 donor-atom proxy labels of the free ligand."""
    return label_ligand(smiles, name=name, **params)


relax_step.params_of = relax_complex          # the params a job spec may give (jobs.steps.accepted_params)
label_step.params_of = label_ligand
STEPS = {"relax": relax_step, "label": label_step}
