"""Property estimates for sampled ligands.

- Proxy labels from the model's head, applied to the sample's own latent mean: the sample is re-encoded in the
  form the training strings have (RDKit canonical rooted at the donor), so its estimate is made exactly as for a
  training ligand and is comparable with the dataset's latents.
- Kramers-doublet (KD) properties by the paper's cross-mapping: the mean label of the k nearest labelled ligands
  in latent space. Only labels the ligands file actually holds are mapped; without any, nothing is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gauss_hpc import store
from gauss_hpc.chem.ligands import parse_molecule, rooted_smiles
from gauss_hpc.sampling.seeds import Latents, predict_labels


def encoder_form(smiles: str, vocab) -> str:
    """The training-string form of a valid donor-first sample, if the vocabulary can encode it."""
    form = rooted_smiles(parse_molecule(smiles), 0)
    return form if vocab.encodable(form) else smiles


def latent_means(run, smiles: Sequence[str], chunk: int = 500) -> np.ndarray:
    """Encoder means of decoded samples; each distinct encoder form is encoded once (spellings of one molecule
    with one donor share it). `chunk`: strings per encoder pass, small enough that a pass's GRU states stay in
    the CPU's caches (bench/batch_sizes.py)."""
    import torch

    form_of = {s: encoder_form(s, run.vocab) for s in set(smiles)}
    forms = sorted(set(form_of.values()))
    position = {f: i for i, f in enumerate(forms)}
    mu = np.zeros((len(forms), run.model.latent_dim), np.float32)
    with torch.inference_mode():
        for start in range(0, len(forms), chunk):
            tokens = torch.from_numpy(run.vocab.encode(forms[start:start + chunk]))
            mu[start:start + chunk] = run.model.encode(tokens)[0].float().numpy()
    return mu[[position[form_of[s]] for s in smiles]] if smiles else mu


@dataclass
class KnnLabels:
    """Labelled latents for the cross-mapping, one reference set per label (each label has its own mask)."""
    names: list[str]
    reference_mu: list[np.ndarray]
    reference_values: list[np.ndarray]
    k: int

    @classmethod
    def from_files(cls, latents: Latents, names: Sequence[str], k: int) -> "KnnLabels | None":
        """The labels of `names` the ligands file holds with at least one value; None when there are none."""
        labels = store.read_labels(latents.ligands_file)
        kept, mus, values = [], [], []
        for name in names:
            if name not in labels:
                continue
            vals, mask = labels[name]
            has = mask[latents.ligand_row]
            if not has.any():
                continue
            kept.append(name)
            mus.append(latents.mu[has])
            values.append(vals[latents.ligand_row[has]])
        return cls(kept, mus, values, int(k)) if kept else None

    def predict(self, mu: np.ndarray) -> dict[str, np.ndarray]:
        """{"predicted_<label>": mean label of the k nearest labelled ligands,
        "neighbour_distance_<label>": their mean latent distance (large = an extrapolation)}."""
        from sklearn.neighbors import NearestNeighbors

        out = {}
        for name, ref_mu, ref_values in zip(self.names, self.reference_mu, self.reference_values):
            k = min(self.k, len(ref_mu))
            if len(mu):
                dist, idx = NearestNeighbors(n_neighbors=k).fit(ref_mu).kneighbors(mu)
            else:
                dist, idx = np.zeros((0, k)), np.zeros((0, k), np.int64)
            out[f"predicted_{name}"] = ref_values[idx].mean(axis=1)
            out[f"neighbour_distance_{name}"] = dist.mean(axis=1)
        return out


def sample_properties(run, smiles: Sequence[str], knn: KnnLabels | None) -> dict[str, np.ndarray]:
    """Columns for the samples table: mu, proxy_<label> per head output, predicted_<label> and
    neighbour_distance_<label> per cross-mapped (KD) label."""
    mu = latent_means(run, smiles)
    columns: dict[str, np.ndarray] = {"mu": mu}
    if run.model.proxy is not None and run.label_names:
        predicted = predict_labels(run, mu)
        for j, name in enumerate(run.label_names):
            columns[f"proxy_{name}"] = predicted[:, j]
    if knn is not None:
        columns.update(knn.predict(mu))
    return columns
