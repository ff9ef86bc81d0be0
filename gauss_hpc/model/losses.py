"""Loss terms. Every term is a SUM over this rank's rows divided by a GLOBAL count (rows of the global batch,
labelled rows per property in the global batch), so that summing the terms over ranks gives exactly the
one-rank loss: the number of ranks never changes the loss or its gradient."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def reconstruction(logits: torch.Tensor, tokens: torch.Tensor, n_global: int) -> torch.Tensor:
    """Cross-entropy averaged over positions per string, summed over rows / rows in the global batch."""
    per_position = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")  # (B, L)
    return per_position.mean(dim=1).sum() / max(n_global, 1)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, n_global: int) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) normalized by the latent dimension, summed over rows / global rows."""
    per_row = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).mean(dim=1)
    return per_row.sum() / max(n_global, 1)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
               n_labelled_global: torch.Tensor) -> torch.Tensor:
    """Mean over properties of (squared error summed over labelled rows / global labelled count).

    Unlabelled entries are replaced before the subtraction (torch.where), so their stored values, NaN or
    garbage, reach neither the loss nor its gradient. A property without labels in the global batch adds 0."""
    mask = mask.bool()
    safe_target = torch.where(mask, target, pred.detach())
    squared = torch.where(mask, (pred - safe_target).pow(2), torch.zeros_like(pred))
    per_property = squared.sum(dim=0) / n_labelled_global.clamp(min=1).to(pred.dtype)
    return per_property.mean()
