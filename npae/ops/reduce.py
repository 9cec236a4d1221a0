"""Reductions: sum and mean over some axes (all by default).

Their gradient copies the output gradient back over the summed axes; under create_graph=True
that copy is ``Expand``, an op of its own whose gradient is a sum again (unbroadcast).
"""

from __future__ import annotations

import numpy as np

from npae.engine.dispatch import as_array
from npae.engine.function import Function
from npae.ops.arith import unbroadcast


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"sum/mean: axis {a} is out of range for a {ndim}-D tensor")
    return tuple(sorted(a % ndim for a in axes)) if ndim else ()


def _expand(grad, shape, axes, keepdims):
    # Put back the reduced axes as size 1, then broadcast: every summed element gets grad.
    if not keepdims:
        grad = np.expand_dims(grad, axes) if axes else grad
    return np.broadcast_to(grad, shape)


class Expand(Function):
    """x broadcast to ``shape`` (a copy); its gradient sums the copies back."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return np.broadcast_to(x, shape).copy()

    @staticmethod
    def backward(ctx, grad):
        return (unbroadcast(grad, ctx.shape),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (unbroadcast(grad, ctx.shape),)


def _expand_graph(grad, shape, axes, keepdims):
    """_expand on a Tensor, differentiably."""
    if not keepdims and axes:
        kept = list(grad.shape)
        for a in axes:
            kept.insert(a, 1)
        grad = grad.reshape(tuple(kept))
    return Expand.apply(grad, shape=shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = _axes(axis, x.ndim)
        ctx.shape, ctx.keepdims = x.shape, keepdims
        return as_array(x.sum(axis=ctx.axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, grad):
        return (_expand(grad, ctx.shape, ctx.axes, ctx.keepdims).copy(),)  # a copy, 0-d kept

    @staticmethod
    def backward_graph(ctx, grad):
        return (_expand_graph(grad, ctx.shape, ctx.axes, ctx.keepdims),)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = _axes(axis, x.ndim)
        ctx.shape, ctx.keepdims = x.shape, keepdims
        ctx.count = int(np.prod([x.shape[a] for a in ctx.axes])) if ctx.axes else 1
        return as_array(x.mean(axis=ctx.axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, grad):
        g = _expand(grad, ctx.shape, ctx.axes, ctx.keepdims)
        return (g / g.dtype.type(ctx.count),)

    @staticmethod
    def backward_graph(ctx, grad):
        g = _expand_graph(grad, ctx.shape, ctx.axes, ctx.keepdims)
        return (g / g.dtype.type(ctx.count),)


def sum(x, axis=None, keepdims=False):  # noqa: A001 (mirrors Tensor.sum)
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return Mean.apply(x, axis=axis, keepdims=keepdims)
