"""The one place kernels are compiled from.

``cache=True`` stores machine code beside the sources (``__pycache__``); when the package is
installed read-only, Numba's own fallback writes to a per-user cache directory instead
(``$NUMBA_CACHE_DIR`` if set, else the user cache dir, e.g. ``~/.cache/numba``).
"""

import numba


def jit(parallel: bool = False):
    """Compile with caching; parallel=True only where prange iterations write disjoint outputs."""
    return numba.njit(cache=True, parallel=parallel, nogil=True)
