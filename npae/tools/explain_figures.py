"""``npae explain OP --png FILE``: the explanation drawn as grids of numbers.

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

from npae.engine.shapes import format_hw as hw
from npae.tools.explain import Explanation, num

_DPI = 100
_COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f"]


def _new(width, height) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # no Software/date metadata: the same explanation gives the same bytes
    fig.savefig(path, format="png", facecolor="white", metadata={"Software": None})
    fig.clear()
    return path


def _grid(ax, a, title, blank=None, colors=None, fontsize=None, cmap="Greys"):
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


def _box(ax, r0, c0, r1, c1, color, lw=2.2, dashed=False):
    """Outline cells r0..r1, c0..c1 (inclusive)."""
    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False,
                           edgecolor=color, lw=lw, ls="--" if dashed else "-", zorder=3))


def _padded(x, g):
    xp = np.zeros((x.shape[0] + 2 * g.ph, x.shape[1] + 2 * g.pw))
    xp[g.ph:g.ph + x.shape[0], g.pw:g.pw + x.shape[1]] = x
    pad = np.ones(xp.shape, dtype=bool)
    pad[g.ph:g.ph + x.shape[0], g.pw:g.pw + x.shape[1]] = False
    return xp, pad


def figure(e: Explanation, path) -> Path:
    """Draw explanation ``e`` into the PNG at ``path``; returns the path."""
    return _DRAW[e.op](e, path)


def _conv2d(e: Explanation, path) -> Path:
    a = e.arrays
    x, k, y, g = a["x"], a["k"], a["y"], a["geom"]
    xp, pad = _padded(x, g)
    fig = _new(11, 4.2)
    axes = fig.subplots(1, 3, width_ratios=[xp.shape[1], max(k.shape[1], 3), max(y.shape[1], 3)])
    _grid(axes[0], xp, f"input {hw(x.shape)}" + (f", padding {g.ph} (hatched)" if g.ph or g.pw
                                                else ""), blank=pad)
    _grid(axes[1], k, f"kernel {hw(k.shape)}")
    _grid(axes[2], y, f"output {hw(y.shape)}")
    # the windows of the first two outputs along the row show the stride
    for n, (oy, ox) in enumerate([(0, 0), (0, 1)][: y.shape[1]]):
        r0, c0 = oy * g.sh, ox * g.sw
        _box(axes[0], r0, c0, r0 + g.dh * (g.kh - 1), c0 + g.dw * (g.kw - 1), _COLORS[n],
             dashed=n == 1)
        _box(axes[2], oy, ox, oy, ox, _COLORS[n], dashed=n == 1)
    fig.suptitle(f"conv2d: kernel {hw(k.shape)}, stride {g.sh}, padding {g.ph}: "
                 f"{hw(x.shape)} -> {hw(y.shape)}. Each output = sum(window * kernel); the "
                 f"windows of y[0,0] and y[0,1] are outlined", fontsize=10)
    return _save(fig, path)


def _conv_transpose2d(e: Explanation, path) -> Path:
    a = e.arrays
    x, k, y, count, places = a["x"], a["k"], a["y"], a["count"], a["places"]
    copies = list(places.items())[:8]
    ncols = max(4, len(copies) if len(copies) <= 4 else (len(copies) + 1) // 2)
    nrows = 1 + (1 if len(copies) <= 4 else 2)
    fig = _new(2.4 * ncols, 2.5 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    top = [(x, f"input {hw(x.shape)}", None), (k, f"kernel {hw(k.shape)}", None),
           (count, "overlap count (copies per pixel)", None), (y, f"output {hw(y.shape)} = sum",
                                                               None)]
    for ax, (arr, title, _) in zip(axes[0], top, strict=False):
        ax.axis("on")
        _grid(ax, arr, title, cmap="Blues" if arr is count else "Greys")
    for n, ((i, j), taps) in enumerate(copies):
        ax = axes[1 + n // ncols, n % ncols]
        ax.axis("on")
        copy = np.zeros(y.shape)
        covered = np.zeros(y.shape, dtype=bool)
        for ta, tb, r, c, inside in taps:
            if inside:
                copy[r, c] += x[i, j] * k[ta, tb]
                covered[r, c] = True
        _grid(ax, copy, f"x[{i},{j}] = {num(x[i, j])} times the kernel", blank=~covered)
        color = _COLORS[n % len(_COLORS)]
        _box(axes[0, 0], i, j, i, j, color)
        r, c = np.nonzero(covered)
        if r.size:
            _box(ax, r.min(), c.min(), r.max(), c.max(), color)
    fig.suptitle("conv-transpose2d: each input pixel places a scaled copy of the kernel; "
                 "overlapping copies are summed", fontsize=10)
    return _save(fig, path)


def _pool_panels(axes, a):
    x, y, idx, g = a["x"], a["y"], a["idx"], a["geom"]
    w = x.shape[1]
    _grid(axes[0], x, f"input {hw(x.shape)}: windows and their maxima")
    for n in range(y.size):
        oy, ox = divmod(n, y.shape[1])
        color = _COLORS[n % len(_COLORS)]
        r0, c0 = oy * g.sh - g.ph, ox * g.sw - g.pw
        _box(axes[0], max(r0, 0), max(c0, 0), min(r0 + g.dh * (g.kh - 1), x.shape[0] - 1),
             min(c0 + g.dw * (g.kw - 1), x.shape[1] - 1), color, dashed=n % 2 == 1)
        r, c = divmod(int(idx[oy, ox]), w)
        axes[0].add_patch(Rectangle((c - 0.42, r - 0.42), 0.84, 0.84, fill=False,
                                    edgecolor=color, lw=1.2, zorder=3))
        _box(axes[1], oy, ox, oy, ox, color)
    _grid(axes[1], y, f"pooled {hw(y.shape)}")
    _grid(axes[2], idx, "flat indices (row*W + col)", cmap="Blues")


def _max_pool2d(e: Explanation, path) -> Path:
    fig = _new(10, 3.8)
    axes = fig.subplots(1, 3, width_ratios=[e.arrays["x"].shape[1]] + [e.arrays["y"].shape[1]] * 2)
    _pool_panels(axes, e.arrays)
    fig.suptitle("max-pool2d: each window keeps its largest value and remembers where it was",
                 fontsize=10)
    return _save(fig, path)


def _max_unpool2d(e: Explanation, path) -> Path:
    a = e.arrays
    fig = _new(13, 3.8)
    axes = fig.subplots(1, 4, width_ratios=[a["x"].shape[1], a["y"].shape[1], a["y"].shape[1],
                                            a["u"].shape[1]])
    _pool_panels(axes[:3], a)
    _grid(axes[3], a["u"], f"unpooled {hw(a['u'].shape)}: values back at their indices",
          blank=a["u"] == 0)
    fig.suptitle("max-unpool2d: every pooled value goes back to the position its maximum came "
                 "from; the rest is zero", fontsize=10)
    return _save(fig, path)


def _upsample(e: Explanation, path) -> Path:
    a = e.arrays
    x, y, rows, cols = a["x"], a["y"], a["rows"], a["cols"]
    palette = np.array([[int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)] for c in _COLORS])
    palette = 0.55 * palette / 255 + 0.45  # light, so the numbers stay readable
    xc = palette[np.arange(x.size).reshape(x.shape) % len(palette)]
    src = rows[:, None] * x.shape[1] + cols[None, :]
    yc = palette[src % len(palette)]
    fig = _new(9, 4)
    axes = fig.subplots(1, 2, width_ratios=[x.shape[1], y.shape[1]])
    _grid(axes[0], x, f"input {hw(x.shape)}", colors=xc)
    _grid(axes[1], y, f"output {hw(y.shape)}: colour = source pixel", colors=yc)
    fig.suptitle("upsample-nearest2d: every output pixel copies its nearest input pixel",
                 fontsize=10)
    return _save(fig, path)


def _im2col(e: Explanation, path) -> Path:
    a = e.arrays
    x, k, y, cols, pad, g = a["x"], a["k"], a["y"], a["cols"], a["pad"], a["geom"]
    xp, xpad = _padded(x, g)
    fig = _new(13, 4.8)
    axes = fig.subplots(1, 4, width_ratios=[xp.shape[1], 1.2, max(cols.shape[1], 3),
                                            max(y.shape[1], 2)])
    _grid(axes[0], xp, f"input {hw(x.shape)}" + (f", padding {g.ph} (hatched)" if g.ph or g.pw
                                                else ""), blank=xpad)
    _grid(axes[1], k.reshape(-1, 1), "kernel,\nflattened", fontsize=9)
    _grid(axes[2], cols, f"columns {cols.shape[0]}x{cols.shape[1]}: one window each",
          blank=pad, fontsize=9)
    _box(axes[2], 0, 0, cols.shape[0] - 1, 0, _COLORS[0])
    _box(axes[0], 0, 0, g.dh * (g.kh - 1), g.dw * (g.kw - 1), _COLORS[0])
    _grid(axes[3], y, f"output {hw(y.shape)}\n= kernel row @ columns")
    fig.suptitle("im2col: the first window (outlined) becomes the first column; the "
                 "convolution is then one matrix product", fontsize=10)
    return _save(fig, path)


_DRAW = {
    "conv2d": _conv2d,
    "conv-transpose2d": _conv_transpose2d,
    "max-pool2d": _max_pool2d,
    "max-unpool2d": _max_unpool2d,
    "upsample-nearest2d": _upsample,
    "im2col": _im2col,
}
