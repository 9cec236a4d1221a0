"""conv-transpose in PyTorch and npae, from each other's initial weights (needs the bench extra).

    python -m benchmarks.torch_quality [--seeds 0 1 2] [--epochs 2]

For each seed, four runs of the quality protocol (Adam lr 1e-3, batch 128, MSE) on MNIST:

    torch init  -> trained by PyTorch      torch init  -> trained by npae
    npae init   -> trained by npae         npae init   -> trained by PyTorch

If the engines agree, a row's test loss depends on the initial weights and not on who trains
them. The script also reports how many code channels (4, after ReLU and pooling) are dead
(zero on every test digit) after training: the usual reason a seed misses the bar.
"""

import argparse
import sys

import numpy as np

from npae import models
from npae.data import batches
from npae.engine.tensor import Tensor, no_grad
from npae.optim import Adam
from npae.training.loop import Data, evaluate

from . import torch_side

MODEL = "conv-transpose"


def train_torch(torch, weights, data, epochs, seed):
    model = torch_side.model(MODEL)
    model.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = torch.tensor(data.train)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=gen)
        for i in range(0, len(train), 128):
            xb = train[order[i:i + 128]]
            opt.zero_grad()
            model.loss(xb, xb).backward()
            opt.step()
    test = torch.tensor(data.test)
    with torch.no_grad():
        loss = np.mean([model.loss(test[i:i + 1000], test[i:i + 1000]).item()
                        for i in range(0, len(test), 1000)])
        code = model.encoder(test[:1000]).numpy()
    return float(loss), _dead(code)


def train_npae(weights, data, epochs, seed):
    model = models.create(MODEL)
    model.load_state_dict(weights)
    opt = Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        for (xb,) in batches((data.train,), 128, shuffle=True, seed=seed, epoch=epoch):
            opt.zero_grad()
            model.loss(Tensor(xb), Tensor(xb)).backward()
            opt.step()
    with no_grad():
        code = model.encoder(Tensor(data.test[:1000])).data
    return evaluate(model, data.test), _dead(code)


def _dead(code):
    return int(((code == 0).mean(axis=(0, 2, 3)) == 1).sum())


def npae_init(seed):
    import npae

    npae.manual_seed(seed)
    return dict(models.create(MODEL).state_dict())


def torch_init(torch, seed):
    torch.manual_seed(seed)
    return {k: v.detach().numpy().copy() for k, v in torch_side.model(MODEL).state_dict().items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.torch_quality")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("this comparison needs PyTorch: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = Data.mnist()
    print(f"{'seed':>4}  {'init':6}{'trained by npae':>22}{'trained by PyTorch':>22}")
    for seed in args.seeds:
        for label, weights in (("torch", torch_init(torch, seed)), ("npae", npae_init(seed))):
            a = train_npae(weights, data, args.epochs, seed)
            b = train_torch(torch, weights, data, args.epochs, seed)
            print(f"{seed:>4}  {label:6}{a[0]:>12.4f} ({a[1]} dead){b[0]:>12.4f} ({b[1]} dead)",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
