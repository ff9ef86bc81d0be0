"""Global deduplication and novelty over MPI ranks without any rank holding everything.

Each canonical SMILES has an owner rank, `blake2b(canonical) mod size`. Ranks send what they generated to the
owners in one all-to-all; an owner sees every occurrence of its canonicals, decides which occurrence came first
(the smallest attempt key, see `plan.Plan`) and whether the canonical is in the training set, and answers in a
second all-to-all. The training set is partitioned the same way: each rank reads one contiguous block of the
ligands file's canonical column and forwards each entry to its owner, so an owner holds only its share.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from gauss_hpc import store
from gauss_hpc.dist import Collectives, share
from gauss_hpc.sampling.plan import stable_hash64


def owner_of(canonical: str, size: int) -> int:
    return stable_hash64(canonical) % size


def read_canonical_block(ligands_path: str | Path, rank: int, size: int) -> list[str]:
    """This rank's block of the ligands file's kekulized canonical SMILES column."""
    with store.open_checked(ligands_path, "ligands") as h5:
        column = h5["ligands/canonical"]
        start, stop = share(column.shape[0], rank, size)
        return list(column.asstr()[start:stop])


def read_key_file_block(path: str | Path, rank: int, size: int) -> list[str]:
    """This rank's block of a gzip text file of kekulized canonical SMILES, one per line (a run's
    training_ligands.txt.gz: what the model was trained on, also when the run samples around another file)."""
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as fh:
        keys = [line.rstrip("\n") for line in fh if line.strip()]
    start, stop = share(len(keys), rank, size)
    return keys[start:stop]


def route(comm: Collectives, items: Sequence, owners: Sequence[int]) -> list[list]:
    """Send each item to its owner rank; returns what each source rank sent to this rank, by source."""
    outgoing: list[list] = [[] for _ in range(comm.size)]
    for item, owner in zip(items, owners):
        outgoing[owner].append(item)
    return comm.alltoall(outgoing)


def training_share(comm: Collectives, block: Sequence[str]) -> set[str]:
    """The training-set canonicals this rank owns, from every rank's block (`read_canonical_block`)."""
    size = comm.size
    received = route(comm, block, [owner_of(c, size) for c in block])
    return {c for part in received for c in part}


@dataclass
class DedupResult:
    unique: np.ndarray              # first occurrence of its canonical in the whole run
    unique_in_sigma: np.ndarray     # first occurrence among the samples of its σ (the paper's per-σ uniqueness)
    novel: np.ndarray               # canonical not in the training set
    times_generated: np.ndarray     # how many valid attempts of the whole run gave this canonical


def global_dedup(comm: Collectives, canonicals: Sequence[str], sigma_index: np.ndarray, keys: np.ndarray,
                 training: set[str]) -> DedupResult:
    """Flags for this rank's valid samples. `keys` are global attempt keys (unique over the run, smaller =
    earlier); `training` is this rank's share from `training_share`. Collective: every rank must call it."""
    size = comm.size
    sigma_index = np.asarray(sigma_index, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    # Reduce locally first: only the earliest occurrence per (canonical, σ) and a count travel.
    first: dict[tuple[str, int], int] = {}
    count: dict[tuple[str, int], int] = defaultdict(int)
    for canonical, s, key in zip(canonicals, sigma_index.tolist(), keys.tolist()):
        group = (canonical, s)
        if group not in first or key < first[group]:
            first[group] = key
        count[group] += 1
    groups = list(first)
    entries = [(c, s, first[(c, s)], count[(c, s)]) for c, s in groups]
    received = route(comm, entries, [owner_of(c, size) for c, _ in groups])

    earliest: dict[str, int] = {}
    earliest_in_sigma: dict[tuple[str, int], int] = {}
    total: dict[str, int] = defaultdict(int)
    for part in received:
        for c, s, key, n in part:
            if c not in earliest or key < earliest[c]:
                earliest[c] = key
            if (c, s) not in earliest_in_sigma or key < earliest_in_sigma[(c, s)]:
                earliest_in_sigma[(c, s)] = key
            total[c] += n
    replies = [[(key == earliest[c], key == earliest_in_sigma[(c, s)], c not in training, total[c])
                for c, s, key, _ in part] for part in received]
    answers = comm.alltoall(replies)

    # Answers come back per owner in the order the entries were sent to that owner.
    by_owner: list[list] = [[] for _ in range(size)]
    for group in groups:
        by_owner[owner_of(group[0], size)].append(group)
    verdict = {group: answer for owner in range(size) for group, answer in zip(by_owner[owner], answers[owner])}

    n = len(keys)
    result = DedupResult(np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, np.int64))
    for i, (canonical, s, key) in enumerate(zip(canonicals, sigma_index.tolist(), keys.tolist())):
        group = (canonical, s)
        is_first, is_first_in_sigma, novel, times = verdict[group]
        local_first = key == first[group]
        result.unique[i] = local_first and is_first
        result.unique_in_sigma[i] = local_first and is_first_in_sigma
        result.novel[i] = novel
        result.times_generated[i] = times
    return result

