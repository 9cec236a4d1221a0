"""Second-order gradients: npae.grad, backward(create_graph=True), gradgradcheck, and what they
are for (Hessian-vector products, gradient penalties), in float64 against finite differences.
The per-op checks over the op table are in tests/ops/test_optable.py (test_gradgradcheck)."""

import numpy as np
import pytest

import npae
import npae.functional as F
from npae import Function, Tensor, optim

RNG = np.random.default_rng(0)


def leaf(shape, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


# ------------------------------------------------------------------------------- npae.grad
def test_grad_returns_gradients_and_leaves_dot_grad_alone():
    x, y = leaf((3,), 1), leaf((3,), 2)
    gx, gy = npae.grad((x * y).sum(), [x, y])
    np.testing.assert_array_equal(gx.data, y.data)
    np.testing.assert_array_equal(gy.data, x.data)
    assert x.grad is None and y.grad is None
    assert not gx.requires_grad  # no create_graph: values only


def test_grad_of_several_outputs_sums_their_weighted_gradients():
    x = leaf((4,))
    a, b = x * 2, x * x
    va, vb = RNG.standard_normal(4), RNG.standard_normal(4)
    (g,) = npae.grad([a, b], x, grad_outputs=[va, vb])
    np.testing.assert_allclose(g.data, 2 * va + 2 * x.data * vb, rtol=1e-14)


def test_grad_with_respect_to_an_intermediate_tensor():
    x = leaf((3,))
    h = x * 3
    out = (h * h).sum()
    (gh,) = npae.grad(out, h)
    np.testing.assert_allclose(gh.data, 2 * h.data, rtol=1e-14)
    assert x.grad is None


def test_grad_unused_input_raises_unless_allowed():
    x, z = leaf((2,), 1), leaf((2,), 2)
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        npae.grad((x * x).sum(), [x, z], retain_graph=True)
    gx, gz = npae.grad((x * x).sum(), [x, z], allow_unused=True)
    assert gz is None
    np.testing.assert_allclose(gx.data, 2 * x.data)


def test_grad_checks_its_arguments():
    x = leaf((2,))
    with pytest.raises(RuntimeError, match="single-element"):
        npae.grad(x * 2, x)
    with pytest.raises(ValueError, match="1 grad_outputs for 2 outputs"):
        npae.grad([x * 2, x * 3], x, grad_outputs=[np.ones(2)])
    with pytest.raises(RuntimeError, match="does not require grad"):
        npae.grad((x * 2).sum(), Tensor(np.ones(2)))


def test_retain_graph_defaults_to_create_graph():
    x = leaf((2,))
    loss = (x.exp()).sum()
    npae.grad(loss, x)  # retain_graph=None -> False: the saved arrays are freed
    with pytest.raises(RuntimeError, match="a second time"):
        npae.grad(loss, x)
    loss = (x.exp()).sum()
    npae.grad(loss, x, create_graph=True)  # -> retained
    npae.grad(loss, x)


# ------------------------------------------------------------- backward(create_graph=True)
def test_backward_with_create_graph_gives_a_differentiable_grad():
    x = leaf((3,))
    (x ** 3).sum().backward(create_graph=True)
    assert isinstance(x.grad, Tensor) and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2, rtol=1e-14)
    g = x.grad
    x.grad = None
    (g * g).sum().backward()  # d/dx sum (3x^2)^2 = 36 x^3
    np.testing.assert_allclose(x.grad, 36 * x.data ** 3, rtol=1e-13)


def test_first_order_backward_still_gives_arrays():
    x = leaf((3,))
    (x * x).sum().backward()
    assert isinstance(x.grad, np.ndarray)


def test_optimizer_steps_on_a_create_graph_gradient():
    w = Tensor(np.ones(3), requires_grad=True)
    (w * w).sum().backward(create_graph=True)
    optim.SGD([w], lr=0.5).step()
    np.testing.assert_allclose(w.data, 0.0)


# ------------------------------------------------------------- what second order is for
def _small_model(x, w1, w2):
    """A tiny conv encoder-decoder: conv 1->2 s2, tanh, transpose conv 2->1 s2, sigmoid."""
    h = F.tanh(F.conv2d(x, w1, stride=2, padding=1))
    return F.sigmoid(F.conv_transpose2d(h, w2, stride=2, padding=1, output_padding=1))


def _loss(w1, w2, x):
    return F.mse_loss(_small_model(x, w1, w2), x)


def test_hessian_vector_product_matches_differences_of_the_gradient():
    x = Tensor(RNG.random((2, 1, 6, 6)))
    w1, w2 = leaf((2, 1, 3, 3), 3), leaf((2, 1, 3, 3), 4)
    v1, v2 = RNG.standard_normal(w1.shape), RNG.standard_normal(w2.shape)
    g1, g2 = npae.grad(_loss(w1, w2, x), [w1, w2], create_graph=True)
    hv1, hv2 = npae.grad((g1 * v1).sum() + (g2 * v2).sum(), [w1, w2])

    def gradient(d):
        a = Tensor(w1.data + d * v1, requires_grad=True)
        b = Tensor(w2.data + d * v2, requires_grad=True)
        return [g.data for g in npae.grad(_loss(a, b, x), [a, b])]

    eps = 1e-5
    plus, minus = gradient(eps), gradient(-eps)
    for hv, p, m in zip((hv1, hv2), plus, minus, strict=True):
        np.testing.assert_allclose(hv.data, (p - m) / (2 * eps), rtol=1e-6, atol=1e-9)


def _penalised_loss(w1, w2, x, lam=0.1):
    """Reconstruction loss + lam * ||d loss / d x||^2 (input-gradient regularisation)."""
    loss = _loss(w1, w2, x)
    (gx,) = npae.grad(loss, x, create_graph=True)
    return loss + lam * (gx * gx).sum()


def test_gradient_penalty_gradient_matches_finite_differences():
    x = leaf((2, 1, 6, 6), 5)
    w1, w2 = RNG.standard_normal((2, 1, 3, 3)), RNG.standard_normal((2, 1, 3, 3))
    assert npae.gradcheck(lambda a, b: _penalised_loss(a, b, x, lam=10.0), [w1, w2],
                          atol=1e-8, rtol=1e-6)


def test_gradient_penalty_training_lowers_the_penalised_loss():
    npae.manual_seed(0)
    x = Tensor(np.random.default_rng(6).random((4, 1, 8, 8)), requires_grad=True)
    w1 = Tensor(np.random.default_rng(7).standard_normal((2, 1, 3, 3)) * 0.5, requires_grad=True)
    w2 = Tensor(np.random.default_rng(8).standard_normal((2, 1, 3, 3)) * 0.5, requires_grad=True)
    opt = optim.Adam([w1, w2], lr=0.05)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = _penalised_loss(w1, w2, x)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


# -------------------------------------------------- why the second check exists: planted bugs
class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (3 * x ** 2 * grad,)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        return (3 * x ** 2 * grad,)


class CubeWithConstantSlope(Cube):
    """The planted bug: right in value, but the slope 3 x^2 is taken from the saved array, a
    constant, so the gradient does not depend on x as a function."""

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.saved_tensors
        return (Tensor(3 * x ** 2) * grad,)


class CubeDroppingGrad(Cube):
    """The planted bug: right in value, but grad enters as a constant, so the result is not
    linear in the output gradient as a function."""

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        return (3 * x ** 2 * Tensor(grad.data),)


class CubeWrongInGraph(Cube):
    """The planted bug: backward_graph consistent with its own derivative (2 x^2 grad, and
    its derivative 4 x grad) but not with backward's values."""

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        return (2 * x ** 2 * grad,)


class CubeOnce(Function):
    """A user's Function with a first-order backward only."""

    forward = Cube.forward
    backward = Cube.backward


X = np.array([0.5, -1.5, 2.0])


def test_the_right_backward_graph_passes_both_checks():
    assert npae.gradcheck(Cube.apply, [X])
    assert npae.gradgradcheck(Cube.apply, [X])


@pytest.mark.parametrize("planted, which", [(CubeWithConstantSlope, "input 0"),
                                            (CubeDroppingGrad, "grad_outputs")])
def test_planted_second_order_bug_is_caught_by_gradgradcheck_only(planted, which):
    assert npae.gradcheck(planted.apply, [X])  # its values are right: first order passes
    with pytest.raises(npae.GradcheckError, match=which) as raised:
        npae.gradgradcheck(planted.apply, [X])
    assert raised.value.element is not None


def test_a_backward_graph_that_disagrees_with_backward_is_caught():
    assert npae.gradcheck(CubeWrongInGraph.apply, [X])  # backward itself is right
    with pytest.raises(npae.GradcheckError, match="create_graph=True.*backward gives"):
        npae.gradgradcheck(CubeWrongInGraph.apply, [X])


def test_a_function_without_backward_graph_says_so():
    assert npae.gradcheck(CubeOnce.apply, [X])
    x = Tensor(X, requires_grad=True)
    (g,) = npae.grad(CubeOnce.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, 3 * X ** 2)  # the value is there
    with pytest.raises(RuntimeError, match="CubeOnce is differentiable once only"):
        g.sum().backward()
    with pytest.raises(RuntimeError, match="CubeOnce.*backward_graph"):
        npae.gradgradcheck(CubeOnce.apply, [X])


# ---------------------------------------------- the tensor arithmetic, twice differentiated
A = RNG.standard_normal((3, 4))
ARITHMETIC = {
    "add-broadcast": (lambda a, b: (a + b) * (a + b), [A, RNG.standard_normal((4,))]),
    "sub-broadcast": (lambda a, b: (a - b) * a, [A, RNG.standard_normal((3, 1))]),
    "mul-broadcast": (lambda a, b: a * b, [A, RNG.standard_normal((4,))]),
    "div": (lambda a, b: a / b, [A, RNG.random((3, 1)) + 1]),
    "pow": (lambda a, b: a ** b, [RNG.random((3, 4)) + 0.5, RNG.random((3, 4))]),
    "pow-scalar": (lambda a: a ** 3, [A]),
    "neg": (lambda a: -(a * a), [A]),
    "matmul": (lambda a, b: a @ b, [RNG.standard_normal((2, 3, 4)), RNG.standard_normal((4,))]),
    "matmul-vector-left": (lambda a, b: a @ b, [RNG.standard_normal(3),
                                                RNG.standard_normal((2, 3, 4))]),
    "matmul-matrices": (lambda a, b: (a @ b) * (a @ b), [A, RNG.standard_normal((4, 2))]),
    "exp-log-sqrt": (lambda a: a.exp() + (a * a + 1).log() + (a * a + 1).sqrt(), [A]),
    "clip": (lambda a: (a * a).clip(0.1, 1.0), [A]),
    "sum-mean": (lambda a: (a * a).sum(axis=0) + (a * a * a).mean(axis=1, keepdims=True), [A]),
    "reshape-permute": (lambda a: (a * a).reshape(2, 6).permute(1, 0), [A]),
    "getitem": (lambda a: (a * a)[1:, ::2], [A]),
    "getitem-repeated": (lambda a: (a * a)[np.array([0, 0, 2])], [A]),
    "cast": (lambda a: F.sigmoid(a).sum() * 1.0, [A]),
}


@pytest.mark.parametrize("name", ARITHMETIC)
def test_tensor_arithmetic_is_twice_differentiable(name):
    fn, inputs = ARITHMETIC[name]
    assert npae.gradgradcheck(fn, inputs, atol=1e-8, rtol=1e-6)
