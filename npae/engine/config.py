"""Engine-wide settings (the kernels themselves hold no state: these are passed in)."""

import os
import warnings

# Numba's parallel kernels run on a GNU OpenMP pool. Its default waiting (spin about 300,000
# times before sleeping) leaves the idle threads spinning on the cores the next NumPy GEMM
# needs: on 2 cores the `linear` model trained at 1.7 ms per step with passive waiting and
# 13.8 ms with the default. Passive waiting (sleep at once) in turn makes every kernel call
# wake its threads: conv-transpose 18.9 ms per step, against 16.0 ms with a short spin. So,
# unless the user chose, threads spin 10,000 times (a few microseconds) and then sleep:
# linear 1.8 ms, conv-transpose 16.0 ms. Set before the pool starts (its first kernel call).
SPIN_COUNT = 10_000
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN_COUNT))

from npae.kernels import DEFAULT_MAX_SCRATCH  # noqa: E402


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


# glibc returns large freed blocks to the OS right away (each in its own mmap, or by trimming
# the heap top), so a training step that allocates and frees the same few-MB activations every
# time pays a page fault per 4 KiB, every step. Keeping them in the process measured
# conv-transpose at batch 128: 27 -> 20 ms per step on 2 cores.
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 256 * 2**20
_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> bool:
    """Ask glibc's malloc to keep freed blocks up to 32 MiB (and 256 MiB of free heap top) in
    the process instead of handing them back to the OS at once. Process-wide; done when npae is
    imported unless NPAE_MALLOC_TUNING=0. Returns whether it applied (glibc on Linux only)."""
    import ctypes
    import sys

    if os.environ.get("NPAE_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc, not musl
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


malloc_tuned = tune_malloc()
