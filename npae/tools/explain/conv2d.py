"""conv2d worked through: ``npae explain conv2d`` (every window, its products and sum; with
``--matrix`` the banded matrix), its figure, ``npae gradcheck conv2d`` (and its planted bug: a
flipped weight gradient), and its page in docs/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import npae.functional as F
from npae.engine.shapes import conv2d_geometry, conv2d_size_text
from npae.engine.shapes import format_hp as hp
from npae.engine.shapes import format_hw as hw
from npae.ops.conv2d import Conv2d
from npae.tools.explain import drawing as D
from npae.tools.explain.example import as_tensor, input_hw, padded, values, windows
from npae.tools.explain.layout import (
    MAX_LISTED,
    check_line,
    grid,
    indented,
    matrix_lines,
    num,
    side_by_side,
    size_lines,
    span,
    sum_text,
    too_big_for_matrix,
    wrapped,
)
from npae.tools.parts import Case, Example, Explanation, Page
from npae.tools.settings import ExplainSettings, GradcheckSettings


# ------------------------------------------------------------------------------ the explanation
def explain(s: ExplainSettings) -> Explanation:
    op = "conv2d"
    in_hw = input_hw(s, (4, 4))
    kernel = s.kernel or (3, 3)
    stride = s.stride or (1, 1)
    g = conv2d_geometry(op, in_hw, kernel, stride, s.padding, s.dilation)
    rng = np.random.default_rng(s.seed)
    x = values(s.values, in_hw, "--values", rng, 0, 9)
    k = values(s.weights, kernel, "--weights", rng, -2, 2)
    y = F.conv2d(as_tensor(x), as_tensor(k), stride=stride, padding=s.padding,
                 dilation=s.dilation).data[0, 0]
    hand, items = _by_hand(x, k, g)

    lines = _intro(op, g, in_hw)
    lines.append("Each output element is the sum of the kernel times the window under it.")
    lines.append("")
    xp, pad = padded(x, g.ph, g.pw)
    title = (f"input {hw(in_hw)} with padding {hp((g.ph, g.pw))} (. = padding, a zero)"
             if g.ph or g.pw else f"input {hw(in_hw)}")
    lines += wrapped([(title, grid(xp, pad)), (f"kernel {hw(kernel)}", grid(k))])
    lines.append("")
    texts = [conv2d_size_text(in_hw[0], g.kh, g.sh, g.ph, g.dh)[0],
             conv2d_size_text(in_hw[1], g.kw, g.sw, g.pw, g.dw)[0]]
    lines += size_lines(op, texts)
    lines.append(_size_verdict(in_hw, (g.oh, g.ow), g))
    lines.append("")
    lines.append("each output element: the window it reads (input rows and columns; negative "
                 "or too large = padding), times the kernel, summed")
    for n, (oy, ox, rows, cols, win, wpad, terms, total) in enumerate(items):
        if n == MAX_LISTED:
            lines.append(f"  ... ({len(items) - MAX_LISTED} more; the check covers all)")
            break
        prods = win * k
        lines.append(f"y[{oy},{ox}] reads rows {span(rows)}, columns {span(cols)}")
        block = side_by_side([("window", grid(win, wpad)), ("kernel", grid(k)),
                              ("products", grid(prods, wpad))], joiners=["*", "="], gap=5)
        lines += indented(block, "    ")
        note = " (padding adds 0)" if wpad.any() else ""
        lines.append(f"    sum: {sum_text(terms)} = {num(total)}{note}")
    lines.append("")
    lines.append(f"output {hw((g.oh, g.ow))} (npae's kernel):")
    lines += indented(grid(y))
    checks = [check_line("every sum above", hand, y,
                         "F.conv2d")]
    if y.shape != (g.oh, g.ow):
        checks.append((f"check FAILED: the kernel returned {hw(y.shape)}, the formula says "
                       f"{hw((g.oh, g.ow))}", False))
    if s.matrix:
        lines.append("")
        lines += matrix_section(x, k, g, in_hw, y, checks)
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation(lines, (g.oh, g.ow), all(ok for _, ok in checks),
                       {"x": x, "k": k, "y": y, "geom": g, "items": items})


def _by_hand(x, k, g):
    """Every output element as its window, products and sum, from the definition."""
    h, w = x.shape
    rows, cols = windows(g)
    y = np.zeros((g.oh, g.ow))
    items = []
    for oy in range(g.oh):
        for ox in range(g.ow):
            win = np.zeros((g.kh, g.kw))
            pad = np.zeros((g.kh, g.kw), dtype=bool)
            terms, total = [], 0.0
            for i, r in enumerate(rows[oy]):
                for j, c in enumerate(cols[ox]):
                    if 0 <= r < h and 0 <= c < w:
                        win[i, j] = x[r, c]
                        total += x[r, c] * k[i, j]
                        terms.append(num(x[r, c] * k[i, j]))
                    else:
                        pad[i, j] = True
            y[oy, ox] = total
            items.append((oy, ox, rows[oy], cols[ox], win, pad, terms, total))
    return y, items


def _intro(op, g, in_hw):
    h, w = in_hw
    what = (f"a {g.kh}x{g.kw} kernel slides over the {h}x{w} input with stride {hp((g.sh, g.sw))}"
            f" and padding {hp((g.ph, g.pw))}")
    if max(g.dh, g.dw) > 1:
        what += f", dilation {hp((g.dh, g.dw))} (the kernel's taps are that far apart)"
    return [f"{op}: {what}."]


def _size_verdict(in_hw, out_hw, g) -> str:
    if tuple(out_hw) == tuple(in_hw):
        return (f"output shape: {hw(out_hw)}, the same as the input: a {g.kh}x{g.kw} kernel with "
                f"stride {g.sh} and padding {g.ph} keeps the size")
    if max(g.sh, g.sw) > 1:
        return (f"output shape: {hw(out_hw)}: stride {hp((g.sh, g.sw))} moves the window "
                f"{hp((g.sh, g.sw))} pixels at a time, so the {hw(in_hw)} input becomes "
                f"{hw(out_hw)} (a learned downsampling)")
    return f"output shape: {hw(out_hw)} (input {hw(in_hw)})"


# ------------------------------------------------------------------------------ --matrix
def conv_matrix(k, in_hw, g):
    """conv2d as a (oh*ow, h*w) matrix, from the definition: row o holds the kernel weights at
    the columns of the pixels output o reads."""
    h, w = in_hw
    m = np.zeros((g.oh * g.ow, h * w))
    rows, cols = windows(g)
    for oy in range(g.oh):
        for ox in range(g.ow):
            for i, r in enumerate(rows[oy]):
                for j, c in enumerate(cols[ox]):
                    if 0 <= r < h and 0 <= c < w:
                        m[oy * g.ow + ox, r * w + c] += k[i, j]
    return m


def matrix_section(x, k, g, in_hw, y, checks) -> list[str]:
    """The --matrix section (also im2col's): the banded matrix M, and M @ x.flat checked
    against the kernel's ``y`` (appended to ``checks``)."""
    too_big_for_matrix(g.oh * g.ow, in_hw[0] * in_hw[1], f"input {hw(in_hw)}")
    m = conv_matrix(k, in_hw, g)
    lines = [f"as a matrix: y.flat = M @ x.flat, M is {m.shape[0]}x{m.shape[1]} (one row per "
             f"output pixel, one column per input pixel; . = 0)."]
    lines.append("Row o holds the kernel's weights at the pixels output o reads; neighbouring "
                 "rows hold the same weights shifted by the stride: a banded matrix.")
    lines += matrix_lines(m, (g.oh, g.ow), in_hw)
    checks.append(check_line("M @ x.flat", m @ x.ravel(), y.ravel(), "F.conv2d"))
    return lines


# ------------------------------------------------------------------------------ the figure
def draw(e: Explanation, path) -> Path:
    a = e.arrays
    x, k, y, g = a["x"], a["k"], a["y"], a["geom"]
    xp, pad = padded(x, g.ph, g.pw)
    fig = D.new_figure(11, 4.2)
    axes = fig.subplots(1, 3, width_ratios=[xp.shape[1], max(k.shape[1], 3), max(y.shape[1], 3)])
    D.grid(axes[0], xp, f"input {hw(x.shape)}" + (f", padding {g.ph} (hatched)" if g.ph or g.pw
                                                  else ""), blank=pad)
    D.grid(axes[1], k, f"kernel {hw(k.shape)}")
    D.grid(axes[2], y, f"output {hw(y.shape)}")
    # the windows of the first two outputs along the row show the stride
    for n, (oy, ox) in enumerate([(0, 0), (0, 1)][: y.shape[1]]):
        r0, c0 = oy * g.sh, ox * g.sw
        D.box(axes[0], r0, c0, r0 + g.dh * (g.kh - 1), c0 + g.dw * (g.kw - 1), D.COLORS[n],
              dashed=n == 1)
        D.box(axes[2], oy, ox, oy, ox, D.COLORS[n], dashed=n == 1)
    fig.suptitle(f"conv2d: kernel {hw(k.shape)}, stride {g.sh}, padding {g.ph}: "
                 f"{hw(x.shape)} -> {hw(y.shape)}. Each output = sum(window * kernel); the "
                 f"windows of y[0,0] and y[0,1] are outlined", fontsize=10)
    return D.save(fig, path)


# ------------------------------------------------------------------------------ npae gradcheck
class _FlippedWeightGradConv2d(Conv2d):
    """The planted bug: a subclass used only by ``npae gradcheck --plant-bug`` (F.conv2d keeps
    calling the real Conv2d)."""

    @staticmethod
    def backward(ctx, gy):
        gx, gw, gb = Conv2d.backward(ctx, gy)
        return gx, gw[:, :, ::-1, ::-1].copy(), gb  # bug: kernel flipped (conv vs correlation)


def gradcheck_case(s: GradcheckSettings, plant_bug: bool = False) -> Case:
    op = "conv2d"
    rng = np.random.default_rng(s.seed)
    n, c, o = s.batch, s.channels, s.out_channels
    size = s.input or (5, 5)
    kernel, stride = s.kernel or (3, 3), s.stride or (1, 1)
    g = conv2d_geometry(op, size, kernel, stride, s.padding, s.dilation)
    inputs = [rng.standard_normal((n, c) + size), rng.standard_normal((o, c) + kernel),
              rng.standard_normal(o)]

    def fn(x, w, b):
        if plant_bug:
            return _FlippedWeightGradConv2d.apply(x, w, b, geom=g)
        return F.conv2d(x, w, b, stride, s.padding, s.dilation)

    return Case(fn, inputs, ["input", "weight", "bias"],
                f"kernel {hp(kernel)}, stride {hp(stride)}, padding {hp(s.padding)}, dilation "
                f"{hp(s.dilation)}", "the weight gradient comes back flipped (the classic "
                "convolution-versus-correlation mix-up)")


# ------------------------------------------------------------------------------ its page in docs/
PAGE = Page(
    "conv2d: convolution",
    "A small kernel slides over the image; every output pixel is the sum of the kernel "
    "times the window of input under it (PyTorch's convolution is a cross-correlation: the "
    "kernel is not flipped). Padding adds a frame of zeros so that windows can hang over "
    "the border; stride moves the window more than one pixel at a time, which makes a "
    "strided convolution a learned downsampling.",
    "conv2d",
    [Example("--input 4x4 --kernel 3 --stride 1 --padding 1",
             "The article's first example: a 3x3 kernel with stride 1 and padding 1 keeps a "
             "4x4 input at 4x4."),
     Example("--input 4x4 --kernel 3 --stride 2 --padding 1",
             "The same kernel with stride 2 reads every second window: 4x4 becomes 2x2.")],
    Example("--input 4x4 --kernel 3 --stride 2 --padding 1 --png conv2d.png"),
    Example("--input 4x4 --kernel 3 --stride 1 --matrix"),
    "The gradient with respect to the input is a transposed convolution of the output "
    "gradient with the same kernel (every output gradient is spread back over the window it "
    "read); the gradient with respect to the kernel correlates the input with the output "
    "gradient (one matrix product over im2col columns, or, on the one-image path, a dot "
    "product per tap); the bias gradient sums the output gradient. In matrix terms: "
    "y = M x, so dL/dx = M^T dL/dy, and M^T is the "
    "matrix of conv-transpose2d. For second derivatives (create_graph=True) the backward "
    "is itself built from differentiable ops: the input and kernel gradients are two of "
    "conv2d's three bilinear maps (output, input gradient, kernel gradient), one op "
    "(`Conv2dBilinear`, npae/ops/conv2d_bilinear.py) whose gradients are its other maps; "
    "the bias gradient is a sum.",
    [("npae/ops/conv2d.py", "`Conv2d` (forward and backward) and `conv2d`, the checks"),
     ("kernels/conv2d.py", "`conv2d_fwd`, `conv2d_bwd_input`, `conv2d_bwd_weight`: im2col + "
                           "GEMM in bounded memory; `conv2d_plan` picks the path"),
     ("kernels/conv2d_image.py", "`conv2d_image_fwd` and its backwards: one image per "
                                 "thread, its taps in cache, for few output channels"),
     ("kernels/im2col.py", "`im2col_rows`, `col2im_rows`"),
     ("npae/engine/shapes.py", "`conv2d_geometry`: the output size and its errors"),
     ("tests/reference.py", "`conv2d_ref`: the float64 loop every kernel is tested against")],
)
