"""SMILES vocabularies for the VAE: character-level as in the paper (padded with spaces to the longest string)
or atom-level (bracket atoms, Cl, Br and ring-bond %nn as one token). Encode/decode round-trip exactly."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

PAD = " "
_ATOM_TOKEN = re.compile(r"(\[[^\]]+\]|Br|Cl|%\d\d|.)")


def tokenize(smiles: str, kind: str = "char") -> list[str]:
    if kind == "char":
        return list(smiles)
    if kind == "atom":
        return _ATOM_TOKEN.findall(smiles)
    raise ValueError(f"unknown tokenizer {kind!r}; use 'char' or 'atom'")


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]       # tokens[0] is the pad
    max_length: int
    kind: str = "char"

    @classmethod
    def build(cls, smiles: Iterable[str], kind: str = "char", max_length: int | None = None) -> "Vocabulary":
        seen: set[str] = set()
        longest = 0
        for s in smiles:
            toks = tokenize(s, kind)
            if PAD in toks:
                raise ValueError(f"SMILES {s!r} contains a space, which is the padding token")
            seen.update(toks)
            longest = max(longest, len(toks))
        if not seen:
            raise ValueError("cannot build a vocabulary from an empty SMILES list")
        return cls(tokens=(PAD, *sorted(seen)), max_length=max_length or longest, kind=kind)

    @property
    def size(self) -> int:
        return len(self.tokens)

    @property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def encode(self, smiles: Sequence[str]) -> np.ndarray:
        """Token indices (n, max_length), padded with 0. Unknown tokens or too-long strings raise ValueError
        naming the SMILES; use `encodable` to filter first."""
        index = self.index
        out = np.zeros((len(smiles), self.max_length), dtype=np.int64)
        for row, s in enumerate(smiles):
            toks = tokenize(s, self.kind)
            if len(toks) > self.max_length:
                raise ValueError(f"SMILES {s!r} has {len(toks)} tokens; the vocabulary allows {self.max_length}")
            try:
                out[row, :len(toks)] = [index[t] for t in toks]
            except KeyError as exc:
                raise ValueError(f"SMILES {s!r} has token {exc.args[0]!r} outside the vocabulary") from None
        return out

    def encodable(self, smiles: str) -> bool:
        toks = tokenize(smiles, self.kind)
        index = self.index
        return len(toks) <= self.max_length and all(t in index for t in toks)

    def decode(self, indices: np.ndarray) -> list[str]:
        """Strings from token indices; trailing padding removed (inner pads stay, so RDKit rejects them)."""
        tokens = np.asarray(self.tokens, dtype=object)
        return ["".join(tokens[np.asarray(row)]).rstrip(PAD) for row in np.atleast_2d(indices)]

    def to_json(self) -> str:
        return json.dumps({"tokens": list(self.tokens), "max_length": self.max_length, "kind": self.kind})

    @classmethod
    def from_json(cls, text: str) -> "Vocabulary":
        data = json.loads(text)
        return cls(tokens=tuple(data["tokens"]), max_length=int(data["max_length"]), kind=data["kind"])
