"""The GPU backend's plumbing: what works without CuPy, what the dispatcher and the engine
check, and (marked ``gpu``, on a machine with a CUDA GPU and CuPy) the device moves themselves.
The GPU kernels' own tests are in tests/cuda/ (make test-cuda-sim)."""

import os
import sys

import numpy as np
import pytest

import npae
import npae.functional as F
from npae import Tensor, models, nn, optim
from npae.engine.dispatch import kernels_for

needs_gpu = [pytest.mark.gpu, pytest.mark.skipif(
    not npae.cuda.is_available(),
    reason="no CUDA GPU with CuPy here (pip install -e '.[gpu]' on a GPU machine)")]


@pytest.fixture
def no_cupy(monkeypatch):
    """As on a machine without CuPy: importing it fails."""
    monkeypatch.setitem(sys.modules, "cupy", None)


def test_without_cupy_npae_imports_and_reports_no_gpu(no_cupy):
    assert npae.cuda.is_available() is False
    assert npae.cuda.device_count() == 0


@pytest.mark.parametrize("move", [
    lambda: Tensor(np.ones((2, 3))).to("cuda"),
    lambda: Tensor(np.ones((2, 3)), requires_grad=True).cuda(),
    lambda: nn.Linear(3, 2).to("cuda"),
])
def test_without_cupy_moving_to_cuda_says_what_to_install(no_cupy, move):
    with pytest.raises(npae.cuda.CUDAUnavailableError) as raised:
        move()
    assert isinstance(raised.value, RuntimeError) and isinstance(raised.value, ImportError)
    message = str(raised.value)
    assert "CuPy" in message and "cupy-cuda12x" in message and "GPU" in message
    assert "pip install -e '.[gpu]'" in message and "npae[gpu]" in message


def test_bench_on_cuda_without_a_gpu_exits_with_one_clear_line(no_cupy, capsys):
    from npae.benchmarks.suite import main

    assert main(["--device", "cuda"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "CUDA GPU" in err and "pip install -e '.[gpu]'" in err


def test_cpu_tensors_and_modules_stay_where_they_are():
    x = Tensor(np.ones((2, 3)))
    assert x.device == "cpu"
    assert x.to("cpu") is x and x.cpu() is x
    model = nn.Linear(3, 2)
    weight = model.weight.data
    assert model.to("cpu") is model and model.weight.data is weight
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        x.to("tpu")


def test_cpu_arrays_get_the_cpu_kernels():
    from npae import kernels

    assert kernels_for(np.zeros(2), np.zeros(3)) is kernels


def test_mixing_devices_in_one_op_names_both(monkeypatch):
    # Without a GPU, label one array 'cuda' to drive the check itself; the real thing is
    # test_mixing_real_devices_raises below.
    import npae.engine.dispatch as backend

    on_gpu = np.ones((2, 2))
    real = backend.device_of
    monkeypatch.setattr(backend, "device_of", lambda a: "cuda" if a is on_gpu else real(a))
    with pytest.raises(RuntimeError) as raised:
        Tensor(np.ones((2, 2))) + Tensor(on_gpu)
    message = str(raised.value)
    assert "Add" in message and "'cpu'" in message and "'cuda'" in message
    with pytest.raises(RuntimeError, match="different devices"):
        kernels_for(np.ones(1), on_gpu)


def _compile_checks():
    """(name, kernel, signature) for every GPU kernel, float32 and float64."""
    import importlib

    from numba import types

    mod = {m: importlib.import_module(f"npae.kernels.cuda.{m}")
           for m in ("im2col", "conv2d", "max_pool2d", "max_unpool2d", "upsample_nearest2d",
                     "relu")}
    i = types.int64
    index4, index1 = types.Array(i, 4, "C"), types.Array(i, 1, "C")
    for dt in (types.float32, types.float64):
        a1, a3, a4 = (types.Array(dt, d, "C") for d in (1, 3, 4))
        table = [
            (mod["im2col"]._im2col_kernel, (i, a4, a3, *[i] * 11)),
            (mod["im2col"]._col2im_kernel, (i, a3, a4, *[i] * 11)),
            (mod["conv2d"]._gather_fwd_kernel, (i, a4, a4, a4, *[i] * 6)),
            (mod["conv2d"]._gather_bwd_input_kernel, (i, a4, a4, a4, *[i] * 6)),
            (mod["conv2d"]._gather_bwd_weight_kernel, (i, a4, a4, a4, *[i] * 6)),
            (mod["max_pool2d"]._max_pool_kernel, (i, a4, a4, index4, *[i] * 8)),
            (mod["max_unpool2d"]._unpool_fwd_kernel, (i, a1, index1, index1, a1)),
            (mod["max_unpool2d"]._unpool_bwd_kernel, (i, a4, index4, a4)),
            (mod["upsample_nearest2d"]._upsample_fwd_kernel, (i, a4, index1, index1, a4)),
            (mod["upsample_nearest2d"]._upsample_bwd_kernel, (i, a4, index1, index1, a4)),
            (mod["relu"]._relu_fwd_kernel, (i, a1, a1)),
            (mod["relu"]._relu_bwd_kernel, (i, a1, a1, a1)),
        ]
        for kernel, signature in table:
            yield f"{kernel.py_func.__name__}[{dt}]", kernel, signature


def test_the_gpu_kernels_compile_for_a_real_gpu():
    """Every GPU kernel compiles to PTX for float32 and float64 (no GPU needed, only NVVM):
    the simulator runs them as Python and would accept code that CUDA cannot compile."""
    from numba import cuda, types

    def probe(a):
        pass

    try:
        cuda.compile_ptx(probe, (types.float32[:],), cc=(8, 0))
    except Exception as err:  # NVVM missing: numba-cuda[cu12] (the dev extra) brings it
        why = (f"NVVM not available to compile PTX ({type(err).__name__}: {err}): "
               f"pip install -e '.[dev]' installs numba-cuda[cu12], which brings it")
        if os.environ.get("CI"):  # CI installs the dev extra: there this check must run
            pytest.fail(why)
        pytest.skip(why)
    names = []
    for name, kernel, signature in _compile_checks():
        ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=(8, 0))
        assert ".entry" in ptx, name
        names.append(name)
    assert len(names) == 24  # 12 kernels x 2 dtypes: a new kernel joins the table


# ---------------------------------------------------------------------------- on a real GPU
def gpu(test):
    for mark in reversed(needs_gpu):
        test = mark(test)
    return test


@gpu
def test_tensor_moves_and_gradients_flow_back():
    import cupy

    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda" and isinstance(y.data, cupy.ndarray)
    (y * y).sum().backward()
    assert x.grad.__class__ is np.ndarray
    np.testing.assert_array_equal(x.grad, 2 * x.data)
    assert y.to("cpu").device == "cpu"
    with pytest.raises(TypeError, match="to\\('cpu'\\)"):
        y.numpy()


@gpu
def test_mixing_real_devices_raises():
    a = Tensor(np.ones((2, 2))).to("cuda")
    with pytest.raises(RuntimeError, match="'cpu'.*'cuda'|'cuda'.*'cpu'"):
        a + Tensor(np.ones((2, 2)))
    with pytest.raises(RuntimeError, match="different devices"):
        F.conv2d(a.reshape(1, 1, 2, 2), Tensor(np.ones((1, 1, 1, 1))))


@gpu
@pytest.mark.parametrize("name", models.names())
def test_a_training_step_on_the_gpu_matches_the_cpu(name, tmp_path):
    from npae.training import checkpoint

    x = np.random.default_rng(0).random((4, 1, 28, 28))
    results = {}
    for device in ("cpu", "cuda"):
        npae.manual_seed(0)
        model = npae.models.create(name).to(device)
        opt = optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(2):
            npae.manual_seed(1)  # the VAE's noise: drawn on the host, the same on both
            xt = Tensor(x.astype(np.float32)).to(device)
            loss = model.loss(xt, xt) if name == "vae" else F.mse_loss(model(xt), xt)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert all(p.device == device for p in model.parameters())
        assert all(s["exp_avg"].__class__ is p.data.__class__
                   for s, p in zip(opt.state, model.parameters(), strict=True))
        path = tmp_path / f"{device}.npz"
        checkpoint.save(path, model, opt, {"model": name})
        _, params, _ = checkpoint.load(path)  # host arrays, whatever the device
        results[device] = (float(loss.item()), params)
    assert results["cuda"][0] == pytest.approx(results["cpu"][0], rel=1e-4)
    for key, value in results["cpu"][1].items():
        np.testing.assert_allclose(results["cuda"][1][key], value, rtol=1e-3, atol=1e-5)


@gpu
def test_optimizer_state_follows_its_parameters():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    F.mse_loss(model(Tensor(np.ones((1, 3), np.float32))), Tensor(np.zeros((1, 2), np.float32))
               ).backward()
    opt.step()  # momentum buffers on the host
    model.to("cuda")
    opt.zero_grad()
    x = Tensor(np.ones((1, 3), np.float32)).to("cuda")
    F.mse_loss(model(x), Tensor(np.zeros((1, 2), np.float32)).to("cuda")).backward()
    opt.step()
    assert all(s["momentum_buffer"].__class__ is p.data.__class__
               for s, p in zip(opt.state, model.parameters(), strict=True))
