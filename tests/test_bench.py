"""The benchmark suite's machinery: work counts, timing helpers, and that every column computes
the same thing (a benchmark of different computations would be meaningless). Timings themselves
are never asserted: speed claims come from running the suite, not from unit tests."""

import json

import numpy as np
import pytest
from npae.benchmarks import cases, npae_side, numpy_side, suite, timing, torch_side

import npae
from npae import Tensor, cli, models


def test_conv_work_counts_by_hand():
    case = cases.OpCase("c", "conv2d", (128, 1, 28, 28), (16, 1, 3, 3), dict(stride=1, padding=1))
    assert case.out_shape == (128, 16, 28, 28)
    # 2 FLOPs per multiply-add: every output value sums 1*3*3 products
    assert case.flops(False) == 2 * 128 * 16 * 28 * 28 * 9
    assert case.flops(True) == 3 * case.flops(False)
    x, w, y = 128 * 28 * 28 * 4, 16 * 9 * 4, 128 * 16 * 28 * 28 * 4
    assert case.bytes(False) == x + w + y
    # backward reads gy, x, w and writes gx, gw
    assert case.bytes(True) == (x + w + y) + (y + x + w + x + w)


def test_pool_and_transpose_shapes():
    by_name = {c.op + str(c.x): c for c in cases.op_cases(4)}
    pool = by_name["max_pool2d(4, 16, 28, 28)"]
    assert pool.out_shape == (4, 16, 14, 14)
    assert pool.flops(True) == 0
    assert pool.bytes(False) == 4 * 16 * 28 * 28 * 4 + 4 * 16 * 14 * 14 * (4 + 8)
    t = by_name["conv_transpose2d(4, 32, 14, 14)"]
    assert t.out_shape == (4, 16, 28, 28)  # (14-1)*2 - 2 + 3 + 1


def test_interleaved_runs_every_callable_in_turn():
    order = []
    times = timing.interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                               repeats=3, warmup=1)
    assert order == ["a", "b"] * 4
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    s = timing.summary([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median_s"] == 3.0 and s["min_s"] == 1.0 and s["runs"] == 5


@pytest.mark.parametrize("case", cases.op_cases(batch=2), ids=lambda c: c.name)
def test_npae_and_numpy_columns_compute_the_same_forward(case):
    npae_fwd, _ = npae_side.op(case)
    numpy_fwd, _ = numpy_side.op(case)
    a, b = npae_fwd().data, numpy_fwd()
    b = b[0] if isinstance(b, tuple) else b  # max_pool2d also returns its indices
    assert a.shape == b.shape == case.out_shape
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_npae_bench_quick_roofline_only(tmp_path, capsys):
    assert cli.main(["bench", "--quick", "--skip", "ops", "train", "scaling", "jit",
                     "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "roofline: GEMM" in out
    (path,) = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    assert result["roofline"]["gemm_gflops"] > 0 and result["roofline"]["bandwidth_gbs"] > 0
    assert {"cpu", "cores", "numpy", "numba", "torch"} <= result["machine"].keys()


def test_bench_ops_rows_have_every_field():
    roof = {"gemm_gflops": 50.0, "bandwidth_gbs": 10.0}
    lines = []
    rows = suite.bench_ops(roof, quick=True, with_torch=False, log=lines.append, batch=2)
    assert len(rows) == 2 * len(cases.op_cases(2))
    for row in rows:
        assert row["pass"] in ("fwd", "fwd+bwd")
        assert row["times"]["npae"]["median_s"] > 0 and row["floor_s"] > 0
        assert row["npae_over_floor"] > 0 and row["numpy_over_npae"] > 0
    assert lines[0].startswith("operation (batch 2)")


# ------------------------------------------------------------- the PyTorch twins of the models
# torch_side builds each model with torch.nn; copy_weights moves npae's weights across by name,
# and the training throughput compares the two only if they compute the same thing.
@pytest.mark.parametrize("name", models.names())
def test_torch_twin_has_npae_parameter_names_and_shapes_in_order(name):
    pytest.importorskip("torch")
    npae.manual_seed(0)
    ours = [(k, p.shape) for k, p in models.create(name).named_parameters()]
    theirs = [(k, tuple(p.shape)) for k, p in torch_side.model(name).named_parameters()]
    assert theirs == ours


@pytest.mark.parametrize("name", models.names())
def test_torch_twin_computes_what_npae_computes_on_the_same_weights(name):
    """Forward and backward, in float64 on the same weights: each side's own arithmetic, and
    nothing else, separates the two (the VAE, whose forward samples, through its encoder and
    its decoder)."""
    torch = pytest.importorskip("torch")
    npae.manual_seed(0)
    ours = models.create(name)
    for p in ours.parameters():
        p.data = p.data.astype(np.float64)
    theirs = torch_side.model(name).double()
    torch_side.copy_weights(theirs, ours)
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, 28, 28))
    tol = {"rtol": 1e-10, "atol": 1e-12}
    if name == "vae":
        # forward samples its code (each framework from its own generator): encode x and decode
        # a fixed code, and differentiate the sum of both against every parameter
        z = rng.standard_normal((3, 20))
        mu, logvar = ours.encode(Tensor(x))
        out = ours.decode_logits(Tensor(z))
        t_mu, t_logvar = theirs.encode(torch.from_numpy(x))
        t_out = theirs.decode_logits(torch.from_numpy(z))
        for a, b in ((mu, t_mu), (logvar, t_logvar), (out, t_out)):
            np.testing.assert_allclose(a.data, b.detach().numpy(), **tol)
        (mu.sum() + (logvar * logvar).sum() + (out * out).sum()).backward()
        (t_mu.sum() + (t_logvar * t_logvar).sum() + (t_out * t_out).sum()).backward()
    else:
        np.testing.assert_allclose(ours(Tensor(x)).data,
                                   theirs(torch.from_numpy(x)).detach().numpy(), **tol)
        # the loss, and its gradient for every parameter
        target = rng.random((3, 1, 28, 28))
        loss = ours.loss(Tensor(x), Tensor(target))
        loss.backward()
        torch_loss = theirs.loss(torch.from_numpy(x), torch.from_numpy(target))
        torch_loss.backward()
        np.testing.assert_allclose(loss.item(), torch_loss.item(), **tol)
    grads = {k: p.grad for k, p in theirs.named_parameters()}
    for k, p in ours.named_parameters():
        assert p.grad is not None and grads[k] is not None, k
        np.testing.assert_allclose(p.grad, grads[k].numpy(), err_msg=k, **tol)
