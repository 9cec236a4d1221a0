"""npae's profiler (npae/engine/profiler.py), the work it counts per op (npae/tools/work.py) and
``npae profile`` (npae/tools/profile.py)."""

import doctest
import json

import numpy as np
import pytest

import npae
import npae.functional as F
from npae import Tensor, models
from npae.cli import main
from npae.engine import profiler
from npae.tools import work as W
from npae.tools.profile import op_rows

F32 = np.dtype(np.float32)
ROOF = {"gemm_gflops": 100.0, "bandwidth_gbs": 10.0}  # a made-up machine for the floors


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


def test_a_users_op_is_timed_not_counted_and_its_inner_ops_are_its_own():
    x = _t((5,))
    with profiler.record() as rec:
        Cube.apply(x).sum().backward()
    ops = _by_op(rec)
    # the ReLU and Mul inside Cube.backward count as Cube's time, not as rows of their own
    assert set(ops) == {("Cube", "forward"), ("Cube", "backward"), ("Sum", "forward"),
                        ("Sum", "backward")}
    key, _ = ops["Cube", "backward"]
    assert W.work(key) is None
    rows = {(r["op"], r["direction"]): r for r in op_rows(rec, 1, 1.0, ROOF)}
    cube = rows["Cube", "backward"]
    assert cube["ms_per_step"] > 0
    assert cube["flops_per_call"] is cube["gflops"] is cube["floor_ms_per_step"] is None
    assert rows["Sum", "forward"]["flops_per_call"] == 5  # a known op beside it is counted


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


# ------------------------------------------------------------------------------ the work
def _keys(run):
    with profiler.record() as rec:
        run()
    return {d: k for (op, d), (k, _) in _by_op(rec).items() if op not in ("Sum",)}


def test_conv2d_work_by_hand():
    # x (2, 3, 5, 5), w (4, 3, 3, 3), padding 1: y (2, 4, 5, 5); each of its 200 values takes
    # 3*3*3 = 27 multiply-adds
    x, w, b = _t((2, 3, 5, 5)), _t((4, 3, 3, 3), seed=1), _t((4,), seed=2)
    keys = _keys(lambda: F.conv2d(x, w, b, padding=1).sum().backward())
    assert W.work(keys["forward"]) == (2 * 200 * 27, 150 * 4 + 108 * 4 + 4 * 4 + 200 * 4)
    # backward: input and weight gradients, each as many products as the forward; read gy, w
    # (for gx) and x (for gw); write gx, gw, gb
    assert W.work(keys["backward"]) == (2 * 2 * 200 * 27,
                                        200 * 4 + 108 * 4 + 150 * 4 + 150 * 4 + 108 * 4 + 4 * 4)
    # stride 2, no padding, float64: 6x6 -> 2x2, 1*3*2*2 = 12 outputs of 2*3*3 = 18 taps
    x, w = _t((1, 2, 6, 6), np.float64), _t((3, 2, 3, 3), np.float64, requires_grad=False)
    keys = _keys(lambda: F.conv2d(x, w, stride=2).sum().backward())
    assert W.work(keys["forward"]) == (2 * 12 * 18, (72 + 54 + 12) * 8)
    # only the input gradient: read gy and w, write gx
    assert W.work(keys["backward"]) == (2 * 12 * 18, (12 + 54 + 72) * 8)


def test_conv_transpose2d_work_by_hand():
    # x (2, 4, 3, 3), w (4, 2, 2, 2), stride 2: y (2, 2, 6, 6). Each of the 72 input values
    # scales a 2x2x2 kernel onto the output: 72 * 8 = 576 multiply-adds; seen from the output,
    # each of its 144 values gets one tap from each of the 4 input channels: 144 * 4 = 576
    x, w, b = _t((2, 4, 3, 3)), _t((4, 2, 2, 2), seed=1), _t((2,), seed=2)
    keys = _keys(lambda: F.conv_transpose2d(x, w, b, stride=2).sum().backward())
    assert 72 * 8 == 144 * 4
    assert W.work(keys["forward"]) == (2 * 576, 72 * 4 + 32 * 4 + 2 * 4 + 144 * 4)
    assert W.work(keys["backward"]) == (2 * 2 * 576,
                                        144 * 4 + 32 * 4 + 72 * 4 + 72 * 4 + 32 * 4 + 2 * 4)


def test_linear_and_max_pool2d_work_by_hand():
    # x (5, 7) constant, w (3, 7), b (3,): 15 outputs of 7 multiply-adds
    x, w, b = _t((5, 7), requires_grad=False), _t((3, 7), seed=1), _t((3,), seed=2)
    keys = _keys(lambda: F.linear(x, w, b).sum().backward())
    assert W.work(keys["forward"]) == (2 * 15 * 7, (35 + 21 + 3 + 15) * 4)
    # the weight gradient alone (x needs none): read gy and x, write gw and gb
    assert W.work(keys["backward"]) == (2 * 15 * 7, (15 + 35 + 21 + 3) * 4)
    # max pooling moves data only; its int64 argmax is written, and read by the backward
    x = _t((1, 2, 4, 4))
    keys = _keys(lambda: F.max_pool2d(x, 2).sum().backward())
    assert W.work(keys["forward"]) == (0, 32 * 4 + 8 * 4 + 8 * 8)
    assert W.work(keys["backward"]) == (0, 8 * 4 + 8 * 8 + 32 * 4)


def test_views_and_pass_through_gradients_move_nothing():
    a, b = _t((3, 4)), _t((4,), seed=1)
    with profiler.record() as rec:
        (a.reshape(4, 3).reshape(3, 4) + b).sum().backward()
    for key in rec.ops:
        if key.op == "Reshape":
            assert W.work(key) == (0, 0)
    add = next(k for k in rec.ops if k.op == "Add" and k.direction == "backward")
    # a's gradient is gy itself; b's sums gy over the rows: read gy (48 bytes), write 16
    assert W.work(add) == (0, 12 * 4 + 4 * 4)


def test_every_op_of_the_seven_models_has_a_work_rule():
    x = Tensor(np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32))
    for name in models.names():
        npae.manual_seed(0)
        model = models.create(name)
        with profiler.record() as rec:
            model.loss(x, x).backward()
        unknown = {key.op for key in rec.ops if W.work(key) is None}
        assert not unknown, f"{name}: no work rule for {unknown}"


def test_floor_is_the_larger_of_compute_and_memory_time():
    assert W.floor_seconds(2e9, 1e9, ROOF) == pytest.approx(0.1)  # bandwidth-bound
    assert W.floor_seconds(50e9, 1e9, ROOF) == pytest.approx(0.5)  # compute-bound


# ------------------------------------------------------------------------------ the command
def test_npae_profile_writes_a_table_json_and_png(tmp_path, capsys):
    code = main(["profile", "linear", "-b", "8", "-n", "2", "--warmup", "1", "--out",
                 str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "whole step (mean)" in out and "outside the ops" in out and "Linear" in out
    result = json.loads((tmp_path / "linear-b8.json").read_text())
    assert (tmp_path / "linear-b8.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    t = result["totals"]
    ops_ms = sum(r["ms_per_step"] for r in result["ops"])
    assert ops_ms + t["optimizer_ms"] + t["zero_grad_ms"] + t["outside_ms"] == \
        pytest.approx(t["step_ms"], rel=1e-9)
    assert t["outside_ms"] == pytest.approx(t["outside_forward_ms"] + t["outside_backward_ms"])
    assert sum(r["share"] for r in result["ops"]) < 1
    linear = [r for r in result["ops"] if r["op"] == "Linear"]
    assert len(linear) == 4 and all(r["calls_per_step"] == 1 and r["gflops"] > 0
                                    for r in linear)
    assert result["machine"]["cores"] >= 1 and result["roofline"]["gemm_gflops"] > 0


@pytest.mark.parametrize("argv,code,message", [
    (["profile", "resnet"], 2, "invalid choice: 'resnet'"),
    (["profile", "linear", "-n", "0"], 2, "expected a positive int, got '0'"),
    (["profile", "linear", "--batch-size", "-3"], 2, "expected a positive int"),
    (["profile", "linear", "--warmup", "-1"], 2, "expected an int >= 0"),
    (["profile", "linear", "--device", "cuda"], 1, "--device cuda is not supported yet"),
    (["profile", "linear", "--threads", "100000"], 1, "--threads must lie in 1.."),
])
def test_npae_profile_rejects_bad_options(capsys, argv, code, message):
    if code == 2:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    else:
        assert main(argv) == 1
    assert message in capsys.readouterr().err
