"""Train the semi-supervised GAUSS VAE: `python -m gauss_hpc.train` as one process, under mpiexec, srun or
torchrun (same code path; see gauss_hpc.dist).

Results do not depend on the number of ranks: the data order is a seeded global permutation per epoch, each
global batch is split contiguously across ranks, every random draw (reparameterization, dropout) is made for
the global batch from (seed, epoch, step), and every loss term is normalized by global counts. For the same
reason a run resumed from a checkpoint (also one written on SIGTERM/SIGUSR1 mid-epoch) finishes exactly as the
uninterrupted run would have.

Exit codes: 0 finished (max epochs, early stop, or the --max-minutes budget: the best parameters so far are
exported and a checkpoint is kept for --resume); 2 bad input; 75 interrupted by SIGTERM/SIGUSR1 with a checkpoint
saved (rerun with --resume; slurm/train.sbatch requeues the job on 75).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .cli import add_quiet
from . import config
from . import dist, store
from .chem.vocab import Vocabulary
from .dist import InputError
from .model import checkpoint as ckpt
from .model.dataset import Dataset, epoch_order, load_dataset
from .model.decoders import DECODERS
from .model.objective import TERMS, Objective
from .model.tracking import EarlyStopping
from .model.vae import BatchNoise, SmilesVAE

log = logging.getLogger("gauss_hpc.train")

EXIT_INTERRUPTED = 75   # EX_TEMPFAIL: a checkpoint was saved, rerun with --resume
# Architecture keys a fine-tuned run (init_from) takes from the model it starts from.
ARCHITECTURE = ("latent_dim", "encoder_hidden", "decoder", "decoder_hidden", "decoder_layers", "proxy_hidden",
                "kd_hidden")

# (config key, type, help). Every key of the [train] section is a flag; list values are comma-separated.
OPTIONS = [
    ("ligands", str, "ligands file (ligands.h5 from gauss_hpc.data / gauss_hpc.label)"),
    ("out", str, "run directory for config.toml, vocab.json, checkpoint.pt, best.pt, history.h5, latents.h5"),
    ("train_size", int, "training ligands: 0 = all; N = the stored nested subset of size N, else the first N"),
    ("labelled_size", int, "keep proxy labels on N random training ligands only (0 = all labelled)"),
    ("eval_size", int, "held-out ligands scored each epoch: 0 = all; N = those with KD labels and random others "
                       "(the held-out tenth of a large file costs more than a small training epoch)"),
    ("proxy_labels", "list_str", "proxy-head labels: 'all' (donor_z + every label in the file), 'none', "
                                 "or names, e.g. donor_z,donor_charge"),
    ("kd_head", bool, "train the GAUSS-I KD head (labels <kd_label> (n,7) and the matching <backend>_kd_descriptors "
                      "(n,6) needed)"),
    ("kd_label", str, "the KD gaps the KD head learns, named by backend: cf_kd_gaps, molcas_kd_gaps, orca_kd_gaps"),
    ("init_from", str, "fine-tune: start from the best.pt parameters (and vocabulary, architecture) of this run "
                       "directory; heads whose labels differ start fresh"),
    ("latent_dim", int, "latent dimension"),
    ("encoder_hidden", "list_int", "hidden sizes of the bidirectional encoder GRUs, e.g. 128,96,32"),
    ("decoder", str, "decoder: 'autoregressive' (GRU reading the previous token and z) or 'repeat' (the paper's: "
                     "z repeated into bidirectional GRUs)"),
    ("decoder_hidden", int, "decoder width: autoregressive GRU hidden size; repeat: the first BiGRU (the second "
                            "is vocabulary-wide)"),
    ("decoder_layers", int, "layers of the autoregressive decoder GRU"),
    ("proxy_hidden", int, "hidden width of the proxy head"),
    ("proxy_dropout", float, "dropout of the proxy head"),
    ("kd_hidden", "list_int", "hidden widths of the KD head, e.g. 32,8"),
    ("kd_dropout", float, "dropout of the KD head"),
    ("kl_weight", float, "alpha, weight of the (latent-dimension-normalized) KL term"),
    ("property_weight", float, "weight of the masked property MSE"),
    ("lr", float, "Adam learning rate"),
    ("grad_clip", float, "clip the gradient norm to this value (0 = no clipping)"),
    ("batch_size", int, "GLOBAL batch size (split across ranks)"),
    ("max_epochs", int, "maximum number of epochs"),
    ("max_minutes", float, "time budget of this invocation in minutes (0 = none); on expiry a checkpoint is "
                           "saved and the best parameters so far are exported"),
    ("early_stop_patience", int, "stop when the monitored loss improved by less than min_delta over this many "
                                 "epochs"),
    ("early_stop_min_delta", float, "minimum improvement for early stopping"),
    ("lr_factor", float, "ReduceLROnPlateau factor"),
    ("lr_patience", int, "ReduceLROnPlateau patience (epochs)"),
    ("lr_threshold", float, "ReduceLROnPlateau threshold (absolute)"),
    ("seed", int, "seed of initialization, data order and noise"),
    ("threads", int, "torch CPU threads per rank (0 = torch default)"),
    ("backend", str, "process-group backend: auto, gloo, nccl"),
    ("device", str, "auto, cpu or cuda"),
    ("latents_batch", int, "rows per forward pass for held-out evaluation and latents.h5"),
]


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    defaults = config.defaults().get("train", {})
    parser = argparse.ArgumentParser(
        prog="python -m gauss_hpc.train",
        description="Train the semi-supervised GAUSS SMILES VAE (single process, mpiexec -n N, srun or "
                    "torchrun). Defaults come from gauss_hpc/defaults.toml [train], then --config, then flags.",
        epilog="Exit codes: 0 done; 2 bad input; 75 stopped by SIGTERM/SIGUSR1 with a checkpoint saved "
               "(rerun with --resume).")
    parser.add_argument("--config", help="TOML file with a [train] section overriding the defaults")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/checkpoint.pt exactly where it stopped (flags given now override "
                             "the stored config, e.g. a larger --max-epochs; --lr replaces the optimizer's current "
                             "learning rate)")
    parser.add_argument("--log-every", type=int, default=50, help="log a progress line every N steps (default: 50; "
                                                                  "0 = never)")
    add_quiet(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    for key, kind, text in OPTIONS:
        default = defaults.get(key)
        if kind is bool:
            parser.add_argument(_flag(key), dest=key, action=argparse.BooleanOptionalAction, default=None,
                                help=f"{text} (default: {default})")
        elif kind == "list_int":
            parser.add_argument(_flag(key), dest=key, type=lambda s: [int(x) for x in s.split(",") if x],
                                default=None, help=f"{text} (default: {','.join(map(str, default))})")
        elif kind == "list_str":
            parser.add_argument(_flag(key), dest=key, type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                                default=None, help=f"{text} (default: {','.join(default)})")
        else:
            parser.add_argument(_flag(key), dest=key, type=kind, default=None, help=f"{text} (default: {default})")
    return parser


# --- training -----------------------------------------------------------------------------------------------

class Interrupt:
    """SIGTERM / SIGUSR1 (Slurm preemption, --signal before the time limit) only set a flag; the training loop
    acts on it at the next step boundary, on every rank together."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.signal_name: str | None = None
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def _handle(self, signum, _frame):
        self.signal_name = signal.Signals(signum).name

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)




def batch_tensors(data: Dataset, rows: np.ndarray, device: torch.device) -> dict:
    """The tensors of `rows`: tokens, and labels, masks and KD descriptors where the dataset has them."""
    idx = torch.from_numpy(rows)
    out = {"tokens": data.tokens[idx].to(device)}
    if data.labels is not None:
        out["labels"], out["label_mask"] = data.labels[idx].to(device), data.label_mask[idx].to(device)
    if data.kd_targets is not None:
        out["kd_targets"], out["kd_mask"] = data.kd_targets[idx].to(device), data.kd_mask[idx].to(device)
        out["kd_descriptors"] = data.kd_descriptors[idx].to(device)
    return out


def global_counts(data: Dataset, rows: np.ndarray, device: torch.device):
    """Labelled rows per proxy label and KD-labelled rows among `rows` (the whole global batch or split)."""
    idx = torch.from_numpy(rows)
    labels = data.label_mask[idx].sum(0).to(device) if data.label_mask is not None else None
    kd = data.kd_mask[idx].sum(0).to(device) if data.kd_mask is not None else None
    return labels, kd


class Evaluator:
    """Held-out metrics of a model, deterministic (the latent mean, greedy decoding) and all-reduced over ranks:
    the loss terms of the training objective, whole-string and per-character reconstruction, R^2 per label and
    of the KD gaps, and the active latent units."""

    def __init__(self, data: Dataset, objective: Objective, ctx: dist.DistContext, batch_rows: int):
        self.data, self.objective, self.ctx, self.batch_rows = data, objective, ctx, batch_rows

    @torch.no_grad()
    def __call__(self, model: SmilesVAE, rows: np.ndarray) -> dict:
        was_training = model.training
        model.eval()
        n_labels = len(self.data.label_names)
        n_kd = 1 if model.kd is not None else 0
        d = model.latent_dim
        # sums: the TERMS, n, char_correct, char_total, string_correct; per property / KD target block:
        # n_labelled, sum_y, sum_y2, sse; then the sum and sum of squares of mu per latent dimension
        base = len(TERMS) + 4
        n_stats = base + 4 * (n_labels + n_kd * 7)
        sums = torch.zeros(n_stats + 2 * d, dtype=torch.float64)
        label_counts, kd_count = global_counts(self.data, rows, self.ctx.device)
        start, stop = dist.share(len(rows), self.ctx.rank, self.ctx.world_size)
        mine = rows[start:stop]
        for lo in range(0, len(mine), self.batch_rows):
            batch = batch_tensors(self.data, mine[lo:lo + self.batch_rows], self.ctx.device)
            tokens = batch["tokens"]
            mu, logvar = model.encode(tokens)
            out = {"mu": mu, "logvar": logvar, "logits": model.decode_logits(mu, tokens)}
            if n_labels:
                out["proxy"] = model.predict_proxy(mu)
            if n_kd:
                out["kd"] = model.predict_kd(mu, batch["kd_descriptors"])
            terms = self.objective.terms(out, batch, len(rows), label_counts, kd_count)
            sums[:len(TERMS)] += torch.tensor([float(terms[t]) for t in TERMS], dtype=torch.float64)
            predicted = model.generate(mu)
            nonpad = tokens != 0
            sums[len(TERMS):base] += torch.tensor([len(tokens), float(((predicted == tokens) & nonpad).sum()),
                                                   float(nonpad.sum()), float((predicted == tokens).all(1).sum())],
                                                  dtype=torch.float64)
            blocks = []
            if n_labels:
                blocks.append((out["proxy"], batch["labels"], batch["label_mask"]))
            if n_kd:
                blocks.append((out["kd"], batch["kd_targets"], batch["kd_mask"].expand_as(out["kd"])))
            if blocks:
                pred = torch.cat([b[0] for b in blocks], 1).double()
                y = torch.cat([b[1] for b in blocks], 1).double()
                m = torch.cat([b[2] for b in blocks], 1).double()
                stats = torch.stack([m.sum(0), (y * m).sum(0), (y * y * m).sum(0), ((pred - y) ** 2 * m).sum(0)], 1)
                sums[base:n_stats] += stats.reshape(-1).cpu()
            sums[n_stats:n_stats + d] += mu.double().sum(0).cpu()
            sums[n_stats + d:] += mu.double().pow(2).sum(0).cpu()
        model.train(was_training)
        sums = self.ctx.all_reduce_sum(sums)
        n = max(float(sums[len(TERMS)]), 1.0)
        metrics = {f"val_{t}": float(sums[i]) for i, t in enumerate(TERMS)}
        metrics["val_char_accuracy"] = float(sums[len(TERMS) + 1]) / max(float(sums[len(TERMS) + 2]), 1.0)
        metrics["val_string_accuracy"] = float(sums[len(TERMS) + 3]) / n
        # Active units (Burda et al. 2016): latent dimensions whose mean varies over the data by more than
        # 0.01; few active units with a strong decoder is posterior collapse.
        mu_var = (sums[n_stats + d:] / n - (sums[n_stats:n_stats + d] / n) ** 2).numpy()
        metrics["val_active_units"] = float((mu_var > 0.01).sum())
        stats = sums[base:n_stats].reshape(-1, 4).numpy()
        sst = stats[:, 2] - stats[:, 1] ** 2 / np.maximum(stats[:, 0], 1)
        r2 = np.where((stats[:, 0] > 1) & (sst > 0), 1 - stats[:, 3] / np.where(sst > 0, sst, 1), np.nan)
        for j, name in enumerate(self.data.label_names):
            metrics[f"r2_{name}"] = float(r2[j])
        if n_kd:
            metrics["r2_kd_gaps_mean"] = float(np.nanmean(r2[n_labels:])) if np.isfinite(r2[n_labels:]).any() \
                else float("nan")
        return metrics


def new_model(cfg: dict, data: Dataset) -> SmilesVAE:
    """The untrained VAE the [train] settings describe, sized for the dataset's vocabulary and labels (seeded by
    cfg["seed"], so every rank starts from the same parameters)."""
    torch.manual_seed(cfg["seed"])
    return SmilesVAE(
        vocab_size=data.vocab.size, max_length=data.vocab.max_length, latent_dim=cfg["latent_dim"],
        encoder_hidden=tuple(cfg["encoder_hidden"]), decoder=cfg["decoder"],
        decoder_hidden=cfg["decoder_hidden"], decoder_layers=cfg["decoder_layers"],
        n_labels=len(data.label_names), proxy_hidden=cfg["proxy_hidden"], proxy_dropout=cfg["proxy_dropout"],
        kd_head=bool(cfg["kd_head"]), kd_hidden=tuple(cfg["kd_hidden"]), kd_dropout=cfg["kd_dropout"])


def epoch_row(epoch: int, sums: torch.Tensor, seconds: float, held_out: dict, lr: float) -> dict:
    """One history row from an epoch's global sums (loss terms x rows for TERMS, rows seen, CPU seconds of all
    ranks), its training wall time, the held-out scores and the learning rate it ran with."""
    rows_seen = max(float(sums[len(TERMS)]), 1.0)
    row = {"epoch": epoch, **{f"train_{t}": float(sums[i]) / rows_seen for i, t in enumerate(TERMS)}, **held_out}
    row.update(lr=lr, wall_seconds=seconds, samples_per_s=rows_seen / max(seconds, 1e-9))
    # CPU time of all ranks per ligand: parallel overhead independent of how loaded the machine is.
    row["cpu_seconds"] = float(sums[len(TERMS) + 1])
    row["samples_per_cpu_s"] = rows_seen / max(row["cpu_seconds"], 1e-9)
    return row


def epoch_summary(row: dict) -> str:
    """The log line of a history row."""
    held_out = ", ".join(f"{k[4:] if k.startswith('val_') else k} {v:.3f}" for k, v in row.items()
                         if k.startswith(("val_string", "val_char", "val_loss", "val_active", "r2_")))
    return (f"epoch {row['epoch']}: loss {row['train_loss']:.4f} (recon {row['train_reconstruction']:.4f}, "
            f"kl {row['train_kl']:.4f}, property {row['train_property']:.4f}) | held-out {held_out or 'none'} | "
            f"lr {row['lr']:.2e} | {row['samples_per_s']:.0f} ligands/s")


class Trainer:
    """The training loop and its state (model, optimizer, LR schedule, position in the data, early stopping,
    history): the state is what checkpoint.pt holds, so that a resumed run continues exactly."""

    def __init__(self, cfg: dict, data: Dataset, ctx: dist.DistContext, run_dir: Path, log_every: int = 50,
                 progress: bool = True):
        self.cfg, self.data, self.ctx, self.run_dir = cfg, data, ctx, run_dir
        self.log_every, self.progress = log_every, progress
        self.model = new_model(cfg, data).to(ctx.device)
        self.net = self.model
        if ctx.distributed:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg["lr"])
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=cfg["lr_factor"], patience=cfg["lr_patience"],
            threshold=cfg["lr_threshold"], threshold_mode="abs")
        self.objective = Objective(float(cfg["kl_weight"]), float(cfg["property_weight"]))
        self.evaluate = Evaluator(data, self.objective, ctx, int(cfg["latents_batch"]))
        self.stopping = EarlyStopping(int(cfg["early_stop_patience"]), float(cfg["early_stop_min_delta"]))
        self.epoch = 0
        self.step = 0                      # steps done within self.epoch
        # loss terms x rows, rows seen, CPU seconds of the training steps (summed over ranks at the epoch end)
        self.epoch_sums = torch.zeros(len(TERMS) + 2, dtype=torch.float64)
        self.epoch_seconds = 0.0           # training time spent in self.epoch so far
        self.history: list[dict] = []
        self.early_stopped = False

    # -- state ----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "format": "gauss_hpc.train",
            "model_state": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "model_hparams": dict(self.model.hparams),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": ckpt.rng_state(),
            "epoch": self.epoch, "step": self.step,
            "epoch_sums": self.epoch_sums.clone(), "epoch_seconds": self.epoch_seconds,
            **self.stopping.state(),
            "history": json.dumps(self.history), "early_stopped": self.early_stopped,
            "vocab": self.data.vocab.to_json(), "config": json.dumps(self.cfg, default=str),
            "world_size": self.ctx.world_size,
        }

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        # The partial epoch sums are global (all-reduced before saving): rank 0 carries them on.
        self.epoch_sums = state["epoch_sums"].clone() if self.ctx.is_main else torch.zeros_like(self.epoch_sums)
        self.epoch_seconds = float(state["epoch_seconds"])
        self.stopping.load(state)
        self.history = json.loads(state["history"])
        self.early_stopped = bool(state["early_stopped"])

    def save_checkpoint(self) -> None:
        state = self.state()
        state["epoch_sums"] = self.ctx.all_reduce_sum(self.epoch_sums.clone())  # collective: all ranks call
        if self.ctx.is_main:
            ckpt.save(self.run_dir / ckpt.CHECKPOINT, state)

    def save_best(self, score: float) -> None:
        if not self.ctx.is_main:
            return
        payload = ckpt.model_payload(self.model, vocab=self.data.vocab, label_names=self.data.label_names,
                                     label_mean=self.data.label_mean, label_std=self.data.label_std,
                                     config=self.cfg, kd_label_names=[self.cfg["kd_label"]] if self.model.kd else [])
        payload.update(epoch=self.epoch, score=float(score))
        if self.model.kd is not None:
            # The KD head sees standardized descriptors and predicts standardized gaps.
            payload["kd_standardization"] = {key: [float(x) for x in getattr(self.data, key)] for key in
                                             ("kd_mean", "kd_std", "kd_descriptor_mean", "kd_descriptor_std")}
            payload["kd_gap_definition"] = ckpt.KD_GAP_DEFINITION
        ckpt.save(self.run_dir / ckpt.BEST, payload)

    # -- one step -------------------------------------------------------------------------------------------
    def train_step(self, global_rows: np.ndarray) -> None:
        n_global = len(global_rows)
        start, stop = dist.share(n_global, self.ctx.rank, self.ctx.world_size)
        # A rank without rows in a short last batch still joins the gradient all-reduce, with weight 0.
        weight = 1.0 if stop > start else 0.0
        local = global_rows[start:stop] if stop > start else global_rows[:1]
        noise = BatchNoise.draw(self.model, n_global, self.cfg["seed"], self.epoch, self.step)
        noise = noise.rows(start, start + len(local), self.ctx.device)
        batch = batch_tensors(self.data, local, self.ctx.device)
        label_counts, kd_count = global_counts(self.data, global_rows, self.ctx.device)
        out = self.net(batch["tokens"], noise, batch.get("kd_descriptors"))
        terms = self.objective.terms(out, batch, n_global, label_counts, kd_count)
        self.optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over ranks; the terms are already partial sums of the global mean.
        (terms["loss"] * (weight * self.ctx.world_size)).backward()
        if self.cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg["grad_clip"])
        self.optimizer.step()
        with torch.no_grad():
            values = torch.tensor([float(terms[t]) * weight * n_global for t in TERMS] + [weight * len(local), 0.0],
                                  dtype=torch.float64)
        self.epoch_sums += values

    # -- the loop -------------------------------------------------------------------------------------------
    def _end_epoch(self) -> bool:
        """Metrics, history, LR schedule, best parameters, early stopping. Returns True to stop."""
        held_out = self.evaluate(self.model, self.data.test_rows) if len(self.data.test_rows) else {}
        row = epoch_row(self.epoch, self.ctx.all_reduce_sum(self.epoch_sums), self.epoch_seconds, held_out,
                        self.optimizer.param_groups[0]["lr"])
        monitored = row["val_loss"] if held_out else row["train_loss"]
        self.history.append(row)
        self.scheduler.step(monitored)
        is_best, stop = self.stopping.update(self.epoch, monitored)
        if is_best:
            self.save_best(monitored)
        if self.ctx.is_main:
            log.info("%s", epoch_summary(row))
            store.write_history(self.run_dir / ckpt.HISTORY, _history_columns(self.history), config=self.cfg,
                                sources=[self.cfg["ligands"]])
        self.epoch += 1
        self.step = 0
        self.epoch_sums.zero_()
        self.epoch_seconds = 0.0
        if stop and self.ctx.is_main:
            log.info("early stop: the loss improved by less than %g over %d epochs; best epoch %d (%.4f)",
                     self.stopping.min_delta, self.stopping.patience, self.stopping.best_epoch,
                     self.stopping.best_score)
        return stop

    def run(self, interrupt: Interrupt) -> str:
        """Train until max_epochs, early stop, time budget or a signal. Returns why it stopped:
        "finished", "budget" or "signal"."""
        t_start = time.monotonic()
        budget = float(self.cfg["max_minutes"]) * 60.0
        batch_size = int(self.cfg["batch_size"])
        self.model.train()
        while not self.early_stopped and self.epoch < self.cfg["max_epochs"]:
            order = epoch_order(self.data.train_rows, self.cfg["seed"], self.epoch)
            n_steps = math.ceil(len(order) / batch_size)
            bar = tqdm(total=n_steps, initial=self.step, desc=f"epoch {self.epoch}", unit="batch", leave=False,
                       disable=not (self.progress and self.ctx.is_main), mininterval=2.0)
            while self.step < n_steps:
                # Step boundary: every rank takes the same decision.
                out_of_time = budget > 0 and time.monotonic() - t_start > budget
                if self.ctx.any(interrupt.signal_name is not None or out_of_time):
                    bar.close()
                    self.save_checkpoint()
                    reason = "signal" if self.ctx.any(interrupt.signal_name is not None) else "budget"
                    if self.ctx.is_main:
                        log.warning("%s at epoch %d step %d/%d: checkpoint saved to %s; continue with --resume",
                                    f"received {interrupt.signal_name}" if interrupt.signal_name else
                                    ("stop requested by another rank" if reason == "signal" else
                                     f"time budget of {self.cfg['max_minutes']} min reached"),
                                    self.epoch, self.step, n_steps, self.run_dir / ckpt.CHECKPOINT)
                    return reason
                t0, cpu0 = time.monotonic(), time.process_time()
                self.train_step(order[self.step * batch_size:(self.step + 1) * batch_size])
                self.epoch_seconds += time.monotonic() - t0
                self.epoch_sums[-1] += time.process_time() - cpu0
                self.step += 1
                bar.update(1)
                if self.ctx.is_main and self.log_every and self.step % self.log_every == 0:
                    log.info("epoch %d step %d/%d", self.epoch, self.step, n_steps)
            bar.close()
            self.early_stopped = self._end_epoch()
            self.save_checkpoint()
        return "finished"

    @torch.no_grad()
    def latents(self) -> tuple[np.ndarray, np.ndarray]:
        """mu and logvar of every ligand of the file (rows split across ranks, summed into place)."""
        self.model.eval()
        n = len(self.data.tokens)
        full = torch.zeros(n, 2 * self.model.latent_dim, dtype=torch.float64)
        start, stop = dist.share(n, self.ctx.rank, self.ctx.world_size)
        step = self.cfg["latents_batch"]
        for lo in range(start, stop, step):
            hi = min(lo + step, stop)
            mu, logvar = self.model.encode(self.data.tokens[lo:hi].to(self.ctx.device))
            full[lo:hi] = torch.cat([mu, logvar], 1).double().cpu()
        full = self.ctx.all_reduce_sum(full)
        d = self.model.latent_dim
        return full[:, :d].float().numpy(), full[:, d:].float().numpy()


def _history_columns(history: list[dict]) -> dict:
    keys = list(dict.fromkeys(k for row in history for k in row))
    return {k: np.asarray([row.get(k, np.nan) for row in history], dtype=np.float64 if k != "epoch" else np.int64)
            for k in keys}


# --- entry point --------------------------------------------------------------------------------------------

def _resolve_config(args: argparse.Namespace) -> tuple[dict, float | None]:
    """Defaults < --config file < flags; with --resume the run's stored config.toml replaces the first two.
    Returns the config and, when resuming, a --lr that differs from the run's own (it replaces the optimizer's
    possibly reduced rate; the same --lr again, as a driver that repeats its flags passes it, changes nothing)."""
    overrides = {key: getattr(args, key) for key, _, _ in OPTIONS}
    cfg = config.load("train", args.config, overrides)
    if not args.resume:
        return cfg, None
    if args.config:
        raise InputError("--resume continues with the run's stored config.toml; override single settings "
                         "with flags instead of --config")
    stored = Path(cfg["out"]) / ckpt.CONFIG
    if not stored.is_file():
        raise InputError(f"{stored} not found: --resume needs the --out directory of an earlier run")
    stored_lr = float(config.load("train", stored)["lr"])
    cfg = config.load("train", stored, overrides)
    return cfg, (float(args.lr) if args.lr is not None and float(args.lr) != stored_lr else None)


def _check_config(cfg: dict) -> None:
    positive = ["latent_dim", "decoder_hidden", "decoder_layers", "proxy_hidden", "batch_size", "max_epochs", "latents_batch",
                "early_stop_patience"]
    bad = [k for k in positive if int(cfg[k]) < 1]
    bad += [k for k in ("proxy_dropout", "kd_dropout") if not 0 <= float(cfg[k]) < 1]
    bad += [k for k in ("train_size", "labelled_size", "eval_size", "threads", "max_minutes", "kl_weight",
                        "property_weight", "grad_clip") if float(cfg[k]) < 0]
    if cfg["decoder"] not in DECODERS:
        bad.append(f"decoder ({' or '.join(DECODERS)})")
    if not cfg["encoder_hidden"] or min(cfg["encoder_hidden"]) < 1:
        bad.append("encoder_hidden")
    if len(cfg["kd_hidden"]) != 2:
        bad.append("kd_hidden (two widths)")
    if cfg["backend"] not in ("auto", "gloo", "nccl"):
        bad.append("backend")
    if cfg["device"] not in ("auto", "cpu", "cuda"):
        bad.append("device")
    if bad:
        raise InputError(f"invalid [train] settings: {', '.join(bad)}; see python -m gauss_hpc.train --help")


def _setup_logging(rank: int, verbose: bool) -> None:
    level = logging.DEBUG if verbose else (logging.INFO if rank == 0 else logging.WARNING)
    logging.basicConfig(level=level, stream=sys.stderr, force=True,
                        format=f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s")


def fine_tune_start(cfg: dict) -> tuple[dict, dict]:
    """(cfg with the architecture of the run it starts from, that run's best.pt payload)."""
    source = Path(cfg["init_from"]) / ckpt.BEST
    try:
        start = ckpt.load(source, "cpu", required=("model_state", "model_hparams", "vocab"))
    except ckpt.CheckpointError as exc:
        raise InputError(f"init_from: {exc}") from None
    hparams = start["model_hparams"]
    return {**cfg, **{key: hparams[key] for key in ARCHITECTURE if key in hparams}}, start


def load_matching(model: torch.nn.Module, source: dict) -> list[str]:
    """Copy every parameter of `source` whose name and shape match into `model`; the names left as initialised."""
    own = model.state_dict()
    matching = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matching, strict=False)
    return [k for k in own if k not in matching]


def train(cfg: dict, *, resume: bool = False, log_every: int = 50, progress: bool = True,
          ctx: dist.DistContext | None = None, lr_override: float | None = None) -> int:
    """Library entry: train with a complete [train] config. Returns the exit code. With `resume`,
    `lr_override` replaces the learning rate stored in the optimizer state."""
    _check_config(cfg)
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    interrupt = Interrupt()
    own_ctx = ctx is None
    ctx = ctx or dist.init(cfg["backend"], cfg["device"])
    try:
        return _train_in(cfg, ctx, interrupt, resume, log_every, progress, lr_override)
    finally:
        interrupt.restore()
        if own_ctx:
            # The DDP wrapper holds the process group: it must be gone (with _train_in's frame; gc for its
            # cycles) before the group is destroyed. Otherwise the group outlives destroy_process_group and gloo
            # tears it down during interpreter exit, which aborted a rank once in CI ("terminate called without
            # an active exception", exit 6, after "done").
            gc.collect()
            ctx.close()


def _train_in(cfg: dict, ctx: dist.DistContext, interrupt: Interrupt, resume: bool, log_every: int,
              progress: bool, lr_override: float | None) -> int:
    """train() inside its distributed context; every object that holds the process group lives in this frame."""
    run_dir = Path(cfg["out"])
    state = None
    if resume:
        state = ckpt.load(run_dir / ckpt.CHECKPOINT, "cpu", required=("optimizer", "scheduler", "rng", "vocab"))
        vocab = Vocabulary.from_json(state["vocab"])
    elif (run_dir / ckpt.CHECKPOINT).exists():
        raise InputError(f"{run_dir / ckpt.CHECKPOINT} exists: continue it with --resume, or choose another --out")
    else:
        vocab = None
    start = None
    if cfg["init_from"] and state is None:
        cfg, start = fine_tune_start(cfg)
        vocab = Vocabulary.from_json(start["vocab"])
    data = load_dataset(cfg, vocab)
    if ctx.is_main:
        log.info("%s launch, %d rank(s), backend %s, device %s; %d ligands (%d training, %d held out scored), "
                 "vocabulary %d tokens x %d positions", ctx.launch.launcher, ctx.world_size, ctx.backend,
                 ctx.device, len(data.tokens), len(data.train_rows), len(data.test_rows), data.vocab.size,
                 data.vocab.max_length)
        run_dir.mkdir(parents=True, exist_ok=True)
        store.atomic_write_text(run_dir / ckpt.CONFIG, config.dumps(cfg, "train"))
        store.atomic_write_text(run_dir / ckpt.VOCAB, data.vocab.to_json())
        ckpt.write_training_ligands(run_dir, data.canonical)
    trainer = Trainer(cfg, data, ctx, run_dir, log_every=log_every, progress=progress)
    if start is not None:
        fresh = load_matching(trainer.model, start["model_state"])
        if ctx.is_main:
            log.info("fine-tuning from %s; started fresh (shapes or heads differ): %s", cfg["init_from"],
                     sorted({name.split(".")[0] for name in fresh}) or "nothing")
    if state is not None:
        trainer.restore(state)
        if ctx.is_main:
            log.info("resumed from %s at epoch %d step %d", run_dir / ckpt.CHECKPOINT, trainer.epoch,
                     trainer.step)
        if lr_override is not None:
            # The optimizer state carries the (possibly reduced) learning rate; an explicit --lr replaces it.
            for group in trainer.optimizer.param_groups:
                group["lr"] = float(lr_override)
            if ctx.is_main:
                log.info("learning rate set to %g (--lr given with --resume)", lr_override)
    reason = trainer.run(interrupt)
    if reason == "signal":
        return EXIT_INTERRUPTED
    if trainer.stopping.best_epoch < 0:
        # A time budget shorter than one epoch: export the current parameters as the best so far.
        trainer.save_best(float("nan"))
    ctx.barrier()
    best = ckpt.load(run_dir / ckpt.BEST, ctx.device)
    trainer.model.load_state_dict(best["model_state"])
    mu, logvar = trainer.latents()
    if ctx.is_main:
        store.write_latents(run_dir / ckpt.LATENTS, mu, logvar, np.arange(len(mu)), data.canonical,
                            Path(cfg["ligands"]).resolve(), config=cfg, sources=[cfg["ligands"]])
        log.info("done (%s): best epoch %d, monitored loss %.4f; outputs in %s", reason,
                 trainer.stopping.best_epoch, trainer.stopping.best_score, run_dir)
    ctx.barrier()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(dist.detect().rank, args.verbose)

    def body() -> int:
        try:
            cfg, lr_override = _resolve_config(args)
        except (ValueError, FileNotFoundError) as exc:         # the config file or a flag
            raise InputError(str(exc)) from exc
        try:
            return train(cfg, resume=args.resume, log_every=args.log_every, progress=not args.quiet,
                         lr_override=lr_override)
        except ckpt.CheckpointError as exc:     # every rank reads the same checkpoint file, with the same result
            raise InputError(str(exc)) from exc

    return dist.run_main("gauss_hpc.train", body)


if __name__ == "__main__":
    sys.exit(main())
