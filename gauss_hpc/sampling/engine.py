"""One rank's share of a sampling run: z' = z + σε for its units, batched decoding, RDKit validation.

Decoding is batched by groups of units (`Plan.units_per_group`). Groups are fixed by the plan, not by the rank
count, so every latent is decoded in the same batch composition whatever the number of ranks and a result cannot
change through batch-size-dependent floating-point rounding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from gauss_hpc.sampling.plan import Plan
from gauss_hpc.sampling.validate import REASONS, Validator

DECODING_MODES = ("greedy", "temperature")
PRECISIONS = ("auto", "float32", "bfloat16")


def matmul_dtype(precision: str):
    """The torch dtype of the decoder's matrix products for a `[sample] precision` value. "auto" is bfloat16
    where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX; the speed-up is measured by
    bench/decode_precision.py), else float32, which emulated bfloat16 would only slow down."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "auto":
        precision = "bfloat16" if native_bfloat16() else "float32"
    return getattr(torch, precision)


def native_bfloat16() -> bool:
    """Whether oneDNN multiplies bfloat16 natively on this CPU (a private torch query: a torch without it
    answers no, and "auto" stays float32)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class LatentDecoder:
    """Latent vectors to strings: greedy (argmax per position) or temperature sampling (softmax(logits / T),
    one draw per position from uniforms the caller supplies, so the draws belong to the unit's random stream).
    `precision`: the decoder's matrix products (`matmul_dtype`)."""

    def __init__(self, model, vocab, mode: str = "greedy", temperature: float = 1.0, precision: str = "float32"):
        if mode not in DECODING_MODES:
            raise ValueError(f"decoding mode must be one of {DECODING_MODES}, not {mode!r}")
        if mode == "temperature" and not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be > 0; got {temperature}")
        self.model, self.vocab, self.mode, self.temperature = model, vocab, mode, float(temperature)
        self.matmul_dtype = matmul_dtype(precision)

    @property
    def precision(self) -> str:
        """The dtype actually used ("auto" resolved), as recorded in samples.h5."""
        return str(self.matmul_dtype).removeprefix("torch.")

    @property
    def stochastic(self) -> bool:
        return self.mode == "temperature"

    def __call__(self, z: np.ndarray, uniforms: np.ndarray | None = None,
                 prefix: np.ndarray | None = None) -> list[str]:
        """prefix (n, P): tokens forced at the first positions of each string (-1: free)."""
        import torch

        z = np.ascontiguousarray(z, dtype=np.float32)
        inverse = None
        if not self.stochastic:
            # Greedy decoding is a function of z (and the prefix): identical latents (every attempt at σ = 0)
            # are decoded once.
            rows = z if prefix is None else np.hstack([z, prefix.astype(np.float32)])
            _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
            z = z[first]
            prefix = None if prefix is None else prefix[first]
        with torch.inference_mode():
            u = torch.from_numpy(uniforms) if self.stochastic else None
            forced = None if prefix is None else torch.from_numpy(np.ascontiguousarray(prefix, dtype=np.int64))
            indices = self.model.generate(torch.from_numpy(z), u, self.temperature, forced, self.matmul_dtype).numpy()
        strings = self.vocab.decode(indices)
        return strings if inverse is None else [strings[i] for i in inverse.ravel()]


@dataclass
class RankSamples:
    """What one rank generated: its valid samples and per-unit counts."""
    units: np.ndarray                       # (n_units_local,) unit numbers
    attempts: np.ndarray                    # (n_units_local,)
    invalid: np.ndarray                     # (n_units_local, len(REASONS)) counts by reason
    key: list[int] = field(default_factory=list)          # global attempt key of each valid sample
    unit: list[int] = field(default_factory=list)
    valid_rank: list[int] = field(default_factory=list)   # 0-based place among the valid attempts of its unit
    smiles: list[str] = field(default_factory=list)
    canonical: list[str] = field(default_factory=list)
    charge: list[int] = field(default_factory=list)
    z: list[np.ndarray] = field(default_factory=list)     # perturbed latents, one (n_valid_in_unit, d) per unit
    seconds: dict = field(default_factory=lambda: {"decode": 0.0, "validate": 0.0})

    @property
    def valid(self) -> np.ndarray:
        return self.attempts - self.invalid.sum(axis=1)

    def z_matrix(self, latent_dim: int) -> np.ndarray:
        return np.concatenate(self.z) if self.z else np.zeros((0, latent_dim), np.float32)


def donor_prefix(seed_smiles: list[str], vocab) -> np.ndarray:
    """(n_seeds, P) token indices of each seed's donor atom (its first atom, in the form the model was trained
    on), padded with -1: what keep_donor forces every sample of that seed to start with."""
    from gauss_hpc.chem.vocab import tokenize
    from gauss_hpc.sampling.predict import encoder_form

    index = vocab.index
    prefixes = []
    for smiles in seed_smiles:
        donor = tokenize(encoder_form(smiles, vocab), "atom")[0]
        tokens = tokenize(donor, vocab.kind)
        if any(t not in index for t in tokens):
            raise ValueError(f"seed {smiles!r}: its donor atom {donor!r} cannot be written in the model's "
                             f"vocabulary; sample around it without keep_donor")
        prefixes.append([index[t] for t in tokens])
    out = np.full((len(prefixes), max(map(len, prefixes), default=1)), -1, np.int64)
    for row, tokens in enumerate(prefixes):
        out[row, :len(tokens)] = tokens
    return out


def perturb(plan: Plan, unit: int, seed_mu: np.ndarray, decoder: LatentDecoder, max_length: int):
    """z' = z + σε for one unit, and the uniforms for temperature decoding, from the unit's own stream."""
    _, sigma_index, seed_index = plan.unit(unit)
    rng = plan.rng(unit)
    eps = rng.standard_normal((plan.batch_size, seed_mu.shape[1]), dtype=np.float32)
    z = seed_mu[seed_index] + np.float32(plan.sigmas[sigma_index]) * eps
    uniforms = rng.random((plan.batch_size, max_length), dtype=np.float32) if decoder.stochastic else None
    return z, uniforms


def sample_groups(plan: Plan, groups, seed_mu: np.ndarray, decoder: LatentDecoder, validator: Validator,
                  progress=None, seed_prefix: np.ndarray | None = None) -> RankSamples:
    """Decode and validate every unit of `groups` (this rank's share). seed_prefix (n_seeds, P): tokens every
    string of a seed starts with (its donor atom, `donor_prefix`), or None."""
    units = np.asarray([u for g in groups for u in plan.group_units(g)], dtype=np.int64)
    out = RankSamples(units=units, attempts=np.full(len(units), plan.batch_size, np.int64),
                      invalid=np.zeros((len(units), len(REASONS)), np.int64))
    reason_col = {r: i for i, r in enumerate(REASONS)}
    max_length = decoder.vocab.max_length
    row = 0
    for g in groups:
        t0 = time.perf_counter()
        members = list(plan.group_units(g))
        draws = [perturb(plan, u, seed_mu, decoder, max_length) for u in members]
        z = np.concatenate([d[0] for d in draws])
        uniforms = np.concatenate([d[1] for d in draws]) if decoder.stochastic else None
        prefix = None
        if seed_prefix is not None:
            prefix = np.repeat(seed_prefix[[plan.unit(u)[2] for u in members]], plan.batch_size, axis=0)
        strings = decoder(z, uniforms, prefix)
        t1 = time.perf_counter()
        for j, u in enumerate(members):
            keep = []
            for a in range(plan.batch_size):
                verdict = validator(strings[j * plan.batch_size + a])
                if verdict.valid:
                    out.key.append(u * plan.batch_size + a)
                    out.unit.append(u)
                    out.valid_rank.append(len(keep))
                    out.smiles.append(verdict.smiles)
                    out.canonical.append(verdict.canonical)
                    out.charge.append(verdict.charge)
                    keep.append(j * plan.batch_size + a)
                else:
                    out.invalid[row, reason_col[verdict.reason]] += 1
            out.z.append(z[keep])
            row += 1
        out.seconds["decode"] += t1 - t0
        out.seconds["validate"] += time.perf_counter() - t1
        if progress is not None:
            progress.update(len(members) * plan.batch_size)
    return out
