"""max_unpool2d: put each value back where max pooling found it, zeros elsewhere.

Its backward, the gather at the indices, is an op of its own here (``GatherAtIndices``) so that
create_graph=True can differentiate it: the gather's gradient is the scatter-add, MaxUnpool2d
again, and MaxUnpool2d's is the gather. Both are linear in their float input and hold the
indices constant, so each is the other's exact transpose, duplicates included.
"""

import numpy as np

from npae.engine.dispatch import contiguous, kernels_for
from npae.engine.function import Function
from npae.engine.shapes import check_4d, pair, unpool2d_size
from npae.ops._checks import array_of


class MaxUnpool2d(Function):
    integer_inputs = (1,)

    @staticmethod
    def forward(ctx, x, idx, oh, ow):
        x = contiguous(x)
        idx = contiguous(idx, dtype=np.int64)
        ctx.save_for_backward(idx)
        return kernels_for(x).max_unpool2d_fwd(x, idx, oh, ow)

    @staticmethod
    def backward(ctx, gy):
        (idx,) = ctx.saved_tensors
        gy = contiguous(gy)
        # the adjoint of "add x at idx" is "read gy at idx"
        return kernels_for(gy).max_unpool2d_bwd(gy, idx), None

    @staticmethod
    def backward_graph(ctx, gy):
        (idx,) = ctx.saved_tensors
        return GatherAtIndices.apply(gy, idx), None


class GatherAtIndices(Function):
    """max_unpool2d's backward as an op: gy (N, C, oH, oW) read at idx (N, C, H, W), so
    gx[n, c, i, j] = gy[n, c].flat[idx[n, c, i, j]]. Max-pool's forward picks its values the
    same way. Its gradient is the scatter-add at idx (MaxUnpool2d): where two positions read
    one index, both their gradients land there and add."""

    integer_inputs = (1,)

    @staticmethod
    def forward(ctx, gy, idx):
        gy = contiguous(gy)
        idx = contiguous(idx, dtype=np.int64)
        ctx.save_for_backward(idx)
        ctx.ohw = gy.shape[2:]
        return kernels_for(gy).max_unpool2d_bwd(gy, idx)

    @staticmethod
    def backward(ctx, gx):
        (idx,) = ctx.saved_tensors
        return kernels_for(gx).max_unpool2d_fwd(contiguous(gx), idx, *ctx.ohw), None

    @staticmethod
    def backward_graph(ctx, gx):
        (idx,) = ctx.saved_tensors
        oh, ow = ctx.ohw
        return MaxUnpool2d.apply(gx, idx, oh=oh, ow=ow), None


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool2d.

    Shapes: x and indices (N, C, H, W) -> (N, C, oH, oW), by default

        oH = (H - 1)*stride - 2*padding + kH          (oW alike)

    and ``output_size`` ((oH, oW) or (N, C, oH, oW)) may choose a size strictly within one
    stride of that, to undo a pooling that floored. Each value is placed at its flat index
    (row * oW + col) in its plane. Indices outside [0, oH*oW) raise ValueError. Where two values
    share an index (overlapping pooling windows) they are **summed**, deterministically, and the
    backward gives each of them the gradient at that index (PyTorch leaves this case undefined).
    Twice differentiable: the backward's gather has the scatter-add as its own gradient.

    >>> x = Tensor(np.array([[[[5., 7.]]]]))
    >>> max_unpool2d(x, np.array([[[[1, 2]]]]), 2, output_size=(1, 4)).data.ravel().tolist()
    [0.0, 5.0, 7.0, 0.0]
    """
    op = "max_unpool2d"
    xs = array_of(x).shape
    idx = array_of(indices)
    check_4d(op, "input", xs)
    if idx.shape != xs:
        raise ValueError(f"{op}: indices shape {idx.shape} must equal the input shape {xs}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"{op}: indices must be an integer array (int64), got dtype {idx.dtype}")
    kernel = pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None else pair(stride, "stride", op)
    oh, ow = unpool2d_size(op, xs[2:], kernel, stride, pair(padding, "padding", op), output_size)
    if idx.size:
        bad = (idx < 0) | (idx >= oh * ow)
        if bad.any():
            where = tuple(int(v) for v in np.argwhere(bad)[0])
            raise ValueError(
                f"{op}: index {int(idx[where])} at position {where} is out of range for an "
                f"output plane of {oh}x{ow} (valid flat indices are 0..{oh * ow - 1}); "
                f"were the indices made for another output_size?"
            )
    return MaxUnpool2d.apply(x, idx, oh=oh, ow=ow)
