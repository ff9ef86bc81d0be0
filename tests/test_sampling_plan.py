"""The work plan: every attempt has one key and one random stream, whatever the number of ranks."""

import numpy as np
import pytest

from gauss_hpc.sampling.plan import Plan, stable_hash64


def plan(**kw):
    args = dict(seed_keys=("CO", "C[O-]"), sigmas=(0.0, 0.3), batches=3, batch_size=4, base_seed=7,
                units_per_group=2)
    args.update(kw)
    return Plan(**args)


def test_units_are_in_generation_order_batch_then_sigma_then_seed():
    p = plan()
    assert p.n_units == 12 and p.attempts == 48
    assert [p.unit(u) for u in range(5)] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0, 0)]
    batch, sigma, seed = p.unit_arrays(np.arange(p.n_units))
    assert [tuple(x) for x in zip(batch, sigma, seed)] == [p.unit(u) for u in range(p.n_units)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 20])
def test_groups_cover_every_unit_once_for_any_rank_count(size):
    p = plan()
    units = sorted(u for r in range(size) for g in p.groups_of_rank(r, size) for u in p.group_units(g))
    assert units == list(range(p.n_units))


def test_random_stream_depends_on_seed_sigma_batch_not_on_the_rest_of_the_run():
    p = plan()
    other = plan(seed_keys=("N", "C[O-]", "CO"), sigmas=(0.3, 0.5, 0.0), batches=5)
    # unit (batch 2, sigma 0.3, seed "C[O-]") in both plans
    u = next(u for u in range(p.n_units) if p.unit(u) == (2, 1, 1))
    v = next(v for v in range(other.n_units) if other.unit(v) == (2, 0, 1))
    assert np.array_equal(p.rng(u).standard_normal(8), other.rng(v).standard_normal(8))
    assert not np.array_equal(p.rng(0).standard_normal(8), p.rng(1).standard_normal(8))
    assert not np.array_equal(p.rng(u).standard_normal(8), plan(base_seed=8).rng(u).standard_normal(8))


def test_stable_hash_is_the_same_in_every_process():
    # blake2b-64 of the UTF-8 string: a fixed value, unlike Python's per-process salted hash()
    assert stable_hash64("C[O-]") == 0xE7A06C455E0E3E71
    assert stable_hash64("CO") != stable_hash64("OC")


@pytest.mark.parametrize("kw, message", [
    (dict(seed_keys=()), "no seeds"),
    (dict(sigmas=(0.1, -0.2)), "sigma must be"),
    (dict(sigmas=(float("nan"),)), "sigma must be"),
    (dict(sigmas=()), "no sigma"),
    (dict(sigmas=(0.1, 0.1)), "repeat"),
    (dict(batches=0), "batches"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_plans_are_refused_with_the_reason(kw, message):
    with pytest.raises(ValueError, match=message):
        plan(**kw)
