"""Reading the MNIST pickle with an unpickler that can build NumPy arrays and nothing else."""

import gzip
import io
import pickle

import numpy as np


def _numpy_reconstruct():
    # NumPy 2 moved numpy.core to numpy._core and warns on the old name; pickles written before
    # the move still say numpy.core, so both names map to whichever module exists.
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays and nothing else.

    Every callable a pickle can invoke comes through find_class, so refusing all but the three
    globals an ndarray's pickle needs means a hostile pickle can run no code.
    """

    def find_class(self, module, name):
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy", "ndarray"): lambda: np.ndarray,
            ("numpy", "dtype"): lambda: np.dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"mnist: refusing to load the global {module}.{name}: "
                                         "only NumPy arrays are allowed in this pickle")
        return allowed[module, name]()


def unpickle_arrays(member: bytes):
    # latin1: the pickle comes from Python 2, whose byte strings hold the raw array data.
    with gzip.GzipFile(fileobj=io.BytesIO(member)) as stream:
        return _ArrayUnpickler(stream, encoding="latin1").load()
