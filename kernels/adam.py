"""One Adam step for one parameter, in one pass over its arrays (PyTorch's rule).

    g = grad + weight_decay * p
    m = beta1 * m + (1 - beta1) * g              (in place)
    v = beta2 * v + (1 - beta2) * g * g          (in place)
    p = p - step_size * m / (sqrt(v) / sqrt(bias2) + eps)    (in place)

with step_size = lr / (1 - beta1^t) and bias2 = 1 - beta2^t, computed once by the caller. The
NumPy form of the same rule (npae/optim.py keeps it as the readable version) makes about eight
temporaries the size of the parameter and reads and writes each; here every element is read and
written once. Everything is computed in the parameter's dtype, the constants rounded to it, in
PyTorch's order: p - step_size * (m / (sqrt(v) / sqrt(bias2) + eps)). In float32 the loop
vectorises (sqrt and division 8 lanes at a time); in float64 per element it did not (VAE's
784x400 weight: about 4 ns per element).

Elements are split into blocks, one thread per block, each element written by its own thread
only. Arrays below PARALLEL_MIN elements run on the calling thread: waking the pool costs more
than the work there (a bias vector, a small kernel).
"""

import math

import numpy as np
from numba import prange

from ._jit import BLOCK, elementwise, jit


def adam_step(p, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """Update p, m and v in place (all contiguous, same shape and dtype) by Adam step ``step``
    (counted from 1)."""
    step_size = lr / (1 - beta1 ** step)
    sqrt_bias2 = math.sqrt(1 - beta2 ** step)
    elementwise(_adam_block, _adam_parallel, p.size, p.reshape(-1), grad.reshape(-1),
                m.reshape(-1), v.reshape(-1), step_size, beta1, beta2, eps, weight_decay,
                sqrt_bias2)


@jit()
def _adam_block(p, g, m, v, step_size, beta1, beta2, eps, weight_decay, sqrt_bias2, lo, hi):
    """The rule on elements lo..hi-1 of the flat arrays, in their dtype."""
    t = p.dtype.type
    b1, b2, wd = t(beta1), t(beta2), t(weight_decay)
    c1, c2 = t(1 - beta1), t(1 - beta2)
    lr_t, eps_t, sb2 = t(step_size), t(eps), t(sqrt_bias2)
    # slices indexed from 0, so no wrap-around check per element (kernels/relu.py says why)
    ps, gs, ms, vs = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
    decay = weight_decay != 0
    for i in range(ps.size):
        gi = gs[i] + wd * ps[i] if decay else gs[i]
        mi = ms[i] * b1 + c1 * gi
        vi = vs[i] * b2 + c2 * (gi * gi)
        ms[i] = mi
        vs[i] = vi
        ps[i] = ps[i] - lr_t * (mi / (np.sqrt(vi) / sb2 + eps_t))


@jit(parallel=True)
def _adam_parallel(p, g, m, v, step_size, beta1, beta2, eps, weight_decay, sqrt_bias2):
    n = p.size
    for blk in prange((n + BLOCK - 1) // BLOCK):
        _adam_block(p, g, m, v, step_size, beta1, beta2, eps, weight_decay, sqrt_bias2,
                    blk * BLOCK, min(n, (blk + 1) * BLOCK))
