"""The PyTorch side of the benchmarks: the same ops and the same seven models, ready to time.

PyTorch is optional (the ``bench`` extra): this module imports without it, ``available()`` says
whether it is there, and every function that needs it imports it when called.

    op("conv2d", (128, 1, 28, 28), (16, 1, 3, 3), {"padding": 1})  -> (forward, forward_backward)
    train_step("conv-transpose", 128)                              -> step

Each returns zero-argument callables over inputs allocated once, so a timer measures the op
(or the training step) and not the allocation of its inputs. Names and arguments are PyTorch's
functional ones, which are npae's too; the models mirror ``npae.models.create(name)`` layer for
layer, with the same parameter names, so ``copy_weights`` can move npae's weights across.
"""

from __future__ import annotations

import importlib.util

OPS = ("conv2d", "conv_transpose2d", "max_pool2d", "max_unpool2d", "upsample_nearest2d",
       "linear", "linear_ae")
MODELS = ("linear", "conv-transpose", "conv-upsample", "conv-unpool", "conv-strided",
          "denoise", "vae")

# PyTorch lets the inter-op pool be sized once per process, before any parallel work
_interop_set = False


def available() -> bool:
    """True when PyTorch can be imported."""
    return importlib.util.find_spec("torch") is not None


def version() -> str | None:
    """PyTorch's version string, or None without PyTorch."""
    if not available():
        return None
    import torch

    return str(torch.__version__)


def set_threads(n: int) -> None:
    """Run PyTorch's CPU kernels on n threads (intra-op always; inter-op the first time only)."""
    global _interop_set
    import torch

    torch.set_num_threads(n)
    if not _interop_set:
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:
            # already set, or parallel work has started: PyTorch refuses a second time
            pass
        _interop_set = True


def _dtype(torch, dtype):
    table = {"float32": torch.float32, "float64": torch.float64}
    if str(dtype) not in table:
        raise ValueError(f"torch_side: dtype must be 'float32' or 'float64', got {dtype!r}")
    return table[str(dtype)]


def _randn(torch, shape, dtype, gen, requires_grad=False, device="cpu"):
    # drawn on the host (the generator's device), then moved: the same values on every device
    t = torch.randn(tuple(shape), generator=gen, dtype=dtype).to(device)
    return t.requires_grad_(requires_grad)


# ---------------------------------------------------------------------------------------- ops
def op(name, x_shape, w_shape=None, params=None, dtype="float32", seed=0, device="cpu"):
    """(forward, forward_backward) for one op on fixed random inputs.

    ``forward()`` runs the op under ``torch.no_grad()`` and returns its output.
    ``forward_backward()`` runs it with autograd, then ``out.backward(g)`` with a fixed random
    upstream gradient ``g``; the input's and weights' ``.grad`` are reset to None first, so
    repeated calls cost the same. Both return the op's output.

    ``params`` are the functional's keyword arguments, plus ``bias`` (default True) for the ops
    with weights. Shapes:

        conv2d              x (N, Cin, H, W), w (Cout, Cin, kh, kw)
        conv_transpose2d    x (N, Cin, H, W), w (Cin, Cout, kh, kw)
        max_pool2d          x (N, C, H, W); kernel_size, stride (returns indices too)
        max_unpool2d        x (N, C, H, W) is the pooled shape; the indices come from pooling a
                            random input of size ((H - 1) * stride + kernel_size) per side
        upsample_nearest2d  x (N, C, H, W); scale_factor (F.interpolate, mode='nearest')
        linear              x (N, in), w (out, in)
        linear_ae           x (N, 784): linear 784 -> 32, ReLU, linear 32 -> 784 (w_shape unused;
                            params ``hidden`` changes the 32)
    """
    import torch
    import torch.nn.functional as F

    if name not in OPS:
        raise ValueError(f"torch_side.op: unknown op {name!r}; choose one of: {', '.join(OPS)}")
    dt = _dtype(torch, dtype)
    gen = torch.Generator().manual_seed(seed)
    kw = dict(params or {})
    bias = kw.pop("bias", True)
    x = _randn(torch, x_shape, dt, gen, requires_grad=True, device=device)
    leaves = [x]

    def weights(shape, n_bias):
        w = _randn(torch, shape, dt, gen, requires_grad=True, device=device)
        b = _randn(torch, (n_bias,), dt, gen, requires_grad=True) if bias else None
        leaves.extend(t for t in (w, b) if t is not None)
        return w, b

    if name == "conv2d":
        w, b = weights(w_shape, w_shape[0])

        def run():
            return F.conv2d(x, w, b, **kw)
    elif name == "conv_transpose2d":
        w, b = weights(w_shape, w_shape[1] * kw.get("groups", 1))

        def run():
            return F.conv_transpose2d(x, w, b, **kw)
    elif name == "max_pool2d":
        def run():
            out, _ = F.max_pool2d(x, return_indices=True, **kw)
            return out
    elif name == "max_unpool2d":
        k = kw.get("kernel_size")
        s = kw.get("stride") or k
        k, s = _pair(k), _pair(s)
        n, c, h, w_ = x_shape
        source = _randn(torch, (n, c, (h - 1) * s[0] + k[0], (w_ - 1) * s[1] + k[1]), dt, gen,
                        device=device)
        _, indices = F.max_pool2d(source, k, s, return_indices=True)

        def run():
            return F.max_unpool2d(x, indices, **kw)
    elif name == "upsample_nearest2d":
        def run():
            return F.interpolate(x, mode="nearest", **kw)
    elif name == "linear":
        w, b = weights(w_shape, w_shape[0])

        def run():
            return F.linear(x, w, b)
    else:  # linear_ae
        hidden = kw.pop("hidden", 32)
        features = x_shape[-1]
        w1, b1 = weights((hidden, features), hidden)
        w2, b2 = weights((features, hidden), features)

        def run():
            return F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)

    with torch.no_grad():
        out_shape = run().shape
    g = _randn(torch, out_shape, dt, gen, device=device)

    def forward():
        with torch.no_grad():
            return run()

    def forward_backward():
        for t in leaves:
            t.grad = None
        out = run()
        out.backward(g)
        return out

    return forward, forward_backward


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


# ------------------------------------------------------------------------------------- models
_classes = {}


def _model_classes():
    """The model classes, built once on first use (they subclass torch.nn.Module)."""
    if _classes:
        return _classes
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Autoencoder(nn.Module):
        def __init__(self, encoder, decoder):
            super().__init__()
            self.encoder = encoder
            self.decoder = decoder

        def forward(self, x):
            return self.decoder(self.encoder(x))

        def loss(self, x_in, target):
            return F.mse_loss(self(x_in), target)

    class UnpoolAutoencoder(nn.Module):
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
            h, idx1 = self.pool1(F.relu(self.conv1(x)))              # 16 x 14 x 14
            h, idx2 = self.pool2(F.relu(self.conv2(h)))              # 4 x 7 x 7
            h = F.relu(self.deconv2(self.unpool2(h, idx2)))          # 16 x 14 x 14
            return torch.sigmoid(self.deconv1(self.unpool1(h, idx1)))  # 1 x 28 x 28

        def loss(self, x_in, target):
            return F.mse_loss(self(x_in), target)

    class VAE(nn.Module):
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

        def forward(self, x):
            mu, logvar = self.encode(x)
            z = mu + torch.exp(logvar * 0.5) * torch.randn_like(mu)
            return self.decode_logits(z), mu, logvar

        def loss(self, x_in, target):
            # negative ELBO per image, as npae's VAE.loss
            logits, mu, logvar = self(x_in)
            n = target.shape[0]
            bce = F.binary_cross_entropy_with_logits(logits, target.reshape(n, 784),
                                                     reduction="sum")
            kld = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum()
            return (bce + kld) / n

    _classes.update(Autoencoder=Autoencoder, UnpoolAutoencoder=UnpoolAutoencoder, VAE=VAE)
    return _classes


def _pooling_encoder(nn):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 14 x 14
        nn.Conv2d(16, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 4 x 7 x 7
    )


def model(name):
    """A freshly initialised torch.nn.Module with the layers of ``npae.models.create(name)``, in
    the same order and under the same parameter names, and a ``loss(x_in, target)`` method
    computing npae's training loss for it."""
    from torch import nn

    if name not in MODELS:
        raise ValueError(f"torch_side.model: unknown model {name!r}; choose one of: "
                         f"{', '.join(MODELS)}")
    classes = _model_classes()
    ae = classes["Autoencoder"]
    if name == "linear":
        return ae(nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU()),
                  nn.Sequential(nn.Linear(32, 784), nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28))))
    if name == "conv-transpose":
        return ae(_pooling_encoder(nn), nn.Sequential(
            nn.ConvTranspose2d(4, 16, 2, stride=2), nn.ReLU(),       # 16 x 14 x 14
            nn.ConvTranspose2d(16, 1, 2, stride=2), nn.Sigmoid(),    # 1 x 28 x 28
        ))
    if name == "conv-upsample":
        return ae(_pooling_encoder(nn), nn.Sequential(
            nn.Upsample(scale_factor=2), nn.Conv2d(4, 16, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2), nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid(),
        ))
    if name == "conv-unpool":
        return classes["UnpoolAutoencoder"]()
    if name == "conv-strided":
        return ae(nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),     # 16 x 14 x 14
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),    # 32 x 7 x 7
        ), nn.Sequential(
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),
        ))
    if name == "denoise":
        return ae(nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 14 x 14
            nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 16 x 7 x 7
            nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 8 x 3 x 3
        ), nn.Sequential(
            nn.ConvTranspose2d(8, 8, 3, stride=2), nn.ReLU(),             # 8 x 7 x 7
            nn.ConvTranspose2d(8, 16, 2, stride=2), nn.ReLU(),            # 16 x 14 x 14
            nn.ConvTranspose2d(16, 32, 2, stride=2), nn.ReLU(),           # 32 x 28 x 28
            nn.Conv2d(32, 1, 3, padding=1), nn.Sigmoid(),                 # 1 x 28 x 28
        ))
    return classes["VAE"]()


def copy_weights(torch_model, npae_model) -> None:
    """Load an npae model's parameters into its PyTorch twin (the names match one to one)."""
    import torch

    params = dict(torch_model.named_parameters())
    arrays = {k: p.data for k, p in npae_model.named_parameters()}
    if set(params) != set(arrays):
        raise ValueError(f"copy_weights: parameter names differ: torch has {sorted(params)}, "
                         f"npae has {sorted(arrays)}")
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(torch.as_tensor(arrays[k], dtype=p.dtype))


# models trained on noisy inputs (npae.models.DEFAULT_NOISE)
NOISE = {"denoise": 0.5}


def train_step(name, batch_size, dtype="float32", seed=0, device="cpu"):
    """A zero-argument callable running one Adam (lr 1e-3) step of ``model(name)`` on a fixed
    random batch in [0, 1) of shape (batch_size, 1, 28, 28); it returns the loss as a float.

    The loss is npae's: MSE against the clean batch (the denoise model sees a noisy copy,
    clip(x + 0.5 * N(0, 1), 0, 1), drawn once), or the VAE's negative ELBO per image.
    """
    import torch

    dt = _dtype(torch, dtype)
    torch.manual_seed(seed)  # the weights' initialisation, and the VAE's first samples
    net = model(name).to(dt).to(device)
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand((batch_size, 1, 28, 28), generator=gen, dtype=dt)
    x_in = target
    if name in NOISE:
        noise = torch.randn(target.shape, generator=gen, dtype=dt)
        x_in = (target + NOISE[name] * noise).clamp_(0, 1)
    x_in, target = x_in.to(device), target.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = net.loss(x_in, target)
        loss.backward()
        opt.step()
        return loss.item()

    return step
