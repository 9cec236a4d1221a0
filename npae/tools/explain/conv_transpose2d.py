"""conv-transpose2d worked through: ``npae explain conv-transpose2d`` (every input pixel's
scaled copy of the kernel, the overlap count behind checkerboard artifacts, the sums; with
``--matrix`` its matrix, the transpose of conv2d's), its figure, ``npae gradcheck
conv-transpose2d`` (and its planted bug: a flipped weight gradient), and its page in docs/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import npae.functional as F
from npae.engine.shapes import (
    conv2d_geometry,
    conv_transpose2d_geometry,
    conv_transpose2d_size_text,
)
from npae.engine.shapes import format_hp as hp
from npae.engine.shapes import format_hw as hw
from npae.ops.conv_transpose2d import ConvTranspose2d
from npae.tools.explain import drawing as D
from npae.tools.explain.conv2d import conv_matrix
from npae.tools.explain.example import as_tensor, check_side, input_hw, values
from npae.tools.explain.layout import (
    MAX_LISTED,
    check_line,
    grid,
    indented,
    matrix_lines,
    num,
    product,
    size_lines,
    span,
    too_big_for_matrix,
    wrapped,
)
from npae.tools.parts import Case, Example, Explanation, Page
from npae.tools.settings import ExplainSettings, GradcheckSettings
from npae.training.figures import overlap_count


# ------------------------------------------------------------------------------ the explanation
def explain(s: ExplainSettings) -> Explanation:
    op = "conv_transpose2d"
    in_hw = input_hw(s, (2, 2))
    kernel = s.kernel or (3, 3)
    stride = s.stride or (1, 1)
    g, out_pad = conv_transpose2d_geometry(op, in_hw, kernel, stride, s.padding,
                                           s.output_padding, s.dilation)
    out_hw = (g.oh, g.ow)
    check_side("an output", out_hw, "--input, --kernel or --stride")
    rng = np.random.default_rng(s.seed)
    x = values(s.values, in_hw, "--values", rng, 1, 4)
    k = values(s.weights, kernel, "--weights", rng, -2, 2)
    y = F.conv_transpose2d(as_tensor(x), as_tensor(k), stride=stride, padding=s.padding,
                           output_padding=out_pad, dilation=s.dilation).data[0, 0]
    places = _placements(in_hw, g, out_hw)

    lines = [
        f"conv-transpose2d: every input pixel scales a copy of the {hw(kernel)} kernel; the copy "
        f"of x[i,j] starts at output row {_start('i', g.sh, g.ph)}, column "
        f"{_start('j', g.sw, g.pw)} "
        f"(stride {hp(stride)}, padding {hp(s.padding)}, dilation {hp(s.dilation)}).",
        "In case of overlapping, the values are summed.",
        "",
    ]
    lines += wrapped([(f"input {hw(in_hw)}", grid(x)), (f"kernel {hw(kernel)}", grid(k))])
    lines.append("")
    texts = [conv_transpose2d_size_text(in_hw[0], g.kh, g.sh, g.ph, g.dh, out_pad[0])[0],
             conv_transpose2d_size_text(in_hw[1], g.kw, g.sw, g.pw, g.dw, out_pad[1])[0]]
    lines += size_lines("conv_transpose2d", texts)
    if max(out_pad) > 0:
        lines.append(f"  (output_padding {hw(out_pad)} adds no zeros: it picks the larger of the "
                     "sizes a strided convolution maps onto this input size)")
    lines.append(f"output shape: {hw(out_hw)} (input {hw(in_hw)})")
    lines.append("")

    # each input pixel's scaled copy of the kernel, on the output grid
    lines.append("each input pixel's copy of the kernel (x[i,j] * kernel) on the output grid "
                 "(. = not covered):")
    blocks = []
    hand = np.zeros(out_hw)
    count = np.zeros(out_hw, dtype=int)
    terms = {(r, c): [] for r in range(out_hw[0]) for c in range(out_hw[1])}
    for (i, j), taps in places.items():
        copy = np.zeros(out_hw)
        covered = np.zeros(out_hw, dtype=bool)
        cut = False
        for a, b, r, c, inside in taps:
            if inside:
                copy[r, c] += x[i, j] * k[a, b]
                covered[r, c] = True
                hand[r, c] += x[i, j] * k[a, b]
                count[r, c] += 1
                terms[r, c].append(product(x[i, j], k[a, b]))
            else:
                cut = True
        rows = sorted({r for _, _, r, _, _ in taps})
        cols = sorted({c for _, _, _, c, _ in taps})
        title = f"x[{i},{j}]={num(x[i, j])}: rows {span(rows)}, cols {span(cols)}"
        if cut:
            title += " (cropped)"
        blocks.append((title, grid(copy, ~covered)))
    if len(blocks) > MAX_LISTED:
        lines += wrapped(blocks[:MAX_LISTED])
        lines.append(f"  ... ({len(blocks) - MAX_LISTED} more copies; the check covers all)")
    else:
        lines += wrapped(blocks)
    if g.ph or g.pw:
        lines.append(f"  (padding {hp((g.ph, g.pw))} crops that many rows/columns from each "
                     "border of the full grid: parts of copies that fall there are dropped)")
    lines.append("")

    lines.append("overlap count: how many copies land on each output pixel")
    lines += indented(grid(count))
    distinct = sorted(set(count.ravel().tolist()))
    if (g.sh > 1 and g.kh % g.sh) or (g.sw > 1 and g.kw % g.sw):
        lines.append(
            f"  The counts are uneven ({', '.join(str(c) for c in distinct)}): kernel "
            f"{hw(kernel)} is not divisible by stride {hp(stride)}, so some output pixels sum "
            "more copies than their neighbours. This is the cause of checkerboard artifacts. "
            "The usual alternative: upsample-nearest2d, then a stride-1 conv2d (see npae explain "
            "upsample-nearest2d, and the conv-upsample model)."
        )
    elif max(g.sh, g.sw) > 1 and len(distinct) == 1:
        lines.append(f"  Every pixel gets {distinct[0]} cop{'y' if distinct[0] == 1 else 'ies'}:"
                     f" kernel {hw(kernel)} is divisible by stride {hp(stride)}, so the copies "
                     "tile the output evenly (no checkerboard from overlap).")
    lines.append("")

    lines.append("the sums (x[i,j]*w[a,b] for every copy that lands on the pixel):")
    listed = 0
    for (r, c), t in terms.items():
        if listed == MAX_LISTED:
            lines.append(f"  ... ({len(terms) - MAX_LISTED} more; the check covers all)")
            break
        listed += 1
        total = num(hand[r, c])
        lines.append(f"  y[{r},{c}] = {' + '.join(t)} = {total}" if t else
                     f"  y[{r},{c}] = 0 (no copy lands here)")
    lines.append("")
    lines.append(f"output {hw(out_hw)} (npae's kernel):")
    lines += indented(grid(y))
    checks = [
        check_line("every sum above", hand, y,
                   "F.conv_transpose2d"),
        check_line("the overlap count map", count, overlap_count(
            {"kernel_size": kernel, "stride": stride, "padding": s.padding,
             "output_padding": out_pad, "dilation": s.dilation}, in_hw),
            "F.conv_transpose2d of ones"),
    ]
    if s.matrix:
        lines.append("")
        lines += _matrix_section(x, k, g, in_hw, out_hw, y, stride, s, checks, out_pad)
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation(lines, out_hw, all(ok for _, ok in checks),
                       {"x": x, "k": k, "y": y, "geom": g, "count": count, "places": places})


def _placements(in_hw, g, out_hw):
    """For input pixel (i, j): the kernel taps (a, b) and the output pixels (r, c) they land on."""
    h, w = in_hw
    oh, ow = out_hw
    out = {}
    for i in range(h):
        for j in range(w):
            taps = []
            for a in range(g.kh):
                for b in range(g.kw):
                    r = i * g.sh - g.ph + a * g.dh
                    c = j * g.sw - g.pw + b * g.dw
                    taps.append((a, b, r, c, 0 <= r < oh and 0 <= c < ow))
            out[i, j] = taps
    return out


def _start(var, stride, pad) -> str:
    """'i*2', or 'i*2 - 1' with padding 1."""
    return f"{var}*{stride}" + (f" - {pad}" if pad else "")


# ------------------------------------------------------------------------------ --matrix
def _matrix(k, in_hw, g, out_hw):
    m = np.zeros((out_hw[0] * out_hw[1], in_hw[0] * in_hw[1]))
    for (i, j), taps in _placements(in_hw, g, out_hw).items():
        for a, b, r, c, inside in taps:
            if inside:
                m[r * out_hw[1] + c, i * in_hw[1] + j] += k[a, b]
    return m


def _matrix_section(x, k, g, in_hw, out_hw, y, stride, s, checks, out_pad) -> list[str]:
    n_in, n_out = in_hw[0] * in_hw[1], out_hw[0] * out_hw[1]
    too_big_for_matrix(n_out, n_in, f"input {hw(in_hw)} -> output {hw(out_hw)}")
    too_big_for_matrix(n_in, n_out, f"the matching conv2d (input {hw(out_hw)})")
    mt = _matrix(k, in_hw, g, out_hw)
    gc = conv2d_geometry("conv2d", out_hw, g.args[:2], stride, s.padding, s.dilation)
    mc = conv_matrix(k, out_hw, gc)
    lines = [f"as a matrix: y.flat = M @ x.flat with M {mt.shape[0]}x{mt.shape[1]} (column "
             "j: the copy of the kernel that input pixel j places; . = 0).",
             f"It is the transpose of the {mc.shape[0]}x{mc.shape[1]} matrix of conv2d with the "
             f"same kernel, stride, padding and dilation on a {hw(out_hw)} input:"]
    lines += matrix_lines(mt, out_hw, in_hw)
    lines.append("")
    lines.append(f"conv2d's matrix ({hw(out_hw)} -> {hw((gc.oh, gc.ow))}), for comparison:")
    lines += matrix_lines(mc, (gc.oh, gc.ow), out_hw)
    # conv2d of the output size gives back the input size plus floor(output_padding / stride)
    # rows (and columns): only when output_padding >= stride (possible with dilation) are there
    # extra ones, which the transpose convolution never writes
    keep = np.array([r < in_hw[0] and c < in_hw[1] for r in range(gc.oh) for c in range(gc.ow)])
    same = mc[keep].shape == mt.T.shape and np.array_equal(mc[keep], mt.T)
    if not keep.all():
        lines.append(f"(output_padding {hp(out_pad)} >= stride {hp(stride)}: conv2d gives "
                     f"{hw((gc.oh, gc.ow))}, not {hw(in_hw)}; M is the transpose of its rows for "
                     f"the {hw(in_hw)} outputs y[0..{in_hw[0] - 1},0..{in_hw[1] - 1}].)")
    checks.append(check_line("M @ x.flat", mt @ x.ravel(), y.ravel(), "F.conv_transpose2d"))
    z = np.random.default_rng(s.seed + 1).integers(-3, 4, size=out_hw).astype(np.float64)
    yc = F.conv2d(as_tensor(z), as_tensor(k), stride=stride, padding=s.padding,
                  dilation=s.dilation).data
    checks.append(check_line("conv2d's matrix @ a random input", mc @ z.ravel(),
                             yc.ravel(), "F.conv2d"))
    checks.append(("check: M equals the transpose of conv2d's matrix exactly." if same else
                   "check FAILED: M is not the transpose of conv2d's matrix.", same))
    return lines


# ------------------------------------------------------------------------------ the figure
def draw(e: Explanation, path) -> Path:
    a = e.arrays
    x, k, y, count, places = a["x"], a["k"], a["y"], a["count"], a["places"]
    copies = list(places.items())[:8]
    ncols = max(4, len(copies) if len(copies) <= 4 else (len(copies) + 1) // 2)
    nrows = 1 + (1 if len(copies) <= 4 else 2)
    fig = D.new_figure(2.4 * ncols, 2.5 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    top = [(x, f"input {hw(x.shape)}", None), (k, f"kernel {hw(k.shape)}", None),
           (count, "overlap count (copies per pixel)", None), (y, f"output {hw(y.shape)} = sum",
                                                               None)]
    for ax, (arr, title, _) in zip(axes[0], top, strict=False):
        ax.axis("on")
        D.grid(ax, arr, title, cmap="Blues" if arr is count else "Greys")
    for n, ((i, j), taps) in enumerate(copies):
        ax = axes[1 + n // ncols, n % ncols]
        ax.axis("on")
        copy = np.zeros(y.shape)
        covered = np.zeros(y.shape, dtype=bool)
        for ta, tb, r, c, inside in taps:
            if inside:
                copy[r, c] += x[i, j] * k[ta, tb]
                covered[r, c] = True
        D.grid(ax, copy, f"x[{i},{j}] = {num(x[i, j])} times the kernel", blank=~covered)
        color = D.COLORS[n % len(D.COLORS)]
        D.box(axes[0, 0], i, j, i, j, color)
        r, c = np.nonzero(covered)
        if r.size:
            D.box(ax, r.min(), c.min(), r.max(), c.max(), color)
    fig.suptitle("conv-transpose2d: each input pixel places a scaled copy of the kernel; "
                 "overlapping copies are summed", fontsize=10)
    return D.save(fig, path)


# ------------------------------------------------------------------------------ npae gradcheck
class _FlippedWeightGradConvTranspose2d(ConvTranspose2d):
    """The planted bug, in a subclass used only by ``npae gradcheck --plant-bug``."""

    @staticmethod
    def backward(ctx, gy):
        gx, gw, gb = ConvTranspose2d.backward(ctx, gy)
        return gx, gw[:, :, ::-1, ::-1].copy(), gb  # bug: kernel flipped


def gradcheck_case(s: GradcheckSettings, plant_bug: bool = False) -> Case:
    op = "conv-transpose2d"
    rng = np.random.default_rng(s.seed)
    n, c, o = s.batch, s.channels, s.out_channels
    size = s.input or (3, 3)
    kernel, stride = s.kernel or (3, 3), s.stride or (2, 2)
    g, opad = conv_transpose2d_geometry(op, size, kernel, stride, s.padding, s.output_padding,
                                        s.dilation)
    inputs = [rng.standard_normal((n, c) + size), rng.standard_normal((c, o) + kernel),
              rng.standard_normal(o)]

    def fn(x, w, b):
        if plant_bug:
            return _FlippedWeightGradConvTranspose2d.apply(x, w, b, geom=g)
        return F.conv_transpose2d(x, w, b, stride, s.padding, opad, 1, s.dilation)

    return Case(fn, inputs, ["input", "weight", "bias"],
                f"kernel {hp(kernel)}, stride {hp(stride)}, padding {hp(s.padding)}, "
                f"output_padding {hp(opad)}, dilation {hp(s.dilation)}",
                "the weight gradient comes back flipped")


# ------------------------------------------------------------------------------ its page in docs/
PAGE = Page(
    "conv-transpose2d: transposed convolution",
    "The upsampling counterpart of conv2d, and exactly its transpose (its adjoint): every "
    "input pixel scales a copy of the kernel, the copies are placed on the output grid "
    "`stride` pixels apart, and where copies overlap their values are summed. When the "
    "kernel size is not divisible by the stride, some output pixels receive more copies "
    "than their neighbours: the uneven overlap behind checkerboard artifacts. Nearest "
    "upsampling followed by a stride-1 convolution avoids it. `padding` crops the border "
    "of the result; `output_padding` adds no zeros: it picks which of the sizes that a "
    "strided convolution maps onto the same input size comes back.",
    "conv_transpose2d",
    [Example("--input 2x2 --kernel 3 --stride 2",
             "A 3x3 kernel with stride 2: the copies overlap on the middle row and column, "
             "and the overlap count is uneven."),
     Example("--input 2x2 --kernel 2 --stride 2",
             "A 2x2 kernel with stride 2 (the conv-transpose model's decoder): the copies "
             "tile the output exactly, once each.")],
    Example("--input 2x2 --kernel 3 --stride 2 --png conv-transpose2d.png"),
    Example("--input 2x2 --kernel 3 --stride 2 --matrix"),
    "Its input gradient is a convolution of the output gradient with the same kernel "
    "(the transpose of the transpose); its kernel gradient swaps the roles of input and "
    "output gradient in conv2d's kernel gradient. The forward itself is conv2d's input "
    "gradient: a matrix product into columns, then col2im adds the overlapping columns. "
    "For second derivatives (create_graph=True) the same gradients are built from "
    "differentiable ops: conv2d's bilinear maps (`Conv2dBilinear`, "
    "npae/ops/conv2d_bilinear.py) with input and output gradient swapped, a sum for the "
    "bias's.",
    [("npae/ops/conv_transpose2d.py", "`ConvTranspose2d` and `conv_transpose2d`"),
     ("kernels/conv2d.py", "`conv_transpose2d_fwd` (= `conv2d_bwd_input` + bias)"),
     ("kernels/im2col.py", "`col2im_rows`: columns back onto the image, overlaps summed"),
     ("npae/engine/shapes.py", "`conv_transpose2d_geometry`: output size, output_padding, "
                               "output_size"),
     ("npae/training/figures.py", "`overlap_count`: the overlap map, computed by the real op"),
     ("tests/reference.py", "`conv_transpose2d_ref`")],
)
