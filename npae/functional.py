"""npae.functional: the operations, with PyTorch's names, arguments and shapes.

Each function checks its inputs once, then applies one Function (see npae/ops/): the forward and
its hand-written backward sit side by side there.
"""

from npae.ops import clip, exp, log, sqrt
from npae.ops.activation import leaky_relu, relu, sigmoid, tanh
from npae.ops.conv2d import conv2d
from npae.ops.conv_transpose2d import conv_transpose2d
from npae.ops.linear import linear
from npae.ops.loss import binary_cross_entropy, binary_cross_entropy_with_logits, mse_loss
from npae.ops.max_pool2d import max_pool2d
from npae.ops.max_unpool2d import max_unpool2d
from npae.ops.upsample_nearest2d import interpolate, upsample_nearest2d

__all__ = [
    "linear", "relu", "leaky_relu", "sigmoid", "tanh", "exp", "log", "sqrt", "clip",
    "mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "conv2d", "conv_transpose2d", "max_pool2d", "max_unpool2d", "upsample_nearest2d",
    "interpolate",
]
