"""npae.models: the article's autoencoders, built by name.

For every model: the contract (28x28 in, 28x28 out in [0, 1], a scalar loss whose backward
reaches every parameter, a few Adam steps lower the loss); then each architecture is read back
layer by layer (kinds, channels, kernels, strides, the shape after each layer); the unpooling
model must use the encoder's argmax; the VAE's loss is recomputed in NumPy from its parts.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import npae
import npae.functional as F
from npae import Tensor, models, nn, optim

NAMES = ["linear", "conv-transpose", "conv-upsample", "conv-unpool", "conv-strided", "denoise",
         "vae"]


def _images():
    """Two 28x28 'digits' in [0, 1]: a disc and a bar, shape (2, 1, 28, 28), float32."""
    yy, xx = np.mgrid[:28, :28]
    disc = ((yy - 14) ** 2 + (xx - 14) ** 2 < 64).astype(np.float32)
    bar = ((xx > 10) & (xx < 17) & (yy > 4) & (yy < 24)).astype(np.float32)
    return np.stack([disc, bar])[:, None]


def _noisy(images, seed=0):
    noise = np.random.default_rng(seed).standard_normal(images.shape).astype(np.float32)
    return np.clip(images + 0.5 * noise, 0, 1)


def _create(name, seed=0):
    npae.manual_seed(seed)
    return models.create(name)


def _loss(model, x_in, target, seed=99):
    # the VAE samples its code from npae's generator: the same seed makes two losses comparable
    npae.manual_seed(seed)
    return model.loss(Tensor(x_in), Tensor(target))


# ---------------------------------------------------------------------------------------------
# The contract every model keeps
# ---------------------------------------------------------------------------------------------


def test_names_are_the_articles_models():
    assert models.names() == NAMES


def test_unknown_name_is_an_error_listing_the_names():
    with pytest.raises(ValueError, match="nonsense") as info:
        models.create("nonsense")
    for name in NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_create_returns_a_fresh_module_seeded_by_manual_seed(name):
    a = _create(name, seed=0)
    b = _create(name, seed=0)
    c = _create(name, seed=1)
    assert isinstance(a, nn.Module)
    assert a.parameters()
    for (na, pa), (nb, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(),
                                           c.named_parameters(), strict=True):
        assert na == nb
        assert pa is not pb
        assert pa.dtype == np.float32
        assert_array_equal(pa.data, pb.data)
        assert not np.array_equal(pa.data, pc.data)


@pytest.mark.parametrize("name", NAMES)
def test_reconstruct_maps_28x28_to_28x28_in_0_1(name):
    model = _create(name)
    x = Tensor(np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32))
    y = model.reconstruct(x)
    assert isinstance(y, Tensor)
    assert y.shape == (3, 1, 28, 28)
    assert y.dtype == np.float32
    assert np.all((y.data >= 0) & (y.data <= 1))


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_a_scalar_whose_backward_reaches_every_parameter(name):
    model = _create(name)
    images = _images()
    loss = _loss(model, _noisy(images), images)
    assert isinstance(loss, Tensor)
    assert loss.shape == ()
    assert loss.dtype == np.float32
    assert np.isfinite(loss.item()) and loss.item() > 0
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.shape == p.shape, pname
        assert np.all(np.isfinite(p.grad)), pname
        assert np.any(p.grad != 0), pname


@pytest.mark.parametrize("name", NAMES)
def test_a_few_adam_steps_lower_the_loss(name):
    model = _create(name)
    target = _images()
    x_in = _noisy(target) if name == "denoise" else target
    opt = optim.Adam(model.parameters(), lr=1e-3 if name == "vae" else 1e-2)
    before = _loss(model, x_in, target).item()
    for _ in range(6):
        opt.zero_grad()
        _loss(model, x_in, target).backward()
        opt.step()
    after = _loss(model, x_in, target).item()
    assert after < 0.95 * before


# ---------------------------------------------------------------------------------------------
# Architectures, read back from the layers
# ---------------------------------------------------------------------------------------------


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _describe(m):
    """A layer's kind and hyper-parameters, or None for layers without any (activations)."""
    if isinstance(m, nn.Linear):
        return ("linear", m.in_features, m.out_features)
    if isinstance(m, nn.Conv2d):
        return ("conv", m.in_channels, m.out_channels, _pair(m.kernel_size), _pair(m.stride),
                _pair(m.padding))
    if isinstance(m, nn.ConvTranspose2d):
        return ("deconv", m.in_channels, m.out_channels, _pair(m.kernel_size), _pair(m.stride),
                _pair(m.padding), _pair(m.output_padding))
    if isinstance(m, nn.MaxPool2d):
        return ("pool", _pair(m.kernel_size))
    if isinstance(m, nn.MaxUnpool2d):
        return ("unpool", _pair(m.kernel_size))
    if isinstance(m, nn.Upsample):
        return ("upsample", m.scale_factor, m.mode)
    return None


def _leaves(model):
    return [m for m in model.modules() if not list(m.children())]


def _trace(model, n=2):
    """Run the leaf layers one after another (the models built from Sequentials run them in
    that order): each structural layer's description with the shape it outputs, the kinds of
    all leaves, and the final output, which must equal model(x)."""
    x = Tensor(_images()[:n])
    h = x
    steps, kinds = [], []
    for m in _leaves(model):
        h = m(h)
        kinds.append(type(m).__name__)
        if _describe(m) is not None:
            steps.append((_describe(m), h.shape[1:]))
    assert_array_equal(h.data, model(x).data)
    return steps, kinds


def _conv(cin, cout, k=3, s=1, p=1):
    return ("conv", cin, cout, (k, k), (s, s), (p, p))


def _deconv(cin, cout, k, s, p=0, op=0):
    return ("deconv", cin, cout, (k, k), (s, s), (p, p), (op, op))


POOL = ("pool", (2, 2))
UPSAMPLE = ("upsample", 2, "nearest")

POOLING_ENCODER = [
    (_conv(1, 16), (16, 28, 28)), (POOL, (16, 14, 14)),
    (_conv(16, 4), (4, 14, 14)), (POOL, (4, 7, 7)),
]

ARCHITECTURES = {
    "linear": [(("linear", 784, 32), (32,)), (("linear", 32, 784), (784,))],
    "conv-transpose": POOLING_ENCODER + [
        (_deconv(4, 16, 2, 2), (16, 14, 14)), (_deconv(16, 1, 2, 2), (1, 28, 28)),
    ],
    "conv-upsample": POOLING_ENCODER + [
        (UPSAMPLE, (4, 14, 14)), (_conv(4, 16), (16, 14, 14)),
        (UPSAMPLE, (16, 28, 28)), (_conv(16, 1), (1, 28, 28)),
    ],
    "conv-strided": [
        (_conv(1, 16, s=2), (16, 14, 14)), (_conv(16, 32, s=2), (32, 7, 7)),
        (_deconv(32, 16, 3, 2, p=1, op=1), (16, 14, 14)),
        (_deconv(16, 1, 3, 2, p=1, op=1), (1, 28, 28)),
    ],
    "denoise": [
        (_conv(1, 32), (32, 28, 28)), (POOL, (32, 14, 14)),
        (_conv(32, 16), (16, 14, 14)), (POOL, (16, 7, 7)),
        (_conv(16, 8), (8, 7, 7)), (POOL, (8, 3, 3)),
        (_deconv(8, 8, 3, 2), (8, 7, 7)),
        (_deconv(8, 16, 2, 2), (16, 14, 14)),
        (_deconv(16, 32, 2, 2), (32, 28, 28)),
        (_conv(32, 1), (1, 28, 28)),
    ],
}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architecture_layer_by_layer(name):
    steps, kinds = _trace(_create(name))
    assert steps == ARCHITECTURES[name]
    # the last activation squashes into [0, 1]
    activations = [k for k in kinds if k in ("ReLU", "LeakyReLU", "Sigmoid", "Tanh")]
    assert activations[-1] == "Sigmoid"


def test_linear_model_is_relu_then_sigmoid():
    _, kinds = _trace(_create("linear"))
    assert kinds == ["Flatten", "Linear", "ReLU", "Linear", "Sigmoid", "Unflatten"]


def test_conv_strided_decoder_needs_its_output_padding():
    # output_padding picks 14 (and then 28) among the sizes a stride-2 conv maps onto 7 (and 14)
    steps, _ = _trace(_create("conv-strided"))
    deconvs = [shape for what, shape in steps if what[0] == "deconv"]
    assert deconvs == [(16, 14, 14), (1, 28, 28)]
    without = nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1)
    assert without(Tensor(np.zeros((1, 32, 7, 7), dtype=np.float32))).shape == (1, 16, 13, 13)


# ---------------------------------------------------------------------------------------------
# conv-unpool: the decoder puts values back where the encoder's maxima were
# ---------------------------------------------------------------------------------------------


def test_conv_unpool_layers():
    model = _create("conv-unpool")
    described = [_describe(m) for m in _leaves(model) if _describe(m) is not None]
    convs = [d for d in described if d[0] == "conv"]
    assert convs == [_conv(1, 16), _conv(16, 4), _conv(4, 16), _conv(16, 1)]
    assert [d for d in described if d[0] == "pool"] == [POOL, POOL]
    assert [d for d in described if d[0] == "unpool"] == [("unpool", (2, 2))] * 2
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert all(p.return_indices for p in pools)


def _redirect_indices(pool, move):
    """Make pool return the same maxima with each index moved by move(row, col)
    (in the H x W plane it pooled)."""
    real = pool.forward

    def forward(x):
        y, idx = real(x)
        w = x.shape[-1]
        r, c = np.divmod(np.asarray(idx.data), w)
        r, c = move(r, c)
        return y, Tensor((r * w + c).astype(idx.dtype))

    pool.forward = forward


@pytest.mark.parametrize("which", [0, 1], ids=["first_pool", "second_pool"])
def test_conv_unpool_output_depends_on_where_the_maxima_were(which):
    x = Tensor(_images())
    model = _create("conv-unpool")
    plain = model(x).data
    pool = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)][which]

    # the identity move changes nothing: the wrapper itself is harmless
    _redirect_indices(pool, lambda r, c: (r, c))
    assert_array_equal(model(x).data, plain)

    # the same pooled values, each sent to the opposite corner of its 2x2 window
    model = _create("conv-unpool")
    pool = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)][which]
    _redirect_indices(pool, lambda r, c: (r ^ 1, c ^ 1))
    moved = model(x).data
    assert moved.shape == plain.shape
    assert not np.allclose(moved, plain)


# ---------------------------------------------------------------------------------------------
# vae
# ---------------------------------------------------------------------------------------------


def test_vae_layers_and_shapes():
    model = _create("vae")
    linears = [_describe(m) for m in model.modules() if isinstance(m, nn.Linear)]
    assert sorted(linears) == sorted([("linear", 784, 400), ("linear", 400, 20),
                                      ("linear", 400, 20), ("linear", 20, 400),
                                      ("linear", 400, 784)])
    x = Tensor(_images())
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (2, 20)
    decoded = model.decode(mu)
    assert decoded.shape == (2, 1, 28, 28)
    assert np.all((decoded.data >= 0) & (decoded.data <= 1))


def test_vae_reconstruct_decodes_the_mean_without_sampling():
    model = _create("vae")
    x = Tensor(_images())
    mu, _ = model.encode(x)
    npae.manual_seed(1)
    first = model.reconstruct(x).data
    npae.manual_seed(2)
    assert_array_equal(model.reconstruct(x).data, first)
    assert_array_equal(first, model.decode(mu).data)


@pytest.mark.parametrize("seed", [5, 6])
def test_vae_loss_is_bce_sum_plus_kl_per_image(seed):
    model = _create("vae")
    x_in = _images()
    target = _noisy(x_in, seed=3)  # fractional targets exercise both BCE terms
    n = x_in.shape[0]
    loss = _loss(model, x_in, target, seed=seed).item()

    # the same computation in float64 NumPy, from the model's encoder and decoder
    mu, logvar = (t.data.astype(np.float64) for t in model.encode(Tensor(x_in)))
    # forward draws eps (N, 20) straight from the freshly seeded generator
    eps = np.random.default_rng(seed).standard_normal((n, 20)).astype(np.float32)
    z = mu + np.exp(0.5 * logvar) * eps
    p = model.decode(Tensor(z.astype(np.float32))).data.astype(np.float64).reshape(n, 784)
    t = target.astype(np.float64).reshape(n, 784)
    bce = -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p))
    kl = -0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar))
    assert kl > 0
    assert_allclose(loss, (bce + kl) / n, rtol=1e-5)


def test_vae_loss_depends_on_the_sample():
    model = _create("vae")
    x = _images()
    assert _loss(model, x, x, seed=1).item() != _loss(model, x, x, seed=2).item()
    assert _loss(model, x, x, seed=1).item() == _loss(model, x, x, seed=1).item()


# ---------------------------------------------------------------------------------------------
# Seeded weights: the order each model draws its layers' initial weights in
# ---------------------------------------------------------------------------------------------

# Parameter prefix and the layer that owns it, in the order the global generator initialises
# them: saved checkpoints (and Adam's state, kept per parameter in this order) and the quality
# table's seeds depend on it. conv-transpose and conv-upsample have always drawn their decoder
# first.
def _new_conv(cin, cout, **kw):
    return lambda: nn.Conv2d(cin, cout, 3, **kw)


def _new_tconv(cin, cout, k, **kw):
    return lambda: nn.ConvTranspose2d(cin, cout, k, **kw)


POOLING_ENCODER_INIT = [("encoder.0", _new_conv(1, 16, padding=1)),
                        ("encoder.3", _new_conv(16, 4, padding=1))]

INIT_ORDER = {
    "linear": [("encoder.1", lambda: nn.Linear(784, 32)),
               ("decoder.0", lambda: nn.Linear(32, 784))],
    "conv-transpose": [("decoder.0", _new_tconv(4, 16, 2, stride=2)),
                       ("decoder.2", _new_tconv(16, 1, 2, stride=2))] + POOLING_ENCODER_INIT,
    "conv-upsample": [("decoder.1", _new_conv(4, 16, padding=1)),
                      ("decoder.4", _new_conv(16, 1, padding=1))] + POOLING_ENCODER_INIT,
    "conv-unpool": [("conv1", _new_conv(1, 16, padding=1)),
                    ("conv2", _new_conv(16, 4, padding=1)),
                    ("deconv2", _new_conv(4, 16, padding=1)),
                    ("deconv1", _new_conv(16, 1, padding=1))],
    "conv-strided": [("encoder.0", _new_conv(1, 16, stride=2, padding=1)),
                     ("encoder.2", _new_conv(16, 32, stride=2, padding=1)),
                     ("decoder.0", _new_tconv(32, 16, 3, stride=2, padding=1, output_padding=1)),
                     ("decoder.2", _new_tconv(16, 1, 3, stride=2, padding=1, output_padding=1))],
    "denoise": [("encoder.0", _new_conv(1, 32, padding=1)),
                ("encoder.3", _new_conv(32, 16, padding=1)),
                ("encoder.6", _new_conv(16, 8, padding=1)),
                ("decoder.0", _new_tconv(8, 8, 3, stride=2)),
                ("decoder.2", _new_tconv(8, 16, 2, stride=2)),
                ("decoder.4", _new_tconv(16, 32, 2, stride=2)),
                ("decoder.6", _new_conv(32, 1, padding=1))],
    "vae": [("fc1", lambda: nn.Linear(784, 400)), ("fc_mu", lambda: nn.Linear(400, 20)),
            ("fc_logvar", lambda: nn.Linear(400, 20)), ("fc3", lambda: nn.Linear(20, 400)),
            ("fc4", lambda: nn.Linear(400, 784))],
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 7])
def test_seeded_weights_are_drawn_layer_by_layer_in_the_models_order(name, seed):
    npae.manual_seed(seed)
    expected = {f"{prefix}.{k}": v for prefix, make in INIT_ORDER[name]
                for k, v in make().state_dict().items()}
    after = npae.engine.random.generator().standard_normal(3)
    got = _create(name, seed).state_dict()
    assert got.keys() == expected.keys()
    for k, v in got.items():
        assert v.dtype == expected[k].dtype and v.shape == expected[k].shape, k
        assert v.tobytes() == expected[k].tobytes(), k
    # and nothing else drew from the generator
    assert_array_equal(npae.engine.random.generator().standard_normal(3), after)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_names_in_order(name):
    # an encoder's parameters come before its decoder's, whichever was initialised first
    names = [f"{prefix}.{k}" for prefix, _ in INIT_ORDER[name] for k in ("weight", "bias")]
    names.sort(key=lambda k: k.startswith("decoder."))
    assert [k for k, _ in _create(name).named_parameters()] == names


# ---------------------------------------------------------------------------------------------
# The descriptions the models are built from (npae/models/architectures.py)
# ---------------------------------------------------------------------------------------------


def test_every_model_is_described_and_built_from_its_description():
    assert list(models.ARCHITECTURES) == models.names() == list(models.MODELS)
    for name in NAMES:
        d = models.architecture(name)
        model = _create(name)
        if d.stack is None:
            continue
        # the modules the model runs, in order, are the description's layers
        if isinstance(model, models.Autoencoder):
            ran = list(model.encoder) + list(model.decoder)
        else:
            ran = [m for _, m in model.steps]
        assert [type(m).__name__ for m in ran] == [layer.kind for layer in d.stack], name


def test_unknown_architecture_is_an_error_listing_the_names():
    with pytest.raises(ValueError, match="unknown model 'nonsense'; choose one of: linear, "):
        models.architecture("nonsense")


def test_a_chain_checks_its_pooling_indices_when_described():
    from npae.models.architectures import Autoencoder, Chain, layer

    with pytest.raises(ValueError, match="reads the indices of 'pool9', which no earlier pool"):
        Chain((layer("MaxPool2d", 2, return_indices=True, name="pool1"),
               layer("MaxUnpool2d", 2, indices="pool9")))
    with pytest.raises(ValueError, match="keeps its indices needs a name"):
        Chain((layer("MaxPool2d", 2, return_indices=True),))
    with pytest.raises(ValueError, match="two layers are named 'a'"):
        Chain((layer("ReLU", name="a"), layer("ReLU", name="a")))
    with pytest.raises(ValueError, match="use a Chain"):
        Autoencoder((layer("MaxPool2d", 2, return_indices=True),), ())


def test_a_chain_runs_a_new_description():
    # a two-level unpooling model written only as a description: the pools hand over indices
    from npae.models.architectures import Chain, layer

    d = Chain((layer("Conv2d", 1, 2, 3, padding=1, name="enc"),
               layer("MaxPool2d", 2, return_indices=True, name="pool"),
               layer("MaxUnpool2d", 2, indices="pool"), layer("Sigmoid")))
    model = models.Chain(d)
    assert [k for k, _ in model.named_parameters()] == ["enc.weight", "enc.bias"]
    x = Tensor(_images())
    h, idx = F.max_pool2d(model.enc(x), 2, return_indices=True)
    assert_array_equal(model(x).data, F.sigmoid(F.max_unpool2d(h, idx, 2)).data)
