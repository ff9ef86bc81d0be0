"""What a backend's job step receives and gives back. The job core (gauss_hpc.jobs) knows no chemistry: it hands a
step the ligand SMILES, or the latest complex as a plain dict (Complex.to_dict: what the previous step put in
values["complex"], with the coordinates a later step moved), and passes values on. A step that needs a complex turns
that dict into one here; a step that makes a geometry gives it back with its structural descriptors, which become
results.h5 columns (abinitio/values.py DESCRIPTOR_NAMES)."""

from __future__ import annotations

from ..chem.structure import Complex
from .result import Result, Status


def complex_input(item, step: str, backend: str, name: str) -> Complex | Result:
    """The complex a step works on, or the failure Result saying that the step needs one."""
    if isinstance(item, Complex):
        return item
    if hasattr(item, "to_dict") and hasattr(item, "metal_index"):   # a Complex of another import of this code
        item = item.to_dict()
    if isinstance(item, dict) and "symbols" in item:
        try:
            return Complex.from_dict(item)
        except (TypeError, ValueError) as exc:
            return Result.failure(name, backend, Status.INVALID_INPUT, f"step {step}: the complex it was given is "
                                  f"malformed ({exc})")
    return Result.failure(name, backend, Status.INVALID_INPUT,
                          f"step {step} needs a complex; run 'assemble' (or another geometry step) before it")


def complex_values(cx: Complex) -> dict:
    """values of a step that made (or moved) a geometry: the complex, its atom count and its descriptors."""
    from ..chem.descriptors import structural_descriptors

    try:
        descriptors = structural_descriptors(cx)
    except ValueError:              # a geometry without the roles descriptors need (no axial donors, say)
        descriptors = {}
    return {"complex": cx.to_dict(), "n_atoms": len(cx.symbols), "descriptors": descriptors}


def with_geometry(result: Result, moved: Complex | None = None) -> Result:
    """A geometry step's Result with complex_values of the complex it made: `moved`, else its values["complex"]
    (an OK result only; a failure keeps what it has)."""
    if result.ok and (moved is not None or "complex" in result.values):
        result.values.update(complex_values(moved or Complex.from_dict(result.values["complex"])))
    return result
