"""max-pool2d worked through: ``npae explain max-pool2d`` (every window, its maximum and that
maximum's flat index; with ``--matrix`` the picking matrix for this input), its figure, ``npae
gradcheck max-pool2d`` (and its planted bug: the gradient sent one pixel off), and its page in
docs/. max-unpool2d's file reuses the pooling half of all four."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.patches import Rectangle

import npae.functional as F
from npae import kernels as K
from npae.engine.shapes import format_hp as hp
from npae.engine.shapes import format_hw as hw
from npae.engine.shapes import pool2d_geometry, pool2d_size_text
from npae.ops.max_pool2d import MaxPool2d
from npae.tools.explain import drawing as D
from npae.tools.explain.example import as_tensor, input_hw, tie_free, windows
from npae.tools.explain.layout import (
    MAX_LISTED,
    check_line,
    grid,
    matrix_lines,
    num,
    size_lines,
    span,
    too_big_for_matrix,
    wrapped,
)
from npae.tools.parts import Case, Example, Explanation, Page
from npae.tools.settings import ExplainSettings, GradcheckSettings


# ------------------------------------------------------------------------------ the explanation
def explain(s: ExplainSettings) -> Explanation:
    op = "max_pool2d"
    in_hw, kernel, stride, g, x = pool_setup(s, op)
    y, idx = F.max_pool2d(as_tensor(x), kernel, stride, s.padding, s.dilation, return_indices=True)
    y, idx = y.data[0, 0], idx.data[0, 0]
    hand_y, hand_idx, items = pool_by_hand(x, g)
    lines, checks = pool_lines(in_hw, kernel, stride, g, x, y, idx, hand_y, hand_idx, items,
                               "max-pool2d")
    if s.matrix:
        n_in, n_out = in_hw[0] * in_hw[1], g.oh * g.ow
        too_big_for_matrix(n_out, n_in, f"input {hw(in_hw)}")
        m = np.zeros((n_out, n_in))
        m[np.arange(n_out), hand_idx.ravel()] = 1
        lines += ["", f"as a matrix, for this input: y.flat = P @ x.flat, P {n_out}x{n_in} "
                  "picks the maximum of each window (a 1 in row o at the index of o's maximum).",
                  "Pooling is not linear: another input puts the 1s elsewhere. Its backward "
                  "multiplies by P's transpose: each gradient goes back to its maximum."]
        lines += matrix_lines(m, (g.oh, g.ow), in_hw)
        checks.append(check_line("P @ x.flat", m @ x.ravel(), y.ravel(), "F.max_pool2d"))
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation(lines, (g.oh, g.ow), all(ok for _, ok in checks),
                       {"x": x, "y": y, "idx": idx, "geom": g})


# ------------------------------------------------------------------------------ shared with unpool
def pool_by_hand(x, g):
    """Each window's values, its maximum (first one in scan order on ties) and flat index."""
    h, w = x.shape
    rows, cols = windows(g)
    y = np.zeros((g.oh, g.ow))
    idx = np.zeros((g.oh, g.ow), dtype=np.int64)
    items = []
    for oy in range(g.oh):
        for ox in range(g.ow):
            best, where = None, None
            win = []
            for r in rows[oy]:
                row = []
                for c in cols[ox]:
                    if 0 <= r < h and 0 <= c < w:
                        row.append(num(x[r, c]))
                        if best is None or x[r, c] > best:
                            best, where = x[r, c], (r, c)
                    else:
                        row.append(".")
                win.append(row)
            y[oy, ox] = best
            idx[oy, ox] = where[0] * w + where[1]
            items.append((oy, ox, rows[oy], cols[ox], win, best, where))
    return y, idx, items


def pool_setup(s: ExplainSettings, op):
    """The example: input size, kernel, stride (default: the kernel), geometry, tie-free input."""
    in_hw = input_hw(s, (4, 4))
    kernel = s.kernel or (2, 2)
    stride = s.stride or kernel
    g = pool2d_geometry(op, in_hw, kernel, stride, s.padding, s.dilation, False)
    x = tie_free(s, in_hw, np.random.default_rng(s.seed))
    return in_hw, kernel, stride, g, x


def pool_lines(in_hw, kernel, stride, g, x, y, idx, hand_y, hand_idx, items, op_name,
               shape_label="output shape"):
    """The pooling told by hand (its windows, maxima and indices) and its two checks against
    the kernel's ``y`` and ``idx``; ``op_name`` starts the text."""
    w = in_hw[1]
    flat = np.arange(in_hw[0] * in_hw[1]).reshape(in_hw)
    lines = [
        f"{op_name}: each {hw(kernel)} window (stride {hp(stride)}, padding {hp((g.ph, g.pw))}) "
        f"is replaced by its largest value; the position of that value, as a flat index in the "
        f"{hw(in_hw)} input (row*{w} + col), is kept for max-unpool2d and for the backward.",
        "",
    ]
    lines += wrapped([(f"input {hw(in_hw)}", grid(x)), ("flat index of each pixel", grid(flat))])
    lines.append("")
    texts = [pool2d_size_text(in_hw[0], g.kh, g.sh, g.ph, g.dh)[0],
             pool2d_size_text(in_hw[1], g.kw, g.sw, g.pw, g.dw)[0]]
    lines += size_lines("max_pool2d", texts)
    lines.append(f"{shape_label}: {hw((g.oh, g.ow))} (input {hw(in_hw)})")
    lines.append("")
    lines.append("the windows (. = padding, never chosen), their maxima and flat indices:")
    for n, (oy, ox, rows, cols, win, best, (r, c)) in enumerate(items):
        if n == MAX_LISTED:
            lines.append(f"  ... ({len(items) - MAX_LISTED} more; the check covers all)")
            break
        shown = " / ".join(" ".join(row) for row in win)
        where = f"y[{oy},{ox}]: rows {span(rows)}, cols {span(cols)}:"
        lines.append(f"  {where} {shown:<{4 * g.kh * g.kw}} -> max {num(best)} at ({r},{c}), "
                     f"index {r}*{w} + {c} = {r * w + c}")
    if len(np.unique(x)) < x.size:
        lines.append("  (equal values: the first maximum in scan order, row by row, wins)")
    lines.append("")
    lines += wrapped([(f"{shape_label.split()[0]} {hw((g.oh, g.ow))} (npae's kernel)", grid(y)),
                      ("indices", grid(idx))])
    checks = [check_line("every maximum above", hand_y, y,
                         "F.max_pool2d"),
              check_line("every index above", hand_idx, idx, "F.max_pool2d")]
    return lines, checks


# ------------------------------------------------------------------------------ the figure
def draw(e: Explanation, path) -> Path:
    fig = D.new_figure(10, 3.8)
    axes = fig.subplots(1, 3, width_ratios=[e.arrays["x"].shape[1]] + [e.arrays["y"].shape[1]] * 2)
    pool_panels(axes, e.arrays)
    fig.suptitle("max-pool2d: each window keeps its largest value and remembers where it was",
                 fontsize=10)
    return D.save(fig, path)


def pool_panels(axes, a):
    """The input with its windows and maxima outlined, the pooled values, their indices."""
    x, y, idx, g = a["x"], a["y"], a["idx"], a["geom"]
    w = x.shape[1]
    D.grid(axes[0], x, f"input {hw(x.shape)}: windows and their maxima")
    for n in range(y.size):
        oy, ox = divmod(n, y.shape[1])
        color = D.COLORS[n % len(D.COLORS)]
        r0, c0 = oy * g.sh - g.ph, ox * g.sw - g.pw
        D.box(axes[0], max(r0, 0), max(c0, 0), min(r0 + g.dh * (g.kh - 1), x.shape[0] - 1),
              min(c0 + g.dw * (g.kw - 1), x.shape[1] - 1), color, dashed=n % 2 == 1)
        r, c = divmod(int(idx[oy, ox]), w)
        axes[0].add_patch(Rectangle((c - 0.42, r - 0.42), 0.84, 0.84, fill=False,
                                    edgecolor=color, lw=1.2, zorder=3))
        D.box(axes[1], oy, ox, oy, ox, color)
    D.grid(axes[1], y, f"pooled {hw(y.shape)}")
    D.grid(axes[2], idx, "flat indices (row*W + col)", cmap="Blues")


# ------------------------------------------------------------------------------ npae gradcheck
class _ShiftedMaxPool2d(MaxPool2d):
    """The planted bug, in a subclass used only by ``npae gradcheck --plant-bug``."""

    @staticmethod
    def backward(ctx, gy, gidx=None):
        (idx,) = ctx.saved_tensors
        h, w = ctx.hw
        shifted = (idx + 1) % (h * w)  # bug: off by one, the pixel after the maximum
        return (K.max_pool2d_bwd(np.ascontiguousarray(gy), shifted, h, w),)


def gradcheck_image(s: GradcheckSettings, op: str):
    """The pooling setup both max ops check: size, kernel, stride, geometry, a random generator
    and a tie-free image drawn from it."""
    rng = np.random.default_rng(s.seed)
    size = s.input or (4, 4)
    kernel = s.kernel or (2, 2)
    stride = s.stride or kernel
    g = pool2d_geometry(op, size, kernel, stride, s.padding, s.dilation, False)
    image = _tie_free(rng, (s.batch, s.channels) + size)
    return size, kernel, stride, g, rng, image


def _tie_free(rng, shape):
    """A shuffled 0..size-1, so no two values tie (the spacing 1 >> the difference step)."""
    return rng.permutation(int(np.prod(shape))).astype(np.float64).reshape(shape)


def gradcheck_case(s: GradcheckSettings, plant_bug: bool = False) -> Case:
    size, kernel, stride, g, _, image = gradcheck_image(s, "max-pool2d")

    def fn(x):
        if plant_bug:
            return _ShiftedMaxPool2d.apply(x, geom=g)[0]
        return F.max_pool2d(x, kernel, stride, s.padding, s.dilation)

    return Case(fn, [image], ["input"],
                f"kernel {hp(kernel)}, stride {hp(stride)}, padding {hp(s.padding)}; "
                "tie-free input",
                "the gradient goes to the pixel after the maximum (off by one)")


# ------------------------------------------------------------------------------ its page in docs/
PAGE = Page(
    "max-pool2d: max pooling",
    "Each window keeps only its largest value; with the default stride (the kernel size) "
    "the windows tile the image and a 2x2 pool halves each side. Pooling also records "
    "where each maximum was, as a flat index in the input plane (row * W + col, PyTorch's "
    "format): the backward and max-unpool2d use it. Ties go to the first maximum in scan "
    "order, row by row.",
    "max_pool2d",
    [Example("--input 4x4 --kernel 2",
             "A 2x2 pool on a 4x4 input (a shuffled 1..16, so no two values tie).")],
    Example("--input 4x4 --kernel 2 --png max-pool2d.png"),
    Example("--input 4x4 --kernel 2 --matrix"),
    "The whole gradient of each output goes to the input pixel that held the maximum, "
    "read from the saved indices (the forward is never recomputed); every other pixel gets "
    "zero. That scatter is max-unpool2d's forward. With create_graph=True it is recorded "
    "as max-unpool2d itself, whose gradient is the gather at the same indices, so the "
    "backward can be differentiated again; the indices are constants, so the second "
    "derivative with respect to the input is zero almost everywhere.",
    [("npae/ops/max_pool2d.py", "`MaxPool2d` and `max_pool2d`"),
     ("kernels/max_pool2d.py", "`max_pool2d_fwd` (value and index in one pass), "
                               "`max_pool2d_bwd`"),
     ("npae/engine/shapes.py", "`pool2d_geometry`"),
     ("tests/reference.py", "`max_pool2d_ref`, `max_pool2d_backward_ref`")],
)
