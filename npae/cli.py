"""The ``npae`` command.

    npae train MODEL [--epochs N] [--batch-size B] [--lr LR] [--noise F] [--seed S] [--out DIR]
                     [--resume]
    npae eval CHECKPOINT [--seed S]
    npae demo [--out DIR] [--epochs N]
    npae explain OP [--input HxW] [--kernel K] [--stride S] [--padding P] [--dilation D]
                    [--output-padding OP] [--scale F] [--seed S | --values V] [--weights W]
                    [--matrix] [--png FILE]
    npae shapes [MODEL | --layers SPEC] [--input HxW] [--channels C]
    npae gradcheck OP [the explain options] [--batch N] [--channels C] [--out-channels O]
                      [--order 1|2] [--plant-bug]
    npae profile MODEL [--batch-size B] [--steps N] [--warmup W] [--threads T] [--seed S]
                       [--out DIR] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from npae import models
from npae.engine.shapes import parse_hw
from npae.training.runfolder import check_writable


def _train(args) -> int:
    from npae.training.checkpoint import CHECKPOINT
    from npae.training.loop import METRICS, Data, train
    from npae.training.report import model_figures

    out = Path(args.out or f"runs/{args.model}")
    settings = _train_settings(args, out / CHECKPOINT)
    check_writable(out)  # before MNIST loads: an unwritable --out fails at once
    data = Data.mnist()
    try:
        metrics, model = train(settings, out, resume=args.resume, data=data,
                               overwrite=args.force)
    except KeyboardInterrupt:
        ckpt = out / CHECKPOINT
        if ckpt.exists():
            print(f"\nnpae: interrupted; {ckpt} holds the last completed epoch. Continue with: "
                  f"npae train {args.model} --epochs {settings.epochs} --out {out} --resume",
                  file=sys.stderr)
        else:
            print("\nnpae: interrupted before the first epoch finished; nothing was saved.",
                  file=sys.stderr)
        return 130
    figures = model_figures(model, settings, data, out, metrics["epochs"])
    print(f"test loss {metrics['test_loss']:.5f} ({len(data.test):,} test images)")
    print(f"metrics:    {out / METRICS}")
    print(f"checkpoint: {out / CHECKPOINT}")
    for path in figures:
        print(f"figure:     {path}")
    return 0


# What `npae train` uses for an option not given: for a new run these defaults, for --resume the
# value the checkpoint was trained with (so the printed resume hint works as written).
TRAIN_DEFAULTS = {"epochs": 2, "batch_size": 128, "lr": 1e-3, "seed": 0}


def _train_settings(args, ckpt):
    from npae.training.checkpoint import read_meta
    from npae.training.loop import TrainSettings, saved_settings

    given = {k: getattr(args, k) for k in (*TRAIN_DEFAULTS, "noise")}
    if args.resume and ckpt.exists():
        saved = saved_settings(ckpt, read_meta(ckpt))
        base = {k: getattr(saved, k) for k in given}
    else:
        base = dict(TRAIN_DEFAULTS, noise=models.DEFAULT_NOISE.get(args.model, 0.0))
    chosen = {k: base[k] if v is None else v for k, v in given.items()}
    return TrainSettings(model=args.model, **chosen).check()


def _eval(args) -> int:
    from npae.training.loop import Data, evaluate, load_model

    model, meta = load_model(args.checkpoint)
    settings = meta["settings"]
    seed = settings["seed"] if args.seed is None else args.seed
    data = Data.mnist()
    loss = evaluate(model, data.test, settings["noise"], seed)
    print(f"{meta['model']} after {meta['epochs_done']} epoch(s): test loss {loss:.5f} "
          f"({len(data.test):,} test images, seed {seed})")
    return 0


def _demo(args) -> int:
    from npae.training.report import demo

    report = demo(Path(args.out), epochs=args.epochs)
    print(f"\nreport: {report}")
    return 0


def _explain(args) -> int:
    from npae.tools.explain import explain, figure
    from npae.tools.settings import ExplainSettings

    result = explain(args.op, op_settings(ExplainSettings, args))
    print(result.text, end="")
    if args.png:
        print(f"figure: {figure(result, args.png)}")
    return 0 if result.ok else 1


def _shapes(args) -> int:
    from npae.tools.shape_solver import layers_from_model, parse_layers, report, solve

    if (args.model is None) == (args.layers is None):
        raise ValueError("give a model name or --layers (one of them): e.g. npae shapes "
                         "conv-transpose, or npae shapes --layers conv:16:3:1:1,pool:2")
    layers = parse_layers(args.layers) if args.layers else layers_from_model(args.model)
    print(report(solve(layers, (args.channels,) + args.input)), end="")
    return 0


def _gradcheck(args) -> int:
    from npae.tools.gradcheck_cli import run
    from npae.tools.settings import GradcheckSettings

    settings = op_settings(GradcheckSettings, args)
    return 0 if run(args.op, settings, plant_bug=args.plant_bug, order=args.order) else 1


def _profile(args) -> int:
    from npae.tools.profile import ProfileSettings, run

    settings = ProfileSettings(model=args.model, batch_size=args.batch_size, steps=args.steps,
                               warmup=args.warmup, threads=args.threads, seed=args.seed,
                               out=args.out, device=args.device)
    run(settings)
    return 0


def op_settings(cls, args):
    """``cls`` (OpSettings or a command's subclass of it, npae/tools/settings.py) from parsed
    options: each field from the option of the same name (the shared ones are _op_options');
    a field the command has no option for keeps its default."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})


def _size(text: str) -> tuple[int, int]:
    """'4x4' or '4' -> (4, 4); sizes are positive."""
    value = _pair(text, "a size HxW like 4x4 (or one number for a square)")
    if min(value) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return value


def _count(text: str) -> int:
    """A positive int: a number of channels."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def _natural(text: str) -> int:
    """An int >= 0: a number of warm-up steps."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {text!r}")
    return value


def _hyper(text: str) -> tuple[int, int]:
    """'2' or '2x1' -> (2, 2) or (2, 1)."""
    return _pair(text, "an int or HxW like 2x1")


def _pair(text: str, what: str) -> tuple[int, int]:
    try:
        return parse_hw(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def _numbers(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas or spaces, row by row, got {text!r}"
        ) from None


def _op_options(p, defaults_note: str) -> None:
    """The options `npae explain` and `npae gradcheck` share (the fields of OpSettings, in
    npae/tools/settings.py); they mirror npae.functional."""
    p.add_argument("--input", type=_size, default=None, metavar="HxW",
                   help=f"input size, e.g. 4x4 (default: {defaults_note})")
    p.add_argument("--kernel", type=_size, default=None, metavar="K",
                   help="kernel size (3 for the convolutions, 2 for pooling)")
    p.add_argument("--stride", type=_size, default=None, metavar="S",
                   help="stride (default 1; pooling: the kernel size)")
    p.add_argument("--padding", type=_hyper, default=(0, 0), metavar="P", help="default 0")
    p.add_argument("--dilation", type=_size, default=(1, 1), metavar="D", help="default 1")
    p.add_argument("--output-padding", type=_hyper, default=(0, 0), metavar="OP",
                   help="conv-transpose2d: picks one of the output sizes (adds no zeros)")
    p.add_argument("--scale", type=float, default=2.0, metavar="F",
                   help="upsample-nearest2d: the scale factor (default 2)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed for the random numbers (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="npae", description="npae: train the article's autoencoders on MNIST, see how each "
                    "operation works (explain, shapes), check gradients, profile a training "
                    "step, benchmark the kernels."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train one model on MNIST",
                       description="Train one of the article's autoencoders on MNIST with Adam. "
                       "Writes DIR/metrics.json, DIR/checkpoint.npz (after every epoch) and "
                       "figures. With --resume, an option not given takes the checkpoint's "
                       "value; only --epochs may differ from it.")
    p.add_argument("model", choices=models.names(), metavar="MODEL",
                   help="one of: " + ", ".join(models.names()))
    d = TRAIN_DEFAULTS
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help=f"epochs to train in all (default: {d['epochs']})")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help=f"images per step (default: {d['batch_size']})")
    p.add_argument("--lr", type=float, default=None, metavar="LR",
                   help=f"Adam learning rate (default: {d['lr']:g})")
    p.add_argument("--noise", type=float, default=None, metavar="F",
                   help="Gaussian noise factor added to the inputs; the loss is always against "
                        "the clean image (default: 0.5 for denoise, else 0)")
    p.add_argument("--seed", type=int, default=None, metavar="S",
                   help=f"seed for weights, shuffling and noise (default: {d['seed']})")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: runs/MODEL)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue from DIR/checkpoint.npz with its settings")
    again.add_argument("--force", action="store_true",
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

    from npae.tools.registry import EXPLAINED_NAMES as OPS

    p = sub.add_parser(
        "explain", help="work an operation through by hand, checked against its kernel",
        description="Show how an operation computes its output on one small image: the "
        "windows, products and sums (or copies, maxima, indices), the output-size formula with "
        "your numbers, and a final check that the shown arithmetic equals npae's kernel. Exits "
        "1 if that check fails.")
    p.add_argument("op", choices=OPS, metavar="OP", help="one of: " + ", ".join(OPS))
    _op_options(p, "4x4; 2x2 for conv-transpose2d and upsample-nearest2d")
    p.add_argument("--values", type=_numbers, default=None, metavar="V",
                   help="the input's numbers, row by row, e.g. '1,2,3,4' (default: random "
                        "small integers from --seed)")
    p.add_argument("--weights", type=_numbers, default=None, metavar="W",
                   help="the kernel's numbers, row by row (convolutions and im2col)")
    p.add_argument("--matrix", action="store_true",
                   help="also write the op as a dense matrix (tiny inputs only), checked "
                        "against the op")
    p.add_argument("--png", default=None, metavar="FILE", help="also draw it into a PNG figure")
    p.set_defaults(run=_explain)

    p = sub.add_parser(
        "shapes", help="every intermediate shape of a layer stack, and how to get back",
        description="Print the shape after every layer, the input sizes each downsampled size "
        "can come from, and for each decoder layer the (padding, output_padding) or unpool "
        "output_size choices that get back to the encoder's size. Layers: "
        "conv:OUT:K[:S[:P[:D]]], pool:K[:S[:P]], tconv:OUT:K[:S[:P[:OP]]], unpool:K[:S[:P]], "
        "up:SCALE, relu, sigmoid, tanh, flatten, linear:OUT, unflatten:C:H:W.")
    p.add_argument("model", nargs="?", default=None, metavar="MODEL",
                   help="a model of npae.models: " + ", ".join(models.names()))
    p.add_argument("--layers", default=None, metavar="SPEC",
                   help='comma-separated layers, e.g. "conv:16:3:1:1,pool:2,conv:4:3:1:1,pool:2"')
    p.add_argument("--input", type=_size, default=(28, 28), metavar="HxW",
                   help="input size (default 28x28)")
    p.add_argument("--channels", type=_count, default=1, metavar="C",
                   help="input channels (default 1)")
    p.set_defaults(run=_shapes)

    p = sub.add_parser(
        "gradcheck", help="check an op's backward against finite differences (float64)",
        description="Run npae.gradcheck on one op and print, per input, the analytic and the "
        "numeric gradient: largest absolute and relative error and the worst element. Exits 1 "
        "on failure.")
    p.add_argument("op", choices=OPS, metavar="OP", help="one of: " + ", ".join(OPS))
    _op_options(p, "5x5 conv2d, 3x3 conv-transpose2d and upsample-nearest2d, 4x4 the others")
    p.add_argument("--batch", type=int, default=2, metavar="N", help="images (default 2)")
    p.add_argument("--channels", type=int, default=2, metavar="C",
                   help="input channels (default 2)")
    p.add_argument("--out-channels", type=int, default=3, metavar="O",
                   help="output channels of the convolutions (default 3)")
    p.add_argument("--plant-bug", action="store_true",
                   help="swap in a deliberately wrong backward (this run only) to see a failure")
    p.add_argument("--order", type=int, choices=(1, 2), default=1,
                   help="2: check the second derivatives (the backward of the backward, "
                   "npae.gradgradcheck) instead of the first (default 1)")
    p.set_defaults(run=_gradcheck)

    p = sub.add_parser(
        "profile", help="where a training step spends its time, op by op",
        description="Train MODEL with Adam on one fixed random batch and time every op's "
        "forward and backward call: per op and shapes the calls, ms and share of the step, "
        "achieved GFLOP/s and GB/s and the ratio to the op's roofline floor (measured on the "
        "spot); then the optimizer, the time outside the ops (Python, autodiff bookkeeping, "
        "allocation) and the whole step. Warm-up steps (Numba compiles on first use) are not "
        "profiled. Writes DIR/MODEL-bB.json and DIR/MODEL-bB.png (a stacked bar per pass).")
    p.add_argument("model", choices=models.names(), metavar="MODEL",
                   help="one of: " + ", ".join(models.names()))
    p.add_argument("-b", "--batch-size", type=_count, default=128, metavar="B",
                   help="images per step (default 128)")
    p.add_argument("-n", "--steps", type=_count, default=20, metavar="N",
                   help="profiled steps (default 20)")
    p.add_argument("--warmup", type=_natural, default=3, metavar="W",
                   help="steps run first and not profiled (default 3)")
    p.add_argument("--threads", type=_count, default=None, metavar="T",
                   help="Numba and BLAS threads (default: as they are, usually all cores)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed for the weights and the batch (default 0)")
    p.add_argument("--out", default="runs/profile", metavar="DIR",
                   help="folder for the JSON and the PNG (default runs/profile)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cpu (cuda is not supported yet: its kernels run asynchronously)")
    p.set_defaults(run=_profile)

    # listed for --help; main() hands `npae bench ...` to the suite, which has its own options
    sub.add_parser("bench", help="benchmark kernels and training against NumPy and PyTorch "
                   "(npae bench --help)")
    return parser


def main(argv=None) -> int:
    from npae.data import DataError
    from npae.training.checkpoint import CheckpointError
    from npae.training.loop import TrainingError

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
    except BrokenPipeError:
        # the reader went away (`npae explain ... | head`): stop quietly, as Unix tools do;
        # point stdout at devnull so Python's exit-time flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (DataError, CheckpointError, TrainingError, ValueError, MemoryError, OSError) as err:
        # OSError: a path that names a file where a folder is needed, or the reverse
        print(f"npae: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
