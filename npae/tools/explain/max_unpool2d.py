"""max-unpool2d worked through: ``npae explain max-unpool2d`` (max-pool2d first, then every
pooled value put back at its index; with ``--matrix`` the selection matrix), its figure, ``npae
gradcheck max-unpool2d`` (and its planted bug: the gradient read one pixel off), and its page in
docs/. The pooling half comes from max_pool2d.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import npae.functional as F
from npae import kernels as K
from npae.engine.shapes import format_hp as hp
from npae.engine.shapes import format_hw as hw
from npae.engine.shapes import unpool2d_size, unpool2d_size_text
from npae.engine.tensor import Tensor, no_grad
from npae.ops.max_unpool2d import MaxUnpool2d
from npae.tools.explain import drawing as D
from npae.tools.explain.example import as_tensor
from npae.tools.explain.layout import (
    check_line,
    grid,
    indented,
    matrix_lines,
    num,
    size_lines,
    too_big_for_matrix,
)
from npae.tools.explain.max_pool2d import (
    gradcheck_image,
    pool_by_hand,
    pool_lines,
    pool_panels,
    pool_setup,
)
from npae.tools.parts import Case, Example, Explanation, Page
from npae.tools.settings import ExplainSettings, GradcheckSettings


# ------------------------------------------------------------------------------ the explanation
def explain(s: ExplainSettings) -> Explanation:
    op = "max_unpool2d"
    in_hw, kernel, stride, g, x = pool_setup(s, op)
    p, idx = F.max_pool2d(as_tensor(x), kernel, stride, s.padding, s.dilation, return_indices=True)
    pooled = p.data[0, 0]
    hand_y, hand_idx, items = pool_by_hand(x, g)
    first = "max-unpool2d undoes max-pool2d. First, max-pool2d"
    lines, checks = pool_lines(in_hw, kernel, stride, g, x, pooled, idx.data[0, 0], hand_y,
                               hand_idx, items, first, shape_label="pooled shape")
    out_hw = unpool2d_size(op, (g.oh, g.ow), kernel, stride, s.padding)
    u = F.max_unpool2d(p, idx, kernel, stride, s.padding, output_size=in_hw).data[0, 0]
    ow = in_hw[1]
    lines += [
        "",
        f"Then max-unpool2d puts each pooled value back at its flat index in a {hw(in_hw)} "
        "plane, zeros elsewhere.",
        "",
    ]
    texts = [unpool2d_size_text(g.oh, g.kh, g.sh, g.ph)[0],
             unpool2d_size_text(g.ow, g.kw, g.sw, g.pw)[0]]
    lines += size_lines("max_unpool2d", texts)
    if tuple(out_hw) != tuple(in_hw):
        lines.append(f"  the default is {hw(out_hw)}; output_size={hw(in_hw)} restores the pooled "
                     f"input's size (allowed: within one stride of the default)")
    lines.append(f"output shape: {hw(in_hw)}")
    hand_u = np.zeros(in_hw)
    for oy in range(g.oh):
        for ox in range(g.ow):
            i = int(hand_idx[oy, ox])
            hand_u[i // ow, i % ow] += hand_y[oy, ox]
            lines.append(f"  value {num(hand_y[oy, ox])} (pooled y[{oy},{ox}]) -> index {i} -> "
                         f"row {i} // {ow} = {i // ow}, col {i} % {ow} = {i % ow}")
    shared = len(set(hand_idx.ravel().tolist())) < hand_idx.size
    if shared:
        lines.append("  (overlapping windows chose the same pixel: its values are summed)")
    lines.append("")
    lines.append(f"output {hw(in_hw)} (npae's kernel; . = zero, nothing put back):")
    lines += indented(grid(u, u == 0))
    checks.append(check_line("every placement above", hand_u, u,
                             "F.max_unpool2d"))
    if s.matrix:
        n_in, n_out = g.oh * g.ow, in_hw[0] * in_hw[1]
        too_big_for_matrix(n_out, n_in, f"output {hw(in_hw)}")
        m = np.zeros((n_out, n_in))
        for o, i in enumerate(hand_idx.ravel()):
            m[i, o] += 1
        lines += ["", f"as a matrix: u.flat = S @ p.flat, S {n_out}x{n_in} is a selection "
                  "matrix: column o has a single 1, in the row of pooled value o's index.",
                  "Its transpose is the gather of the backward (and pooling's forward picks "
                  "with it)."]
        lines += matrix_lines(m, in_hw, (g.oh, g.ow), out_name="u", in_name="p")
        checks.append(check_line("S @ p.flat", m @ pooled.ravel(), u.ravel(),
                                 "F.max_unpool2d"))
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation(lines, tuple(in_hw), all(ok for _, ok in checks),
                       {"x": x, "y": pooled, "idx": idx.data[0, 0], "u": u, "geom": g})


# ------------------------------------------------------------------------------ the figure
def draw(e: Explanation, path) -> Path:
    a = e.arrays
    fig = D.new_figure(13, 3.8)
    axes = fig.subplots(1, 4, width_ratios=[a["x"].shape[1], a["y"].shape[1], a["y"].shape[1],
                                            a["u"].shape[1]])
    pool_panels(axes[:3], a)
    D.grid(axes[3], a["u"], f"unpooled {hw(a['u'].shape)}: values back at their indices",
           blank=a["u"] == 0)
    fig.suptitle("max-unpool2d: every pooled value goes back to the position its maximum came "
                 "from; the rest is zero", fontsize=10)
    return D.save(fig, path)


# ------------------------------------------------------------------------------ npae gradcheck
class _ShiftedMaxUnpool2d(MaxUnpool2d):
    """The planted bug, in a subclass used only by ``npae gradcheck --plant-bug``."""

    @staticmethod
    def backward(ctx, gy):
        (idx,) = ctx.saved_tensors
        plane = gy.shape[2] * gy.shape[3]
        shifted = (idx + 1) % plane  # bug: reads the gradient one pixel after the index
        return K.max_unpool2d_bwd(np.ascontiguousarray(gy), shifted), None


def gradcheck_case(s: GradcheckSettings, plant_bug: bool = False) -> Case:
    size, kernel, stride, _, rng, image = gradcheck_image(s, "max-unpool2d")
    with no_grad():
        pooled, idx = F.max_pool2d(Tensor(image), kernel, stride, s.padding, s.dilation,
                                   return_indices=True)
    idx = idx.data

    def fn(x):
        if plant_bug:
            return _ShiftedMaxUnpool2d.apply(x, idx, oh=size[0], ow=size[1])
        return F.max_unpool2d(x, idx, kernel, stride, s.padding, output_size=size)

    return Case(fn, [rng.standard_normal(pooled.shape)], ["input"],
                f"kernel {hp(kernel)}, stride {hp(stride)}, padding {hp(s.padding)}, output "
                f"{size[0]}x{size[1]}, "
                f"indices from pooling a tie-free image",
                "the backward reads the gradient one pixel after the index (off by one)")


# ------------------------------------------------------------------------------ its page in docs/
PAGE = Page(
    "max-unpool2d: max unpooling",
    "The partial inverse of max pooling: every pooled value goes back to the position its "
    "maximum came from (the index max-pool2d saved); all other pixels are zero. An "
    "unpooling decoder therefore puts detail back exactly where the encoder found it. "
    "Where overlapping windows chose the same pixel, npae sums the values "
    "(deterministically).",
    "max_unpool2d",
    [Example("--input 4x4 --kernel 2",
             "Pool a 4x4 input with a 2x2 window, then unpool the result.")],
    Example("--input 4x4 --kernel 2 --png max-unpool2d.png"),
    Example("--input 4x4 --kernel 2 --matrix"),
    "The adjoint of 'add x at index' is 'read the gradient at index': each input value's "
    "gradient is the output gradient at its index (a gather, the transpose of the selection "
    "matrix). The indices get no gradient. With create_graph=True the gather is recorded "
    "as an op (GatherAtIndices) whose own gradient is the scatter-add, max-unpool2d again, "
    "so the backward can be differentiated again.",
    [("npae/ops/max_unpool2d.py", "`MaxUnpool2d` and `max_unpool2d`"),
     ("kernels/max_unpool2d.py", "`max_unpool2d_fwd` (scatter-add), `max_unpool2d_bwd` "
                                 "(gather)"),
     ("npae/engine/shapes.py", "`unpool2d_size`: the default size and output_size"),
     ("tests/reference.py", "`max_unpool2d_ref`")],
)
