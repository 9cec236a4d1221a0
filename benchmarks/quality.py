"""Does npae learn as well as the reference framework? The issue-3 protocol, rerun.

    python -m benchmarks.quality [--models linear vae ...] [--seeds 0 1 2] [--out DIR]

Protocol: MNIST 50k train / 10k test, pixels k/256, Adam lr 1e-3, batch 128, 2 epochs, default
initialisation, MSE (denoise: inputs with noise 0.5 clipped, scored against clean images; vae:
negative ELBO per image). Prints measured test loss next to the bar npae must meet and the
worst-of-three-seeds PyTorch figure the bar was set from; writes
benchmarks/results/quality-<date>-<host>.json; exits 1 if any model misses its bar.
"""

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

from npae import models
from npae.training.loop import Data, TrainSettings, train

# test loss: (npae must reach, PyTorch worst of three seeds on the same protocol)
BARS = {
    "linear": (0.030, 0.0287),
    "conv-transpose": (0.018, 0.0166),
    "conv-upsample": (0.018, 0.0164),
    "conv-unpool": (0.011, 0.0088),
    "denoise": (0.046, 0.0434),
    "vae": (123.0, 119.4),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(BARS), choices=models.names())
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", default="runs/quality", help="training folders go here")
    args = parser.parse_args(argv)

    data = Data.mnist()
    rows = []
    for name in args.models:
        for seed in args.seeds:
            settings = TrainSettings(model=name, epochs=2, batch_size=128, lr=1e-3, seed=seed,
                                noise=models.DEFAULT_NOISE.get(name, 0.0))
            t0 = time.perf_counter()
            metrics, _ = train(settings, Path(args.out) / f"{name}-seed{seed}", data=data,
                               overwrite=True)
            bar, torch_ref = BARS.get(name, (None, None))
            rows.append({"model": name, "seed": seed, "test_loss": metrics["test_loss"],
                         "bar": bar, "pytorch_worst_of_3": torch_ref,
                         "passes": bar is None or metrics["test_loss"] <= bar,
                         "images_per_s": metrics["images_per_s"],
                         "seconds": time.perf_counter() - t0})

    print(f"\n{'model':16}{'seed':>5}{'test loss':>12}{'bar':>10}{'PyTorch':>10}  verdict")
    for r in rows:
        bar = "-" if r["bar"] is None else f"{r['bar']:g}"
        ref = "-" if r["pytorch_worst_of_3"] is None else f"{r['pytorch_worst_of_3']:g}"
        verdict = "meets the bar" if r["passes"] else "MISSES the bar"
        print(f"{r['model']:16}{r['seed']:>5}{r['test_loss']:>12.4f}{bar:>10}{ref:>10}  {verdict}")

    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.date.today().isoformat()
    path = out / f"quality-{stamp}-{platform.node() or 'host'}.json"
    path.write_text(json.dumps({"protocol": "2 epochs, Adam lr 1e-3, batch 128", "rows": rows,
                                "machine": platform.platform(),
                                "python": sys.version.split()[0]}, indent=2) + "\n")
    print(f"\nwritten: {path}")
    return 0 if all(r["passes"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
