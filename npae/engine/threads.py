"""One thread pool on the cores at a time: Numba's for npae's kernels, and BLAS's.

npae's kernels run on Numba's thread pool; its matrix products (linear layers, the im2col
convolutions) go to NumPy's BLAS, which has a pool of its own. On a machine with few cores the
two pools take turns on the same cores, and each one's idle threads keep spinning for a while
after its work ends, on the cores the other one needs next.

Numba's pool is GNU OpenMP's, whose idle threads by default spin about 300,000 times before
they sleep: on a busy machine (another process on the cores, or BLAS's threads) that spinning
takes the time slices the work needs, measured 3x slower steps. So npae starts the pool itself,
on its first kernel call, with ``GOMP_SPINCOUNT=10000`` (a few microseconds of spinning, then
sleep) in the environment for that moment only: the runtime reads it when it loads and the
variable is removed again at once, so the program's environment, and other OpenMP runtimes
(PyTorch's bundled one, say), are left as they were. Where the pool has already started, or
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is set, npae starts nothing and changes nothing.
Elementwise kernels on small arrays do not wake the pool at all (kernels/_jit.py PARALLEL_MIN).

BLAS can also be held at a fixed number of threads while npae runs a model's forward pass
(``Module.__call__``), a backward pass (``Tensor.backward``), or a linear or convolution op
called on its own, and given back its own setting afterwards (threadpoolctl):
``set_blas_threads(1)``. It is off by default, because it measured slower once the two changes
above were in (issue 12, fresh processes alternating, 3 rounds on 2 cores, step time with BLAS
held at 1 thread over BLAS left at 2: `linear` batch 128 0.86 against 0.65 ms, `conv-strided`
batch 128 18.4 against 14.5 ms, `linear` batch 20 0.34 against 0.31 ms; `vae` and `denoise`
equal). Before them, holding BLAS at one thread was what made `linear` fast (43,000-50,000
against 74,000-87,000 images/s, in the issue). ``set_num_threads(n)`` sizes Numba's pool.
Nothing is changed at import.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

SPIN_COUNT = 10_000

_blas_threads: int | None = None
_lock = threading.Lock()
_depth = 0
_limiter = None
_controller = None
_pool_started = False


def set_blas_threads(n: int | None) -> None:
    """Threads BLAS may use inside npae's forward and backward passes (None: leave it alone)."""
    global _blas_threads
    if n is not None and int(n) < 1:
        raise ValueError(f"set_blas_threads: expected a positive thread count or None, got {n}")
    _blas_threads = None if n is None else int(n)


def blas_threads() -> int | None:
    """What ``set_blas_threads`` set (None, the default: BLAS is left alone)."""
    return _blas_threads


def set_num_threads(n: int) -> None:
    """Size Numba's thread pool, which runs npae's parallel kernels (at most
    $NUMBA_NUM_THREADS, by default the number of cores)."""
    import numba

    n = int(n)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"set_num_threads: expected 1..{numba.config.NUMBA_NUM_THREADS} "
                         f"(NUMBA_NUM_THREADS), got {n}")
    numba.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads npae's parallel kernels run on."""
    import numba

    return numba.get_num_threads()


def start_pool() -> None:
    """Start Numba's thread pool with a short spin (see the module's docstring); once."""
    global _pool_started
    if _pool_started:
        return
    _pool_started = True
    import numba
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", False) or "OMP_WAIT_POLICY" in os.environ \
            or "GOMP_SPINCOUNT" in os.environ:
        return
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    try:
        numba.get_num_threads()  # launches the pool: the OpenMP runtime loads and reads it
    finally:
        del os.environ["GOMP_SPINCOUNT"]


def _blas():
    global _controller
    if _controller is None:  # looks the loaded libraries up once (about a millisecond)
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


@contextmanager
def blas_limited():
    """Hold BLAS at ``blas_threads()`` threads inside; nested uses cost nothing."""
    global _depth, _limiter
    if _blas_threads is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _limiter = _blas().limit(limits=_blas_threads)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _limiter is not None:
                _limiter.restore_original_limits()
                _limiter = None
