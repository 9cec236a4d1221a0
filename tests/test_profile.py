"""npae's profiler (npae/engine/profiler.py), the work it counts per op (npae/tools/work.py) and
``npae profile`` (npae/tools/profile.py)."""

import doctest

import numpy as np
import pytest

import npae
import npae.functional as F
from npae import Tensor
from npae.engine import profiler

F32 = np.dtype(np.float32)


def _t(shape, dtype=np.float32, requires_grad=True, seed=0):
    data = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


class Cube(npae.Function):
    """A user's own op: the profiler times it, the work model does not know it."""

    seen_ctx = None

    @staticmethod
    def forward(ctx, x):
        Cube.seen_ctx = ctx
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # computes with Tensors: the ops inside are part of Cube's backward, not rows of their own
        return (F.relu(Tensor(3 * x**2)) * Tensor(grad)).data


def _by_op(rec):
    return {(k.op, k.direction): (k, t) for k, t in rec.ops.items()}


# ------------------------------------------------------------------------------ the recorder
def test_records_each_call_once_with_its_direction_and_shapes():
    x = _t((2, 3), requires_grad=False)
    w = _t((4, 3), seed=1)
    with profiler.record() as rec:
        F.relu(F.linear(x, w)).sum().backward()
    ops = _by_op(rec)
    assert set(ops) == {(op, d) for op in ("Linear", "ReLU", "Sum")
                        for d in ("forward", "backward")}
    assert all(t.calls == 1 and t.seconds > 0 for _, t in ops.values())
    fwd, _ = ops["Linear", "forward"]
    bwd, _ = ops["Linear", "backward"]
    # inputs x, weight, bias (None); a backward is filed under its forward's shapes
    assert fwd.inputs == bwd.inputs == (((2, 3), F32), ((4, 3), F32), None)
    assert fwd.outputs == bwd.outputs == (((2, 4), F32),)
    assert fwd.grads == () and bwd.grads == (False, True, False)  # x is a constant
    assert ops["Sum", "forward"][0].outputs == (((), F32),)

    with rec:  # entering again adds to what it holds
        F.relu(F.linear(x, w)).sum().backward()
    assert all(t.calls == 2 for t in rec.ops.values()) and len(rec.ops) == 6


def test_nothing_is_recorded_without_an_active_recorder():
    rec = profiler.Recorder()
    x = _t((3,))
    Cube.apply(x).sum().backward()
    assert rec.ops == {} and profiler.active is None
    assert not hasattr(Cube.seen_ctx, "_profile_shapes")  # the hook did no work either
    with pytest.raises(ValueError):
        with rec:
            raise ValueError("leaves the recording")
    assert profiler.active is None
    before = dict(rec.ops)
    Cube.apply(x).sum().backward()
    assert rec.ops == before


def test_one_recording_at_a_time():
    with profiler.record():
        with pytest.raises(RuntimeError, match="already active"):
            with profiler.record():
                pass
    assert profiler.active is None


def test_a_backward_whose_forward_ran_before_the_recording():
    x, w = _t((2, 3), requires_grad=False), _t((4, 3), seed=1)
    loss = F.linear(x, w).sum()
    with profiler.record() as rec:
        loss.backward()
    key, t = _by_op(rec)["Linear", "backward"]
    assert t.calls == 1
    assert key.inputs == (None, ((4, 3), F32), None)  # only what the graph kept
    assert key.outputs == (((2, 4), F32),) and key.grads == (False, True, False)


def test_the_profiler_docstring_example_runs():
    result = doctest.testmod(profiler, verbose=False)
    assert result.attempted > 0 and result.failed == 0
