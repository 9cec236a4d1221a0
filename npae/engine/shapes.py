"""Output-size arithmetic and argument checks for the 2-D ops, in one place.

Every formula here is PyTorch's, so shapes carry over:

    conv2d            out = floor((in + 2*p - d*(k-1) - 1) / s) + 1
    conv_transpose2d  out = (in - 1)*s - 2*p + d*(k-1) + output_padding + 1
    max_pool2d        out = floor((in + 2*p - d*(k-1) - 1 [+ s-1 if ceil_mode]) / s) + 1
                      (with ceil_mode, a last window that starts in the right padding is dropped)
    max_unpool2d      out = (in - 1)*s - 2*p + k         (default; output_size may pick another)

Errors quote the formula with the user's numbers, so a wrong layer stack is fixed
from the message alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from npae.engine.config import check_fits_in_memory


def pair(value, name: str, op: str) -> tuple[int, int]:
    """Normalise an int or a pair of ints (PyTorch accepts both) to (h, w)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


def check_positive(op: str, name: str, value: tuple[int, int]) -> None:
    if min(value) <= 0:
        raise ValueError(f"{op}: {name} must be positive, got {value}")


def check_nonnegative(op: str, name: str, value: tuple[int, int]) -> None:
    if min(value) < 0:
        raise ValueError(f"{op}: {name} must be >= 0, got {value}")


def check_image(op: str, hw) -> None:
    """An image with a side of 0 has no pixels to upsample or to place a kernel copy at:
    refused, as PyTorch does, instead of failing deep inside a kernel."""
    if min(hw) < 1:
        raise ValueError(f"{op}: the input image is {hw[0]}x{hw[1]}; it needs at least one "
                         f"pixel a side")


def check_4d(op: str, name: str, shape: tuple[int, ...], layout: str = "(N, C, H, W)") -> None:
    if len(shape) != 4:
        raise ValueError(f"{op}: expected a 4-D {name} {layout}, got shape {tuple(shape)}")


def _size_arg(op, output_size) -> tuple[int, int]:
    """output_size as (H, W): from an int, (H, W), or (N, C, H, W) like PyTorch's."""
    if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
        return int(output_size), int(output_size)
    try:
        size = tuple(int(v) for v in output_size)
    except TypeError:
        raise TypeError(
            f"{op}: output_size must be (H, W) or (N, C, H, W), got {output_size!r}"
        ) from None
    if len(size) == 4:
        size = size[2:]
    if len(size) != 2:
        raise ValueError(f"{op}: output_size must be (H, W) or (N, C, H, W), got {output_size}")
    return size


def format_hw(pair_) -> str:
    """A size, always HxW: (4, 4) -> '4x4'."""
    return f"{pair_[0]}x{pair_[1]}"


def format_hp(pair_) -> str:
    """A hyper-parameter: '2' when both axes agree, else HxW ('2x1')."""
    return str(pair_[0]) if pair_[0] == pair_[1] else format_hw(pair_)


def parse_hw(text: str) -> tuple[int, int]:
    """'4x4' (or '4X2', or '4' for a square) -> (4, 4); ValueError for anything else.

    >>> parse_hw("4x2"), parse_hw("3")
    ((4, 2), (3, 3))
    """
    try:
        values = [int(part) for part in str(text).lower().split("x")]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise ValueError(f"expected an int or HxW like 4x2, got {text!r}")
    return values[0], values[1]


@dataclass(frozen=True)
class Geometry:
    """Everything a sliding-window kernel needs: the names used in every kernel signature."""

    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    oh: int
    ow: int

    @property
    def args(self) -> tuple[int, ...]:
        """(kh, kw, sh, sw, ph, pw, dh, dw): the order the kernels take them in."""
        return (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw)


def conv2d_geometry(op, hw, kernel, stride, padding, dilation) -> Geometry:
    """Output size of a convolution (and of im2col), or a ValueError that shows why not."""
    (h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = hw, kernel, stride, padding, dilation
    check_positive(op, "kernel size", kernel)
    check_positive(op, "stride", stride)
    check_nonnegative(op, "padding", padding)
    check_positive(op, "dilation", dilation)
    ext = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)  # the dilated kernel's extent
    padded = (h + 2 * ph, w + 2 * pw)
    if ext[0] > padded[0] or ext[1] > padded[1]:
        raise ValueError(
            f"{op}: kernel {format_hw(kernel)} (dilated extent {format_hw(ext)}, dilation "
            f"{format_hw(dilation)}) is larger than the padded input {format_hw(padded)} "
            f"(input {h}x{w} + 2*padding {format_hw(padding)})"
        )
    oh = conv2d_out(h, kh, sh, ph, dh)
    ow = conv2d_out(w, kw, sw, pw, dw)
    return Geometry(kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


def conv2d_out(n, k, s, p, d) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv_transpose2d_out(h, k, s, p, d, op_) -> int:
    return (h - 1) * s - 2 * p + d * (k - 1) + op_ + 1


def conv_transpose2d_geometry(
    op, hw, kernel, stride, padding, output_padding, dilation, output_size=None
) -> tuple[Geometry, tuple[int, int]]:
    """Output size of a transposed convolution; returns (geometry, output_padding).

    ``output_padding`` adds no zeros: a strided convolution maps several input sizes to the
    same output size, and output_padding picks which of them the transpose returns.
    ``output_size`` (H, W) or (N, C, H, W) solves for it instead.
    """
    check_image(op, hw)
    (h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = hw, kernel, stride, padding, dilation
    check_positive(op, "kernel size", kernel)
    check_positive(op, "stride", stride)
    check_nonnegative(op, "padding", padding)
    check_positive(op, "dilation", dilation)
    base = (conv_transpose2d_out(h, kh, sh, ph, dh, 0), conv_transpose2d_out(w, kw, sw, pw, dw, 0))
    limit = (max(sh, dh), max(sw, dw))  # output_padding must be smaller than stride or dilation
    if output_size is not None:
        size = _size_arg(op, output_size)
        output_padding = (size[0] - base[0], size[1] - base[1])
        for axis, name in ((0, "height"), (1, "width")):
            if not 0 <= output_padding[axis] < limit[axis]:
                raise ValueError(
                    f"{op}: output_size {format_hw(size)} is not reachable: output {name} = "
                    f"(in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1 = "
                    f"{base[axis]} + output_padding, with 0 <= output_padding < "
                    f"max(stride, dilation) = {limit[axis]}, so the valid {name}s are "
                    f"{base[axis]}..{base[axis] + limit[axis] - 1}"
                )
    check_nonnegative(op, "output_padding", output_padding)
    (oph, opw) = output_padding
    if oph >= limit[0] or opw >= limit[1]:
        raise ValueError(
            f"{op}: output_padding {format_hw(output_padding)} must be smaller than stride "
            f"{format_hw(stride)} or dilation {format_hw(dilation)} (it selects one of the output "
            f"sizes a strided convolution maps onto the same input size; it does not add zeros)"
        )
    oh, ow = base[0] + oph, base[1] + opw
    if oh <= 0 or ow <= 0:
        raise ValueError(
            f"{op}: output size {oh}x{ow} is not positive: (in - 1)*stride - 2*padding + "
            f"dilation*(kernel - 1) + output_padding + 1 = ({h}-1)*{sh} - 2*{ph} + "
            f"{dh}*({kh}-1) + {oph} + 1 = {oh} (height), ({w}-1)*{sw} - 2*{pw} + "
            f"{dw}*({kw}-1) + {opw} + 1 = {ow} (width)"
        )
    return Geometry(kh, kw, sh, sw, ph, pw, dh, dw, oh, ow), (oph, opw)


def pool2d_out(n, k, s, p, d, ceil_mode) -> int:
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1  # the last window would start inside the right padding: PyTorch drops it
    return out


def pool2d_geometry(op, hw, kernel, stride, padding, dilation, ceil_mode) -> Geometry:
    (h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = hw, kernel, stride, padding, dilation
    check_positive(op, "kernel_size", kernel)
    check_positive(op, "stride", stride)
    check_nonnegative(op, "padding", padding)
    check_positive(op, "dilation", dilation)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(
            f"{op}: padding {format_hw(padding)} must be at most half the kernel size "
            f"{format_hw(kernel)} (kernel_size // 2 = {kh // 2}x{kw // 2})"
        )
    oh = pool2d_out(h, kh, sh, ph, dh, ceil_mode)
    ow = pool2d_out(w, kw, sw, pw, dw, ceil_mode)
    if oh <= 0 or ow <= 0:
        rounding = "ceil" if ceil_mode else "floor"
        raise ValueError(
            f"{op}: output size {oh}x{ow} is not positive: out = {rounding}((in + 2*padding - "
            f"dilation*(kernel - 1) - 1)/stride) + 1 = {rounding}(({h} + 2*{ph} - {dh}*({kh}-1) "
            f"- 1)/{sh}) + 1 = {oh} (height), {rounding}(({w} + 2*{pw} - {dw}*({kw}-1) - 1)/{sw})"
            f" + 1 = {ow} (width): the input {h}x{w} is too small for a {format_hw(kernel)} window "
            f"with dilation {format_hw(dilation)}"
        )
    for axis, (n, k, s, p, d, out) in enumerate(((h, kh, sh, ph, dh, oh), (w, kw, sw, pw, dw, ow))):
        if d == 1:
            continue  # padding <= k // 2 already puts a real pixel in every undilated window
        for o in range(out):
            taps = [o * s - p + t * d for t in range(k)]
            if not any(0 <= r < n for r in taps):
                raise ValueError(
                    f"{op}: output {'row' if axis == 0 else 'column'} {o} has a window that "
                    f"holds only padding (positions {taps} of an input of size {n}, dilation "
                    f"{d}): there is no maximum to take; use less padding or dilation"
                )
    return Geometry(kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


def unpool2d_out(n, k, s, p) -> int:
    return (n - 1) * s - 2 * p + k


def unpool2d_size(op, hw, kernel, stride, padding, output_size=None) -> tuple[int, int]:
    """max_unpool2d's output size: the default, or a checked ``output_size``.

    The default inverts max_pool2d's floor formula; output_size may choose any size strictly
    within one stride of it, like PyTorch.
    """
    (h, w), (kh, kw), (sh, sw), (ph, pw) = hw, kernel, stride, padding
    check_image(op, hw)
    check_positive(op, "kernel_size", kernel)
    check_positive(op, "stride", stride)
    check_nonnegative(op, "padding", padding)
    default = (unpool2d_out(h, kh, sh, ph), unpool2d_out(w, kw, sw, pw))
    if output_size is None:
        size = default
    else:
        size = _size_arg(op, output_size)
        for axis, (name, s) in enumerate((("height", sh), ("width", sw))):
            lo, hi = default[axis] - s, default[axis] + s
            if not lo < size[axis] < hi:
                raise ValueError(
                    f"{op}: output_size {format_hw(size)}: {name} must be strictly between "
                    f"{lo} and {hi} (default (in - 1)*stride - 2*padding + kernel = "
                    f"({hw[axis]}-1)*{s} - 2*{padding[axis]} + {kernel[axis]} = {default[axis]},"
                    f" plus or minus stride {s})"
                )
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(
            f"{op}: output size {format_hw(size)} is not positive: (in - 1)*stride - 2*padding + "
            f"kernel = ({h}-1)*{sh} - 2*{ph} + {kh} = {default[0]} (height), "
            f"({w}-1)*{sw} - 2*{pw} + {kw} = {default[1]} (width)"
        )
    return size


def upsample_nearest2d_plan(op, hw, scale_factor=None, size=None):
    """Output size and source indices of nearest upsampling, PyTorch's legacy 'nearest' rule.

    Returns (oh, ow, rows, cols): output row i copies input row rows[i], column j copies
    input column cols[j]. PyTorch computes the source as floor(dst * scale) in float32, with
    scale = 1/scale_factor when a factor is given, else in/out; we do the same so that
    non-integer factors pick the same pixels.
    """
    h, w = hw
    check_image(op, hw)
    if (scale_factor is None) == (size is None):
        raise ValueError(f"{op}: give exactly one of scale_factor and size")
    if size is not None:
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            size = (int(size), int(size))
        if not (isinstance(size, (tuple, list)) and len(size) == 2):
            raise TypeError(f"{op}: size must be an int or a pair of ints, got {size!r}")
        oh, ow = (int(v) for v in size)
        scales = (None, None)
    else:
        scales = scale_factor_pair(op, scale_factor)
        oh, ow = math.floor(h * scales[0]), math.floor(w * scales[1])
    if oh <= 0 or ow <= 0:
        how = f"size {size}" if size is not None else (
            f"floor(in * scale_factor) = floor({h}*{scales[0]}) x floor({w}*{scales[1]})"
        )
        raise ValueError(f"{op}: output size {oh}x{ow} from input {h}x{w} is not positive ({how})")
    # even one image of one channel at this size would not fit: say so before trying
    check_fits_in_memory(f"{op}: an output of {oh}x{ow} pixels per channel (float32)",
                         oh * ow * 4)
    return oh, ow, _nearest_source(h, oh, scales[0]), _nearest_source(w, ow, scales[1])


def scale_factor_pair(op, scale_factor) -> tuple[float, float]:
    """A positive finite number, or a pair of them, as (scale_h, scale_w)."""
    if isinstance(scale_factor, (int, float, np.integer, np.floating)) and not isinstance(
        scale_factor, bool
    ):
        scale_factor = (float(scale_factor), float(scale_factor))
    if not (isinstance(scale_factor, (tuple, list)) and len(scale_factor) == 2
            and all(isinstance(v, (int, float, np.integer, np.floating))
                    and not isinstance(v, bool) for v in scale_factor)):
        raise TypeError(
            f"{op}: scale_factor must be a number or a pair of numbers, got {scale_factor!r}"
        )
    scales = (float(scale_factor[0]), float(scale_factor[1]))
    if min(scales) <= 0 or not all(math.isfinite(v) for v in scales):
        raise ValueError(f"{op}: scale_factor must be positive and finite, got {scale_factor}")
    return scales


def _nearest_source(n_in: int, n_out: int, scale_factor: float | None) -> np.ndarray:
    dst = np.arange(n_out, dtype=np.int64)
    if n_out == n_in:
        return dst
    if n_out == 2 * n_in:
        return dst // 2
    if scale_factor is not None:
        scale = np.float32(1.0 / scale_factor)
    else:
        scale = np.float32(n_in) / np.float32(n_out)
    src = np.floor(dst.astype(np.float32) * scale).astype(np.int64)
    return np.minimum(src, n_in - 1)


# ------------------------------------------------------------- the formulas, spelled out
# The same arithmetic as above, written out with the user's numbers for `npae explain` and
# `npae shapes`. Each returns the text and the value it arrives at (computed by the functions
# above, so text and op can never disagree).
FORMULAS = {
    "conv2d": "out = floor((in + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1",
    "conv_transpose2d": "out = (in - 1)*stride - 2*padding + dilation*(kernel - 1) "
                        "+ output_padding + 1",
    "max_pool2d": "out = floor((in + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1",
    "max_unpool2d": "out = (in - 1)*stride - 2*padding + kernel",
    "upsample_nearest2d": "out = floor(in * scale_factor)",
}


def conv2d_size_text(n, k, s, p, d) -> tuple[str, int]:
    """'floor((4 + 2*1 - 1*(3 - 1) - 1) / 2) + 1 = floor(3 / 2) + 1 = 2', 2"""
    out = conv2d_out(n, k, s, p, d)
    num = n + 2 * p - d * (k - 1) - 1
    text = f"floor(({n} + 2*{p} - {d}*({k} - 1) - 1) / {s}) + 1 = floor({num} / {s}) + 1 = {out}"
    return text, out


def pool2d_size_text(n, k, s, p, d, ceil_mode=False) -> tuple[str, int]:
    if not ceil_mode:
        return conv2d_size_text(n, k, s, p, d)
    out = pool2d_out(n, k, s, p, d, True)
    num = n + 2 * p - d * (k - 1) - 1
    text = f"ceil(({n} + 2*{p} - {d}*({k} - 1) - 1) / {s}) + 1 = ceil({num} / {s}) + 1"
    if out != -(-num // s) + 1:
        text += f" - 1 (the last window would start in the padding) = {out}"
    else:
        text += f" = {out}"
    return text, out


def conv_transpose2d_size_text(n, k, s, p, d, op_) -> tuple[str, int]:
    out = conv_transpose2d_out(n, k, s, p, d, op_)
    return f"({n} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {op_} + 1 = {out}", out


def unpool2d_size_text(n, k, s, p) -> tuple[str, int]:
    out = unpool2d_out(n, k, s, p)
    return f"({n} - 1)*{s} - 2*{p} + {k} = {out}", out


def upsample_size_text(n, scale) -> tuple[str, int]:
    out = math.floor(n * scale)
    return f"floor({n} * {scale:g}) = {out}", out
