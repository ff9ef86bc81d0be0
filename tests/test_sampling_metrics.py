"""Generation metrics against straightforward RDKit computations of the MOSES definitions."""

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import AllChem

from gauss_hpc.sampling import metrics

MOLECULES = ["CO", "CCO", "C[O-]", "CC#N", "C1=CC=NC=C1", "[O-]C1=CC=CC=C1", "CC(C)O", "NCC=O"]


def rdkit_fps(smiles):
    return [AllChem.GetMorganFingerprintAsBitVect(Chem.MolFromSmiles(s), 2, nBits=1024) for s in smiles]


def test_tanimoto_matches_rdkit():
    ours = metrics.tanimoto(metrics.fingerprints(MOLECULES), metrics.fingerprints(MOLECULES))
    fps = rdkit_fps(MOLECULES)
    theirs = np.array([DataStructs.BulkTanimotoSimilarity(f, fps) for f in fps])
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_internal_diversity_is_the_moses_formula():
    fps = rdkit_fps(MOLECULES)
    sims = np.array([DataStructs.BulkTanimotoSimilarity(f, fps) for f in fps])
    for p in (1, 2):
        expected = 1 - np.mean(np.mean(sims ** p, axis=1) ** (1 / p))
        assert metrics.internal_diversity(metrics.fingerprints(MOLECULES), p) == pytest.approx(expected)
    assert metrics.internal_diversity(metrics.fingerprints(["CO"] * 5)) == pytest.approx(0.0)
    assert np.isnan(metrics.internal_diversity(metrics.fingerprints([])))


def test_max_similarity_to_a_reference_set():
    query, reference = MOLECULES[:3], MOLECULES[3:] + ["CO"]
    best = metrics.max_similarity(metrics.fingerprints(query), reference)
    ref = rdkit_fps(reference)
    expected = [max(DataStructs.BulkTanimotoSimilarity(f, ref)) for f in rdkit_fps(query)]
    np.testing.assert_allclose(best, expected, atol=1e-6)
    assert best[0] == pytest.approx(1.0)                 # CO is in the reference


def test_unique_at_k_counts_distinct_molecules_among_the_first_k():
    # valid samples in generation order: A A B A C B  -> first occurrences at positions 0, 2, 4
    first = np.array([True, False, True, False, True, False])
    position = np.arange(6)
    assert metrics.unique_at_k(first, position, 6, 3) == (2 / 3, 3)
    assert metrics.unique_at_k(first, position, 6, 1000) == (3 / 6, 6)   # fewer valid than k: all of them
    value, used = metrics.unique_at_k(first[:0], position[:0], 0, 1000)
    assert np.isnan(value) and used == 0


def test_metrics_table_on_a_hand_made_run():
    # two units per sigma, 4 attempts each; valid samples and their flags written out by hand
    units = pd.DataFrame({"unit": [0, 1, 2, 3], "sigma": [0.1, 0.2, 0.1, 0.2], "attempts": [4, 4, 4, 4],
                          "valid": [2, 1, 3, 0]})
    samples = pd.DataFrame({
        "key": [0, 1, 4, 8, 9, 10],
        "unit": [0, 0, 1, 2, 2, 2],
        "valid_rank": [0, 1, 0, 0, 1, 2],
        "sigma": [0.1, 0.1, 0.2, 0.1, 0.1, 0.1],
        "canonical": ["CO", "CCO", "CO", "CO", "C[O-]", "CCO"],
        "novel": [False, True, False, False, True, True],
        "unique": [True, True, False, False, True, False],
        "unique_in_sigma": [True, True, True, False, True, False],
    })
    subsets = metrics.diversity_subsets(samples, [0.1, 0.2], max_samples=10)
    assert subsets == [["CO", "CCO", "C[O-]"], ["CO"], ["CO", "CCO", "C[O-]"]]
    nearest = {"CO": 1.0, "CCO": 0.5, "C[O-]": 0.25}
    table = metrics.metrics_table(units, samples, [0.1, 0.2], subsets, nearest)
    s1, s2, whole = (table.iloc[i].to_dict() for i in range(3))
    assert [s1[k] for k in ("attempts", "valid", "unique", "novel_unique")] == [8, 5, 3, 2]
    assert s1["validity"] == pytest.approx(5 / 8)
    assert s1["unique_at_1k"] == pytest.approx(3 / 5) and s1["n_unique_at_1k"] == 5
    assert s1["novelty"] == pytest.approx(2 / 3)
    assert s1["snn"] == pytest.approx((1.0 + 0.5 + 0.25) / 3)
    assert [s2[k] for k in ("valid", "unique", "novelty")] == [1, 1, 0.0]
    assert s2["intdiv1"] == pytest.approx(0.0)
    assert np.isnan(whole["sigma"])
    assert [whole[k] for k in ("attempts", "valid", "unique")] == [16, 6, 3]
    assert whole["unique_at_1k"] == pytest.approx(3 / 6)
