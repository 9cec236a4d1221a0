"""GPU twins of max unpooling (same signatures as ``npae.kernels.max_unpool2d``).

The forward is a scatter-add on the CPU (y.flat[idx] += x); here it is a gather: one thread per
output element k of a plane scans the plane's indices in scan order and sums every x whose
index is k. Duplicates (overlapping pooling windows) are summed in the CPU kernel's order, no
atomics, the same result on every run. The price is a scan of the whole input plane per output
element (H*W reads, from a plane every thread of the block shares): cheap for the article's
planes (at most 14x14 inputs), quadratic for large ones. The backward is a gather already.
"""

from numba import cuda

from ._launch import launch, xp_of


@cuda.jit
def _unpool_fwd_kernel(n_total, x, idx, y):
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    size = y.shape[2] * y.shape[3]
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        k = t % size
        ch = (t // size) % c
        b = t // (size * c)
        acc = y.dtype.type(0)
        for i in range(h):
            for j in range(w):
                if idx[b, ch, i, j] == k:
                    acc += x[b, ch, i, j]
        y[b, ch, k // y.shape[3], k % y.shape[3]] = acc


@cuda.jit
def _unpool_bwd_kernel(n_total, gy, idx, gx):
    c, h, w = gx.shape[1], gx.shape[2], gx.shape[3]
    ow = gy.shape[3]
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        j = t % w
        i = (t // w) % h
        ch = (t // (w * h)) % c
        b = t // (w * h * c)
        k = idx[b, ch, i, j]
        if k >= 0:
            gx[b, ch, i, j] = gy[b, ch, k // ow, k % ow]
        else:
            gx[b, ch, i, j] = 0


def max_unpool2d_fwd(x, idx, oh, ow):
    """x, idx (N, C, H, W) -> y (N, C, oh, ow)."""
    y = xp_of(x).empty((x.shape[0], x.shape[1], oh, ow), dtype=x.dtype)
    launch(_unpool_fwd_kernel, y.size, x, idx, y)
    return y


def max_unpool2d_bwd(gy, idx):
    """gy (N, C, oh, ow), idx (N, C, H, W) -> gx (N, C, H, W) = gy gathered at idx."""
    gx = xp_of(gy).empty(idx.shape, dtype=gy.dtype)
    launch(_unpool_bwd_kernel, gx.size, gy, idx, gx)
    return gx
