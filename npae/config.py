"""Engine-wide settings (the kernels themselves hold no state: these are passed in)."""

import os

from npae.kernels import DEFAULT_MAX_SCRATCH

_max_scratch = int(os.environ.get("NPAE_MAX_SCRATCH_MB", DEFAULT_MAX_SCRATCH // 2**20)) * 2**20


def max_scratch_bytes() -> int:
    """Most scratch memory (bytes) one convolution call may allocate for its im2col columns."""
    return _max_scratch


def set_max_scratch_bytes(nbytes: int) -> None:
    """Bound the im2col workspace of every convolution (default 64 MiB, or $NPAE_MAX_SCRATCH_MB).

    Smaller means more, smaller GEMMs; the results are the same.
    """
    global _max_scratch
    if int(nbytes) <= 0:
        raise ValueError(f"set_max_scratch_bytes: expected a positive byte count, got {nbytes}")
    _max_scratch = int(nbytes)
