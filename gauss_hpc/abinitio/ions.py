"""The ground J multiplet of a trivalent lanthanide, from its 4f count by Hund's rules: what the crystal field,
the CASSCF inputs (active electrons, roots, SINGLE_ANISO groups) and the parsers (Kramers doublets or
pseudo-doublets) need to know about an ion, written once."""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

from .constants import LANTHANIDES

F_ELECTRONS = {symbol: n for n, symbol in enumerate(LANTHANIDES)}      # 4f electrons of the trivalent ion
_TERM_LETTER = "SPDFGHIKLMN"


@dataclass(frozen=True)
class GroundTerm:
    """Hund's-rule ground term 2S+1 L_J of 4f^n."""

    n_f: int
    S: float
    L: int
    J: float

    @property
    def label(self) -> str:
        j = f"{round(2 * self.J)}/2" if self.kramers else str(round(self.J))
        return f"{round(2 * self.S + 1)}{_TERM_LETTER[self.L]}{j}"

    @property
    def kramers(self) -> bool:
        """An odd electron count: every level of the multiplet a Kramers doublet."""
        return self.n_f % 2 == 1

    @property
    def n_states(self) -> int:
        return round(2 * self.J) + 1

    @property
    def n_doublets(self) -> int:
        """Kramers doublets, or for an integer J the pseudo-doublets (levels paired in energy order, the last
        level alone when 2J + 1 is odd)."""
        return (self.n_states + 1) // 2

    @property
    def aniso_groups(self) -> int:
        """Pseudospin-1/2 groups SINGLE_ANISO is asked for: every Kramers doublet, or every pseudo-doublet
        without the lone last level of an integer J."""
        return self.n_doublets if self.kramers else self.n_states // 2

    @property
    def g_J(self) -> float:
        S, L, J = self.S, self.L, self.J
        return 1.0 + (J * (J + 1) + S * (S + 1) - L * (L + 1)) / (2 * J * (J + 1)) if J else 0.0

    @property
    def high_spin_roots(self) -> int:
        """Every state of the highest spin in CAS(n, 7): the paper's roots (Dy 21 sextets, Er 35 quartets)."""
        return comb(7, min(self.n_f, 14 - self.n_f))

    @property
    def term_roots(self) -> int:
        """The 2L + 1 roots of the ground term alone (the cheap CASSCF: Dy 11 of 6H, Er 13 of 4I)."""
        return 2 * self.L + 1


def hund_ground_term(n_f: int) -> GroundTerm:
    """The ground term of 4f^n by Hund's rules (J = |L - S| below half filling, L + S above)."""
    if not 1 <= n_f <= 13:
        raise ValueError(f"4f^{n_f}: expected 1 to 13 electrons")
    ml = [3, 2, 1, 0, -1, -2, -3]
    spin = min(n_f, 14 - n_f) / 2
    orbital = abs(sum(ml[: n_f if n_f <= 7 else n_f - 7]))
    total = abs(orbital - spin) if n_f < 7 else orbital + spin
    return GroundTerm(n_f, spin, orbital, total)


def ground_term(metal: str) -> GroundTerm:
    """The ground term of a trivalent lanthanide Ce to Yb; ValueError naming the metal otherwise."""
    if F_ELECTRONS.get(metal, 0) not in range(1, 14):
        raise ValueError(f"metal {metal!r}: expected a trivalent lanthanide with an open 4f shell "
                         f"({', '.join(LANTHANIDES[1:-1])})")
    return hund_ground_term(F_ELECTRONS[metal])
