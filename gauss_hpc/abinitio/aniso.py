"""What the OpenMolcas and ORCA parsers share: Kramers doublets from spin-orbit energies, and the SINGLE_ANISO
section (the program of Ungur and Chibotaru, run inside OpenMolcas and, as ORCA's `%casscf ANISO` block, inside
ORCA 6) with its spin-orbit spectrum and per-multiplet pseudospin g-tensors: main values and main magnetic axes
(Xm, Ym, Zm as unit vectors in the Cartesian frame of the geometry the program printed).

Checked against real outputs only (tests/fixtures/molcas, tests/fixtures/orca): OpenMolcas 22.10 logs with
`MLTP` 8 x 2, 1 x 16 and SINGLE_ANISO's defaults, and ORCA 6.1.1 outputs of a Dy(III) and a CO+ calculation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from .constants import KRAMERS_TOLERANCE_CM
from .ions import F_ELECTRONS, GroundTerm, ground_term
from .values import kd_gaps


class NotKramers(ValueError):
    """The spin-orbit states do not pair up: an even electron count (integer spin), or too few states."""


def kramers_doublets(so_energies, n_doublets: int | None = 8) -> tuple[list[float], list[float]]:
    """(kd_energies relative to the ground doublet, kd_gaps dE0i above it) in cm-1 from spin-orbit state
    energies (any zero). The lowest 2*n_doublets states are paired in energy order, so two near-degenerate
    doublets (0.00, 0.00, 0.08, 0.08) stay two doublets; n_doublets None pairs every state. NotKramers if there
    are too few states or a pair is split by more than KRAMERS_TOLERANCE_CM (an integer-spin ion)."""
    energies = np.sort(np.asarray(so_energies, dtype=float))
    n = len(energies) // 2 if n_doublets is None else n_doublets
    if n < 1 or len(energies) < 2 * n:
        raise NotKramers(f"{len(energies)} spin-orbit states, need {2 * max(n, 1)} for {max(n, 1)} Kramers doublets")
    pairs = energies[:2 * n].reshape(n, 2)
    split = np.abs(pairs[:, 1] - pairs[:, 0])
    if split.max() > KRAMERS_TOLERANCE_CM:
        k = int(np.argmax(split > KRAMERS_TOLERANCE_CM))
        raise NotKramers(f"spin-orbit states are not Kramers pairs: states {2 * k + 1} and {2 * k + 2} "
                         f"({pairs[k, 0]:.2f} and {pairs[k, 1]:.2f} cm-1) differ by {split[k]:.2f} cm-1 "
                         f"(an even electron count has no Kramers doublets)")
    kd = pairs.mean(axis=1)
    kd = kd - kd[0]
    return kd.tolist(), kd_gaps(kd).tolist()


def pseudo_doublets(so_energies, n_states: int) -> tuple[list[float], list[float], list[float]]:
    """(pseudo-doublet energies, their gaps dE0i, tunnel splittings) in cm-1 of a non-Kramers ion: the lowest
    `n_states` spin-orbit states (its ground J multiplet) paired in energy order, the last alone when n_states is
    odd (its splitting 0); each pair's energy is its mean, relative to the ground pair."""
    energies = np.sort(np.asarray(so_energies, dtype=float))
    if len(energies) < n_states:
        raise NotKramers(f"{len(energies)} spin-orbit states, need the {n_states} of the ground J multiplet")
    levels = energies[:n_states]
    if n_states % 2:
        levels = np.append(levels, levels[-1])
    pairs = levels.reshape(-1, 2)
    kd = pairs.mean(axis=1)
    kd = kd - kd[0]
    return kd.tolist(), kd_gaps(kd).tolist(), np.abs(pairs[:, 1] - pairs[:, 0]).tolist()


def ground_term_of(symbols) -> GroundTerm | None:
    """The ground term of the (first) open-shell trivalent lanthanide among `symbols`, None if there is none."""
    for symbol in symbols or ():
        if F_ELECTRONS.get(symbol, 0) in range(1, 14):
            return ground_term(symbol)
    return None


def doublet_count(symbols) -> int | None:
    """(Pseudo-)doublets of the ground J multiplet of the lanthanide among `symbols`, None if there is none."""
    term = ground_term_of(symbols)
    return term.n_doublets if term is not None else None


_NUMBER = r"-?\d+\.\d+"
_G_MULTIPLET = re.compile(r"PSEUDOSPIN HAMILTONIAN TENSORS FOR THE MULTIPLET\s+(\d+)\s*\(\s*effective S\s*=\s*"
                          r"(\d+)(?:/(\d+))?\s*\)")
_G_LINE = re.compile(rf"^\s*g([XYZ])\s*=\s*({_NUMBER})\s*\|", flags=re.M)
# ' gZ =  19.52763174 | Zm | -0.431907 -0.874831  0.219381 |': the main value and its axis
_G_AXIS_LINE = re.compile(rf"^\s*g([XYZ])\s*=\s*{_NUMBER}\s*\|\s*\1m\s*\|"
                          rf"\s*({_NUMBER})\s+({_NUMBER})\s+({_NUMBER})\s*\|", flags=re.M)
_MLTP_ORCA = re.compile(r"Multiplicity of each group -+ :\s*([\d ]+)")
_MLTP_MOLCAS = re.compile(r"^MLTP :\s*=\s*(\d+)\s*\n\s*=\s*([\d ]+)$", flags=re.M)
_RUN_MARKERS = ("Start Module: single_aniso", "Calling the SINGLE_ANISO program")
_SO_MOLCAS = re.compile(rf"ENERGY OF THE SPIN-ORBIT STATE\s*\(\s*(\d+)\)\s*=\s*({_NUMBER})")


@dataclass
class AnisoSection:
    """What one SINGLE_ANISO run printed: spin-orbit energies (cm-1, as printed, ground 0), the dimension of each
    group of states asked for (MLTP), and g main values (gX, gY, gZ; Z the main magnetic axis) and main magnetic
    axes (rows Xm, Ym, Zm) per group whose pseudospin is 1/2, keyed by the group's number (1-based)."""

    so_energies: list[float]
    groups: list[int] = field(default_factory=list)
    g_by_group: dict[int, list[float]] = field(default_factory=dict)
    effective_spin: dict[int, str] = field(default_factory=dict)
    axes_by_group: dict[int, list[list[float]]] = field(default_factory=dict)

    def g_by_doublet(self) -> dict[int, list[float]]:
        """{doublet index (0-based, energy order): [gX, gY, gZ]} for groups that are single Kramers doublets."""
        return self._by_doublet(self.g_by_group)

    def axes_by_doublet(self) -> dict[int, list[list[float]]]:
        """{doublet index: [Xm, Ym, Zm]} (unit vectors) for groups that are single Kramers doublets."""
        return self._by_doublet(self.axes_by_group)

    def _by_doublet(self, by_group: dict) -> dict:
        out, start = {}, 0
        for number, size in enumerate(self.groups, start=1):
            if size == 2 and start % 2 == 0 and number in by_group:
                out[start // 2] = by_group[number]
            start += size
        if not self.groups:       # no group list printed: a pseudospin-1/2 group k is doublet k
            out = {k - 1: v for k, v in by_group.items() if self.effective_spin.get(k) == "1/2"}
        return out


def _spectrum_after(text: str, label: str) -> list[float]:
    """ORCA's SINGLE_ANISO prints 'label ---- : e1 e2 ...' and continues on lines starting with ':'."""
    start = text.find(label)
    if start < 0:
        return []
    values = []
    lines = text[start:].splitlines()
    head = lines[0].split(":", 1)[1] if ":" in lines[0] else ""
    values += [float(x) for x in re.findall(_NUMBER, head)]
    for line in lines[1:]:
        if not line.strip().startswith(":"):
            break
        values += [float(x) for x in re.findall(_NUMBER, line)]
    return values


def parse_single_aniso(text: str) -> AnisoSection | None:
    """The first SINGLE_ANISO run in `text` (OpenMolcas log or ORCA output), None when there is none. Its
    spin-orbit energies come from 'ENERGY OF THE SPIN-ORBIT STATE (n)' lines (OpenMolcas) or the
    'Spin-orbit energy spectra (cm-1)' table (ORCA)."""
    for marker in _RUN_MARKERS:
        start = text.find(marker)
        if start >= 0:
            break
    else:
        return None
    section = text[start:]
    second = section.find(marker, len(marker))     # ORCA with SSC runs it twice (SOC only, then SOC+SSC): the first
    if second > 0:
        section = section[:second]
    so = [float(e) for _, e in _SO_MOLCAS.findall(section)]
    if not so:
        so = _spectrum_after(section, "Spin-orbit energy spectra (cm-1)")
    groups: list[int] = []
    match = _MLTP_ORCA.search(section) or _MLTP_MOLCAS.search(section)
    if match is not None:
        groups = [int(x) for x in match.groups()[-1].split()]
    heads = list(_G_MULTIPLET.finditer(section))
    g_by_group, axes_by_group, spin = {}, {}, {}
    for k, head in enumerate(heads):
        number = int(head.group(1))
        spin[number] = head.group(2) + (f"/{head.group(3)}" if head.group(3) else "")
        block = section[head.end(): heads[k + 1].start() if k + 1 < len(heads) else len(section)][:4000]
        values = dict(_G_LINE.findall(block))
        if spin[number] == "1/2" and set(values) == {"X", "Y", "Z"}:
            g_by_group[number] = [float(values[a]) for a in "XYZ"]
            axes = {a: [float(x) for x in xyz] for a, *xyz in _G_AXIS_LINE.findall(block)}
            if set(axes) == {"X", "Y", "Z"}:
                axes_by_group[number] = [axes[a] for a in "XYZ"]
    return AnisoSection(so_energies=so, groups=groups, g_by_group=g_by_group, effective_spin=spin,
                        axes_by_group=axes_by_group)


def spectrum_values(so_energies, g_by_doublet: dict[int, list[float]], n_doublets: int | None,
                    *, require_kramers: bool = True, axes_by_doublet: dict | None = None,
                    ion: GroundTerm | None = None) -> tuple[dict, str]:
    """Values of a spin-orbit spectrum: kd_energies, kd_gaps, g_tensors (NaN rows where no g-tensor was
    printed), g_axes (main magnetic axes per doublet, NaN where none were printed) and so_energies (cm-1
    relative to the lowest state), plus a note saying what is missing. For a non-Kramers `ion` (an integer J:
    Pr, Pm, Tb, Ho, Tm) the doublets are its pseudo-doublets (pseudo_doublets), with `kramers` False and their
    tunnel_splittings. Otherwise raises NotKramers when the states do not pair and `require_kramers`, or the
    note says so and only so_energies is returned."""
    so = np.sort(np.asarray(so_energies, dtype=float))
    so = (so - so[0]).tolist() if len(so) else []
    values: dict = {"so_energies": so}
    try:
        if ion is not None and not ion.kramers:
            kd, gaps, tunnel = pseudo_doublets(so, ion.n_states)
            values.update(kramers=False, tunnel_splittings=tunnel)
        else:
            kd, gaps = kramers_doublets(so, n_doublets)
    except NotKramers as exc:
        if require_kramers:
            raise
        return values, f"no Kramers doublets ({exc})"
    g = [list(g_by_doublet.get(k, [math.nan] * 3)) for k in range(len(kd))]
    axes = [[list(v) for v in (axes_by_doublet or {}).get(k, [[math.nan] * 3] * 3)] for k in range(len(kd))]
    for k, main in enumerate(g):     # gX <= gY <= gZ, axes in step: programs print excited doublets unsorted
        if all(math.isfinite(x) for x in main):
            order = sorted(range(3), key=main.__getitem__)
            g[k], axes[k] = [main[i] for i in order], [axes[k][i] for i in order]
    values.update(kd_energies=kd, kd_gaps=gaps, g_tensors=g, g_axes=axes)
    missing = [k + 1 for k in range(len(kd)) if k not in g_by_doublet]
    if not missing:
        return values, ""
    if len(missing) == len(kd):
        return values, "no g-tensors printed for the doublets (NaN)"
    return values, f"no g-tensor printed for doublets {missing} (NaN)"
