"""Tensor and the reverse-mode engine: construction, operators, broadcasting, the backward walk.

Every expected gradient is written out from the calculus (d(a*b)/da = b, a broadcast operand
sums the upstream gradient over the axes it was copied along, ...) and computed with plain NumPy
in the test; npae.gradcheck then checks the same ops against central differences in float64.
"""

import gc
import math
import weakref

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import npae
import npae.functional as F
from npae import Tensor


def _leaf(array):
    """A float64 leaf that requires grad (float64: hand formulas compare to ~1e-12)."""
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def _uniform(rng, shape, lo=0.5, hi=1.5):
    """Values bounded away from 0 (safe for /, log, sqrt and ** with a tensor exponent)."""
    return rng.uniform(lo, hi, size=shape)


# ---------------------------------------------------------------------------------------------
# Construction and plain attributes
# ---------------------------------------------------------------------------------------------


def test_python_list_becomes_float32():
    t = Tensor([[1.0, 2.0, 3.0]])
    assert isinstance(t.data, np.ndarray)
    assert t.dtype == np.float32
    assert t.shape == (1, 3)
    assert t.ndim == 2
    assert_array_equal(t.data, [[1.0, 2.0, 3.0]])


def test_python_float_becomes_float32_scalar():
    t = Tensor(2.5)
    assert t.dtype == np.float32
    assert t.shape == ()
    assert t.ndim == 0
    assert t.item() == 2.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ndarray_keeps_its_dtype(dtype):
    data = np.arange(6, dtype=dtype).reshape(2, 3)
    t = Tensor(data)
    assert t.dtype == dtype
    assert t.shape == (2, 3)
    assert_array_equal(t.data, data)


def test_new_tensor_has_no_grad_and_does_not_require_one_by_default():
    t = Tensor(np.ones(3))
    assert t.grad is None
    assert t.requires_grad is False
    assert _leaf(np.ones(3)).requires_grad is True


def test_numpy_returns_the_data_and_item_a_python_number():
    data = np.array([[4.0]])
    t = Tensor(data)
    assert t.numpy() is data
    assert t.item() == 4.0
    assert isinstance(t.item(), float)


def test_detach_keeps_the_values_and_cuts_the_graph():
    x = _leaf([1.0, 2.0, 3.0])
    c = x.detach()
    assert c.requires_grad is False
    assert_array_equal(c.data, x.data)
    # d/dx sum(c * x) with c held constant is c, not the 2x that sum(x * x) would give
    (c * x).sum().backward()
    assert_allclose(x.grad, [1.0, 2.0, 3.0])
    assert c.grad is None


# ---------------------------------------------------------------------------------------------
# backward(): arguments and the shape/dtype of .grad
# ---------------------------------------------------------------------------------------------


def test_backward_without_grad_needs_a_single_element_output():
    x = _leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"single-element"):
        (x * 2.0).backward()


def test_backward_without_grad_works_for_a_one_element_non_scalar():
    x = _leaf([[3.0]])
    (x * x).backward()  # shape (1, 1): one element, so d/dx = 2x needs no explicit grad
    assert_allclose(x.grad, [[6.0]])


def test_backward_rejects_a_grad_of_the_wrong_shape():
    x = _leaf([1.0, 2.0, 3.0])
    y = x * 2.0
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        y.backward(np.ones(2))


def test_backward_with_an_explicit_grad_is_a_vector_jacobian_product():
    x = _leaf([1.0, 2.0, 3.0])
    g = np.array([1.0, -2.0, 0.5])
    (x * x).backward(g)
    assert_allclose(x.grad, 2 * np.array([1.0, 2.0, 3.0]) * g)


def test_backward_on_a_tensor_that_needs_no_grad_raises():
    y = Tensor(np.ones(2)) * 3.0
    with pytest.raises(RuntimeError, match=r"does not require grad"):
        y.sum().backward()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_has_the_shape_and_dtype_of_the_data(dtype):
    x = Tensor(np.ones((2, 3), dtype=dtype), requires_grad=True)
    (x * 2.0).sum().backward()
    assert isinstance(x.grad, np.ndarray)
    assert x.grad.shape == (2, 3)
    assert x.grad.dtype == dtype


# ---------------------------------------------------------------------------------------------
# no_grad
# ---------------------------------------------------------------------------------------------


def test_no_grad_records_no_graph():
    x = _leaf([1.0, 2.0])
    with npae.no_grad():
        assert npae.is_grad_enabled() is False
        y = (x * 3.0).exp()
    assert npae.is_grad_enabled() is True
    assert y.requires_grad is False
    assert y.is_leaf
    with pytest.raises(RuntimeError):
        y.sum().backward()
    assert x.grad is None


def test_no_grad_restores_grad_mode_after_an_exception():
    with pytest.raises(KeyError), npae.no_grad():
        raise KeyError("raised inside the block")
    assert npae.is_grad_enabled() is True
    x = _leaf([1.0])
    assert (x * 2.0).requires_grad is True


# ---------------------------------------------------------------------------------------------
# Binary operators: values and hand-derived, un-broadcast gradients
# ---------------------------------------------------------------------------------------------


def test_add_broadcast_gradient_sums_over_the_copied_axes():
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal((3, 1, 4)), rng.standard_normal((2, 4))
    a, b = _leaf(a_np), _leaf(b_np)
    y = a + b
    assert y.shape == (3, 2, 4)
    assert_allclose(y.data, a_np + b_np)
    g = rng.standard_normal((3, 2, 4))
    y.backward(g)
    # a was copied along axis 1; b along the new leading axis 0
    assert_allclose(a.grad, g.sum(axis=1, keepdims=True))
    assert_allclose(b.grad, g.sum(axis=0))


def test_sub_broadcast_gradient_negates_the_subtrahend():
    rng = np.random.default_rng(1)
    a_np, b_np = rng.standard_normal((4,)), rng.standard_normal((3, 4))
    a, b = _leaf(a_np), _leaf(b_np)
    y = a - b
    assert_allclose(y.data, a_np - b_np)
    g = rng.standard_normal((3, 4))
    y.backward(g)
    assert_allclose(a.grad, g.sum(axis=0))
    assert_allclose(b.grad, -g)


def test_mul_broadcast_gradient_is_the_other_operand():
    rng = np.random.default_rng(2)
    a_np, b_np = rng.standard_normal((4,)), rng.standard_normal((3, 4))
    a, b = _leaf(a_np), _leaf(b_np)
    y = a * b
    assert_allclose(y.data, a_np * b_np)
    g = rng.standard_normal((3, 4))
    y.backward(g)
    assert_allclose(a.grad, (g * b_np).sum(axis=0))
    assert_allclose(b.grad, g * a_np)


def test_div_broadcast_gradient():
    rng = np.random.default_rng(3)
    a_np, b_np = rng.standard_normal((3, 1, 4)), _uniform(rng, (2, 4))
    a, b = _leaf(a_np), _leaf(b_np)
    y = a / b
    assert_allclose(y.data, a_np / b_np)
    g = rng.standard_normal((3, 2, 4))
    y.backward(g)
    # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
    assert_allclose(a.grad, (g / b_np).sum(axis=1, keepdims=True))
    assert_allclose(b.grad, (-g * a_np / b_np**2).sum(axis=0))


def test_scalar_tensor_operand_gets_the_sum_of_all_gradients():
    s = _leaf(2.0)
    x = _leaf([[1.0, 2.0], [3.0, 4.0]])
    (s * x).sum().backward()
    assert s.grad.shape == ()
    assert_allclose(s.grad, 10.0)  # sum of x
    assert_allclose(x.grad, np.full((2, 2), 2.0))


def test_pow_with_a_number_exponent():
    x = _leaf([1.0, 2.0, -3.0])
    y = x**3
    assert_allclose(y.data, [1.0, 8.0, -27.0])
    y.backward(np.ones(3))
    assert_allclose(x.grad, [3.0, 12.0, 27.0])  # 3 x^2


def test_pow_with_a_tensor_exponent_differentiates_both_sides():
    a = _leaf([2.0, 3.0])
    b = _leaf([3.0, 0.5])
    y = a**b
    assert_allclose(y.data, [8.0, math.sqrt(3.0)])
    y.backward(np.ones(2))
    # d(a^b)/da = b a^(b-1);  d(a^b)/db = a^b log a
    assert_allclose(a.grad, [3.0 * 4.0, 0.5 / math.sqrt(3.0)])
    assert_allclose(b.grad, [8.0 * math.log(2.0), math.sqrt(3.0) * math.log(3.0)])


def test_pow_with_a_broadcast_tensor_exponent():
    a = _leaf([[1.5, 2.0, 2.5], [3.0, 0.5, 1.0]])
    b = _leaf([2.0, 1.0, 3.0])
    (a**b).sum().backward()
    a_np, b_np = a.data, b.data
    assert_allclose(a.grad, b_np * a_np ** (b_np - 1))
    assert_allclose(b.grad, (a_np**b_np * np.log(a_np)).sum(axis=0))


def test_pow_with_exponent_zero_has_zero_gradient_even_at_zero():
    # x^0 = 1 is constant, so its derivative is 0 everywhere, x = 0 included (PyTorch masks
    # exponent == 0 to a zero gradient rather than computing 0 * 0^-1 = 0 * inf = nan)
    x = _leaf([0.0, 2.0])
    (x**0).sum().backward()
    assert_array_equal(x.grad, [0.0, 0.0])


def test_pow_with_a_tensor_exponent_at_base_zero_follows_pytorch():
    # PyTorch: d(a^b)/da is 0 where b == 0; d(a^b)/db = a^b log a, taken as 0 where a == 0 and
    # b >= 0 (a^b is 0 for b > 0 and 1 for b == 0, but never -inf)
    a = _leaf([0.0, 0.0, 2.0])
    b = _leaf([0.0, 2.0, 0.0])
    y = a**b
    assert_array_equal(y.data, [1.0, 0.0, 1.0])
    y.sum().backward()
    assert_array_equal(a.grad, [0.0, 0.0, 0.0])  # b a^(b-1): 0 (masked), 2 * 0, 0 (masked)
    assert_allclose(b.grad, [0.0, 0.0, np.log(2.0)])


def test_unary_minus():
    x = _leaf([1.0, -2.0])
    y = -x
    assert_allclose(y.data, [-1.0, 2.0])
    y.backward(np.array([3.0, 5.0]))
    assert_allclose(x.grad, [-3.0, -5.0])


# ---------------------------------------------------------------------------------------------
# Reflected operators: a Python number or an ndarray on the left
# ---------------------------------------------------------------------------------------------

X3 = [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    "op, value, grad",
    [
        (lambda x: 2 + x, lambda v: 2 + v, lambda v: np.ones(3)),
        (lambda x: 2 - x, lambda v: 2 - v, lambda v: -np.ones(3)),
        (lambda x: 2 * x, lambda v: 2 * v, lambda v: np.full(3, 2.0)),
        (lambda x: 2 / x, lambda v: 2 / v, lambda v: -2 / v**2),
        (lambda x: 2**x, lambda v: 2**v, lambda v: 2**v * math.log(2.0)),
    ],
    ids=["radd", "rsub", "rmul", "rtruediv", "rpow"],
)
def test_python_number_on_the_left(op, value, grad):
    x = _leaf(X3)
    y = op(x)
    assert isinstance(y, Tensor)
    assert y.dtype == np.float64
    v = np.array(X3)
    assert_allclose(y.data, value(v))
    y.sum().backward()
    assert_allclose(x.grad, grad(v))


@pytest.mark.parametrize(
    "op, value, grad",
    [
        (lambda a, x: a + x, lambda a, v: a + v, lambda a, v: np.ones(3)),
        (lambda a, x: a - x, lambda a, v: a - v, lambda a, v: -np.ones(3)),
        (lambda a, x: a * x, lambda a, v: a * v, lambda a, v: a),
        (lambda a, x: a / x, lambda a, v: a / v, lambda a, v: -a / v**2),
        (lambda a, x: a**x, lambda a, v: a**v, lambda a, v: a**v * np.log(a)),
    ],
    ids=["radd", "rsub", "rmul", "rtruediv", "rpow"],
)
def test_ndarray_on_the_left(op, value, grad):
    a = np.array([1.5, 2.0, 3.0])
    x = _leaf(X3)
    y = op(a, x)
    assert isinstance(y, Tensor), "ndarray op Tensor must defer to the Tensor's reflected op"
    v = np.array(X3)
    assert_allclose(y.data, value(a, v))
    y.sum().backward()
    assert_allclose(x.grad, grad(a, v))


def test_ndarray_ones_times_tensor():
    x = _leaf([1.0, 2.0, 3.0])
    y = np.ones(3) * x
    assert isinstance(y, Tensor)
    y.backward(np.array([1.0, 2.0, 3.0]))
    assert_allclose(x.grad, [1.0, 2.0, 3.0])


def test_ndarray_matmul_tensor():
    m = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    x = _leaf([1.0, -1.0])
    y = m @ x
    assert isinstance(y, Tensor)
    assert_allclose(y.data, [-1.0, -1.0, -1.0])
    g = np.array([1.0, 2.0, 3.0])
    y.backward(g)
    assert_allclose(x.grad, m.T @ g)  # [22, 28]


def test_python_number_keeps_a_float32_tensor_float32():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    for y in (x * 2, 2 * x, x + 0.5, 1 - x, x / 3, 3 / x, x**2, 2**x):
        assert y.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# Elementwise functions
# ---------------------------------------------------------------------------------------------


def test_exp_log_sqrt_values_and_gradients():
    v = np.array([0.25, 1.0, 4.0])
    for op, value, grad in [
        (Tensor.exp, np.exp(v), np.exp(v)),
        (Tensor.log, np.log(v), 1 / v),
        (Tensor.sqrt, [0.5, 1.0, 2.0], [1.0, 0.5, 0.25]),  # 1 / (2 sqrt(v))
    ]:
        x = _leaf(v)
        y = op(x)
        assert_allclose(y.data, value)
        y.sum().backward()
        assert_allclose(x.grad, grad)


def test_functional_exp_log_sqrt_match_the_methods():
    x = _leaf([0.25, 4.0])
    assert_allclose(F.exp(x).data, np.exp([0.25, 4.0]))
    assert_allclose(F.log(x).data, np.log([0.25, 4.0]))
    assert_allclose(F.sqrt(x).data, [0.5, 2.0])


def test_clip_passes_the_gradient_inside_the_bounds_inclusive():
    x = _leaf([-2.0, -1.0, 0.0, 1.0, 2.0])
    y = x.clip(-1.0, 1.0)
    assert_allclose(y.data, [-1.0, -1.0, 0.0, 1.0, 1.0])
    y.backward(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    # PyTorch's clamp lets the gradient through at the bounds themselves
    assert_allclose(x.grad, [0.0, 2.0, 3.0, 4.0, 0.0])


def test_clip_with_one_bound():
    x = _leaf([-2.0, 0.5, 3.0])
    lo = x.clip(min=0.0)
    assert_allclose(lo.data, [0.0, 0.5, 3.0])
    lo.sum().backward()
    assert_allclose(x.grad, [0.0, 1.0, 1.0])
    x.grad = None
    hi = F.clip(x, max=1.0)
    assert_allclose(hi.data, [-2.0, 0.5, 1.0])
    hi.sum().backward()
    assert_allclose(x.grad, [1.0, 1.0, 0.0])


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "axis, keepdims, out_shape, expand",
    [
        (None, False, (), (None, None, None)),
        (None, True, (1, 1, 1), (0, 1, 2)),
        (1, False, (2, 4), (slice(None), None, slice(None))),
        (-1, False, (2, 3), (slice(None), slice(None), None)),
        ((0, 2), False, (3,), (None, slice(None), None)),
        ((0, 2), True, (1, 3, 1), (slice(None),) * 3),
    ],
)
def test_sum_and_mean_gradients_spread_over_the_reduced_axes(axis, keepdims, out_shape, expand):
    rng = np.random.default_rng(4)
    v = rng.standard_normal((2, 3, 4))
    full = (2, 3, 4)
    if axis is None:
        count = 24
    else:
        axes = (axis,) if isinstance(axis, int) else axis
        count = int(np.prod([full[a] for a in axes]))
    g = rng.standard_normal(out_shape)
    # put the reduced axes back as size 1, then every summed element gets its g
    g_back = np.broadcast_to(g if keepdims or axis is None else g[expand], full)

    x = _leaf(v)
    s = x.sum(axis=axis, keepdims=keepdims)
    assert s.shape == out_shape
    assert_allclose(s.data, v.sum(axis=axis, keepdims=keepdims))
    s.backward(g)
    assert_allclose(x.grad, g_back)

    x = _leaf(v)
    m = x.mean(axis=axis, keepdims=keepdims)
    assert m.shape == out_shape
    assert_allclose(m.data, v.mean(axis=axis, keepdims=keepdims))
    m.backward(g)
    assert_allclose(x.grad, g_back / count)


def test_sum_and_mean_of_a_zero_dim_tensor():
    # a reduction of a scalar (say loss.sum() on a 'mean'-reduced loss) is the identity
    for reduce in (Tensor.sum, Tensor.mean):
        x = _leaf(3.0)
        y = reduce(x)
        assert y.shape == ()
        assert y.item() == 3.0
        y.backward()
        assert x.grad.shape == ()
        assert_array_equal(x.grad, 1.0)


def test_sum_of_a_scalar_loss():
    x = _leaf([0.5, 2.0])
    F.mse_loss(x, Tensor(np.zeros(2))).sum().backward()
    assert_allclose(x.grad, [0.5, 2.0])  # d/dx mean(x^2) = 2x / 2


# ---------------------------------------------------------------------------------------------
# Shape ops
# ---------------------------------------------------------------------------------------------


def test_reshape_gradient_is_reshaped_back():
    x = _leaf(np.arange(6.0))
    for y in (x.reshape(2, 3), x.reshape((3, -1)), x.view(1, 6)):
        assert y.data.size == 6
    y = x.reshape(2, 3)
    assert_array_equal(y.data, [[0, 1, 2], [3, 4, 5]])
    y.backward(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    assert_allclose(x.grad, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


def test_transpose_swaps_two_dims_like_pytorch():
    v = np.arange(24.0).reshape(2, 3, 4)
    x = _leaf(v)
    y = x.transpose(0, 2)
    assert y.shape == (4, 3, 2)
    assert y.data[3, 1, 0] == v[0, 1, 3]
    g = np.arange(24.0).reshape(4, 3, 2) * 10
    y.backward(g)
    assert x.grad[0, 1, 3] == g[3, 1, 0]
    assert_allclose(x.grad, np.swapaxes(g, 0, 2))


def test_transpose_with_negative_dims():
    x = _leaf(np.zeros((2, 3, 4)))
    assert x.transpose(-1, 1).shape == (2, 4, 3)


def test_permute_gradient_applies_the_inverse_permutation():
    v = np.arange(24.0).reshape(2, 3, 4)
    x = _leaf(v)
    y = x.permute(2, 0, 1)
    assert y.shape == (4, 2, 3)
    assert y.data[3, 1, 2] == v[1, 2, 3]  # y[i, j, k] = x[j, k, i]
    assert x.permute((2, 0, 1)).shape == (4, 2, 3)
    g = np.random.default_rng(5).standard_normal((4, 2, 3))
    y.backward(g)
    # x.grad[j, k, i] = g[i, j, k]: the inverse of (2, 0, 1) is (1, 2, 0)
    assert_allclose(x.grad, g.transpose(1, 2, 0))
    assert x.grad[1, 2, 3] == g[3, 1, 2]


def test_dot_T_transposes_a_matrix():
    v = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    x = _leaf(v)
    y = x.T
    assert_array_equal(y.data, [[1, 4], [2, 5], [3, 6]])
    y.backward(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert_allclose(x.grad, [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]])


def test_slice_gradient_lands_in_the_sliced_rows():
    x = _leaf(np.arange(12.0).reshape(4, 3))
    y = x[1:3]
    assert_array_equal(y.data, [[3, 4, 5], [6, 7, 8]])
    y.backward(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    assert_allclose(x.grad, [[0, 0, 0], [1, 2, 3], [4, 5, 6], [0, 0, 0]])


def test_column_index_gradient_lands_in_the_column():
    x = _leaf(np.arange(12.0).reshape(4, 3))
    y = x[:, 1]
    assert_array_equal(y.data, [1, 4, 7, 10])
    y.backward(np.array([1.0, 2.0, 3.0, 4.0]))
    assert_allclose(x.grad, [[0, 1, 0], [0, 2, 0], [0, 3, 0], [0, 4, 0]])


def test_integer_array_index_that_repeats_an_element_accumulates():
    x = _leaf([10.0, 20.0, 30.0])
    y = x[np.array([0, 0, 2, 0])]
    assert_array_equal(y.data, [10, 10, 30, 10])
    y.backward(np.array([1.0, 10.0, 100.0, 1000.0]))
    # element 0 was picked three times: 1 + 10 + 1000
    assert_allclose(x.grad, [1011.0, 0.0, 100.0])


def test_list_index_that_repeats_an_element_accumulates():
    x = _leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x[[1, 1]]
    y.sum().backward()
    assert_allclose(x.grad, [[0.0, 0.0], [2.0, 2.0]])


# ---------------------------------------------------------------------------------------------
# Matrix products
# ---------------------------------------------------------------------------------------------


def test_matmul_vector_vector():
    a, b = _leaf([1.0, 2.0, 3.0]), _leaf([4.0, -5.0, 6.0])
    y = a @ b
    assert y.shape == ()
    assert_allclose(y.data, 4 - 10 + 18)
    y.backward(np.array(2.0))
    assert_allclose(a.grad, [8.0, -10.0, 12.0])
    assert_allclose(b.grad, [2.0, 4.0, 6.0])


def test_matmul_vector_matrix():
    rng = np.random.default_rng(6)
    a_np, b_np, g = rng.standard_normal(3), rng.standard_normal((3, 2)), rng.standard_normal(2)
    a, b = _leaf(a_np), _leaf(b_np)
    y = a @ b
    assert y.shape == (2,)
    assert_allclose(y.data, [sum(a_np[k] * b_np[k, j] for k in range(3)) for j in range(2)])
    y.backward(g)
    assert_allclose(a.grad, [sum(b_np[i, j] * g[j] for j in range(2)) for i in range(3)])
    assert_allclose(b.grad, np.outer(a_np, g))


def test_matmul_matrix_vector():
    rng = np.random.default_rng(7)
    a_np, b_np, g = rng.standard_normal((2, 3)), rng.standard_normal(3), rng.standard_normal(2)
    a, b = _leaf(a_np), _leaf(b_np)
    y = a @ b
    assert y.shape == (2,)
    y.backward(g)
    assert_allclose(a.grad, np.outer(g, b_np))
    assert_allclose(b.grad, [sum(a_np[i, k] * g[i] for i in range(2)) for k in range(3)])


def test_matmul_matrix_matrix():
    rng = np.random.default_rng(8)
    a_np, b_np = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    g = rng.standard_normal((2, 4))
    a, b = _leaf(a_np), _leaf(b_np)
    y = a @ b
    assert_allclose(y.data, np.einsum("ik,kj->ij", a_np, b_np))
    y.backward(g)
    assert_allclose(a.grad, np.einsum("ij,kj->ik", g, b_np))  # G B^T
    assert_allclose(b.grad, np.einsum("ik,ij->kj", a_np, g))  # A^T G


def test_matmul_batched_with_a_shared_matrix():
    rng = np.random.default_rng(9)
    a_np, b_np = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    g = rng.standard_normal((2, 3, 5))
    a, b = _leaf(a_np), _leaf(b_np)
    y = a @ b
    assert y.shape == (2, 3, 5)
    assert_allclose(y.data, np.einsum("bik,kj->bij", a_np, b_np))
    y.backward(g)
    assert_allclose(a.grad, np.einsum("bij,kj->bik", g, b_np))
    # b is shared by both batch items: its gradient sums over the batch
    assert_allclose(b.grad, np.einsum("bik,bij->kj", a_np, g))


def test_matmul_broadcasts_batch_dims():
    rng = np.random.default_rng(10)
    a_np, b_np = rng.standard_normal((1, 3, 4)), rng.standard_normal((2, 4, 5))
    g = rng.standard_normal((2, 3, 5))
    a, b = _leaf(a_np), _leaf(b_np)
    y = a @ b
    assert y.shape == (2, 3, 5)
    y.backward(g)
    assert a.grad.shape == (1, 3, 4)
    assert_allclose(a.grad, np.einsum("bij,bkj->ik", g, b_np)[None])
    assert_allclose(b.grad, np.einsum("ik,bij->bkj", a_np[0], g))


def test_matmul_of_a_zero_dim_operand_raises():
    with pytest.raises(ValueError, match=r"at least 1-D"):
        _leaf(2.0) @ _leaf([1.0, 2.0])


# ---------------------------------------------------------------------------------------------
# The same ops against central differences (npae.gradcheck, float64)
# ---------------------------------------------------------------------------------------------

BROADCAST_SHAPES = [
    ((3, 1, 4), (2, 4)),
    ((2, 4), (3, 1, 4)),
    ((4,), (3, 4)),
    ((3, 4), (4,)),
    ((), (3, 4)),
    ((3, 4), ()),
    ((), ()),
]

BINARY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}


@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize("name", list(BINARY_OPS))
def test_gradcheck_binary_ops_with_broadcasting(name, shapes):
    rng = np.random.default_rng(11)
    a, b = _uniform(rng, shapes[0]), _uniform(rng, shapes[1])
    assert npae.gradcheck(BINARY_OPS[name], [a, b])


@pytest.mark.parametrize(
    "shapes",
    [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 3, 4), (4, 5)),
     ((1, 3, 4), (2, 4, 5)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,))],
    ids=str,
)
def test_gradcheck_matmul(shapes):
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    assert npae.gradcheck(lambda p, q: p @ q, [a, b])


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: -x,
        lambda x: x.exp(),
        lambda x: x.log(),
        lambda x: x.sqrt(),
        lambda x: x.clip(0.8, 1.2),
        lambda x: x.sum(),
        lambda x: x.sum(axis=1),
        lambda x: x.sum(axis=(0, 2), keepdims=True),
        lambda x: x.mean(),
        lambda x: x.mean(axis=-1, keepdims=True),
        lambda x: x.reshape(6, 2),
        lambda x: x.transpose(0, 2),
        lambda x: x.permute(1, 2, 0),
        lambda x: x.T,
        lambda x: x[1:, :, ::2],
        lambda x: x[:, 1],
        lambda x: x[np.array([0, 0, 1])],
        lambda x: 2.0 - x,
        lambda x: 2.0 / x,
        lambda x: 2.0**x,
        lambda x: x**3,
    ],
    ids=["neg", "exp", "log", "sqrt", "clip", "sum", "sum1", "sum02k", "mean", "mean-1k",
         "reshape", "transpose", "permute", "T", "slice", "column", "fancy", "rsub", "rdiv",
         "rpow", "pow3"],
)
def test_gradcheck_unary_and_shape_ops(fn):
    # values in [0.55, 1.45], none within 0.004 of the clip bounds 0.8 and 1.2 (no kinks)
    x = np.random.default_rng(13).permutation(np.linspace(0.55, 1.45, 12)).reshape(2, 3, 2)
    assert npae.gradcheck(fn, [x])


# ---------------------------------------------------------------------------------------------
# The backward walk: deep chains, fan-out, accumulation, freeing
# ---------------------------------------------------------------------------------------------


def test_backward_through_a_100000_op_chain_needs_no_recursion():
    x = _leaf([1.0, 2.0])
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    factor = 1.00001**100_000  # e^(100000 ln 1.00001) ~ 2.71826
    assert_allclose(y.data, [factor, 2 * factor], rtol=1e-9)
    y.backward(np.array([1.0, 3.0]))
    assert_allclose(x.grad, [factor, 3 * factor], rtol=1e-9)


def test_deleting_a_100000_op_chain_does_not_crash():
    x = _leaf([1.0])
    y = x
    for _ in range(100_000):
        y = y + 0.0
    last = weakref.ref(y)
    del y
    gc.collect()
    assert last() is None
    assert_allclose((x * 2.0).data, [2.0])  # the leaf is untouched


def test_fan_out_gradients_add_up():
    x = _leaf([1.0, -2.0, 0.5])
    y = x * x + x
    y.sum().backward()
    assert_allclose(x.grad, 2 * np.array([1.0, -2.0, 0.5]) + 1)  # 2x + 1


def test_diamond_graph():
    # x -> a -> (b, c) -> out:  out = (3x + 1) * (6x) = 18 x^2 + 6 x,  d out/dx = 36 x + 6
    x = _leaf([1.0, 2.0])
    a = x * 3.0
    b = a + 1.0
    c = a * 2.0
    out = b * c
    assert_allclose(out.data, [24.0, 84.0])
    out.sum().backward()
    assert_allclose(x.grad, [42.0, 78.0])


def test_gradient_of_a_tensor_used_by_two_branches_of_different_depth():
    # a reaches out directly and through a longer path: out = a + exp(log(a) * 2) = a + a^2
    x = _leaf([1.5, 3.0])
    a = x * 1.0
    out = a + (a.log() * 2.0).exp()
    out.sum().backward()
    assert_allclose(x.grad, 1 + 2 * np.array([1.5, 3.0]))


def test_leaf_grad_accumulates_across_backward_calls():
    x = _leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * x).sum().backward()
    assert_allclose(x.grad, [4.0, 8.0])  # 2x twice
    x.grad = None
    (x * x).sum().backward()
    assert_allclose(x.grad, [2.0, 4.0])


def test_backward_twice_on_the_same_graph_accumulates_with_retain_graph():
    x = _leaf([1.0, 2.0])
    y = (x * 3.0).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_allclose(x.grad, [6.0, 6.0])


def test_backward_frees_saved_arrays_and_a_second_pass_says_why_it_fails():
    x = _leaf([1.0, 2.0])
    h = x * x
    y = h.sum()
    y.backward()
    assert h._node.ctx is None  # the activations saved for backward are gone
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    assert_allclose(x.grad, [2.0, 4.0])


def test_tensor_converts_to_an_ndarray_and_keeps_numpy_scalar_dtypes():
    t = Tensor(np.arange(3.0))
    assert np.asarray(t).dtype == np.float64
    assert np.array_equal(np.asarray(t), [0.0, 1.0, 2.0])
    assert Tensor(np.float64(1.5)).dtype == np.float64
    assert Tensor(1.5).dtype == np.float32


def test_sum_and_mean_accept_pytorch_argument_names():
    x = _leaf(np.arange(6.0).reshape(2, 3))
    assert_array_equal(x.sum(dim=1).data, [3.0, 12.0])
    assert x.mean(dim=0, keepdim=True).shape == (1, 3)
    with pytest.raises(TypeError, match="not both"):
        x.sum(axis=0, dim=0)
    with pytest.raises(TypeError, match="both"):
        x.transpose(0)


def test_backward_on_a_leaf_itself():
    x = _leaf([1.0, 2.0])
    x.backward(np.array([5.0, 6.0]))
    assert_allclose(x.grad, [5.0, 6.0])


def test_intermediate_tensors_keep_no_grad():
    x = _leaf([1.0, 2.0])
    a = x * 2.0
    b = a.exp()
    c = b.sum()
    c.backward()
    assert a.grad is None
    assert b.grad is None
    assert c.grad is None
    assert a.requires_grad and not a.is_leaf
    assert_allclose(x.grad, 2 * np.exp([2.0, 4.0]))


def test_input_without_requires_grad_gets_no_grad():
    x = _leaf([1.0, 2.0])
    c = Tensor(np.array([3.0, 4.0]))
    (x * c + c).sum().backward()
    assert c.grad is None
    assert_allclose(x.grad, [3.0, 4.0])


class _RecordNeeds(npae.Function):
    """a * b, recording what forward and backward were told about needed gradients."""

    seen = []

    @staticmethod
    def forward(ctx, a, b):
        _RecordNeeds.seen.append(("forward", ctx.needs_input_grad))
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        _RecordNeeds.seen.append(("backward", ctx.needs_input_grad))
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (grad * b if need_a else None, grad * a if need_b else None)


def test_backward_is_told_which_inputs_need_a_gradient():
    _RecordNeeds.seen.clear()
    x = _leaf([1.0, 2.0])
    c = Tensor(np.array([3.0, 4.0]))
    _RecordNeeds.apply(x, c).sum().backward()
    _RecordNeeds.apply(np.array([5.0, 6.0]), x).sum().backward()  # a plain ndarray needs none
    assert _RecordNeeds.seen == [
        ("forward", (True, False)),
        ("backward", (True, False)),
        ("forward", (False, True)),
        ("backward", (False, True)),
    ]
    assert c.grad is None
    assert_allclose(x.grad, [3.0 + 5.0, 4.0 + 6.0])


def test_leaf_grads_are_independent_buffers():
    x = _leaf([1.0, 2.0])
    y = _leaf([3.0, 4.0])
    z = x + y  # add hands the same upstream gradient to both operands
    z.backward(np.ones(2))
    assert x.grad is not y.grad
    assert not np.shares_memory(x.grad, y.grad)
    x.grad += 1.0
    assert_allclose(y.grad, [1.0, 1.0])
    assert_allclose(x.grad, [2.0, 2.0])


def test_leaf_grad_does_not_alias_the_grad_passed_to_backward():
    x = _leaf([1.0, 2.0])
    g = np.array([1.0, 1.0])
    (x + 0.0).backward(g)
    x.grad *= 10.0
    assert_allclose(g, [1.0, 1.0])
    g2 = np.array([2.0, 2.0])
    x.grad = None
    x.backward(g2)
    g2[0] = 99.0
    assert_allclose(x.grad, [2.0, 2.0])


# ---------------------------------------------------------------------------------------------
# dtypes: float32 and float64 only
# ---------------------------------------------------------------------------------------------


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match=r"int64.*float32"):
        Tensor(np.arange(3), requires_grad=True)


def test_float16_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match=r"float16"):
        Tensor(np.ones(3, np.float16), requires_grad=True)


def test_float16_input_to_an_op_raises_type_error():
    with pytest.raises(TypeError, match=r"float16"):
        F.relu(Tensor(np.ones(3, np.float16)))


def test_integer_input_to_an_op_raises_type_error():
    with pytest.raises(TypeError, match=r"int64"):
        F.sigmoid(Tensor(np.arange(3)))


def test_conv2d_with_an_int64_weight_raises_type_error():
    x = Tensor(np.ones((1, 1, 3, 3), np.float32))
    w = Tensor(np.ones((1, 1, 2, 2), np.int64))
    with pytest.raises(TypeError, match=r"int64"):
        F.conv2d(x, w)
    with pytest.raises(TypeError, match=r"int64"):
        F.conv2d(Tensor(np.ones((1, 1, 3, 3), np.int64)), w)


def _composite(x, w):
    """A little of everything: broadcasting, matmul, elementwise functions, reductions."""
    h = (x @ w + 1.0) / 2.0
    h = F.sigmoid(h) * F.tanh(h) + (h * h).sqrt().log() + h.exp() ** 2
    return (h.T.reshape(-1)[1:].sum() + h.mean(axis=0).sum()) - h.clip(0.1, 0.9).sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_keep_the_input_dtype(dtype):
    rng = np.random.default_rng(14)
    x = Tensor(rng.uniform(0.5, 1.0, (2, 3)).astype(dtype), requires_grad=True)
    w = Tensor(rng.uniform(0.5, 1.0, (3, 4)).astype(dtype), requires_grad=True)
    out = _composite(x, w)
    assert out.dtype == dtype
    out.backward()
    assert x.grad.dtype == dtype
    assert w.grad.dtype == dtype
    assert np.all(np.isfinite(x.grad))


def test_float32_and_float64_gradients_agree():
    rng = np.random.default_rng(15)
    x64, w64 = rng.uniform(0.5, 1.0, (2, 3)), rng.uniform(0.5, 1.0, (3, 4))
    grads = {}
    for dtype in (np.float32, np.float64):
        x = Tensor(x64.astype(dtype), requires_grad=True)
        w = Tensor(w64.astype(dtype), requires_grad=True)
        _composite(x, w).backward()
        grads[dtype] = (x.grad, w.grad)
    assert_allclose(grads[np.float32][0], grads[np.float64][0], rtol=1e-4, atol=1e-5)
    assert_allclose(grads[np.float32][1], grads[np.float64][1], rtol=1e-4, atol=1e-5)


def test_composite_passes_gradcheck():
    rng = np.random.default_rng(16)
    assert npae.gradcheck(_composite, [rng.uniform(0.5, 1.0, (2, 3)),
                                       rng.uniform(0.5, 1.0, (3, 4))])


def _functional_cases(dtype, rng):
    """(name, fn, inputs) for npae.functional's ops; every float input requires grad."""

    def t(shape, lo=0.1, hi=0.9):
        return Tensor(rng.uniform(lo, hi, shape).astype(dtype), requires_grad=True)

    x4 = rng.permutation(16).astype(dtype).reshape(1, 1, 4, 4)  # tie-free for max pooling
    _, idx = F.max_pool2d(Tensor(x4), 2, return_indices=True)
    return [
        ("linear", F.linear, [t((2, 3)), t((4, 3)), t(4)]),
        ("relu", F.relu, [t((3,), -1.0, 1.0)]),
        ("leaky_relu", F.leaky_relu, [t((3,), -1.0, 1.0)]),
        ("sigmoid", F.sigmoid, [t((3,))]),
        ("tanh", F.tanh, [t((3,))]),
        ("mse_loss", F.mse_loss, [t((3,)), t((3,))]),
        ("binary_cross_entropy", F.binary_cross_entropy, [t((3,)), t((3,))]),
        ("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
         [t((3,)), t((3,))]),
        ("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1),
         [t((1, 2, 4, 4)), t((3, 2, 3, 3)), t(3)]),
        ("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2),
         [t((1, 2, 2, 2)), t((2, 3, 3, 3)), t(3)]),
        ("max_pool2d", lambda x: F.max_pool2d(x, 2),
         [Tensor(x4, requires_grad=True)]),
        ("max_unpool2d", lambda x: F.max_unpool2d(x, idx, 2), [t((1, 1, 2, 2))]),
        ("upsample_nearest2d", lambda x: F.upsample_nearest2d(x, scale_factor=2),
         [t((1, 1, 2, 2))]),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functional_ops_keep_the_input_dtype_in_output_and_grads(dtype):
    rng = np.random.default_rng(17)
    for name, fn, inputs in _functional_cases(dtype, rng):
        out = fn(*inputs)
        assert out.dtype == dtype, name
        out.backward(np.ones(out.shape, dtype))
        for i, x in enumerate(inputs):
            assert x.grad is not None, (name, i)
            assert x.grad.dtype == dtype, (name, i)
            assert x.grad.shape == x.shape, (name, i)
