"""Interactive maps of the report (plotly): pointing at a dot says what it is — its SMILES first (the hover panel
then shows its drawing when the report has one), row ids and label values. plotly.js is embedded once in
index.html, so the report opens offline, e.g. copied from a cluster's scratch directory to a laptop."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots
from rdkit import Chem

from .kd import METHODS, SHORT

CONFIG = {"displaylogo": False, "responsive": True}
# The hover panel: the first line of a dot's hover text is its SMILES; every drawing in the report carries its
# SMILES as <title>, so the panel copies the drawing already on the page instead of shipping a second one.
HOVER_PANEL = """
<div id='hover-mol' style='position:fixed;right:8px;bottom:8px;background:#fff;border:1px solid #aaa;
padding:4px;font-size:11px;max-width:220px;display:none;z-index:10'></div>
<script>
(function () {
  const panel = document.getElementById('hover-mol');
  const drawings = {};
  document.querySelectorAll('svg.mol').forEach(function (svg) {
    const title = svg.querySelector('title');
    if (title && !(title.textContent in drawings)) drawings[title.textContent] = svg;
  });
  document.querySelectorAll('.plotly-graph-div').forEach(function (plot) {
    plot.on('plotly_hover', function (event) {
      const point = event.points[0];
      const text = String(point.hovertext || point.text || '');
      const smiles = text.split('<br>')[0];
      const svg = drawings[smiles];
      panel.innerHTML = '';
      if (svg) panel.appendChild(svg.cloneNode(true));
      const line = document.createElement('div');
      line.textContent = smiles;
      panel.appendChild(line);
      panel.style.display = smiles ? 'block' : 'none';
    });
  });
})();
</script>
"""


def script() -> str:
    """plotly.js itself, inline (about 4.7 MB), written once in the report's head."""
    return f"<script type='text/javascript'>{get_plotlyjs()}</script>"


def to_div(fig: go.Figure, height: int) -> str:
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=50, b=40), template="plotly_white")
    return fig.to_html(include_plotlyjs=False, full_html=False, config=CONFIG)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


def hover(first: list[str], **columns) -> list[str]:
    """Hover text per point: the SMILES first (the hover panel reads it), then `name value` for every known value."""
    lines = []
    for i, head in enumerate(first):
        parts = [html.escape(str(head))]
        for name, values in columns.items():
            value = values[i]
            if isinstance(value, (float, np.floating)) and not np.isfinite(value):
                continue
            parts.append(f"{name} {_fmt(value)}")
        lines.append("<br>".join(parts))
    return lines


def latent_map(projected: np.ndarray, labels: dict[str, np.ndarray], smiles: np.ndarray, rows: np.ndarray,
               title: str) -> str:
    """PCA of the latent means; a menu picks the label the dots are coloured by (grey: not labelled)."""
    text = hover(list(smiles), **{"ligands row": rows}, **labels)
    fig = go.Figure(go.Scatter(x=projected[:, 0], y=projected[:, 1], mode="markers", hoverinfo="text",
                               hovertext=text, marker=dict(size=4, color="#cccccc"), name="all ligands"))
    # one coloured trace per label over the grey one; the coloured dots pass hovering to the grey dot beneath,
    # which carries every value, so the text is stored once
    for i, (name, values) in enumerate(labels.items()):
        known = np.isfinite(values)
        fig.add_trace(go.Scatter(x=projected[known, 0], y=projected[known, 1], mode="markers", hoverinfo="skip",
                                 visible=i == 0, name=name, marker=dict(
                                     size=5, color=values[known], colorscale="Viridis", showscale=True,
                                     colorbar=dict(title=dict(text=name)))))
    buttons = [dict(label=f"{name} ({np.isfinite(values).sum()} known)", method="restyle",
                    args=[{"visible": [True] + [j == i for j in range(len(labels))]}])
               for i, (name, values) in enumerate(labels.items())]
    fig.update_layout(title=title, xaxis_title="PC1", yaxis_title="PC2", showlegend=False,
                      updatemenus=[dict(buttons=buttons, x=0, xanchor="left", y=1.12, yanchor="top")])
    return to_div(fig, 560)


def sigma_sweep(stats: pd.DataFrame, ligands: pd.DataFrame, name: str = "KD1", unit: str = "cm⁻¹") -> str:
    """Left: % valid / novel / unique per σ. Right: every novel unique ligand at its σ, at its most trusted value
    of the target `name` (or the number of times it was generated when none is known); `ligands` is kd.ranked
    (a RangeIndex)."""
    per_sigma = stats.groupby("sigma")[["attempts", "valid", "novel", "unique", "novel_unique"]].sum()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("per σ, all batches", "novel unique ligands"))
    for column in ("valid", "novel", "unique", "novel_unique"):
        fig.add_trace(go.Scatter(
            x=per_sigma.index, y=100 * per_sigma[column] / per_sigma["attempts"], mode="lines+markers",
            name=column.replace("_", "+"), customdata=np.stack([per_sigma[column], per_sigma["attempts"]], 1),
            hovertemplate="σ %{x}<br>%{y:.1f} %% (%{customdata[0]} of %{customdata[1]})"), row=1, col=1)
    known = ligands["value"].notna().any()
    y = ligands["value"] if known else ligands["times_generated"]
    # dots of one σ spread sideways by a third of the σ step, so that they do not hide each other
    step = np.diff(per_sigma.index).min() if len(per_sigma) > 1 else 0.0
    x = ligands["sigma"].to_numpy() + np.random.default_rng(0).uniform(-0.3, 0.3, len(ligands)) * step
    for method, group in ligands.groupby(ligands["method"].replace("", "none")):
        text = hover(list(group["smiles"]), **{"σ": group["sigma"].to_numpy(), "seed": group["seed_id"].to_numpy(),
                                               "samples row": group["sample_row"].to_numpy()},
                     **{f"{name} {SHORT[m]}": group[f"value_{m}"].to_numpy() for m in METHODS
                        if f"value_{m}" in group})
        index = group.index.to_numpy()
        fig.add_trace(go.Scatter(x=x[index], y=y.to_numpy()[index],
                                 mode="markers", marker=dict(size=6), hoverinfo="text", hovertext=text,
                                 name=f"{name} {METHODS.get(method, 'not known')}" if known else "generated"),
                      row=1, col=2)
    fig.update_xaxes(title_text="σ")
    fig.update_yaxes(title_text="% of attempts", row=1, col=1)
    fig.update_yaxes(title_text=(f"{name} ({unit})" if unit else name) if known else "times generated", row=1, col=2)
    return to_div(fig, 460)


def parity(panels: dict[str, pd.DataFrame]) -> str:
    """Target against predicted per proxy label on the held-out split; columns target, predicted, smiles, row."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels))
    for col, (name, table) in enumerate(panels.items(), start=1):
        text = hover(list(table["smiles"]), **{"ligands row": table["row"].to_numpy(),
                                               "target": table["target"].to_numpy(),
                                               "predicted": table["predicted"].to_numpy()})
        fig.add_trace(go.Scatter(x=table["target"], y=table["predicted"], mode="markers", hoverinfo="text",
                                 hovertext=text, marker=dict(size=5, opacity=0.6), name=name), row=1, col=col)
        lo, hi = float(table["target"].min()), float(table["target"].max())
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dash", color="black"),
                                 hoverinfo="skip", showlegend=False), row=1, col=col)
    fig.update_xaxes(title_text="target")
    fig.update_yaxes(title_text="predicted", col=1)
    fig.update_layout(showlegend=False)
    return to_div(fig, 400)


def fidelity(joined: pd.DataFrame) -> str:
    """Seed KD1 against the generated ligand's computed KD1, coloured by σ."""
    text = hover(list(joined["smiles"]), **{"seed": joined["seed_smiles"].to_numpy(),
                                            "σ": joined["sigma"].to_numpy(),
                                            "seed KD1": joined["seed_kd1_gap"].to_numpy(),
                                            "generated KD1": joined["kd1_gap"].to_numpy(),
                                            "task": joined["name"].to_numpy(),
                                            "campaign": joined["campaign"].to_numpy()})
    fig = go.Figure(go.Scatter(x=joined["seed_kd1_gap"], y=joined["kd1_gap"], mode="markers", hoverinfo="text",
                               hovertext=text, marker=dict(size=8, color=joined["sigma"], colorscale="Plasma",
                                                           showscale=True, colorbar=dict(title=dict(text="σ")))))
    lo = float(min(joined["seed_kd1_gap"].min(), joined["kd1_gap"].min()))
    hi = float(max(joined["seed_kd1_gap"].max(), joined["kd1_gap"].max()))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dash", color="black"),
                             hoverinfo="skip"))
    fig.update_layout(showlegend=False, xaxis_title="seed KD1 gap (cm⁻¹)", yaxis_title="generated KD1 gap (cm⁻¹)")
    return to_div(fig, 440)


def _bonds(symbols: list[str], coords: np.ndarray) -> list[tuple[int, int]]:
    """Atom pairs closer than their covalent radii plus 0.45 Å (the usual bond-perception rule), metal bonds too."""
    table = Chem.GetPeriodicTable()
    radii = np.array([table.GetRcovalent(table.GetAtomicNumber(s)) for s in symbols])
    dist = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    i, j = np.nonzero(np.triu(dist < radii[:, None] + radii[None] + 0.45, 1))
    return list(zip(i, j))


COLOURS = {"H": "#dddddd", "C": "#404040", "N": "#3050f8", "O": "#ff0d0d", "Dy": "#1fc0a0", "F": "#90e050",
           "S": "#d8c030", "Cl": "#1ff01f", "P": "#ff8000"}


AXIS_HALF_LENGTH = 3.5     # Angstrom each side of the metal: past the first coordination shell


def complex_3d(symbols: list[str], coords: np.ndarray, title: str, main_axis: np.ndarray | None = None,
               main_g: float = float("nan")) -> str:
    """Ball-and-stick 3-D view of a complex's final geometry (rotate, zoom; hover names the atom), with the
    ground doublet's main magnetic axis drawn through the metal when it is known (a direction: both senses)."""
    coords = np.asarray(coords, float)
    edges = _bonds(symbols, coords)
    xyz = [[], [], []]
    for i, j in edges:
        for axis in range(3):
            xyz[axis] += [coords[i, axis], coords[j, axis], None]
    fig = go.Figure(go.Scatter3d(x=xyz[0], y=xyz[1], z=xyz[2], mode="lines", hoverinfo="skip",
                                 line=dict(color="#888888", width=5)))
    sizes = np.array([20 if s == "Dy" else 7 if s == "H" else 12 for s in symbols])
    fig.add_trace(go.Scatter3d(
        x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], mode="markers", hoverinfo="text",
        hovertext=[f"{s} {k}<br>({x:.2f}, {y:.2f}, {z:.2f}) Å" for k, (s, (x, y, z)) in
                   enumerate(zip(symbols, coords))],
        marker=dict(size=sizes, color=[COLOURS.get(s, "#ff1493") for s in symbols], line=dict(width=0))))
    metal = [k for k, s in enumerate(symbols) if s == "Dy"]
    if main_axis is not None and metal:
        direction = np.asarray(main_axis, float) / np.linalg.norm(main_axis)
        ends = coords[metal[0]] + np.outer([-AXIS_HALF_LENGTH, AXIS_HALF_LENGTH], direction)
        g = f", gZ = {main_g:.2f}" if np.isfinite(main_g) else ""
        fig.add_trace(go.Scatter3d(x=ends[:, 0], y=ends[:, 1], z=ends[:, 2], mode="lines", hoverinfo="text",
                                   hovertext=f"ground doublet's main magnetic axis{g}",
                                   line=dict(color="#ff8c00", width=9)))
    fig.update_layout(title=title, showlegend=False,
                      scene=dict(aspectmode="data", xaxis_visible=False, yaxis_visible=False, zaxis_visible=False))
    return to_div(fig, 480)
