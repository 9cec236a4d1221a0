"""npae.nn: the Module tree, state dicts, layers and their PyTorch initialisation.

Layers only hold parameters: each forward must give exactly what the npae.functional call with
the same parameters gives (compared bitwise; the functional ops have their own tests). The
initialisation is checked statistically against PyTorch's rule, uniform in +-1/sqrt(fan_in),
and gradients through a small float64 network against central differences.
"""

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import npae
import npae.functional as F
from npae import Tensor, nn


def _x(shape, seed=0, dtype=np.float32):
    return Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


class _Net(nn.Module):
    """A two-level tree: a conv, then a Sequential head (ReLU has no parameters)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 5), nn.ReLU(),
                                  nn.Linear(5, 3))

    def forward(self, x):
        return self.head(self.conv(x))


NET_NAMES = ["conv.weight", "conv.bias", "head.1.weight", "head.1.bias", "head.3.weight",
             "head.3.bias"]


# ---------------------------------------------------------------------------------------------
# The Module tree
# ---------------------------------------------------------------------------------------------


def test_parameter_is_a_tensor_that_requires_grad_and_keeps_float64():
    p = nn.Parameter(np.zeros((2, 3), dtype=np.float64))
    assert isinstance(p, Tensor)
    assert p.requires_grad
    assert p.dtype == np.float64


def test_named_parameters_are_dotted_in_registration_order():
    net = _Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == NET_NAMES
    assert [p for _, p in net.named_parameters()] == net.parameters()
    assert net.parameters()[0] is net.conv.weight
    assert net.parameters()[-1] is net.head[3].bias
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())


def test_a_shared_parameter_is_listed_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = nn.Linear(3, 3)
            self.b.weight = self.a.weight

    names = [name for name, _ in Tied().named_parameters()]
    assert names == ["a.weight", "a.bias", "b.bias"]


def test_plain_attributes_are_not_parameters_and_reassignment_replaces():
    lin = nn.Linear(2, 2)
    lin.scale = np.ones(3)  # an ndarray, not a Parameter: not registered
    assert [name for name, _ in lin.named_parameters()] == ["weight", "bias"]
    new = nn.Parameter(np.zeros((2, 2), dtype=np.float32))
    lin.weight = new
    assert dict(lin.named_parameters())["weight"] is new
    lin.bias = None  # removing the bias unregisters it
    assert [name for name, _ in lin.named_parameters()] == ["weight"]


def test_reassigning_a_parameter_keeps_its_place_like_pytorch():
    # PyTorch writes into the existing _parameters slot, so the order (and with it the order of
    # parameters(), state_dict() and an optimizer's per-parameter state) does not change
    lin = nn.Linear(2, 2)
    new = nn.Parameter(np.zeros((2, 2), dtype=np.float32))
    lin.weight = new
    assert [name for name, _ in lin.named_parameters()] == ["weight", "bias"]
    assert lin.parameters()[0] is new


def test_linear_without_bias_has_one_parameter():
    lin = nn.Linear(4, 3, bias=False)
    assert lin.bias is None
    assert [name for name, _ in lin.named_parameters()] == ["weight"]
    x = _x((2, 4))
    assert_allclose(lin(x).data, x.data @ lin.weight.data.T, rtol=1e-6)


def test_train_and_eval_set_training_recursively():
    net = _Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in [net, net.conv, net.head, net.head[1], net.head[2]])
    assert net.train() is net
    assert all(m.training for m in [net, net.conv, net.head, net.head[1], net.head[2]])
    net.train(False)
    assert not net.head[3].training


def test_zero_grad_clears_every_parameter_gradient():
    net = _Net()
    net(_x((2, 1, 4, 4))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# ---------------------------------------------------------------------------------------------
# state_dict / load_state_dict
# ---------------------------------------------------------------------------------------------


def test_state_dict_holds_copies_under_dotted_names():
    net = _Net()
    state = net.state_dict()
    assert list(state) == NET_NAMES
    for name, p in net.named_parameters():
        assert_array_equal(state[name], p.data)
        assert state[name].dtype == np.float32
    before = net.conv.weight.data.copy()
    state["conv.weight"] += 1.0  # editing the copy leaves the model alone
    assert_array_equal(net.conv.weight.data, before)


def test_load_state_dict_round_trip_gives_the_same_outputs():
    npae.manual_seed(1)
    a = _Net()
    npae.manual_seed(2)
    b = _Net()
    x = _x((3, 1, 4, 4))
    assert not np.array_equal(a(x).data, b(x).data)
    b.load_state_dict(a.state_dict())
    assert_array_equal(b(x).data, a(x).data)
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert pa is not pb
        assert pb.dtype == np.float32
    # b got copies: changing a does not change b
    a.conv.weight.data += 1.0
    assert not np.array_equal(a.conv.weight.data, b.conv.weight.data)


def test_load_state_dict_keeps_the_parameter_dtype():
    net = _Net()
    state = {k: v.astype(np.float64) for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    assert all(p.dtype == np.float32 for p in net.parameters())


def _snapshot(module):
    return {name: p.data.copy() for name, p in module.named_parameters()}


def _assert_unchanged(module, snapshot):
    for name, p in module.named_parameters():
        assert_array_equal(p.data, snapshot[name], err_msg=name)


def test_load_state_dict_shape_mismatch_names_key_and_shapes_and_changes_nothing():
    net = _Net()
    before = _snapshot(net)
    state = {k: v + 1.0 for k, v in net.state_dict().items()}  # all different values...
    state["head.3.weight"] = np.zeros((4, 5), dtype=np.float32)  # ...and one bad shape (3, 5)
    with pytest.raises(ValueError, match=r"head\.3\.weight") as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "(4, 5)" in message and "(3, 5)" in message
    # conv.weight etc. come before the bad key and must not have been loaded either
    _assert_unchanged(net, before)


@pytest.mark.parametrize("edit", ["missing", "unexpected"])
def test_load_state_dict_key_mismatch_names_the_key_and_changes_nothing(edit):
    net = _Net()
    before = _snapshot(net)
    state = {k: v + 1.0 for k, v in net.state_dict().items()}
    if edit == "missing":
        del state["head.1.bias"]
        key = "head.1.bias"
    else:
        state["head.9.weight"] = np.zeros(3, dtype=np.float32)
        key = "head.9.weight"
    with pytest.raises(ValueError, match=re.escape(key)):
        net.load_state_dict(state)
    _assert_unchanged(net, before)


def test_load_state_dict_non_strict_loads_what_is_there():
    net = _Net()
    state = net.state_dict()
    new_bias = state.pop("conv.bias") + 1.0
    target = _Net()
    target.load_state_dict({"conv.bias": new_bias}, strict=False)
    assert_array_equal(target.conv.bias.data, new_bias)


# ---------------------------------------------------------------------------------------------
# Each layer's forward is its functional call
# ---------------------------------------------------------------------------------------------


def _check_same(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert g.dtype == w.dtype
        assert_array_equal(g.data, w.data)


def test_linear_forward_is_functional_linear():
    lin = nn.Linear(6, 4)
    x = _x((3, 6))
    _check_same(lin(x), F.linear(x, lin.weight, lin.bias))


@pytest.mark.parametrize("kwargs", [
    {},
    {"stride": 2, "padding": 1},
    {"stride": (2, 1), "padding": (0, 2), "dilation": 2},
])
def test_conv2d_forward_is_functional_conv2d(kwargs):
    conv = nn.Conv2d(3, 4, (3, 2), **kwargs)
    x = _x((2, 3, 9, 8))
    _check_same(conv(x), F.conv2d(x, conv.weight, conv.bias, **kwargs))


@pytest.mark.parametrize("kwargs", [
    {},
    {"stride": 2, "padding": 1, "output_padding": 1},
    {"stride": 2, "padding": 1, "dilation": 2},
])
def test_conv_transpose2d_forward_is_functional_conv_transpose2d(kwargs):
    deconv = nn.ConvTranspose2d(3, 4, 3, **kwargs)
    x = _x((2, 3, 5, 5))
    _check_same(deconv(x), F.conv_transpose2d(x, deconv.weight, deconv.bias, **kwargs))


def test_conv_transpose2d_forward_accepts_output_size():
    deconv = nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1)
    x = _x((1, 2, 4, 4))
    # stride 2 maps both 7x7 and 8x8 onto 4x4; output_size picks which comes back
    assert deconv(x).shape == (1, 1, 7, 7)
    y = deconv(x, output_size=(8, 8))
    assert y.shape == (1, 1, 8, 8)
    want = F.conv_transpose2d(x, deconv.weight, deconv.bias, stride=2, padding=1,
                              output_size=(8, 8))
    _check_same(y, want)


@pytest.mark.parametrize("return_indices", [False, True])
def test_max_pool2d_forward_is_functional_max_pool2d(return_indices):
    pool = nn.MaxPool2d(2, return_indices=return_indices)
    x = _x((2, 3, 6, 6))
    out = pool(x)
    assert isinstance(out, tuple) == return_indices
    _check_same(out, F.max_pool2d(x, 2, return_indices=return_indices))


def test_max_pool2d_with_stride_and_padding_is_functional_max_pool2d():
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    x = _x((1, 2, 7, 7))
    _check_same(pool(x), F.max_pool2d(x, 3, stride=2, padding=1))


def test_max_unpool2d_forward_is_functional_max_unpool2d():
    x = _x((2, 3, 4, 4))
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    unpool = nn.MaxUnpool2d(2)
    z = unpool(y, idx)
    assert z.shape == (2, 3, 4, 4)
    _check_same(z, F.max_unpool2d(y, idx, 2))
    # each maximum goes back where it came from; everything else is zero
    assert_array_equal(z.data[z.data != 0], x.data[z.data != 0])
    assert np.count_nonzero(z.data) == y.size


def test_max_unpool2d_forward_accepts_output_size():
    x = _x((2, 3, 5, 5))
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)  # 5x5 -> 2x2 (the last row is dropped)
    # indices are flat in the 5x5 plane, so only output_size=(5, 5) puts them back right
    z = nn.MaxUnpool2d(2)(y, idx, output_size=(5, 5))
    assert z.shape == (2, 3, 5, 5)
    _check_same(z, F.max_unpool2d(y, idx, 2, output_size=(5, 5)))
    assert_array_equal(z.data[z.data != 0], x.data[z.data != 0])


@pytest.mark.parametrize("kwargs", [{"scale_factor": 2}, {"size": (5, 7)}])
def test_upsample_forward_is_functional_upsample(kwargs):
    up = nn.Upsample(**kwargs)
    x = _x((2, 3, 3, 4))
    _check_same(up(x), F.upsample_nearest2d(x, **kwargs))


def test_upsample_x2_copies_each_pixel_into_a_2x2_block():
    x = Tensor(np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3))
    y = nn.Upsample(scale_factor=2, mode="nearest")(x)
    assert_array_equal(y.data[0, 0], np.repeat(np.repeat(x.data[0, 0], 2, axis=0), 2, axis=1))


def test_upsample_rejects_other_modes_and_needs_exactly_one_of_size_and_scale():
    with pytest.raises(ValueError, match="nearest"):
        nn.Upsample(scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError):
        nn.Upsample()
    with pytest.raises(ValueError):
        nn.Upsample(size=4, scale_factor=2)


@pytest.mark.parametrize("layer, fn", [
    (nn.ReLU(), F.relu),
    (nn.LeakyReLU(), lambda x: F.leaky_relu(x, 0.01)),
    (nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
    (nn.Sigmoid(), F.sigmoid),
    (nn.Tanh(), F.tanh),
], ids=["relu", "leaky_relu", "leaky_relu_0.2", "sigmoid", "tanh"])
def test_activation_layers_are_their_functions(layer, fn):
    x = _x((3, 4, 5))
    _check_same(layer(x), fn(x))
    assert layer.parameters() == []


def test_activation_layers_match_their_formulas():
    v = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    x = Tensor(v)
    assert_allclose(nn.ReLU()(x).data, np.maximum(v, 0))
    assert_allclose(nn.LeakyReLU(0.1)(x).data, np.where(v > 0, v, 0.1 * v))
    assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp(-v)), rtol=1e-6)
    assert_allclose(nn.Tanh()(x).data, np.tanh(v), rtol=1e-6)


def test_flatten_and_unflatten_are_reshapes():
    x = _x((2, 3, 4, 5))
    flat = nn.Flatten()(x)
    assert flat.shape == (2, 60)
    assert_array_equal(flat.data, x.data.reshape(2, 60))
    assert nn.Flatten(start_dim=2)(x).shape == (2, 3, 20)
    assert nn.Flatten(start_dim=0, end_dim=1)(x).shape == (6, 4, 5)
    back = nn.Unflatten(1, (3, 4, 5))(flat)
    assert back.shape == (2, 3, 4, 5)
    assert_array_equal(back.data, x.data)
    img = nn.Unflatten(1, (1, 28, 28))(_x((2, 784)))
    assert img.shape == (2, 1, 28, 28)


def test_unflatten_rejects_a_size_that_does_not_multiply_out():
    with pytest.raises(ValueError, match="784"):
        nn.Unflatten(1, (1, 27, 28))(_x((2, 784)))


def test_flatten_passes_gradients_back_in_the_input_shape():
    x = Tensor(np.ones((2, 3, 2, 2), dtype=np.float64), requires_grad=True)
    weights = np.arange(24, dtype=np.float64).reshape(2, 12)
    (nn.Flatten()(x) * Tensor(weights)).sum().backward()
    assert_array_equal(x.grad, weights.reshape(2, 3, 2, 2))


# ---------------------------------------------------------------------------------------------
# Sequential
# ---------------------------------------------------------------------------------------------


def test_sequential_indexing_len_iteration_and_forward():
    layers = [nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2), nn.Sigmoid()]
    seq = nn.Sequential(*layers)
    assert len(seq) == 4
    assert seq[0] is layers[0]
    assert seq[-1] is layers[-1]
    assert list(seq) == layers
    x = _x((5, 4))
    want = x
    for layer in layers:
        want = layer(want)
    _check_same(seq(x), want)
    assert [name for name, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight",
                                                           "2.bias"]


def test_replacing_a_sequential_layer_keeps_its_place():
    # Sequential runs its modules in registration order, so a replaced layer must stay put
    # (PyTorch writes into the existing slot); moving it to the end would run it last
    seq = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    new = nn.Linear(4, 6)
    setattr(seq, "0", new)
    assert seq[0] is new
    assert [name for name, _ in seq.named_parameters()][:2] == ["0.weight", "0.bias"]
    x = _x((3, 4))
    _check_same(seq(x), seq[2](seq[1](new(x))))


def test_sequential_slice_is_a_sequential_like_pytorch():
    layers = [nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)]
    seq = nn.Sequential(*layers)
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential)
    assert list(tail) == layers[1:]
    h = _x((3, 6))
    _check_same(tail(h), layers[2](layers[1](h)))


# ---------------------------------------------------------------------------------------------
# Initialisation: PyTorch's uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
# ---------------------------------------------------------------------------------------------


def _check_uniform(values, bound, max_gap):
    """values look like uniform(-bound, bound): inside, reaching the edges, centred, flat."""
    v = values.astype(np.float64).ravel()
    n = v.size
    assert values.dtype == np.float32
    assert np.all(np.abs(v) <= bound)
    assert v.max() > bound * (1 - max_gap)
    assert v.min() < -bound * (1 - max_gap)
    # the mean of n uniforms has standard deviation bound / sqrt(3 n)
    assert abs(v.mean()) < 5 * bound / np.sqrt(3 * n)
    assert_allclose(v.std(), bound / np.sqrt(3), rtol=0.05)
    if n >= 10_000:
        counts, _ = np.histogram(v, bins=10, range=(-bound, bound))
        assert_allclose(counts, n / 10, rtol=0.1)


def test_linear_init_is_uniform_in_one_over_sqrt_in_features():
    npae.manual_seed(0)
    lin = nn.Linear(900, 400)
    bound = 1 / np.sqrt(900)
    _check_uniform(lin.weight.data, bound, max_gap=0.01)
    _check_uniform(lin.bias.data, bound, max_gap=0.05)


def test_conv2d_init_uses_fan_in_in_channels_times_kernel_area():
    npae.manual_seed(0)
    conv = nn.Conv2d(16, 200, (3, 5))
    bound = 1 / np.sqrt(16 * 3 * 5)
    assert conv.weight.shape == (200, 16, 3, 5)
    _check_uniform(conv.weight.data, bound, max_gap=0.01)
    _check_uniform(conv.bias.data, bound, max_gap=0.05)


def test_conv_transpose2d_init_uses_pytorchs_fan_in_out_channels_times_kernel_area():
    npae.manual_seed(0)
    deconv = nn.ConvTranspose2d(200, 16, (3, 5))
    assert deconv.weight.shape == (200, 16, 3, 5)
    # PyTorch computes fan_in from weight.shape[1]: out_channels * kH * kW = 240, not 3000
    _check_uniform(deconv.weight.data, 1 / np.sqrt(16 * 3 * 5), max_gap=0.01)
    # many output channels to see the bias's distribution: fan_in 1000 * 1 * 1, not 2
    wide = nn.ConvTranspose2d(2, 1000, 1)
    _check_uniform(wide.weight.data, 1 / np.sqrt(1000), max_gap=0.05)
    _check_uniform(wide.bias.data, 1 / np.sqrt(1000), max_gap=0.05)


@pytest.mark.parametrize("make", [
    lambda: nn.Linear(5, 3),
    lambda: nn.Conv2d(2, 3, 3),
    lambda: nn.ConvTranspose2d(2, 3, 3),
], ids=["linear", "conv2d", "conv_transpose2d"])
def test_manual_seed_makes_initialisation_reproducible(make):
    npae.manual_seed(7)
    a = make()
    npae.manual_seed(7)
    b = make()
    npae.manual_seed(8)
    c = make()
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        assert pa.dtype == np.float32
        assert_array_equal(pa.data, pb.data)
        assert not np.array_equal(pa.data, pc.data)


def test_two_layers_in_a_row_get_different_weights():
    npae.manual_seed(3)
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    assert not np.array_equal(a.weight.data, b.weight.data)


# ---------------------------------------------------------------------------------------------
# Shapes through the article's layers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer, in_shape, out_shape", [
    (nn.Conv2d(1, 1, 3, stride=2, padding=1), (1, 1, 4, 4), (1, 1, 2, 2)),
    (nn.Conv2d(1, 1, 3, padding=1), (1, 1, 4, 4), (1, 1, 4, 4)),
    (nn.Conv2d(1, 16, 3, padding=1), (2, 1, 28, 28), (2, 16, 28, 28)),
    (nn.Conv2d(1, 16, 3, stride=2, padding=1), (2, 1, 28, 28), (2, 16, 14, 14)),
    (nn.Conv2d(16, 32, 3, stride=2, padding=1), (2, 16, 14, 14), (2, 32, 7, 7)),
    (nn.MaxPool2d(2), (1, 1, 4, 4), (1, 1, 2, 2)),
    (nn.MaxPool2d(2), (2, 8, 7, 7), (2, 8, 3, 3)),
    (nn.ConvTranspose2d(1, 1, 3, stride=2), (1, 1, 2, 2), (1, 1, 5, 5)),
    (nn.ConvTranspose2d(4, 16, 2, stride=2), (2, 4, 7, 7), (2, 16, 14, 14)),
    (nn.ConvTranspose2d(8, 8, 3, stride=2), (2, 8, 3, 3), (2, 8, 7, 7)),
    (nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), (2, 32, 7, 7),
     (2, 16, 14, 14)),
    (nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1), (2, 32, 7, 7), (2, 16, 13, 13)),
    (nn.Upsample(scale_factor=2), (2, 4, 7, 7), (2, 4, 14, 14)),
    (nn.Upsample(size=28), (2, 4, 14, 14), (2, 4, 28, 28)),
], ids=lambda v: repr(v).split("(")[0] if isinstance(v, nn.Module) else None)
def test_article_layer_shapes(layer, in_shape, out_shape):
    assert layer(_x(in_shape)).shape == out_shape


def test_unpool_undoes_pool_shapes():
    y, idx = nn.MaxPool2d(2, return_indices=True)(_x((2, 4, 14, 14)))
    assert y.shape == idx.shape == (2, 4, 7, 7)
    assert nn.MaxUnpool2d(2)(y, idx).shape == (2, 4, 14, 14)


# ---------------------------------------------------------------------------------------------
# Gradients through layers, in float64
# ---------------------------------------------------------------------------------------------


def _to_float64(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


def _directional_derivatives(loss_of, p, directions, eps=1e-6):
    """Central differences of loss_of() along each direction u in p's space."""
    keep = p.data.copy()
    out = []
    for u in directions:
        p.data = keep + eps * u
        up = loss_of()
        p.data = keep - eps * u
        down = loss_of()
        out.append((up - down) / (2 * eps))
    p.data = keep
    return np.array(out)


def _small_networks():
    npae.manual_seed(11)
    a = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(8, 3), nn.Sigmoid())
    b = nn.Sequential(nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1),
                      nn.LeakyReLU(0.1), nn.Upsample(scale_factor=2),
                      nn.Conv2d(2, 1, 3, stride=2, padding=1), nn.ReLU())
    return [(a, (1, 1, 4, 4)), (b, (1, 2, 2, 2))]


@pytest.mark.parametrize("index", [0, 1], ids=["conv_pool_linear", "deconv_upsample_conv"])
def test_gradcheck_through_a_float64_sequential(index):
    seq, shape = _small_networks()[index]
    _to_float64(seq)
    x = np.random.default_rng(5).standard_normal(shape)
    # input gradient: npae.gradcheck, full Jacobian
    assert npae.gradcheck(seq, [x])
    v = np.random.default_rng(6).standard_normal(seq(Tensor(x)).shape)

    def loss_of():
        with npae.no_grad():
            return float(np.sum(seq(Tensor(x)).data * v))

    seq.zero_grad()
    seq(Tensor(x)).backward(v)
    # parameter gradients: <grad, u> against central differences along random directions u,
    # three per parameter (a wrong factor or a wrong element shows up in every one of them)
    rng = np.random.default_rng(7)
    for name, p in seq.named_parameters():
        directions = rng.standard_normal((3,) + p.shape)
        numeric = _directional_derivatives(loss_of, p, directions)
        analytic = np.array([np.sum(p.grad * u) for u in directions])
        assert p.grad.dtype == np.float64
        assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9, err_msg=name)


# --- Sequential refuses what it cannot run ------------------------------------------------------

def test_sequential_refuses_a_function_naming_its_position_and_type():
    # the case: F.relu used to vanish, leaving a 2-layer model
    with pytest.raises(TypeError, match=r"Sequential: position 1 is a function, not an "
                                        r"nn\.Module; use its layer instead \(e\.g\. nn\.ReLU\(\)"):
        nn.Sequential(nn.Linear(3, 2), F.relu, nn.Linear(2, 2))
    with pytest.raises(TypeError, match="position 0 is a int"):
        nn.Sequential(3)


def test_sequential_takes_named_layers_from_an_ordered_dict():
    from collections import OrderedDict

    npae.manual_seed(0)
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(3, 2)), ("act", nn.ReLU()),
                                       ("out", nn.Linear(2, 1))]))
    npae.manual_seed(0)
    plain = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    assert len(named) == 3 and isinstance(named.act, nn.ReLU)
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias", "out.weight",
                                                        "out.bias"]
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    assert_array_equal(named(x).data, plain(x).data)  # it runs them, not its input
    assert list(named[1:]._modules) == ["act", "out"]  # a slice keeps the names
    with pytest.raises(TypeError, match=r"entry 1 \('act'\) is a function"):
        nn.Sequential(OrderedDict([("fc", nn.Linear(3, 2)), ("act", F.relu)]))
    with pytest.raises(TypeError, match="usable as an attribute name"):
        nn.Sequential(OrderedDict([("a b", nn.ReLU())]))


def test_a_tuple_between_two_layers_is_refused_naming_both():
    # the case: ReLU used to stack (values, indices) into a float64 (2, 1, 1, 2, 2)
    seq = nn.Sequential(nn.MaxPool2d(2, return_indices=True), nn.ReLU())
    x = Tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    with pytest.raises(TypeError, match=r"layer '0' \(MaxPool2d\) returned a tuple of 2 values, "
                                        r"but layer '1' \(ReLU\) takes one tensor"):
        seq(x)


def test_a_tuple_of_tensors_given_to_an_op_is_refused():
    pooled = F.max_pool2d(Tensor(np.arange(16.0).reshape(1, 1, 4, 4)), 2, return_indices=True)
    with pytest.raises(TypeError, match=r"ReLU: input 0 is a tuple of 2 values, not a tensor"):
        F.relu(pooled)


# --- layers check their arguments when they are made ------------------------------------------

@pytest.mark.parametrize("make, says", [
    (lambda: nn.Conv2d(1, 4, 0), "Conv2d: kernel_size must be positive, got (0, 0)"),
    (lambda: nn.Conv2d(0, 4, 3), "Conv2d: in_channels must be a positive int, got 0"),
    (lambda: nn.Conv2d(1, 4, 3, stride=-1), "Conv2d: stride must be positive, got (-1, -1)"),
    (lambda: nn.Conv2d(1, 4, 3, padding=-1), "Conv2d: padding must be >= 0, got (-1, -1)"),
    (lambda: nn.Conv2d(1, 4, 3, padding="full"), "Conv2d: padding must be an int or a pair"),
    (lambda: nn.Conv2d(1, 4, 3, dilation=0), "Conv2d: dilation must be positive"),
    (lambda: nn.Conv2d(1, 2.5, 3), "Conv2d: out_channels must be a positive int, got 2.5"),
    (lambda: nn.Linear(-1, 5), "Linear: in_features must be a positive int, got -1"),
    (lambda: nn.Linear(5, 0), "Linear: out_features must be a positive int, got 0"),
    (lambda: nn.ConvTranspose2d(4, 1, 3, stride=2, output_padding=2),
     "ConvTranspose2d: output_padding 2 must be smaller than stride 2 or dilation 1"),
    (lambda: nn.ConvTranspose2d(4, 0, 3), "ConvTranspose2d: out_channels must be a positive"),
    (lambda: nn.MaxPool2d(2, padding=2), "MaxPool2d: padding 2 must be at most half the kernel"),
    (lambda: nn.MaxPool2d(0), "MaxPool2d: kernel_size must be positive"),
    (lambda: nn.MaxUnpool2d(2, stride=0), "MaxUnpool2d: stride must be positive"),
    (lambda: nn.Upsample(scale_factor=-2), "Upsample: scale_factor must be positive and finite"),
    (lambda: nn.Upsample(scale_factor=float("inf")), "must be positive and finite"),
    (lambda: nn.Upsample(size=0), "Upsample: size must be positive"),
])
def test_layers_refuse_bad_arguments_when_made_not_at_the_first_forward(make, says):
    with pytest.raises((ValueError, TypeError), match=re.escape(says)):
        make()


def test_valid_layer_arguments_still_build():
    nn.Conv2d(1, 4, (3, 1), stride=(2, 1), padding=(1, 0), dilation=2)
    nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1)
    nn.ConvTranspose2d(4, 1, 3, stride=1, dilation=2, output_padding=1)
    nn.MaxPool2d(3, stride=2, padding=1)
    nn.Upsample(scale_factor=(2, 1.5))
    nn.Upsample(size=(7, 9))


@pytest.mark.parametrize("op", [lambda t: F.conv2d(t, Tensor(np.ones((1, 1, 1, 1)))),
                                lambda t: F.max_pool2d(t, 2), lambda t: F.mse_loss(t, t)])
def test_a_tuple_of_tensors_given_to_a_checked_op_is_refused_at_entry(op):
    pooled = F.max_pool2d(Tensor(np.arange(16.0).reshape(1, 1, 4, 4)), 2, return_indices=True)
    with pytest.raises(TypeError, match="got a tuple of 2 values where a tensor goes"):
        op(pooled)
