"""Slow, obviously-correct references: the oracle the fast kernels are tested against.

Every function here is written straight from its operation's mathematical definition with plain
Python loops, computes in float64 and returns float64 arrays (indices as int64). Speed does not
matter (tests use tiny shapes); being easy to check by eye does. For that reason this module
imports only numpy and math, never `npae` or `kernels`: an oracle that shares code with the thing
it checks would share its bugs too.

Vocabulary (as everywhere in npae): kernel (kh, kw), stride (sh, sw), padding (ph, pw),
dilation (dh, dw), output size (oh, ow). Every pair is a tuple (h, w); callers normalise ints.
Layout is NCHW, semantics are PyTorch's unless a docstring says otherwise.
"""

import math

import numpy as np

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _conv_out(size, k, s, p, d):
    """Output length of a sliding window: floor((size + 2p - d*(k-1) - 1) / s) + 1."""
    # Python's // floors toward -inf, so a window that does not fit gives 0 or less, never 1.
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _pad_zeros(x, ph, pw):
    """Return x (N, C, H, W) surrounded by ph rows and pw columns of zeros on each side."""
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=np.float64)
    xp[:, :, ph : ph + h, pw : pw + w] = x
    return xp


def _check_positive_size(name, oh, ow, detail):
    if oh < 1 or ow < 1:
        raise ValueError(f"{name}: output size ({oh}, {ow}) is empty ({detail})")


def _reduce(losses, reduction):
    """Apply a PyTorch loss reduction ('mean' | 'sum' | 'none') to a float64 array of losses."""
    if reduction == "none":
        return losses
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    # A plain running sum: nan and inf propagate exactly as IEEE says, with no library cleverness.
    total = 0.0
    for v in losses.ravel():
        total += float(v)
    if reduction == "mean":
        # The mean of no elements is nan, as in PyTorch.
        total = total / losses.size if losses.size > 0 else math.nan
    return np.asarray(total, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------------


def conv2d_ref(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """2-D cross-correlation, as PyTorch's conv2d (no kernel flip, no groups).

    x (N, C, H, W), w (O, C, kh, kw), b (O,) or None  ->  y (N, O, oh, ow) with
        oh = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1   (ow likewise)
        y[n, o, i, j] = b[o] + sum_{c,p,q} x_padded[n, c, i*sh + p*dh, j*sw + q*dw] * w[o, c, p, q]
    where x_padded has ph zero rows and pw zero columns on each side.

    Example: a 4x4 input, 3x3 kernel, stride 1, padding 1 keeps 4x4; stride 2 gives 2x2.
    """
    x = _f64(x)
    w = _f64(w)
    b = None if b is None else _f64(b)
    n_batch, c_in, h, w_in = x.shape
    c_out, c_w, kh, kw = w.shape
    if c_w != c_in:
        raise ValueError(
            f"conv2d_ref: input has {c_in} channels but weight expects {c_w} "
            f"(weight shape {w.shape})"
        )
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    oh = _conv_out(h, kh, sh, ph, dh)
    ow = _conv_out(w_in, kw, sw, pw, dw)
    _check_positive_size("conv2d_ref", oh, ow, f"input {h}x{w_in}, kernel {kh}x{kw}")
    xp = _pad_zeros(x, ph, pw)

    # Output pixel (i, j) looks at the padded input through the dilated kernel:
    #
    #   x_padded  col: j*sw   j*sw+dw   j*sw+2dw
    #   row i*sh        w[0,0]   w[0,1]    w[0,2]
    #   row i*sh+dh     w[1,0]   w[1,1]    w[1,2]
    #   row i*sh+2dh    w[2,0]   w[2,1]    w[2,2]
    #
    # and sums the products over taps (p, q) and input channels c.
    y = np.zeros((n_batch, c_out, oh, ow), dtype=np.float64)
    for n in range(n_batch):
        for o in range(c_out):
            for i in range(oh):
                for j in range(ow):
                    acc = 0.0 if b is None else float(b[o])
                    for c in range(c_in):
                        for p in range(kh):
                            for q in range(kw):
                                acc += xp[n, c, i * sh + p * dh, j * sw + q * dw] * w[o, c, p, q]
                    y[n, o, i, j] = acc
    return y


def conv_transpose2d_ref(
    x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1)
):
    """2-D transposed convolution, as PyTorch's conv_transpose2d (no groups).

    x (N, Cin, H, W), w (Cin, Cout, kh, kw) (PyTorch's layout), b (Cout,) or None
    ->  y (N, Cout, oh, ow) with
        oh = (H - 1)*sh - 2*ph + dh*(kh - 1) + oph + 1   (ow likewise)

    Scatter definition: every input pixel x[n, ci, i, j] scales the kernel w[ci, co] and adds it
    onto the output with its top-left tap at (i*sh - ph, j*sw - pw), taps dh rows and dw columns
    apart. Overlapping contributions are summed; positions outside [0, oh) x [0, ow) are dropped
    (that is what padding means here: it crops the full scatter). Then the bias is added.

    output_padding does NOT add zeros: when sh > 1 several input sizes of the forward conv give
    the same H, and output_padding picks which of those output sizes to produce. It only extends
    the bottom/right edge, which may receive scattered values.

    Example: x = [[1, 2], [3, 4]], a 3x3 all-ones kernel, stride 2 -> 5x5; the centre pixel
    (2, 2) is covered by all four stamps and holds 1 + 2 + 3 + 4 = 10.
    """
    x = _f64(x)
    w = _f64(w)
    n_batch, c_in, h, w_in = x.shape
    c_w, c_out, kh, kw = w.shape
    if c_w != c_in:
        raise ValueError(
            f"conv_transpose2d_ref: input has {c_in} channels but weight expects {c_w} "
            f"(weight shape {w.shape}, layout (Cin, Cout, kh, kw))"
        )
    sh, sw = stride
    ph, pw = padding
    oph, opw = output_padding
    dh, dw = dilation
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (w_in - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    _check_positive_size("conv_transpose2d_ref", oh, ow, f"input {h}x{w_in}, kernel {kh}x{kw}")

    # Input pixel (i, j) stamps the kernel onto the output, shifted by the stride:
    #
    #   output      col: j*sw-pw   j*sw-pw+dw   ...
    #   row i*sh-ph        x*w[0,0]   x*w[0,1]
    #   row i*sh-ph+dh     x*w[1,0]   x*w[1,1]
    #   ...
    #
    # Stamps of neighbouring pixels overlap when the kernel is wider than the stride.
    y = np.zeros((n_batch, c_out, oh, ow), dtype=np.float64)
    for n in range(n_batch):
        for ci in range(c_in):
            for i in range(h):
                for j in range(w_in):
                    v = x[n, ci, i, j]
                    for co in range(c_out):
                        for p in range(kh):
                            r = i * sh - ph + p * dh
                            if r < 0 or r >= oh:
                                continue
                            for q in range(kw):
                                s = j * sw - pw + q * dw
                                if s < 0 or s >= ow:
                                    continue
                                y[n, co, r, s] += v * w[ci, co, p, q]
    if b is not None:
        b = _f64(b)
        for n in range(n_batch):
            for co in range(c_out):
                y[n, co] += b[co]
    return y


# ---------------------------------------------------------------------------------------------
# Max pooling and unpooling
# ---------------------------------------------------------------------------------------------


def _pool_out(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output length, including its ceil_mode correction."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    # With ceil_mode the last window may start in the right padding or beyond it; PyTorch drops
    # such a window so every window starts inside the input or the left padding.
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d_ref(x, kernel_size, stride, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
    """2-D max pooling with argmax, as PyTorch's max_pool2d(return_indices=True).

    x (N, C, H, W)  ->  (y (N, C, oh, ow) float64, idx (N, C, oh, ow) int64) with
        oh = floor((H + 2*ph - dh*(kh-1) - 1 + (sh-1 if ceil_mode else 0)) / sh) + 1,
        then, if ceil_mode and (oh-1)*sh >= H + ph, oh -= 1   (ow likewise)

    Window (i, j) holds the input rows i*sh - ph + p*dh and columns j*sw - pw + q*dw. Padding is
    implicit -inf: padded positions (and, with ceil_mode, positions past the edge) are never
    chosen. idx is the flat index row*W + col of the chosen element within its H x W plane.

    Rules (documented npae behaviour):
      * ties: the FIRST maximum in scan order (taps row-major, p then q) wins; only a strictly
        greater value replaces the current best;
      * NaN: a NaN counts as the maximum, and the first NaN in scan order wins (PyTorch's CPU
        kernel lets a later NaN replace an earlier one; we pin the first).
    A window containing no input element at all (possible only with dilation) raises ValueError:
    it has no element whose index could be returned.

    Example: x = [[1, 7], [7, 7]] with a 2x2 window gives y = 7, idx = 1 (the first 7).
    """
    x = _f64(x)
    n_batch, c_in, h, w_in = x.shape
    kh, kw = kernel_size
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    oh = _pool_out(h, kh, sh, ph, dh, ceil_mode)
    ow = _pool_out(w_in, kw, sw, pw, dw, ceil_mode)
    _check_positive_size("max_pool2d_ref", oh, ow, f"input {h}x{w_in}, kernel {kh}x{kw}")

    # Window (i, j) in input coordinates; '.' is padding (never chosen), taps dh/dw apart:
    #
    #   row i*sh-ph        (c0)  (c0+dw)  ...     c0 = j*sw - pw
    #   row i*sh-ph+dh     (c0)  (c0+dw)  ...
    #   ...
    #
    # Taps are visited row-major; `best` changes only on a strictly greater value or the first NaN.
    y = np.zeros((n_batch, c_in, oh, ow), dtype=np.float64)
    idx = np.zeros((n_batch, c_in, oh, ow), dtype=np.int64)
    for n in range(n_batch):
        for c in range(c_in):
            for i in range(oh):
                for j in range(ow):
                    best = None
                    best_index = -1
                    for p in range(kh):
                        r = i * sh - ph + p * dh
                        if r < 0 or r >= h:
                            continue
                        for q in range(kw):
                            s = j * sw - pw + q * dw
                            if s < 0 or s >= w_in:
                                continue
                            v = x[n, c, r, s]
                            if best is None:
                                take = True
                            elif math.isnan(best):
                                take = False  # the first NaN is final
                            else:
                                take = math.isnan(v) or v > best
                            if take:
                                best = v
                                best_index = r * w_in + s
                    if best is None:
                        raise ValueError(
                            f"max_pool2d_ref: window ({i}, {j}) covers no input element "
                            f"(input {h}x{w_in}, kernel {kh}x{kw}, padding {padding}, "
                            f"dilation {dilation})"
                        )
                    y[n, c, i, j] = best
                    idx[n, c, i, j] = best_index
    return y, idx


def max_pool2d_backward_ref(gy, idx, input_hw):
    """Gradient of max_pool2d with respect to its input.

    gy (N, C, oh, ow), idx (N, C, oh, ow) flat indices into an H x W plane, input_hw = (H, W)
    ->  gx (N, C, H, W): each gy element is added at its index; where windows overlap and share
    an argmax, the contributions sum.
    """
    gy = _f64(gy)
    idx = np.asarray(idx, dtype=np.int64)
    if idx.shape != gy.shape:
        raise ValueError(f"max_pool2d_backward_ref: idx shape {idx.shape} != gy shape {gy.shape}")
    h, w_in = input_hw
    n_batch, c_in, oh, ow = gy.shape
    gx = np.zeros((n_batch, c_in, h, w_in), dtype=np.float64)
    for n in range(n_batch):
        for c in range(c_in):
            for i in range(oh):
                for j in range(ow):
                    k = int(idx[n, c, i, j])
                    if k < 0 or k >= h * w_in:
                        raise ValueError(
                            f"max_pool2d_backward_ref: index {k} outside a {h}x{w_in} plane"
                        )
                    gx[n, c, k // w_in, k % w_in] += gy[n, c, i, j]
    return gx


def max_unpool2d_ref(x, idx, output_hw):
    """Partial inverse of max_pool2d: put each value back where its maximum came from.

    x (N, C, H, W), idx (N, C, H, W) flat indices into an oh x ow plane, output_hw = (oh, ow)
    ->  y (N, C, oh, ow): zeros, then every x[n, c, i, j] ADDED at flat position idx[n, c, i, j]
    of its plane.

    Duplicate indices (overlapping pooling windows sharing an argmax) SUM. This is npae's
    documented policy; PyTorch leaves "which writer wins" undefined. Summing makes forward and
    backward agree: the gradient of y with respect to x is then exactly a gather at idx.
    """
    x = _f64(x)
    idx = np.asarray(idx, dtype=np.int64)
    if idx.shape != x.shape:
        raise ValueError(f"max_unpool2d_ref: idx shape {idx.shape} != x shape {x.shape}")
    oh, ow = output_hw
    n_batch, c_in, h, w_in = x.shape
    y = np.zeros((n_batch, c_in, oh, ow), dtype=np.float64)
    for n in range(n_batch):
        for c in range(c_in):
            for i in range(h):
                for j in range(w_in):
                    k = int(idx[n, c, i, j])
                    if k < 0 or k >= oh * ow:
                        raise ValueError(f"max_unpool2d_ref: index {k} outside a {oh}x{ow} plane")
                    y[n, c, k // ow, k % ow] += x[n, c, i, j]
    return y


# ---------------------------------------------------------------------------------------------
# Nearest-neighbour upsampling
# ---------------------------------------------------------------------------------------------


def _nearest_source(dst, n_in, n_out, scale_factor):
    """Source index along one axis for PyTorch's legacy 'nearest' mode (not 'nearest-exact')."""
    if n_out == n_in:
        return dst
    if n_out == 2 * n_in:
        return dst // 2
    # PyTorch computes the scale and the product in float32, and the rounding is visible: e.g.
    # 2 -> 82 maps dst 41 to source 0 (exact arithmetic says 1), so float32 it is.
    if scale_factor is not None:
        scale = np.float32(1.0 / scale_factor)
    else:
        scale = np.float32(n_in) / np.float32(n_out)
    src = int(math.floor(np.float32(dst) * scale))
    return min(src, n_in - 1)


def _nearest_sources(input_hw, output_hw, scale_factor):
    """Lists (rows, cols): the source row of each output row and source column of each column."""
    h, w_in = input_hw
    oh, ow = output_hw
    sf_h, sf_w = (None, None) if scale_factor is None else scale_factor
    rows = [_nearest_source(i, h, oh, sf_h) for i in range(oh)]
    cols = [_nearest_source(j, w_in, ow, sf_w) for j in range(ow)]
    return rows, cols


def upsample_nearest2d_ref(x, output_hw, scale_factor=None):
    """Nearest-neighbour resize, as PyTorch's interpolate(mode='nearest').

    x (N, C, H, W), output_hw = (oh, ow), scale_factor None or (sh, sw) floats
    ->  y (N, C, oh, ow) with y[n, c, i, j] = x[n, c, src_row(i), src_col(j)], where per axis
    (n_in -> n_out):
        n_out == n_in      : src = dst
        n_out == 2 * n_in  : src = dst // 2
        otherwise          : scale = float32(1 / scale_factor) if a factor was given,
                             else float32(n_in) / float32(n_out);
                             src = min(floor(float32(dst) * scale), n_in - 1)   (float32 math)

    Example: 3 -> 5 rows uses scale 0.6 and sources [0, 0, 1, 1, 2].
    """
    x = _f64(x)
    n_batch, c_in, h, w_in = x.shape
    oh, ow = output_hw
    rows, cols = _nearest_sources((h, w_in), (oh, ow), scale_factor)
    y = np.zeros((n_batch, c_in, oh, ow), dtype=np.float64)
    for n in range(n_batch):
        for c in range(c_in):
            for i in range(oh):
                for j in range(ow):
                    y[n, c, i, j] = x[n, c, rows[i], cols[j]]
    return y


def upsample_nearest2d_backward_ref(gy, input_hw, output_hw, scale_factor=None):
    """Gradient of upsample_nearest2d with respect to its input.

    gy (N, C, oh, ow), input_hw = (H, W), output_hw = (oh, ow)  ->  gx (N, C, H, W) with
        gx[n, c, src_row(i), src_col(j)] += gy[n, c, i, j]   for every output pixel (i, j)
    (src_row / src_col as in upsample_nearest2d_ref).
    """
    gy = _f64(gy)
    n_batch, c_in, oh, ow = gy.shape
    if (oh, ow) != tuple(output_hw):
        raise ValueError(
            f"upsample_nearest2d_backward_ref: gy plane {(oh, ow)} != output_hw {output_hw}"
        )
    h, w_in = input_hw
    rows, cols = _nearest_sources((h, w_in), (oh, ow), scale_factor)
    gx = np.zeros((n_batch, c_in, h, w_in), dtype=np.float64)
    for n in range(n_batch):
        for c in range(c_in):
            for i in range(oh):
                for j in range(ow):
                    gx[n, c, rows[i], cols[j]] += gy[n, c, i, j]
    return gx


# ---------------------------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------------------------


def im2col_ref(x, kernel, stride, padding, dilation):
    """Unfold sliding windows into columns, as PyTorch's F.unfold.

    x (N, C, H, W)  ->  cols (N, C*kh*kw, oh*ow), oh = floor((H + 2*ph - dh*(kh-1) - 1)/sh) + 1
        cols[n, (c*kh + p)*kw + q, i*ow + j] = x_padded[n, c, i*sh + p*dh, j*sw + q*dw]
    (0 where the tap falls in the zero padding). A convolution is then w.reshape(O, -1) @ cols.
    """
    x = _f64(x)
    n_batch, c_in, h, w_in = x.shape
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    oh = _conv_out(h, kh, sh, ph, dh)
    ow = _conv_out(w_in, kw, sw, pw, dw)
    _check_positive_size("im2col_ref", oh, ow, f"input {h}x{w_in}, kernel {kh}x{kw}")
    xp = _pad_zeros(x, ph, pw)

    # One row per (channel, tap), one column per output pixel:
    #
    #                 col i*ow+j  ->
    #   row (c*kh+p)*kw+q   x_padded[c, i*sh+p*dh, j*sw+q*dw]
    #
    cols = np.zeros((n_batch, c_in * kh * kw, oh * ow), dtype=np.float64)
    for n in range(n_batch):
        for c in range(c_in):
            for p in range(kh):
                for q in range(kw):
                    row = (c * kh + p) * kw + q
                    for i in range(oh):
                        for j in range(ow):
                            cols[n, row, i * ow + j] = xp[n, c, i * sh + p * dh, j * sw + q * dw]
    return cols


def col2im_ref(cols, input_shape, kernel, stride, padding, dilation):
    """Fold columns back onto an image, the adjoint of im2col_ref (PyTorch's F.fold).

    cols (N, C*kh*kw, oh*ow), input_shape = (N, C, H, W)  ->  x (N, C, H, W) with every entry
    cols[n, (c*kh + p)*kw + q, i*ow + j] ADDED at padded pixel (i*sh + p*dh, j*sw + q*dw);
    entries landing in the padding are dropped. oh, ow as in im2col_ref.
    Adjointness: <im2col(x), cols> == <x, col2im(cols)> for all x and cols.
    """
    cols = _f64(cols)
    n_batch, c_in, h, w_in = input_shape
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    oh = _conv_out(h, kh, sh, ph, dh)
    ow = _conv_out(w_in, kw, sw, pw, dw)
    expected = (n_batch, c_in * kh * kw, oh * ow)
    if cols.shape != expected:
        raise ValueError(f"col2im_ref: cols shape {cols.shape} != expected {expected}")

    # Same index map as im2col_ref, run backwards: accumulate into a padded canvas, then crop
    # (cropping is the adjoint of zero padding).
    xp = np.zeros((n_batch, c_in, h + 2 * ph, w_in + 2 * pw), dtype=np.float64)
    for n in range(n_batch):
        for c in range(c_in):
            for p in range(kh):
                for q in range(kw):
                    row = (c * kh + p) * kw + q
                    for i in range(oh):
                        for j in range(ow):
                            xp[n, c, i * sh + p * dh, j * sw + q * dw] += cols[n, row, i * ow + j]
    return xp[:, :, ph : ph + h, pw : pw + w_in].copy()


# ---------------------------------------------------------------------------------------------
# Linear and elementwise
# ---------------------------------------------------------------------------------------------


def linear_ref(x, w, b=None):
    """Affine map, as PyTorch's linear: y = x @ w.T + b.

    x (..., in), w (out, in), b (out,) or None  ->  y (..., out)
        y[..., o] = b[o] + sum_k x[..., k] * w[o, k]
    """
    x = _f64(x)
    w = _f64(w)
    b = None if b is None else _f64(b)
    n_out, n_in = w.shape
    if x.shape[-1] != n_in:
        raise ValueError(f"linear_ref: input has {x.shape[-1]} features but weight {w.shape}")
    lead = x.shape[:-1]
    rows = x.reshape(-1, n_in)  # (M, in): all leading dimensions flattened into M rows
    y = np.zeros((rows.shape[0], n_out), dtype=np.float64)
    for m in range(rows.shape[0]):
        for o in range(n_out):
            acc = 0.0 if b is None else float(b[o])
            for k in range(n_in):
                acc += rows[m, k] * w[o, k]
            y[m, o] = acc
    return y.reshape(*lead, n_out)


def _elementwise(x, f):
    x = _f64(x)
    y = np.empty_like(x)
    for k in np.ndindex(x.shape):
        y[k] = f(float(x[k]))
    return y


def relu_ref(x):
    """max(x, 0) elementwise; NaN propagates (it fails the comparison), as in PyTorch."""
    return _elementwise(x, lambda v: 0.0 if v < 0.0 else v)


def leaky_relu_ref(x, negative_slope=0.01):
    """x if x > 0 else negative_slope * x, elementwise."""
    return _elementwise(x, lambda v: v if v > 0.0 else negative_slope * v)


def _sigmoid(v):
    # 1 / (1 + e^-v) overflows math.exp for v << 0; there the equal form e^v / (1 + e^v) is safe.
    # Each branch calls exp only on a non-positive argument.
    if v >= 0.0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)  # also reached by NaN, which then propagates
    return e / (1.0 + e)


def sigmoid_ref(x):
    """1 / (1 + exp(-x)) elementwise, computed without overflow for large |x|."""
    return _elementwise(x, _sigmoid)


def tanh_ref(x):
    """tanh(x) elementwise."""
    return _elementwise(x, math.tanh)


def mse_loss_ref(x, t, reduction="mean"):
    """Mean squared error, as PyTorch's mse_loss: (x - t)^2 elementwise, then reduced.

    x, t of one shape; reduction 'mean' | 'sum' | 'none' ('none' keeps the shape, the others
    return a 0-d float64 array).
    """
    x = _f64(x)
    t = _f64(t)
    if x.shape != t.shape:
        raise ValueError(f"mse_loss_ref: input shape {x.shape} != target shape {t.shape}")
    losses = np.empty_like(x)
    for k in np.ndindex(x.shape):
        d = x[k] - t[k]
        losses[k] = d * d
    return _reduce(losses, reduction)


def _clamped_log(v):
    """log(v) clamped below at -100, as PyTorch's binary_cross_entropy does (log(0) -> -100)."""
    if v <= 0.0:
        return -100.0  # math.log(0) raises; the clamped value is what PyTorch uses
    return max(math.log(v), -100.0)


def binary_cross_entropy_ref(x, t, weight=None, reduction="mean"):
    """Binary cross entropy on probabilities, as PyTorch's binary_cross_entropy.

    x (probabilities in [0, 1]), t and optional weight (broadcast to x's shape):
        loss = -weight * (t * max(log(x), -100) + (1 - t) * max(log(1 - x), -100))
    then reduced ('mean' | 'sum' | 'none'). The clamp keeps x = 0 or 1 finite.
    """
    x = _f64(x)
    t = _f64(t)
    if x.shape != t.shape:
        raise ValueError(
            f"binary_cross_entropy_ref: input shape {x.shape} != target shape {t.shape}"
        )
    wt = np.ones_like(x) if weight is None else np.broadcast_to(_f64(weight), x.shape)
    losses = np.empty_like(x)
    for k in np.ndindex(x.shape):
        p = float(x[k])
        if p < 0.0 or p > 1.0:
            raise ValueError(f"binary_cross_entropy_ref: input {p} at {k} is outside [0, 1]")
        # log(1 - p) as log1p(-p): exact for tiny p, where 1 - p would round to 1.
        log_q = -100.0 if p >= 1.0 else max(math.log1p(-p), -100.0)
        losses[k] = -wt[k] * (t[k] * _clamped_log(p) + (1.0 - t[k]) * log_q)
    return _reduce(losses, reduction)


def binary_cross_entropy_with_logits_ref(z, t, weight=None, reduction="mean"):
    """Binary cross entropy on logits, as PyTorch's binary_cross_entropy_with_logits.

    z (logits), t and optional weight (broadcast to z's shape):
        loss = weight * (max(z, 0) - z*t + log1p(exp(-|z|)))
    which equals -t*log(sigmoid(z)) - (1-t)*log(1 - sigmoid(z)) but never overflows exp and
    never takes log of 0. Then reduced ('mean' | 'sum' | 'none').
    """
    z = _f64(z)
    t = _f64(t)
    if z.shape != t.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits_ref: input shape {z.shape} != target shape {t.shape}"
        )
    wt = np.ones_like(z) if weight is None else np.broadcast_to(_f64(weight), z.shape)
    losses = np.empty_like(z)
    for k in np.ndindex(z.shape):
        v = float(z[k])
        losses[k] = wt[k] * (max(v, 0.0) - v * t[k] + math.log1p(math.exp(-abs(v))))
    return _reduce(losses, reduction)


def adam_step_ref(p, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """One Adam step (Kingma & Ba, with PyTorch's L2 weight decay and bias correction), element by
    element in float64: returns the new (p, m, v)."""
    p, grad, m, v = (_f64(a).ravel().copy() for a in (p, grad, m, v))
    for i in range(p.size):
        g = grad[i] + weight_decay * p[i]
        m[i] = beta1 * m[i] + (1 - beta1) * g
        v[i] = beta2 * v[i] + (1 - beta2) * g * g
        m_hat = m[i] / (1 - beta1 ** step)
        v_hat = v[i] / (1 - beta2 ** step)
        p[i] = p[i] - lr * m_hat / (math.sqrt(v_hat) + eps)
    return p, m, v
