"""Hash-partitioned global dedup and novelty on real MPI ranks (mpiexec -n 3 of the MPICH wheel: uneven shares), checked
against a plain serial scan."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import AllChem

from gauss_hpc import store
from gauss_hpc.dist import Collectives, share
from gauss_hpc.sampling import dedup

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).with_name("mpiexec")
LIGANDS = ROOT / "data" / "ligands.h5"

# Each rank gets every size-th item of a deterministic list of generated canonicals, runs the collective
# operations and sends its verdicts to rank 0, which prints them by item.
WORKER = r"""
import json, sys
import numpy as np
from mpi4py import MPI
from rdkit import Chem, DataStructs
from rdkit.Chem import AllChem
from gauss_hpc.dist import Collectives
from gauss_hpc.sampling import dedup, metrics

comm = Collectives(MPI.COMM_WORLD)          # the stage's collectives over the MPI world
rank, size = comm.rank, comm.size
items = json.load(open(sys.argv[1]))
mine = [i for i in range(len(items["canonical"])) if i % size == rank]
block = dedup.read_canonical_block(sys.argv[2], rank, size)
training = dedup.training_share(comm, block)
shares = comm.gather(len(training), root=0)
result = dedup.global_dedup(comm, [items["canonical"][i] for i in mine],
                            np.asarray(items["sigma"])[mine], np.asarray(items["key"])[mine], training)
snn = metrics.nearest_training_similarity(comm, items["query"], block)
flags = comm.gather({i: (bool(a), bool(b), bool(c), int(d)) for i, a, b, c, d in zip(
    mine, result.unique, result.unique_in_sigma, result.novel, result.times_generated)}, root=0)
if rank == 0:
    merged = {k: v for part in flags for k, v in part.items()}
    print(json.dumps({"flags": [merged[i] for i in range(len(merged))], "shares": shares,
                      "snn": snn.round(6).tolist()}))
"""


def generated_items(n=300, seed=3):
    """Generated canonicals with repeats over 3 sigmas and shuffled keys, some of them in the dataset."""
    rng = np.random.default_rng(seed)
    in_data = ["CO", "C[O-]", "CC#N", "C=O", "N"]
    new = ["CCCCCCCCCCCO", "OCCCCCCCCCCCCO", "NCCCCCCCCCCCCC"]
    pool = in_data + new
    return {"canonical": [pool[i] for i in rng.integers(0, len(pool), n)],
            "sigma": rng.integers(0, 3, n).tolist(), "key": rng.permutation(n).tolist(),
            "query": ["CO", "CCCCCCCCCCCO", "C1=CC=NC=C1"]}


def rdkit_fps(smiles):
    return [AllChem.GetMorganFingerprintAsBitVect(Chem.MolFromSmiles(s), 2, nBits=1024) for s in smiles]


def reference_flags(items, training):
    """The same verdicts by a plain serial scan in key order."""
    order = np.argsort(items["key"])
    seen, seen_sigma, flags = set(), set(), {}
    count = {}
    for c in items["canonical"]:
        count[c] = count.get(c, 0) + 1
    for i in order:
        c, s = items["canonical"][i], items["sigma"][i]
        flags[i] = (c not in seen, (c, s) not in seen_sigma, c not in training, count[c])
        seen.add(c)
        seen_sigma.add((c, s))
    return [flags[i] for i in range(len(order))]


def run_ranks(n, tmp_path, items):
    path = tmp_path / "items.json"
    path.write_text(json.dumps(items))
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([str(MPIEXEC), "-n", str(n), sys.executable, str(worker), str(path), str(LIGANDS)],
                          capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_owner_is_the_same_in_every_process():
    code = "from gauss_hpc.sampling.dedup import owner_of; print([owner_of(s, 7) for s in ['CO', 'C[O-]', 'N']])"
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                              env=dict(os.environ, PYTHONHASHSEED=str(salt), PYTHONPATH=str(ROOT))).stdout
               for salt in (1, 2)}
    assert len(outputs) == 1


@pytest.mark.parametrize("n_rows, size", [(10, 3), (2, 4), (9492, 2), (0, 2)])
def test_blocks_tile_the_table(n_rows, size):
    blocks = [share(n_rows, r, size) for r in range(size)]
    assert blocks[0][0] == 0 and blocks[-1][1] == n_rows
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    assert max(b - a for a, b in blocks) - min(b - a for a, b in blocks) <= 1


def test_single_rank_dedup_matches_a_serial_scan():
    items = generated_items()
    one = Collectives()                  # one process, no MPI
    training = dedup.training_share(one, dedup.read_canonical_block(LIGANDS, 0, 1))
    result = dedup.global_dedup(one, items["canonical"], np.asarray(items["sigma"]),
                                np.asarray(items["key"]), training)
    ours = list(zip(result.unique, result.unique_in_sigma, result.novel, result.times_generated))
    assert [tuple(map(lambda x: x.item(), row)) for row in ours] == reference_flags(items, training)


@pytest.mark.parametrize("ranks", [3])
def test_dedup_and_novelty_do_not_depend_on_the_rank_count(tmp_path, ranks):
    items = generated_items()
    training = set(store.read_ligands(LIGANDS)["canonical"])
    many = run_ranks(ranks, tmp_path, items)
    assert many["flags"] == [list(f) for f in reference_flags(items, training)]
    # every training canonical is owned by exactly one rank, so the shares add up to the distinct set
    assert sum(many["shares"]) == len(training) and min(many["shares"]) > 0
    # each unique canonical is flagged unique exactly once over all ranks
    firsts = [items["canonical"][i] for i, f in enumerate(many["flags"]) if f[0]]
    assert sorted(firsts) == sorted(set(items["canonical"]))
    reference = rdkit_fps(sorted(training))
    expected_snn = [max(DataStructs.BulkTanimotoSimilarity(f, reference)) for f in rdkit_fps(items["query"])]
    np.testing.assert_allclose(many["snn"], expected_snn, atol=1e-6)
    assert many["snn"][0] == 1.0                 # methanol is a training ligand
