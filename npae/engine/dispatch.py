"""The dispatcher, and the few helpers that let code stay the same on every device.

Ops never branch on the backend: they ask ``kernels_for(*arrays)`` once and call the same
function names. NumPy arrays get the Numba CPU kernels (``npae.kernels``), CuPy arrays their GPU
twins (``npae.kernels.cuda``). A device is named by a string, ``'cpu'`` or ``'cuda'``. CuPy is
imported only when a CuPy array or ``'cuda'`` shows up, so npae works without it.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from npae import kernels as cpu_kernels
from npae.engine import threads
from npae.kernels import _pool
from npae.kernels._arrays import array_module, is_cupy

DEVICES = ("cpu", "cuda")

INSTALL_HINT = (
    "the 'cuda' device needs CuPy (cupy-cuda12x) and an NVIDIA GPU with a CUDA 12 driver: "
    "install the gpu extra (npae[gpu]) with `pip install -e '.[gpu]'` from a checkout"
)

_forced = None  # a kernel module that serves every call (tests: GPU kernels under the simulator)


def is_array(value) -> bool:
    """A NumPy or a CuPy array."""
    return isinstance(value, np.ndarray) or is_cupy(value)


def device_of(array) -> str:
    """'cuda' for a CuPy array, 'cpu' for anything else."""
    return "cuda" if is_cupy(array) else "cpu"


def as_array(value):
    """An array as it is (NumPy or CuPy); anything else through np.asarray."""
    return value if is_array(value) else np.asarray(value)


def empty(like, shape, dtype=None):
    """An uninitialised array on like's device: on the CPU from the kernels' buffer pool
    (kernels/_pool.py), so that a training step reuses last step's memory."""
    dtype = like.dtype if dtype is None else dtype
    if is_cupy(like):
        return array_module(like).empty(shape, dtype=dtype)
    return _pool.empty(shape, dtype)


def contiguous(array, dtype=None):
    """A C-contiguous array on the same device (the array itself when it already is one)."""
    return array_module(array).ascontiguousarray(array, dtype=dtype)


def normalize_device(device) -> str:
    name = str(device)
    if name == "cuda:0":
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}: npae knows 'cpu' and 'cuda'")
    return name


def cupy_or_raise():
    """The cupy module, or npae.cuda.CUDAUnavailableError saying what to install."""
    from npae import cuda

    try:
        import cupy
    except ImportError:
        raise cuda.CUDAUnavailableError(f"CuPy is not installed: {INSTALL_HINT}") from None
    if not cuda.is_available():
        raise cuda.CUDAUnavailableError(
            f"CuPy is installed but finds no usable CUDA GPU: {INSTALL_HINT}")
    return cupy


def to_device(array, device):
    """The array on ``device`` ('cpu' or 'cuda'): itself if it is there already, else a copy."""
    device = normalize_device(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()  # CuPy -> NumPy
    return cupy_or_raise().asarray(array)


def to_host(array):
    """A NumPy array (a device array is copied to the host); other values unchanged."""
    return array.get() if is_cupy(array) else array


def check_same_device(op: str, arrays) -> str:
    """The one device of these arrays (non-arrays ignored); a clear error if they differ."""
    seen = {}
    for i, a in enumerate(arrays):
        if is_array(a):
            seen.setdefault(device_of(a), i)
    if len(seen) > 1:
        where = " and ".join(f"input {i} is on '{d}'" for d, i in seen.items())
        raise RuntimeError(
            f"{op}: inputs are on different devices ({where}); move them to one device first, "
            f"e.g. with .to('cuda') or .to('cpu')"
        )
    return next(iter(seen), "cpu")


def kernels_for(*arrays):
    """The kernel module for these arrays: npae.kernels on the CPU, npae.kernels.cuda on a GPU."""
    device = check_same_device("kernels_for", arrays)
    if _forced is not None:
        return _forced
    if device == "cuda":
        from npae.kernels import cuda as cuda_kernels

        return cuda_kernels
    if not threads._pool_started:
        threads.start_pool()
    return cpu_kernels


@contextmanager
def forced_kernels(module):
    """Route every op to ``module`` whatever the arrays are: the simulator lane runs the GPU
    kernels on NumPy arrays through the ops with it."""
    global _forced
    previous, _forced = _forced, module
    try:
        yield
    finally:
        _forced = previous
