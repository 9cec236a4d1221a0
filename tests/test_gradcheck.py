"""npae.gradcheck and npae.adjoint_check: do they pass correct ops and catch planted bugs?

A checker that never fails proves nothing, so most tests here plant a bug in a backward (a wrong
factor, a dropped bias gradient, one wrong element, a wrong adjoint) and require the check to
fail, in both of gradcheck's modes: the full Jacobian (small problems) and random projections
(forced with max_jacobian=0). The last part runs gradcheck over npae.functional's smooth ops.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import npae
import npae.functional as F
from npae import Tensor

FULL = {"max_jacobian": 10**9}
PROJECTIONS = {"max_jacobian": 0}
MODES = pytest.mark.parametrize("mode", [FULL, PROJECTIONS], ids=["full", "projections"])


def _cube_with_factor(factor):
    """x^3 whose backward returns factor * 3 x^2 * grad (factor 1 is correct)."""

    class Cube(npae.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return (factor * 3 * x**2 * grad,)

    return Cube


def _linear(bias_grad="right"):
    """x @ w.T + b with a hand-written backward; bias_grad 'zeros' or 'none' plants a bug."""

    class Linear(npae.Function):
        @staticmethod
        def forward(ctx, x, w, b):
            ctx.save_for_backward(x, w)
            return x @ w.T + b

        @staticmethod
        def backward(ctx, gy):
            x, w = ctx.saved_tensors
            gb = {"right": gy.sum(axis=0), "zeros": np.zeros(w.shape[0]), "none": None}
            return gy @ w, gy.T @ x, gb[bias_grad]

    return Linear


def _linear_inputs(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)]


def _x(seed=0, shape=(3, 4)):
    """Inputs with |x| in [0.5, 1.5], so every derivative 3 x^2 is well away from 0."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


# ---------------------------------------------------------------------------------------------
# Correct ops pass
# ---------------------------------------------------------------------------------------------


@MODES
def test_correct_op_passes(mode):
    assert npae.gradcheck(_cube_with_factor(1.0).apply, [_x()], **mode) is True


@MODES
def test_correct_linear_with_bias_passes(mode):
    assert npae.gradcheck(_linear().apply, _linear_inputs(), **mode) is True


def test_small_problem_default_uses_the_full_jacobian_and_passes():
    assert npae.gradcheck(lambda x: (x * x).sum(), [np.array([1.0, 2.0])]) is True


def test_large_problem_default_uses_projections_and_passes():
    # 200 outputs x 200 inputs = 40,000 > the default max_jacobian of 20,000
    x = _x(shape=(200,))
    assert npae.gradcheck(_cube_with_factor(1.0).apply, [x]) is True


def test_large_problem_default_catches_a_wrong_factor():
    x = _x(shape=(200,))
    with pytest.raises(npae.GradcheckError):
        npae.gradcheck(_cube_with_factor(1.01).apply, [x])


def test_max_jacobian_switches_between_the_two_modes():
    # the full Jacobian runs one backward per output element; projections run exactly one
    calls = []

    class CountingCube(npae.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            calls.append(1)
            (x,) = ctx.saved_tensors
            return (3 * x**2 * grad,)

    x = _x()  # 12 inputs -> 12 outputs: a Jacobian of 144 entries
    npae.gradcheck(CountingCube.apply, [x], max_jacobian=144)
    assert len(calls) == 12
    calls.clear()
    npae.gradcheck(CountingCube.apply, [x], max_jacobian=143)
    assert len(calls) == 1


# ---------------------------------------------------------------------------------------------
# Planted bugs fail
# ---------------------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize("factor", [0.5, 1.01, 2.0, -1.0])
def test_backward_off_by_a_factor_fails(factor, mode):
    x = _x()
    with pytest.raises(npae.GradcheckError) as info:
        npae.gradcheck(_cube_with_factor(factor).apply, [x], **mode)
    err = info.value
    assert err.input_index == 0
    assert err.analytic != pytest.approx(err.numeric, rel=1e-3)
    if err.element is not None:  # an element check (a random direction names no element)
        # the numeric side is the true derivative, the analytic side carries the factor
        assert err.analytic == pytest.approx(factor * err.numeric, rel=1e-6, abs=1e-8)


@MODES
@pytest.mark.parametrize("bias_grad", ["zeros", "none"])
def test_dropped_bias_gradient_fails(bias_grad, mode):
    with pytest.raises(npae.GradcheckError) as info:
        npae.gradcheck(_linear(bias_grad).apply, _linear_inputs(), **mode)
    assert info.value.input_index == 2
    assert info.value.analytic == 0.0


class CubeWithOneWrongElement(npae.Function):
    """Right everywhere except element (1, 2), whose gradient is 1.5 times too large."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        gx = 3 * x**2 * grad
        gx[1, 2] *= 1.5
        return (gx,)


def test_one_wrong_element_fails_in_full_mode_and_is_located():
    x = _x()
    with pytest.raises(npae.GradcheckError) as info:
        npae.gradcheck(CubeWithOneWrongElement.apply, [x], **FULL)
    err = info.value
    assert err.input_index == 0
    assert tuple(int(i) for i in err.element) == (1, 2)
    assert err.numeric == pytest.approx(3 * x[1, 2] ** 2, rel=1e-6)
    assert err.analytic == pytest.approx(1.5 * 3 * x[1, 2] ** 2, rel=1e-12)


def test_wrong_gradient_in_a_second_input_names_that_input():
    class MulWrongB(npae.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            return grad * b, grad * b  # b's gradient should be grad * a

    a, b = _x(1, (2, 2)), _x(2, (2, 2))
    for mode in (FULL, PROJECTIONS):
        with pytest.raises(npae.GradcheckError) as info:
            npae.gradcheck(MulWrongB.apply, [a, b], **mode)
        assert info.value.input_index == 1


@MODES
def test_backward_that_applies_the_jacobian_instead_of_its_transpose_fails(mode):
    m = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [4.0, 0.0, 1.0]])  # not symmetric

    class MatVecNoTranspose(npae.Function):
        @staticmethod
        def forward(ctx, x):
            return m @ x

        @staticmethod
        def backward(ctx, grad):
            return (m @ grad,)  # should be m.T @ grad

    with pytest.raises(npae.GradcheckError):
        npae.gradcheck(MatVecNoTranspose.apply, [np.array([1.0, -2.0, 0.5])], **mode)


def test_error_message_names_the_input_and_both_values():
    with pytest.raises(npae.GradcheckError, match=r"input 0 \(shape \(3, 4\)\).*analytic.*numeric"):
        npae.gradcheck(_cube_with_factor(2.0).apply, [_x()], **FULL)


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------


def test_inputs_are_cast_to_float64():
    seen = []

    def fn(x):
        seen.append(x.dtype)
        return x * x

    assert npae.gradcheck(fn, [np.array([1.0, 2.0], dtype=np.float32)])
    assert set(seen) == {np.dtype(np.float64)}


def test_float_tensor_inputs_that_require_grad_are_checked():
    x = Tensor(_x().astype(np.float32), requires_grad=True)
    with pytest.raises(npae.GradcheckError):
        npae.gradcheck(_cube_with_factor(2.0).apply, [x])


def test_fn_returning_float32_from_float64_raises_type_error():
    class ToFloat32(npae.Function):
        @staticmethod
        def forward(ctx, x):
            return x.astype(np.float32)

        @staticmethod
        def backward(ctx, grad):
            return (grad,)

    with pytest.raises(TypeError, match=r"float32"):
        npae.gradcheck(ToFloat32.apply, [np.ones(3)])


def test_no_differentiable_input_raises_value_error():
    with pytest.raises(ValueError, match=r"no input to differentiate"):
        npae.gradcheck(lambda i: Tensor(np.ones(2)) * 2.0, [np.arange(3)])
    with pytest.raises(ValueError, match=r"no input to differentiate"):
        npae.gradcheck(lambda x: x * 2.0, [Tensor(np.ones(3))])


def test_integer_inputs_pass_through_untouched():
    # values 0..15 in a random order: no two elements of a window tie, so pooling is smooth
    x = np.random.default_rng(3).permutation(16).astype(np.float64).reshape(1, 1, 4, 4)
    _, idx = F.max_pool2d(Tensor(x), 2, return_indices=True)
    idx = idx.data
    seen = []

    def fn(v, i):
        seen.append(np.asarray(i.data if isinstance(i, Tensor) else i))
        return F.max_unpool2d(v, i, 2)

    pooled = np.random.default_rng(4).standard_normal((1, 1, 2, 2))
    assert npae.gradcheck(fn, [pooled, idx]) is True
    for i in seen:
        assert i.dtype == np.int64
        np.testing.assert_array_equal(i, idx)


def test_python_number_inputs_pass_through():
    assert npae.gradcheck(lambda x, k: x * k, [np.array([1.0, 2.0]), 3.0]) is True


# ---------------------------------------------------------------------------------------------
# adjoint_check: <A x, y> == <x, A^T y>
# ---------------------------------------------------------------------------------------------

# (H, W, stride, padding): both 6 -> 3 with stride 2 (output_padding 1 brings back 6) and plain
CONV_GEOMETRIES = [(6, 6, 2, 1), (5, 5, 2, 1), (5, 4, 1, 0), (7, 6, 3, 1)]


def _conv_out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _output_padding(size, k, s, p):
    """The output_padding that makes conv_transpose2d return `size` from _conv_out(size)."""
    return size - ((_conv_out(size, k, s, p) - 1) * s - 2 * p + k)


def _conv_setup(h, w, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, h, w))
    weight = Tensor(rng.standard_normal((3, 2, 3, 3)))  # (out, in, kH, kW)
    return x, weight


@pytest.mark.parametrize("h, w, s, p", CONV_GEOMETRIES, ids=str)
def test_adjoint_check_conv2d_against_its_own_backward(h, w, s, p):
    x, weight = _conv_setup(h, w)
    assert npae.adjoint_check(lambda t: F.conv2d(t, weight, stride=s, padding=p), x) is True


@pytest.mark.parametrize("h, w, s, p", CONV_GEOMETRIES, ids=str)
def test_adjoint_check_conv2d_against_conv_transpose2d(h, w, s, p):
    x, weight = _conv_setup(h, w)
    op = (_output_padding(h, 3, s, p), _output_padding(w, 3, s, p))

    def adjoint(y):
        return F.conv_transpose2d(y, weight, stride=s, padding=p, output_padding=op)

    fn = lambda t: F.conv2d(t, weight, stride=s, padding=p)  # noqa: E731
    assert npae.adjoint_check(fn, x, adjoint=adjoint) is True


def test_output_padding_helper_matches_the_documented_example():
    # 6x6, 3x3 kernel, stride 2, padding 1: conv gives floor((6 + 2 - 3)/2) + 1 = 3, and
    # conv_transpose gives (3 - 1)*2 - 2 + 3 + output_padding = 5 + output_padding
    assert _conv_out(6, 3, 2, 1) == 3
    assert _output_padding(6, 3, 2, 1) == 1
    assert _output_padding(5, 3, 2, 1) == 0


@pytest.mark.parametrize(
    "wrong",
    [
        lambda w: Tensor(w.data[:, :, ::-1, ::-1].copy()),  # the classic flipped kernel
        lambda w: Tensor(w.data * (1 + 1e-6)),  # a tiny scale error
    ],
    ids=["flipped", "scaled"],
)
def test_adjoint_check_fails_for_a_wrong_adjoint(wrong):
    x, weight = _conv_setup(6, 6)
    bad = wrong(weight)

    def adjoint(y):
        return F.conv_transpose2d(y, bad, stride=2, padding=1, output_padding=1)

    fn = lambda t: F.conv2d(t, weight, stride=2, padding=1)  # noqa: E731
    with pytest.raises(npae.GradcheckError, match=r"adjoint check failed"):
        npae.adjoint_check(fn, x, adjoint=adjoint)


def test_adjoint_check_with_an_explicit_y():
    x, weight = _conv_setup(6, 6)
    y = np.random.default_rng(1).standard_normal((2, 3, 3, 3))
    fn = lambda t: F.conv2d(t, weight, stride=2, padding=1)  # noqa: E731
    assert npae.adjoint_check(fn, x, y=y) is True
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\).*\(2, 3, 3, 3\)"):
        npae.adjoint_check(fn, x, y=np.ones((2, 3, 4, 4)))


def test_adjoint_check_catches_a_backward_that_forgot_the_transpose():
    m = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [4.0, 0.0, 1.0]])  # not symmetric

    class MatVec(npae.Function):
        @staticmethod
        def forward(ctx, x):
            return m @ x

        @staticmethod
        def backward(ctx, grad):
            return (m @ grad,)  # should be m.T @ grad

    x = np.array([1.0, -2.0, 0.5])
    with pytest.raises(npae.GradcheckError):
        npae.adjoint_check(MatVec.apply, x)
    # and its forward agrees with the explicit, correct adjoint
    assert npae.adjoint_check(MatVec.apply, x, adjoint=lambda y: Tensor(m.T @ y.data))


# ---------------------------------------------------------------------------------------------
# gradcheck over npae.functional (float64, smooth inputs)
# ---------------------------------------------------------------------------------------------


def _away_from_zero(rng, shape):
    """|x| in [0.1, 1]: no relu kink within reach of the finite-difference step."""
    return rng.uniform(0.1, 1.0, shape) * rng.choice([-1.0, 1.0], shape)


def _probabilities(rng, shape):
    return rng.uniform(0.1, 0.9, shape)


FUNCTIONAL_CASES = {
    "linear": (lambda x, w, b: F.linear(x, w, b),
               lambda r: [r.standard_normal((4, 3)), r.standard_normal((2, 3)),
                          r.standard_normal(2)]),
    "linear_no_bias": (lambda x, w: F.linear(x, w),
                       lambda r: [r.standard_normal((4, 3)), r.standard_normal((2, 3))]),
    "linear_batched": (lambda x, w, b: F.linear(x, w, b),
                       lambda r: [r.standard_normal((2, 2, 3)), r.standard_normal((2, 3)),
                                  r.standard_normal(2)]),
    "relu": (F.relu, lambda r: [_away_from_zero(r, (3, 4))]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda r: [_away_from_zero(r, (3, 4))]),
    "leaky_relu_default": (F.leaky_relu, lambda r: [_away_from_zero(r, (3, 4))]),
    "sigmoid": (F.sigmoid, lambda r: [3 * r.standard_normal((3, 4))]),
    "tanh": (F.tanh, lambda r: [r.standard_normal((3, 4))]),
    "exp": (F.exp, lambda r: [r.standard_normal((3, 4))]),
    "log": (F.log, lambda r: [r.uniform(0.5, 2.0, (3, 4))]),
    "sqrt": (F.sqrt, lambda r: [r.uniform(0.5, 2.0, (3, 4))]),
    "clip": (lambda x: F.clip(x, -0.5, 0.5),
             lambda r: [np.array([-0.9, -0.6, -0.4, -0.1, 0.2, 0.45, 0.55, 0.8])]),
}

for _reduction in ("mean", "sum", "none"):
    FUNCTIONAL_CASES[f"mse_loss_{_reduction}"] = (
        lambda x, t, _r=_reduction: F.mse_loss(x, t, reduction=_r),
        lambda r: [r.standard_normal((3, 4)), r.standard_normal((3, 4))],
    )
    FUNCTIONAL_CASES[f"bce_{_reduction}"] = (
        lambda x, t, _r=_reduction: F.binary_cross_entropy(x, t, reduction=_r),
        lambda r: [_probabilities(r, (3, 4)), _probabilities(r, (3, 4))],
    )
    FUNCTIONAL_CASES[f"bce_weighted_{_reduction}"] = (
        lambda x, t, _r=_reduction: F.binary_cross_entropy(
            x, t, weight=np.array([0.5, 1.0, 2.0, 3.0]), reduction=_r),
        lambda r: [_probabilities(r, (3, 4)), _probabilities(r, (3, 4))],
    )
    FUNCTIONAL_CASES[f"bce_with_logits_{_reduction}"] = (
        lambda z, t, _r=_reduction: F.binary_cross_entropy_with_logits(z, t, reduction=_r),
        lambda r: [3 * r.standard_normal((3, 4)), _probabilities(r, (3, 4))],
    )
    FUNCTIONAL_CASES[f"bce_with_logits_weighted_{_reduction}"] = (
        lambda z, t, _r=_reduction: F.binary_cross_entropy_with_logits(
            z, t, weight=np.array([[0.5], [2.0], [1.5]]), reduction=_r),
        lambda r: [3 * r.standard_normal((3, 4)), _probabilities(r, (3, 4))],
    )


@MODES
@pytest.mark.parametrize("name", list(FUNCTIONAL_CASES))
def test_gradcheck_functional(name, mode):
    fn, make_inputs = FUNCTIONAL_CASES[name]
    assert npae.gradcheck(fn, make_inputs(np.random.default_rng(7)), **mode) is True


def test_gradcheck_loss_with_a_constant_target():
    rng = np.random.default_rng(8)
    target = Tensor(_probabilities(rng, (3, 4)))  # requires_grad=False: not differentiated
    assert npae.gradcheck(lambda x: F.binary_cross_entropy(x, target),
                          [_probabilities(rng, (3, 4))])


def test_gradcheck_catches_a_planted_bug_in_a_loss():
    # a correct mse gradient is 2 (x - t) / n; one that forgets the 2 must fail
    class HalfMSE(npae.Function):
        @staticmethod
        def forward(ctx, x, t):
            ctx.save_for_backward(x - t)
            return np.asarray(((x - t) ** 2).mean())

        @staticmethod
        def backward(ctx, grad):
            (d,) = ctx.saved_tensors
            g = grad * d / d.size
            return g, -g

    rng = np.random.default_rng(9)
    x, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert npae.gradcheck(lambda a, b: F.mse_loss(a, b), [x, t])
    with pytest.raises(npae.GradcheckError):
        npae.gradcheck(HalfMSE.apply, [x, t])


# ---------------------------------------------------------------------------------------------
# binary_cross_entropy_with_logits at extreme logits
# ---------------------------------------------------------------------------------------------

# loss = max(z, 0) - z t + log(1 + exp(-|z|)); at |z| = 1e4 the log term is exactly 0 in floats:
#   z = +1e4, t = 0: 1e4     z = -1e4, t = 0: 0     z = +1e4, t = 1: 0     z = -1e4, t = 1: 1e4
# and the gradient sigmoid(z) - t is 1, 0, 0, -1.
EXTREME_Z = [1e4, -1e4, 1e4, -1e4]
EXTREME_T = [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_at_extreme_logits_is_finite_and_exact(dtype):
    z = Tensor(np.array(EXTREME_Z, dtype=dtype), requires_grad=True)
    t = Tensor(np.array(EXTREME_T, dtype=dtype))
    loss = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    assert loss.dtype == dtype
    assert np.all(np.isfinite(loss.data))
    assert_allclose(loss.data, [1e4, 0.0, 0.0, 1e4], rtol=1e-7, atol=1e-30)
    loss.sum().backward()
    assert z.grad.dtype == dtype
    assert np.all(np.isfinite(z.grad))
    assert_allclose(z.grad, [1.0, 0.0, 0.0, -1.0], atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_mean_at_extreme_logits(dtype):
    z = Tensor(np.array(EXTREME_Z, dtype=dtype), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(z, Tensor(np.array(EXTREME_T, dtype=dtype)))
    assert loss.shape == ()
    assert_allclose(loss.item(), 2e4 / 4)
    loss.backward()
    assert_allclose(z.grad, [0.25, 0.0, 0.0, -0.25], atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_target_gradient_at_extreme_logits(dtype):
    # d loss / d t = -z
    z = Tensor(np.array(EXTREME_Z, dtype=dtype))
    t = Tensor(np.array(EXTREME_T, dtype=dtype), requires_grad=True)
    F.binary_cross_entropy_with_logits(z, t, reduction="sum").backward()
    assert_allclose(t.grad, [-1e4, 1e4, -1e4, 1e4])


def test_bce_with_logits_near_zero_matches_the_definition():
    # at moderate z the loss is -(t log sigmoid(z) + (1 - t) log(1 - sigmoid(z)))
    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    t = np.array([0.0, 0.3, 1.0, 0.7, 1.0])
    s = 1 / (1 + np.exp(-z))
    expected = -(t * np.log(s) + (1 - t) * np.log(1 - s))
    zt = Tensor(z, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(zt, Tensor(t), reduction="none")
    assert_allclose(loss.data, expected, rtol=1e-12)
    loss.sum().backward()
    assert_allclose(zt.grad, s - t, rtol=1e-12)
