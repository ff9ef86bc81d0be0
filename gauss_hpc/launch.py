"""Stages as their own processes (MPI ranks need their own processes): the launcher and the runner that the
drivers (gauss_hpc.loop, gauss_hpc.demo) share."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def mpi_launcher(ranks: int) -> list[str]:
    """`mpiexec -n N` from the environment (the MPICH wheel puts it next to python), or [] for one process."""
    candidates = [Path(sys.executable).parent / "mpiexec", shutil.which("mpiexec")]
    for exe in candidates:
        if exe and Path(exe).is_file() and ranks > 1:
            return [str(exe), "-n", str(ranks)]
    if ranks > 1:
        print(f"WARNING: no mpiexec found: running on ONE process instead of {ranks} ranks", flush=True)
    return []


def bundled(path: str | Path) -> Path:
    """A path as the user gave it when it exists there (or is absolute), else the repository's own file of that
    name (the shipped model, the job specs), so a driver run from another directory still finds them."""
    path = Path(path)
    if path.is_absolute() or path.exists() or not (REPO / path).exists():
        return path
    return REPO / path


def run(cmd: list[str]) -> None:
    """Run a stage in the caller's directory (relative paths mean the same to it), streaming its output;
    CalledProcessError when it fails."""
    print("$ " + " ".join(cmd), flush=True)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path})
