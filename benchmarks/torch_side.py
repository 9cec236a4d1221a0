"""The PyTorch side of the benchmarks: the same ops and the same seven models, ready to time.

PyTorch is optional (the ``bench`` extra): this module imports without it, ``available()`` says
whether it is there, and every function that needs it imports it when called.

    op("conv2d", (128, 1, 28, 28), (16, 1, 3, 3), {"padding": 1})  -> (forward, forward_backward)
    train_step("conv-transpose", 128)                              -> step

Each returns zero-argument callables over inputs allocated once, so a timer measures the op
(or the training step) and not the allocation of its inputs. Names and arguments are PyTorch's
functional ones, which are npae's too; the models are built with torch.nn from the descriptions
npae builds its own from (npae/models/architectures.py), so they match ``npae.models.create(name)``
layer for layer, with the same parameter names, and ``copy_weights`` can move npae's weights
across.
"""

from __future__ import annotations

import importlib.util

from npae.models import architectures as arch

OPS = ("conv2d", "conv_transpose2d", "max_pool2d", "max_unpool2d", "upsample_nearest2d",
       "linear", "linear_ae")

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
    """The torch.nn.Module classes around the descriptions, made once on first use. Like npae's
    (npae/models/modules.py) they hold only the forward pass and the loss: the layers come from
    npae/models/architectures.py."""
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

    class Chain(nn.Module):
        def __init__(self, description):
            super().__init__()
            self.steps = arch.build_steps(self, description.layers, nn)

        def forward(self, x):
            return arch.run(self.steps, x)

        def loss(self, x_in, target):
            return F.mse_loss(self(x_in), target)

    class VAE(nn.Module):
        def __init__(self, description):
            super().__init__()
            self.encoder_steps = arch.build_steps(self, description.encoder, nn)
            self.head_steps = arch.build_steps(self, (description.mu, description.logvar), nn)
            self.decoder_steps = arch.build_steps(self, description.decoder, nn)
            self.output_steps = arch.build_steps(self, description.output, nn)

        def encode(self, x):
            h = arch.run(self.encoder_steps, x)
            return tuple(head(h) for _, head in self.head_steps)

        def decode_logits(self, z):
            return arch.run(self.decoder_steps, z)

        def decode(self, z):
            return arch.run(self.output_steps, self.decode_logits(z))

        def forward(self, x):
            mu, logvar = self.encode(x)
            z = mu + torch.exp(logvar * 0.5) * torch.randn_like(mu)
            return self.decode_logits(z), mu, logvar

        def loss(self, x_in, target):
            # negative ELBO per image, as npae's VAE.loss
            logits, mu, logvar = self(x_in)
            n = target.shape[0]
            bce = F.binary_cross_entropy_with_logits(logits, target.reshape(n, logits.shape[1]),
                                                     reduction="sum")
            kld = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum()
            return (bce + kld) / n

    _classes.update(Autoencoder=Autoencoder, Chain=Chain, VAE=VAE)
    return _classes


def model(name):
    """A freshly initialised torch.nn.Module built from the description of
    ``npae.models.create(name)`` (npae/models/architectures.py): the same layers, initialised in
    the same order, under the same parameter names, and a ``loss(x_in, target)`` method
    computing npae's training loss for it."""
    from torch import nn

    d = arch.architecture(name)
    classes = _model_classes()
    if isinstance(d, arch.Autoencoder):
        return classes["Autoencoder"](*arch.encoder_decoder(d, nn))
    if isinstance(d, arch.Chain):
        return classes["Chain"](d)
    return classes["VAE"](d)


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
    if name in arch.DEFAULT_NOISE:
        noise = torch.randn(target.shape, generator=gen, dtype=dt)
        x_in = (target + arch.DEFAULT_NOISE[name] * noise).clamp_(0, 1)
    x_in, target = x_in.to(device), target.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = net.loss(x_in, target)
        loss.backward()
        opt.step()
        return loss.item()

    return step
