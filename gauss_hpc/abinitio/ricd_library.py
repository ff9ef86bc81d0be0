"""A shared library of OpenMolcas's on-the-fly auxiliary basis sets, so that &GATEWAY builds each only once.

With RICD, &GATEWAY derives an atomic compact Cholesky (acCD) auxiliary basis for every element and basis of
the complex, every run; for a lanthanide's ANO-RCC-VDZP basis that is most of the integral step (measured by
bench/casscf_integrals.py, variant ricd_library). The set depends only on the element, its valence basis and the
decomposition settings, not on the geometry, and OpenMolcas writes it to $Project.RICDLib; with the GATEWAY
keyword XRICD it reads it back from $WorkDir/$Project.RICDLib instead. A library holds the blocks of one set of
decomposition settings: the template's (OpenMolcas's default threshold), which every run here uses.

A library is a directory of blocks, one file per (element, valence basis, auxiliary type), named after the
block's own header (/ER.ANO-RCC-VDZP....acCD-aux-basis.). `compose` writes the library of one complex when every
block it needs is there; `keep` adds the blocks a finished run produced. Blocks are written atomically, so
array tasks may share one directory: two tasks that both computed a block write the same bytes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def default_path() -> Path:
    """$GAUSS_HPC_RICD_LIBRARY, else ~/.cache/gauss_hpc/ricd_library (a home directory every node of a cluster sees)."""
    return Path(os.environ.get("GAUSS_HPC_RICD_LIBRARY") or Path.home() / ".cache" / "gauss_hpc" / "ricd_library")


def blocks(text: str) -> dict[str, str]:
    """{header: block text} of a RICDLib file; the header is the first line of the block, without spaces."""
    out: dict[str, str] = {}
    header = None
    for line in text.splitlines(keepends=True):
        if line.startswith("/"):
            header = line.strip().upper()
            out[header] = line
        elif header is not None:
            out[header] += line
    return out


def _key(element: str, basis: str) -> str:
    return f"/{element.upper()}.{basis.upper()}."


def _file(library: Path, header: str) -> Path:
    return library / (header.strip("/.").replace("/", "_") + ".block")


def compose(library: str | Path, needs: list[tuple[str, str]], out: Path) -> bool:
    """Write `out` (a RICDLib) from the library's blocks for each (element, valence basis) in `needs`; False, and
    nothing written, when one is missing (the run then builds them, and `keep` adds them)."""
    library = Path(library)
    chosen = []
    for element, basis in dict.fromkeys(needs):
        found = sorted(library.glob(_key(element, basis).strip("/").replace("/", "_") + "*.block")) \
            if library.is_dir() else []
        if not found:
            return False
        chosen.append(found[0].read_text())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(chosen))
    return True


def keep(library: str | Path, produced: Path) -> int:
    """Add the blocks of a RICDLib a run produced to the library; returns how many were new."""
    library = Path(library)
    library.mkdir(parents=True, exist_ok=True)
    new = 0
    for header, text in blocks(produced.read_text()).items():
        target = _file(library, header)
        if target.exists():
            continue
        with tempfile.NamedTemporaryFile("w", dir=library, delete=False, suffix=".tmp") as tmp:
            tmp.write(text)
        os.replace(tmp.name, target)
        new += 1
    return new
