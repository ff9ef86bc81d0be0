"""Input files for ORCA and OpenMolcas from Jinja2 templates and typed contexts.

A context is a frozen dataclass holding everything one input needs (geometry, charge, multiplicity, atom roles,
basis choices, resources). Rendering uses StrictUndefined and refuses contexts with empty required values, so a
missing value is an error naming the input, never a blank line in the input file. A user's template directory
is searched before the bundled `templates/`, so a user can override one template and keep the others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import jinja2
import numpy as np

from . import basis as basis_sets
from .constants import BOHR_TO_ANGSTROM



def _bundled_templates() -> Path:
    """The repository's `templates/` (a clone or an editable install), else the copy a wheel install
    (`pip install .`) puts under <prefix>/share/gauss_hpc/templates by setup.cfg's data_files."""
    import site
    import sys

    clone = Path(__file__).resolve().parents[2] / "templates"
    for prefix in (sys.prefix, site.USER_BASE):
        installed = Path(prefix) / "share" / "gauss_hpc" / "templates"
        if not clone.is_dir() and installed.is_dir():
            return installed
    return clone


TEMPLATE_DIR = _bundled_templates()
BOHR_PER_ANGSTROM = 1.0 / BOHR_TO_ANGSTROM

OPTIONAL = {"optional": True}      # field metadata: may be empty; the template then leaves the block out


class TemplateError(ValueError):
    """A context or template cannot give a valid input; the message names the input and the value."""


@dataclass(frozen=True)
class Resources:
    cores: int = 1
    memory_mb: int = 2000          # whole job; ORCA's %maxcore is per core

    @property
    def memory_mb_per_core(self) -> int:
        return max(1, self.memory_mb // max(1, self.cores))


@dataclass(frozen=True)
class Geometry:
    symbols: tuple[str, ...]
    coords: tuple[tuple[float, float, float], ...]     # Angstrom
    charge: int
    multiplicity: int

    @classmethod
    def from_arrays(cls, symbols: Sequence[str], coords, charge: int, multiplicity: int) -> "Geometry":
        xyz = np.asarray(coords, dtype=float).reshape(-1, 3)
        return cls(tuple(str(s) for s in symbols), tuple(tuple(float(v) for v in row) for row in xyz),
                   int(charge), int(multiplicity))

    @classmethod
    def from_complex(cls, cx) -> "Geometry":
        return cls.from_arrays(cx.symbols, cx.coords, cx.charge, cx.multiplicity)

    @property
    def atoms(self) -> list[tuple[str, float, float, float]]:
        return [(s, *xyz) for s, xyz in zip(self.symbols, self.coords)]

    @property
    def n_electrons(self) -> int:
        return sum(basis_sets.atomic_number(s) for s in self.symbols) - self.charge

    def check(self, name: str) -> None:
        """Raise TemplateError if the atoms, charge and multiplicity cannot describe one molecule."""
        if len(self.symbols) == 0 or len(self.symbols) != len(self.coords):
            raise TemplateError(f"{name}: {len(self.symbols)} symbols but {len(self.coords)} coordinates")
        for s in self.symbols:
            try:
                basis_sets.atomic_number(s)
            except ValueError as exc:
                raise TemplateError(f"{name}: {exc}") from None
        if self.multiplicity < 1:
            raise TemplateError(f"{name}: multiplicity {self.multiplicity} must be >= 1")
        unpaired = self.multiplicity - 1
        if self.n_electrons < unpaired or (self.n_electrons - unpaired) % 2:
            raise TemplateError(f"{name}: charge {self.charge} gives {self.n_electrons} electrons, which cannot "
                                f"have multiplicity {self.multiplicity}; check the charge or the multiplicity")


@dataclass(frozen=True)
class Constraint:
    """An ORCA geometry constraint: kind "A" (angle i-j-k, j the vertex) or "D" (dihedral), 0-based atoms."""

    kind: str
    atoms: tuple[int, ...]
    value: float


def _check_basis(name: str, basis: str, symbols: Sequence[str]) -> None:
    missing = basis_sets.uncovered_elements(basis, symbols)
    if missing:
        raise TemplateError(f"{name}: basis set {basis} has no functions for {', '.join(missing)}; "
                            f"choose a basis that covers them (or a metal basis for the metal)")


def _ligand_symbols(geometry: Geometry, metal_index: int) -> list[str]:
    return [s for i, s in enumerate(geometry.symbols) if i != metal_index]


@dataclass(frozen=True)
class _Context:
    name: str

    def missing(self) -> list[str]:
        """Names of required fields that are None or empty."""
        out = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("optional"):
                continue
            if value is None or (isinstance(value, str) and not value.strip()):
                out.append(f.name)
        return out

    def validate(self) -> None:
        missing = self.missing()
        if missing:
            raise TemplateError(f"{type(self).__name__} for {self.name!r}: missing value(s) {', '.join(missing)}")
        if any(ord(c) < 32 for c in self.name):       # the name goes on a title line of the input
            raise TemplateError(f"name {self.name!r}: control characters (newlines) are not allowed")
        self.geometry.check(self.name)

    def variables(self) -> dict:
        """What the template sees: the fields plus derived values (properties)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for attr in dir(type(self)):
            if isinstance(getattr(type(self), attr), property):
                data[attr] = getattr(self, attr)
        return data


@dataclass(frozen=True)
class _MetalContext(_Context):
    geometry: Geometry
    metal_index: int

    @property
    def metal(self) -> str:
        return self.geometry.symbols[self.metal_index]

    @property
    def metal_position_bohr(self) -> tuple[float, float, float]:
        return tuple(v * BOHR_PER_ANGSTROM for v in self.geometry.coords[self.metal_index])

    def validate(self) -> None:
        super().validate()
        if not 0 <= self.metal_index < len(self.geometry.symbols):
            raise TemplateError(f"{self.name}: metal_index {self.metal_index} outside 0..{len(self.geometry.symbols) - 1}")
        _check_basis(self.name, self.basis, _ligand_symbols(self.geometry, self.metal_index))
        _check_basis(self.name, self.metal_basis, [self.metal])


@dataclass(frozen=True)
class LoPropContext(_Context):
    """OpenMolcas Kohn-Sham SCF + LoProp of a free ligand (donor atom first)."""

    geometry: Geometry
    functional: str = "PBE"
    basis: str = "ANO-R1"
    resources: Resources = field(default_factory=Resources)

    def validate(self) -> None:
        super().validate()
        _check_basis(self.name, self.basis, self.geometry.symbols)


@dataclass(frozen=True)
class MolcasCasscfContext(_MetalContext):
    """OpenMolcas SA-CASSCF(nactel, ras2) over the sextets, RASSI-SO, SINGLE_ANISO with one pseudospin 1/2 per
    Kramers doublet. `orbital_file` (optional) is a starting-orbital HDF5 file whose type indices say which
    orbitals are inactive/active (the 4f-selected guess); empty means OpenMolcas's own guess."""

    basis: str = "ANO-RCC-VDZP"
    metal_basis: str = "ANO-RCC-VDZP"
    nactel: int = 9
    ras2: int = 7
    ciroot: int = 21
    n_doublets: int = 8
    energy_threshold: float = 1e-8      # RASSCF energy convergence (hartree)
    resources: Resources = field(default_factory=Resources)
    orbital_file: str = field(default="", metadata=OPTIONAL)
    xricd: bool = field(default=False, metadata=OPTIONAL)     # read the auxiliary basis from $Project.RICDLib

    @property
    def n_inactive(self) -> int:
        return (self.geometry.n_electrons - self.nactel) // 2

    def validate(self) -> None:
        super().validate()
        if not 0 < self.energy_threshold < 1e-3:
            raise TemplateError(f"{self.name}: energy_threshold {self.energy_threshold} hartree is not in (0, 1e-3)")
        if self.geometry.multiplicity - 1 > self.nactel or self.ciroot < 1 or self.n_doublets < 1:
            raise TemplateError(f"{self.name}: multiplicity {self.geometry.multiplicity}, nactel {self.nactel}, "
                                f"ciroot {self.ciroot}, n_doublets {self.n_doublets} are inconsistent")
        if (self.geometry.n_electrons - self.nactel) % 2:
            raise TemplateError(f"{self.name}: {self.geometry.n_electrons} electrons minus {self.nactel} active "
                                f"leave an odd number for the inactive orbitals; check the charge")


@dataclass(frozen=True)
class OrcaOptContext(_MetalContext):
    """ORCA optimisation (published protocol: BP86-D3(BJ), DKH2, DKH-def2-TZVPP, metal replaced by Y; SARC2 has
    no Y, so the Y atom gets SARC-DKH-TZVP). `constraints` empty = fully relaxed."""

    method: str = "BP86"
    dispersion: str = "D3BJ"
    relativity: str = "DKH2"
    basis: str = "DKH-def2-TZVPP"
    metal_basis: str = "SARC-DKH-TZVP"
    aux_basis: str = "SARC/J"
    scf_tolerance: float = 1e-8
    constraints: tuple[Constraint, ...] = field(default=(), metadata=OPTIONAL)
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True)
class OrcaCasscfContext(_MetalContext):
    """ORCA SA-CASSCF(nel, 7) over the high-spin roots with SOC by QDPT; the defaults are Dy(III)'s (9 electrons, 21
    sextets, the 8 Kramers doublets of J = 15/2), orca.casscf_context sets those of the complex's ion."""

    relativity: str = "DKH2"
    basis: str = "DKH-def2-TZVPP"
    metal_basis: str = "SARC2-DKH-QZVP"
    aux_basis: str = "SARC/J"
    nel: int = 9
    norb: int = 7
    mult: int = 6
    nroots: int = 21
    n_doublets: int = 8                 # Kramers doublets of the ground J multiplet given to SINGLE_ANISO
    resources: Resources = field(default_factory=Resources)

    def validate(self) -> None:
        super().validate()
        if self.n_doublets < 1:
            raise TemplateError(f"{self.name}: n_doublets {self.n_doublets}: SINGLE_ANISO needs at least one")
        if self.mult != self.geometry.multiplicity:
            raise TemplateError(f"{self.name}: CASSCF multiplicity {self.mult} differs from the complex's "
                                f"{self.geometry.multiplicity}")


def environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    """Jinja2 environment searching `template_dir` first (a user's overrides), then the bundled templates."""
    search = [str(Path(template_dir))] if template_dir else []
    if template_dir and not Path(template_dir).is_dir():
        raise TemplateError(f"template directory {template_dir} does not exist")
    if not TEMPLATE_DIR.is_dir():
        raise TemplateError(f"the bundled input templates are missing ({TEMPLATE_DIR}); reinstall gauss_hpc")
    search.append(str(TEMPLATE_DIR))
    return jinja2.Environment(loader=jinja2.FileSystemLoader(search), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def render(template: str, context: _Context, template_dir: str | Path | None = None) -> str:
    """Text of `template` (e.g. "molcas/loprop.inp.j2") for `context`; TemplateError naming the input if a value
    is missing or inconsistent, or the template uses a variable the context does not have."""
    context.validate()
    env = environment(template_dir)
    try:
        return env.get_template(template).render(**context.variables())
    except jinja2.TemplateNotFound:
        raise TemplateError(f"{context.name}: template {template} not found in {env.loader.searchpath}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{context.name}: template {template} needs a value the context lacks: {exc}") from None


def equatorial_plane_constraints(cx, angle: float = 72.0) -> tuple[Constraint, ...]:
    """Angle and dihedral constraints holding the equatorial donors of `cx` in a regular plane around the metal
    (published protocol: five O at 72 deg). Donors are taken in ring order around the axial axis; neighbouring
    donor-metal-donor angles are set to `angle`, and each donor(i)-M-donor(i+1)-donor(i+2) dihedral to 180 deg,
    which keeps the ring flat."""
    eq = list(cx.equatorial_donors)
    if len(eq) < 3:
        raise TemplateError(f"{cx.name}: {len(eq)} equatorial donors; need at least 3 for a plane")
    coords = np.asarray(cx.coords, dtype=float)
    metal = coords[cx.metal_index]
    if len(cx.axial_donors) >= 2:
        axis = coords[cx.axial_donors[0]] - coords[cx.axial_donors[1]]
    else:   # no axial pair: the normal of the best plane through the donors
        axis = np.linalg.svd(coords[eq] - coords[eq].mean(axis=0))[2][-1]
    axis /= np.linalg.norm(axis)
    ref = coords[eq[0]] - metal
    ref -= ref.dot(axis) * axis
    ref /= np.linalg.norm(ref)
    side = np.cross(axis, ref)
    phase = [np.arctan2((coords[i] - metal).dot(side), (coords[i] - metal).dot(ref)) % (2 * np.pi) for i in eq]
    ring = [i for _, i in sorted(zip(phase, eq))]
    m, n = cx.metal_index, len(ring)
    angles = tuple(Constraint("A", (ring[k], m, ring[(k + 1) % n]), angle) for k in range(n))
    dihedrals = tuple(Constraint("D", (ring[k], m, ring[(k + 1) % n], ring[(k + 2) % n]), 180.0) for k in range(n))
    return angles + dihedrals
