"""The NumPy column: each case run through the plain-NumPy formulations of numpy_ops.py."""

import numpy as np

from . import numpy_ops as N


def op(case):
    """(forward, forward_backward) for the NumPy formulation of ``case``.

    Inputs are drawn in the same order as npae_side.op draws them, so both columns compute on
    the same numbers.
    """
    rng = np.random.default_rng(0)
    p = case.params
    x = rng.standard_normal(case.x).astype(np.float32)

    def draw(shape):
        return rng.standard_normal(shape).astype(np.float32)

    if case.op == "conv2d":
        w, b = draw(case.w), draw(case.w[0])
        gy = draw(case.out_shape)
        s, pad = p["stride"], p["padding"]
        def fwd():
            return N.conv2d_fwd(x, w, b, s, pad)
        def fwd_bwd():
            N.conv2d_fwd(x, w, b, s, pad)
            return N.conv2d_bwd(x, w, gy, s, pad)
    elif case.op == "conv_transpose2d":
        w, b = draw(case.w), draw(case.w[1])
        gy = draw(case.out_shape)
        s, pad, op_ = p["stride"], p["padding"], p["output_padding"]
        def fwd():
            return N.conv_transpose2d_fwd(x, w, b, s, pad, op_)
        def fwd_bwd():
            N.conv_transpose2d_fwd(x, w, b, s, pad, op_)
            return N.conv_transpose2d_bwd(x, w, gy, s, pad)
    elif case.op == "max_pool2d":
        k, s = p["kernel_size"], p["stride"]
        gy = draw(case.out_shape)
        def fwd():
            return N.max_pool2d_fwd(x, k, s)
        def fwd_bwd():
            _, idx = N.max_pool2d_fwd(x, k, s)
            return N.max_pool2d_bwd(gy, idx, x.shape)
    elif case.op == "max_unpool2d":
        k, s = p["kernel_size"], p["stride"]
        n, c, h, w_ = case.x
        _, idx = N.max_pool2d_fwd(draw((n, c, h * k, w_ * k)), k, s)
        gy = draw(case.out_shape)
        out_hw = (h * k, w_ * k)
        def fwd():
            return N.max_unpool2d_fwd(x, idx, out_hw)
        def fwd_bwd():
            N.max_unpool2d_fwd(x, idx, out_hw)
            return N.max_unpool2d_bwd(gy, idx)
    elif case.op == "upsample_nearest2d":
        s = p["scale_factor"]
        gy = draw(case.out_shape)
        def fwd():
            return N.upsample_nearest2d_fwd(x, s)
        def fwd_bwd():
            N.upsample_nearest2d_fwd(x, s)
            return N.upsample_nearest2d_bwd(gy, s)
    elif case.op == "linear_ae":
        w1, b1 = draw((32, 784)), draw(32)
        w2, b2 = draw((784, 32)), draw(784)
        gy = draw(case.out_shape)
        def fwd():
            return N.linear_fwd(np.maximum(N.linear_fwd(x, w1, b1), 0), w2, b2)
        def fwd_bwd():
            pre = N.linear_fwd(x, w1, b1)
            h = np.maximum(pre, 0)
            N.linear_fwd(h, w2, b2)
            gh, _, _ = N.linear_bwd(h, w2, gy)
            return N.linear_bwd(x, w1, gh * (pre > 0))
    else:
        raise ValueError(case.op)
    return fwd, fwd_bwd
