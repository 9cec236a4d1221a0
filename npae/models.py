"""The article's autoencoders, by name: ``npae.models.create(name)`` returns a fresh nn.Module.

Every model maps a batch of images (N, 1, 28, 28) in [0, 1] to reconstructions of the same
shape, and knows its own training loss: ``model.loss(x_in, target)`` (mean squared error for
the autoencoders; for the VAE, binary cross-entropy summed over pixels plus the KL divergence,
per image). ``x_in`` may be a noisy copy of ``target`` (the denoising autoencoder).

    linear          784 -> 32 -> 784, ReLU then sigmoid
    conv-transpose  conv 1->16, pool, conv 16->4, pool | transpose conv 4->16, 16->1 (2x2, s2)
    conv-upsample   same encoder | nearest upsample x2 + conv, twice (no checkerboard)
    conv-unpool     same encoder, pooling indices kept | max-unpool + conv, twice
    conv-strided    strided convs 1->16->32 (3x3, s2, p1) | transpose convs 3x3 s2 (overlapping)
    denoise         conv 1->32->16->8 with pools | transpose convs 8->8->16->32, conv 32->1
    vae             784-400-20 (mu, log-variance), reparameterisation, 20-400-784
"""

from __future__ import annotations

import numpy as np

import npae.functional as F
from npae import nn
from npae.engine.random import generator
from npae.engine.tensor import Tensor


class Autoencoder(nn.Module):
    """encoder then decoder; trained with mean squared error against the clean image."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x):
        return self.decoder(self.encoder(x))

    def loss(self, x_in, target):
        return F.mse_loss(self(x_in), target)

    def reconstruct(self, x):
        return self(x)


def _linear():
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU())
    decoder = nn.Sequential(nn.Linear(32, 784), nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28)))
    return Autoencoder(encoder, decoder)


def _pooling_encoder():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 14 x 14
        nn.Conv2d(16, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 4 x 7 x 7
    )


def _conv_transpose():
    decoder = nn.Sequential(
        nn.ConvTranspose2d(4, 16, 2, stride=2), nn.ReLU(),           # 16 x 14 x 14
        nn.ConvTranspose2d(16, 1, 2, stride=2), nn.Sigmoid(),        # 1 x 28 x 28
    )
    return Autoencoder(_pooling_encoder(), decoder)


def _conv_upsample():
    decoder = nn.Sequential(
        nn.Upsample(scale_factor=2), nn.Conv2d(4, 16, 3, padding=1), nn.ReLU(),
        nn.Upsample(scale_factor=2), nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid(),
    )
    return Autoencoder(_pooling_encoder(), decoder)


class UnpoolAutoencoder(nn.Module):
    """The encoder's pooling layers keep their argmax; the decoder's unpooling puts each value
    back where its maximum came from."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.pool1 = nn.MaxPool2d(2, return_indices=True)
        self.conv2 = nn.Conv2d(16, 4, 3, padding=1)
        self.pool2 = nn.MaxPool2d(2, return_indices=True)
        self.unpool2 = nn.MaxUnpool2d(2)
        self.deconv2 = nn.Conv2d(4, 16, 3, padding=1)
        self.unpool1 = nn.MaxUnpool2d(2)
        self.deconv1 = nn.Conv2d(16, 1, 3, padding=1)

    def forward(self, x):
        h, idx1 = self.pool1(F.relu(self.conv1(x)))          # 16 x 14 x 14
        h, idx2 = self.pool2(F.relu(self.conv2(h)))          # 4 x 7 x 7
        h = F.relu(self.deconv2(self.unpool2(h, idx2)))      # 16 x 14 x 14
        return F.sigmoid(self.deconv1(self.unpool1(h, idx1)))  # 1 x 28 x 28

    def loss(self, x_in, target):
        return F.mse_loss(self(x_in), target)

    def reconstruct(self, x):
        return self(x)


def _conv_strided():
    encoder = nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),         # 16 x 14 x 14
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),        # 32 x 7 x 7
    )
    decoder = nn.Sequential(
        nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # 14
        nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),  # 28
    )
    return Autoencoder(encoder, decoder)


def _denoise():
    encoder = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 14 x 14
        nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 16 x 7 x 7
        nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 8 x 3 x 3
    )
    decoder = nn.Sequential(
        nn.ConvTranspose2d(8, 8, 3, stride=2), nn.ReLU(),             # 8 x 7 x 7
        nn.ConvTranspose2d(8, 16, 2, stride=2), nn.ReLU(),            # 16 x 14 x 14
        nn.ConvTranspose2d(16, 32, 2, stride=2), nn.ReLU(),           # 32 x 28 x 28
        nn.Conv2d(32, 1, 3, padding=1), nn.Sigmoid(),                 # 1 x 28 x 28
    )
    return Autoencoder(encoder, decoder)


class VAE(nn.Module):
    """Variational autoencoder (Kingma & Welling): the encoder gives a Gaussian over the 20-d
    code; z = mu + exp(logvar / 2) * eps keeps sampling differentiable."""

    latent = 20

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc_mu = nn.Linear(400, self.latent)
        self.fc_logvar = nn.Linear(400, self.latent)
        self.fc3 = nn.Linear(self.latent, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h = F.relu(self.fc1(x.reshape(x.shape[0], 784)))
        return self.fc_mu(h), self.fc_logvar(h)

    def decode_logits(self, z):
        return self.fc4(F.relu(self.fc3(z)))

    def decode(self, z):
        return F.sigmoid(self.decode_logits(z)).reshape(z.shape[0], 1, 28, 28)

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
        bce = F.binary_cross_entropy_with_logits(logits, target.reshape(n, 784),
                                                 reduction="sum")
        kld = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum()
        return (bce + kld) / n

    def reconstruct(self, x):
        """Decode the mean code: the model's best guess, no sampling noise."""
        mu, _ = self.encode(x)
        return self.decode(mu)

    def sample(self, n, rng=None):
        """n images decoded from codes drawn from the prior N(0, I), on the model's device."""
        rng = generator() if rng is None else rng
        z = rng.standard_normal((n, self.latent)).astype(np.float32)
        return self.decode(Tensor(z).to(self.fc3.weight.device))


MODELS = {
    "linear": _linear,
    "conv-transpose": _conv_transpose,
    "conv-upsample": _conv_upsample,
    "conv-unpool": UnpoolAutoencoder,
    "conv-strided": _conv_strided,
    "denoise": _denoise,
    "vae": VAE,
}

# models trained on noisy inputs by default (scored against the clean images)
DEFAULT_NOISE = {"denoise": 0.5}


def names():
    return list(MODELS)


def create(name: str) -> nn.Module:
    """A freshly initialised model (from npae's global generator: seed it with
    npae.manual_seed for reproducible weights)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]()
