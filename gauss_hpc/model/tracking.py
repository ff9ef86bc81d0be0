"""Which epoch was best, and when to stop: one small piece of training state, saved in every checkpoint."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class EarlyStopping:
    """Tracks the monitored loss per epoch. `best_*` follow the lowest loss (the parameters exported as
    best.pt); the stop counter only resets when the loss beats its reference by at least `min_delta`, so a
    long run of tiny improvements still stops after `patience` epochs."""
    patience: int
    min_delta: float
    best_score: float = math.inf
    best_epoch: int = -1
    stop_reference: float = math.inf
    epochs_without_improvement: int = 0

    def update(self, epoch: int, monitored: float) -> tuple[bool, bool]:
        """Record one epoch's loss; returns (a new best, stop now)."""
        is_best = monitored < self.best_score
        if is_best:
            self.best_score, self.best_epoch = monitored, epoch
        if monitored < self.stop_reference - self.min_delta:
            self.stop_reference, self.epochs_without_improvement = monitored, 0
        else:
            self.epochs_without_improvement += 1
        return is_best, self.epochs_without_improvement >= self.patience

    def state(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("patience", "min_delta")}

    def load(self, state: dict) -> None:
        self.best_score, self.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        self.stop_reference = float(state["stop_reference"])
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
