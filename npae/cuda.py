"""npae.cuda: is the GPU backend usable here?

    import npae
    npae.cuda.is_available()   # False without CuPy or without a CUDA GPU

The backend needs the ``gpu`` extra (``pip install -e '.[gpu]'``: CuPy for CUDA 12 and the
``numba-cuda`` kernel compiler) and an NVIDIA GPU. Move a model and its data with
``.to('cuda')``; nothing else changes.
"""


class CUDAUnavailableError(RuntimeError, ImportError):
    """Raised by ``.to('cuda')`` when the GPU backend cannot run here; the message says what to
    install. A RuntimeError (as PyTorch raises without CUDA) and, since the usual cause is a
    missing package, an ImportError too."""


def is_available() -> bool:
    """True when CuPy imports and sees at least one CUDA GPU."""
    try:
        import cupy
    except ImportError:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # CuPy raises its CUDARuntimeError when there is no driver or device
        return False


def device_count() -> int:
    """The number of CUDA GPUs CuPy sees (0 without CuPy)."""
    if not is_available():
        return 0
    import cupy

    return cupy.cuda.runtime.getDeviceCount()
