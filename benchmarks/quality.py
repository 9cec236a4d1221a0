"""Does npae learn as well as the reference framework? The reference protocol, over seeds.

    python -m benchmarks.quality [--models linear vae ...] [--seeds 0 1 2 3 4] [--out DIR]

Protocol: MNIST 50k train / 10k test, pixels k/256, Adam lr 1e-3, batch 128, 2 epochs, default
initialisation, MSE (denoise: inputs with noise 0.5 clipped, scored against clean images; vae:
negative ELBO per image). Each model trains once per seed; the table gives per model the
median, best and worst test loss over the seeds and on how many seeds the code ended with dead
units (npae/training/dead_units.py), next to the capability bar: the best over the seeds must be
at or under it. One seed of these small models is a lottery (a dead code gives a constant
output and a test loss near 0.113), so the median of a few seeds is not a bar; the best is.
Writes benchmarks/results/quality-<date>-<host>.json; exits 1 if a model misses its bar.
"""

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from npae import models
from npae.training.loop import Data, TrainSettings, train

# capability bar (the best over seeds must reach it) and where it comes from: the article's
# figure, or PyTorch's best over its seeds 0-4 on this protocol plus 10%
BARS = {
    "linear": (0.030, "article"),
    "conv-transpose": (0.016 * 1.1, "PyTorch best of seeds 0-4: 0.016"),
    "conv-upsample": (0.018, "article"),
    "conv-unpool": (0.011, "article"),
    "conv-strided": (0.0013 * 1.1, "PyTorch best of seeds 0-4: 0.0013"),
    "denoise": (0.046, "article"),
    "vae": (123.0, "article"),
    "conv-avgpool": (0.013 * 1.1, "PyTorch best of seeds 0-4: 0.013"),
    "conv-bilinear": (0.0171 * 1.1, "PyTorch best of seeds 0-4: 0.0171"),
    "conv-subpixel": (0.0085 * 1.1, "PyTorch best of seeds 0-4 (ICNR): 0.0085"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality",
                                     description=__doc__.split("\n\n")[0])
    names = [m for m in models.names() if m in BARS] + [m for m in models.names()
                                                         if m not in BARS]
    parser.add_argument("--models", nargs="+", default=names, choices=models.names())
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", default="runs/quality", help="training folders go here")
    args = parser.parse_args(argv)

    data = Data.mnist()
    runs = []
    for name in args.models:
        for seed in args.seeds:
            settings = TrainSettings(model=name, epochs=2, batch_size=128, lr=1e-3, seed=seed,
                                     noise=models.DEFAULT_NOISE.get(name, 0.0))
            t0 = time.perf_counter()
            metrics, _ = train(settings, Path(args.out) / f"{name}-seed{seed}", data=data,
                               overwrite=True)
            runs.append({"model": name, "seed": seed, "test_loss": metrics["test_loss"],
                         "dead_units": metrics["dead_units"],
                         "images_per_s": metrics["images_per_s"],
                         "seconds": time.perf_counter() - t0})
    rows = summarise(runs, args.models)
    print(table(rows, args.seeds))

    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.date.today().isoformat()
    path = out / f"quality-{stamp}-{platform.node() or 'host'}.json"
    path.write_text(json.dumps({"protocol": "2 epochs, Adam lr 1e-3, batch 128",
                                "seeds": args.seeds, "models": rows, "runs": runs,
                                "machine": platform.platform(),
                                "python": sys.version.split()[0]}, indent=2) + "\n")
    print(f"\nwritten: {path}")
    return 0 if all(r["passes"] for r in rows) else 1


def summarise(runs, names) -> list[dict]:
    """Per model: median, best and worst test loss over its seeds, the seeds whose code ended
    with dead units, and whether the best meets the bar."""
    rows = []
    for name in names:
        mine = [r for r in runs if r["model"] == name]
        if not mine:
            continue
        losses = [r["test_loss"] for r in mine]
        bar, source = BARS.get(name, (None, None))
        rows.append({
            "model": name, "seeds": [r["seed"] for r in mine],
            "median": statistics.median(losses), "best": min(losses), "worst": max(losses),
            "seeds_with_dead_units": [r["seed"] for r in mine if r["dead_units"]],
            "bar": bar, "bar_from": source, "passes": bar is None or min(losses) <= bar,
        })
    return rows


def table(rows, seeds) -> str:
    lines = [f"\ntest loss over seeds {', '.join(map(str, seeds))} (2 epochs; the bar applies to "
             f"the best)",
             f"{'model':16}{'median':>10}{'best':>10}{'worst':>10}{'dead code':>11}{'bar':>10}"
             f"  verdict"]
    for r in rows:
        dead = f"{len(r['seeds_with_dead_units'])} of {len(r['seeds'])}"
        bar = "-" if r["bar"] is None else f"{r['bar']:.4g}"
        verdict = ("no bar" if r["bar"] is None else
                   "meets the bar" if r["passes"] else "MISSES the bar")
        lines.append(f"{r['model']:16}{r['median']:>10.4f}{r['best']:>10.4f}{r['worst']:>10.4f}"
                     f"{dead:>11}{bar:>10}  {verdict}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
