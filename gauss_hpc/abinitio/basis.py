"""Which elements each basis-set family covers, so an element without basis is reported before a job is queued
(the programs themselves stop with a terse message deep in the output).

Coverage from the basis-set papers and the programs' libraries: ANO-RCC H-Cm (Roos et al. 2004-2008; OpenMolcas
basis_library), ANO-R H-Rn (Zobel, Widmark, Veryazov, JCTC 2020), ORCA DKH-def2 recontractions H-Kr, SARC-DKH
Rb-Xe, La-Lu, Hf-Rn, Ac-Lr (Pantazis, Neese 2008-2012; Rolfes et al. 2020), SARC2-DKH-QZVP La-Lu (Aravena,
Neese, Pantazis 2016).
"""

from __future__ import annotations

from .constants import ELEMENTS

_Z = {symbol: z for z, symbol in enumerate(ELEMENTS) if symbol}


def _span(first: int, last: int) -> frozenset[int]:
    return frozenset(range(first, last + 1))


# family prefix (upper case) -> atomic numbers covered; the longest matching prefix wins
COVERAGE: dict[str, frozenset[int]] = {
    "ANO-RCC": _span(1, 96),
    "ANO-R": _span(1, 86),
    "DKH-DEF2": _span(1, 36),
    "ZORA-DEF2": _span(1, 36),
    "SARC2-DKH": _span(57, 71),
    "SARC-DKH": _span(37, 54) | _span(57, 86) | _span(89, 103),
    "SARC-ZORA": _span(37, 54) | _span(57, 86) | _span(89, 103),
}


def atomic_number(symbol: str) -> int:
    """Z of an element symbol; ValueError naming the symbol if it is not an element."""
    z = _Z.get(symbol, 0) if isinstance(symbol, str) else 0
    if z <= 0:
        raise ValueError(f"{symbol!r} is not an element symbol")
    return z


def family(basis: str) -> str | None:
    """The family in COVERAGE that `basis` belongs to (e.g. ANO-RCC-VDZP -> ANO-RCC), None if unknown."""
    key = basis.upper()
    matches = [prefix for prefix in COVERAGE if key.startswith(prefix)]
    return max(matches, key=len) if matches else None


def uncovered_elements(basis: str, symbols) -> list[str]:
    """Elements of `symbols` (in first-seen order) that `basis` has no functions for. A basis of unknown family
    is not checked (returns []): the program's own error is then the message."""
    name = family(basis)
    if name is None:
        return []
    return [s for s in dict.fromkeys(symbols) if atomic_number(s) not in COVERAGE[name]]
