"""Each kernel against three things: its jitted self, its pure-Python ``.py_func``, and the slow
reference written from the definition. Plus determinism and the bounded workspace. The check
bodies live in tests/kernel_checks.py, shared with the GPU twins' tests (tests/cuda/)."""

from dataclasses import replace

import kernel_checks as C
import numpy as np
import pytest
import reference as R
from hypothesis import given
from hypothesis import strategies as st
from kernel_checks import Lane
from npae.kernels import _jit
from npae.kernels import conv2d as conv_module
from npae.kernels import conv2d_image as _image
from npae.kernels import max_unpool2d as _unpool
from npae.kernels import relu as _relu
from npae.kernels import upsample_nearest2d as _upsample
from npae.kernels.im2col import _im2col_rows
from npae.kernels.max_pool2d import _max_pool2d
from optable import conv2d_cases, conv_transpose2d_cases, max_pool2d_cases

from npae import kernels as K
from npae.engine.shapes import Geometry

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


CPU = Lane("cpu", K)


@DTYPES
@given(case=conv2d_cases(), data=st.data())
def test_im2col_rows(dtype, case, data):
    x = case.inputs[0].astype(dtype)
    g = C.geometry(case)
    oy0 = data.draw(st.integers(0, g[8] - 1))
    oy1 = data.draw(st.integers(oy0 + 1, g[8]))
    jitted = C.check_im2col_rows(CPU, x, g, oy0, oy1)
    python = np.full_like(jitted, np.nan)  # every element must be written
    _im2col_rows.py_func(x, python, *g, oy0, oy1)
    np.testing.assert_array_equal(jitted, python)


@DTYPES
@given(case=conv2d_cases(), data=st.data())
def test_col2im_rows_adds_each_window_back(dtype, case, data):
    x = case.inputs[0]
    g = C.geometry(case)
    oh, ow = g[8], g[9]
    n, c = x.shape[:2]
    cols = np.random.default_rng(0).standard_normal((n, c * g[0] * g[1], oh * ow)).astype(dtype)
    split = data.draw(st.integers(0, oh))
    jitted = C.check_col2im_rows(CPU, cols, x.shape, g, split)
    python = np.zeros(x.shape, dtype)
    for oy0, oy1 in ((0, split), (split, oh)):
        if oy1 > oy0:
            part = np.ascontiguousarray(cols[:, :, oy0 * ow:oy1 * ow])
            K.col2im_rows.py_func(part, python, *g, oy0, oy1)
    np.testing.assert_allclose(jitted, python, **C.tol(dtype))


METHODS = st.sampled_from(["im2col", "image"])


@DTYPES
@given(case=conv2d_cases(), scratch=st.sampled_from([64 * 2**20, 1]), method=METHODS)
def test_conv2d_fwd_and_grads(dtype, case, scratch, method):
    C.check_conv2d_fwd_and_grads(CPU, dtype, case, scratch, method)


@DTYPES
@given(case=conv_transpose2d_cases(), scratch=st.sampled_from([64 * 2**20, 1]), method=METHODS)
def test_conv_transpose2d_fwd(dtype, case, scratch, method):
    C.check_conv_transpose2d_fwd(CPU, dtype, case, scratch, method)


@DTYPES
@given(case=conv2d_cases())
def test_image_conv_kernels_match_their_py_func(dtype, case):
    x, w, b = (None if v is None else v.astype(dtype) for v in case.inputs)
    b = np.zeros(w.shape[0], dtype) if b is None else b
    g = C.geometry(case)
    y = K.conv2d_image_fwd(x, w, b, *g[2:])
    python = np.full_like(y, np.nan)  # every element must be written
    _image._conv2d_image_fwd.py_func(x, w, b, python, *g[2:8])
    np.testing.assert_allclose(y, python, **C.tol(dtype))
    np.testing.assert_allclose(y, R.conv2d_ref(x, w, b, g[2:4], g[4:6], g[6:8]), **C.tol(dtype))
    gy = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
    python = np.full_like(x, np.nan)
    _image._conv2d_image_bwd_input.py_func(gy, w, python, *g[2:8])
    np.testing.assert_allclose(K.conv2d_image_bwd_input(gy, w, x.shape[2], x.shape[3], *g[2:8]),
                               python, **C.tol(dtype))
    args = (x, gy, *g[:8])
    np.testing.assert_allclose(K.conv2d_image_bwd_weight(*args),
                               K.conv2d_image_bwd_weight.py_func(*args), **C.tol(dtype))


def test_image_weight_gradient_sums_in_a_fixed_order():
    # the weight gradient sums over images in groups; the same call twice is bitwise equal,
    # whatever the thread scheduling
    rng = np.random.default_rng(9)
    x = rng.standard_normal((37, 16, 9, 9)).astype(np.float32)
    gy = rng.standard_normal((37, 4, 9, 9)).astype(np.float32)
    args = (x, gy, 3, 3, 1, 1, 1, 1, 1, 1)
    first = K.conv2d_image_bwd_weight(*args)
    for _ in range(3):
        assert np.array_equal(K.conv2d_image_bwd_weight(*args), first)


@DTYPES
@given(case=max_pool2d_cases())
def test_max_pool2d_fwd_bwd(dtype, case):
    x, args, y, idx = C.check_max_pool2d_fwd_bwd(CPU, dtype, case)
    y_py, idx_py = np.full_like(y, np.nan), np.full_like(idx, -2)
    _max_pool2d.py_func(x, y_py, idx_py, *args)
    np.testing.assert_array_equal(idx, idx_py)
    np.testing.assert_array_equal(y, y_py)


@DTYPES
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 3), s=st.integers(1, 3))
def test_max_pool2d_ties_pick_first_in_scan_order(dtype, seed, k, s):
    C.check_max_pool2d_ties(CPU, dtype, seed, k, s)


@DTYPES
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 3), s=st.integers(1, 3))
def test_max_unpool2d_fwd_bwd(dtype, seed, k, s):
    x, idx, y, gy, gx = C.check_max_unpool2d_fwd_bwd(CPU, dtype, seed, k, s)
    y_py, gx_py = np.full_like(y, np.nan), np.full_like(gx, np.nan)
    assert (_unpool._max_unpool2d_fwd.py_func(x, idx, y_py) < 0).all()  # no bad index
    assert (_unpool._max_unpool2d_bwd.py_func(gy, idx, gx_py) < 0).all()
    np.testing.assert_array_equal(y, y_py)
    np.testing.assert_array_equal(gx, gx_py)


@DTYPES
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 5), w=st.integers(1, 5),
       oh=st.integers(1, 11), ow=st.integers(1, 11))
def test_upsample_nearest2d_fwd_bwd(dtype, seed, h, w, oh, ow):
    x, rows, cols, y, gy, gx = C.check_upsample_nearest2d_fwd_bwd(CPU, dtype, seed, h, w, oh, ow)
    y_py, gx_py = np.full_like(y, np.nan), np.full_like(gx, np.nan)
    _upsample._upsample_nearest2d_fwd.py_func(x, rows, cols, y_py)
    _upsample._upsample_nearest2d_bwd.py_func(gy, rows, cols, gx_py)
    np.testing.assert_array_equal(y, y_py)
    np.testing.assert_allclose(gx, gx_py, **C.tol(dtype))


def test_results_are_identical_run_to_run():
    C.check_results_are_identical_run_to_run(CPU, n=8, c=16, side=14)


def test_conv_scratch_stays_within_the_limit(monkeypatch):
    """No column buffer exceeds max_scratch, at any batch size; tiny limits split rows too."""
    sizes = []
    real = conv_module.CPU.im2col_rows

    def recording(*args):
        cols = real(*args)
        sizes.append(cols.nbytes)
        return cols

    monkeypatch.setattr(conv_module, "CPU", replace(conv_module.CPU, im2col_rows=recording))
    same = Geometry(3, 3, 1, 1, 1, 1, 1, 1, 16, 16)
    rng = np.random.default_rng(4)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    per_image = 3 * 9 * 16 * 16 * 4  # K * oh * ow * itemsize
    for n, limit in ((64, 10 * per_image), (7, per_image), (3, per_image // 4), (2, 1)):
        sizes.clear()
        x = rng.standard_normal((n, 3, 16, 16)).astype(np.float32)
        y = K.conv2d_fwd(x, w, None, same, max_scratch=limit, method="im2col")
        row_bytes = 3 * 9 * 16 * 4  # one output row of one image: the smallest chunk there is
        assert max(sizes) <= max(limit, row_bytes), (n, limit, max(sizes))
        whole = K.conv2d_fwd(x, w, None, same, max_scratch=2**40)
        np.testing.assert_allclose(y, whole, rtol=1e-5, atol=1e-5)


def test_im2col_when_a_tap_only_ever_reads_padding():
    # 1x1 input, padding 2, 5x5 kernel: one output pixel; taps j = 0, 1, 3, 4 read padding
    x = np.arange(1, 3, dtype=np.float64).reshape(1, 2, 1, 1)
    cols = K.im2col(x, 5, 5, 1, 1, 2, 2, 1, 1, 1, 1)
    np.testing.assert_array_equal(cols, R.im2col_ref(x, (5, 5), (1, 1), (2, 2), (1, 1)))
    back = K.col2im(np.ones_like(cols), 2, 1, 1, 5, 5, 1, 1, 2, 2, 1, 1, 1, 1)
    np.testing.assert_array_equal(back, np.ones((1, 2, 1, 1)))


@DTYPES
# the serial loop for small arrays, and around the block size above PARALLEL_MIN: short and
# partial blocks of the parallel loop
@given(n=st.one_of(st.integers(1, 3 * (1 << 14) + 5),
                   st.integers(_jit.PARALLEL_MIN - 5, _jit.PARALLEL_MIN + 3 * _jit.BLOCK + 5)))
def test_relu_kernels_match_their_py_func_and_the_reference(dtype, n):
    x, gy = C.check_relu(CPU, dtype, n)
    y = K.relu_fwd(x)
    y_py, gx_py = np.full(n, np.nan, dtype), np.full(n, np.nan, dtype)
    _relu._relu_fwd.py_func(x.reshape(-1), y_py)
    _relu._relu_bwd.py_func(gy.reshape(-1), y.reshape(-1), gx_py)
    np.testing.assert_array_equal(y.reshape(-1), y_py)
    np.testing.assert_array_equal(K.relu_bwd(gy, y).reshape(-1), gx_py)


@pytest.mark.parametrize("c, o, k, hw, limit", [
    (16, 4, 3, 14, 64 * 2**20),   # few outputs, long window: one image at a time
    (1, 16, 3, 28, 64 * 2**20),   # short window: batched im2col
    (16, 32, 3, 14, 64 * 2**20),  # many outputs: im2col for forward and input gradient
    (16, 4, 3, 14, 1),            # a 1-byte bound rules out the per-thread image buffers
])
def test_conv2d_plan_is_the_path_the_kernels_take(monkeypatch, c, o, k, hw, limit):
    taken = []
    recording = {}
    for name in ("conv2d_image_fwd", "conv2d_image_bwd_input", "conv2d_image_bwd_weight"):
        real = getattr(conv_module.CPU, name)
        recording[name] = lambda *a, _real=real, _name=name: taken.append(_name) or _real(*a)
    monkeypatch.setattr(conv_module, "CPU", replace(conv_module.CPU, **recording))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, c, hw, hw))
    w = rng.standard_normal((o, c, k, k))
    g = Geometry(k, k, 1, 1, 1, 1, 1, 1, hw, hw)
    y = conv_module.conv2d_fwd(x, w, None, g, max_scratch=limit)
    conv_module.conv2d_bwd_input(y, w, hw, hw, g, max_scratch=limit)
    conv_module.conv2d_bwd_weight(x, y, g, max_scratch=limit)
    for direction, kernel in (("fwd", "conv2d_image_fwd"), ("bwd_input", "conv2d_image_bwd_input"),
                              ("bwd_weight", "conv2d_image_bwd_weight")):
        path, scratch = K.conv2d_plan(direction, 3, c, o, k, k, 1, 1, hw, hw, 8, limit)
        assert (path == "image") == (kernel in taken), (direction, path, taken)
        if path == "image":
            assert scratch <= limit
    # strided: the one-image path only for a single output channel
    assert K.conv2d_plan("fwd", 3, 16, 4, 3, 3, 2, 2, 7, 7, 8)[0] == "im2col"
    assert K.conv2d_plan("fwd", 3, 16, 1, 3, 3, 2, 2, 7, 7, 8)[0] == "image"
    # ...and the strided weight gradient for up to 16 output channels
    assert K.conv2d_plan("bwd_weight", 3, 16, 4, 2, 2, 2, 2, 7, 7, 8)[0] == "image"
    assert K.conv2d_plan("bwd_weight", 3, 16, 32, 3, 3, 2, 2, 7, 7, 8)[0] == "im2col"
    with pytest.raises(ValueError, match="direction"):
        K.conv2d_plan("sideways", 3, 16, 4, 3, 3, 1, 1, 14, 14, 8)


@DTYPES
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 3), s=st.integers(1, 3),
       p=st.integers(0, 1), d=st.integers(1, 2))
def test_max_pool2d_general_kernel_keeps_the_tie_and_nan_rules(dtype, seed, k, s, p, d):
    C.check_max_pool2d_ties_and_nan_with_padding_and_dilation(CPU, dtype, seed, k, s, p, d)


@DTYPES
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(2, 9), w=st.integers(2, 9))
def test_max_pool2d_2x2_fast_path_keeps_the_tie_and_nan_rules(dtype, seed, h, w):
    # 2x2, stride 2, no padding takes the unrolled kernel; few distinct values (ties
    # everywhere) and some NaNs, odd and even sides (a last row or column left out)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(2, 3, h, w)).astype(dtype)
    x[rng.random(x.shape) < 0.1] = np.nan
    oh, ow = h // 2, w // 2
    y, idx = K.max_pool2d_fwd(x, Geometry(2, 2, 2, 2, 0, 0, 1, 1, oh, ow))
    y_ref, idx_ref = R.max_pool2d_ref(x.astype(np.float64), (2, 2), (2, 2))
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))  # NaN == NaN here
    y_py, idx_py = np.full_like(y, np.nan), np.full_like(idx, -2)
    _max_pool2d.py_func(x, y_py, idx_py, 2, 2, 2, 2, 0, 0, 1, 1, oh, ow)
    np.testing.assert_array_equal(idx, idx_py)


@DTYPES
@given(n=st.sampled_from([1, 13, _jit.PARALLEL_MIN - 1, _jit.PARALLEL_MIN + _jit.BLOCK + 3]))
def test_sigmoid(dtype, n):
    # both sides of PARALLEL_MIN: the serial and the blocked parallel loop
    C.check_sigmoid(CPU, dtype, n)


@DTYPES
@given(n=st.sampled_from([1, 7, _jit.PARALLEL_MIN - 1, _jit.PARALLEL_MIN + 3]),
       weight_decay=st.sampled_from([0.0, 0.1]), step=st.integers(1, 50))
def test_adam_step(dtype, n, weight_decay, step):
    # both sides of PARALLEL_MIN: the serial and the blocked parallel loop
    C.check_adam_step(CPU, dtype, n, weight_decay, step)


def test_both_kernel_packages_list_the_same_kernels():
    # the two __all__ lists are written by hand; this keeps them in step: every CPU kernel has
    # its GPU twin (planners included, each with its backend's rule) and nothing else is there
    from npae.kernels import cuda as G

    assert sorted(G.__all__) == sorted(K.__all__)
    assert len(set(K.__all__)) == len(K.__all__)
    assert [name for name in K.__all__ if not (hasattr(K, name) and hasattr(G, name))] == []


def test_the_gpu_planner_takes_the_gathers_only_on_request():
    # the GPU's own rule (kernels/cuda/conv2d.py): im2col + cuBLAS whatever the shape, in
    # chunks as large as the bound allows (no cache-sized target as on the CPU)
    from npae.kernels import cuda as G

    for direction in ("fwd", "bwd_input", "bwd_weight"):
        # a shape where the CPU takes the one-image path
        assert K.conv2d_plan(direction, 3, 16, 4, 3, 3, 1, 1, 14, 14, 8)[0] == "image"
        path, scratch = G.conv2d_plan(direction, 3, 16, 4, 3, 3, 1, 1, 14, 14, 8)
        assert (path, scratch) == ("im2col", 3 * 16 * 9 * 14 * 14 * 8)  # the whole batch
        assert G.conv2d_plan(direction, 3, 16, 4, 3, 3, 1, 1, 14, 14, 8, method="image") == (
            "image", 0)
    assert G.plan_chunks(128, 144, 28, 28, 4, 64 * 2**20) == (128, 28)
    assert K.plan_chunks(128, 144, 28, 28, 4, 64 * 2**20) == (9, 28)  # ~4 MiB chunks
    assert G.plan_chunks(2, 144, 28, 28, 4, 144 * 28 * 4 * 3) == (1, 3)  # rows, as on the CPU
    with pytest.raises(ValueError, match="direction"):
        G.conv2d_plan("sideways", 3, 16, 4, 3, 3, 1, 1, 14, 14, 8)
    with pytest.raises(ValueError, match="method"):
        G.conv2d_plan("fwd", 3, 16, 4, 3, 3, 1, 1, 14, 14, 8, method="fft")


@pytest.mark.parametrize("bad", [-1, 4, 10**7])
def test_the_kernels_that_index_by_data_refuse_an_index_outside_the_plane(bad):
    C.check_index_bounds(CPU, bad)
