"""Ops that move elements without changing them: reshape, permute, basic indexing.

Their gradients move the elements back, with the same ops (create_graph=True): reshape's is a
reshape, permute's the inverse permutation, indexing's a scatter (``ScatterItem``) whose own
gradient is the indexing again.
"""

from __future__ import annotations

import numpy as np

from npae.engine.dispatch import array_module, as_array
from npae.engine.function import Function


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                f"into {tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        return (grad.reshape(ctx.shape),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad.reshape(ctx.shape),)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        dims = tuple(int(d) % x.ndim for d in dims) if x.ndim else ()
        if sorted(dims) != list(range(x.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dimensions")
        ctx.dims = dims
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        return (grad.transpose(tuple(int(d) for d in np.argsort(ctx.dims))),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad.permute(tuple(int(d) for d in np.argsort(ctx.dims))),)


def _is_basic(index) -> bool:
    """True for indices made of ints, slices, None and Ellipsis: they never repeat an element."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis
               for p in parts)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return as_array(x[index])

    @staticmethod
    def backward(ctx, grad):
        return (_scatter(grad, ctx.shape, ctx.dtype, ctx.index),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (ScatterItem.apply(grad, shape=ctx.shape, index=ctx.index),)


def _scatter(grad, shape, dtype, index):
    """zeros(shape) with grad added at index (getitem's adjoint)."""
    xp = array_module(grad)
    gx = xp.zeros(shape, dtype)
    if _is_basic(index):
        gx[index] = grad
    else:
        xp.add.at(gx, index, grad)  # an index array may pick an element twice
    return gx


class ScatterItem(Function):
    """getitem's gradient as an op: zeros of ``shape`` with x added at ``index``; its own
    gradient is the indexing again."""

    @staticmethod
    def forward(ctx, x, shape, index):
        ctx.index = index
        return _scatter(x, shape, x.dtype, index)

    @staticmethod
    def backward(ctx, grad):
        return (as_array(grad[ctx.index]),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (GetItem.apply(grad, index=ctx.index),)


def reshape(x, shape):
    return Reshape.apply(x, shape=tuple(shape))


def permute(x, dims):
    return Permute.apply(x, dims=tuple(dims))


def _unwrap(index):
    return index.data if hasattr(index, "data") and hasattr(index, "requires_grad") else index


def getitem(x, index):
    # Tensors of indices, alone or inside a tuple, index by their data
    index = tuple(_unwrap(i) for i in index) if isinstance(index, tuple) else _unwrap(index)
    return GetItem.apply(x, index=index)
