"""Engine-wide settings (the kernels themselves hold no state: these are passed in)."""

import os
import warnings

from npae.kernels import DEFAULT_MAX_SCRATCH


def _scratch_from_environment() -> int:
    # a bad value must not make `import npae` fail: say what is wrong and use the default
    text = os.environ.get("NPAE_MAX_SCRATCH_MB")
    if text is None or not text.strip():
        return DEFAULT_MAX_SCRATCH
    try:
        mb = int(text)
    except ValueError:
        mb = 0
    if mb <= 0:
        warnings.warn(f"NPAE_MAX_SCRATCH_MB={text!r} is not a positive whole number of MiB; "
                      f"using the default, {DEFAULT_MAX_SCRATCH // 2**20}", RuntimeWarning,
                      stacklevel=2)
        return DEFAULT_MAX_SCRATCH
    return mb * 2**20


_max_scratch = _scratch_from_environment()


def memory_bytes() -> int:
    """This machine's physical memory in bytes (2**63 where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 2**63


def check_fits_in_memory(what: str, nbytes: int) -> None:
    """MemoryError, saying how much, for an allocation larger than the machine's memory: it
    would fail anyway, after swapping or being killed, so refuse it before trying."""
    total = memory_bytes()
    if nbytes > total:
        raise MemoryError(f"{what} would need {_bytes(nbytes)}, more than this machine's "
                          f"{_bytes(total)} of memory")


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


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
