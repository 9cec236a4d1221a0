"""The example an explanation works on: its size, its numbers (random small integers from the
seed, the user's ``--values`` and ``--weights``, or a tie-free shuffle for the max ops), the
image as a one-image, one-channel Tensor, and where each output's window lies in it."""

from __future__ import annotations

import numpy as np

from npae.engine.shapes import format_hw as hw
from npae.engine.tensor import Tensor
from npae.tools.settings import ExplainSettings


def values(given, shape, what, rng, low, high) -> np.ndarray:
    """``given`` (the numbers of ``what``, row by row) as a ``shape`` array, or, when None,
    random integers from low to high."""
    n = shape[0] * shape[1]
    if given is None:
        return rng.integers(low, high + 1, size=shape).astype(np.float64)
    if len(given) != n:
        raise ValueError(
            f"{what} gives {len(given)} numbers but {hw(shape)} needs {n} (row by row)"
        )
    return np.asarray(given, dtype=np.float64).reshape(shape)


# An explanation lists windows and sums a reader follows by eye: beyond this many pixels a side
# (input, output or window) it teaches nothing, and it would take memory and minutes to build.
MAX_SIDE = 64


def check_side(what: str, size, option: str) -> None:
    """ValueError when ``size`` (HxW) is larger than an explanation shows."""
    if size is not None and max(size) > MAX_SIDE:
        raise ValueError(
            f"explain: {what} of {hw(size)} is larger than an explanation shows (at most "
            f"{MAX_SIDE} pixels a side: it lists every window and sum for you to follow); "
            f"choose a smaller {option}"
        )


def check_settings(s: ExplainSettings) -> None:
    """Every size the options give, checked before any work."""
    for name, what in (("input", "an input"), ("kernel", "a kernel"), ("stride", "a stride"),
                       ("padding", "a padding"), ("dilation", "a dilation"),
                       ("output_padding", "an output padding")):
        check_side(what, getattr(s, name), "--" + name.replace("_", "-"))


def input_hw(s: ExplainSettings, default: tuple[int, int]) -> tuple[int, int]:
    """The input size: --input, else the square that --values fills, else the op's default."""
    if s.input is not None:
        return s.input
    if s.values is not None:  # --values alone: a square image if the count allows
        side = int(round(len(s.values) ** 0.5))
        if side * side == len(s.values):
            return side, side
        raise ValueError(f"--values gives {len(s.values)} numbers, not a square image: "
                         f"say its size with --input HxW")
    return default


def tie_free(s: ExplainSettings, shape, rng) -> np.ndarray:
    """Pooling inputs: a shuffled 1..H*W (no ties, so every maximum is unambiguous)."""
    if s.values is not None:
        return values(s.values, shape, "--values", rng, 0, 0)
    return (rng.permutation(shape[0] * shape[1]) + 1).astype(np.float64).reshape(shape)


def as_tensor(a) -> Tensor:
    """An (H, W) image as the (1, 1, H, W) float64 Tensor the ops take."""
    return Tensor(np.asarray(a, dtype=np.float64)[None, None])


def windows(g):
    """For output (oy, ox) of geometry ``g`` (npae.engine.shapes), the input rows and columns of
    its window (may lie in the padding): rows[oy], cols[ox]."""
    rows = [[oy * g.sh - g.ph + i * g.dh for i in range(g.kh)] for oy in range(g.oh)]
    cols = [[ox * g.sw - g.pw + j * g.dw for j in range(g.kw)] for ox in range(g.ow)]
    return rows, cols


def padded(x, ph, pw):
    """``x`` framed by ph rows and pw columns of zeros, and the mask of that frame."""
    xp = np.zeros((x.shape[0] + 2 * ph, x.shape[1] + 2 * pw))
    xp[ph:ph + x.shape[0], pw:pw + x.shape[1]] = x
    pad = np.ones(xp.shape, dtype=bool)
    pad[ph:ph + x.shape[0], pw:pw + x.shape[1]] = False
    return xp, pad
