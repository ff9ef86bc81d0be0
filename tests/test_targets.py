"""Design targets ([loop.target], gauss_hpc/targets.py): the numbers a round ranks by, in both directions, and the
loop's configuration of them."""

import numpy as np
import pytest

from gauss_hpc import config
from gauss_hpc.loop import check
from gauss_hpc.targets import Target

GAPS = np.array([[100, 200, 300, 400, 500, 600, 700],          # Dy-like: seven gaps
                 [50, 60, 70, np.nan, np.nan, np.nan, np.nan],  # an ion with four doublets: NaN-padded
                 [np.nan] * 7])                                  # not computed


def test_quantities_directions_and_rankings():
    kd1 = Target()
    assert np.allclose(kd1.values(GAPS)[:2], [100, 50]) and np.isnan(kd1.values(GAPS)[2])
    assert kd1.best(kd1.values(GAPS)) == 100 and list(kd1.ranked(kd1.values(GAPS))) == [0, 1]
    total = Target("total_splitting")
    assert np.allclose(total.values(GAPS)[:2], [700, 70])          # each ion's own last gap, not the padding
    assert Target("gap:3").values(GAPS)[1] == 70
    low = Target("weighted", "min", {"kd1": 1.0, "gap:2": 0.5})
    v = low.values(GAPS)
    assert np.allclose(v[:2], [200, 80]) and low.best(v) == 80 and list(low.ranked(v)) == [1, 0]
    assert list(low.beats(v, 100)) == [False, True, False] and low.order == "low"
    assert Target().seed_label("cf_kd_gaps") == "cf_kd_gaps[0]"
    assert Target("total_splitting").seed_label("molcas_kd_gaps") == "molcas_kd_gaps[-1]"


GROUND_G = np.array([[0.01, 0.02, 19.9],          # an Ising ground doublet
                     [2.0, 5.0, 12.0],            # a mixed one
                     [np.nan] * 3])


def test_the_ground_doublets_axiality_is_a_target():
    axial = Target("g_perp", "min")
    v = axial.values(GAPS, GROUND_G)
    assert np.allclose(v[:2], [np.hypot(0.01, 0.02), np.hypot(2.0, 5.0)]) and np.isnan(v[2])
    assert list(axial.ranked(v)) == [0, 1] and axial.needs_ground_g and not Target().needs_ground_g
    assert np.isnan(axial.values(GAPS)).all()           # g values unknown (a KD head predicts gaps only): NaN
    both = Target("weighted", "max", {"kd1": 1.0, "g_perp": -100.0})      # KD1 high, g⊥ low
    assert np.allclose(both.values(GAPS, GROUND_G)[:2], [100 - 100 * np.hypot(0.01, 0.02), 50 - 100 * np.hypot(2, 5)])
    with pytest.raises(ValueError, match="KD head predicts KD gaps only"):
        axial.seed_label("cf_kd_gaps")
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        axial.values(GAPS, GROUND_G[:2])


def test_targets_read_ligand_labels_with_their_ground_g():
    """A ligands file's labels: the KD label and the ground g values beside it (gauss_hpc.merge writes both)."""
    mask = np.array([True, True, False])
    g_mask = np.array([True, False, False])            # a ligand labelled before g values were merged
    labels = {"cf_kd_gaps": (GAPS, mask), "cf_ground_g": (GROUND_G, g_mask)}
    assert np.allclose(Target().label_values(labels, "cf_kd_gaps")[:2], [100, 50])
    v = Target("g_perp", "min").label_values(labels, "cf_kd_gaps")
    assert np.isclose(v[0], np.hypot(0.01, 0.02)) and np.isnan(v[1:]).all()
    with pytest.raises(ValueError, match="no KD label 'molcas_kd_gaps'"):
        Target().label_values(labels, "molcas_kd_gaps")


@pytest.mark.parametrize("cfg, message", [({"quantity": "axiality"}, "g_perp"), ({"quantity": "kd9"}, "gap:N"),
                                          ({"direction": "up"}, "direction"), ({"quantity": "weighted"}, "weights"),
                                          ({"quantity": "kd1", "sense": "max"}, "unknown keys")])
def test_bad_targets_say_what_is_wrong(cfg, message):
    with pytest.raises(ValueError, match=message):
        Target.from_config(cfg)


def test_the_loop_reads_and_records_its_target(tmp_path):
    cfg = config.load("loop")
    assert Target.from_config(cfg["target"]) == Target()            # the paper's: maximise KD1
    (tmp_path / "loop.toml").write_text('[loop]\nseed_label = "target"\n\n[loop.target]\nquantity = "weighted"\n'
                                        'direction = "min"\n\n[loop.target.weights]\nkd1 = 1.0\n')
    weighted = config.load("loop", tmp_path / "loop.toml")
    assert weighted["target"] == {"quantity": "weighted", "direction": "min", "weights": {"kd1": 1.0}}
    check(weighted)                         # seeds ranked by the target on their labels: any target will do
    with pytest.raises(ValueError, match="seed_label"):
        check({**weighted, "seed_by": "prediction"})        # the model's KD head predicts one gap at a time
    again = tmp_path / "again.toml"          # what loop writes into its run directory reads back the same
    again.write_text(config.dumps(weighted, "loop"))
    assert config.load("loop", again)["target"] == weighted["target"]


def test_another_template_has_labels_of_its_own():
    from gauss_hpc.abinitio.values import label_name
    from gauss_hpc.loop import template_kd_label

    assert label_name("crystal_field", "kd_gaps", "dy_h2o5_pbp") == "cf_kd_gaps"
    assert label_name("crystal_field", "kd_gaps", "er_h2o5_pbp") == "cf_er_h2o5_pbp_kd_gaps"
    assert template_kd_label("cf_kd_gaps", "er_h2o5_pbp") == "cf_er_h2o5_pbp_kd_gaps"
    assert template_kd_label("cf_er_h2o5_pbp_kd_gaps", "er_h2o5_pbp") == "cf_er_h2o5_pbp_kd_gaps"
    assert template_kd_label("molcas_kd_gaps", "dy_h2o5_pbp") == "molcas_kd_gaps"


def test_the_loop_chooses_seeds_by_any_target_on_the_labels(tmp_path):
    """loop.target_seed_rows: the best ligands by the target (here the smallest g⊥), among those with latents."""
    import pandas as pd

    from gauss_hpc import store
    from gauss_hpc.loop import target_seed_rows

    smiles = ["O", "[O-]C", "N", "[O-]CC", "OC"]
    table = pd.DataFrame({"smiles": smiles, "canonical": smiles, "charge": [0, -1, 0, -1, 0],
                          "donor_element": ["O", "O", "N", "O", "O"], "donor_z": [8, 8, 7, 8, 8],
                          "donor_index": [0] * 5, "parent_id": list("abcde"), "source": ["test"] * 5})
    gaps = np.array([[10.0] * 7, [500.0] * 7, [40.0] * 7, [400.0] * 7, [np.nan] * 7])
    g = np.array([[3.0, 6.0, 10.0], [0.01, 0.02, 19.9], [1.0, 1.0, 15.0], [0.001, 0.002, 19.95], [np.nan] * 3])
    known = np.isfinite(gaps[:, 0])
    store.write_ligands(tmp_path / "ligands.h5", table, test_mask=np.zeros(5, bool), train_subsets={},
                        labels={"cf_kd_gaps": (gaps, known, {"unit": "cm-1"}),
                                "cf_ground_g": (g, known, {"unit": "1"}),
                                "molcas_kd_gaps": (gaps, known, {"unit": "cm-1"})})
    model = tmp_path / "model"
    model.mkdir()
    rows = np.array([0, 1, 2, 4])                       # ligand 3 (the most axial) has no latent
    store.write_latents(model / "latents.h5", np.zeros((4, 2)), np.zeros((4, 2)), rows, [smiles[r] for r in rows],
                        tmp_path / "ligands.h5")
    args = (model, tmp_path / "ligands.h5")
    assert target_seed_rows(*args, Target("g_perp", "min"), "cf_kd_gaps", "top", 2, 0) == [1, 2]
    assert target_seed_rows(*args, Target(), "cf_kd_gaps", "top", 2, 0) == [1, 2]
    assert target_seed_rows(*args, Target("kd1", "min"), "cf_kd_gaps", "top", 1, 0) == [0]
    picked = target_seed_rows(*args, Target(), "cf_kd_gaps", "bins", 2, 0)     # KD1 bins [10, 255), [255, 500]
    assert len(picked) == 2 and 1 in picked and set(picked) - {1} <= {0, 2}
    with pytest.raises(ValueError, match="no ligand has a value"):        # KD gaps by CASSCF, but no g values
        target_seed_rows(*args, Target("g_perp", "min"), "molcas_kd_gaps", "top", 2, 0)
