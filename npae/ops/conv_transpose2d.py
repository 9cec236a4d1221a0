"""conv_transpose2d: each input pixel scales the kernel onto the output; overlaps are summed.

Its backward_graph (create_graph=True) builds the same three gradients from differentiable ops:
the input and weight gradients through Conv2dBilinear (npae/ops/conv2d_bilinear.py) with the
roles of input and output gradient swapped, the bias gradient a sum.
"""

from dataclasses import replace

from npae.engine.config import max_scratch_bytes
from npae.engine.dispatch import contiguous, kernels_for
from npae.engine.function import Function
from npae.engine.shapes import check_4d, conv_transpose2d_geometry, pair
from npae.engine.threads import blas_limited
from npae.ops._checks import array_of, check_channels, check_groups, same_float_dtype
from npae.ops.conv2d_bilinear import bilinear


class ConvTranspose2d(Function):
    @staticmethod
    def forward(ctx, x, w, b, geom):
        x = contiguous(x)
        w = contiguous(w)
        ctx.save_for_backward(x, w)
        ctx.geom = geom
        K = kernels_for(x, w)
        with blas_limited():  # also when called outside a model (npae/engine/threads.py)
            return K.conv_transpose2d_fwd(x, w, b, geom, max_scratch_bytes())

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        g = ctx.geom
        need_x, need_w, need_b = ctx.needs_input_grad
        gy = contiguous(gy)
        K = kernels_for(gy)
        scratch = max_scratch_bytes()
        gx = gw = gb = None
        # the convolution this op is the transpose of: from our output back down to x's size
        conv = replace(g, oh=x.shape[2], ow=x.shape[3])
        if need_x:
            # the input gradient of a transpose convolution is a convolution with the same weight
            gx = K.conv2d_fwd(gy, w, None, conv, scratch)
        if need_w:
            # roles swap: gy plays the convolution's input, x its output gradient
            gw = K.conv2d_bwd_weight(gy, x, conv, scratch)
        if need_b:
            gb = gy.sum(axis=(0, 2, 3))
        return gx, gw, gb

    @staticmethod
    def backward_graph(ctx, gy):
        # this op is conv2d's input-gradient map: x plays conv2d's output gradient, gy its
        # input, so the gradients are the other two maps of the same convolution, recorded
        x, w, _ = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad
        conv = replace(ctx.geom, oh=x.shape[2], ow=x.shape[3])  # as in backward
        have = {"x": gy, "w": w, "y": x}
        hw = gy.shape[2:]
        gx = bilinear("y", have, conv, hw) if need_x else None
        gw = bilinear("w", have, conv, hw) if need_w else None
        gb = gy.sum(axis=(0, 2, 3)) if need_b else None
        return gx, gw, gb


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, output_size=None):
    """2-D transposed convolution ("deconvolution"), the adjoint of conv2d.

    Shapes: x (N, Cin, H, W), weight (Cin, Cout, kH, kW) (PyTorch's layout), bias (Cout,) or None
    -> (N, Cout, oH, oW) with

        oH = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1   (oW alike)

    ``output_padding`` adds no zeros: a strided conv2d maps several sizes onto one, and
    output_padding (0 <= output_padding < max(stride, dilation)) picks which one comes back.
    ``output_size=(oH, oW)`` (keyword only) solves for it instead and says which sizes are
    reachable. The positional order is PyTorch's, ``groups`` included (only 1 is implemented).

    A 2x2 input through a 3x3, stride-2 kernel gives 5x5; the pixels where two scaled kernels
    overlap hold the sum of both:

    >>> conv_transpose2d(Tensor(np.ones((1, 1, 2, 2))), Tensor(np.ones((1, 1, 3, 3))),
    ...                  stride=2).shape
    (1, 1, 5, 5)
    """
    op = "conv_transpose2d"
    xs, ws = array_of(x).shape, array_of(weight).shape
    check_4d(op, "input", xs)
    check_4d(op, "weight", ws, "(in_channels, out_channels, kH, kW)")
    check_groups(op, groups)
    check_channels(op, xs, ws)
    if xs[1] != ws[0]:
        raise ValueError(
            f"conv_transpose2d: input has {xs[1]} channels but weight expects {ws[0]} "
            f"(weight is (in_channels, out_channels, kH, kW); input shape {tuple(xs)}, "
            f"weight shape {tuple(ws)})"
        )
    if bias is not None and array_of(bias).shape != (ws[1],):
        raise ValueError(
            f"conv_transpose2d: bias must have shape ({ws[1]},) for weight shape {tuple(ws)}, "
            f"got {array_of(bias).shape}"
        )
    geom, _ = conv_transpose2d_geometry(
        op, xs[2:], ws[2:], pair(stride, "stride", op), pair(padding, "padding", op),
        pair(output_padding, "output_padding", op), pair(dilation, "dilation", op), output_size,
    )
    same_float_dtype(op, input=x, weight=weight, bias=bias)
    return ConvTranspose2d.apply(x, weight, bias, geom=geom)
