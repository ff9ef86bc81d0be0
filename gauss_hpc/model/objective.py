"""The training objective, one definition for the training steps and the held-out evaluation:
reconstruction + kl_weight x KL + property_weight x (proxy MSE + KD MSE), each term a partial sum over this
rank's rows normalized by global counts (see `losses`), so terms add up over ranks and over batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import losses

TERMS = ("loss", "reconstruction", "kl", "property", "kd")


@dataclass(frozen=True)
class Objective:
    kl_weight: float
    property_weight: float

    def terms(self, out: dict, batch: dict, n_rows: int, label_counts: torch.Tensor | None,
              kd_count: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Every term of TERMS for the model outputs `out` on `batch`; n_rows, label_counts and kd_count are
        the global counts the terms are normalized by."""
        terms = {"reconstruction": losses.reconstruction(out["logits"], batch["tokens"], n_rows),
                 "kl": losses.kl_divergence(out["mu"], out["logvar"], n_rows)}
        zero = terms["kl"] * 0.0
        terms["property"] = (losses.masked_mse(out["proxy"], batch["labels"], batch["label_mask"], label_counts)
                             if "proxy" in out else zero)
        terms["kd"] = (losses.masked_mse(out["kd"], batch["kd_targets"], batch["kd_mask"].expand_as(out["kd"]),
                                         kd_count) if "kd" in out else zero)
        terms["loss"] = self.combine(terms)
        return terms

    def combine(self, terms: dict) -> torch.Tensor | float:
        return (terms["reconstruction"] + self.kl_weight * terms["kl"]
                + self.property_weight * (terms["property"] + terms["kd"]))
