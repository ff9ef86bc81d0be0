import inspect

import pytest

# What a test runs, read from its source, marks it: `make test-unit` leaves these out (a minute or two instead of
# the whole suite). A test that starts the local Slurm cluster or several MPI ranks says so in its own code.
_MARKS = {"slurm": ("require_cluster", "ensure_cluster", "sbatch", "srun", "executor=\"slurm\"", "executor='slurm'"),
          "mpi": ("mpiexec", "mpirun", "srun", "--ranks", "ranks=2")}


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run slow tests (real OpenMolcas CASSCF, minutes each)")


def _source(item) -> str:
    parts = []
    for obj in (getattr(item, "function", None), *(item.session._fixturemanager.getfixturedefs(name, item)
                                                    or [None] for name in item.fixturenames)):
        for definition in (obj if isinstance(obj, (list, tuple)) else [obj]):
            func = getattr(definition, "func", definition)
            try:
                parts.append(inspect.getsource(func))
            except (TypeError, OSError):
                pass
    return "\n".join(parts)


def pytest_collection_modifyitems(config, items):
    for item in items:
        text = _source(item)
        for mark, words in _MARKS.items():
            if any(w in text for w in words):
                item.add_marker(getattr(pytest.mark, mark))
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow real run: use --runslow (make test-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
