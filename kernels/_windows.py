"""Index helpers shared by the sliding-window kernels."""

from ._jit import jit


@jit()
def valid_range(j, sw, pw, dw, w, ow):
    """Output columns ox with 0 <= ox*sw - pw + j*dw < w, as [lo, hi) with 0 <= lo <= hi <= ow.

    Columns before lo read left padding, columns from hi on read right padding. Both ends are
    clamped to [0, ow]: a tap can sit in the padding for every output column.
    """
    off = j * dw - pw
    lo = 0
    if off < 0:
        lo = (-off + sw - 1) // sw
    if lo > ow:
        lo = ow
    hi = (w - 1 - off) // sw + 1 if w - 1 - off >= 0 else 0
    if hi > ow:
        hi = ow
    if hi < lo:
        hi = lo
    return lo, hi
