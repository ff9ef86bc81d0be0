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
                 prefix: torch.Tensor | None = None, matmul_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if prefix is not None:
            raise ValueError("a forced prefix (keep_donor) needs the autoregressive decoder: the repeat decoder "
                             "writes every position from z at once, so the rest could not be conditioned on it")
        with torch.autocast(z.device.type, dtype=matmul_dtype, enabled=matmul_dtype != torch.float32):
            logits = self.logits(z)
        return pick(logits.float(), uniforms, temperature)


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
                 prefix: torch.Tensor | None = None, matmul_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """prefix (B, P): the token written at each of the first P positions instead of the decoder's choice
        (-1: the decoder chooses); later positions read it as their previous token. matmul_dtype: the type of
        the step's matrix products (bfloat16 is faster where the CPU has it natively, bench/decode_precision.py;
        accumulated in float32, each result rounded to bfloat16); the state and the gates stay float32."""
        n = len(z)
        step = _GenerationStep(self, z, matmul_dtype)
        h = list(self._initial_state(z))
        out = torch.zeros(n, self.max_length, dtype=torch.long, device=z.device)
        # Only the strings still being written take part in a step (they end at their first padding token):
        # the cost follows the mean length, not the longest string of the batch.
        active = torch.arange(n, device=z.device)
        token = torch.full((n,), self.start, dtype=torch.long, device=z.device)
        z_gates = step.z_gates
        for t in range(self.max_length):
            logits = step(token, z_gates, h)
            token = pick(logits, None if uniforms is None else uniforms[active, t], temperature)
            if prefix is not None and t < prefix.shape[1]:
                forced = prefix[active, t]
                token = torch.where(forced >= 0, forced, token)
            out[active, t] = token
            going = token != 0
            if not bool(going.all()):
                if not bool(going.any()):
                    break
                active, token, z_gates = active[going], token[going], z_gates[going]
                h = [state[going] for state in h]
        return out


class _GenerationStep:
    """One token of generation, the GRU's cell written out so that the first layer costs no product: its input
    [embedding of the previous token, z] splits into a table of the vocabulary's gate inputs and a part fixed
    per string, both computed once. Same gate equations and order (r, z, n) as torch.nn.GRU."""

    def __init__(self, decoder: AutoregressiveDecoder, z: torch.Tensor, matmul_dtype: torch.dtype):
        gru, width = decoder.gru, decoder.embed.embedding_dim
        w_ih0 = gru.weight_ih_l0
        self.token_gates = decoder.embed.weight @ w_ih0[:, :width].t()               # (V + 1, 3H)
        self.z_gates = torch.addmm(gru.bias_ih_l0, z, w_ih0[:, width:].t())         # (B, 3H)
        self.dtype = matmul_dtype
        cast = lambda w: w.t().to(matmul_dtype).contiguous()                         # noqa: E731
        self.w_hh = [cast(getattr(gru, f"weight_hh_l{k}")) for k in range(gru.num_layers)]
        self.b_hh = [getattr(gru, f"bias_hh_l{k}") for k in range(gru.num_layers)]
        self.w_ih = [None] + [cast(getattr(gru, f"weight_ih_l{k}")) for k in range(1, gru.num_layers)]
        self.b_ih = [None] + [getattr(gru, f"bias_ih_l{k}") for k in range(1, gru.num_layers)]
        self.w_out, self.b_out = cast(decoder.to_logits.weight), decoder.to_logits.bias

    def product(self, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if self.dtype == torch.float32:
            return torch.addmm(bias, x, w)
        return torch.mm(x.to(self.dtype), w).float() + bias

    def cell(self, gates_x: torch.Tensor, h: torch.Tensor, layer: int) -> torch.Tensor:
        gates_h = self.product(h, self.w_hh[layer], self.b_hh[layer])
        x_r, x_z, x_n = gates_x.chunk(3, dim=1)
        h_r, h_z, h_n = gates_h.chunk(3, dim=1)
        reset, update = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        return candidate + update * (h - candidate)

    def __call__(self, token: torch.Tensor, z_gates: torch.Tensor, h: list[torch.Tensor]) -> torch.Tensor:
        """Logits of the next token; updates h (one (B, H) state per layer) in place of the list."""
        h[0] = self.cell(self.token_gates[token] + z_gates, h[0], 0)
        for layer in range(1, len(h)):
            h[layer] = self.cell(self.product(h[layer - 1], self.w_ih[layer], self.b_ih[layer]), h[layer], layer)
        return self.product(h[-1], self.w_out, self.b_out)


def build(kind: str, latent_dim: int, vocab_size: int, max_length: int, hidden: int, layers: int) -> nn.Module:
    if kind == "repeat":
        return RepeatDecoder(latent_dim, vocab_size, max_length, hidden)
    if kind == "autoregressive":
        return AutoregressiveDecoder(latent_dim, vocab_size, max_length, hidden, layers)
    raise ValueError(f"unknown decoder {kind!r}; choose one of {DECODERS}")
