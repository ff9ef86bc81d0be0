"""The report page: its figures, key numbers and tables (`Report`), and the HTML that shows them offline
(`write_html`). Matplotlib is set to its file backend here, before any figure module draws."""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen before pyplot is imported)
import pandas as pd  # noqa: E402

from .. import store  # noqa: E402
from . import kd  # noqa: E402

log = logging.getLogger("gauss_hpc.analyze")

@dataclass
class Figure:
    title: str
    file: str | None = None          # PNG name inside the report directory
    caption: str = ""
    missing: str = ""                # why the figure could not be made
    html: str = ""                   # inline content: molecule cards, an interactive map
    plotly: bool = False             # the content needs plotly.js


@dataclass
class Report:
    out: Path
    focus: kd.Focus = field(default_factory=kd.Focus)     # what ligands and complexes are ranked by
    figures: list[Figure] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def save(self, fig, name: str, title: str, caption: str = "") -> None:
        if not fig.get_constrained_layout():
            fig.tight_layout()
        fig.savefig(self.out / name, dpi=110)
        plt.close(fig)
        self.figures.append(Figure(title, name, caption))

    def add(self, title: str, content: str, caption: str = "", plotly: bool = False) -> None:
        self.figures.append(Figure(title, caption=caption, html=content, plotly=plotly))

    def skip(self, title: str, why: str) -> None:
        log.info("figure %r skipped: %s", title, why)
        self.figures.append(Figure(title, missing=why))


def write_html(report: Report) -> Path:
    from .molecules import CSS

    plotly = any(figure.plotly for figure in report.figures)
    if plotly:
        from . import interactive
    parts = ["<!doctype html><meta charset='utf-8'><title>gauss_hpc report</title>",
             "<style>body{font-family:sans-serif;max-width:1300px;margin:auto}img{max-width:100%}"
             f"td,th{{padding:2px 10px;text-align:left}}{CSS}</style>",
             interactive.script() if plotly else "",
             "<h1>gauss_hpc report</h1>", "<h2>Key numbers</h2><table>"]
    parts += [f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
              for k, v in report.numbers.items()]
    parts.append("</table>")
    for title, table in report.tables.items():
        parts += [f"<h2>{html.escape(title)}</h2>", table.to_html(index=False, na_rep="")]
    for figure in report.figures:
        parts.append(f"<h2>{html.escape(figure.title)}</h2>")
        if figure.file or figure.html:
            if figure.caption:
                parts.append(f"<p>{html.escape(figure.caption)}</p>")
            parts.append(f"<div class='figure'>{figure.html}</div>" if figure.html else
                         f"<img src='{html.escape(figure.file)}' alt='{html.escape(figure.title)}'>")
        else:
            parts.append(f"<p><em>Not made: {html.escape(figure.missing)}</em></p>")
    if plotly:
        parts.append(interactive.HOVER_PANEL)
    path = report.out / "index.html"
    store.atomic_write_text(path, "\n".join(parts))
    store.atomic_write_text(report.out / "numbers.json", json.dumps(report.numbers, indent=1, default=str))
    return path
