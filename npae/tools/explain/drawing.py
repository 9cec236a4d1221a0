"""What every explanation's figure (``npae explain OP --png FILE``) is drawn with: arrays as
grids of numbered cells, outlined windows, one PNG per figure.

Every panel shows arrays of the Explanation (computed by the real op and checked against the
hand-worked arithmetic), so the figure says exactly what the text says. Conventions follow
npae/training/figures.py: a Figure on the Agg canvas, no pyplot, one PNG per call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from npae.tools.explain.layout import num

_DPI = 100
COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
          "#17becf", "#bcbd22", "#7f7f7f"]


def new_figure(width, height) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # no Software/date metadata: the same explanation gives the same bytes
    fig.savefig(path, format="png", facecolor="white", metadata={"Software": None})
    fig.clear()
    return path


def grid(ax, a, title, blank=None, colors=None, fontsize=None, cmap="Greys"):
    """A 2-D array as cells with their numbers; ``blank`` cells show '.' on grey."""
    a = np.asarray(a, dtype=np.float64)
    h, w = a.shape
    shown = np.where(blank, np.nan, a) if blank is not None else a
    finite = shown[np.isfinite(shown)]
    span = max(1e-12, float(np.max(np.abs(finite))) if finite.size else 1.0)
    if colors is None:
        ax.imshow(np.abs(np.nan_to_num(shown)) / span, cmap=cmap, vmin=0, vmax=3.0,
                  interpolation="nearest")
    else:
        ax.imshow(colors, interpolation="nearest")
    size = fontsize or max(6, min(12, int(60 / max(h, w, 1))))
    for i in range(h):
        for j in range(w):
            is_blank = blank is not None and blank[i, j]
            ax.text(j, i, "." if is_blank else num(a[i, j]), ha="center", va="center",
                    fontsize=size, color="#777777" if is_blank else "black")
    if blank is not None:
        for i, j in zip(*np.nonzero(blank), strict=True):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                   edgecolor="#d0d0d0", lw=0, zorder=0.5))
    ax.set_xticks(range(w))
    ax.set_yticks(range(h))
    ax.tick_params(labelsize=7, length=0)
    ax.set_xticks(np.arange(-0.5, w), minor=True)
    ax.set_yticks(np.arange(-0.5, h), minor=True)
    ax.grid(which="minor", color="#bbbbbb", lw=0.6)
    ax.tick_params(which="minor", length=0)
    ax.set_title(title, fontsize=9)


def box(ax, r0, c0, r1, c1, color, lw=2.2, dashed=False):
    """Outline cells r0..r1, c0..c1 (inclusive)."""
    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False,
                           edgecolor=color, lw=lw, ls="--" if dashed else "-", zorder=3))
