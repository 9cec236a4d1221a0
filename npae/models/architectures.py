"""The article's seven models, described once: their layers, in order, and what each is called.

This module is plain data and imports neither npae.nn nor PyTorch. npae builds its models from
it with npae.nn (npae/models/modules.py: ``npae.models.create(name)``), and the benchmarks build
the PyTorch twins from it with torch.nn (benchmarks/torch_side.py). A layer is written as its
class name, which npae.nn shares with torch.nn, and that class's own arguments, so
``build(layer, nn)`` makes it in either framework: the same layers, initialised in the same
order, under the same parameter names.

Three shapes of model:

    Autoencoder(encoder, decoder)   two nn.Sequentials, applied one after the other; parameters
                                    are named by position: encoder.1.weight, decoder.0.bias
    Chain(layers)                   one run of layers that hands the pooling indices over: a
                                    named layer is an attribute of the model (conv1.weight), a
                                    MaxPool2d with return_indices=True keeps its argmax under its
                                    name, and the MaxUnpool2d whose ``indices`` names it reads it
    VAE(encoder, mu, logvar, decoder, output)
                                    a Gaussian code: two heads on the encoder's output, a sample
                                    in between (which is why it has no single layer stack)

Unnamed layers in a Chain or VAE hold no parameters (activations, reshapes, pools): they run in
their place and are not attributes of the model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    """One layer: ``kind(*args, **kwargs)`` in npae.nn or torch.nn."""

    kind: str  # the class name, the same in npae.nn and torch.nn: "Conv2d", "ReLU", ...
    args: tuple = ()
    kwargs: tuple = ()  # (name, value) pairs, so that a description cannot change
    name: str | None = None  # Chain and VAE: the model's attribute, and its parameters' prefix
    indices: str | None = None  # MaxUnpool2d in a Chain: the name of the pool it undoes

    @property
    def keeps_indices(self) -> bool:
        return bool(dict(self.kwargs).get("return_indices", False))


def layer(kind, *args, name=None, indices=None, **kwargs) -> Layer:
    """``layer("Conv2d", 1, 16, 3, padding=1)`` describes ``nn.Conv2d(1, 16, 3, padding=1)``."""
    return Layer(kind, args, tuple(kwargs.items()), name, indices)


@dataclass(frozen=True)
class Autoencoder:
    """encoder then decoder, each an nn.Sequential; trained with MSE against the clean image.

    ``decoder_first``: build (and so initialise) the decoder before the encoder. Two models have
    always been built that way; keeping the order keeps their seeded weights, and with them
    saved checkpoints and the quality table, the same.
    """

    encoder: tuple[Layer, ...]
    decoder: tuple[Layer, ...]
    decoder_first: bool = False

    def __post_init__(self):
        for lay in self.encoder + self.decoder:
            if lay.name is not None or lay.indices is not None or lay.keeps_indices:
                raise ValueError(f"Autoencoder: {lay.kind} {lay.name or ''} is named or passes "
                                 "pooling indices; a Sequential does neither (use a Chain)")

    @property
    def stack(self) -> tuple[Layer, ...]:
        """Every layer, in the order forward applies them."""
        return self.encoder + self.decoder


@dataclass(frozen=True)
class Chain:
    """Layers applied in order, pooling indices handed from each pool to its unpool; trained
    with MSE like an Autoencoder."""

    layers: tuple[Layer, ...]

    def __post_init__(self):
        names, kept = set(), set()
        for lay in self.layers:
            if lay.name is not None:
                if lay.name in names:
                    raise ValueError(f"Chain: two layers are named {lay.name!r}")
                names.add(lay.name)
            if lay.keeps_indices:
                if lay.name is None:
                    raise ValueError(f"Chain: a {lay.kind} that keeps its indices needs a name")
                kept.add(lay.name)
            if lay.indices is not None and lay.indices not in kept:
                raise ValueError(f"Chain: {lay.name or lay.kind} reads the indices of "
                                 f"{lay.indices!r}, which no earlier pool keeps")

    @property
    def stack(self) -> tuple[Layer, ...]:
        return self.layers


@dataclass(frozen=True)
class VAE:
    """Variational autoencoder: ``encoder`` (image -> hidden), the heads ``mu`` and ``logvar``
    (hidden -> code mean and log-variance), a code sampled from them, ``decoder`` (code ->
    logits), ``output`` (logits -> image in [0, 1])."""

    encoder: tuple[Layer, ...]
    mu: Layer
    logvar: Layer
    decoder: tuple[Layer, ...]
    output: tuple[Layer, ...]

    # forward samples between the heads and the decoder: no single stack of layers
    stack = None

    @property
    def latent(self) -> int:
        """Size of the code: the mu head's out_features."""
        return self.mu.args[1]


# -------------------------------------------------------------------------------- the models
def _pooling_encoder():
    return (
        layer("Conv2d", 1, 16, 3, padding=1), layer("ReLU"), layer("MaxPool2d", 2),  # 16x14x14
        layer("Conv2d", 16, 4, 3, padding=1), layer("ReLU"), layer("MaxPool2d", 2),  # 4x7x7
    )


ARCHITECTURES = {
    # 784 -> 32 -> 784, ReLU then sigmoid
    "linear": Autoencoder(
        encoder=(layer("Flatten"), layer("Linear", 784, 32), layer("ReLU")),
        decoder=(layer("Linear", 32, 784), layer("Sigmoid"), layer("Unflatten", 1, (1, 28, 28))),
    ),
    # the pooling encoder | transpose convs 2x2 stride 2 (windows that do not overlap)
    "conv-transpose": Autoencoder(
        encoder=_pooling_encoder(),
        decoder=(
            layer("ConvTranspose2d", 4, 16, 2, stride=2), layer("ReLU"),         # 16 x 14 x 14
            layer("ConvTranspose2d", 16, 1, 2, stride=2), layer("Sigmoid"),      # 1 x 28 x 28
        ),
        decoder_first=True,
    ),
    # the pooling encoder | nearest upsample x2 + conv, twice (no checkerboard)
    "conv-upsample": Autoencoder(
        encoder=_pooling_encoder(),
        decoder=(
            layer("Upsample", scale_factor=2), layer("Conv2d", 4, 16, 3, padding=1),
            layer("ReLU"),                                                       # 16 x 14 x 14
            layer("Upsample", scale_factor=2), layer("Conv2d", 16, 1, 3, padding=1),
            layer("Sigmoid"),                                                    # 1 x 28 x 28
        ),
        decoder_first=True,
    ),
    # the pooling encoder keeping its argmax | max-unpool (each value back where its maximum
    # was) + conv, twice
    "conv-unpool": Chain((
        layer("Conv2d", 1, 16, 3, padding=1, name="conv1"), layer("ReLU"),
        layer("MaxPool2d", 2, return_indices=True, name="pool1"),                # 16 x 14 x 14
        layer("Conv2d", 16, 4, 3, padding=1, name="conv2"), layer("ReLU"),
        layer("MaxPool2d", 2, return_indices=True, name="pool2"),                # 4 x 7 x 7
        layer("MaxUnpool2d", 2, name="unpool2", indices="pool2"),
        layer("Conv2d", 4, 16, 3, padding=1, name="deconv2"), layer("ReLU"),     # 16 x 14 x 14
        layer("MaxUnpool2d", 2, name="unpool1", indices="pool1"),
        layer("Conv2d", 16, 1, 3, padding=1, name="deconv1"), layer("Sigmoid"),  # 1 x 28 x 28
    )),
    # strided convs 1->16->32 (3x3, s2, p1) | transpose convs 3x3 s2 (overlapping windows);
    # output_padding picks 14 (then 28) among the sizes a stride-2 conv maps onto 7 (then 14)
    "conv-strided": Autoencoder(
        encoder=(
            layer("Conv2d", 1, 16, 3, stride=2, padding=1), layer("ReLU"),      # 16 x 14 x 14
            layer("Conv2d", 16, 32, 3, stride=2, padding=1), layer("ReLU"),     # 32 x 7 x 7
        ),
        decoder=(
            layer("ConvTranspose2d", 32, 16, 3, stride=2, padding=1, output_padding=1),
            layer("ReLU"),                                                       # 16 x 14 x 14
            layer("ConvTranspose2d", 16, 1, 3, stride=2, padding=1, output_padding=1),
            layer("Sigmoid"),                                                    # 1 x 28 x 28
        ),
    ),
    # conv 1->32->16->8 with pools | transpose convs 8->8->16->32, conv 32->1
    "denoise": Autoencoder(
        encoder=(
            layer("Conv2d", 1, 32, 3, padding=1), layer("ReLU"), layer("MaxPool2d", 2),   # 32x14
            layer("Conv2d", 32, 16, 3, padding=1), layer("ReLU"), layer("MaxPool2d", 2),  # 16x7
            layer("Conv2d", 16, 8, 3, padding=1), layer("ReLU"), layer("MaxPool2d", 2),   # 8x3
        ),
        decoder=(
            layer("ConvTranspose2d", 8, 8, 3, stride=2), layer("ReLU"),          # 8 x 7 x 7
            layer("ConvTranspose2d", 8, 16, 2, stride=2), layer("ReLU"),         # 16 x 14 x 14
            layer("ConvTranspose2d", 16, 32, 2, stride=2), layer("ReLU"),        # 32 x 28 x 28
            layer("Conv2d", 32, 1, 3, padding=1), layer("Sigmoid"),              # 1 x 28 x 28
        ),
    ),
    # 784-400-20 (mu, log-variance), reparameterisation, 20-400-784
    "vae": VAE(
        encoder=(layer("Flatten"), layer("Linear", 784, 400, name="fc1"), layer("ReLU")),
        mu=layer("Linear", 400, 20, name="fc_mu"),
        logvar=layer("Linear", 400, 20, name="fc_logvar"),
        decoder=(layer("Linear", 20, 400, name="fc3"), layer("ReLU"),
                 layer("Linear", 400, 784, name="fc4")),
        output=(layer("Sigmoid"), layer("Unflatten", 1, (1, 28, 28))),
    ),
}

# models trained on noisy inputs by default (scored against the clean images)
DEFAULT_NOISE = {"denoise": 0.5}


def names() -> list[str]:
    """The models, in the article's order."""
    return list(ARCHITECTURES)


def architecture(name: str):
    """The description of model ``name``."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


# ------------------------------------------------------------------- building, in either framework
# ``nn`` is npae.nn or torch.nn; the model classes around these are each framework's own.
def build(lay: Layer, nn):
    """The module ``lay`` describes, from ``nn``."""
    return getattr(nn, lay.kind)(*lay.args, **dict(lay.kwargs))


def sequential(layers, nn):
    """``nn.Sequential`` of the layers."""
    return nn.Sequential(*(build(lay, nn) for lay in layers))


def encoder_decoder(description: Autoencoder, nn) -> tuple:
    """(encoder, decoder) Sequentials of an Autoencoder, built in its order."""
    if description.decoder_first:
        decoder = sequential(description.decoder, nn)
        return sequential(description.encoder, nn), decoder
    encoder = sequential(description.encoder, nn)
    return encoder, sequential(description.decoder, nn)


def build_steps(owner, layers, nn) -> list:
    """[(layer, module)] in order, for ``run``. A named layer's module also becomes ``owner``'s
    attribute of that name, which registers it (and names its parameters) in either framework;
    the rest only run."""
    steps = []
    for lay in layers:
        module = build(lay, nn)
        if lay.name is not None:
            setattr(owner, lay.name, module)
        steps.append((lay, module))
    return steps


def encoder_steps(steps) -> list:
    """The steps of a Chain before its first unpool: its encoder."""
    for i, (lay, _) in enumerate(steps):
        if lay.indices is not None:
            return steps[:i]
    return steps


def run(steps, x):
    """Apply ``steps`` to ``x`` in order. A pool that keeps its indices returns (values, argmax)
    and its argmax waits under its name until the unpool that names it."""
    kept = {}
    for lay, module in steps:
        if lay.indices is not None:
            x = module(x, kept[lay.indices])
        elif lay.keeps_indices:
            x, kept[lay.name] = module(x)
        else:
            x = module(x)
    return x
