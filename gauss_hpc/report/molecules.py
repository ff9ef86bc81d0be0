"""Molecule pictures for the report: RDKit 2-D drawings as inline SVG, laid out as cards (generated ligand beside its
seed, the seeds, the computed complexes), each card saying which method its KD1 comes from."""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd
from rdkit import Chem, RDLogger
from rdkit.Chem.Draw import rdMolDraw2D

from .kd import METHODS, SHORT

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


def cm1(value) -> str:
    return f"{value:.0f} cm⁻¹" if value is not None and math.isfinite(value) else "—"


def _rows(pairs) -> str:
    return "<table>" + "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in pairs) + "</table>"


def generated_cards(table: pd.DataFrame, seeds: pd.DataFrame, top: int) -> str:
    """The `top` ranked generated ligands (kd.ranked), each beside its seed: σ, sample row, every KD1 known."""
    seed_kd1 = seeds.set_index("seed_id")["kd1_label"] if not seeds.empty else pd.Series(dtype=float)
    cards = []
    for _, row in table.head(top).iterrows():
        method = row["method"]
        legend = f"KD1 {cm1(row['kd1'])} ({SHORT[method]})" if method else "KD1 not known"
        seed_id = int(row["seed_id"])
        seed_smiles = row.get("seed_smiles", "")
        kd1_seed = seed_kd1.get(seed_id, np.nan)
        seed_legend = f"seed KD1 {cm1(kd1_seed)} (label)" if math.isfinite(kd1_seed) else f"seed {seed_id}"
        values = [(f"KD1 {METHODS[m]}", cm1(row[f"kd1_{m}"])) for m in METHODS if pd.notna(row.get(f"kd1_{m}"))]
        cards.append(
            "<div class='card'><div class='pair'>"
            f"<div>{drawing(seed_smiles, seed_legend, 150, 112)}<div class='who'>seed {seed_id}</div></div>"
            "<div class='arrow'>→</div>"
            f"<div>{drawing(row['smiles'], legend)}<div class='who'>generated, samples row "
            f"{int(row['sample_row'])}</div></div></div>"
            + _rows([("SMILES", f"<code>{html.escape(row['smiles'])}</code>"), ("σ", f"{row['sigma']:g}"),
                     ("times generated", str(int(row.get("times_generated", 1)))), *values]) + "</div>")
    return "<div class='cards'>" + "".join(cards) + "</div>"


def seed_cards(seeds: pd.DataFrame, counts: pd.Series) -> str:
    """Every seed of the sampling run with its labelled KD1 and how many novel unique ligands it gave."""
    cards = []
    for _, row in seeds.iterrows():
        kd1 = row["kd1_label"]
        legend = f"KD1 {cm1(kd1)} (label)" if math.isfinite(kd1) else "KD1 not labelled"
        row_text = "given as SMILES" if int(row["ligand_row"]) < 0 else f"ligands row {int(row['ligand_row'])}"
        cards.append(f"<div class='card'>{drawing(row['smiles'], legend)}" + _rows([
            ("seed", str(int(row["seed_id"]))), ("", row_text),
            ("novel unique", str(int(counts.get(row["seed_id"], 0))))]) + "</div>")
    return "<div class='cards'>" + "".join(cards) + "</div>"


def complex_cards(results: pd.DataFrame) -> str:
    """Every computed complex: its axial ligand drawn, the campaign, status, the step that gave its KDs, KD1 and the
    ground doublet's g values, the message of a failure."""
    cards = []
    for _, row in results.iterrows():
        ok = row["status"] == "ok"
        kd_step = row.get("kd_step", "")
        legend = (f"KD1 {cm1(row['kd1_gap'])} ({SHORT.get(kd_step, kd_step)})"
                  if pd.notna(row.get("kd1_gap")) else f"status: {row['status']}")
        pairs = [("campaign", html.escape(str(row["campaign"]))), ("task", html.escape(str(row["name"]))),
                 ("status", f"<b>{html.escape(str(row['status']))}</b>"),
                 ("last step", html.escape(str(row["step"])))]
        if kd_step:
            pairs.append(("KDs from", METHODS.get(kd_step, kd_step)))
        g = [row.get(f"ground_g{k}", np.nan) for k in (1, 2, 3)]
        if np.isfinite(g).all():
            pairs.append(("ground doublet g", "(" + ", ".join(f"{v:.2f}" for v in g) + ")"))
        if not ok and row.get("message"):
            pairs.append(("message", html.escape(str(row["message"])[:160])))
        cards.append(f"<div class='card{'' if ok else ' failed'}'>{drawing(row['smiles'], legend)}"
                     + _rows(pairs) + "</div>")
    return "<div class='cards'>" + "".join(cards) + "</div>"
