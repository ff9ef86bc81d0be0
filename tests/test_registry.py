"""The backends declare themselves in one registry (abinitio/registry.py): every backend module names itself and
its steps, every step a spec may name resolves to a callable, and each program recognises its own real outputs and
nobody else's."""

from pathlib import Path

import pytest

from gauss_hpc.abinitio import registry
from gauss_hpc.jobs.steps import resolve

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", registry.BACKENDS)
def test_each_backend_declares_itself(name):
    module = registry.backend(name)
    assert module.BACKEND == name and module.STEPS and all(callable(f) for f in module.STEPS.values())
    if name in registry.PROGRAMS:
        assert callable(module.detect) and callable(module.read_output) and module.PROGRAM_NAME


def test_every_default_step_resolves_and_unknown_backends_are_named():
    for step, backend in registry.STEP_BACKENDS.items():
        assert callable(resolve(step, backend)), step
    with pytest.raises(ValueError, match="expected one of molsimplify"):
        registry.backend("gaussian")


@pytest.mark.parametrize("fixture, program", [
    ("orca/orca6.1_dy_acac_casscf_soc_aniso.out", "orca"), ("orca/orca5.0_dvb_gopt.out", "orca"),
    ("molcas/casscf_DyOPh2_cheap.log", "molcas"), ("molcas/loprop_methanolate.log", "molcas"),
    ("molcas/README.md", ""), ("orca/orca6.0_dvb_gopt.inp", "")])
def test_programs_recognise_their_own_outputs(fixture, program):
    head = (FIXTURES / fixture).read_bytes()[:64 * 1024].decode("utf-8", errors="replace")
    assert registry.detect_program(head) == program
    assert [p for p in registry.PROGRAMS if registry.backend(p).detect(head)] == ([program] if program else [])
