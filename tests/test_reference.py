"""Pin the slow references to numbers worked out by hand.

The references are the oracle for every kernel test, so they must not be checked against
themselves: each expected value below is written out in the test, with its arithmetic in a
comment. The only exceptions are the adjoint identities (<A x, y> == <x, A^T y>), which tie two
references together on random float64 data.
"""

import math

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
from reference import (
    binary_cross_entropy_ref,
    binary_cross_entropy_with_logits_ref,
    col2im_ref,
    conv2d_ref,
    conv_transpose2d_ref,
    im2col_ref,
    leaky_relu_ref,
    linear_ref,
    max_pool2d_backward_ref,
    max_pool2d_ref,
    max_unpool2d_ref,
    mse_loss_ref,
    relu_ref,
    sigmoid_ref,
    tanh_ref,
    upsample_nearest2d_backward_ref,
    upsample_nearest2d_ref,
)


def _plane(rows):
    """A (1, 1, H, W) batch from a nested list."""
    return np.array(rows, dtype=np.float64)[None, None]


# x = 0 .. 15 row-major:
#    0  1  2  3
#    4  5  6  7
#    8  9 10 11
#   12 13 14 15
X16 = _plane(np.arange(16.0).reshape(4, 4))
ONES3 = np.ones((1, 1, 3, 3))


# ---------------------------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------------------------


def test_conv2d_3x3_stride1_pad1_keeps_size():
    y = conv2d_ref(X16, ONES3, b=np.array([0.5]), stride=(1, 1), padding=(1, 1))
    # oh = floor((4 + 2 - 2 - 1) / 1) + 1 = 4
    assert y.shape == (1, 1, 4, 4)
    assert y.dtype == np.float64
    # Each output is its 3x3 neighbourhood sum (zeros outside) plus 0.5:
    # (0,0): 0 + 1 + 4 + 5 = 10
    # (1,1): 0+1+2 + 4+5+6 + 8+9+10 = 45
    # (3,3): 10 + 11 + 14 + 15 = 50
    # (0,3): 2 + 3 + 6 + 7 = 18
    assert y[0, 0, 0, 0] == 10.5
    assert y[0, 0, 1, 1] == 45.5
    assert y[0, 0, 3, 3] == 50.5
    assert y[0, 0, 0, 3] == 18.5


def test_conv2d_3x3_stride2_pad1_gives_2x2():
    y = conv2d_ref(X16, ONES3, stride=(2, 2), padding=(1, 1))
    # oh = floor((4 + 2 - 2 - 1) / 2) + 1 = floor(1.5) + 1 = 2
    # Window (i, j) covers input rows 2i-1 .. 2i+1 and columns 2j-1 .. 2j+1:
    # (0,0): rows 0-1, cols 0-1: 0 + 1 + 4 + 5 = 10
    # (0,1): rows 0-1, cols 1-3: 1+2+3 + 5+6+7 = 24
    # (1,0): rows 1-3, cols 0-1: 4+5 + 8+9 + 12+13 = 51
    # (1,1): rows 1-3, cols 1-3: 5+6+7 + 9+10+11 + 13+14+15 = 90
    y_expected = [[10.0, 24.0], [51.0, 90.0]]
    assert_array_equal(y[0, 0], y_expected)


def test_conv2d_is_cross_correlation_not_convolution():
    # A kernel with a single 1 at its top-left tap (p, q) = (0, 0) reads x_padded[i, j], which is
    # x[i-1, j-1] with padding 1: the image moves one step down-right. A flipped kernel (true
    # convolution) would move it up-left instead.
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 0] = 1.0
    y = conv2d_ref(X16, w, padding=(1, 1))
    y_expected = [
        [0, 0, 0, 0],
        [0, 0, 1, 2],
        [0, 4, 5, 6],
        [0, 8, 9, 10],
    ]
    assert_array_equal(y[0, 0], y_expected)


def test_conv2d_channels_and_dilation():
    # 1x1 kernel mixing 2 channels into 2 outputs: channel 0 holds 1s, channel 1 holds 2s.
    x = np.stack([np.ones((2, 2)), 2 * np.ones((2, 2))])[None]  # (1, 2, 2, 2)
    w = np.array([[1.0, 10.0], [100.0, 1000.0]]).reshape(2, 2, 1, 1)  # w[o, c]
    y = conv2d_ref(x, w)
    # o = 0: 1*1 + 10*2 = 21;  o = 1: 100*1 + 1000*2 = 2100
    assert_array_equal(y[0, 0], np.full((2, 2), 21.0))
    assert_array_equal(y[0, 1], np.full((2, 2), 2100.0))

    # 2x2 ones kernel with dilation 2 on the 0..15 image: oh = floor((4 - 2*1 - 1) / 1) + 1 = 2;
    # window (i, j) reads rows i, i+2 and columns j, j+2.
    y = conv2d_ref(X16, np.ones((1, 1, 2, 2)), dilation=(2, 2))
    # (0,0): 0 + 2 + 8 + 10 = 20     (0,1): 1 + 3 + 9 + 11 = 24
    # (1,0): 4 + 6 + 12 + 14 = 36    (1,1): 5 + 7 + 13 + 15 = 40
    assert_array_equal(y[0, 0], [[20.0, 24.0], [36.0, 40.0]])


# ---------------------------------------------------------------------------------------------
# conv_transpose2d
# ---------------------------------------------------------------------------------------------

# Full scatter of x = [[1, 2], [3, 4]] with a 3x3 ones kernel, stride 2: pixel (i, j) stamps
# x[i, j] onto rows 2i .. 2i+2, cols 2j .. 2j+2. Row/column 2 is where stamps overlap.
#   row 0: 1    1    1+2         2    2
#   row 2: 1+3  1+3  1+2+3+4     2+4  2+4
#   row 3: 3    3    3+4         4    4
FULL_SCATTER = [
    [1.0, 1.0, 3.0, 2.0, 2.0],
    [1.0, 1.0, 3.0, 2.0, 2.0],
    [4.0, 4.0, 10.0, 6.0, 6.0],
    [3.0, 3.0, 7.0, 4.0, 4.0],
    [3.0, 3.0, 7.0, 4.0, 4.0],
]


def test_conv_transpose2d_overlaps_sum():
    x = _plane([[1, 2], [3, 4]])
    y = conv_transpose2d_ref(x, ONES3, stride=(2, 2))
    # oh = (2 - 1)*2 - 0 + 1*(3 - 1) + 0 + 1 = 5
    assert y.shape == (1, 1, 5, 5)
    assert y[0, 0, 2, 2] == 10.0  # centre: 1 + 2 + 3 + 4
    assert y[0, 0, 0, 2] == 3.0  # 1 + 2
    assert y[0, 0, 0, 0] == 1.0  # corner: only x[0, 0]
    assert_array_equal(y[0, 0], FULL_SCATTER)


def test_conv_transpose2d_padding_crops_and_output_padding_extends():
    x = _plane([[1, 2], [3, 4]])
    # padding 1: oh = (2-1)*2 - 2 + 2 + 0 + 1 = 3, the full scatter with its border cut off.
    y = conv_transpose2d_ref(x, ONES3, stride=(2, 2), padding=(1, 1))
    assert_array_equal(y[0, 0], [[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]])
    # output_padding 1 on top: oh = 3 + 1 = 4; the extra bottom row / right column is row 4 /
    # column 4 of the full scatter, which does receive values (it is not zero-filled).
    y = conv_transpose2d_ref(x, ONES3, stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
    y_expected = [
        [1.0, 3.0, 2.0, 2.0],
        [4.0, 10.0, 6.0, 6.0],
        [3.0, 7.0, 4.0, 4.0],
        [3.0, 7.0, 4.0, 4.0],
    ]
    assert_array_equal(y[0, 0], y_expected)


def test_conv_transpose2d_weight_layout_and_bias():
    # Weight layout is (Cin, Cout, kh, kw): Cin = 1, Cout = 2 with the second kernel doubled.
    x = _plane([[1, 2], [3, 4]])
    w = np.stack([np.ones((3, 3)), 2 * np.ones((3, 3))])[None]  # (1, 2, 3, 3)
    y = conv_transpose2d_ref(x, w, b=np.array([0.0, -1.0]), stride=(2, 2))
    assert y.shape == (1, 2, 5, 5)
    assert_array_equal(y[0, 0], FULL_SCATTER)
    assert_array_equal(y[0, 1], 2 * np.array(FULL_SCATTER) - 1)


def test_conv2d_and_conv_transpose2d_are_adjoint():
    # <conv(x), g> == <x, conv_T(g)> with the same weight array (conv's (O, C) is conv_T's
    # (Cin, Cout)). output_padding recovers H: oph = (H + 2ph - dh*(kh-1) - 1) mod sh.
    rng = np.random.default_rng(0)
    h, w_in = 7, 6
    x = rng.standard_normal((2, 3, h, w_in))
    w = rng.standard_normal((4, 3, 3, 2))
    stride, padding, dilation = (2, 3), (1, 1), (2, 1)
    y = conv2d_ref(x, w, stride=stride, padding=padding, dilation=dilation)
    g = rng.standard_normal(y.shape)
    oph = (h + 2 * 1 - 2 * 2 - 1) % 2  # = 4 % 2 = 0
    opw = (w_in + 2 * 1 - 1 * 1 - 1) % 3  # = 6 % 3 = 0
    xt = conv_transpose2d_ref(
        g, w, stride=stride, padding=padding, output_padding=(oph, opw), dilation=dilation
    )
    assert xt.shape == x.shape
    assert_allclose(np.sum(y * g), np.sum(x * xt), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# max pooling / unpooling
# ---------------------------------------------------------------------------------------------


def test_max_pool2d_2x2_values_and_indices():
    x = _plane(
        [
            [1, 5, 2, 0],
            [3, 4, 8, 6],
            [7, 2, 1, 9],
            [0, 6, 3, 4],
        ]
    )
    y, idx = max_pool2d_ref(x, (2, 2), (2, 2))
    # top-left {1,5,3,4}: 5 at (0,1) -> 0*4+1 = 1     top-right {2,0,8,6}: 8 at (1,2) -> 6
    # bottom-left {7,2,0,6}: 7 at (2,0) -> 8          bottom-right {1,9,3,4}: 9 at (2,3) -> 11
    assert_array_equal(y[0, 0], [[5.0, 8.0], [7.0, 9.0]])
    assert_array_equal(idx[0, 0], [[1, 6], [8, 11]])
    assert idx.dtype == np.int64


def test_max_pool2d_ties_go_to_first_in_scan_order():
    # Scan order is (0,0), (0,1), (1,0), (1,1); the 7 at (0,1) is met first and the later 7s
    # are not strictly greater, so the index is 1 (">=" would give 3).
    y, idx = max_pool2d_ref(_plane([[1, 7], [7, 7]]), (2, 2), (2, 2))
    assert y[0, 0, 0, 0] == 7.0
    assert idx[0, 0, 0, 0] == 1


def test_max_pool2d_nan_is_the_maximum_and_first_nan_wins():
    nan = math.nan
    # [[9, nan], [nan, 0]]: the NaN at (0,1) beats 9, and the later NaN at (1,0) does not win.
    y, idx = max_pool2d_ref(_plane([[9, nan], [nan, 0]]), (2, 2), (2, 2))
    assert math.isnan(y[0, 0, 0, 0])
    assert idx[0, 0, 0, 0] == 1


def test_max_pool2d_padding_is_minus_infinity():
    # All values negative; padding 1, kernel 2, stride 2: oh = floor((2 + 2 - 1 - 1)/2) + 1 = 2.
    # Each window holds one real pixel and three padded ones; zero padding would win with 0.
    y, idx = max_pool2d_ref(_plane([[-5, -6], [-7, -8]]), (2, 2), (2, 2), padding=(1, 1))
    assert_array_equal(y[0, 0], [[-5.0, -6.0], [-7.0, -8.0]])
    assert_array_equal(idx[0, 0], [[0, 1], [2, 3]])


def test_max_pool2d_ceil_mode_sizes():
    x = _plane([[1, 2, 3, 4, 5]])  # (1, 1, 1, 5)
    # W = 5, k = 2, s = 2: floor mode ow = floor(3/2) + 1 = 2; ceil mode floor(4/2) + 1 = 3
    # and (3-1)*2 = 4 < 5, so the last window (column 4 alone) stays.
    y, idx = max_pool2d_ref(x, (1, 2), (1, 2))
    assert_array_equal(y[0, 0], [[2.0, 4.0]])
    y, idx = max_pool2d_ref(x, (1, 2), (1, 2), ceil_mode=True)
    assert_array_equal(y[0, 0], [[2.0, 4.0, 5.0]])
    assert_array_equal(idx[0, 0], [[1, 3, 4]])
    # W = 3, k = 2, s = 2, p = 1, ceil: floor((3 + 2 - 1 - 1 + 1)/2) + 1 = 3, but
    # (3-1)*2 = 4 >= 3 + 1, a window starting in the right padding, so ow = 2.
    # Windows: columns -1..0 -> {4}; columns 1..2 -> {1, 6}.
    y, idx = max_pool2d_ref(_plane([[4, 1, 6]]), (1, 2), (1, 2), padding=(0, 1), ceil_mode=True)
    assert_array_equal(y[0, 0], [[4.0, 6.0]])
    assert_array_equal(idx[0, 0], [[0, 2]])


def test_max_pool2d_backward_sums_shared_argmax():
    # Kernel 2, stride 1 on a 3x3 plane: all four windows contain the 9 at (1,1), index 4.
    x = _plane([[1, 2, 1], [2, 9, 2], [1, 2, 1]])
    y, idx = max_pool2d_ref(x, (2, 2), (1, 1))
    assert_array_equal(idx[0, 0], [[4, 4], [4, 4]])
    gx = max_pool2d_backward_ref(_plane([[1, 2], [3, 4]]), idx, (3, 3))
    # gx[1,1] = 1 + 2 + 3 + 4 = 10, everything else 0
    assert_array_equal(gx[0, 0], [[0.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 0.0]])


def test_max_unpool2d_duplicate_indices_sum():
    x = _plane([[1, 2], [3, 4]])
    idx = np.array([[0, 0], [5, 3]], dtype=np.int64)[None, None]
    y = max_unpool2d_ref(x, idx, (3, 3))
    # index 0 -> (0,0) gets 1 + 2 = 3; index 5 -> (1,2) gets 3; index 3 -> (1,0) gets 4
    assert_array_equal(y[0, 0], [[3.0, 0.0, 0.0], [4.0, 0.0, 3.0], [0.0, 0.0, 0.0]])


# ---------------------------------------------------------------------------------------------
# nearest upsampling
# ---------------------------------------------------------------------------------------------


def test_upsample_nearest2d_times_two():
    y = upsample_nearest2d_ref(_plane([[1, 2], [3, 4]]), (4, 4))
    # n_out == 2 * n_in: source = dst // 2 on both axes
    y_expected = [
        [1.0, 1.0, 2.0, 2.0],
        [1.0, 1.0, 2.0, 2.0],
        [3.0, 3.0, 4.0, 4.0],
        [3.0, 3.0, 4.0, 4.0],
    ]
    assert_array_equal(y[0, 0], y_expected)
    # Backward: every input pixel feeds a 2x2 block, so ones come back as 4s.
    gx = upsample_nearest2d_backward_ref(np.ones((1, 1, 4, 4)), (2, 2), (4, 4))
    assert_array_equal(gx[0, 0], np.full((2, 2), 4.0))


def test_upsample_nearest2d_non_integer_size():
    # rows 3 -> 5: scale = 3/5 = 0.6 (float32 0.6000000238...), floor(i * 0.6) for i = 0..4:
    #   0, 0.6, 1.2, 1.8, 2.4 -> sources [0, 0, 1, 1, 2]
    # cols 2 -> 3: scale = 2/3 (float32 0.6666667), floor(j * 0.667) for j = 0..2:
    #   0, 0.667, 1.333 -> sources [0, 0, 1]
    x = _plane([[1, 2], [3, 4], [5, 6]])
    y = upsample_nearest2d_ref(x, (5, 3))
    y_expected = [
        [1.0, 1.0, 2.0],
        [1.0, 1.0, 2.0],
        [3.0, 3.0, 4.0],
        [3.0, 3.0, 4.0],
        [5.0, 5.0, 6.0],
    ]
    assert_array_equal(y[0, 0], y_expected)
    # Backward with ones: row sources [0,0,1,1,2] give row counts [2, 2, 1], column sources
    # [0,0,1] give column counts [2, 1]; each gx pixel receives row count * column count.
    gx = upsample_nearest2d_backward_ref(np.ones((1, 1, 5, 3)), (3, 2), (5, 3))
    assert_array_equal(gx[0, 0], [[4.0, 2.0], [4.0, 2.0], [2.0, 1.0]])


def test_upsample_nearest2d_scale_factor_changes_sources():
    # 3 -> 4 with scale_factor 1.6 (floor(3 * 1.6) = 4): scale = 1/1.6 = 0.625, sources
    # floor(0, 0.625, 1.25, 1.875) = [0, 0, 1, 1]. From the size alone the scale would be
    # 3/4 = 0.75 and the sources floor(0, 0.75, 1.5, 2.25) = [0, 0, 1, 2].
    x = _plane([[10], [20], [30]])  # (1, 1, 3, 1)
    y = upsample_nearest2d_ref(x, (4, 1), scale_factor=(1.6, 1.0))
    assert_array_equal(y[0, 0, :, 0], [10.0, 10.0, 20.0, 20.0])
    y = upsample_nearest2d_ref(x, (4, 1))
    assert_array_equal(y[0, 0, :, 0], [10.0, 10.0, 20.0, 30.0])


def test_upsample_nearest2d_uses_float32_arithmetic():
    # 2 -> 82 columns: scale = float32(2) / float32(82) = float32(1/41) = 0.024390243, which is
    # just below 1/41; float32(41) * that = 0.99999994 in float32, so floor gives source 0 for
    # column 41. Exact arithmetic (41 * 2/82 = 1) and float64 would both say source 1.
    x = _plane([[1, 2]])
    y = upsample_nearest2d_ref(x, (1, 82))
    assert y[0, 0, 0, 40] == 1.0
    assert y[0, 0, 0, 41] == 1.0
    assert y[0, 0, 0, 42] == 2.0


# ---------------------------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------------------------


def test_im2col_by_hand():
    # x channel 0 = 0..8 as 3x3, channel 1 = channel 0 + 10; kernel 2x2, stride 1, no padding:
    # oh = ow = 2, so 4 columns (i*2 + j) and 2*2*2 = 8 rows ((c*2 + p)*2 + q).
    #   0 1 2
    #   3 4 5     row (p,q) = (0,0) reads x[i, j]     over (i,j) = (0,0),(0,1),(1,0),(1,1)
    #   6 7 8     row (p,q) = (1,1) reads x[i+1, j+1]
    c0 = np.arange(9.0).reshape(3, 3)
    x = np.stack([c0, c0 + 10])[None]  # (1, 2, 3, 3)
    cols = im2col_ref(x, (2, 2), (1, 1), (0, 0), (1, 1))
    assert cols.shape == (1, 8, 4)
    c0_rows = [
        [0.0, 1.0, 3.0, 4.0],  # (p,q) = (0,0)
        [1.0, 2.0, 4.0, 5.0],  # (0,1)
        [3.0, 4.0, 6.0, 7.0],  # (1,0)
        [4.0, 5.0, 7.0, 8.0],  # (1,1)
    ]
    assert_array_equal(cols[0, :4], c0_rows)
    assert_array_equal(cols[0, 4:], np.array(c0_rows) + 10)


def test_im2col_padding_reads_zeros():
    # 2x2 input [[1,2],[3,4]], kernel 3x3, padding 1: oh = ow = floor((2+2-2-1)/1) + 1 = 2.
    # Row 0 is tap (0,0), reading x_padded[i, j] = x[i-1, j-1]: only output (1,1) sees x[0,0].
    cols = im2col_ref(_plane([[1, 2], [3, 4]]), (3, 3), (1, 1), (1, 1), (1, 1))
    assert cols.shape == (1, 9, 4)
    assert_array_equal(cols[0, 0], [0.0, 0.0, 0.0, 1.0])
    # Row 4 is the centre tap (1,1): it reads x[i, j] itself.
    assert_array_equal(cols[0, 4], [1.0, 2.0, 3.0, 4.0])


def test_col2im_counts_window_coverage():
    # Folding all-ones columns (3x3 input, kernel 2x2, stride 1) counts the windows covering
    # each pixel: corners 1, edges 2, centre 4.
    x = col2im_ref(np.ones((1, 4, 4)), (1, 1, 3, 3), (2, 2), (1, 1), (0, 0), (1, 1))
    assert_array_equal(x[0, 0], [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])


def test_im2col_col2im_are_adjoint():
    # <im2col(x), c> == <x, col2im(c)> for random float64 data, with stride, padding and dilation
    # all non-trivial and different per axis.
    rng = np.random.default_rng(1)
    shape = (2, 3, 7, 8)
    kernel, stride, padding, dilation = (3, 2), (2, 1), (1, 2), (1, 2)
    x = rng.standard_normal(shape)
    cols = im2col_ref(x, kernel, stride, padding, dilation)
    c = rng.standard_normal(cols.shape)
    xc = col2im_ref(c, shape, kernel, stride, padding, dilation)
    assert xc.shape == shape
    assert_allclose(np.sum(cols * c), np.sum(x * xc), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# linear and elementwise
# ---------------------------------------------------------------------------------------------


def test_linear():
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (out=3, in=2)
    b = np.array([0.0, 0.0, 10.0])
    # row 0: [1, 2, 1+2+10];  row 1: [3, -1, 3-1+10]
    assert_array_equal(linear_ref(x, w, b), [[1.0, 2.0, 13.0], [3.0, -1.0, 12.0]])
    assert linear_ref(np.ones((2, 4, 2)), w).shape == (2, 4, 3)


def test_activations():
    assert_array_equal(relu_ref([-1.0, 0.0, 2.0]), [0.0, 0.0, 2.0])
    assert math.isnan(relu_ref([math.nan])[0])
    # leaky: -2 * 0.1 = -0.2; positives pass
    assert_allclose(leaky_relu_ref([-2.0, 3.0], negative_slope=0.1), [-0.2, 3.0], rtol=1e-15)
    assert_allclose(leaky_relu_ref([-100.0]), [-1.0], rtol=1e-15)  # default slope 0.01
    # sigmoid(0) = 1/2; sigmoid(ln 3) = 1/(1 + 1/3) = 3/4; +-1000 saturate without overflow
    s = sigmoid_ref([0.0, math.log(3.0), 1000.0, -1000.0])
    assert_allclose(s, [0.5, 0.75, 1.0, 0.0], rtol=1e-15, atol=0)
    # tanh(ln 2) = (e^(2 ln 2) - 1)/(e^(2 ln 2) + 1) = (4 - 1)/(4 + 1) = 0.6
    assert_allclose(tanh_ref([0.0, math.log(2.0)]), [0.0, 0.6], rtol=1e-15)


def test_mse_loss():
    x = [1.0, 2.0, 3.0]
    t = [1.0, 0.0, 0.0]
    # squared errors 0, 4, 9: sum 13, mean 13/3
    assert_array_equal(mse_loss_ref(x, t, reduction="none"), [0.0, 4.0, 9.0])
    assert mse_loss_ref(x, t, reduction="sum") == 13.0
    assert_allclose(mse_loss_ref(x, t), 13.0 / 3.0, rtol=1e-15)


def test_binary_cross_entropy():
    # x = 0.5, t = 1: -log(0.5) = ln 2;  x = 0.25, t = 0: -log(0.75) = ln(4/3)
    # mean = (ln 2 + ln(4/3)) / 2 = ln(8/3) / 2
    loss = binary_cross_entropy_ref([0.5, 0.25], [1.0, 0.0])
    assert_allclose(loss, math.log(8.0 / 3.0) / 2.0, rtol=1e-14)
    # weight [2, 0]: [2 ln 2, 0]
    losses = binary_cross_entropy_ref([0.5, 0.25], [1.0, 0.0], weight=[2.0, 0.0], reduction="none")
    assert_allclose(losses, [2.0 * math.log(2.0), 0.0], rtol=1e-15)
    # Confidently wrong: log(0) is clamped to -100, so each loss is exactly 100.
    losses = binary_cross_entropy_ref([0.0, 1.0], [1.0, 0.0], reduction="none")
    assert_array_equal(losses, [100.0, 100.0])
    # Confidently right: t * log(1) + 0 * (-100) = 0
    assert binary_cross_entropy_ref([1.0, 0.0], [1.0, 0.0], reduction="sum") == 0.0


def test_binary_cross_entropy_with_logits():
    # z = 0, t = 1: max(0,0) - 0 + log1p(e^0) = ln 2
    # z = ln 3, t = 0: ln 3 - 0 + log1p(1/3) = ln 3 + ln(4/3) = ln 4   (= -log(1 - 3/4))
    # z = -1000, t = 1: 0 + 1000 + log1p(e^-1000) = 1000 (e^-1000 underflows to 0)
    # z = 1000, t = 1: 1000 - 1000 + 0 = 0
    z = [0.0, math.log(3.0), -1000.0, 1000.0]
    t = [1.0, 0.0, 1.0, 1.0]
    losses = binary_cross_entropy_with_logits_ref(z, t, reduction="none")
    assert_allclose(losses, [math.log(2.0), math.log(4.0), 1000.0, 0.0], rtol=1e-14, atol=0)
    total = binary_cross_entropy_with_logits_ref(z, t, weight=[1.0, 0.5, 0.0, 1.0], reduction="sum")
    # ln 2 + 0.5 * ln 4 + 0 + 0 = 2 ln 2
    assert_allclose(total, 2.0 * math.log(2.0), rtol=1e-14)
