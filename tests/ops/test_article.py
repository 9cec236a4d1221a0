"""The article's worked examples, and the documented rules, as named tests."""

import numpy as np
import pytest

import npae.functional as F
from npae import Tensor


def test_3x3_stride1_padding1_keeps_4x4():
    x = Tensor(np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4))
    y = F.conv2d(x, Tensor(np.ones((1, 1, 3, 3))), padding=1)
    assert y.shape == (1, 1, 4, 4)
    # top-left output: the 2x2 corner [[0, 1], [4, 5]] (the rest is zero padding) = 10
    # centre output (1, 1): rows 0..2, cols 0..2 = 0+1+2+4+5+6+8+9+10 = 45
    assert y.data[0, 0, 0, 0] == 10
    assert y.data[0, 0, 1, 1] == 45


def test_3x3_stride2_padding1_turns_4x4_into_2x2():
    x = Tensor(np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4))
    y = F.conv2d(x, Tensor(np.ones((1, 1, 3, 3))), stride=2, padding=1)
    assert y.shape == (1, 1, 2, 2)
    # windows centred on (0,0), (0,2), (2,0), (2,2) of the input
    # (0,0): 0+1+4+5 = 10; (0,2): 1+2+3+5+6+7 = 24; (2,0): 4+5+8+9+12+13 = 51;
    # (2,2): 5+6+7+9+10+11+13+14+15 = 90
    np.testing.assert_array_equal(y.data[0, 0], [[10, 24], [51, 90]])


def test_transpose_conv_2x2_through_3x3_stride2_sums_overlaps_into_5x5():
    x = Tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    y = F.conv_transpose2d(x, Tensor(np.ones((1, 1, 3, 3))), stride=2)
    assert y.shape == (1, 1, 5, 5)
    # each input pixel stamps a 3x3 block of its value at (2i, 2j); the blocks overlap on
    # row 2 and column 2, where the stamps add up
    expected = np.array([
        [1, 1, 1 + 2, 2, 2],
        [1, 1, 1 + 2, 2, 2],
        [1 + 3, 1 + 3, 1 + 2 + 3 + 4, 2 + 4, 2 + 4],
        [3, 3, 3 + 4, 4, 4],
        [3, 3, 3 + 4, 4, 4],
    ], dtype=np.float64)
    np.testing.assert_array_equal(y.data[0, 0], expected)


def test_output_size_picks_output_padding():
    # stride 2 maps both 7x7 and 8x8 onto 4x4 (3x3, padding 1): output_size chooses
    x = Tensor(np.ones((1, 1, 4, 4)))
    w = Tensor(np.ones((1, 1, 3, 3)))
    assert F.conv_transpose2d(x, w, stride=2, padding=1, output_size=(7, 7)).shape[2:] == (7, 7)
    assert F.conv_transpose2d(x, w, stride=2, padding=1, output_size=(8, 8)).shape[2:] == (8, 8)
    with pytest.raises(ValueError, match=r"7\.\.8"):
        F.conv_transpose2d(x, w, stride=2, padding=1, output_size=(9, 9))


def test_max_pool_ties_go_to_the_first_maximum_and_so_does_the_gradient():
    # every 2x2 window holds the value 5 twice; scan order is row by row, so the first 5 wins
    x = np.array([[[[1, 5, 5, 0],
                    [5, 2, 3, 5],
                    [5, 5, 7, 7],
                    [0, 0, 7, 7]]]], dtype=np.float64)
    xt = Tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(xt, 2, return_indices=True)
    # window (0,0): 5 at (0,1) -> 1; window (0,1): 5 at (0,2) -> 2;
    # window (1,0): 5 at (2,0) -> 8; window (1,1): 7 at (2,2) -> 10
    np.testing.assert_array_equal(idx.data[0, 0], [[1, 2], [8, 10]])
    assert idx.dtype == np.int64
    y.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = np.zeros((4, 4))
    expected[0, 1], expected[0, 2], expected[2, 0], expected[2, 2] = 1, 2, 3, 4
    np.testing.assert_array_equal(xt.grad[0, 0], expected)


def test_unpool_puts_values_back_at_the_pooled_indices():
    x = Tensor(np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4))
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    u = F.max_unpool2d(y, idx, 2)
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[3, 1], expected[3, 3] = 5, 7, 13, 15
    np.testing.assert_array_equal(u.data[0, 0], expected)


def test_unpool_duplicate_indices_sum_and_both_get_the_gradient():
    x = Tensor(np.array([[[[2.0, 3.0]]]]), requires_grad=True)
    idx = np.array([[[[1, 1]]]])
    u = F.max_unpool2d(x, idx, (1, 2), output_size=(1, 4))
    np.testing.assert_array_equal(u.data[0, 0], [[0, 5, 0, 0]])
    u.backward(np.array([[[[10.0, 20.0, 30.0, 40.0]]]]))
    np.testing.assert_array_equal(x.grad[0, 0], [[20, 20]])


def test_upsample_backward_sums_each_source_pixels_copies():
    x = Tensor(np.array([[[[1.0, 2.0]]]]), requires_grad=True)
    y = F.upsample_nearest2d(x, scale_factor=2)
    np.testing.assert_array_equal(y.data[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2]])
    y.backward(np.arange(8, dtype=np.float64).reshape(1, 1, 2, 4))
    # source 0 feeds outputs 0, 1, 4, 5; source 1 feeds 2, 3, 6, 7
    np.testing.assert_array_equal(x.grad[0, 0], [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7]])


def test_strided_conv_then_transpose_conv_round_trip_shapes():
    # the article's learned down- and upsampling: 28 -> 14 -> 7 -> 14 -> 28
    x = Tensor(np.zeros((2, 1, 28, 28), np.float32))
    h = F.conv2d(x, Tensor(np.zeros((16, 1, 3, 3), np.float32)), stride=2, padding=1)
    h = F.conv2d(h, Tensor(np.zeros((32, 16, 3, 3), np.float32)), stride=2, padding=1)
    assert h.shape == (2, 32, 7, 7)
    h = F.conv_transpose2d(h, Tensor(np.zeros((32, 16, 3, 3), np.float32)), stride=2,
                           padding=1, output_padding=1)
    h = F.conv_transpose2d(h, Tensor(np.zeros((16, 1, 3, 3), np.float32)), stride=2,
                           padding=1, output_padding=1)
    assert h.shape == (2, 1, 28, 28)
    assert h.dtype == np.float32
