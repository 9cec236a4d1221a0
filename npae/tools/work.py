"""The least work one op call must do, and the fastest this machine does work: the roofline floor.

``work(key)`` counts, for one call of a recorded op (an ``OpKey`` of npae/engine/profiler.py),
from its shapes alone:

    FLOPs   the arithmetic of the op's definition: 2 per multiply-add of conv2d,
            conv_transpose2d, linear and matmul (bias additions not counted: they are tiny
            next to the products); for elementwise ops, reductions and losses a few per element,
            the operations of the formula (a transcendental function counts as one, see RULES);
            none for ops that only move data (pooling, unpooling, nearest upsampling forward)
    bytes   one read of every array the call needs and one write of every array it makes. A
            forward reads its inputs and writes its outputs. A backward reads the gradient of
            each float output and the forward arrays the requested input gradients depend on
            (conv2d's input gradient needs the weight, its weight gradient the input), and
            writes those gradients. Views (reshape, permute) move nothing, nor does a gradient
            that is the output gradient itself (x + y passes its gradient through to an operand
            of the output's shape).

and returns None for an op it has no rule for (your own Function): its time is still measured.
``floor_seconds`` is the roofline floor, max(FLOPs / GEMM rate, bytes / copy bandwidth), with
both measured on the spot by ``roofline()``. Arrays that stay in cache can beat the copy
bandwidth, and Numba's parallel kernels the single-threaded copy, so a time below its floor
(ratio < 1) is possible.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from npae.engine.profiler import BACKWARD, OpKey
from npae.ops.activation import LeakyReLU, ReLU, Sigmoid, Tanh
from npae.ops.arith import Add, Div, MatMul, Mul, Neg, Pow, Sub
from npae.ops.conv2d import Conv2d
from npae.ops.conv_transpose2d import ConvTranspose2d
from npae.ops.linear import Linear
from npae.ops.loss import BinaryCrossEntropy, BinaryCrossEntropyWithLogits, MSELoss
from npae.ops.max_pool2d import MaxPool2d
from npae.ops.max_unpool2d import MaxUnpool2d
from npae.ops.reduce import Mean, Sum
from npae.ops.shape import Permute, Reshape
from npae.ops.unary import Clip, Exp, Log, Sqrt
from npae.ops.upsample_nearest2d import UpsampleNearest2d

# ------------------------------------------------------------------------------ the rules
# A forward array a gradient reads: ("in", i) is forward input i, ("out", i) output i.
X0, X1, X2, Y0, Y1 = ("in", 0), ("in", 1), ("in", 2), ("out", 0), ("out", 1)


@dataclass(frozen=True)
class Grad:
    """How one input's gradient is made from the output gradient."""

    flops: Callable[[OpKey], float]
    reads: tuple = ()  # the forward arrays it needs besides the output gradient
    passes: bool = False  # for an input of the output's shape it *is* the output gradient


@dataclass(frozen=True)
class Rule:
    flops: Callable[[OpKey], float]  # the forward's FLOPs
    grads: tuple[Grad, ...] = ()  # per positional input; inputs past the end get none
    moves: bool = True  # False for a view: no bytes in either direction


def _size(spec) -> int:
    return 0 if spec is None else math.prod(spec[0])


def _nbytes(spec) -> int:
    return 0 if spec is None else math.prod(spec[0]) * spec[1].itemsize


def _in(i, per=1):
    return lambda k: per * _size(k.inputs[i])


def _out(i, per=1):
    return lambda k: per * _size(k.outputs[i])


def _zero(k):
    return 0


def _conv2d(k):  # y (N, O, oH, oW), w (O, C, kH, kW): C*kH*kW multiply-adds per output
    return 2.0 * _size(k.outputs[0]) * math.prod(k.inputs[1][0][1:])


def _conv_transpose2d(k):  # x (N, Cin, H, W), w (Cin, Cout, kH, kW): Cout*kH*kW per input
    return 2.0 * _size(k.inputs[0]) * math.prod(k.inputs[1][0][1:])


def _matmul(k):  # (..., m, n) @ (..., n, p): n multiply-adds per output element
    return 2.0 * _size(k.outputs[0]) * k.inputs[0][0][-1]


def _linear(k):  # x (..., in), w (out, in): in multiply-adds per output element
    return 2.0 * _size(k.outputs[0]) * k.inputs[1][0][1]


def _gemm(flops) -> Rule:
    """x (*) w (+ b): each of the input and weight gradients costs the forward's products; the
    bias gradient sums the output gradient (not counted, like the forward's bias)."""
    return Rule(flops, (Grad(flops, (X1,)), Grad(flops, (X0,)), Grad(_zero)))


def _unary(per: int, reads) -> Rule:
    """An elementwise function with ``per`` operations per element; its gradient multiplies the
    output gradient by the derivative, made from ``reads`` (one operation per element)."""
    return Rule(_out(0, per), (Grad(_out(0), reads),))


RULES: dict[type, Rule] = {
    Conv2d: _gemm(_conv2d),
    ConvTranspose2d: _gemm(_conv_transpose2d),
    Linear: _gemm(_linear),
    MatMul: Rule(_matmul, (Grad(_matmul, (X1,)), Grad(_matmul, (X0,)))),
    # data movement: comparisons and copies, no arithmetic; the argmax (int64) is an output
    MaxPool2d: Rule(_zero, (Grad(_zero, (Y1,)),)),
    MaxUnpool2d: Rule(_zero, (Grad(_zero, (X1,)),)),
    # the backward sums each source pixel's copies: one addition per output pixel
    UpsampleNearest2d: Rule(_zero, (Grad(_out(0)),)),
    ReLU: _unary(1, (Y0,)),  # max(x, 0); gradient where y > 0
    LeakyReLU: _unary(2, (X0,)),  # compare, scale
    Sigmoid: _unary(3, (Y0,)),  # exp, add, divide; gradient y (1 - y)
    Tanh: _unary(1, (Y0,)),
    Exp: _unary(1, (Y0,)),
    Log: _unary(1, (X0,)),
    Sqrt: _unary(1, (Y0,)),
    Clip: _unary(2, (X0,)),
    Neg: _unary(1, ()),
    # binary elementwise ops broadcast; an operand's gradient is summed over broadcast axes
    Add: Rule(_out(0), (Grad(_zero, passes=True), Grad(_zero, passes=True))),
    Sub: Rule(_out(0), (Grad(_zero, passes=True), Grad(_out(0)))),  # b's gradient is -gy
    Mul: Rule(_out(0), (Grad(_out(0), (X1,)), Grad(_out(0), (X0,)))),
    Div: Rule(_out(0), (Grad(_out(0), (X1,)), Grad(_out(0, 3), (X0, X1)))),
    Pow: Rule(_out(0), (Grad(_out(0, 3), (X0, X1)), Grad(_out(0, 2), (X0, Y0)))),
    Sum: Rule(_in(0), (Grad(_zero),)),  # the gradient is the output gradient, broadcast
    Mean: Rule(_in(0), (Grad(_in(0)),)),  # ... and divided by the count
    Reshape: Rule(_zero, (Grad(_zero),), moves=False),
    Permute: Rule(_zero, (Grad(_zero),), moves=False),
    # losses, per element: (x - t)^2 summed; gradient 2 (x - t) g for x, its negative for t
    MSELoss: Rule(_in(0, 3), (Grad(_in(0, 3), (X0, X1)), Grad(_in(0, 3), (X0, X1)))),
    # -(t log x + (1 - t) log(1 - x)) (times the weight): 2 logs, 6 more operations and the sum
    BinaryCrossEntropy: Rule(_in(0, 9), (Grad(_in(0, 6), (X0, X1, X2)), Grad(_in(0, 3), (X0, X2)))),
    # max(z, 0) - z t + log(1 + exp(-|z|)) (times the weight), summed; gradient sigmoid(z) - t
    BinaryCrossEntropyWithLogits: Rule(_in(0, 8), (Grad(_in(0, 6), (X0, X1, X2)),
                                                   Grad(_in(0, 2), (X0, X2)))),
}


# ------------------------------------------------------------------------------ counting
def work(key: OpKey) -> tuple[float, float] | None:
    """(FLOPs, bytes) one call of ``key`` must do at least; None for an op without a rule."""
    rule = RULES.get(key.function)
    if rule is None:
        return None
    if key.direction != BACKWARD:
        flops = rule.flops(key)
        moved = sum(map(_nbytes, key.inputs)) + sum(map(_nbytes, key.outputs))
        return float(flops), float(moved if rule.moves else 0)
    made = []  # (input position, its Grad) for each gradient that costs something
    for i, done in enumerate(key.grads):
        if not done or i >= len(rule.grads):
            continue
        grad = rule.grads[i]
        if grad.passes and key.inputs[i] is not None and \
                key.inputs[i][0] == key.outputs[0][0]:
            continue  # the output gradient itself, handed on
        made.append((i, grad))
    flops = sum(grad.flops(key) for _, grad in made)
    if not made or not rule.moves:
        return float(flops), 0.0
    gy = sum(_nbytes(s) for s in key.outputs
             if s is not None and np.issubdtype(s[1], np.floating))
    needed = {ref for _, grad in made for ref in grad.reads}
    reads = sum(_nbytes(_array(key, ref)) for ref in needed)
    writes = sum(_nbytes(key.inputs[i]) for i, _ in made)
    return float(flops), float(gy + reads + writes)


def _array(key, ref):
    where, i = ref
    specs = key.inputs if where == "in" else key.outputs
    return specs[i] if i < len(specs) else None


def floor_seconds(flops: float, nbytes: float, roof: dict) -> float:
    """The roofline floor: max(FLOPs / GEMM rate, bytes / copy bandwidth)."""
    return max(flops / (roof["gemm_gflops"] * 1e9), nbytes / (roof["bandwidth_gbs"] * 1e9))


def adam_work(params) -> tuple[float, float]:
    """(FLOPs, bytes) of one Adam step over ``params``: read parameter, gradient and both moment
    estimates, write parameter and moments (7 arrays of each parameter's size); the update rule
    (npae/optim.py) has about 13 operations per element."""
    elements = sum(p.data.size for p in params)
    nbytes = sum(p.data.nbytes for p in params)
    return 13.0 * elements, 7.0 * nbytes


# ------------------------------------------------------------------------------ the roofline
def roofline(repeats: int = 5) -> dict:
    """This machine's float32 GEMM rate and array copy bandwidth, measured now (about a second):
    NumPy matmul of two n x n matrices, n doubled from 512 until one product takes 50 ms (at
    most 4096), and np.copyto of a 64 MiB array (the bandwidth counts its read and its write).
    Each size runs ``repeats`` times and the best rate of all counts: a floor is what the
    machine can do, and the best run is the one other processes disturbed least."""
    rng = np.random.default_rng(0)
    best_rate, best_n, n = 0.0, 0, 512
    while n <= 4096:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        seconds = _best(lambda a=a, b=b: a @ b, repeats)
        if 2.0 * n**3 / seconds > best_rate:
            best_rate, best_n = 2.0 * n**3 / seconds, n
        if seconds >= 0.05:
            break
        n *= 2
    src = np.ones(2**24, np.float32)  # 64 MiB: larger than most caches
    dst = np.empty_like(src)
    copy = _best(lambda: np.copyto(dst, src), repeats)
    return {"gemm_n": best_n, "gemm_gflops": best_rate / 1e9,
            "copy_bytes": 2 * src.nbytes, "bandwidth_gbs": 2.0 * src.nbytes / copy / 1e9}


def _best(call, repeats) -> float:
    call()  # first touch of the output, thread pool start
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best
