"""The operations, one Function each. ``npae.functional`` is their public face."""

from npae.ops.arith import add, div, matmul, mul, neg, pow, sub
from npae.ops.reduce import mean, sum
from npae.ops.shape import getitem, permute, reshape
from npae.ops.unary import cast, clip, exp, log, sqrt

__all__ = ["add", "sub", "mul", "div", "pow", "neg", "matmul", "exp", "log", "sqrt", "clip", "cast",
           "sum", "mean", "reshape", "permute", "getitem"]
