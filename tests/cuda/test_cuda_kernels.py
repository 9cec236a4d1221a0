"""The GPU twins (npae.kernels.cuda) through the same check bodies as the CPU kernels
(tests/kernel_checks.py): against the float64 references, plus bitwise determinism.

Each test runs in the lane this process offers: "sim" under the CUDA simulator (NumPy arrays,
small shapes, few hypothesis examples) or "gpu" on CuPy arrays (marked ``gpu``).
"""

import kernel_checks as C
import numpy as np
import pytest
from cuda_lanes import LANES, SIM, lane_for
from hypothesis import given, settings
from hypothesis import strategies as st
from npae.kernels import cuda as G
from optable import conv2d_cases, conv_transpose2d_cases, max_pool2d_cases

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
METHODS = st.sampled_from(["im2col", "image"])
# the kernel checks are cheap even simulated: more examples than the cudasim profile's 4 (which
# sizes the op tests' gradchecks); a GPU uses the ci profile's
more = settings(max_examples=20) if SIM else (lambda test: test)


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(case=conv2d_cases(), data=st.data())
def test_im2col_rows(lane, dtype, case, data):
    g = C.geometry(case)
    oy0 = data.draw(st.integers(0, g[8] - 1))
    oy1 = data.draw(st.integers(oy0 + 1, g[8]))
    C.check_im2col_rows(lane_for(lane), case.inputs[0].astype(dtype), g, oy0, oy1)


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(case=conv2d_cases(), data=st.data())
def test_col2im_rows_adds_each_window_back(lane, dtype, case, data):
    x = case.inputs[0]
    g = C.geometry(case)
    cols = np.random.default_rng(0).standard_normal(
        (x.shape[0], x.shape[1] * g[0] * g[1], g[8] * g[9])).astype(dtype)
    C.check_col2im_rows(lane_for(lane), cols, x.shape, g, data.draw(st.integers(0, g[8])))


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(case=conv2d_cases(), scratch=st.sampled_from([64 * 2**20, 1]), method=METHODS)
def test_conv2d_fwd_and_grads(lane, dtype, case, scratch, method):
    C.check_conv2d_fwd_and_grads(lane_for(lane), dtype, case, scratch, method)


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(case=conv_transpose2d_cases(), scratch=st.sampled_from([64 * 2**20, 1]), method=METHODS)
def test_conv_transpose2d_fwd(lane, dtype, case, scratch, method):
    C.check_conv_transpose2d_fwd(lane_for(lane), dtype, case, scratch, method)


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(case=max_pool2d_cases())
def test_max_pool2d_fwd_bwd(lane, dtype, case):
    C.check_max_pool2d_fwd_bwd(lane_for(lane), dtype, case)


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 3), s=st.integers(1, 3))
def test_max_pool2d_ties_pick_first_in_scan_order(lane, dtype, seed, k, s):
    C.check_max_pool2d_ties(lane_for(lane), dtype, seed, k, s)


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 3), s=st.integers(1, 3),
       p=st.integers(0, 1), d=st.integers(1, 2))
def test_max_pool2d_keeps_the_tie_and_nan_rules_with_padding_and_dilation(lane, dtype, seed, k,
                                                                          s, p, d):
    C.check_max_pool2d_ties_and_nan_with_padding_and_dilation(lane_for(lane), dtype, seed, k, s,
                                                              p, d)


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 3), s=st.integers(1, 3))
def test_max_unpool2d_fwd_bwd(lane, dtype, seed, k, s):
    C.check_max_unpool2d_fwd_bwd(lane_for(lane), dtype, seed, k, s)


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 5), w=st.integers(1, 5),
       oh=st.integers(1, 11), ow=st.integers(1, 11))
def test_upsample_nearest2d_fwd_bwd(lane, dtype, seed, h, w, oh, ow):
    C.check_upsample_nearest2d_fwd_bwd(lane_for(lane), dtype, seed, h, w, oh, ow)


@pytest.mark.parametrize("lane", LANES)
def test_max_unpool2d_sums_duplicates(lane):
    lane = lane_for(lane)
    x = np.array([[[[1.0, 2.0], [4.0, 8.0]]], [[[16.0, 32.0], [64.0, 128.0]]]])
    idx = np.array([[[[0, 2], [0, 3]]], [[[0, 1], [1, 1]]]])
    y = lane.host(G.max_unpool2d_fwd(lane.dev(x), lane.dev(idx), 2, 2))
    np.testing.assert_array_equal(y, [[[[5.0, 0.0], [2.0, 8.0]]], [[[16.0, 224.0], [0.0, 0.0]]]])


@pytest.mark.parametrize("lane", LANES)
@pytest.mark.parametrize("bad", [-1, 4, 10**7])
def test_the_kernels_that_index_by_data_refuse_an_index_outside_the_plane(lane, bad):
    C.check_index_bounds(lane_for(lane), bad)


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(n=st.integers(1, 300))
def test_relu(lane, dtype, n):
    C.check_relu(lane_for(lane), dtype, n)


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(n=st.integers(1, 300))
def test_sigmoid(lane, dtype, n):
    C.check_sigmoid(lane_for(lane), dtype, n)


@pytest.mark.parametrize("lane", LANES)
@DTYPES
@more
@given(n=st.integers(1, 300), weight_decay=st.sampled_from([0.0, 0.1]), step=st.integers(1, 50))
def test_adam_step(lane, dtype, n, weight_decay, step):
    C.check_adam_step(lane_for(lane), dtype, n, weight_decay, step)


@pytest.mark.parametrize("lane", LANES)
def test_results_are_identical_run_to_run(lane):
    # tiny under the simulator; the CPU test's shape on a GPU
    shape = dict(n=2, c=2, side=6) if lane == "sim" else dict(n=8, c=16, side=14)
    C.check_results_are_identical_run_to_run(lane_for(lane), **shape)


def test_the_gpu_twins_have_every_cpu_kernel_with_its_signature():
    import inspect

    from npae import kernels as K

    for name in K.__all__:
        cpu = getattr(K, name)
        if callable(cpu):  # the planners too: each backend has its own rule, same signature
            gpu = getattr(G, name)
            assert inspect.signature(gpu) == inspect.signature(cpu), name


def test_the_op_tests_of_this_lane_run_on_the_gpu_kernels():
    # make test-cuda-sim also runs tests/ops with NPAE_TEST_KERNELS=cuda: prove the routing
    import os

    from npae.engine.dispatch import kernels_for

    if os.environ.get("NPAE_TEST_KERNELS") != "cuda":
        pytest.skip("only meaningful in make test-cuda-sim (NPAE_TEST_KERNELS=cuda)")
    assert kernels_for(np.zeros(1)) is G
