"""The work of a sampling run, cut into units that any number of ranks can share without changing the result.

A unit is one batch of attempts for one (seed, σ, batch index) — the paper's "50 batches of 100" per seed and σ.
Units are numbered in generation order (batch, then σ, then seed), so the global attempt key
`unit * batch_size + attempt` orders all attempts the same way whatever the rank count; the first occurrence of a
ligand is the one with the smallest key. Each unit draws its noise from its own random stream, derived from the
base seed, the seed ligand's canonical SMILES, σ and the batch index: a unit's draws do not depend on which rank
runs it, nor on which other seeds and σ values are in the run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


def stable_hash64(text: str) -> int:
    """A 64-bit hash that is the same in every process (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Plan:
    seed_keys: tuple[str, ...]      # one string per seed that names it for the random streams (its canonical)
    sigmas: tuple[float, ...]
    batches: int
    batch_size: int
    base_seed: int
    units_per_group: int = 1        # units decoded in one forward pass; groups, not units, are dealt to ranks

    def __post_init__(self):
        if not self.seed_keys:
            raise ValueError("no seeds: give seed ligands (ids, SMILES, a file or a rule such as top-k)")
        if not self.sigmas:
            raise ValueError("no sigma values given")
        bad = [s for s in self.sigmas if not np.isfinite(s) or s < 0]
        if bad:
            raise ValueError(f"sigma must be a finite number >= 0; got {bad}")
        if len(set(self.sigmas)) != len(self.sigmas):
            raise ValueError(f"sigma values repeat: {list(self.sigmas)}")
        for name in ("batches", "batch_size", "units_per_group"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")

    @property
    def n_seeds(self) -> int:
        return len(self.seed_keys)

    @property
    def n_units(self) -> int:
        return self.batches * len(self.sigmas) * self.n_seeds

    @property
    def attempts(self) -> int:
        return self.n_units * self.batch_size

    def unit(self, u: int) -> tuple[int, int, int]:
        """(batch, sigma index, seed index) of unit `u`."""
        per_batch = len(self.sigmas) * self.n_seeds
        batch, rest = divmod(int(u), per_batch)
        sigma_index, seed_index = divmod(rest, self.n_seeds)
        return batch, sigma_index, seed_index

    def unit_arrays(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectorised `unit`: (batch, sigma index, seed index) arrays."""
        units = np.asarray(units, dtype=np.int64)
        per_batch = len(self.sigmas) * self.n_seeds
        batch, rest = np.divmod(units, per_batch)
        sigma_index, seed_index = np.divmod(rest, self.n_seeds)
        return batch, sigma_index, seed_index

    def rng(self, u: int) -> np.random.Generator:
        batch, sigma_index, seed_index = self.unit(u)
        seed_hash = stable_hash64(self.seed_keys[seed_index])
        sigma_micro = int(round(self.sigmas[sigma_index] * 1_000_000))
        key = (seed_hash & 0xFFFFFFFF, seed_hash >> 32, sigma_micro, batch)
        return np.random.default_rng(np.random.SeedSequence(self.base_seed, spawn_key=key))

    @property
    def n_groups(self) -> int:
        return -(-self.n_units // self.units_per_group)

    def group_units(self, g: int) -> range:
        return range(g * self.units_per_group, min((g + 1) * self.units_per_group, self.n_units))

    def groups_of_rank(self, rank: int, size: int) -> range:
        """Round-robin: neighbouring groups (same batch, similar σ) go to different ranks, which balances the
        cost when σ changes how long RDKit takes."""
        return range(rank, self.n_groups, size)
