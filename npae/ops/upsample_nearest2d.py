"""upsample_nearest2d: every output pixel copies its nearest source pixel.

Its backward, each source pixel summing its copies, is an op of its own here (``SumCopies``)
so that create_graph=True can differentiate it: the sum's gradient is the copy, the upsample
again, and the upsample's is the sum. Both are linear, each the other's transpose.
"""


from npae.engine.dispatch import contiguous, kernels_for
from npae.engine.function import Function
from npae.engine.shapes import check_4d, upsample_nearest2d_plan
from npae.ops._checks import array_of


class UpsampleNearest2d(Function):
    @staticmethod
    def forward(ctx, x, rows, cols):
        x = contiguous(x)
        ctx.rows, ctx.cols, ctx.hw = rows, cols, x.shape[2:]
        return kernels_for(x).upsample_nearest2d_fwd(x, rows, cols)

    @staticmethod
    def backward(ctx, gy):
        gy = contiguous(gy)
        # each source pixel receives the sum of the gradients of all its copies
        return (kernels_for(gy).upsample_nearest2d_bwd(gy, ctx.rows, ctx.cols, *ctx.hw),)

    @staticmethod
    def backward_graph(ctx, gy):
        h, w = ctx.hw
        return (SumCopies.apply(gy, rows=ctx.rows, cols=ctx.cols, h=h, w=w),)


class SumCopies(Function):
    """upsample_nearest2d's backward as an op: gy (N, C, oH, oW) -> gx (N, C, h, w), each
    source pixel (rows[i], cols[j]) summing the gy of its copies. Its gradient hands each copy
    its source's gradient: the upsample, with the same rows and cols."""

    @staticmethod
    def forward(ctx, gy, rows, cols, h, w):
        gy = contiguous(gy)
        ctx.rows, ctx.cols = rows, cols
        return kernels_for(gy).upsample_nearest2d_bwd(gy, rows, cols, h, w)

    @staticmethod
    def backward(ctx, gx):
        return (kernels_for(gx).upsample_nearest2d_fwd(contiguous(gx), ctx.rows, ctx.cols),)

    @staticmethod
    def backward_graph(ctx, gx):
        return (UpsampleNearest2d.apply(gx, rows=ctx.rows, cols=ctx.cols),)


def upsample_nearest2d(x, scale_factor=None, size=None):
    """Nearest-neighbour upsampling, PyTorch's ``interpolate(mode='nearest')``.

    Shapes: x (N, C, H, W) -> (N, C, oH, oW), with either ``size`` (an int or (oH, oW)) or
    ``scale_factor`` (a number or (sh, sw)) and then oH = floor(H * sh). Output row i copies
    input row i when oH == H, row i // 2 when oH == 2H, and otherwise row
    min(floor(i * scale), H - 1) with scale = 1/sh when a factor is given, else H/oH, computed
    in float32: PyTorch's rule exactly, so non-integer factors pick the same pixels.
    Twice differentiable: the backward's sum over copies has the copy as its own gradient.

    >>> upsample_nearest2d(Tensor(np.array([[[[1., 2.]]]])), scale_factor=2).data.ravel().tolist()
    [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]
    """
    op = "upsample_nearest2d"
    xs = array_of(x).shape
    check_4d(op, "input", xs)
    oh, ow, rows, cols = upsample_nearest2d_plan(op, xs[2:], scale_factor, size)
    return UpsampleNearest2d.apply(x, rows=rows, cols=cols)


def interpolate(x, size=None, scale_factor=None, mode="nearest"):
    """PyTorch's ``F.interpolate``, for mode='nearest' (the one the autoencoders use)."""
    if mode != "nearest":
        raise ValueError(f"interpolate: only mode='nearest' is implemented, got {mode!r}")
    return upsample_nearest2d(x, scale_factor=scale_factor, size=size)
