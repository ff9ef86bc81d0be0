"""The value schema: every quantity a backend puts into `Result.values` that another stage reads, declared once
with its shape, unit and the backends that provide it. `jobs.gather` and `jobs.importer` (results.h5 columns),
`store` (the N-D result arrays) and `label` (ligand labels and the backends that make them) read it instead of
tables of their own; a new backend adds its name to `providers` of what it computes.

Shapes: () a scalar; (N_DOUBLETS,) per Kramers doublet of the ground J multiplet, kept to the eight of Dy(III)
J = 15/2 in results.h5 (an ion with fewer doublets is NaN-padded, a backend that reports more is cut);
("atoms",) one per atom, variable, never a results.h5 column.
"""

from __future__ import annotations

from dataclasses import dataclass

N_DOUBLETS = 8          # Kramers doublets of Dy(III) 6H15/2: the width of the per-doublet results.h5 columns


@dataclass(frozen=True)
class Quantity:
    name: str
    shape: tuple            # ints, or "atoms" for a per-atom list
    unit: str
    providers: tuple[str, ...]
    description: str
    ligand_label: bool = False      # a per-ligand proxy label that `gauss_hpc.label` writes into ligands.h5

    @property
    def per_complex_array(self) -> bool:
        """A fixed-shape N-D column of results.h5 (kd_energies, kd_gaps, g_tensors)."""
        return len(self.shape) > 0 and all(isinstance(n, int) for n in self.shape)


QUANTITIES: dict[str, Quantity] = {q.name: q for q in (
    Quantity("kd_energies", (N_DOUBLETS,), "cm-1", ("crystal_field", "molcas", "orca"),
             "Kramers-doublet energies of the ground J multiplet, ground doublet 0"),
    Quantity("kd_gaps", (N_DOUBLETS - 1,), "cm-1", ("crystal_field", "molcas", "orca"),
             "the paper's gaps dE0i = E(KD i) - E(KD 0), i = 1..7: each doublet above the ground one (the first is "
             "KD1, the last the total splitting of the ground J multiplet)"),
    Quantity("g_tensors", (N_DOUBLETS, 3), "1", ("crystal_field", "molcas", "orca"),
             "main values gX, gY, gZ of each doublet's pseudospin-1/2 g-tensor (Z the main magnetic axis); NaN "
             "where the program printed none"),
    Quantity("g_axes", (N_DOUBLETS, 3, 3), "1", ("crystal_field", "molcas", "orca"),
             "main magnetic axes Xm, Ym, Zm (rows, unit vectors, sign arbitrary) of each doublet's g-tensor in the "
             "Cartesian frame of the complex's geometry, in the order of g_tensors; NaN where the program printed "
             "none"),
    Quantity("energy", (), "Eh", ("orca", "xtb"), "total energy of the final geometry"),
    Quantity("donor_charge", (), "e", ("xtb", "molcas"), "partial charge of the donor atom of the free ligand",
             ligand_label=True),
    Quantity("donor_dipole", (), "e*bohr", ("xtb", "molcas"), "atomic dipole magnitude of the donor atom",
             ligand_label=True),
    Quantity("donor_polarizability", (), "bohr^3", ("xtb", "molcas"),
             "isotropic atomic polarizability of the donor atom", ligand_label=True),
    Quantity("atomic_charges", ("atoms",), "e", ("xtb", "molcas"), "partial charge of every atom"),
    Quantity("so_energies", ("states",), "cm-1", ("molcas", "orca"), "every spin-orbit state, ground 0"),
)}


def kd_gaps(kd_energies):
    """The paper's KD gaps dE0i = E(KD i) - E(KD 0), i = 1.., from doublet energies (last axis, ground first);
    the one definition every backend, gather and import use (results.h5 format 2; format 1 stored neighbour
    differences E(KD i+1) - E(KD i), converted by `gauss-hpc upgrade`)."""
    import numpy as np

    kd = np.asarray(kd_energies, dtype=float)
    return kd[..., 1:] - kd[..., :1]


def result_arrays() -> dict[str, tuple[int, ...]]:
    """{name: per-row shape} of the fixed-shape N-D columns of results.h5."""
    return {q.name: q.shape for q in QUANTITIES.values() if q.per_complex_array}


def ligand_labels() -> dict[str, str]:
    """{quantity: unit} of the per-ligand proxy labels."""
    return {q.name: q.unit for q in QUANTITIES.values() if q.ligand_label}


def providers(name: str) -> tuple[str, ...]:
    """The backends that provide `name`; KeyError naming the known quantities otherwise."""
    try:
        return QUANTITIES[name].providers
    except KeyError:
        raise KeyError(f"no quantity {name!r} in the value schema; known: {sorted(QUANTITIES)}") from None


def label_backends() -> tuple[str, ...]:
    """Backends that make every ligand label (and so have `label_ligand`)."""
    sets = [set(q.providers) for q in QUANTITIES.values() if q.ligand_label]
    return tuple(sorted(set.intersection(*sets))) if sets else ()


# Label names in ligands.h5: <prefix>_<quantity>, the prefix naming the backend that computed the value, so that
# backends never overwrite each other (cf_kd_gaps beside molcas_kd_gaps; xtb_donor_charge beside molcas_...).
LABEL_PREFIX = {"crystal_field": "cf"}      # every other backend is its own prefix
KD_GAPS, KD_DESCRIPTORS = "kd_gaps", "kd_descriptors"
GROUND_G = "ground_g"       # beside a KD label: the ground doublet's principal g values gX <= gY <= gZ (n, 3)

# The structural descriptors of a complex (chem/descriptors.py computes them; the KD head's second input), in
# their order; a step that makes a geometry gives them in values["descriptors"], and results.h5 has a column each.
DESCRIPTOR_NAMES = ("donor_z_axial_1", "donor_z_axial_2", "mpp", "sdp", "axial_angle", "axial_distance_mean")


DEFAULT_TEMPLATE = "dy_h2o5_pbp"     # chem/templates.py: its labels carry no template in their names


def label_name(backend: str, quantity: str, template: str = "") -> str:
    """The one naming rule of labels in ligands.h5: <backend prefix>[_<template>]_<quantity>, the template named
    when it is not the paper's (cf_kd_gaps, cf_dy_py5_pbp_kd_gaps), so that values of different complexes of
    one ligand never mix."""
    prefix = LABEL_PREFIX.get(backend, backend)
    if template and template != DEFAULT_TEMPLATE:
        prefix = f"{prefix}_{template}"
    return f"{prefix}_{quantity}"


def kd_descriptor_label(kd_gaps_label: str) -> str:
    """The structural descriptors that go with a KD label (the KD head's second input): same backend prefix."""
    if not kd_gaps_label.endswith(f"_{KD_GAPS}"):
        raise ValueError(f"KD label {kd_gaps_label!r} should be named <backend>_{KD_GAPS} (e.g. cf_{KD_GAPS})")
    return kd_gaps_label[: -len(KD_GAPS)] + KD_DESCRIPTORS


def ground_g_label(kd_gaps_label: str) -> str:
    """The ground doublet's g values that go with a KD label (a g target such as g_perp reads them)."""
    kd_descriptor_label(kd_gaps_label)      # the same naming check
    return kd_gaps_label[: -len(KD_GAPS)] + GROUND_G
