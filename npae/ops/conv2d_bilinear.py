"""conv2d's three bilinear maps as one op, closed under differentiation (create_graph=True).

A convolution without bias is a trilinear form T(x, w, y) = <conv2d(x, w), y>. Leaving one
argument out gives a bilinear map that returns it:

    role "y": (x, w)  -> conv2d(x, w)                       kernel conv2d_fwd
    role "x": (w, gy) -> conv2d's input gradient (conv_T)   kernel conv2d_bwd_input
    role "w": (x, gy) -> conv2d's weight gradient           kernel conv2d_bwd_weight

The gradient of any of them with respect to one input is again one of them: the map of that
input's role, on the other input and the incoming gradient (which plays the output's role).
So Conv2d and ConvTranspose2d build their backward_graph from this op alone, and it needs no
other op: conv2d and conv_transpose2d use each other's derivatives without importing each
other (tests/test_imports.py allows no cycle).
"""

from npae.engine.config import max_scratch_bytes
from npae.engine.dispatch import contiguous, kernels_for
from npae.engine.function import Function
from npae.engine.threads import blas_limited

ROLES = "xwy"  # conv2d's input, weight, output: the canonical order of the arguments


def _others(role):
    """The two roles a map takes, in canonical order: "y" -> "xw", "x" -> "wy", "w" -> "xy"."""
    return tuple(r for r in ROLES if r != role)


class Conv2dBilinear(Function):
    """The map of ``role`` on its two inputs (see the module docstring), for the convolution
    ``geom`` (kernel, stride, padding, dilation; (geom.oh, geom.ow) is y's size) of an input
    of spatial size ``hw``."""

    @staticmethod
    def forward(ctx, a, b, geom, role, hw):
        a = contiguous(a)
        b = contiguous(b)
        ctx.save_for_backward(a, b)
        ctx.geom, ctx.role, ctx.hw = geom, role, hw
        with blas_limited():
            return _map(role, dict(zip(_others(role), (a, b), strict=True)), geom, hw)

    @staticmethod
    def backward(ctx, grad):
        have = dict(zip(_others(ctx.role), ctx.saved_tensors, strict=True))
        have[ctx.role] = contiguous(grad)
        return tuple(_map(s, have, ctx.geom, ctx.hw) if need else None
                     for s, need in zip(_others(ctx.role), ctx.needs_input_grad,
                                        strict=True))

    @staticmethod
    def backward_graph(ctx, grad):
        have = dict(zip(_others(ctx.role), ctx.inputs, strict=True))
        have[ctx.role] = grad
        return tuple(bilinear(s, have, ctx.geom, ctx.hw) if need else None
                     for s, need in zip(_others(ctx.role), ctx.needs_input_grad,
                                        strict=True))


def _map(role, arrays, geom, hw):
    """The kernel that returns ``role`` from the other two arrays (a dict by role)."""
    scratch = max_scratch_bytes()
    if role == "y":
        x, w = arrays["x"], arrays["w"]
        return kernels_for(x, w).conv2d_fwd(x, w, None, geom, scratch)
    if role == "x":
        w, gy = arrays["w"], arrays["y"]
        return kernels_for(w, gy).conv2d_bwd_input(gy, w, hw[0], hw[1], geom, scratch)
    x, gy = arrays["x"], arrays["y"]
    return kernels_for(x, gy).conv2d_bwd_weight(x, gy, geom, scratch)


def bilinear(role, tensors, geom, hw):
    """The recorded map of ``role``, from Tensors given by role (the other two)."""
    a, b = (tensors[r] for r in _others(role))
    return Conv2dBilinear.apply(a, b, geom=geom, role=role, hw=tuple(hw))
