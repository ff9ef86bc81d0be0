"""The GAUSS SMILES VAE: bidirectional GRU encoder over one-hot SMILES -> (mu, log sigma^2) of the latent;
a decoder (`decoders.py`: the paper's repeat-vector BiGRU or an autoregressive GRU) back to SMILES tokens;
proxy and KD heads on the latent mean."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import decoders
from .heads import KDHead, ProxyHead


@dataclass
class BatchNoise:
    """Every random draw of one training step for a set of rows: reparameterization eps and dropout masks.
    Drawn for the global batch from (seed, epoch, step) and sliced per rank, so results do not depend on the
    number of ranks, and a resumed run draws exactly what the uninterrupted run drew."""
    eps: torch.Tensor
    proxy_keep: torch.Tensor | None = None
    kd_keep: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def draw(cls, model: "SmilesVAE", n_rows: int, seed: int, epoch: int, step: int) -> "BatchNoise":
        state = np.random.SeedSequence([seed, epoch, step]).generate_state(2, dtype=np.uint64)
        gen = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
        eps = torch.randn(n_rows, model.latent_dim, generator=gen)
        proxy_keep = kd_keep = None
        if model.proxy is not None and model.proxy.dropout_p > 0:
            proxy_keep = torch.rand(n_rows, model.proxy.hidden, generator=gen) >= model.proxy.dropout_p
        if model.kd is not None and model.kd.dropout_p > 0:
            h1, h2 = model.kd.hidden
            kd_keep = (torch.rand(n_rows, h1, generator=gen) >= model.kd.dropout_p,
                       torch.rand(n_rows, h2, generator=gen) >= model.kd.dropout_p)
        return cls(eps, proxy_keep, kd_keep)

    def rows(self, start: int, stop: int, device: torch.device | str = "cpu") -> "BatchNoise":
        def cut(t):
            return None if t is None else t[start:stop].to(device)
        kd = None if self.kd_keep is None else (cut(self.kd_keep[0]), cut(self.kd_keep[1]))
        return BatchNoise(cut(self.eps), cut(self.proxy_keep), kd)


class SmilesVAE(nn.Module):
    def __init__(self, vocab_size: int, max_length: int, latent_dim: int = 32,
                 encoder_hidden: tuple[int, ...] = (128, 96, 32), decoder: str = "repeat",
                 decoder_hidden: int = 128, decoder_layers: int = 2,
                 n_labels: int = 0, proxy_hidden: int = 32, proxy_dropout: float = 0.2,
                 kd_head: bool = False, kd_descriptors: int = 6, kd_hidden: tuple[int, int] = (32, 8),
                 kd_outputs: int = 7, kd_dropout: float = 0.005):
        super().__init__()
        if vocab_size < 2 or max_length < 1 or latent_dim < 1 or not encoder_hidden:
            raise ValueError(f"invalid VAE sizes: vocab_size={vocab_size}, max_length={max_length}, "
                             f"latent_dim={latent_dim}, encoder_hidden={encoder_hidden}")
        # Everything needed to rebuild the model from a checkpoint (plain ints/floats/lists).
        self.hparams = dict(vocab_size=vocab_size, max_length=max_length, latent_dim=latent_dim,
                            encoder_hidden=list(encoder_hidden), decoder=decoder, decoder_hidden=decoder_hidden,
                            decoder_layers=decoder_layers,
                            n_labels=n_labels, proxy_hidden=proxy_hidden, proxy_dropout=proxy_dropout,
                            kd_head=kd_head, kd_descriptors=kd_descriptors, kd_hidden=list(kd_hidden),
                            kd_outputs=kd_outputs, kd_dropout=kd_dropout)
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.latent_dim = latent_dim
        layers, width = [], vocab_size
        for hidden in encoder_hidden:
            layers.append(nn.GRU(width, hidden, batch_first=True, bidirectional=True))
            width = 2 * hidden
        self.encoder = nn.ModuleList(layers)
        self.to_mu = nn.Linear(width, latent_dim)
        self.to_logvar = nn.Linear(width, latent_dim)
        self.decoder = decoders.build(decoder, latent_dim, vocab_size, max_length, decoder_hidden, decoder_layers)
        self.proxy = ProxyHead(latent_dim, n_labels, proxy_hidden, proxy_dropout) if n_labels > 0 else None
        self.kd = (KDHead(latent_dim, kd_descriptors, tuple(kd_hidden), kd_outputs, kd_dropout)
                   if kd_head else None)

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token indices (B, L) (pad = 0) -> (mu, logvar), each (B, latent_dim)."""
        if tokens.dim() != 2 or tokens.shape[1] != self.max_length:
            raise ValueError(f"encode expects token indices of shape (batch, {self.max_length}), "
                             f"got {tuple(tokens.shape)}")
        x = nn.functional.one_hot(tokens.long(), self.vocab_size).float()
        for gru in self.encoder:
            x, last = gru(x)
        features = torch.cat([last[0], last[1]], dim=-1)  # final forward and backward states
        return self.to_mu(features), self.to_logvar(features)

    def decode_logits(self, z: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, vocab_size) of the target tokens given z (teacher forcing where the decoder reads
        previous tokens): what the reconstruction loss scores."""
        return self.decoder.logits(z, tokens)

    def generate(self, z: torch.Tensor, uniforms: torch.Tensor | None = None, temperature: float = 1.0,
                 prefix: torch.Tensor | None = None, matmul_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Token indices (B, L) decoded from latent points: greedy, or sampled at `temperature` from the
        uniforms (B, L) the caller draws; `prefix` (B, P) forces the first tokens (-1: free), autoregressive only;
        `matmul_dtype` the type of the decoder's matrix products (float32 or bfloat16)."""
        return self.decoder.generate(z, uniforms, temperature, prefix, matmul_dtype)

    def predict_proxy(self, mu: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Standardized proxy-label predictions (B, n_labels) from the latent mean."""
        if self.proxy is None:
            raise RuntimeError("this model has no proxy head (it was trained without property labels)")
        return self.proxy(mu, keep)

    def predict_kd(self, mu: torch.Tensor, descriptors: torch.Tensor,
                   keep: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.kd is None:
            raise RuntimeError("this model has no KD head (train with kd_head = true)")
        return self.kd(mu, descriptors, keep)

    def forward(self, tokens: torch.Tensor, noise: BatchNoise | None = None,
                descriptors: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(tokens)
        eps = noise.eps if noise is not None else torch.randn_like(mu)
        z = mu + eps * torch.exp(0.5 * logvar)  # reparameterization trick
        out = {"mu": mu, "logvar": logvar, "logits": self.decode_logits(z, tokens)}
        if self.proxy is not None:
            out["proxy"] = self.predict_proxy(mu, noise.proxy_keep if noise is not None else None)
        if self.kd is not None:
            if descriptors is None:
                raise ValueError("the KD head needs the structural descriptors of each row")
            out["kd"] = self.predict_kd(mu, descriptors, noise.kd_keep if noise is not None else None)
        return out
