"""max_pool2d: the largest value in each window, and where it was."""


from npae.engine.dispatch import contiguous, kernels_for
from npae.engine.function import Function
from npae.engine.shapes import check_4d, pair, pool2d_geometry
from npae.ops._checks import array_of
from npae.ops.max_unpool2d import MaxUnpool2d


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, geom):
        x = contiguous(x)
        K = kernels_for(x)
        y, idx = K.max_pool2d_fwd(x, geom)
        ctx.save_for_backward(idx)  # backward routes through the saved argmax, never recomputes
        ctx.hw = x.shape[2:]
        return y, idx

    @staticmethod
    def backward(ctx, gy, gidx=None):
        (idx,) = ctx.saved_tensors
        K = kernels_for(gy)
        return (K.max_pool2d_bwd(contiguous(gy), idx, *ctx.hw),)

    @staticmethod
    def backward_graph(ctx, gy, gidx=None):
        # The same scatter-add at the saved argmax, as an op: max_pool2d_bwd *is*
        # max_unpool2d_fwd, so MaxUnpool2d sums gradients that share an index (overlapping
        # windows) exactly as backward does, and its own gradient is the gather at idx. The
        # indices are constants: pooling is linear in x between ties, so no x term appears.
        (idx,) = ctx.saved_tensors
        h, w = ctx.hw
        return (MaxUnpool2d.apply(gy, idx, oh=h, ow=w),)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling.

    Shapes: x (N, C, H, W) -> (N, C, oH, oW) with

        oH = floor((H + 2*padding - dilation*(kH - 1) - 1) / stride) + 1      (ceil with ceil_mode;
             a last window that would start in the right padding is dropped, as in PyTorch)

    stride defaults to kernel_size; padding (implicit -inf, never chosen) is at most half the
    kernel. With ``return_indices=True`` also returns int64 indices, flat within each H x W input
    plane (row * W + col), ready for max_unpool2d.

    Ties go to the first maximum in window scan order (row by row), and the backward sends the
    whole gradient to exactly that element. A NaN counts as the maximum (index: the first NaN;
    PyTorch's CPU kernel reports the last).

    Twice differentiable (create_graph=True): the gradient is gy scattered (summed where
    overlapping windows share a maximum) at the saved indices, a linear map of gy whose own
    gradient is the gather at those indices. Its second derivative with respect to x is zero
    almost everywhere (pooling is piecewise linear); at ties the routing is the saved index,
    the first maximum, as above, never a split between the tied elements.

    >>> y, idx = max_pool2d(Tensor(np.arange(16.).reshape(1, 1, 4, 4)), 2, return_indices=True)
    >>> idx.data.ravel().tolist()
    [5, 7, 13, 15]
    """
    op = "max_pool2d"
    xs = array_of(x).shape
    check_4d(op, "input", xs)
    kernel = pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None else pair(stride, "stride", op)
    geom = pool2d_geometry(op, xs[2:], kernel, stride, pair(padding, "padding", op),
                           pair(dilation, "dilation", op), bool(ceil_mode))
    y, idx = MaxPool2d.apply(x, geom=geom)
    return (y, idx) if return_indices else y
