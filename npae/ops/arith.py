"""Elementwise arithmetic with NumPy broadcasting, and matrix products.

Broadcasting copies an operand along new or size-1 axes, so its gradient is the sum of the
output gradient over those axes: ``unbroadcast`` undoes it, once, for every binary op here.

Each ``backward_graph`` (create_graph=True) is the same rule on Tensors, read from
``ctx.inputs``: mul's gradient grad * b depends on b, so its derivative in b is there for a
second backward; ``unbroadcast`` on a Tensor sums with npae's own (differentiable) sum.
"""

from __future__ import annotations

import numpy as np

from npae.engine.dispatch import array_module, is_array
from npae.engine.function import Function
from npae.engine.tensor import Tensor
from npae.ops._checks import array_of


def unbroadcast(grad, shape: tuple[int, ...]):
    """Sum ``grad`` down to ``shape``: over the leading axes broadcasting added, and over the
    axes where the operand had size 1. An ndarray (backward) or a Tensor (backward_graph: the
    sums are then npae's own, differentiable)."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    ones = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if ones:
        grad = grad.sum(axis=ones, keepdims=True)
    return grad.reshape(shape)


def _operands(a, b):
    """Give a Python number the dtype of the tensor it meets (x * 2 stays float32)."""
    # ... and the tensor's device
    if not (isinstance(a, Tensor) or is_array(a)):
        a = array_module(array_of(b)).asarray(a, dtype=_dtype_of(b))
    if not (isinstance(b, Tensor) or is_array(b)):
        b = array_module(array_of(a)).asarray(b, dtype=_dtype_of(a))
    return a, b


def _dtype_of(x):
    dtype = x.dtype
    return dtype if np.issubdtype(dtype, np.floating) else np.float32


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        need_a, need_b = ctx.needs_input_grad
        return (unbroadcast(grad, sa) if need_a else None,
                unbroadcast(grad, sb) if need_b else None)

    @staticmethod
    def backward_graph(ctx, grad):
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(grad, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a - b

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        need_a, need_b = ctx.needs_input_grad
        return (unbroadcast(grad, sa) if need_a else None,
                unbroadcast(-grad, sb) if need_b else None)

    @staticmethod
    def backward_graph(ctx, grad):
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(-grad, sb)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (unbroadcast(grad * b, a.shape) if need_a else None,
                unbroadcast(grad * a, b.shape) if need_b else None)

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.inputs
        return unbroadcast(grad * b, a.shape), unbroadcast(grad * a, b.shape)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        ga = unbroadcast(grad / b, a.shape) if need_a else None
        gb = unbroadcast(-grad * a / (b * b), b.shape) if need_b else None
        return ga, gb

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.inputs
        return unbroadcast(grad / b, a.shape), unbroadcast(-grad * a / (b * b), b.shape)


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = a ** b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if need_a:
                # d(a^b)/da = b a^(b-1); 0 where b == 0 (a^0 is constant), even at a == 0
                ga = unbroadcast(np.where(b == 0, 0, grad * b * a ** (b - 1)), a.shape)
            if need_b:
                # d(a^b)/db = a^b log a; taken as 0 at a == 0 for b >= 0, as PyTorch does
                gb = unbroadcast(np.where((a == 0) & (b >= 0), 0, grad * out * np.log(a)),
                                 b.shape)
        return ga, gb

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.inputs
        av, bv, out = ctx.saved_tensors
        # the same two rules; where they are taken as 0, the base is swapped for a constant 1
        # (b * 1^(b-1) with b == 0, and log 1), so the products are 0 without 0 * inf
        one = av.dtype.type(1)
        base_a = a + np.where((bv == 0) & (av == 0), one, 0).astype(av.dtype)
        base_b = a + np.where((av == 0) & (bv >= 0), one, 0).astype(av.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            ga = unbroadcast(grad * b * base_a ** (b - 1), a.shape)
            gb = unbroadcast(grad * ctx.output(out) * base_b.log(), b.shape)
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return (-grad,)

    @staticmethod
    def backward_graph(ctx, grad):
        return (-grad,)


class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-D operands are promoted to matrices, batch axes broadcast."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(
                f"matmul: operands must be at least 1-D, got shapes {a.shape} and {b.shape}"
            )
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        # Work with matrices: a 1-D a is a row (1, k), a 1-D b a column (k, 1).
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            g2 = g2[..., None]
        ga = gb = None
        if need_a:
            ga = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if need_b:
            gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.inputs
        a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
        b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            at = g2.ndim - 1 if b.ndim > 1 else 0  # where np.expand_dims(g2, -2 or 0) puts it
            g2 = g2.reshape(g2.shape[:at] + (1,) + g2.shape[at:])
        if b.ndim == 1:
            g2 = g2.reshape(g2.shape + (1,))
        ga = unbroadcast(g2 @ _swap_last(b2), a2.shape).reshape(a.shape)
        gb = unbroadcast(_swap_last(a2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


def _swap_last(t: Tensor) -> Tensor:
    return t.transpose(t.ndim - 1, t.ndim - 2)


def add(a, b):
    return Add.apply(*_operands(a, b))


def sub(a, b):
    return Sub.apply(*_operands(a, b))


def mul(a, b):
    return Mul.apply(*_operands(a, b))


def div(a, b):
    return Div.apply(*_operands(a, b))


def pow(a, b):  # noqa: A001 (mirrors the operator)
    return Pow.apply(*_operands(a, b))


def neg(a):
    return Neg.apply(a)


def matmul(a, b):
    return MatMul.apply(*_operands(a, b))
