"""npae's side of each benchmark: the public ops and models, as a user calls them."""

import numpy as np

import npae
import npae.functional as F
from npae import models, optim
from npae.data import add_noise
from npae.engine.dispatch import to_device
from npae.engine.tensor import Tensor, no_grad


def _random(rng, shape, requires_grad=False, device="cpu"):
    array = to_device(rng.standard_normal(shape).astype(np.float32), device)
    return Tensor(array, requires_grad=requires_grad)


def op(case, device="cpu"):
    """(forward, forward_backward): zero-argument callables over inputs allocated once, on
    ``device`` ('cpu' or 'cuda')."""
    rng = np.random.default_rng(0)
    p = dict(case.params)
    x = _random(rng, case.x, requires_grad=True, device=device)
    args = ()
    if case.op in ("conv2d", "conv_transpose2d"):
        bias_len = case.w[0] if case.op == "conv2d" else case.w[1]
        args = (_random(rng, case.w, True, device), _random(rng, (bias_len,), True, device))
        call = getattr(F, case.op)
        def run(t):
            return call(t, *args, **p)
    elif case.op == "max_pool2d":
        def run(t):
            return F.max_pool2d(t, p["kernel_size"], p["stride"], return_indices=True)[0]
    elif case.op == "max_unpool2d":
        k = p["kernel_size"]
        n, c, h, w = case.x
        source = _random(rng, (n, c, h * k, w * k), device=device)
        _, idx = F.max_pool2d(source, k, p["stride"], return_indices=True)
        def run(t):
            return F.max_unpool2d(t, idx, k, p["stride"])
    elif case.op == "upsample_nearest2d":
        def run(t):
            return F.upsample_nearest2d(t, scale_factor=p["scale_factor"])
    elif case.op == "linear_ae":
        w1, b1 = _random(rng, (32, 784), True, device), _random(rng, (32,), True, device)
        w2, b2 = _random(rng, (784, 32), True, device), _random(rng, (784,), True, device)
        def run(t):
            return F.linear(F.relu(F.linear(t, w1, b1)), w2, b2)
    else:
        raise ValueError(case.op)
    grad = to_device(rng.standard_normal(case.out_shape).astype(np.float32), device)
    leaves = [x, *[a for a in args if isinstance(a, Tensor)]]

    def forward():
        with no_grad():
            return run(x)

    def forward_backward():
        for t in leaves:
            t.grad = None
        run(x).backward(grad)

    return forward, forward_backward


def train_step(name, batch_size, device="cpu"):
    """One Adam step of model ``name`` on a fixed batch: the unit of training throughput."""
    npae.manual_seed(0)
    model = models.create(name).to(device)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    clean = (rng.integers(0, 256, size=(batch_size, 1, 28, 28)) / 256).astype(np.float32)
    noisy = add_noise(clean, models.DEFAULT_NOISE.get(name, 0.0), rng) \
        if name in models.DEFAULT_NOISE else clean
    x_in, target = Tensor(to_device(noisy, device)), Tensor(to_device(clean, device))

    def step():
        opt.zero_grad()
        model.loss(x_in, target).backward()
        opt.step()

    return step
