"""npae's models, built with npae.nn from their descriptions (npae/models/architectures.py).

Each class wraps one shape of description with the forward pass and the training loss; the
layers, their order and their names come from the description alone.
"""

from __future__ import annotations

import numpy as np

import npae.functional as F
from npae import nn
from npae.engine.random import generator
from npae.engine.tensor import Tensor
from npae.models import architectures as arch


class _MSE(nn.Module):
    """An autoencoder's training: mean squared error against the clean image."""

    def loss(self, x_in, target):
        return F.mse_loss(self(x_in), target)

    def reconstruct(self, x):
        return self(x)

    # code(x): the bottleneck, after its activation (dead units are counted there)


class Autoencoder(_MSE):
    """encoder then decoder."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x):
        return self.decoder(self.encoder(x))

    def code(self, x):
        """The encoder's output: the code the decoder sees."""
        return self.encoder(x)


class Chain(_MSE):
    """One run of layers (architectures.Chain): the named ones are this model's attributes, and
    each pool that keeps its argmax hands it to its unpool, which puts every value back where
    its maximum came from."""

    def __init__(self, description: arch.Chain):
        super().__init__()
        self.steps = arch.build_steps(self, description.layers, nn)

    def forward(self, x):
        return arch.run(self.steps, x)

    def code(self, x):
        """The output of the layers before the first unpool: the code the decoder starts from
        (the indices the pools keep travel beside it)."""
        return arch.run(arch.encoder_steps(self.steps), x)


class VAE(nn.Module):
    """Variational autoencoder (Kingma & Welling): the encoder gives a Gaussian over the code;
    z = mu + exp(logvar / 2) * eps keeps sampling differentiable."""

    def __init__(self, description: arch.VAE | None = None):
        super().__init__()
        d = arch.ARCHITECTURES["vae"] if description is None else description
        self.latent = d.latent
        # built (and so initialised) in this order: encoder, mu head, logvar head, decoder
        self.encoder_steps = arch.build_steps(self, d.encoder, nn)
        self.head_steps = arch.build_steps(self, (d.mu, d.logvar), nn)
        self.decoder_steps = arch.build_steps(self, d.decoder, nn)
        self.output_steps = arch.build_steps(self, d.output, nn)

    def encode(self, x):
        """(mu, logvar), each (N, latent)."""
        h = arch.run(self.encoder_steps, x)
        return tuple(head(h) for _, head in self.head_steps)

    def decode_logits(self, z):
        return arch.run(self.decoder_steps, z)

    def decode(self, z):
        """Images (N, 1, 28, 28) in [0, 1] from codes (N, latent)."""
        return arch.run(self.output_steps, self.decode_logits(z))

    def forward(self, x):
        """(reconstruction logits (N, 784), mu, logvar), with z sampled from the global
        generator (npae.manual_seed makes it reproducible)."""
        mu, logvar = self.encode(x)
        # drawn on the host and copied over: the same noise on every device
        eps = generator().standard_normal(mu.shape).astype(mu.dtype)
        z = mu + (logvar * 0.5).exp() * Tensor(eps).to(mu.device)
        return self.decode_logits(z), mu, logvar

    def loss(self, x_in, target):
        """Negative ELBO per image: BCE summed over pixels + KL(q(z|x) || N(0, I))."""
        logits, mu, logvar = self(x_in)
        n = target.shape[0]
        bce = F.binary_cross_entropy_with_logits(logits, target.reshape(n, logits.shape[1]),
                                                 reduction="sum")
        kld = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum()
        return (bce + kld) / n

    # a Gaussian code has no activation, so no unit of it is ever exactly zero (a VAE's unused
    # units show as mu near 0 with logvar near 0 instead): npae train does not count them
    code_can_die = False

    def code(self, x):
        """The mean of q(z|x)."""
        return self.encode(x)[0]

    def reconstruct(self, x):
        """Decode the mean code: the model's best guess, no sampling noise."""
        mu, _ = self.encode(x)
        return self.decode(mu)

    def sample(self, n, rng=None):
        """n images decoded from codes drawn from the prior N(0, I), on the model's device."""
        rng = generator() if rng is None else rng
        z = rng.standard_normal((n, self.latent)).astype(np.float32)
        return self.decode(Tensor(z).to(self.parameters()[0].device))


def create(name: str) -> nn.Module:
    """A freshly initialised model (from npae's global generator: seed it with
    npae.manual_seed for reproducible weights)."""
    d = arch.architecture(name)
    if isinstance(d, arch.Autoencoder):
        return Autoencoder(*arch.encoder_decoder(d, nn))
    if isinstance(d, arch.Chain):
        return Chain(d)
    return VAE(d)
