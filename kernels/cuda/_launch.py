"""How the GPU twins launch their kernels.

Every kernel here runs one thread per output element and walks the elements with a grid-stride
loop (``for t in range(cuda.grid(1), n, cuda.gridsize(1))``), so one launch shape serves any
size. Arrays are CuPy arrays on a GPU (Numba reads them through ``__cuda_array_interface__``,
no copy) and NumPy arrays under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), where the same
kernels run as Python on the CPU: that is how CI tests them without a GPU. New arrays come from
the input's module, ``array_module`` (kernels/_arrays.py): CuPy or NumPy accordingly.
"""

import warnings

THREADS = 128  # threads per block
MAX_BLOCKS = 65535  # beyond this the grid-stride loop covers the rest


def launch(kernel, n, *args):
    """Run ``kernel(n, *args)`` over n elements (nothing to do for n == 0)."""
    if n == 0:
        return
    blocks = min((n + THREADS - 1) // THREADS, MAX_BLOCKS)
    with warnings.catch_warnings():
        # small test shapes make small grids; Numba's occupancy hint is not an error here
        warnings.filterwarnings("ignore", message=".*under-utilization")
        kernel[blocks, THREADS](n, *args)
