"""GPU twin of the fused Adam step (same signature as ``npae.kernels.adam``): one thread per
element, the same arithmetic in the same order."""

import math

from numba import cuda

from ._launch import launch


@cuda.jit
def _adam_kernel(n_total, p, g, m, v, step_size, beta1, beta2, eps, weight_decay, sqrt_bias2):
    t = p.dtype.type
    b1, b2, wd = t(beta1), t(beta2), t(weight_decay)
    c1, c2 = t(1 - beta1), t(1 - beta2)
    lr_t, eps_t, sb2 = t(step_size), t(eps), t(sqrt_bias2)
    for i in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        gi = g[i]
        if weight_decay != 0:
            gi = gi + wd * p[i]
        mi = m[i] * b1 + c1 * gi
        vi = v[i] * b2 + c2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - lr_t * (mi / (math.sqrt(vi) / sb2 + eps_t))


def adam_step(p, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """Update p, m and v in place by Adam step ``step`` (counted from 1)."""
    step_size = lr / (1 - beta1 ** step)
    sqrt_bias2 = math.sqrt(1 - beta2 ** step)
    launch(_adam_kernel, p.size, p.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
           step_size, beta1, beta2, eps, weight_decay, sqrt_bias2)
