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

    architectures.py   each model's layers, once (plain data; the PyTorch twins in
                       benchmarks/torch_side.py are built from it too)
    modules.py         the npae.nn models built from it, and create(name)
"""

from npae.models.architectures import ARCHITECTURES, DEFAULT_NOISE, architecture, names
from npae.models.modules import VAE, Autoencoder, Chain, create

# name -> description, in the article's order (``name in MODELS`` checks a name)
MODELS = ARCHITECTURES

__all__ = ["create", "names", "architecture", "MODELS", "ARCHITECTURES", "DEFAULT_NOISE",
           "Autoencoder", "Chain", "VAE"]
