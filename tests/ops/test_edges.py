"""The documented edge cases of the elementwise ops and losses, where finite differences cannot
check the backward (a kink, the edge of the domain, saturation): each gradient against the rule
PyTorch documents, worked out by hand here. The forward at these points is in the op table."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import npae.functional as F
from npae import Tensor


def _grad(fn, x, *rest, **params):
    x = Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    y = fn(x, *rest, **params)
    y.backward(np.ones(y.shape))
    return y.data, x.grad


def test_relu_at_zero_passes_no_gradient():
    y, g = _grad(F.relu, [-0.0, 0.0, 2.0])
    assert_array_equal(y, [0.0, 0.0, 2.0])
    assert_array_equal(g, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_at_zero_takes_the_negative_slope(slope):
    # PyTorch: grad * (x > 0 ? 1 : negative_slope), so exactly 0 takes the slope
    y, g = _grad(F.leaky_relu, [0.0, -0.0, 3.0, -3.0], negative_slope=slope)
    assert_array_equal(y, [0.0, 0.0, 3.0, -3.0 * slope])
    assert_array_equal(g, [slope, slope, 1.0, slope])


@pytest.mark.parametrize("fn, low, high", [(F.sigmoid, 0.0, 1.0), (F.tanh, -1.0, 1.0)])
def test_sigmoid_and_tanh_saturate_without_overflow_at_1e3(fn, low, high):
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # (underflow to 0 is fine)
        y, g = _grad(fn, [-1e3, 1e3])
    assert_array_equal(y, [low, high])
    assert_array_equal(g, [0.0, 0.0])


def test_bce_at_exactly_0_and_1_clamps_the_log_and_floors_the_gradient():
    # loss = -(t log x + (1 - t) log(1 - x)) with each log clamped at -100; d/dx =
    # (x - t) / max(x (1 - x), 1e-12) (PyTorch's binary_cross_entropy and its backward)
    x = np.array([0.0, 1.0, 0.0, 1.0])
    t = np.array([0.0, 1.0, 0.3, 0.3])
    y, g = _grad(F.binary_cross_entropy, x, Tensor(t), reduction="none")
    assert_array_equal(y, [0.0, 0.0, 0.3 * 100, 0.7 * 100])
    assert_array_equal(g, [0.0, 0.0, -0.3 / 1e-12, 0.7 / 1e-12])
    assert np.isfinite(g).all()
