"""The GPU twins of npae's kernels: the same function names and signatures as ``npae.kernels``,
written with ``numba.cuda`` (the ``numba-cuda`` package).

``npae.engine.dispatch.kernels_for`` hands this module to the ops when their arrays are CuPy arrays;
the ops never branch on the backend. Numba reads CuPy arrays through
``__cuda_array_interface__`` (no copy), the GEMMs go through CuPy (cuBLAS). Under the CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``, ``make test-cuda-sim``) the very same kernels run as
Python on the CPU over NumPy arrays: that is how CI tests them without a GPU.

Every kernel runs one thread per output element. The CPU's scatter-adds (col2im, max-unpool
with duplicate indices, the upsample backward, and through them the convolution gradients) are
turned into gathers: each thread sums its own contributions in a fixed order, no atomics, so
the results are bitwise the same on every run. The list is the CPU one (``kernels/__init__.py``,
column "GPU twin"), planners included (each with this backend's own rule), and a test
(tests/kernels) checks that the two ``__all__`` lists name the same kernels. The convolution
drivers themselves are the CPU's (kernels/conv2d.py), run on this backend's pieces.
"""

from .adam import adam_step
from .conv2d import (
    DEFAULT_MAX_SCRATCH,
    conv2d_bwd_input,
    conv2d_bwd_weight,
    conv2d_fwd,
    conv2d_image_bwd_input,
    conv2d_image_bwd_weight,
    conv2d_image_fwd,
    conv2d_plan,
    conv_transpose2d_fwd,
    plan_chunks,
)
from .im2col import col2im, col2im_rows, im2col, im2col_rows
from .max_pool2d import max_pool2d_bwd, max_pool2d_fwd
from .max_unpool2d import max_unpool2d_bwd, max_unpool2d_fwd
from .relu import relu_bwd, relu_fwd
from .sigmoid import sigmoid_bwd, sigmoid_fwd
from .upsample_nearest2d import upsample_nearest2d_bwd, upsample_nearest2d_fwd

__all__ = [
    "DEFAULT_MAX_SCRATCH",
    "plan_chunks",
    "conv2d_plan",
    "im2col",
    "im2col_rows",
    "col2im",
    "col2im_rows",
    "conv2d_fwd",
    "conv2d_bwd_input",
    "conv2d_bwd_weight",
    "conv_transpose2d_fwd",
    "conv2d_image_fwd",
    "conv2d_image_bwd_input",
    "conv2d_image_bwd_weight",
    "max_pool2d_fwd",
    "max_pool2d_bwd",
    "max_unpool2d_fwd",
    "max_unpool2d_bwd",
    "upsample_nearest2d_fwd",
    "upsample_nearest2d_bwd",
    "relu_fwd",
    "relu_bwd",
    "sigmoid_fwd",
    "sigmoid_bwd",
    "adam_step",
]
