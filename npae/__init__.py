"""npae: a from-scratch neural-network engine for learning how autoencoders work inside.

    >>> import numpy as np, npae
    >>> import npae.functional as F
    >>> x = npae.Tensor(np.random.rand(2, 1, 4, 4).astype(np.float32))
    >>> w = npae.Tensor(np.random.rand(3, 1, 3, 3).astype(np.float32), requires_grad=True)
    >>> F.conv2d(x, w, stride=2, padding=1).shape   # 3x3, stride 2, padding 1: 4x4 -> 2x2
    (2, 3, 2, 2)
"""

# Tensor first: it pulls in the ops, which need Function, which needs Tensor defined
from npae.engine.tensor import Tensor, enable_grad, is_grad_enabled, no_grad  # isort: skip

from npae import cuda
from npae.engine.autograd import grad
from npae.engine.config import max_scratch_bytes, set_max_scratch_bytes
from npae.engine.function import Context, Function
from npae.engine.gradcheck import GradcheckError, adjoint_check, gradcheck, gradgradcheck
from npae.engine.random import manual_seed
from npae.engine.threads import get_num_threads, set_blas_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "Function",
    "Context",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "adjoint_check",
    "GradcheckError",
    "max_scratch_bytes",
    "set_max_scratch_bytes",
    "manual_seed",
    "set_num_threads",
    "get_num_threads",
    "set_blas_threads",
    "cuda",
]
