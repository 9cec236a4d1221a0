"""npae.Function, the user extension point: subclass it, write forward and backward, call apply.

The ops here are written in the tests (as a user would) so that the engine's handling of them,
not the built-in ops, is what is checked.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import npae
import npae.functional as F
from npae import Tensor, optim


class Cube(npae.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (3 * x**2 * grad,)


class ScaledProduct(npae.Function):
    """factor * a * b, with factor a keyword parameter kept on ctx."""

    @staticmethod
    def forward(ctx, a, b, factor=1.0):
        ctx.save_for_backward(a, b)
        ctx.factor = factor
        return factor * a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return ctx.factor * grad * b, ctx.factor * grad * a


def _leaf(array):
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


# ---------------------------------------------------------------------------------------------
# A user-defined op works like a built-in one
# ---------------------------------------------------------------------------------------------


def test_user_op_forward_and_backward():
    x = _leaf([1.0, -2.0, 0.5])
    y = Cube.apply(x)
    assert isinstance(y, Tensor)
    assert y.requires_grad
    assert_allclose(y.data, [1.0, -8.0, 0.125])
    y.backward(np.array([1.0, 2.0, 4.0]))
    assert_allclose(x.grad, [3.0 * 1, 12.0 * 2, 0.75 * 4])  # 3 x^2 * grad


def test_user_op_composes_with_built_in_ops():
    x = _leaf([1.0, 2.0])
    out = (Cube.apply(x * 2.0) + x).sum()  # 8 x^3 + x  ->  24 x^2 + 1
    out.backward()
    assert_allclose(x.grad, [25.0, 97.0])


def test_user_op_trains_by_gradient_descent():
    # minimise (w^3 - 8)^2: the only real minimum is w = 2
    w = Tensor(np.array([1.5]), requires_grad=True)
    for _ in range(100):
        loss = ((Cube.apply(w) - 8.0) ** 2).sum()
        w.grad = None
        loss.backward()
        with npae.no_grad():
            w.data -= 0.002 * w.grad
    assert_allclose(w.data, [2.0], atol=1e-6)


def test_keyword_parameter_reaches_forward_and_ctx():
    a, b = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    y = ScaledProduct.apply(a, b, factor=2.5)
    assert_allclose(y.data, [7.5, 20.0])
    y.backward(np.array([1.0, -1.0]))
    assert_allclose(a.grad, [7.5, -10.0])
    assert_allclose(b.grad, [2.5, -5.0])


def test_user_ops_pass_gradcheck():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    assert npae.gradcheck(Cube.apply, [x])
    assert npae.gradcheck(Cube.apply, [x], max_jacobian=0)  # random projections
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    assert npae.gradcheck(lambda p, q: ScaledProduct.apply(p, q, factor=-1.5), [a, b])


def test_forward_receives_ndarrays_not_tensors():
    seen = []

    class Spy(npae.Function):
        @staticmethod
        def forward(ctx, x):
            seen.append(type(x))
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            seen.append(type(grad))
            return (grad * 2,)

    Spy.apply(_leaf([1.0])).backward(np.array([1.0]))
    assert seen == [np.ndarray, np.ndarray]


def test_ctx_saves_several_arrays_in_order_and_any_attribute():
    saved = {}

    class Keep(npae.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b, a + b)
            ctx.note = "hello"
            ctx.shapes = (a.shape, b.shape)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            saved["tensors"] = ctx.saved_tensors
            saved["note"] = ctx.note
            saved["shapes"] = ctx.shapes
            a, b, _ = ctx.saved_tensors
            return grad * b, grad * a

    a, b = _leaf([1.0, 2.0]), _leaf([3.0, 5.0])
    Keep.apply(a, b).sum().backward()
    first, second, third = saved["tensors"]
    assert_array_equal(first, [1.0, 2.0])
    assert_array_equal(second, [3.0, 5.0])
    assert_array_equal(third, [4.0, 7.0])
    assert saved["note"] == "hello"
    assert saved["shapes"] == ((2,), (2,))
    assert_allclose(a.grad, [3.0, 5.0])


def test_no_graph_when_no_input_requires_grad():
    calls = []

    class Count(npae.Function):
        @staticmethod
        def forward(ctx, x):
            return x + 1

        @staticmethod
        def backward(ctx, grad):
            calls.append(1)
            return (grad,)

    y = Count.apply(Tensor(np.ones(2)))
    assert not y.requires_grad
    assert y.is_leaf
    with npae.no_grad():
        z = Count.apply(_leaf([1.0]))
    assert not z.requires_grad
    assert calls == []


# ---------------------------------------------------------------------------------------------
# A backward that breaks the contract is named in the error
# ---------------------------------------------------------------------------------------------


class TooFewGradients(npae.Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return (grad,)  # two inputs, one gradient


class TooManyGradients(npae.Function):
    @staticmethod
    def forward(ctx, a):
        return a * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * 2, grad, None


class WrongShapeGradient(npae.Function):
    @staticmethod
    def forward(ctx, a):
        return a.sum(axis=0)

    @staticmethod
    def backward(ctx, grad):
        return (grad,)  # should be broadcast back to a's shape (2, 3), is (3,)


def test_backward_returning_too_few_gradients_names_the_op():
    with pytest.raises(RuntimeError, match=r"TooFewGradients.*1 gradients for 2 inputs"):
        TooFewGradients.apply(_leaf([1.0]), _leaf([2.0])).backward(np.ones(1))


def test_backward_returning_too_many_gradients_names_the_op():
    with pytest.raises(RuntimeError, match=r"TooManyGradients.*3 gradients for 1 inputs"):
        TooManyGradients.apply(_leaf([1.0])).backward(np.ones(1))


def test_backward_returning_a_wrong_shape_names_the_op():
    y = WrongShapeGradient.apply(_leaf(np.ones((2, 3))))
    with pytest.raises(RuntimeError, match=r"WrongShapeGradient.*\(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))


def test_wrong_shape_is_caught_deep_inside_a_graph():
    x = _leaf(np.ones((2, 3)))
    y = (WrongShapeGradient.apply(x * 2.0) * 3.0).exp().sum()
    with pytest.raises(RuntimeError, match=r"WrongShapeGradient"):
        y.backward()


# ---------------------------------------------------------------------------------------------
# Several outputs
# ---------------------------------------------------------------------------------------------


class TwoOutputs(npae.Function):
    """(2x, x^2); backward receives one gradient per output."""

    received = []

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * 2, x * x

    @staticmethod
    def backward(ctx, g_double, g_square):
        TwoOutputs.received.append((g_double.copy(), g_square.copy()))
        (x,) = ctx.saved_tensors
        return (2 * g_double + 2 * x * g_square,)


def test_multiple_outputs_both_used():
    TwoOutputs.received.clear()
    x = _leaf([1.0, 3.0])
    double, square = TwoOutputs.apply(x)
    assert_allclose(double.data, [2.0, 6.0])
    assert_allclose(square.data, [1.0, 9.0])
    (double * 10.0 + square).sum().backward()
    (g_double, g_square), = TwoOutputs.received
    assert_allclose(g_double, [10.0, 10.0])
    assert_allclose(g_square, [1.0, 1.0])
    assert_allclose(x.grad, [20.0 + 2.0, 20.0 + 6.0])  # 2 * 10 + 2x


def test_multiple_outputs_unused_one_gets_a_zero_gradient():
    TwoOutputs.received.clear()
    x = _leaf([1.0, 3.0])
    _, square = TwoOutputs.apply(x)
    square.sum().backward()
    (g_double, g_square), = TwoOutputs.received
    assert_array_equal(g_double, [0.0, 0.0])
    assert_allclose(g_square, [1.0, 1.0])
    assert_allclose(x.grad, [2.0, 6.0])


def test_multiple_outputs_used_in_two_places_in_a_diamond():
    x = _leaf([2.0])
    double, square = TwoOutputs.apply(x)
    out = double * square  # 2x * x^2 = 2 x^3  ->  6 x^2
    out.backward()
    assert_allclose(x.grad, [24.0])


class ValueAndArgmax(npae.Function):
    """max along the last axis and its (integer, non-differentiable) position."""

    received = []

    @staticmethod
    def forward(ctx, x):
        idx = x.argmax(axis=-1)
        ctx.save_for_backward(idx)
        ctx.shape = x.shape
        return np.take_along_axis(x, idx[..., None], -1)[..., 0], idx

    @staticmethod
    def backward(ctx, g_value, g_idx):
        ValueAndArgmax.received.append(g_idx)
        (idx,) = ctx.saved_tensors
        gx = np.zeros(ctx.shape, g_value.dtype)
        np.put_along_axis(gx, idx[..., None], g_value[..., None], -1)
        return (gx,)


def test_integer_output_is_not_differentiable():
    ValueAndArgmax.received.clear()
    x = _leaf([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    value, idx = ValueAndArgmax.apply(x)
    assert value.requires_grad
    assert idx.dtype == np.int64
    assert not idx.requires_grad
    assert_array_equal(idx.data, [1, 0])
    value.backward(np.array([10.0, 20.0]))
    assert ValueAndArgmax.received == [None]  # no gradient for the integer output
    assert_allclose(x.grad, [[0.0, 10.0, 0.0], [20.0, 0.0, 0.0]])


def test_max_pool2d_indices_are_int64_and_need_no_grad():
    # 0..15 row-major: every 2x2 window's maximum is its bottom-right element
    x = Tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert y.requires_grad
    assert idx.dtype == np.int64
    assert not idx.requires_grad
    assert_array_equal(idx.data.ravel(), [5, 7, 13, 15])
    y.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = np.zeros(16)
    expected[[5, 7, 13, 15]] = [1.0, 2.0, 3.0, 4.0]
    assert_allclose(x.grad.ravel(), expected)


# ---------------------------------------------------------------------------------------------
# Non-Tensor arguments
# ---------------------------------------------------------------------------------------------


class AffineWithConstants(npae.Function):
    """scale * x + shift (shift may be None), with a mode keyword; records what forward got."""

    received = []

    @staticmethod
    def forward(ctx, x, scale, shift, offsets, mode="plain"):
        AffineWithConstants.received.append((type(scale), shift, type(offsets), mode))
        ctx.scale = scale
        y = scale * x + offsets
        return y if shift is None else y + shift

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None, None, None


def test_python_numbers_none_and_ndarrays_pass_through_to_forward():
    AffineWithConstants.received.clear()
    x = _leaf([1.0, 2.0])
    offsets = np.array([0.5, 0.25])
    y = AffineWithConstants.apply(x, 3, None, offsets, mode="fancy")
    (scale_type, shift, offsets_type, mode), = AffineWithConstants.received
    assert scale_type is int
    assert shift is None
    assert offsets_type is np.ndarray
    assert mode == "fancy"
    assert_allclose(y.data, [3.5, 6.25])
    y.backward(np.array([1.0, 2.0]))
    assert_allclose(x.grad, [3.0, 6.0])


def test_a_tensor_constant_among_the_arguments_gets_no_gradient():
    x = _leaf([1.0, 2.0])
    shift = Tensor(np.array([1.0, 1.0]))
    y = AffineWithConstants.apply(x, 2.0, shift, np.zeros(2))
    assert_allclose(y.data, [3.0, 5.0])
    y.sum().backward()
    assert shift.grad is None
    assert_allclose(x.grad, [2.0, 2.0])


class Gather(npae.Function):
    """x[idx] for an integer index array declared as such."""

    integer_inputs = (1,)

    @staticmethod
    def forward(ctx, x, idx):
        ctx.save_for_backward(idx)
        ctx.shape = x.shape
        return x[idx]

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        gx = np.zeros(ctx.shape, grad.dtype)
        np.add.at(gx, idx, grad)
        return gx, None


def test_integer_inputs_declared_by_the_op_are_accepted():
    x = _leaf([1.0, 2.0, 3.0])
    y = Gather.apply(x, Tensor(np.array([2, 2, 0])))
    assert_allclose(y.data, [3.0, 3.0, 1.0])
    y.sum().backward()
    assert_allclose(x.grad, [1.0, 0.0, 2.0])


def test_integer_array_for_an_undeclared_input_raises_type_error():
    with pytest.raises(TypeError, match=r"ScaledProduct: input 1 has dtype int64"):
        ScaledProduct.apply(_leaf([1.0, 2.0]), np.array([1, 2]))


# --- arrays changed in place after they were saved for backward --------------------------------

def test_an_optimizer_step_between_forward_and_backward_is_refused_naming_op_input_and_versions():
    # the case: without the check, the second backward silently gave [0, 0]
    p = Tensor([1.0, 2.0], requires_grad=True)
    loss = (p * p).sum()
    loss.backward(retain_graph=True)
    optim.SGD([p], lr=0.5).step()
    with pytest.raises(RuntimeError, match=r"Mul\.backward: input 0 \(shape \(2,\), float32\) "
                                           r"was saved for backward at version 0 but is now at "
                                           r"version 1"):
        loss.backward()


def test_adam_updating_a_conv_weight_before_backward_is_refused():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((1, 1, 5, 5)).astype(np.float32))
    w = Tensor(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), requires_grad=True)
    loss = F.conv2d(x, w).sum()
    w.grad = np.ones_like(w.data)
    optim.Adam([w]).step()
    assert w._version == 1
    with pytest.raises(RuntimeError, match=r"Conv2d\.backward: input 1 .* version 0 .* version 1"):
        loss.backward()


def test_an_update_to_an_input_that_backward_does_not_read_is_allowed():
    # Add saves nothing, so its gradient does not depend on the values: PyTorch allows this too
    p = Tensor([1.0, 2.0], requires_grad=True)
    loss = (p + 1.0).sum()
    p.grad = np.ones(2, np.float32)
    optim.SGD([p], lr=0.5).step()
    p.grad = None
    loss.backward()
    assert_array_equal(p.grad, [1.0, 1.0])


def test_a_saved_view_of_an_updated_parameter_is_caught():
    # reshape saves nothing, but the Mul after it saves a view of p's array
    p = Tensor(np.arange(4.0).reshape(2, 2), requires_grad=True)
    loss = (p.reshape(4) * p.reshape(4)).sum()
    p.grad = np.ones((2, 2))
    optim.SGD([p], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_the_usual_loop_forward_backward_step_bumps_the_version_once_per_step():
    p = Tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    for step in range(3):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
        assert p._version == step + 1
    assert_allclose(p.data, np.array([1.0, 2.0]) * 0.8**3, rtol=1e-6)


def test_backward_lets_go_of_the_inputs_whose_versions_it_checked():
    import weakref

    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0])  # a constant: the graph never needs it after backward
    loss = (x * w).sum()
    gone = weakref.ref(x)
    del x
    loss.backward()
    assert gone() is None  # while `loss` lives on, as a training loop's last loss does
