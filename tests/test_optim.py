"""npae.optim: SGD and Adam against their update rules written out in NumPy, in float64.

Each test drives the optimizer with gradients that depend on the current parameters (so an
error in one step changes every later gradient) and runs the same rule, written from PyTorch's
documentation, on plain float64 arrays beside it.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import npae
from npae import Tensor, nn, optim

STEPS = 4


def _initial():
    """Two float64 parameter values of different shapes."""
    rng = np.random.default_rng(0)
    return [rng.standard_normal((3, 4)), rng.standard_normal(5)]


def _grads(values, t):
    """A made-up gradient for step t: depends on the parameter and on t, changes sign."""
    return [np.sin(3 * v) + 0.3 * v * (t + 1) - 0.1 * t for v in values]


def _params(values):
    return [nn.Parameter(np.array(v, dtype=np.float64)) for v in values]


def _run(opt, params, steps, start=0):
    for t in range(start, start + steps):
        for p, g in zip(params, _grads([p.data for p in params], t), strict=True):
            p.grad = g
        opt.step()


def sgd_reference(values, steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                  nesterov=False):
    """torch.optim.SGD's documented rule."""
    values = [v.copy() for v in values]
    bufs = [None] * len(values)
    for t in range(steps):
        for i, grad in enumerate(_grads(values, t)):
            g = grad + weight_decay * values[i]
            if momentum != 0:
                if bufs[i] is None:
                    bufs[i] = g.copy()
                else:
                    bufs[i] = momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            values[i] = values[i] - lr * g
    return values


def adam_reference(values, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """torch.optim.Adam's documented rule (L2 weight decay added to the gradient)."""
    b1, b2 = betas
    values = [v.copy() for v in values]
    m = [np.zeros_like(v) for v in values]
    s = [np.zeros_like(v) for v in values]
    for t in range(1, steps + 1):
        for i, grad in enumerate(_grads(values, t - 1)):
            g = grad + weight_decay * values[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            s[i] = b2 * s[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1**t)
            s_hat = s[i] / (1 - b2**t)
            values[i] = values[i] - lr * m_hat / (np.sqrt(s_hat) + eps)
    return values


SGD_CASES = {
    "plain": {"lr": 0.1},
    "weight_decay": {"lr": 0.1, "weight_decay": 0.05},
    "momentum": {"lr": 0.05, "momentum": 0.9},
    "dampening": {"lr": 0.05, "momentum": 0.8, "dampening": 0.3},
    "nesterov": {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    "nesterov_weight_decay": {"lr": 0.05, "momentum": 0.7, "nesterov": True,
                              "weight_decay": 0.1},
    "everything_but_nesterov": {"lr": 0.02, "momentum": 0.6, "dampening": 0.5,
                                "weight_decay": 0.2},
    # PyTorch skips the buffer entirely when momentum is 0, so dampening has no effect
    "dampening_without_momentum": {"lr": 0.1, "dampening": 0.5},
}

ADAM_CASES = {
    "default": {},
    "lr": {"lr": 0.05},
    "betas_eps": {"lr": 0.02, "betas": (0.5, 0.9), "eps": 1e-3},
    "weight_decay": {"lr": 0.01, "weight_decay": 0.1},
    "zero_betas": {"lr": 0.01, "betas": (0.0, 0.0)},
}


@pytest.mark.parametrize("kwargs", SGD_CASES.values(), ids=SGD_CASES.keys())
def test_sgd_matches_the_numpy_rule(kwargs):
    values = _initial()
    params = _params(values)
    _run(optim.SGD(params, **kwargs), params, STEPS)
    want = sgd_reference(values, STEPS, **kwargs)
    for p, w in zip(params, want, strict=True):
        assert p.dtype == np.float64
        assert_allclose(p.data, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "readable"])
@pytest.mark.parametrize("kwargs", ADAM_CASES.values(), ids=ADAM_CASES.keys())
def test_adam_matches_the_numpy_rule(kwargs, fused):
    values = _initial()
    params = _params(values)
    _run(optim.Adam(params, fused=fused, **kwargs), params, STEPS)
    want = adam_reference(values, STEPS, **kwargs)
    for p, w in zip(params, want, strict=True):
        assert p.dtype == np.float64
        assert_allclose(p.data, w, rtol=1e-12, atol=1e-14)


def test_sgd_first_step_by_hand():
    p = nn.Parameter(np.array([1.0, -2.0]))
    opt = optim.SGD([p], lr=0.5, momentum=0.9, weight_decay=0.1)
    p.grad = np.array([0.2, 0.4])
    opt.step()
    # g = grad + 0.1 p = [0.3, 0.2]; the first buffer is g itself; p -= 0.5 g
    assert_allclose(p.data, [0.85, -2.1], rtol=1e-15)
    p.grad = np.array([0.0, 0.0])
    opt.step()
    # g = 0.1 p = [0.085, -0.21]; buf = 0.9 [0.3, 0.2] + g = [0.355, -0.03]; p -= 0.5 buf
    assert_allclose(p.data, [0.85 - 0.1775, -2.1 + 0.015], rtol=1e-14)


def test_adam_first_step_moves_each_element_by_lr():
    # after one step m_hat = g and sqrt(v_hat) = |g|, so each element moves by
    # lr * g / (|g| + eps): lr * sign(g) unless |g| is close to eps
    g = np.array([3.0, -0.01, 1e-4, 1e-8])
    p = nn.Parameter(np.ones(4))
    p.grad = g
    optim.Adam([p], lr=0.1).step()
    assert_allclose(p.data, 1 - 0.1 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    assert_allclose(p.data, [0.9, 1.1, 0.9, 0.95], atol=2e-5)


def test_float32_parameters_stay_float32():
    p = nn.Parameter(np.ones((2, 2), dtype=np.float32))
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1),
                optim.Adam([p], lr=0.1, weight_decay=0.1)):
        for _ in range(2):
            p.grad = np.full((2, 2), 0.5, dtype=np.float32)
            opt.step()
        assert p.dtype == np.float32


def test_optimizer_updates_from_backward():
    # loss = sum((w - 3)^2): its gradient 2 (w - 3) comes from backward, SGD without momentum
    w = nn.Parameter(np.array([0.0, 1.0]))
    opt = optim.SGD([w], lr=0.25)
    for _ in range(3):
        opt.zero_grad()
        ((w - 3.0) * (w - 3.0)).sum().backward()
        opt.step()
    # each step: w - 3 <- (w - 3) - 0.25 * 2 (w - 3) = (w - 3) / 2
    assert_allclose(w.data, 3.0 + (np.array([0.0, 1.0]) - 3.0) / 8, rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# zero_grad and parameters without a gradient
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1), optim.Adam],
                         ids=["sgd", "adam"])
def test_zero_grad_sets_every_grad_to_none(make):
    params = _params(_initial())
    opt = make(params)
    for p in params:
        p.grad = np.ones_like(p.data)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
    lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1),
], ids=["sgd", "adam"])
def test_step_skips_parameters_without_a_grad(make):
    a = nn.Parameter(np.array([1.0, 2.0]))
    b = nn.Parameter(np.array([3.0, 4.0]))
    opt = make([a, b])
    a.grad = np.array([0.5, -0.5])
    opt.step()
    # weight decay would move b too if it were not skipped
    assert_array_equal(b.data, [3.0, 4.0])
    assert not np.array_equal(a.data, [1.0, 2.0])


def test_adam_counts_steps_per_parameter():
    # b gets its first gradient on the second step: its update is a first step (t = 1), as in
    # PyTorch, where each parameter keeps its own step count
    a = nn.Parameter(np.array([1.0]))
    b = nn.Parameter(np.array([1.0]))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.array([1.0])
    opt.step()
    a.grad = np.array([1.0])
    b.grad = np.array([2.0])
    opt.step()
    assert_allclose(b.data, [0.9], rtol=1e-7)


# ---------------------------------------------------------------------------------------------
# state_dict / load_state_dict: a resumed run continues exactly
# ---------------------------------------------------------------------------------------------


RESUMABLE = {
    "sgd_nesterov": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                         weight_decay=0.01),
    "sgd_dampening": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.2),
    "adam": lambda ps: optim.Adam(ps, lr=0.03, betas=(0.8, 0.95), weight_decay=0.01),
}


@pytest.mark.parametrize("make", RESUMABLE.values(), ids=RESUMABLE.keys())
def test_state_dict_round_trip_continues_identically(make):
    straight = _params(_initial())
    _run(make(straight), straight, 5)

    first = _params(_initial())
    opt = make(first)
    _run(opt, first, 2)
    saved = opt.state_dict()
    resume_from = [p.data.copy() for p in first]
    # the original keeps going: its in-place buffer updates must not reach the saved copy
    _run(opt, first, 3, start=2)

    resumed = _params(resume_from)
    fresh = make(resumed)
    fresh.load_state_dict(saved)
    _run(fresh, resumed, 3, start=2)
    for a, b in zip(straight, resumed, strict=True):
        assert_array_equal(a.data, b.data)
    for a, b in zip(straight, first, strict=True):
        assert_array_equal(a.data, b.data)


def test_load_state_dict_restores_the_hyper_parameters():
    params = _params(_initial())
    opt = optim.Adam(params, lr=0.03)
    saved = opt.state_dict()
    fresh = optim.Adam(_params(_initial()), lr=0.5)
    fresh.load_state_dict(saved)
    assert fresh.lr == 0.03


def test_load_state_dict_rejects_another_parameter_list():
    params = _params(_initial())
    opt = optim.Adam(params)
    _run(opt, params, 1)
    with pytest.raises(ValueError, match="2"):
        optim.Adam(params[:1]).load_state_dict(opt.state_dict())
    swapped = [params[1], params[0]]  # same count, wrong shapes for the saved moments
    with pytest.raises(ValueError, match="shape"):
        optim.Adam(swapped).load_state_dict(opt.state_dict())


# ---------------------------------------------------------------------------------------------
# Invalid arguments
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"lr": -0.1},
    {"lr": 0.1, "momentum": -0.5},
    {"lr": 0.1, "weight_decay": -1e-4},
    {"lr": 0.1, "dampening": -0.1},
    {"lr": 0.1, "nesterov": True},
    {"lr": 0.1, "nesterov": True, "momentum": 0.9, "dampening": 0.1},
], ids=["lr", "momentum", "weight_decay", "dampening", "nesterov_no_momentum",
        "nesterov_dampening"])
def test_sgd_rejects_invalid_hyper_parameters(kwargs):
    with pytest.raises(ValueError):
        optim.SGD(_params(_initial()), **kwargs)


@pytest.mark.parametrize("kwargs", [
    {"lr": -1e-3},
    {"betas": (1.0, 0.999)},
    {"betas": (0.9, 1.0)},
    {"betas": (-0.1, 0.999)},
    {"betas": (0.9, -0.5)},
    {"eps": -1e-8},
    {"weight_decay": -0.1},
], ids=["lr", "beta1_one", "beta2_one", "beta1_negative", "beta2_negative", "eps",
        "weight_decay"])
def test_adam_rejects_invalid_hyper_parameters(kwargs):
    with pytest.raises(ValueError):
        optim.Adam(_params(_initial()), **kwargs)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1), optim.Adam],
                         ids=["sgd", "adam"])
@pytest.mark.parametrize("empty", [[], (), iter([])], ids=["list", "tuple", "iterator"])
def test_empty_parameter_list_is_an_error(make, empty):
    with pytest.raises(ValueError, match="empty"):
        make(empty)


def test_optimizers_accept_a_module_parameter_iterator():
    npae.manual_seed(0)
    lin = nn.Linear(3, 2)
    opt = optim.Adam(p for _, p in lin.named_parameters())
    lin(Tensor(np.ones((1, 3), dtype=np.float32))).sum().backward()
    before = lin.weight.data.copy()
    opt.step()
    assert not np.array_equal(lin.weight.data, before)


def test_the_same_parameter_twice_is_refused_rather_than_updated_twice():
    p = nn.Parameter(np.ones(3, np.float32))
    q = nn.Parameter(np.ones(2, np.float32))
    for make in (optim.SGD, optim.Adam):
        with pytest.raises(ValueError, match=r"parameter 2 \(shape \(3,\)\) is the same tensor as "
                                             r"parameter 0; each step would update it twice"):
            make([p, q, p], lr=0.1)


@pytest.mark.parametrize("n", [5, 70_000])  # the fused kernel's serial and parallel loops
def test_fused_adam_is_the_readable_rule_in_float32(n):
    rng = np.random.default_rng(n)
    start = rng.standard_normal(n).astype(np.float32)
    fused, readable = Tensor(start.copy()), Tensor(start.copy())
    opts = (optim.Adam([fused], lr=0.01, weight_decay=0.1),
            optim.Adam([readable], lr=0.01, weight_decay=0.1, fused=False))
    for _ in range(10):
        g = rng.standard_normal(n).astype(np.float32)
        fused.grad, readable.grad = g, g.copy()
        for opt in opts:
            opt.step()
    assert fused.dtype == np.float32
    # the same rule: m and v the same float32 operations, the last line rounded once
    assert_allclose(fused.data, readable.data, rtol=1e-6, atol=1e-6)
    for key in ("exp_avg", "exp_avg_sq"):
        assert_allclose(opts[0].state[0][key], opts[1].state[0][key], rtol=1e-6, atol=1e-7)
