"""im2col worked through: ``npae explain im2col`` (every window copied into a column, and the
convolution as one matrix product), its figure, ``npae gradcheck im2col`` (im2col made
differentiable here, its backward col2im; the planted bug: overlaps that overwrite instead of
adding up), and its page in docs/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import npae.functional as F
from npae import kernels as K
from npae.engine.function import Function
from npae.engine.shapes import conv2d_geometry, conv2d_size_text
from npae.engine.shapes import format_hp as hp
from npae.engine.shapes import format_hw as hw
from npae.tools.explain import drawing as D
from npae.tools.explain.conv2d import matrix_section
from npae.tools.explain.example import as_tensor, input_hw, padded, values, windows
from npae.tools.explain.layout import (
    cells,
    check_line,
    grid,
    indented,
    num,
    size_lines,
    wrapped,
)
from npae.tools.parts import Case, Example, Explanation, Page
from npae.tools.settings import ExplainSettings, GradcheckSettings


# ------------------------------------------------------------------------------ the explanation
def explain(s: ExplainSettings) -> Explanation:
    op = "im2col"
    in_hw = input_hw(s, (4, 4))
    kernel = s.kernel or (3, 3)
    stride = s.stride or (1, 1)
    g = conv2d_geometry(op, in_hw, kernel, stride, s.padding, s.dilation)
    rng = np.random.default_rng(s.seed)
    x = values(s.values, in_hw, "--values", rng, 0, 9)
    k = values(s.weights, kernel, "--weights", rng, -2, 2)
    cols = K.im2col(x[None, None], *g.args, g.oh, g.ow)[0]  # (kh*kw, oh*ow)
    y = F.conv2d(as_tensor(x), as_tensor(k), stride=stride, padding=s.padding,
                 dilation=s.dilation).data[0, 0]
    h, w = in_hw
    rows_, cols_ = windows(g)
    hand_cols = np.zeros((g.kh * g.kw, g.oh * g.ow))
    pad = np.zeros(hand_cols.shape, dtype=bool)
    for oy in range(g.oh):
        for ox in range(g.ow):
            for i, r in enumerate(rows_[oy]):
                for j, c in enumerate(cols_[ox]):
                    if 0 <= r < h and 0 <= c < w:
                        hand_cols[i * g.kw + j, oy * g.ow + ox] = x[r, c]
                    else:
                        pad[i * g.kw + j, oy * g.ow + ox] = True
    wrow = k.reshape(1, -1)
    hand_y = (wrow @ hand_cols).reshape(g.oh, g.ow)

    lines = [
        f"im2col: every {hw(kernel)} window of the input (stride {hp(stride)}, padding "
        f"{hp((g.ph, g.pw))}, dilation {hp((g.dh, g.dw))}) is copied into one column.",
        f"conv2d then becomes one matrix product: weights (1 x {g.kh * g.kw}) @ columns "
        f"({g.kh * g.kw} x {g.oh * g.ow}).",
        "",
    ]
    xp, xpad = padded(x, g.ph, g.pw)
    title = (f"input {hw(in_hw)} with padding {hp((g.ph, g.pw))} (. = padding)"
             if g.ph or g.pw else f"input {hw(in_hw)}")
    lines += wrapped([(title, grid(xp, xpad)), (f"kernel {hw(kernel)}", grid(k))])
    lines.append("")
    texts = [conv2d_size_text(h, g.kh, g.sh, g.ph, g.dh)[0],
             conv2d_size_text(w, g.kw, g.sw, g.pw, g.dw)[0]]
    lines += size_lines("conv2d", texts)
    lines.append(f"output shape: {hw((g.oh, g.ow))}, so {g.oh * g.ow} windows and "
                 f"{g.oh * g.ow} columns")
    lines.append("")
    lines.append(f"the column matrix ({g.kh * g.kw} x {g.oh * g.ow}): column (oy,ox) is the "
                 "window of output (oy,ox), read row by row; row (i,j) is kernel tap (i,j); "
                 ". = padding")
    labels = [f"{oy},{ox}" for oy in range(g.oh) for ox in range(g.ow)]
    shown = cells(cols, pad)
    width = max(max(len(c) for row in shown for c in row), max(len(x_) for x_ in labels))
    head = "  tap    " + " ".join(lab.rjust(width) for lab in labels)
    lines.append(head)
    for t in range(g.kh * g.kw):
        lines.append(f"  ({t // g.kw},{t % g.kw})  " + " ".join(c.rjust(width)
                                                            for c in shown[t]))
    lines.append("")
    lines.append("the kernel, flattened row by row, times the columns:")
    lines.append("  weights: " + " ".join(num(v) for v in wrow.ravel()))
    lines.append("  result:  " + " ".join(num(v) for v in hand_y.ravel()))
    lines.append(f"reshaped to {hw((g.oh, g.ow))}, this is the convolution (npae's kernel):")
    lines += indented(grid(y))
    lines.append("With C input channels the columns have C*kh*kw rows, and with O filters the "
                 "weights are an O x C*kh*kw matrix: still one product.")
    checks = [check_line("the column matrix above", hand_cols, cols,
                         "npae.kernels.im2col"),
              check_line("weights @ columns", hand_y, y, "F.conv2d")]
    if s.matrix:
        lines.append("")
        lines += matrix_section(x, k, g, in_hw, y, checks)
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation(lines, (g.oh, g.ow), all(ok for _, ok in checks),
                       {"x": x, "k": k, "y": y, "cols": cols, "pad": pad, "geom": g})


# ------------------------------------------------------------------------------ the figure
def draw(e: Explanation, path) -> Path:
    a = e.arrays
    x, k, y, cols, pad, g = a["x"], a["k"], a["y"], a["cols"], a["pad"], a["geom"]
    xp, xpad = padded(x, g.ph, g.pw)
    fig = D.new_figure(13, 4.8)
    axes = fig.subplots(1, 4, width_ratios=[xp.shape[1], 1.2, max(cols.shape[1], 3),
                                            max(y.shape[1], 2)])
    D.grid(axes[0], xp, f"input {hw(x.shape)}" + (f", padding {g.ph} (hatched)" if g.ph or g.pw
                                                  else ""), blank=xpad)
    D.grid(axes[1], k.reshape(-1, 1), "kernel,\nflattened", fontsize=9)
    D.grid(axes[2], cols, f"columns {cols.shape[0]}x{cols.shape[1]}: one window each",
           blank=pad, fontsize=9)
    D.box(axes[2], 0, 0, cols.shape[0] - 1, 0, D.COLORS[0])
    D.box(axes[0], 0, 0, g.dh * (g.kh - 1), g.dw * (g.kw - 1), D.COLORS[0])
    D.grid(axes[3], y, f"output {hw(y.shape)}\n= kernel row @ columns")
    fig.suptitle("im2col: the first window (outlined) becomes the first column; the "
                 "convolution is then one matrix product", fontsize=10)
    return D.save(fig, path)


# ------------------------------------------------------------------------------ npae gradcheck
class Im2col(Function):
    """im2col as a differentiable op (for checking only): its backward is col2im."""

    @staticmethod
    def forward(ctx, x, geom):
        ctx.geom, ctx.shape = geom, x.shape
        return K.im2col(np.ascontiguousarray(x), *geom.args, geom.oh, geom.ow)

    @staticmethod
    def backward(ctx, gcols):
        g = ctx.geom
        n, c, h, w = ctx.shape
        return (K.col2im(np.ascontiguousarray(gcols), c, h, w, *g.args, g.oh, g.ow),)

    @staticmethod
    def backward_graph(ctx, gcols):
        # create_graph=True: col2im as an op of its own, whose gradient is im2col again
        return (Col2im.apply(gcols, geom=ctx.geom, shape=ctx.shape),)


class Col2im(Function):
    """col2im as a differentiable op: im2col's gradient, whose own gradient is im2col."""

    @staticmethod
    def forward(ctx, gcols, geom, shape):
        ctx.geom = geom
        n, c, h, w = shape
        return K.col2im(np.ascontiguousarray(gcols), c, h, w, *geom.args, geom.oh, geom.ow)

    @staticmethod
    def backward(ctx, gx):
        g = ctx.geom
        return (K.im2col(np.ascontiguousarray(gx), *g.args, g.oh, g.ow),)

    @staticmethod
    def backward_graph(ctx, gx):
        return (Im2col.apply(gx, geom=ctx.geom),)


class _OverwritingIm2col(Im2col):
    """The planted bug, in a subclass used only by ``npae gradcheck --plant-bug``."""

    @staticmethod
    def backward(ctx, gcols):
        # bug: overlapping windows overwrite each other instead of adding up
        g = ctx.geom
        n, c, h, w = ctx.shape
        gx = np.zeros(ctx.shape)
        for ch in range(c):
            for i in range(g.kh):
                for j in range(g.kw):
                    r = (ch * g.kh + i) * g.kw + j
                    for oy in range(g.oh):
                        for ox in range(g.ow):
                            hy, wx = oy * g.sh - g.ph + i * g.dh, ox * g.sw - g.pw + j * g.dw
                            if 0 <= hy < h and 0 <= wx < w:
                                gx[:, ch, hy, wx] = gcols[:, r, oy * g.ow + ox]
        return (gx,)


def gradcheck_case(s: GradcheckSettings, plant_bug: bool = False) -> Case:
    rng = np.random.default_rng(s.seed)
    size = s.input or (4, 4)
    kernel, stride = s.kernel or (3, 3), s.stride or (1, 1)
    g = conv2d_geometry("im2col", size, kernel, stride, s.padding, s.dilation)
    cls = _OverwritingIm2col if plant_bug else Im2col

    def fn(x):
        return cls.apply(x, geom=g)

    return Case(fn, [rng.standard_normal((s.batch, s.channels) + size)], ["input"],
                f"kernel {hp(kernel)}, stride {hp(stride)}, padding {hp(s.padding)}, dilation "
                f"{hp(s.dilation)};"
                f" backward = col2im", "col2im lets overlapping windows overwrite each other "
                "instead of adding up")


# ------------------------------------------------------------------------------ its page in docs/
PAGE = Page(
    "im2col: a convolution as one matrix product",
    "im2col copies every window of the (padded) input into one column of a matrix. The "
    "convolution is then a single matrix product, weights (O x C*kh*kw) times columns "
    "(C*kh*kw x oH*oW), which BLAS computes fast. Its adjoint, col2im, adds every column "
    "entry back onto the pixel it came from, so overlapping windows sum: that is the "
    "transposed convolution and conv2d's input gradient.",
    "conv2d",
    [Example("--input 4x4 --kernel 3",
             "A 3x3 kernel on a 4x4 input: 4 windows, so a 9 x 4 column matrix."),
     Example("--input 3x3 --kernel 2 --padding 1",
             "With padding, windows that hang over the border read zeros (shown as .).")],
    Example("--input 4x4 --kernel 3 --padding 1 --png im2col.png"),
    None,
    "im2col is linear; its transpose is col2im, which scatters column entries back and "
    "sums the overlaps. npae's batched convolution path uses the pair in both directions: "
    "conv2d's forward is im2col then a product, its input gradient is a product then col2im. "
    "For few output channels over a long window, kernels/conv2d_image.py works one image "
    "at a time instead (with stride 1, each tap is a shifted run of the padded image, no "
    "columns at all); `conv2d_plan` in kernels/conv2d.py picks. Differentiated twice "
    "(create_graph=True, `npae gradcheck im2col --order 2`), im2col's gradient is col2im "
    "as an op of its own, whose gradient is im2col again: both are linear, so the second "
    "derivative only carries the output gradient through.",
    [("kernels/im2col.py", "`im2col`, `im2col_rows`, `col2im`, `col2im_rows`"),
     ("kernels/conv2d.py", "the chunked GEMMs around them (`plan_chunks`)"),
     ("tests/reference.py", "`im2col_ref`, `col2im_ref`")],
)
