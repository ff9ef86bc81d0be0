"""The backends, found in one place. Each backend is one module of gauss_hpc.abinitio that declares what it does:
`BACKEND` (its name), `STEPS` (its job-array steps: `(input, workdir, **params) -> Result`, see jobs/steps.py),
and for a program whose outputs `jobs import` reads, `detect(text) -> bool` (its output's first 64 KiB) and
`read_output(path, name, energies) -> (Result, kind)`. Every Result names its method (Result.METHODS); the
quantities a backend provides are declared in values.py. Adding a program is adding its module and its name here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# backend name -> module of gauss_hpc.abinitio
BACKENDS = ("molsimplify", "crystal_field", "xtb", "pyscf_dft", "molcas", "orca")
PROGRAMS = ("orca", "molcas")          # whose existing outputs `jobs import` recognises, in this order

# a job spec's step name -> the backend that runs it when the spec names none
STEP_BACKENDS = {"assemble": "molsimplify", "swap_metal": "molsimplify", "crystal_field": "crystal_field",
                 "xtb_relax": "xtb", "xtb_label": "xtb", "dft_relax": "pyscf_dft", "loprop": "molcas",
                 "casscf": "molcas", "orca_opt_constrained": "orca", "orca_opt": "orca", "orca_casscf": "orca",
                 "program": "program"}


def backend(name: str) -> ModuleType:
    """The module of backend `name`; ValueError naming the known ones otherwise."""
    if name not in BACKENDS:
        raise ValueError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"gauss_hpc.abinitio.{name}")


def detect_program(text: str) -> str:
    """The program whose output `text` (a file's first 64 KiB) is, or ""."""
    for name in PROGRAMS:
        if backend(name).detect(text):
            return name
    return ""
