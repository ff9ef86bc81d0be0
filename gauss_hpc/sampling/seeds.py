"""Seed ligands for local-perturbation sampling and their latent means.

Seeds come from ligand rows of the dataset (their μ from the run's latents.h5), from SMILES that the model
encodes, from a file mixing both (one per line), or from a rule: the top k of a label or of the model's
prediction of it, bins of its range, or a random draw. Everything here is deterministic, so every MPI rank can
resolve the same seeds on its own and a bad seed raises the same clear error on every rank.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from gauss_hpc import store
from gauss_hpc.chem.ligands import parse_molecule, rooted_smiles
from gauss_hpc.sampling.validate import check_ligand

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Seed:
    smiles: str             # donor first, written as the training strings are (RDKit canonical rooted at the donor)
    canonical: str          # kekulized canonical SMILES
    ligand_row: int         # row of the ligands file, -1 for a SMILES given by the user
    source: str             # how it was chosen: id, smiles, file, top:<name>, bins:<name>, random
    mu: np.ndarray = field(repr=False)


@dataclass
class SeedSpec:
    ids: list[int] = field(default_factory=list)
    smiles: list[str] = field(default_factory=list)
    file: str | None = None
    top: tuple[str, int] | None = None              # (label name, k)
    bins: tuple[str, int, int] | None = None        # (label name, number of bins, seeds per bin)
    random: int = 0
    by: str = "label"                               # rules rank by the label's values or the model's prediction
    order: str = "high"                             # top-k: highest or lowest values first
    random_seed: int = 0


@dataclass
class Latents:
    """The encoder means of the dataset's ligands (the run's latents.h5)."""
    mu: np.ndarray              # (n, d) float32
    ligand_row: np.ndarray      # (n,) int64 rows of the ligands file
    ligands_file: Path

    @classmethod
    def load(cls, run_dir: str | Path, ligands_file: str | Path | None = None) -> "Latents":
        data = store.read_latents(Path(run_dir) / "latents.h5")
        ligands = Path(ligands_file) if ligands_file else resolve_ligands_file(data["ligands_file"], run_dir)
        return cls(data["mu"].astype(np.float32), data["ligand_row"].astype(np.int64), ligands)

    def index_of_rows(self, rows: Sequence[int]) -> np.ndarray:
        """Latent indices of ligand rows, with an error naming rows that have no latent."""
        lookup = {int(r): i for i, r in enumerate(self.ligand_row)}
        missing = [int(r) for r in rows if int(r) not in lookup]
        if missing:
            raise ValueError(f"ligand rows {missing[:10]} have no latent in latents.h5 "
                             f"({len(self.ligand_row)} ligands, rows {self.ligand_row.min()}..{self.ligand_row.max()})")
        return np.asarray([lookup[int(r)] for r in rows], dtype=np.int64)


def resolve_ligands_file(recorded: str, run_dir: str | Path) -> Path:
    """The ligands file a run recorded: as written, else relative to the run directory."""
    for candidate in (Path(recorded), Path(run_dir) / recorded):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"the run's ligands file {recorded} is not found (also not under {run_dir}); "
                            f"pass --ligands PATH")


def read_ligand_rows(ligands_file: Path, rows: Sequence[int], column: str) -> list[str]:
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows)
    with store.open_checked(ligands_file, "ligands") as h5:
        ds = h5[f"ligands/{column}"]
        n = ds.shape[0]
        bad = rows[(rows < 0) | (rows >= n)]
        if len(bad):
            raise ValueError(f"ligand ids {bad[:10].tolist()} are outside {ligands_file} (rows 0..{n - 1})")
        unique_sorted, inverse = np.unique(rows[order], return_inverse=True)
        values = ds.asstr()[unique_sorted] if len(unique_sorted) else []
    out = [""] * len(rows)
    for pos, inv in zip(order, inverse):
        out[pos] = values[inv]
    return out


def training_form(smiles: str) -> str:
    """A user's donor-first SMILES rewritten as the training strings are, after checking it is a usable ligand."""
    verdict = check_ligand(smiles)
    if not verdict.valid:
        raise ValueError(f"seed SMILES {smiles!r} is not a usable monodentate ligand ({verdict.reason}); write a "
                         f"neutral or mono-anionic ligand with the donor N or O first, e.g. 'OC' or '[O-]c1ccccc1'")
    return rooted_smiles(parse_molecule(smiles), 0)


def encode_smiles(run, smiles: Sequence[str]) -> np.ndarray:
    """Encoder means of training-form SMILES (every one must fit the vocabulary)."""
    import torch

    for s in smiles:
        if not run.vocab.encodable(s):
            raise ValueError(f"seed SMILES {s!r} cannot be encoded by this model: a token outside its vocabulary "
                             f"or more than {run.vocab.max_length} tokens")
    if not smiles:
        return np.zeros((0, run.model.latent_dim), np.float32)
    with torch.inference_mode():
        mu, _ = run.model.encode(torch.from_numpy(run.vocab.encode(list(smiles))))
    return mu.float().numpy()


def predict_labels(run, mu: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Proxy-head predictions in label units (n, n_labels)."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(mu), chunk):
            out.append(run.model.predict_proxy(torch.from_numpy(np.ascontiguousarray(mu[start:start + chunk])))
                       .float().numpy())
    pred = np.concatenate(out) if out else np.zeros((0, len(run.label_names)), np.float32)
    return run.unstandardize(pred)


def rule_values(run, latents: Latents, name: str, by: str) -> np.ndarray:
    """Per latent row, the value a rule ranks by (NaN where unknown)."""
    if by == "prediction":
        names = list(run.label_names)
        if name not in names:
            raise ValueError(f"the model predicts no label {name!r}; it predicts {names}")
        return predict_labels(run, latents.mu)[:, names.index(name)].astype(np.float64)
    if by == "label":
        name, column = label_column(name)
        labels = store.read_labels(latents.ligands_file)
        if name not in labels:
            raise ValueError(f"{latents.ligands_file} has no label {name!r}; it has {sorted(labels)}")
        values, mask = labels[name]
        if column is not None and values.ndim == 2 and -values.shape[1] <= column < values.shape[1]:
            values = values[:, column]
        if values.ndim != 1:
            raise ValueError(f"label {name!r} has shape {values.shape[1:]} per ligand; rules need one number: "
                             f"name a column, e.g. {name}[0]")
        return np.where(mask, values, np.nan)[latents.ligand_row]
    raise ValueError(f"seeds can be ranked by 'label' or 'prediction', not {by!r}")


def label_column(name: str) -> tuple[str, int | None]:
    """'cf_kd_gaps[0]' -> ('cf_kd_gaps', 0) (KD1 of a per-doublet label); 'donor_z' -> ('donor_z', None)."""
    if name.endswith("]") and "[" in name:
        base, _, index = name[:-1].partition("[")
        if index.lstrip("-").isdigit():
            return base, int(index)
        raise ValueError(f"label {name!r}: the column in brackets should be a whole number, e.g. {base}[0]")
    return name, None


def top_rows(values: np.ndarray, k: int, order: str) -> np.ndarray:
    if k < 1:
        raise ValueError(f"top-k needs k >= 1; got {k}")
    known = np.flatnonzero(np.isfinite(values))
    if order not in ("high", "low"):
        raise ValueError(f"top-k order is 'high' or 'low', not {order!r}")
    key = -values[known] if order == "high" else values[known]
    return known[np.argsort(key, kind="stable")[:k]]


def binned_rows(values: np.ndarray, n_bins: int, per_bin: int, rng: np.random.Generator) -> np.ndarray:
    """`per_bin` random latent rows from each of `n_bins` equal-width bins of the known values."""
    if n_bins < 1 or per_bin < 1:
        raise ValueError(f"bins need n_bins >= 1 and per_bin >= 1; got {n_bins}, {per_bin}")
    known = np.flatnonzero(np.isfinite(values))
    if not len(known):
        return known
    edges = np.linspace(values[known].min(), values[known].max(), n_bins + 1)
    which = np.clip(np.searchsorted(edges, values[known], side="right") - 1, 0, n_bins - 1)
    picked = []
    for b in range(n_bins):
        members = known[which == b]
        if len(members):
            picked.append(rng.choice(members, size=min(per_bin, len(members)), replace=False))
    return np.sort(np.concatenate(picked)) if picked else known[:0]


# a comment starts a line or follows a space: '#' inside a SMILES is a triple bond (N#CC)
_COMMENT = re.compile(r"(^|\s)#.*$")


def parse_seed_file(path: str | Path) -> tuple[list[int], list[str]]:
    """Ligand ids (integers) and SMILES, one per line; blank lines and # comments (at the start of a line or after
    a space) are skipped, and so is a line
    that is not text (not UTF-8, a NUL byte), with a warning naming it (textio)."""
    from .. import textio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"seed file {path} does not exist")
    ids, smiles = [], []
    for line in textio.lines(path):
        number = line.number
        if line.error:
            log.warning("seed file %s: %s; line skipped", path, line.error)
            continue
        text = _COMMENT.sub("", line.text).strip()
        if not text:
            continue
        if len(text.split()) > 1:
            raise ValueError(f"{path}:{number}: one ligand id or SMILES per line, got {text!r}")
        if text.lstrip("-").isdigit():
            ids.append(int(text))
        else:
            smiles.append(text)
    return ids, smiles


def resolve_seeds(run, latents: Latents | None, spec: SeedSpec) -> list[Seed]:
    """The seeds a spec names: dataset ligands first (ids, the file's ids, top-k, bins, random), then SMILES
    (given, then the file's); of several with the same canonical the first is kept. Raises ValueError for an
    empty result or any unusable seed, and for dataset seeds when there are no dataset latents (`latents` None)."""
    row_sources: list[tuple[int, str]] = [(int(r), "id") for r in spec.ids]
    smiles_sources: list[tuple[str, str]] = [(s, "smiles") for s in spec.smiles]
    if spec.file:
        file_ids, file_smiles = parse_seed_file(spec.file)
        row_sources += [(r, "file") for r in file_ids]
        smiles_sources += [(s, "file") for s in file_smiles]
    if latents is None and (row_sources or spec.top or spec.bins or spec.random):
        raise ValueError(f"{run.run_dir}: seeds from ligands of a dataset (ids, top, bins, random) need its latents: "
                         f"encode the ligands file first (python -m gauss_hpc.encode {run.run_dir} --ligands "
                         "LIGANDS.h5 --out RUN) and sample from RUN; SMILES seeds work on the model directly")
    if spec.top:
        name, k = spec.top
        picked = top_rows(rule_values(run, latents, name, spec.by), int(k), spec.order)
        row_sources += [(int(latents.ligand_row[i]), f"top:{name}") for i in picked]
    if spec.bins:
        name, n_bins, per_bin = spec.bins
        rng = np.random.default_rng(spec.random_seed)
        picked = binned_rows(rule_values(run, latents, name, spec.by), int(n_bins), int(per_bin), rng)
        row_sources += [(int(latents.ligand_row[i]), f"bins:{name}") for i in picked]
    if spec.random:
        if spec.random < 0 or spec.random > len(latents.ligand_row):
            raise ValueError(f"cannot draw {spec.random} random seeds from {len(latents.ligand_row)} ligands")
        rng = np.random.default_rng([spec.random_seed, 1])
        picked = np.sort(rng.choice(len(latents.ligand_row), size=spec.random, replace=False))
        row_sources += [(int(latents.ligand_row[i]), "random") for i in picked]

    seeds: list[Seed] = []
    if row_sources:
        rows = [r for r, _ in row_sources]
        mu = latents.mu[latents.index_of_rows(rows)]
        smiles = read_ligand_rows(latents.ligands_file, rows, "smiles")
        canonical = read_ligand_rows(latents.ligands_file, rows, "canonical")
        seeds += [Seed(s, c, r, src, m) for (r, src), s, c, m in zip(row_sources, smiles, canonical, mu)]
    if smiles_sources:
        forms = [training_form(s) for s, _ in smiles_sources]
        mu = encode_smiles(run, forms)
        seeds += [Seed(f, check_ligand(f).canonical, -1, src, m) for (_, src), f, m in zip(smiles_sources, forms, mu)]
    if not seeds:
        raise ValueError("the seed set is empty: give --seed-ids, --seed-smiles, --seed-file, --seed-top, "
                         "--seed-bins or --seed-random (a rule on a label without values picks nothing)")
    kept, seen = [], set()
    for seed in seeds:
        if seed.canonical not in seen:
            seen.add(seed.canonical)
            kept.append(seed)
    return kept
