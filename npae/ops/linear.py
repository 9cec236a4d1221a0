"""linear: y = x @ weight.T + bias, PyTorch's layout (weight is (out_features, in_features)).

Its backward_graph (create_graph=True) is the same three matrix products on Tensors.
"""

from npae.engine.dispatch import array_module, empty
from npae.engine.function import Function
from npae.engine.threads import blas_limited
from npae.ops._checks import array_of, same_float_dtype


class Linear(Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        with blas_limited():  # also when called outside a model (npae/engine/threads.py)
            # into pooled memory: a fresh array every step faults its pages in again
            y = array_module(x).matmul(x, w.T, out=empty(x, (*x.shape[:-1], w.shape[0])))
        if b is not None:
            y += b
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = array_module(gy).matmul(gy, w, out=empty(gy, (*gy.shape[:-1], w.shape[1]))) \
            if need_x else None
        # fold any leading batch axes into one: gW = gy^T x summed over every sample
        gw = gy.reshape(-1, w.shape[0]).T @ x.reshape(-1, w.shape[1]) if need_w else None
        gb = gy.reshape(-1, w.shape[0]).sum(axis=0) if need_b else None
        return gx, gw, gb

    @staticmethod
    def backward_graph(ctx, gy):
        # the same three products, recorded (create_graph=True): each is bilinear in gy and
        # one input, so its derivatives are matrix products again
        x, w, _ = ctx.inputs
        g2 = gy.reshape((-1, w.shape[0]))
        return gy @ w, g2.T @ x.reshape((-1, w.shape[1])), g2.sum(axis=0)


def linear(x, weight, bias=None):
    """Fully connected layer.

    Shapes: x (..., in_features), weight (out_features, in_features), bias (out_features,) or
    None -> (..., out_features). The article's linear autoencoder is 784 -> 32 -> 784.
    """
    op = "linear"
    xs, ws = array_of(x).shape, array_of(weight).shape
    if len(ws) != 2:
        raise ValueError(f"{op}: weight must be 2-D (out_features, in_features), got shape {ws}")
    if len(xs) < 1:
        raise ValueError(f"{op}: input must be at least 1-D (..., in_features), got shape {xs}")
    if xs[-1] != ws[1]:
        raise ValueError(
            f"{op}: input has {xs[-1]} features (shape {xs}) but weight expects "
            f"{ws[1]} (weight shape {ws})"
        )
    if bias is not None and array_of(bias).shape != (ws[0],):
        raise ValueError(
            f"{op}: bias must have shape ({ws[0]},) for weight shape {ws}, "
            f"got {array_of(bias).shape}"
        )
    same_float_dtype(op, input=x, weight=weight, bias=bias)
    return Linear.apply(x, weight, bias)
