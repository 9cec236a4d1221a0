"""Where the time goes, op by op: ``with record() as rec:`` times every Function call inside it.

While a Recorder is active, ``Function.apply`` times its Function's ``forward`` and the backward
walk times each node's ``backward``: ``time.perf_counter`` around that one call, so the op's own
work (its kernels, NumPy calls and output allocation) and not the autodiff bookkeeping around it
(unwrapping Tensors, recording nodes, summing gradients on fan-out). Calls are summed per
``OpKey``: the Function, the direction, the shapes and dtypes of the forward's inputs and
outputs (a backward is filed under the shapes of the forward it undoes), and for a backward
which input gradients it computed.

    >>> import numpy as np, npae
    >>> from npae.engine import profiler
    >>> x = npae.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    >>> with profiler.record() as rec:
    ...     (x * x).sum().backward()
    >>> sorted((k.op, k.direction) for k in rec.ops)
    [('Mul', 'backward'), ('Mul', 'forward'), ('Sum', 'backward'), ('Sum', 'forward')]

One recorder at a time, for the whole process (the hooks read one module global, ``active``;
with none active they cost that one check and record nothing). An op applied inside another
op's timed call (a Function whose backward computes with Tensors) is not recorded on its own:
its time belongs to the outer op. ``npae profile MODEL`` (npae/tools/profile.py) is built on
this.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

active = None  # the Recorder in use, or None: Function.apply and the backward walk read this

FORWARD, BACKWARD = "forward", "backward"


@dataclass(frozen=True)
class OpKey:
    """What the calls summed under one key have in common."""

    function: type  # the Function subclass
    direction: str  # FORWARD or BACKWARD
    inputs: tuple  # per positional input of forward: (shape, dtype) of an array, else None
    outputs: tuple  # per output of forward: (shape, dtype)
    grads: tuple = ()  # BACKWARD: per positional input, whether its gradient was computed

    @property
    def op(self) -> str:
        """The Function's class name: Conv2d, ReLU, or your own op's."""
        return self.function.__name__


@dataclass
class OpTime:
    calls: int = 0
    seconds: float = 0.0


def _spec(value):
    """(shape, dtype) of an array (NumPy or CuPy), None for anything else (None, a number)."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is None or dtype is None:
        return None
    return tuple(int(n) for n in shape), np.dtype(dtype)


class Recorder:
    """Sums the time of every op call made while it is active (``with recorder:``).

    ``ops`` maps each OpKey to its OpTime (calls, seconds). Entering the same recorder again
    later adds to what it holds, so a loop can record some steps and not others.
    """

    def __init__(self):
        self.ops: dict[OpKey, OpTime] = {}
        self._busy = False  # inside a timed call: a nested op's time is the outer op's

    def __enter__(self):
        global active
        if active is not None:
            raise RuntimeError("npae profiler: a recording is already active (one at a time "
                               "per process); leave it before starting another")
        active = self
        return self

    def __exit__(self, *exc):
        global active
        active = None
        return False

    def _add(self, key: OpKey, seconds: float) -> None:
        entry = self.ops.get(key)
        if entry is None:
            entry = self.ops[key] = OpTime()
        entry.calls += 1
        entry.seconds += seconds

    def forward(self, cls, ctx, arrays, params):
        """``cls.forward(ctx, *arrays, **params)``, timed (Function.apply calls this)."""
        if self._busy:
            return cls.forward(ctx, *arrays, **params)
        self._busy = True
        try:
            start = time.perf_counter()
            out = cls.forward(ctx, *arrays, **params)
            seconds = time.perf_counter() - start
        finally:
            self._busy = False
        outs = out if isinstance(out, tuple) else (out,)
        shapes = (tuple(_spec(a) for a in arrays), tuple(_spec(a) for a in outs))
        ctx._profile_shapes = shapes  # the backward is filed under the same shapes
        self._add(OpKey(cls, FORWARD, *shapes), seconds)
        return out

    def backward(self, node, grads):
        """``node.function.backward(node.ctx, *grads)``, timed (the backward walk calls this)."""
        cls, ctx = node.function, node.ctx
        if self._busy:
            return cls.backward(ctx, *grads)
        shapes = getattr(ctx, "_profile_shapes", None)
        if shapes is None:  # its forward ran before this recording began
            shapes = (tuple(None if t is None else (t.shape, t.dtype) for t in node.inputs),
                      tuple((shape, dtype) for shape, dtype, _ in node.outputs_meta))
        self._busy = True
        try:
            start = time.perf_counter()
            in_grads = cls.backward(ctx, *grads)
            seconds = time.perf_counter() - start
        finally:
            self._busy = False
        made = in_grads if isinstance(in_grads, tuple) else (in_grads,)
        self._add(OpKey(cls, BACKWARD, *shapes, tuple(g is not None for g in made)), seconds)
        return in_grads


def record() -> Recorder:
    """A new Recorder, to use as ``with record() as rec:``."""
    return Recorder()
