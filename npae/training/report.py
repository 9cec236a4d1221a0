"""Figures for a trained model, and the demo: every model trained, one report.

``model_figures`` writes what one ``npae train`` run shows; ``demo`` trains every model of
npae.models, writes their figures, a checkerboard comparison of the decoders, and
``report.md`` embedding all of it with a results table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from npae import models, nn
from npae.data import add_noise
from npae.data.fileio import atomic_write
from npae.engine.tensor import Tensor, no_grad
from npae.training import figures
from npae.training.loop import Data, TrainSettings, train

N_SHOW = 10


def _reconstruct(model, x):
    model.eval()
    try:
        with no_grad():
            return model.reconstruct(Tensor(x)).data
    finally:
        model.train()


def model_figures(model, settings: TrainSettings, data: Data, out, history) -> list[Path]:
    """reconstructions.png and loss.png (and, for the VAE, samples.png and
    vae_reconstructions.png) in ``out``."""
    out = Path(out)
    x = data.test[:N_SHOW]
    noisy = None
    if settings.noise:
        noisy = add_noise(x, settings.noise, np.random.default_rng([settings.seed, 3]))
    outputs = _reconstruct(model, noisy if noisy is not None else x)
    paths = [
        figures.reconstructions(x, outputs, out / "reconstructions.png", noisy=noisy,
                                title=f"{settings.model}: test digits and reconstructions"),
        figures.loss_curves(history, out / "loss.png", title=f"{settings.model}: loss per epoch"),
    ]
    if isinstance(model, models.VAE):
        with no_grad():
            samples = model.sample(100, rng=np.random.default_rng(settings.seed)).data
        paths.append(figures.image_grid(samples, out / "samples.png",
                                        title="vae: 100 digits decoded from the prior N(0, I)"))
        paths.append(figures.image_grid(_reconstruct(model, data.test[:100]),
                                        out / "vae_reconstructions.png",
                                        title="vae: reconstructions of 100 test digits"))
    return paths


def _transposed_conv_inputs(model, x):
    """(layer, input size) for every ConvTranspose2d of a Sequential decoder."""
    found = []
    with no_grad():
        h = model.encoder(Tensor(x))
        for layer in model.decoder:
            if isinstance(layer, nn.ConvTranspose2d):
                found.append((layer, h.shape[2:]))
            h = layer(h)
    return found


def checkerboard(trained: dict, data: Data, path) -> tuple[Path, dict]:
    """Outputs of the transposed-conv decoders next to the upsampling one, with overlap maps and
    the measured checkerboard score of each. Returns (figure path, scores by model)."""
    panels, scores = [], {}
    x = data.test[:256]
    for name in ("conv-transpose", "conv-strided", "conv-upsample"):
        if name not in trained:
            continue
        model = trained[name]
        outputs = _reconstruct(model, x)
        overlaps = [
            (f"{layer.in_channels}->{layer.out_channels}, k{layer.kernel_size[0]} "
             f"s{layer.stride} on {hw[0]}x{hw[1]}", figures.overlap_count(layer, hw))
            for layer, hw in _transposed_conv_inputs(model, x[:1])
        ]
        scores[name] = figures.checkerboard_score(outputs, stride=2)
        panels.append({"name": name, "outputs": outputs[:4], "overlaps": overlaps,
                       "score": scores[name]})
    return figures.checkerboard_figure(
        panels, path, title="Checkerboard artifacts: transposed convolutions vs upsampling"
    ), scores


def demo(out, epochs=1) -> Path:
    """Train every model for ``epochs`` on MNIST; write figures and ``out/report.md``."""
    out = Path(out)
    start = time.perf_counter()
    data = Data.mnist()
    rows, trained = [], {}
    for name in models.names():
        settings = TrainSettings(model=name, epochs=epochs,
                            noise=models.DEFAULT_NOISE.get(name, 0.0)).check()
        metrics, model = train(settings, out / name, data=data, overwrite=True)
        print(f"npae: {name} test loss {metrics['test_loss']:.5f} ({len(data.test):,} test "
              f"images)", file=sys.stderr)
        model_figures(model, settings, data, out / name, metrics["epochs"])
        trained[name] = model
        rows.append(metrics)
    board, scores = checkerboard(trained, data, out / "checkerboard.png")
    report = out / "report.md"
    text = _report_text(rows, scores, epochs, time.perf_counter() - start, board, out)
    atomic_write(report, lambda f: f.write(text.encode()))
    return report


def _dead(metrics) -> str:
    """'2 of 4 (1, 3)', '0 of 32', or '-' where not counted."""
    history = metrics.get("epochs") or [{}]
    dead, units = history[-1].get("dead_units"), history[-1].get("code_units")
    if dead is None:
        return "-"
    return f"{len(dead)} of {units}" + (f" ({', '.join(map(str, dead))})" if dead else "")


def _report_text(rows, scores, epochs, seconds, board, out) -> str:
    lines = [
        "# npae demo: the article's autoencoders on MNIST",
        "",
        f"Every model trained for {epochs} epoch(s) on the 50,000 MNIST training digits with "
        "Adam (lr 1e-3, batch 128, seed 0), validated on 10,000 and tested on 10,000 more. "
        f"The whole demo took {seconds:.0f} s. Loss: mean squared error per pixel (the denoising "
        "model sees inputs with Gaussian noise of factor 0.5 and is scored against the clean "
        "digits); for the VAE, the negative ELBO per image (BCE summed over pixels + KL).",
        "",
        "| model | parameters | test loss | dead code units | images/s (training) | "
        "wall time (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in rows:
        lines.append(f"| `{m['model']}` | {m['parameters']:,} | {m['test_loss']:.4f} | "
                     f"{_dead(m)} | {m['images_per_s']:,.0f} | {m['wall_time_s']:.1f} |")
    lines += [
        "",
        "Dead code units: channels (or units) of the code that are zero for every validation "
        "image after the last epoch. A dead ReLU unit gets no gradient and never recovers; when "
        "all are dead the decoder outputs one constant image. Which seeds do this is a lottery, "
        "in any framework (the VAE's Gaussian code has no activation and is not counted).",
        "",
        "Reproduce one row with `npae train MODEL --epochs N --out DIR` (DIR/metrics.json holds "
        "the numbers, DIR/checkpoint.npz the weights; `npae eval DIR/checkpoint.npz` rescores it).",
        "",
        "## Checkerboard artifacts",
        "",
        "A transposed convolution whose kernel size is not a multiple of its stride lays "
        "overlapping kernel copies unevenly (the overlap-count maps), which prints a grid "
        "pattern on its output. Nearest upsampling followed by a convolution spreads every "
        "pixel evenly. The score is the share of the outputs' spectral energy at the stride "
        "frequency (higher = more checkerboard).",
        "",
        "| decoder | checkerboard score |",
        "|---|---:|",
    ]
    lines += [f"| `{name}` | {score:.4f} |" for name, score in scores.items()]
    lines += ["", f"![checkerboard]({board.relative_to(out)})", ""]
    for m in rows:
        name = m["model"]
        lines += [f"## {name}", "", f"![{name} reconstructions]({name}/reconstructions.png)",
                  "", f"![{name} loss]({name}/loss.png)", ""]
        if name == "vae":
            lines += ["![vae samples](vae/samples.png)", "",
                      "![vae reconstructions](vae/vae_reconstructions.png)", ""]
    return "\n".join(lines)
