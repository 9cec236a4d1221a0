"""upsample-nearest2d worked through: ``npae explain upsample-nearest2d`` (the source pixel of
every output pixel; with ``--matrix`` the copy matrix), its figure, ``npae gradcheck
upsample-nearest2d`` (and its planted bug: copies not summed), and its page in docs/."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import npae.functional as F
from npae.engine.shapes import format_hw as hw
from npae.engine.shapes import upsample_nearest2d_plan, upsample_size_text
from npae.ops.upsample_nearest2d import UpsampleNearest2d
from npae.tools.explain import drawing as D
from npae.tools.explain.example import as_tensor, check_side, input_hw, values
from npae.tools.explain.layout import (
    check_line,
    grid,
    indented,
    matrix_lines,
    size_lines,
    too_big_for_matrix,
    wrapped,
)
from npae.tools.parts import Case, Example, Explanation, Page
from npae.tools.settings import ExplainSettings, GradcheckSettings


# ------------------------------------------------------------------------------ the explanation
def explain(s: ExplainSettings) -> Explanation:
    op = "upsample_nearest2d"
    in_hw = input_hw(s, (2, 2))
    scale = float(s.scale)
    if math.isfinite(scale) and scale > 0:  # else the plan says what is wrong with it
        check_side("an output", (math.floor(in_hw[0] * scale), math.floor(in_hw[1] * scale)),
                   "--input or --scale")
    oh, ow, rows, cols = upsample_nearest2d_plan(op, in_hw, scale_factor=scale)
    rng = np.random.default_rng(s.seed)
    x = values(s.values, in_hw, "--values", rng, 1, 9)
    y = F.upsample_nearest2d(as_tensor(x), scale_factor=scale).data[0, 0]
    hand = np.array([[x[rows[i], cols[j]] for j in range(ow)] for i in range(oh)])
    h = in_hw[0]
    if oh == h:
        rule = "i (same size)"
    elif oh == 2 * h:
        rule = "i // 2 (the size doubles)"
    else:
        rule = (f"min(floor(i * {1 / scale:.6g}), H - 1) (the scale 1/scale_factor is taken in "
                "float32, as PyTorch does)")
    lines = [
        f"upsample-nearest2d: scale factor {scale:g}; every output pixel copies the nearest "
        "input pixel, nothing is learned and nothing is summed.",
        "",
    ]
    lines += indented([f"input {hw(in_hw)}"] + grid(x))
    lines.append("")
    texts = [upsample_size_text(in_hw[0], scale)[0], upsample_size_text(in_hw[1], scale)[0]]
    lines += size_lines(op, texts)
    lines.append(f"output shape: {hw((oh, ow))} (input {hw(in_hw)})")
    lines.append("")
    lines.append(f"output row i copies input row {rule}; columns alike:")
    width = max(len(str(v)) for v in list(range(max(oh, ow))))
    lines.append("  output row:   " + " ".join(str(i).rjust(width) for i in range(oh)))
    lines.append("  input row:    " + " ".join(str(int(r)).rjust(width) for r in rows))
    lines.append("  output col:   " + " ".join(str(i).rjust(width) for i in range(ow)))
    lines.append("  input col:    " + " ".join(str(int(c)).rjust(width) for c in cols))
    lines.append("")
    source = np.array([[f"{rows[i]},{cols[j]}" for j in range(ow)] for i in range(oh)],
                      dtype=object)
    lines += wrapped([("source pixel (row,col) of each output pixel", grid(source)),
                      (f"output {hw((oh, ow))} (npae's kernel)", grid(y))])
    lines.append("")
    lines.append("backward: each input pixel receives the sum of the gradients of all its "
                 "copies.")
    checks = [check_line("every copied value above", hand, y,
                         "F.upsample_nearest2d")]
    if s.matrix:
        n_in, n_out = in_hw[0] * in_hw[1], oh * ow
        too_big_for_matrix(n_out, n_in, f"output {hw((oh, ow))}")
        m = np.zeros((n_out, n_in))
        for i in range(oh):
            for j in range(ow):
                m[i * ow + j, rows[i] * in_hw[1] + cols[j]] = 1
        lines += ["", f"as a matrix: y.flat = U @ x.flat, U {n_out}x{n_in}: one 1 per row, in "
                  "the column of that pixel's source; the backward multiplies by U's transpose "
                  "(summing each column's copies)."]
        lines += matrix_lines(m, (oh, ow), in_hw)
        checks.append(check_line("U @ x.flat", m @ x.ravel(), y.ravel(), "F.upsample_nearest2d"))
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation(lines, (oh, ow), all(ok for _, ok in checks),
                       {"x": x, "y": y, "rows": rows, "cols": cols})


# ------------------------------------------------------------------------------ the figure
def draw(e: Explanation, path) -> Path:
    a = e.arrays
    x, y, rows, cols = a["x"], a["y"], a["rows"], a["cols"]
    palette = np.array([[int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)] for c in D.COLORS])
    palette = 0.55 * palette / 255 + 0.45  # light, so the numbers stay readable
    xc = palette[np.arange(x.size).reshape(x.shape) % len(palette)]
    src = rows[:, None] * x.shape[1] + cols[None, :]
    yc = palette[src % len(palette)]
    fig = D.new_figure(9, 4)
    axes = fig.subplots(1, 2, width_ratios=[x.shape[1], y.shape[1]])
    D.grid(axes[0], x, f"input {hw(x.shape)}", colors=xc)
    D.grid(axes[1], y, f"output {hw(y.shape)}: colour = source pixel", colors=yc)
    fig.suptitle("upsample-nearest2d: every output pixel copies its nearest input pixel",
                 fontsize=10)
    return D.save(fig, path)


# ------------------------------------------------------------------------------ npae gradcheck
class _FirstCopyUpsampleNearest2d(UpsampleNearest2d):
    """The planted bug, in a subclass used only by ``npae gradcheck --plant-bug``."""

    @staticmethod
    def backward(ctx, gy):
        # bug: each source pixel takes the gradient of its first copy only, instead of the sum
        _, first_r = np.unique(ctx.rows, return_index=True)
        _, first_c = np.unique(ctx.cols, return_index=True)
        return (np.ascontiguousarray(gy[:, :, first_r][:, :, :, first_c]),)


def gradcheck_case(s: GradcheckSettings, plant_bug: bool = False) -> Case:
    rng = np.random.default_rng(s.seed)
    size = s.input or (3, 3)
    _, _, rows, cols = upsample_nearest2d_plan("upsample-nearest2d", size, scale_factor=s.scale)

    def fn(x):
        if plant_bug:
            return _FirstCopyUpsampleNearest2d.apply(x, rows=rows, cols=cols)
        return F.upsample_nearest2d(x, scale_factor=s.scale)

    return Case(fn, [rng.standard_normal((s.batch, s.channels) + size)], ["input"],
                f"scale_factor {s.scale:g}",
                "each pixel takes the gradient of its first copy instead of the sum of all")


# ------------------------------------------------------------------------------ its page in docs/
PAGE = Page(
    "upsample-nearest2d: nearest-neighbour upsampling",
    "Every output pixel copies its nearest input pixel; with scale factor 2 each pixel "
    "becomes a 2x2 block. Nothing is learned and nothing is summed, so every output pixel "
    "comes from exactly one input pixel: followed by a stride-1 convolution it is the "
    "checkerboard-free alternative to conv-transpose2d. Non-integer factors pick the same "
    "pixels as PyTorch (the source index is computed in float32 as PyTorch does).",
    "upsample_nearest2d",
    [Example("--input 2x2 --scale 2", "Scale factor 2 on a 2x2 input."),
     Example("--input 2x2 --scale 1.5",
             "A non-integer factor: floor(2 * 1.5) = 3, and the rows and columns repeat "
             "unevenly.")],
    Example("--input 2x2 --scale 2 --png upsample-nearest2d.png"),
    Example("--input 2x2 --scale 2 --matrix"),
    "Each input pixel receives the sum of the gradients of all its copies (the transpose "
    "of the copy matrix). With create_graph=True that sum is recorded as an op (SumCopies) "
    "whose own gradient is the copy, the upsample again, so the backward can be "
    "differentiated again.",
    [("npae/ops/upsample_nearest2d.py", "`UpsampleNearest2d`, `upsample_nearest2d`, "
                                       "`interpolate`"),
     ("kernels/upsample_nearest2d.py", "`upsample_nearest2d_fwd`, `upsample_nearest2d_bwd`"),
     ("npae/engine/shapes.py", "`upsample_nearest2d_plan`: output size and source pixels"),
     ("tests/reference.py", "`upsample_nearest2d_ref`, `upsample_nearest2d_backward_ref`")],
)
