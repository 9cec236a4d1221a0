"""conv2d: cross-correlation of an NCHW batch with a bank of filters (im2col + GEMM).

Its backward_graph (create_graph=True) builds the same three gradients from differentiable ops:
the input and weight gradients through Conv2dBilinear (npae/ops/conv2d_bilinear.py), the bias
gradient a sum.
"""

from npae.engine.config import max_scratch_bytes
from npae.engine.dispatch import contiguous, kernels_for
from npae.engine.function import Function
from npae.engine.shapes import check_4d, conv2d_geometry, pair
from npae.engine.threads import blas_limited
from npae.ops._checks import array_of, check_channels, check_groups, same_float_dtype
from npae.ops.conv2d_bilinear import bilinear


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, w, b, geom):
        x = contiguous(x)
        w = contiguous(w)
        ctx.save_for_backward(x, w)
        ctx.geom = geom
        K = kernels_for(x, w)
        with blas_limited():  # also when called outside a model (npae/engine/threads.py)
            return K.conv2d_fwd(x, w, b, geom, max_scratch_bytes())

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        g = ctx.geom
        need_x, need_w, need_b = ctx.needs_input_grad
        gy = contiguous(gy)
        K = kernels_for(gy)
        scratch = max_scratch_bytes()
        gx = gw = gb = None
        if need_x:
            # the input gradient is a transpose convolution of gy with the same weight
            gx = K.conv2d_bwd_input(gy, w, x.shape[2], x.shape[3], g, scratch)
        if need_w:
            gw = K.conv2d_bwd_weight(x, gy, g, scratch)
        if need_b:
            gb = gy.sum(axis=(0, 2, 3))
        return gx, gw, gb

    @staticmethod
    def backward_graph(ctx, gy):
        # the same gradients as conv2d's bilinear maps, recorded: each is differentiable again
        x, w, _ = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad
        have = {"x": x, "w": w, "y": gy}
        hw = x.shape[2:]
        gx = bilinear("x", have, ctx.geom, hw) if need_x else None
        gw = bilinear("w", have, ctx.geom, hw) if need_w else None
        gb = gy.sum(axis=(0, 2, 3)) if need_b else None
        return gx, gw, gb


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (PyTorch's cross-correlation).

    Shapes: x (N, C, H, W), weight (O, C, kH, kW), bias (O,) or None -> (N, O, oH, oW) with

        oH = floor((H + 2*padding - dilation*(kH - 1) - 1) / stride) + 1   (and oW alike)

    stride, padding and dilation are ints or (h, w) pairs; ``groups`` (PyTorch's 7th argument)
    must be 1, the only value npae implements. A strided convolution is a learned
    downsampling: a 3x3 kernel with stride 2 and padding 1 turns 4x4 into 2x2
    (floor((4 + 2 - 2 - 1)/2) + 1 = 2).

    >>> conv2d(Tensor(np.ones((1, 1, 4, 4))), Tensor(np.ones((1, 1, 3, 3))), padding=1).shape
    (1, 1, 4, 4)
    """
    op = "conv2d"
    xs, ws = array_of(x).shape, array_of(weight).shape
    check_4d(op, "input", xs)
    check_4d(op, "weight", ws, "(out_channels, in_channels, kH, kW)")
    check_groups(op, groups)
    check_channels(op, xs, ws)
    if xs[1] != ws[1]:
        raise ValueError(
            f"conv2d: input has {xs[1]} channels but weight expects {ws[1]} "
            f"(input shape {tuple(xs)}, weight shape {tuple(ws)})"
        )
    if bias is not None and array_of(bias).shape != (ws[0],):
        raise ValueError(
            f"conv2d: bias must have shape ({ws[0]},) for weight shape {tuple(ws)}, "
            f"got {array_of(bias).shape}"
        )
    geom = conv2d_geometry(op, xs[2:], ws[2:], pair(stride, "stride", op),
                           pair(padding, "padding", op), pair(dilation, "dilation", op))
    same_float_dtype(op, input=x, weight=weight, bias=bias)
    return Conv2d.apply(x, weight, bias, geom=geom)
