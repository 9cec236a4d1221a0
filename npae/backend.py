"""The dispatcher: which kernel module serves these arrays.

Ops never branch on the backend; they ask here once and call the same function names.
Today there is one backend, the Numba CPU kernels; the GPU twin (issue 5) will be another
module with the same signatures, chosen by the arrays' type.
"""

from npae import kernels as cpu_kernels


def kernels_for(*arrays):
    """The kernel module for these arrays (all on one device)."""
    return cpu_kernels
