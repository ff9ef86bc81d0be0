"""Property heads trained jointly on the latent mean (semi-supervised: a masked MSE ignores unlabelled rows).

- ProxyHead (GAUSS-II): latent -> dense -> standardized proxy labels of the donor atom (atomic number, charge,
  dipole, polarizability: whichever labels the dataset holds).
- KDHead (GAUSS-I): latent (+) structural descriptors of the complex -> dense -> dense -> Kramers-doublet gaps.

Dropout masks can be passed in (`keep`), so that a row's mask depends only on the global batch and not on how
the batch was split across ranks; this keeps multi-rank training identical to one rank.
"""

from __future__ import annotations

import torch
from torch import nn


def dropout(x: torch.Tensor, p: float, keep: torch.Tensor | None, training: bool) -> torch.Tensor:
    """Inverted dropout; with `keep` (bool, same shape as x) the mask is given instead of drawn."""
    if not training or p <= 0.0:
        return x
    if keep is None:
        return nn.functional.dropout(x, p, training=True)
    return x * keep.to(x.dtype) / (1.0 - p)


class ProxyHead(nn.Module):
    def __init__(self, latent_dim: int, n_outputs: int, hidden: int = 32, dropout_p: float = 0.2):
        super().__init__()
        self.hidden_layer = nn.Linear(latent_dim, hidden)
        self.activation = nn.LeakyReLU()
        self.out = nn.Linear(hidden, n_outputs)
        self.dropout_p = dropout_p
        self.hidden = hidden

    def forward(self, mu: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        h = self.activation(self.hidden_layer(mu))
        return self.out(dropout(h, self.dropout_p, keep, self.training))


class KDHead(nn.Module):
    def __init__(self, latent_dim: int, n_descriptors: int = 6, hidden: tuple[int, int] = (32, 8),
                 n_outputs: int = 7, dropout_p: float = 0.005):
        super().__init__()
        self.layer1 = nn.Linear(latent_dim + n_descriptors, hidden[0])
        self.layer2 = nn.Linear(hidden[0], hidden[1])
        self.out = nn.Linear(hidden[1], n_outputs)
        self.act1 = nn.LeakyReLU()
        self.act2 = nn.SiLU()
        self.dropout_p = dropout_p
        self.hidden = tuple(hidden)

    def forward(self, mu: torch.Tensor, descriptors: torch.Tensor,
                keep: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        keep1, keep2 = keep if keep is not None else (None, None)
        h = self.act1(self.layer1(torch.cat([mu, descriptors], dim=-1)))
        h = dropout(h, self.dropout_p, keep1, self.training)
        h = self.act2(self.layer2(h))
        h = dropout(h, self.dropout_p, keep2, self.training)
        return self.out(h)
