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


def test_one_runner_for_every_program_profile(tmp_path):
    """OpenMolcas and ORCA run through one runner (process.run_profile) with their own Profile: what is missing,
    a run past its time, a non-zero exit whose output says nothing worse, are statuses with the program's words."""
    import shutil

    from gauss_hpc.abinitio import molcas, orca
    from gauss_hpc.abinitio.process import Profile, run_profile
    from gauss_hpc.abinitio.result import Status

    assert (molcas.PROFILE.output_suffix, orca.PROFILE.output_suffix) == (".log", ".out")
    (tmp_path / "x.inp").write_text("")
    ok = lambda path, name: (Status.OK, "")                                   # noqa: E731
    missing = Profile("Nothing", "x", lambda: None, ".out", "output", "install it")
    assert run_profile(missing, tmp_path, "x.inp", name="a", timeout=5, check=ok).message == "a: install it"
    slow = Profile("Sleep", "x", lambda: shutil.which("sleep"), ".out", "output", "", timeout_hint="wait longer")
    late = run_profile(slow, tmp_path, "30", name="b", timeout=1, check=ok)
    assert late.status == Status.TIMEOUT and "Sleep did not finish within 1 s; wait longer" in late.message
    failing = Profile("False", "x", lambda: shutil.which("false"), ".out", "output", "")
    crashed = run_profile(failing, tmp_path, "x.inp", name="c", timeout=10, check=ok)
    assert crashed.status == Status.CRASHED and "False exited with code 1" in crashed.message
    assert crashed.values == {"output": str(tmp_path / "x.out")}
