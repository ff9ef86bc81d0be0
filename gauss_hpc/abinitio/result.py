"""The one result type shared by every oracle and ab initio backend (cclib-style: one data model, one parser
per program). A result is JSON-serialisable so array tasks can write it as a small shard."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


class Status:
    """Outcome of one calculation. Everything except OK is a failure with a reason a user can act on."""

    OK = "ok"
    INVALID_INPUT = "invalid_input"            # bad SMILES, element without basis, charge/multiplicity mismatch
    PROGRAM_MISSING = "program_missing"        # executable not found
    SCF_NOT_CONVERGED = "scf_not_converged"
    CASSCF_NOT_CONVERGED = "casscf_not_converged"
    GEOMETRY_NOT_CONVERGED = "geometry_not_converged"
    CRASHED = "crashed"                        # abnormal termination, non-zero exit, killed
    TIMEOUT = "timeout"
    MISSING_OUTPUT = "missing_output"
    TRUNCATED_OUTPUT = "truncated_output"
    PARSE_ERROR = "parse_error"
    FAILED = "failed"                          # anything else, with the message

    ALL = (OK, INVALID_INPUT, PROGRAM_MISSING, SCF_NOT_CONVERGED, CASSCF_NOT_CONVERGED, GEOMETRY_NOT_CONVERGED,
           CRASHED, TIMEOUT, MISSING_OUTPUT, TRUNCATED_OUTPUT, PARSE_ERROR, FAILED)


# The levels of theory a Result's values can come from, most trusted first among those that give Kramers doublets.
METHODS = ("nevpt2", "casscf", "crystal_field", "dft", "gfn2_xtb", "gfn1_xtb", "")
MULTIREFERENCE = ("nevpt2", "casscf")


@dataclass
class Result:
    """What a backend produced for one named input.

    `values` holds the physics in chemist's names, arrays as nested lists:
      kd_energies (8, cm-1, ground = 0), kd_gaps (7, cm-1, dE0i = KD i - KD 0), g_tensors (8 x 3 main values),
      ground_mj_composition ({"mJ": weight}), donor_charge, donor_dipole, donor_polarizability (a.u.),
      atomic_charges (per atom), energy (Eh), symbols + coordinates (final geometry, Angstrom), ...
    """

    name: str
    backend: str
    status: str = Status.OK
    message: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    workdir: str = ""
    method: str = ""      # the level of theory of `values` (METHODS): what the report and merge rank and label by

    def __post_init__(self):
        if self.status not in Status.ALL:
            raise ValueError(f"unknown status {self.status!r}; expected one of {Status.ALL}")

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    @classmethod
    def failure(cls, name: str, backend: str, status: str, message: str, **kwargs) -> "Result":
        return cls(name=name, backend=backend, status=status, message=message, **kwargs)

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "Result":
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "Result":
        return cls.from_dict(json.loads(text))


def _plain(obj):
    """numpy scalars/arrays → Python types, so json.dumps works on any result."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return obj
