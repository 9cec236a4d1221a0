"""``npae gradcheck OP``: check one op's hand-written backward against finite differences.

The op runs in float64 on small random inputs. For every differentiable input the command
prints the analytic gradient (the op's backward, J^T v for a random output weighting v) next
to the numeric one (central differences of <v, f(x)>, element by element): the largest absolute
and relative error and the worst element. Then it runs ``npae.gradcheck`` itself (the full
Jacobian for these sizes) and exits non-zero if either check fails.

``plant_bug=True`` swaps in a deliberately wrong backward, in a subclass of the op's Function
used only here (the real op is untouched), to show what a failure looks like.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

import npae.functional as F
from npae import kernels as K
from npae.engine.function import Function
from npae.engine.gradcheck import GradcheckError, gradcheck
from npae.engine.shapes import (
    conv2d_geometry,
    conv_transpose2d_geometry,
    pool2d_geometry,
    upsample_nearest2d_plan,
)
from npae.engine.shapes import format_hp as hp
from npae.engine.tensor import Tensor, no_grad
from npae.ops.conv2d import Conv2d
from npae.ops.conv_transpose2d import ConvTranspose2d
from npae.ops.max_pool2d import MaxPool2d
from npae.ops.max_unpool2d import MaxUnpool2d
from npae.ops.upsample_nearest2d import UpsampleNearest2d

WIDTH = 88
OPS = ("conv2d", "conv-transpose2d", "max-pool2d", "max-unpool2d", "upsample-nearest2d",
       "im2col")


@dataclass
class Settings:
    input: tuple[int, int] | None = None
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    output_padding: tuple[int, int] = (0, 0)
    scale: float = 2.0
    seed: int = 0
    batch: int = 2
    channels: int = 2
    out_channels: int = 3
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3


@dataclass
class Case:
    """What to check: fn(*inputs) -> Tensor; names label the inputs; about says the setup."""

    fn: object
    inputs: list
    names: list[str]
    about: str
    bug: str = ""


# ------------------------------------------------------------------------------ planted bugs
# Each is a subclass of the real Function with one wrong line in backward. They are built here
# and applied directly; F.* keeps calling the real classes.
class _FlippedWeightGradConv2d(Conv2d):
    @staticmethod
    def backward(ctx, gy):
        gx, gw, gb = Conv2d.backward(ctx, gy)
        return gx, gw[:, :, ::-1, ::-1].copy(), gb  # bug: kernel flipped (conv vs correlation)


class _FlippedWeightGradConvTranspose2d(ConvTranspose2d):
    @staticmethod
    def backward(ctx, gy):
        gx, gw, gb = ConvTranspose2d.backward(ctx, gy)
        return gx, gw[:, :, ::-1, ::-1].copy(), gb  # bug: kernel flipped


class _ShiftedMaxPool2d(MaxPool2d):
    @staticmethod
    def backward(ctx, gy, gidx=None):
        (idx,) = ctx.saved_tensors
        h, w = ctx.hw
        shifted = (idx + 1) % (h * w)  # bug: off by one, the pixel after the maximum
        return (K.max_pool2d_bwd(np.ascontiguousarray(gy), shifted, h, w),)


class _ShiftedMaxUnpool2d(MaxUnpool2d):
    @staticmethod
    def backward(ctx, gy):
        (idx,) = ctx.saved_tensors
        plane = gy.shape[2] * gy.shape[3]
        shifted = (idx + 1) % plane  # bug: reads the gradient one pixel after the index
        return K.max_unpool2d_bwd(np.ascontiguousarray(gy), shifted), None


class _FirstCopyUpsampleNearest2d(UpsampleNearest2d):
    @staticmethod
    def backward(ctx, gy):
        # bug: each source pixel takes the gradient of its first copy only, instead of the sum
        _, first_r = np.unique(ctx.rows, return_index=True)
        _, first_c = np.unique(ctx.cols, return_index=True)
        return (np.ascontiguousarray(gy[:, :, first_r][:, :, :, first_c]),)


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


class _OverwritingIm2col(Im2col):
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


# ------------------------------------------------------------------------------ the cases
def _tie_free(rng, shape):
    """A shuffled 0..size-1, so no two values tie (the spacing 1 >> the difference step)."""
    return rng.permutation(int(np.prod(shape))).astype(np.float64).reshape(shape)


def build(op: str, s: Settings, plant_bug: bool = False) -> Case:
    if op not in OPS:
        raise ValueError(f"gradcheck: unknown operation {op!r}; choose one of: {', '.join(OPS)}")
    rng = np.random.default_rng(s.seed)
    n, c, o = s.batch, s.channels, s.out_channels
    if min(n, c, o) < 1:
        raise ValueError(f"--batch, --channels and --out-channels must be >= 1, got {n}, {c}, {o}")
    if op == "conv2d":
        hw = s.input or (5, 5)
        kernel, stride = s.kernel or (3, 3), s.stride or (1, 1)
        g = conv2d_geometry(op, hw, kernel, stride, s.padding, s.dilation)
        inputs = [rng.standard_normal((n, c) + hw), rng.standard_normal((o, c) + kernel),
                  rng.standard_normal(o)]

        def fn(x, w, b):
            if plant_bug:
                return _FlippedWeightGradConv2d.apply(x, w, b, geom=g)
            return F.conv2d(x, w, b, stride, s.padding, s.dilation)

        return Case(fn, inputs, ["input", "weight", "bias"],
                    f"kernel {hp(kernel)}, stride {hp(stride)}, padding {hp(s.padding)}, dilation "
                    f"{hp(s.dilation)}", "the weight gradient comes back flipped (the classic "
                    "convolution-versus-correlation mix-up)")
    if op == "conv-transpose2d":
        hw = s.input or (3, 3)
        kernel, stride = s.kernel or (3, 3), s.stride or (2, 2)
        g, opad = conv_transpose2d_geometry(op, hw, kernel, stride, s.padding, s.output_padding,
                                            s.dilation)
        inputs = [rng.standard_normal((n, c) + hw), rng.standard_normal((c, o) + kernel),
                  rng.standard_normal(o)]

        def fn(x, w, b):
            if plant_bug:
                return _FlippedWeightGradConvTranspose2d.apply(x, w, b, geom=g)
            return F.conv_transpose2d(x, w, b, stride, s.padding, opad, 1, s.dilation)

        return Case(fn, inputs, ["input", "weight", "bias"],
                    f"kernel {hp(kernel)}, stride {hp(stride)}, padding {hp(s.padding)}, "
                    f"output_padding {hp(opad)}, dilation {hp(s.dilation)}",
                    "the weight gradient comes back flipped")
    if op in ("max-pool2d", "max-unpool2d"):
        hw = s.input or (4, 4)
        kernel = s.kernel or (2, 2)
        stride = s.stride or kernel
        g = pool2d_geometry(op, hw, kernel, stride, s.padding, s.dilation, False)
        image = _tie_free(rng, (n, c) + hw)
        if op == "max-pool2d":
            def fn(x):
                if plant_bug:
                    return _ShiftedMaxPool2d.apply(x, geom=g)[0]
                return F.max_pool2d(x, kernel, stride, s.padding, s.dilation)

            return Case(fn, [image], ["input"],
                        f"kernel {hp(kernel)}, stride {hp(stride)}, padding {hp(s.padding)}; "
                        "tie-free input",
                        "the gradient goes to the pixel after the maximum (off by one)")
        with no_grad():
            pooled, idx = F.max_pool2d(Tensor(image), kernel, stride, s.padding, s.dilation,
                                       return_indices=True)
        idx = idx.data

        def fn(x):
            if plant_bug:
                return _ShiftedMaxUnpool2d.apply(x, idx, oh=hw[0], ow=hw[1])
            return F.max_unpool2d(x, idx, kernel, stride, s.padding, output_size=hw)

        return Case(fn, [rng.standard_normal(pooled.shape)], ["input"],
                    f"kernel {hp(kernel)}, stride {hp(stride)}, padding {hp(s.padding)}, output "
                    f"{hw[0]}x{hw[1]}, "
                    f"indices from pooling a tie-free image",
                    "the backward reads the gradient one pixel after the index (off by one)")
    if op == "upsample-nearest2d":
        hw = s.input or (3, 3)
        _, _, rows, cols = upsample_nearest2d_plan(op, hw, scale_factor=s.scale)

        def fn(x):
            if plant_bug:
                return _FirstCopyUpsampleNearest2d.apply(x, rows=rows, cols=cols)
            return F.upsample_nearest2d(x, scale_factor=s.scale)

        return Case(fn, [rng.standard_normal((n, c) + hw)], ["input"],
                    f"scale_factor {s.scale:g}",
                    "each pixel takes the gradient of its first copy instead of the sum of all")
    # im2col
    hw = s.input or (4, 4)
    kernel, stride = s.kernel or (3, 3), s.stride or (1, 1)
    g = conv2d_geometry(op, hw, kernel, stride, s.padding, s.dilation)
    cls = _OverwritingIm2col if plant_bug else Im2col

    def fn(x):
        return cls.apply(x, geom=g)

    return Case(fn, [rng.standard_normal((n, c) + hw)], ["input"],
                f"kernel {hp(kernel)}, stride {hp(stride)}, padding {hp(s.padding)}, dilation "
                f"{hp(s.dilation)};"
                f" backward = col2im", "col2im lets overlapping windows overwrite each other "
                "instead of adding up")


# ------------------------------------------------------------------------------ the report
@dataclass
class InputReport:
    name: str
    shape: tuple
    max_abs: float
    max_rel: float
    worst: tuple
    analytic: float
    numeric: float
    ratio: float  # |a - n| / (atol + rtol*|n|) at the worst element; above 1 fails


def compare(case: Case, s: Settings) -> list[InputReport]:
    """Analytic J^T v against central differences of <v, f(x)>, every element of every input."""
    values = [np.array(v, dtype=np.float64) for v in case.inputs]
    with no_grad():
        y = case.fn(*[Tensor(v) for v in values]).data
    v = np.random.default_rng(s.seed + 1).standard_normal(y.shape)
    args = [Tensor(a, requires_grad=True) for a in values]
    case.fn(*args).backward(v)
    reports = []
    for i, (name, x) in enumerate(zip(case.names, values, strict=True)):
        analytic = args[i].grad if args[i].grad is not None else np.zeros_like(x)
        numeric = np.zeros(x.size)
        for j in range(x.size):
            sides = []
            for sign in (1.0, -1.0):
                shifted = [a.copy() for a in values]
                shifted[i].ravel()[j] += sign * s.eps
                with no_grad():
                    sides.append(float(np.vdot(v, case.fn(*[Tensor(a) for a in shifted]).data)))
            numeric[j] = (sides[0] - sides[1]) / (2 * s.eps)
        a = analytic.ravel()
        diff = np.abs(a - numeric)
        size = np.maximum(np.abs(a), np.abs(numeric))
        rel = np.where(size > s.atol, diff / np.maximum(size, 1e-300), 0.0)
        ratio = diff / (s.atol + s.rtol * np.abs(numeric))
        k = int(np.argmax(ratio))
        reports.append(InputReport(name, x.shape, float(diff.max()), float(rel.max()),
                                   tuple(int(t) for t in np.unravel_index(k, x.shape)),
                                   float(a[k]), float(numeric[k]), float(ratio[k])))
    return reports


def run(op: str, s: Settings, plant_bug: bool = False, out=print) -> bool:
    """Print the comparison and npae.gradcheck's verdict; True when everything passed."""
    case = build(op, s, plant_bug)
    shapes = ", ".join(f"{n} {tuple(np.shape(v))}" for n, v in zip(case.names, case.inputs,
                                                                      strict=True))
    with no_grad():
        y = case.fn(*[Tensor(np.asarray(v, dtype=np.float64)) for v in case.inputs])
    for line in (f"npae gradcheck {op}: {shapes} -> output {tuple(y.shape)}; {case.about}.",
                 f"float64; numeric gradient by central differences with eps {s.eps:g}; an "
                 f"element passes when |analytic - numeric| <= {s.atol:g} + {s.rtol:g} * "
                 f"|numeric|."):
        out("\n".join(textwrap.wrap(line, WIDTH)))
    if plant_bug:
        out("\n".join(textwrap.wrap(f"PLANTED BUG (this run only; the real op is untouched): "
                                    f"{case.bug}.", WIDTH)))
    out("")
    out("analytic (backward, J^T v for a random output weighting v) vs numeric, every element:")
    reports = compare(case, s)
    header = (f"  {'input':<8}{'shape':<14}{'max abs':>9}{'max rel':>9}  {'worst element':<14}"
              f"{'analytic':>14}{'numeric':>14}  verdict")
    out(header)
    ok = True
    for r in reports:
        passed = r.ratio <= 1.0
        ok &= passed
        out(f"  {r.name:<8}{str(r.shape):<14}{r.max_abs:>9.1e}{r.max_rel:>9.1e}  "
            f"{str(r.worst):<14}{r.analytic:>14.7g}{r.numeric:>14.7g}  "
            f"{'ok' if passed else 'FAIL'}")
    out("  (relative error: |a - n| / max(|a|, |n|), over elements whose gradient exceeds atol;")
    out("  worst element: the one furthest past the tolerance atol + rtol*|numeric|)")
    out("")
    out("Then npae.gradcheck compares the full Jacobian entry by entry: one input element")
    out("against one output element, so its numbers differ from the weighted sums above.")
    try:
        gradcheck(case.fn, case.inputs, eps=s.eps, atol=s.atol, rtol=s.rtol)
        out("npae.gradcheck (full Jacobian, entry by entry): passed")
    except GradcheckError as err:
        ok = False
        name = case.names[err.input_index] if err.input_index is not None else "?"
        out("\n".join(textwrap.wrap(f"npae.gradcheck: FAILED on {name}: {err}", WIDTH)))
    if ok:
        out(f"gradcheck {op}: PASSED")
    else:
        out(f"gradcheck {op}: FAILED" + (" (as planted: this is what a wrong backward looks "
                                         "like)" if plant_bug else ""))
    return ok
