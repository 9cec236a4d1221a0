"""The one place kernels are compiled from.

``cache=True`` stores machine code beside the sources (``__pycache__``); when the package is
installed read-only, Numba's own fallback writes to a per-user cache directory instead
(``$NUMBA_CACHE_DIR`` if set, else the user cache dir, e.g. ``~/.cache/numba``).
"""

import numba


def jit(parallel: bool = False, reassociate: bool = False, inline: bool = False):
    """Compile with caching; parallel=True only where prange iterations write disjoint outputs.

    inline=True pastes a small helper into its callers (see below).

    Numba's cache is keyed on each kernel file, not on these options: after changing them,
    delete the cached machine code (``find kernels -name '*.nb[ic]' -delete``) or the old
    compilation keeps being loaded.

    reassociate=True lets LLVM reorder a floating-point sum to vectorise it. The order is fixed
    when the kernel is compiled, so results are still the same on every run; they differ from a
    left-to-right sum by rounding only.
    """
    fastmath = {"reassoc", "contract"} if reassociate else False
    # inline=True: a small helper is pasted into its callers before they are compiled, so
    # LLVM sees one loop body it can vectorise (a call between separately compiled functions
    # can stop it)
    # error_model="numpy": a float division by zero gives inf or NaN, as in NumPy, instead of
    # Python's ZeroDivisionError; that check on every division kept LLVM from vectorising any
    # loop that divides (Adam's update: 65 against 2-4 us on 25,088 float32 values)
    return numba.njit(cache=True, parallel=parallel, nogil=True, fastmath=fastmath,
                      inline="always" if inline else "never", error_model="numpy")


# An elementwise pass over fewer elements than this runs on the calling thread: waking the
# pool, and on a busy machine waiting for a thread that is not running, costs more than the
# pass (measured: a 128x784 sigmoid 0.33 ms in parallel and 0.83 ms serial when quiet, but
# 5 ms in parallel with another process on the second core). ReLU, sigmoid and Adam use it.
PARALLEL_MIN = 1 << 18
BLOCK = 1 << 14  # elements per parallel task: 64 KiB of float32, long runs that vectorise


def elementwise(block, blocked, n, *arrays) -> None:
    """Run an elementwise pass over n elements: ``block(*arrays, 0, n)`` on the calling thread
    below PARALLEL_MIN, else ``blocked(*arrays)``, the parallel loop over BLOCK-sized blocks."""
    if n >= PARALLEL_MIN:
        blocked(*arrays)
    else:
        block(*arrays, 0, n)
