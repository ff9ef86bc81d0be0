"""A shared library of OpenMolcas's acCD auxiliary basis sets (abinitio/ricd_library.py): split a real RICDLib
into blocks, compose the library of another complex from them, and (slow) a real CASSCF that reads it."""

from pathlib import Path

import numpy as np
import pytest

from gauss_hpc.abinitio import molcas, ricd_library

FIXTURE = Path(__file__).parent / "fixtures" / "molcas" / "ErOH2_cheap.RICDLib"


def test_blocks_are_kept_once_and_composed_for_a_complex(tmp_path):
    library = tmp_path / "lib"
    text = FIXTURE.read_text()
    headers = list(ricd_library.blocks(text))
    assert [h.split(".")[0] for h in headers] == ["/ER", "/O", "/H"] and all("ACCD-AUX-BASIS" in h for h in headers)
    assert ricd_library.keep(library, FIXTURE) == 3 and ricd_library.keep(library, FIXTURE) == 0
    # a water complex of Er needs the same three blocks: composed, byte for byte the original's blocks
    out = tmp_path / "scratch" / "x" / "x.RICDLib"
    needs = [("Er", "ANO-RCC-VDZP")] + [("O", "ANO-RCC-MB"), ("H", "ANO-RCC-MB"), ("H", "ANO-RCC-MB")] * 7
    assert ricd_library.compose(library, needs, out)
    assert sorted(ricd_library.blocks(out.read_text()).values()) == sorted(ricd_library.blocks(text).values())
    # another basis, or an element the library lacks: nothing composed, the run builds its own
    assert not ricd_library.compose(library, [("Er", "ANO-RCC-VDZ"), ("O", "ANO-RCC-MB")], tmp_path / "a")
    assert not ricd_library.compose(library, needs + [("C", "ANO-RCC-MB")], tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow          # two real cheap CASSCF runs, a few minutes
@pytest.mark.skipif(molcas.program_path() is None, reason="OpenMolcas (pymolcas) is not installed")
def test_a_casscf_reading_the_library_gives_the_same_doublets(tmp_path):
    from gauss_hpc.chem.complexes import assemble

    library = tmp_path / "lib"
    first = molcas.kd_energies(assemble("[OH-]"), workdir=tmp_path / "a", cores=1, ricd_library=str(library),
                               **molcas.CHEAP_CASSCF)
    assert first.ok and not first.values["ricd_library_used"] and len(list(library.glob("*.block"))) == 3
    again = molcas.kd_energies(assemble("[OH-]"), workdir=tmp_path / "b", cores=1, ricd_library=str(library),
                               **molcas.CHEAP_CASSCF)
    assert again.ok and again.values["ricd_library_used"]
    assert any("XRICD" in p.read_text() for p in (tmp_path / "b").glob("*.inp"))
    assert np.allclose(first.values["kd_energies"], again.values["kd_energies"], atol=0.01)


def test_the_default_library_is_per_user_and_can_be_moved(monkeypatch, tmp_path):
    monkeypatch.delenv("GAUSS_HPC_RICD_LIBRARY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ricd_library.default_path() == tmp_path / ".cache" / "gauss_hpc" / "ricd_library"
    monkeypatch.setenv("GAUSS_HPC_RICD_LIBRARY", str(tmp_path / "shared"))
    assert ricd_library.default_path() == tmp_path / "shared"
