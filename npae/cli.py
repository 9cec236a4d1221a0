"""The ``npae`` command.

    npae train MODEL [--epochs N] [--batch-size B] [--lr LR] [--noise F] [--seed S] [--out DIR]
                     [--resume]
    npae eval CHECKPOINT [--seed S]
    npae demo [--out DIR] [--epochs N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from npae import models


def _train(args) -> int:
    from npae.report import model_figures
    from npae.train import Data, Settings, train

    noise = args.noise if args.noise is not None else models.DEFAULT_NOISE.get(args.model, 0.0)
    settings = Settings(model=args.model, epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, noise=noise, seed=args.seed).check()
    out = Path(args.out or f"runs/{args.model}")
    data = Data.mnist()
    try:
        metrics, model = train(settings, out, resume=args.resume, data=data,
                               overwrite=args.force)
    except KeyboardInterrupt:
        ckpt = out / "checkpoint.npz"
        if ckpt.exists():
            print(f"\nnpae: interrupted; {ckpt} holds the last completed epoch. Continue with: "
                  f"npae train {args.model} --epochs {args.epochs} --out {out} --resume",
                  file=sys.stderr)
        else:
            print("\nnpae: interrupted before the first epoch finished; nothing was saved.",
                  file=sys.stderr)
        return 130
    figures = model_figures(model, settings, data, out, metrics["epochs"])
    print(f"test loss {metrics['test_loss']:.5f}")
    print(f"metrics:    {out / 'metrics.json'}")
    print(f"checkpoint: {out / 'checkpoint.npz'}")
    for path in figures:
        print(f"figure:     {path}")
    return 0


def _eval(args) -> int:
    from npae.train import Data, evaluate, load_model

    model, meta = load_model(args.checkpoint)
    settings = meta["settings"]
    seed = settings["seed"] if args.seed is None else args.seed
    data = Data.mnist()
    loss = evaluate(model, data.test, settings["noise"], seed)
    print(f"{meta['model']} after {meta['epochs_done']} epoch(s): test loss {loss:.5f} "
          f"({len(data.test):,} test images, seed {seed})")
    return 0


def _demo(args) -> int:
    from npae.report import demo

    report = demo(Path(args.out), epochs=args.epochs)
    print(f"\nreport: {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="npae", description="Train and inspect the autoencoders of npae on MNIST."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train one model on MNIST",
                       description="Train one of the article's autoencoders on MNIST with Adam. "
                       "Writes DIR/metrics.json, DIR/checkpoint.npz (after every epoch) and "
                       "figures.")
    p.add_argument("model", choices=models.names(), metavar="MODEL",
                   help="one of: " + ", ".join(models.names()))
    p.add_argument("--epochs", type=int, default=2, metavar="N",
                   help="epochs to train (default 2)")
    p.add_argument("--batch-size", type=int, default=128, metavar="B", help="default 128")
    p.add_argument("--lr", type=float, default=1e-3, metavar="LR",
                   help="Adam learning rate (default 1e-3)")
    p.add_argument("--noise", type=float, default=None, metavar="F",
                   help="Gaussian noise factor added to the inputs (default 0.5 for denoise, "
                        "else 0); the loss is always against the clean image")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed for weights, shuffling and noise")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default runs/MODEL)")
    p.add_argument("--resume", action="store_true",
                   help="continue from DIR/checkpoint.npz (only --epochs may change)")
    p.add_argument("--force", action="store_true",
                   help="start afresh even if DIR holds an earlier run's checkpoint")
    p.set_defaults(run=_train)

    p = sub.add_parser("eval", help="test loss of a checkpoint",
                       description="Print the test loss of a trained checkpoint.")
    p.add_argument("checkpoint", help="a checkpoint.npz written by npae train (or its folder)")
    p.add_argument("--seed", type=int, default=None, metavar="S",
                   help="seed for the noise / VAE sampling (default: the training seed)")
    p.set_defaults(run=_eval)

    p = sub.add_parser("demo", help="train every model briefly and write a report",
                       description="Fetch MNIST, train every model, write DIR/report.md.")
    p.add_argument("--out", default="runs/demo", metavar="DIR",
                   help="output folder (default runs/demo)")
    p.add_argument("--epochs", type=int, default=1, metavar="N",
                   help="epochs per model (default 1)")
    p.set_defaults(run=_demo)

    # listed for --help; main() hands `npae bench ...` to the suite, which has its own options
    sub.add_parser("bench", help="benchmark kernels and training against NumPy and PyTorch "
                   "(npae bench --help)")
    return parser


def main(argv=None) -> int:
    from npae.checkpoint import CheckpointError
    from npae.data import DataError
    from npae.train import TrainingError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the suite parses its own options
        from npae.benchmarks.suite import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("\nnpae: interrupted", file=sys.stderr)
        return 130
    except (DataError, CheckpointError, TrainingError, ValueError) as err:
        print(f"npae: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
