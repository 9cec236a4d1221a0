"""Which array library an array belongs to: the one test, for the kernels and the engine alike.

CuPy is never imported to answer: an array is CuPy's when its type comes from the ``cupy``
package, and the module is imported only then, so everything works without CuPy installed.
Under Numba's CUDA simulator the GPU kernels get NumPy arrays, and NumPy is their module.
"""

import numpy as np


def is_cupy(array) -> bool:
    """A CuPy array (by its type's package; CuPy itself is not imported)."""
    return type(array).__module__.split(".")[0] == "cupy"


def array_module(array):
    """cupy for a CuPy array, numpy otherwise: the module to create arrays beside this one."""
    if is_cupy(array):
        import cupy

        return cupy
    return np
