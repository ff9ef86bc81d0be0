"""The report's screen-against-CASSCF section, from two real results files: the crystal-field campaign of the
report fixture ([NH2-], [OH-], [O-]C) and the shipped CASSCF reference set, which holds the same three ligands."""

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from gauss_hpc import analyze, store
from gauss_hpc.report import kd

ROOT = Path(__file__).resolve().parents[1]
SCREEN = ROOT / "tests" / "fixtures" / "report" / "kd_labels" / "results.h5"
CASSCF = ROOT / "data" / "casscf_reference" / "results.h5"


def test_screen_is_plotted_against_casscf_for_the_ligands_with_both(tmp_path):
    report = analyze.analyze(tmp_path / "report", results=[SCREEN, CASSCF])
    assert (tmp_path / "report" / "screen_vs_casscf.png").stat().st_size > 0
    def keyed(path):     # the report's identity of a ligand: the canonical key (derived where a file lacks it)
        table = store.read_results(path)
        return {kd.novelty_key(c, s): g for c, s, g, step in zip(table["canonical"], table["smiles"],
                                                                 store.read_result_arrays(path)["kd_gaps"][:, 0],
                                                                 table["kd_step"]) if step and np.isfinite(g)}
    screen, casscf = keyed(SCREEN), keyed(CASSCF)
    shared = sorted(set(screen) & set(casscf))
    assert report.numbers["screen vs CASSCF: ligands with both"] == len(shared) == 3
    rho = spearmanr([screen[k] for k in shared], [casscf[k] for k in shared])[0]
    assert report.numbers["screen vs CASSCF: Spearman rho (KD1)"] == pytest.approx(rho, abs=1e-3)


def test_orca_and_imported_kds_count_as_casscf():
    results = store.read_results(SCREEN).assign(kd1_gap=[100.0, 200.0, 300.0], kd_step=["crystal_field",
                                                                                       "orca_casscf", "import"])
    wide = kd.computed(results)
    assert wide["kd1_casscf"].notna().sum() == 2 and wide["kd1_crystal_field"].notna().sum() == 1
