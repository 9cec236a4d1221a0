"""Elementwise functions of one tensor: exp, log, sqrt, clip, and a dtype cast.

Each ``backward_graph`` is its ``backward`` written with Tensors (create_graph=True), so that
the gradient is itself differentiable: exp's is grad * y with y the output, log's grad / x,
sqrt's grad / (2 y), and clip's grad times a mask held constant (its derivative is 0 almost
everywhere).
"""

from __future__ import annotations

import numpy as np

from npae.engine.dispatch import array_module
from npae.engine.function import Function


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)  # d exp(x) = exp(x): keep the output, not the input
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return (grad * y,)

    @staticmethod
    def backward_graph(ctx, grad):
        (y,) = ctx.saved_tensors
        return (grad * ctx.output(y),)


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (grad / x,)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad / ctx.inputs[0],)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        with np.errstate(divide="ignore"):  # at 0 the slope is infinite, as in PyTorch
            return (grad / (2 * y),)

    @staticmethod
    def backward_graph(ctx, grad):
        (y,) = ctx.saved_tensors
        with np.errstate(divide="ignore"):
            return (grad / (2 * ctx.output(y)),)


class Clip(Function):
    """Clamp to [min, max]; the gradient passes where the input was inside (bounds included,
    as in PyTorch's clamp)."""

    @staticmethod
    def forward(ctx, x, lo=None, hi=None):
        if lo is None and hi is None:
            raise ValueError("clip: give at least one of min and max")
        inside = array_module(x).ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        ctx.save_for_backward(inside)
        return np.clip(x, lo, hi).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return (grad * inside, None, None)

    @staticmethod
    def backward_graph(ctx, grad):
        (inside,) = ctx.saved_tensors
        return (grad * inside.astype(grad.dtype), None, None)  # the mask is a constant


class Cast(Function):
    """x in another float dtype; the gradient is cast back."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return (grad.astype(ctx.dtype),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (Cast.apply(grad, dtype=ctx.dtype),)


def cast(x, dtype):
    """x as float32 or float64, differentiably (the gradient comes back in x's dtype)."""
    return Cast.apply(x, dtype=np.dtype(dtype))


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def clip(x, min=None, max=None):  # noqa: A002 (PyTorch's argument names)
    return Clip.apply(x, min, max)
