"""npae: a from-scratch neural-network engine for learning how autoencoders work inside.

    >>> import numpy as np, npae
    >>> import npae.functional as F
    >>> x = npae.Tensor(np.random.rand(2, 1, 4, 4).astype(np.float32))
    >>> w = npae.Tensor(np.random.rand(3, 1, 3, 3).astype(np.float32), requires_grad=True)
    >>> F.conv2d(x, w, stride=2, padding=1).shape   # 3x3, stride 2, padding 1: 4x4 -> 2x2
    (2, 3, 2, 2)
"""

from npae import cuda
from npae.config import max_scratch_bytes, set_max_scratch_bytes
from npae.gradcheck import GradcheckError, adjoint_check, gradcheck
from npae.random import manual_seed
from npae.tensor import Context, Function, Tensor, is_grad_enabled, no_grad

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "Function",
    "Context",
    "no_grad",
    "is_grad_enabled",
    "gradcheck",
    "adjoint_check",
    "GradcheckError",
    "max_scratch_bytes",
    "set_max_scratch_bytes",
    "manual_seed",
    "cuda",
]
