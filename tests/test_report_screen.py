"""The report's screen-against-CASSCF section, from two real results files: the crystal-field campaign of the
report fixture ([NH2-], [OH-], [O-]C) and the shipped CASSCF reference set, which holds the same three ligands."""

import shutil
from pathlib import Path

import h5py

import numpy as np
import pytest
from scipy.stats import spearmanr

from gauss_hpc import analyze, store
from gauss_hpc.jobs import importer
from gauss_hpc.report import campaigns, kd, molecule_figures
from gauss_hpc.targets import Target

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


def test_orca_and_imported_kds_count_as_casscf(tmp_path):
    """A real ORCA CASSCF/QDPT output brought in by `jobs import` is ranked as CASSCF-computed in the report, by
    the method its parser declared (the report once knew CASSCF only by OpenMolcas's step name)."""
    shutil.copy(ROOT / "tests" / "fixtures" / "orca" / "orca6.1_dy_acac_casscf_soc_aniso.out", tmp_path)
    imported = importer.import_outputs([tmp_path / "orca6.1_dy_acac_casscf_soc_aniso.out"], tmp_path / "orca.h5",
                                       quiet=True)
    report = analyze.analyze(tmp_path / "report", results=[SCREEN, imported])
    table = campaigns.results_table([SCREEN, imported], Target())
    assert table["kd_method"].tolist() == ["crystal_field"] * 3 + ["casscf"]
    order = molecule_figures.complex_order(table, kd.Focus())
    assert order["name"].iloc[0] == "orca6.1_dy_acac_casscf_soc_aniso"        # CASSCF first, KD1 139 cm-1
    cards = {f.title: f for f in report.figures}["Computed complexes"].html
    assert cards.index("orca6.1_dy_acac") < cards.index("crystal field") and "KDs from</td><td>CASSCF (import)" in cards
    # results files gathered before Results declared their method are read by their step names
    legacy = store.read_results(SCREEN).assign(target=[100.0, 200.0, 300.0],
                                               kd_step=["crystal_field", "orca_casscf", "import"])
    wide = kd.computed(legacy)
    assert wide["value_casscf"].notna().sum() == 2 and wide["value_crystal_field"].notna().sum() == 1


def test_the_report_follows_the_target_and_its_direction(tmp_path):
    """A round that minimised the total splitting is reported by it: the ranking, the names, the numbers."""
    gaps = np.concatenate([store.read_result_arrays(p)["kd_gaps"] for p in (SCREEN, CASSCF)])
    report = analyze.analyze(tmp_path / "report", results=[SCREEN, CASSCF],
                             target=Target("total_splitting", "min"))
    assert report.numbers["ranked by"] == "min total_splitting (total splitting) on template dy_h2o5_pbp"
    assert "screen vs CASSCF: Spearman rho (total splitting)" in report.numbers
    assert "screen vs CASSCF: Spearman rho (KD1)" not in report.numbers
    views = {f.title: f for f in report.figures}["3-D view of computed complexes"]
    assert "lowest total splitting first" in views.caption
    table = campaigns.results_table([SCREEN, CASSCF], Target("total_splitting", "min"))
    assert np.allclose(table["target"], gaps[:, 6], equal_nan=True)
    order = molecule_figures.complex_order(table[table["status"] == "ok"], report.focus)
    casscf = order[order["kd_step"] == "casscf"]["target"].to_numpy()
    assert len(casscf) > 3 and (np.diff(casscf) >= 0).all()        # lowest first


def test_the_report_ranks_by_the_ground_doublets_axiality(tmp_path):
    """--target g_perp --direction min: the most axial ground doublets first, g⊥ written without a unit."""
    arrays = store.read_result_arrays(CASSCF)
    expected = np.hypot(arrays["g_tensors"][:, 0, 0], arrays["g_tensors"][:, 0, 1])
    table = campaigns.results_table([CASSCF], Target("g_perp", "min"))
    assert np.allclose(table["target"], expected, equal_nan=True) and np.isfinite(table["target"]).sum() > 3
    report = analyze.analyze(tmp_path / "report", results=[SCREEN, CASSCF], target=Target("g_perp", "min"))
    assert report.numbers["ranked by"] == "min g_perp (ground g⊥) on template dy_h2o5_pbp"
    assert "screen vs CASSCF: MAE ground g⊥" in report.numbers            # no cm⁻¹ on a g value
    order = molecule_figures.complex_order(table[table["status"] == "ok"], report.focus)
    assert (np.diff(order["target"].dropna().to_numpy()) >= 0).all()


def test_analyze_refuses_mixed_templates_and_unknown_targets(tmp_path, capsys):
    other = tmp_path / "py5.h5"            # the same rows, computed on another template
    shutil.copy(SCREEN, other)
    with h5py.File(other, "a") as h5:
        rows = h5["results"]
        if "template" in rows:
            del rows["template"]
        rows.create_dataset("template", data=["dy_py5_pbp"] * int(rows.attrs["n_rows"]),
                            dtype=h5py.string_dtype())
    assert campaigns.results_template([other]) == "dy_py5_pbp"
    assert analyze.main(["--results", str(SCREEN), "--results", str(other), "--out", str(tmp_path / "r")]) == 2
    assert "mix complex templates ['dy_h2o5_pbp', 'dy_py5_pbp']" in capsys.readouterr().err
    assert analyze.main(["--results", str(SCREEN), "--out", str(tmp_path / "r"), "--target", "axiality"]) == 2
    assert "\"g_perp\"" in capsys.readouterr().err
    assert analyze.main(["--results", str(SCREEN), "--out", str(tmp_path / "r"), "--template", "nope"]) == 2
    assert "dy_py5_pbp" in capsys.readouterr().err                 # the known templates are listed
