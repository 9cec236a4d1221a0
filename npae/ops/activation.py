"""Activations: relu, leaky_relu, sigmoid, tanh. Each saves what its derivative needs.

Under create_graph=True (``backward_graph``): relu's and leaky_relu's gradients multiply by a
slope that is constant almost everywhere (the mask is held constant, so their second
derivative is 0, as in PyTorch); sigmoid's grad * y * (1 - y) and tanh's grad * (1 - y^2) are
written with y, the op's own output, so their second derivative flows through it.
"""

import numpy as np

from npae.engine.dispatch import contiguous, kernels_for
from npae.engine.function import Function


class ReLU(Function):
    # One jitted pass each way (kernels/relu.py); the readable version is
    # y = np.maximum(x, 0) and gx = grad * (y > 0).
    @staticmethod
    def forward(ctx, x):
        y = kernels_for(x).relu_fwd(contiguous(x))
        ctx.save_for_backward(y)  # d relu = 1 where y > 0 (0 at 0, as in PyTorch)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return (kernels_for(grad).relu_bwd(contiguous(grad), y),)

    @staticmethod
    def backward_graph(ctx, grad):
        (y,) = ctx.saved_tensors
        return (grad * (y > 0).astype(y.dtype),)


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        mask = x > 0
        ctx.save_for_backward(mask)
        ctx.slope = negative_slope
        return np.where(mask, x, x * x.dtype.type(negative_slope))

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return (np.where(mask, grad, grad * grad.dtype.type(ctx.slope)),)

    @staticmethod
    def backward_graph(ctx, grad):
        (mask,) = ctx.saved_tensors
        return (grad * np.where(mask, 1, ctx.slope).astype(grad.dtype),)


def stable_sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp only ever sees -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Sigmoid(Function):
    # One jitted pass each way (kernels/sigmoid.py); the readable version is stable_sigmoid
    # above and grad * y * (1 - y).
    @staticmethod
    def forward(ctx, x):
        y = kernels_for(x).sigmoid_fwd(contiguous(x))
        ctx.save_for_backward(y)  # sigmoid' = y (1 - y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return (kernels_for(grad).sigmoid_bwd(contiguous(grad), y),)

    @staticmethod
    def backward_graph(ctx, grad):
        (y,) = ctx.saved_tensors
        y = ctx.output(y)
        return (grad * y * (1 - y),)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)  # tanh' = 1 - y^2
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return (grad * (1 - y * y),)

    @staticmethod
    def backward_graph(ctx, grad):
        (y,) = ctx.saved_tensors
        y = ctx.output(y)
        return (grad * (1 - y * y),)


def relu(x):
    """max(x, 0), elementwise (gradient 0 at 0)."""
    return ReLU.apply(x)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x."""
    return LeakyReLU.apply(x, negative_slope=negative_slope)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow."""
    return Sigmoid.apply(x)


def tanh(x):
    return Tanh.apply(x)
