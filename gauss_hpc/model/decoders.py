"""The two SMILES decoders of the VAE, chosen by `[train] decoder`.

- `RepeatDecoder` (the paper's): z repeated over the sequence into bidirectional GRUs; every position is
  predicted at once from z alone.
- `AutoregressiveDecoder` (as the MOSES VAE): a GRU that reads the previous token and z at every step, with z
  also giving its initial state; trained with teacher forcing, generated one token at a time.

Both offer `logits(z, tokens)` (the training loss; the repeat decoder ignores the tokens) and
`generate(z, uniforms, temperature, prefix)` (token indices: greedy argmax without uniforms, else one draw per
position from the caller's uniforms, so the draws belong to the caller's random stream; the autoregressive decoder
can be given the first tokens, `prefix`, and writes the rest conditioned on them). Padding (index 0) ends a string:
once an autoregressive string has written it, every later position is padding.
"""

from __future__ import annotations

import torch
from torch import nn

DECODERS = ("repeat", "autoregressive")


def pick(logits: torch.Tensor, uniforms: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """Token indices from logits (..., V): argmax, or inverse-CDF draws of softmax(logits / T) from uniforms."""
    if uniforms is None:
        return logits.argmax(dim=-1)
    cdf = torch.softmax(logits.float() / temperature, dim=-1).cumsum(dim=-1)
    return (uniforms.to(cdf.dtype).unsqueeze(-1) > cdf).sum(dim=-1).clamp_(max=cdf.shape[-1] - 1)


class RepeatDecoder(nn.Module):
    def __init__(self, latent_dim: int, vocab_size: int, max_length: int, hidden: int):
        super().__init__()
        self.max_length = max_length
        self.decoder1 = nn.GRU(latent_dim, hidden, batch_first=True, bidirectional=True)
        # The second decoder GRU is as wide as the vocabulary, as in the paper.
        self.decoder2 = nn.GRU(2 * hidden, vocab_size, batch_first=True, bidirectional=True)
        self.to_logits = nn.Linear(2 * vocab_size, vocab_size)

    def logits(self, z: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        x = z.unsqueeze(1).expand(-1, self.max_length, -1)
        x, _ = self.decoder1(x)
        x, _ = self.decoder2(x)
        return self.to_logits(x)

    def generate(self, z: torch.Tensor, uniforms: torch.Tensor | None = None, temperature: float = 1.0,
                 prefix: torch.Tensor | None = None) -> torch.Tensor:
        if prefix is not None:
            raise ValueError("a forced prefix (keep_donor) needs the autoregressive decoder: the repeat decoder "
                             "writes every position from z at once, so the rest could not be conditioned on it")
        return pick(self.logits(z), uniforms, temperature)


class AutoregressiveDecoder(nn.Module):
    def __init__(self, latent_dim: int, vocab_size: int, max_length: int, hidden: int, layers: int = 2,
                 embedding: int = 32):
        super().__init__()
        self.vocab_size, self.max_length, self.layers, self.hidden = vocab_size, max_length, layers, hidden
        self.start = vocab_size            # the start-of-string token, an embedding row of its own
        self.embed = nn.Embedding(vocab_size + 1, embedding)
        self.initial = nn.Linear(latent_dim, layers * hidden)
        self.gru = nn.GRU(embedding + latent_dim, hidden, num_layers=layers, batch_first=True)
        self.to_logits = nn.Linear(hidden, vocab_size)

    def _initial_state(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.initial(z)).view(len(z), self.layers, self.hidden)
        return h.transpose(0, 1).contiguous()

    def logits(self, z: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: position t reads the true token t-1 (the start token at t = 0)."""
        if tokens is None:
            raise ValueError("the autoregressive decoder needs the target tokens for teacher forcing; "
                             "use generate(z) to decode latent points")
        start = torch.full((len(tokens), 1), self.start, dtype=torch.long, device=tokens.device)
        previous = torch.cat([start, tokens[:, :-1].long()], dim=1)
        x = torch.cat([self.embed(previous), z.unsqueeze(1).expand(-1, tokens.shape[1], -1)], dim=-1)
        out, _ = self.gru(x, self._initial_state(z))
        return self.to_logits(out)

    def generate(self, z: torch.Tensor, uniforms: torch.Tensor | None = None, temperature: float = 1.0,
                 prefix: torch.Tensor | None = None) -> torch.Tensor:
        """prefix (B, P): the token written at each of the first P positions instead of the decoder's choice
        (-1: the decoder chooses); later positions read it as their previous token."""
        n = len(z)
        h = self._initial_state(z)
        out = torch.zeros(n, self.max_length, dtype=torch.long, device=z.device)
        # Only the strings still being written take part in a step (they end at their first padding token):
        # the cost follows the mean length, not the longest string of the batch.
        active = torch.arange(n, device=z.device)
        token = torch.full((n,), self.start, dtype=torch.long, device=z.device)
        zin = z.unsqueeze(1)
        for t in range(self.max_length):
            x = torch.cat([self.embed(token).unsqueeze(1), zin], dim=-1)
            y, h = self.gru(x, h)
            token = pick(self.to_logits(y[:, 0]), None if uniforms is None else uniforms[active, t], temperature)
            if prefix is not None and t < prefix.shape[1]:
                forced = prefix[active, t]
                token = torch.where(forced >= 0, forced, token)
            out[active, t] = token
            going = token != 0
            if not bool(going.all()):
                if not bool(going.any()):
                    break
                active, token, zin, h = active[going], token[going], zin[going], h[:, going].contiguous()
        return out


def build(kind: str, latent_dim: int, vocab_size: int, max_length: int, hidden: int, layers: int) -> nn.Module:
    if kind == "repeat":
        return RepeatDecoder(latent_dim, vocab_size, max_length, hidden)
    if kind == "autoregressive":
        return AutoregressiveDecoder(latent_dim, vocab_size, max_length, hidden, layers)
    raise ValueError(f"unknown decoder {kind!r}; choose one of {DECODERS}")
