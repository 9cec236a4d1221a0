"""Elementwise functions of one tensor: exp, log, sqrt, clip."""

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


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (grad / x,)


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


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def clip(x, min=None, max=None):  # noqa: A002 (PyTorch's argument names)
    return Clip.apply(x, min, max)
