"""Losses: mse_loss, binary_cross_entropy, binary_cross_entropy_with_logits.

reduction is 'mean' (over every element), 'sum' or 'none' (elementwise), as in PyTorch.

Under create_graph=True (``backward_graph``) each gradient is written with npae operations on
the inputs: mse's 2 (x - t) grad / n, binary cross-entropy's grad (x - t) / max(x (1 - x),
1e-12) and log(1 - x) - log x, the logits version's grad (sigmoid(z) - t) and -grad z. The
weight is a constant.
"""

import numpy as np

from npae.engine.dispatch import array_module, as_array, empty
from npae.engine.function import Function
from npae.ops._checks import array_of, check_reduction, check_same_shape, same_float_dtype
from npae.ops.activation import sigmoid, stable_sigmoid


def _reduce(loss, reduction):
    if reduction == "mean":
        return as_array(loss.mean()).astype(loss.dtype, copy=False)
    if reduction == "sum":
        return as_array(loss.sum()).astype(loss.dtype, copy=False)
    return loss


def _unreduce(grad, shape, reduction):
    """The gradient of each element's loss: the reduction spreads grad back evenly."""
    if reduction == "none":
        return grad
    g = np.broadcast_to(grad, shape)
    if reduction == "mean":
        n = int(np.prod(shape))
        g = g / g.dtype.type(max(n, 1))
    return g


def _unreduce_graph(grad, shape, reduction):
    """_unreduce on a Tensor: the mean's 1/n (a scalar grad broadcasts where it is used)."""
    if reduction == "mean":
        return grad / grad.dtype.type(max(int(np.prod(shape)), 1))
    return grad


class MSELoss(Function):
    @staticmethod
    def forward(ctx, x, t, reduction):
        xp = array_module(x)
        shape = np.broadcast_shapes(x.shape, t.shape)
        # the difference and its square in pooled memory (kernels/_pool.py): no fresh pages
        diff = xp.subtract(x, t, out=empty(x, shape, np.result_type(x, t)))
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        return _reduce(xp.multiply(diff, diff, out=empty(diff, shape)), reduction)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        # _unreduce's spread, kept a scalar (no full-size copies of one number) unless 'none'
        g = grad / grad.dtype.type(max(diff.size, 1)) if ctx.reduction == "mean" else grad
        g = array_module(diff).multiply(diff, 2 * g, out=empty(diff, diff.shape))
        need_x, need_t = ctx.needs_input_grad
        return (g if need_x else None, -g if need_t else None)

    @staticmethod
    def backward_graph(ctx, grad):
        x, t = ctx.inputs
        g = 2 * (x - t) * _unreduce_graph(grad, x.shape, ctx.reduction)
        return g, -g


_LOG_FLOOR = -100.0  # PyTorch clamps each log term at -100, so BCE of exact 0 or 1 stays finite
_BCE_EPS = 1e-12  # and bounds the gradient's denominator x (1 - x) away from 0


class BinaryCrossEntropy(Function):
    @staticmethod
    def forward(ctx, x, t, w, reduction):
        with np.errstate(divide="ignore"):
            log_x = np.maximum(np.log(x), _LOG_FLOOR)
            log_1mx = np.maximum(np.log1p(-x), _LOG_FLOOR)
        loss = -(t * log_x + (1 - t) * log_1mx)
        if w is not None:
            loss = loss * w
        ctx.save_for_backward(x, t, w, log_x, log_1mx)
        ctx.reduction = reduction
        return _reduce(loss.astype(x.dtype, copy=False), reduction)

    @staticmethod
    def backward(ctx, grad):
        x, t, w, log_x, log_1mx = ctx.saved_tensors
        g = _unreduce(grad, x.shape, ctx.reduction)
        if w is not None:
            g = g * w
        need_x, need_t, _ = ctx.needs_input_grad
        gx = g * (x - t) / np.maximum(x * (1 - x), _BCE_EPS) if need_x else None
        gt = g * (log_1mx - log_x) if need_t else None
        return gx, gt, None

    @staticmethod
    def backward_graph(ctx, grad):
        x, t, w = ctx.inputs
        g = _unreduce_graph(grad, x.shape, ctx.reduction)
        if w is not None:
            g = g * w
        gx = g * (x - t) / (x * (1 - x)).clip(min=_BCE_EPS)
        with np.errstate(divide="ignore"):
            gt = g * ((1 - x).log().clip(min=_LOG_FLOOR) - x.log().clip(min=_LOG_FLOOR))
        return gx, gt, None


class BinaryCrossEntropyWithLogits(Function):
    @staticmethod
    def forward(ctx, z, t, w, reduction):
        # log(1 + exp(-|z|)) never overflows, so logits of +-1e4 give finite, exact losses
        loss = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        if w is not None:
            loss = loss * w
        ctx.save_for_backward(z, t, w)
        ctx.reduction = reduction
        return _reduce(loss.astype(z.dtype, copy=False), reduction)

    @staticmethod
    def backward(ctx, grad):
        z, t, w = ctx.saved_tensors
        g = _unreduce(grad, z.shape, ctx.reduction)
        if w is not None:
            g = g * w
        need_z, need_t, _ = ctx.needs_input_grad
        gz = g * (stable_sigmoid(z) - t) if need_z else None
        gt = -g * z if need_t else None
        return gz, gt, None

    @staticmethod
    def backward_graph(ctx, grad):
        z, t, w = ctx.inputs
        g = _unreduce_graph(grad, z.shape, ctx.reduction)
        if w is not None:
            g = g * w
        return g * (sigmoid(z) - t), -g * z, None


def _check(op, input, target, weight, reduction):
    check_reduction(op, reduction)
    check_same_shape(op, array_of(input).shape, array_of(target).shape)
    if weight is not None:
        ws = array_of(weight).shape
        try:
            np.broadcast_shapes(ws, array_of(input).shape)
        except ValueError:
            raise ValueError(
                f"{op}: weight shape {ws} does not broadcast to input shape "
                f"{array_of(input).shape}"
            ) from None
    same_float_dtype(op, input=input, target=target)


def _constant(weight, like):
    return None if weight is None else array_of(weight).astype(array_of(like).dtype, copy=False)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error (input - target)^2; input and target have the same shape."""
    _check("mse_loss", input, target, None, reduction)
    return MSELoss.apply(input, target, reduction=reduction)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)) for probabilities x in [0, 1] (each log clamped at -100).

    ``weight`` (broadcast to the input's shape) rescales each element's loss.
    """
    _check("binary_cross_entropy", input, target, weight, reduction)
    x = array_of(input)
    if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1):
        raise ValueError(
            "binary_cross_entropy: input values must lie in [0, 1] (probabilities); got values "
            f"in [{np.nanmin(x):g}, {np.nanmax(x):g}]: for logits use "
            "binary_cross_entropy_with_logits"
        )
    return BinaryCrossEntropy.apply(input, target, _constant(weight, input), reduction=reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean"):
    """Sigmoid + binary cross-entropy in one numerically stable step:
    max(z, 0) - z t + log(1 + exp(-|z|)); its gradient is sigmoid(z) - t."""
    _check("binary_cross_entropy_with_logits", input, target, weight, reduction)
    return BinaryCrossEntropyWithLogits.apply(input, target, _constant(weight, input),
                                              reduction=reduction)
