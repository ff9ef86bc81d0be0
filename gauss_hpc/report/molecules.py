"""Molecule pictures for the report: RDKit 2-D drawings as inline SVG, laid out as cards (generated ligand beside its
seed, the seeds, the computed complexes), each card saying which method its number (KD1, or the round's target)
comes from."""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd
from rdkit import Chem, RDLogger
from rdkit.Chem.Draw import rdMolDraw2D

from .kd import DEFAULT_FOCUS, METHODS, SHORT, Focus

RDLogger.DisableLog("rdApp.*")

CSS = """
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ccc;border-radius:6px;padding:6px;font-size:12px;background:#fff}
.card .pair{display:flex;align-items:center;gap:4px}
.card .arrow{font-size:20px;color:#888}
.card .who{color:#555;font-size:11px;text-align:center}
.card table td{padding:0 6px 0 0}
.card.failed{background:#fff4f4}
.mol svg{display:block}
"""
LEGEND_PX = 16       # room under a drawing for the caption written on the picture itself


def drawing(smiles: str, legend: str = "", width: int = 200, height: int = 150) -> str:
    """An SVG drawing of a donor-first ligand SMILES, the donor atom (the first) highlighted; `legend` is written on
    the picture. A SMILES RDKit cannot read gives a box saying so, so one bad molecule costs only its picture."""
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None or mol.GetNumAtoms() == 0:
        body = (f"<text x='{width / 2}' y='{height / 2}' text-anchor='middle' font-size='11' fill='#a00'>"
                f"RDKit cannot read {html.escape(smiles or 'an empty SMILES')}</text>")
    else:
        # no FreeType: letters stay <text> elements (a third of the size of glyph outlines); the legend is ours,
        # as RDKit's legend without FreeType is one element per character and cannot take non-Latin-1 text
        drawer = rdMolDraw2D.MolDraw2DSVG(width, height, -1, -1, True)
        drawer.drawOptions().setHighlightColour((1.0, 0.75, 0.6))
        rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol, highlightAtoms=[0])
        drawer.FinishDrawing()
        body = re.sub(r"^.*?<!-- END OF HEADER -->|</svg>\s*$", "", drawer.GetDrawingText(), flags=re.S)
    total = height + (LEGEND_PX if legend else 0)
    caption = (f"<text x='{width / 2}' y='{height + LEGEND_PX - 4}' text-anchor='middle' font-size='12' "
               f"font-family='sans-serif'>{html.escape(legend)}</text>") if legend else ""
    return (f"<svg class='mol' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{total}' "
            f"viewBox='0 0 {width} {total}'><title>{html.escape(smiles)}</title>{body}{caption}</svg>")


def _rows(pairs) -> str:
    return "<table>" + "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in pairs) + "</table>"


def generated_cards(table: pd.DataFrame, seeds: pd.DataFrame, top: int, focus: Focus = DEFAULT_FOCUS) -> str:
    """The `top` ranked generated ligands (kd.ranked), each beside its seed: σ, sample row, every value of the
    target of `focus` (KD1, total splitting, ...) known."""
    name = focus.name
    seed_value = seeds.set_index("seed_id")["value_label"] if not seeds.empty else pd.Series(dtype=float)
    cards = []
    for _, row in table.head(top).iterrows():
        method = row["method"]
        legend = f"{name} {focus.format(row['value'])} ({SHORT[method]})" if method else f"{name} not known"
        seed_id = int(row["seed_id"])
        seed_smiles = row.get("seed_smiles", "")
        value_seed = seed_value.get(seed_id, np.nan)
        seed_legend = (f"seed {name} {focus.format(value_seed)} (label)" if math.isfinite(value_seed)
                       else f"seed {seed_id}")
        values = [(f"{name} {METHODS[m]}", focus.format(row[f"value_{m}"])) for m in METHODS
                  if pd.notna(row.get(f"value_{m}"))]
        cards.append(
            "<div class='card'><div class='pair'>"
            f"<div>{drawing(seed_smiles, seed_legend, 150, 112)}<div class='who'>seed {seed_id}</div></div>"
            "<div class='arrow'>→</div>"
            f"<div>{drawing(row['smiles'], legend)}<div class='who'>generated, samples row "
            f"{int(row['sample_row'])}</div></div></div>"
            + _rows([("SMILES", f"<code>{html.escape(row['smiles'])}</code>"), ("σ", f"{row['sigma']:g}"),
                     ("times generated", str(int(row.get("times_generated", 1)))), *values]) + "</div>")
    return "<div class='cards'>" + "".join(cards) + "</div>"


def seed_cards(seeds: pd.DataFrame, counts: pd.Series, focus: Focus = DEFAULT_FOCUS) -> str:
    """Every seed of the sampling run with its labelled target value and how many novel unique ligands it gave."""
    name = focus.name
    cards = []
    for _, row in seeds.iterrows():
        value = row["value_label"]
        legend = f"{name} {focus.format(value)} (label)" if math.isfinite(value) else f"{name} not labelled"
        row_text = "given as SMILES" if int(row["ligand_row"]) < 0 else f"ligands row {int(row['ligand_row'])}"
        cards.append(f"<div class='card'>{drawing(row['smiles'], legend)}" + _rows([
            ("seed", str(int(row["seed_id"]))), ("", row_text),
            ("novel unique", str(int(counts.get(row["seed_id"], 0))))]) + "</div>")
    return "<div class='cards'>" + "".join(cards) + "</div>"


def complex_cards(results: pd.DataFrame, focus: Focus = DEFAULT_FOCUS) -> str:
    """Every computed complex: its axial ligand drawn, the campaign, status, the step that gave its KDs, its target
    value (`target`, of `focus`) and the ground doublet's g values, the message of a failure."""
    name = focus.name
    cards = []
    for _, row in results.iterrows():
        ok = row["status"] == "ok"
        kd_step = row.get("kd_step", "")
        method = row.get("kd_method", "") or kd_step
        legend = (f"{name} {focus.format(row['target'])} ({SHORT.get(method, kd_step)})"
                  if pd.notna(row.get("target")) else f"status: {row['status']}")
        pairs = [("campaign", html.escape(str(row["campaign"]))), ("task", html.escape(str(row["name"]))),
                 ("status", f"<b>{html.escape(str(row['status']))}</b>"),
                 ("last step", html.escape(str(row["step"])))]
        if kd_step:
            pairs.append(("KDs from", METHODS.get(method, kd_step) + (f" ({kd_step})" if kd_step != method else "")))
        g = [row.get(f"ground_g{k}", np.nan) for k in (1, 2, 3)]
        if np.isfinite(g).all():
            pairs.append(("ground doublet g", "(" + ", ".join(f"{v:.2f}" for v in g) + ")"))
        if not ok and row.get("message"):
            pairs.append(("message", html.escape(str(row["message"])[:160])))
        cards.append(f"<div class='card{'' if ok else ' failed'}'>{drawing(row['smiles'], legend)}"
                     + _rows(pairs) + "</div>")
    return "<div class='cards'>" + "".join(cards) + "</div>"
