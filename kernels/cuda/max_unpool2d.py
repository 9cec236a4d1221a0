"""GPU twins of max unpooling (same signatures as ``npae.kernels.max_unpool2d``).

The forward is a scatter-add on the CPU (y.flat[idx] += x, duplicates summed in scan order).
Here it is a gather, one thread per output element, in two steps:

    key[p, q] = (p * oh*ow + idx[p, q]) * H*W + q      plane p, input position q (scan order)
    order     = argsort(key)                             every key is distinct: one order only
    slot      = key[order] // (H*W)                       the output element each entry feeds,
                                                          sorted, and by q within a slot

Thread t (output element t of the whole batch) binary-searches ``slot`` for its first entry
and sums x over its run of entries: the values whose index is t, in scan order, as on the CPU.
No atomics, the same sum on every run, and O(log) work to find the run instead of a scan of the
whole plane. Indices are checked first, as on the CPU: one outside the output plane raises
IndexError (one reduction over idx on the device). The backward is a gather already.
"""

import numpy as np
from numba import cuda

from .._arrays import array_module
from ..max_unpool2d import index_error
from ._launch import launch


def _check_indices(idx, oh, ow) -> None:
    xp = array_module(idx)
    bad = ((idx < 0) | (idx >= oh * ow)).ravel()
    if bool(bad.any()):
        where = np.unravel_index(int(xp.argmax(bad)), idx.shape)
        raise index_error(idx, tuple(int(v) for v in where), oh, ow)


@cuda.jit
def _unpool_fwd_kernel(n_total, x_flat, order, slot, y_flat):
    m = slot.shape[0]
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        lo = 0
        hi = m
        while lo < hi:  # first entry with slot >= t
            mid = (lo + hi) // 2
            if slot[mid] < t:
                lo = mid + 1
            else:
                hi = mid
        acc = y_flat.dtype.type(0)
        while lo < m and slot[lo] == t:
            acc += x_flat[order[lo]]
            lo += 1
        y_flat[t] = acc


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
    _check_indices(idx, oh, ow)
    xp = array_module(x)
    n, c, h, w = x.shape
    planes, hw, size = n * c, h * w, oh * ow
    flat = idx.reshape(planes, hw)
    plane = xp.arange(planes, dtype=np.int64).reshape(planes, 1)
    pos = xp.arange(hw, dtype=np.int64).reshape(1, hw)
    key = ((plane * size + flat) * hw + pos).ravel()
    order = xp.argsort(key)
    slot = key[order] // hw
    y = xp.empty((n, c, oh, ow), dtype=x.dtype)
    launch(_unpool_fwd_kernel, y.size, x.reshape(-1), order, slot, y.reshape(-1))
    return y


def max_unpool2d_bwd(gy, idx):
    """gy (N, C, oh, ow), idx (N, C, H, W) -> gx (N, C, H, W) = gy gathered at idx."""
    _check_indices(idx, gy.shape[2], gy.shape[3])
    gx = array_module(gy).empty(idx.shape, dtype=gy.dtype)
    launch(_unpool_bwd_kernel, gx.size, gy, idx, gx)
    return gx
