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


@pytest.mark.parametrize("cfg, message", [({"quantity": "axiality"}, "g-tensor"), ({"quantity": "kd9"}, "gap:N"),
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
    with pytest.raises(ValueError, match="seed_label"):
        check(weighted)
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
