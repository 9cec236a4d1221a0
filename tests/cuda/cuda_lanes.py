"""Which lane this process offers for the GPU kernels' tests (see conftest.py here)."""

import pytest
from kernel_checks import Lane
from numba.core import config

import npae

SIM = bool(config.ENABLE_CUDASIM)
GPU = not SIM and npae.cuda.is_available()

LANES = [
    pytest.param("sim", id="sim", marks=pytest.mark.skipif(
        not SIM, reason="simulator lane: run by make test-cuda-sim (NUMBA_ENABLE_CUDASIM=1)")),
    pytest.param("gpu", id="gpu", marks=[pytest.mark.gpu, pytest.mark.skipif(
        not GPU, reason="no CUDA GPU with CuPy here (pip install -e '.[gpu]' on a GPU machine)")]),
]


def lane_for(name):
    from npae.kernels import cuda as G

    if name == "sim":
        return Lane("sim", G)
    import cupy

    return Lane("gpu", G, dev=cupy.asarray, host=cupy.asnumpy)
