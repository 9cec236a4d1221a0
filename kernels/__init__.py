"""npae's kernels: free functions, arrays and integers (or a named geometry) in, arrays out; no
Tensor, no autodiff.

Installed as ``npae.kernels`` (the top-level name ``kernels`` belongs to another PyPI package).
Hyper-parameters always use one vocabulary: kh, kw (kernel), sh, sw (stride), ph, pw (padding),
dh, dw (dilation), oh, ow (output size). The kernels the ops call with a sliding window take it
named, as ``geom`` (fields kh ... ow, as ``npae.engine.shapes.Geometry``), and unpack it once:
the jitted loops underneath take plain integers. Every kernel works for float32 and float64.

The list, with the slow reference each one is tested against (tests/reference.py); the GPU twins
follow below:

|kernel                |does                                      |reference                      |
|----------------------|------------------------------------------|-------------------------------|
|im2col / im2col_rows  |windows -> columns                        |im2col_ref                     |
|col2im / col2im_rows  |columns -> image, overlaps summed         |col2im_ref                     |
|conv2d_fwd            |im2col + GEMM (chunked) or one image/thread|conv2d_ref                    |
|conv2d_bwd_input      |GEMM + col2im, or one image/thread        |conv_transpose2d_ref           |
|conv2d_bwd_weight     |im2col + GEMM, or one image/thread        |im2col_ref + matmul            |
|conv2d_image_*        |one image per thread, taps in cache       |as conv2d_fwd/bwd above        |
|conv_transpose2d_fwd  |conv2d_bwd_input + bias                   |conv_transpose2d_ref           |
|max_pool2d_fwd        |max and flat argmax in one pass           |max_pool2d_ref                 |
|max_pool2d_bwd        |scatter-add at argmax (= max_unpool2d_fwd)|max_pool2d_backward_ref        |
|max_unpool2d_fwd      |scatter-add at indices, duplicates summed |max_unpool2d_ref               |
|max_unpool2d_bwd      |gather at indices                         |adjoint of max_unpool2d_ref    |
|upsample_nearest2d_fwd|copy each source pixel                    |upsample_nearest2d_ref         |
|upsample_nearest2d_bwd|sum each source pixel's copies            |upsample_nearest2d_backward_ref|
|relu_fwd / relu_bwd   |max(x, 0) in one pass; gy where y > 0     |relu_ref, mask (tests)         |
|sigmoid_fwd / _bwd    |exp(-abs(x)), then a select; y (1 - y)   |sigmoid_ref, the formula       |
|adam_step             |one Adam step of a parameter, one pass    |adam_step_ref                  |

Beside them, the convolutions' planners: ``conv2d_plan`` (which path, how much scratch) and
``plan_chunks`` (how many images, or output rows, per chunk of columns).

GPU twins: ``npae.kernels.cuda`` (kernels/cuda/, numba.cuda on CuPy arrays) has every name
above, planners included, with the same signature (tests/kernels checks both lists), one
thread per output element, tested against the same references (tests/kernel_checks.py) under
the CUDA simulator and on a GPU:

|kernel(s)                         |GPU twin                                                  |
|----------------------------------|----------------------------------------------------------|
|im2col / im2col_rows              |cuda/im2col.py: a gather already                          |
|col2im / col2im_rows              |cuda/im2col.py: gather, one thread per image pixel        |
|conv2d_fwd, conv2d_bwd_*          |the drivers of conv2d.py over cuda/im2col.py + cuBLAS     |
|conv_transpose2d_fwd              |the same: conv2d_bwd_input + bias                         |
|conv2d_plan, plan_chunks          |cuda/conv2d.py: im2col unless asked, chunks fill the bound|
|conv2d_image_*                    |cuda/conv2d.py: gathers over the definition               |
|max_pool2d_fwd / _bwd             |cuda/max_pool2d.py; the backward is the unpool gather     |
|max_unpool2d_fwd                  |cuda/max_unpool2d.py: gather, duplicates summed in order  |
|max_unpool2d_bwd                  |cuda/max_unpool2d.py: gather                              |
|upsample_nearest2d_fwd / _bwd     |cuda/upsample_nearest2d.py: gathers                       |
|relu_fwd / relu_bwd               |cuda/relu.py: one thread per element                      |
|sigmoid_fwd / sigmoid_bwd         |cuda/sigmoid.py: one thread per element                   |
|adam_step                         |cuda/adam.py: one thread per element                      |

Array-level code is written once: the convolution drivers in conv2d.py (chunking, GEMMs,
transpose convolution) run on either backend's pieces (``ConvBackend``), and the array module
is the input's (``array_module`` in _arrays.py, also the engine's).
"""

from .adam import adam_step
from .conv2d import (
    DEFAULT_MAX_SCRATCH,
    conv2d_bwd_input,
    conv2d_bwd_weight,
    conv2d_fwd,
    conv2d_plan,
    conv_transpose2d_fwd,
    plan_chunks,
)
from .conv2d_image import conv2d_image_bwd_input, conv2d_image_bwd_weight, conv2d_image_fwd
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
