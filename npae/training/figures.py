"""The pictures the experiments write, and the two numbers behind the checkerboard.

Every plotting function draws on its own ``matplotlib.figure.Figure`` rendered by the Agg canvas:
no pyplot, so no global figure list, no display needed and nothing left open. Each one writes a
PNG to ``path`` (creating parent folders) and returns that path as a ``pathlib.Path``.

Two helpers measure rather than draw:

* ``overlap_count`` runs the real ``F.conv_transpose2d`` on all-ones data, so each output pixel
  holds the number of kernel taps that land on it: uneven counts are the checkerboard's cause.
* ``checkerboard_score`` is the share of the images' spectral power at the stride frequency:
  the checkerboard's effect, measured on the outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

import npae.functional as F
from npae.engine.shapes import pair
from npae.engine.tensor import Tensor, no_grad

__all__ = [
    "reconstructions", "loss_curves", "image_grid", "overlap_count", "checkerboard_score",
    "checkerboard_figure",
]

_DPI = 120
_CROP = 8  # overlap maps larger than this are shown as their top-left _CROP x _CROP corner


# ---------------------------------------------------------------------------------- helpers
def _as_images(images, what: str) -> np.ndarray:
    """(N, 1, H, W), (N, H, W) or (N, H*W) with a square H*W, as a float (N, H, W) array."""
    a = np.asarray(getattr(images, "data", images), dtype=np.float64)
    if a.ndim == 4 and a.shape[1] == 1:
        return a[:, 0]
    if a.ndim == 3:
        return a
    if a.ndim == 2:
        side = int(round(np.sqrt(a.shape[1])))
        if side * side == a.shape[1]:
            return a.reshape(a.shape[0], side, side)  # (N, H*W) -> (N, H, W)
    raise ValueError(
        f"{what}: expected images of shape (N, 1, H, W), (N, H, W) or (N, H*W), got {a.shape}"
    )


def _new_figure(width: float, height: float) -> Figure:
    # constrained layout keeps row labels and titles inside the canvas
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", facecolor="white")
    fig.clear()  # no pyplot: dropping the last reference frees the figure
    return path


def _bare(ax) -> None:
    """No ticks, no frame; a y-label set later still shows (axis("off") would hide it)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _row_label(ax, text: str) -> None:
    ax.set_ylabel(text, rotation=0, ha="right", va="center", fontsize=11, labelpad=8)


# ---------------------------------------------------------------------------------- figures
def reconstructions(originals, outputs, path, noisy=None, title="", n=10) -> Path:
    """Rows "input", ("noisy input",) "output": the first ``n`` digits of each, side by side.

    originals, outputs (and noisy): (N, 1, H, W) or (N, H, W) arrays with values in [0, 1].
    """
    rows = [("input", _as_images(originals, "reconstructions: originals"))]
    if noisy is not None:
        rows.append(("noisy input", _as_images(noisy, "reconstructions: noisy")))
    rows.append(("output", _as_images(outputs, "reconstructions: outputs")))
    counts = {label: len(a) for label, a in rows}
    if len(set(counts.values())) > 1:
        raise ValueError(f"reconstructions: the image counts differ: {counts}")
    n = min(int(n), len(rows[0][1]))
    if n < 1:
        raise ValueError("reconstructions: there are no images to show")

    fig = _new_figure(1.0 + 0.95 * n, 0.4 + 1.05 * len(rows))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(images[c], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            _bare(ax)
        _row_label(axes[r, 0], label)
    if title:
        fig.suptitle(title, fontsize=13)
    return _save(fig, path)


def loss_curves(history, path, title="") -> Path:
    """Training and validation loss against epoch.

    history: a list of dicts with "epoch" (1-based), "train_loss" (the epoch's mean, drawn at
    the middle of the epoch) and "val_loss" (measured at its end; a missing or None val_loss is
    skipped), and optionally "curve": [[fractional epoch, loss], ...] points along the epoch,
    drawn as a thin line so that even a one-epoch run shows how the loss fell.
    """
    if not history:
        raise ValueError("loss_curves: history is empty")
    rows = sorted(history, key=lambda h: h["epoch"])
    epochs = [int(h["epoch"]) for h in rows]
    curve = [point for h in rows for point in h.get("curve", [])]
    val = [(int(h["epoch"]), float(h["val_loss"])) for h in rows if h.get("val_loss") is not None]

    fig = _new_figure(6.4, 4.2)
    ax = fig.subplots()
    if curve:
        ax.plot([x for x, _ in curve], [y for _, y in curve], lw=1, alpha=0.6, color="C0",
                label="train loss (running mean of batches)")
    ax.plot([e - 0.5 if curve else e for e in epochs], [float(h["train_loss"]) for h in rows],
            marker="o", ls="" if curve else "-", color="C0", label="train loss (epoch mean)")
    if val:
        ax.plot([e for e, _ in val], [v for _, v in val], marker="s", color="C1",
                label="validation loss (end of epoch)")
    ax.set_xlabel("epoch")
    values = [y for _, y in curve] + [float(h["train_loss"]) for h in rows] + [v for _, v in val]
    values = [v for v in values if np.isfinite(v)]
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")  # a loss falling 100x would flatten into the axis otherwise
        ax.set_ylabel("loss (log scale)")
    else:
        ax.set_ylabel("loss")
    if curve:
        ax.set_xlim(0, max(epochs) + 0.05)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    elif len(set(epochs)) <= 10:
        ax.set_xticks(sorted(set(epochs)))  # a tick per epoch; never 0.5 of an epoch
        if len(set(epochs)) == 1:
            ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def image_grid(images, path, title="", nrow=10) -> Path:
    """Images tiled ``nrow`` to a row (100 samples -> a 10 x 10 grid), grey, values in [0, 1]."""
    a = _as_images(images, "image_grid")
    if len(a) == 0:
        raise ValueError("image_grid: there are no images to show")
    nrow = max(1, min(int(nrow), len(a)))
    ncol_rows = -(-len(a) // nrow)  # ceil
    h, w = a.shape[1:]
    gap = 2
    # one mosaic on a white background: a thin white line separates the black digit frames
    mosaic = np.ones((ncol_rows * (h + gap) + gap, nrow * (w + gap) + gap))
    for i, img in enumerate(a):
        r, c = divmod(i, nrow)
        top, left = gap + r * (h + gap), gap + c * (w + gap)
        mosaic[top:top + h, left:left + w] = img

    side = 0.6 * max(nrow, ncol_rows)
    fig = _new_figure(max(3.0, side * nrow / max(nrow, ncol_rows)),
                      max(3.0, side * ncol_rows / max(nrow, ncol_rows)) + 0.4)
    ax = fig.subplots()
    ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    _bare(ax)
    if title:
        ax.set_title(title, fontsize=13)
    return _save(fig, path)


# ---------------------------------------------------------------------- checkerboard, measured
def overlap_count(layer_or_params, input_hw) -> np.ndarray:
    """How many kernel taps of a transposed convolution land on each output pixel.

    layer_or_params: an ``nn.ConvTranspose2d`` or a dict with kernel_size and optionally stride,
    padding, output_padding, dilation (ints or pairs; PyTorch's defaults when absent).
    input_hw: H or (H, W) of the layer's input. Returns an (oH, oW) int array, computed by the
    real op on an all-ones input and kernel.

    Kernel 3, stride 2 on 2x2 gives 5x5 with counts alternating 1, 2 / 2, 4: the uneven overlap
    behind checkerboard artifacts. Kernel 2, stride 2 tiles the output exactly: all ones.
    """
    p = layer_or_params
    if isinstance(p, dict):
        if "kernel_size" not in p:
            raise ValueError(f"overlap_count: the dict needs a kernel_size, got keys {sorted(p)}")
        get = p.get
    else:
        def get(name, default=None):
            return getattr(p, name, default)

    op = "overlap_count"
    kh, kw = pair(get("kernel_size"), "kernel_size", op)
    h, w = pair(input_hw, "input_hw", op)
    x = Tensor(np.ones((1, 1, h, w)))
    k = Tensor(np.ones((1, 1, kh, kw)))
    with no_grad():
        y = F.conv_transpose2d(x, k, None, stride=get("stride", 1), padding=get("padding", 0),
                               output_padding=get("output_padding", 0),
                               dilation=get("dilation", 1))
    return np.rint(y.data[0, 0]).astype(int)


def checkerboard_score(images, stride=2) -> float:
    """The fraction of the images' spectral power at the stride frequencies, in [0, 1].

    images: (N, 1, H, W), (N, H, W) or one (H, W) image. Power is |FFT2|^2 of each image,
    averaged over the images, with the DC term (the mean brightness) left out. The stride
    frequencies are the bins whose row index is a non-zero multiple of H/stride or whose column
    index is a non-zero multiple of W/stride: for stride 2 on 28x28, row 14 and column 14, where a
    pattern repeating every 2 pixels puts its power. A checkerboard scores about 1, a smooth
    digit about 0.
    """
    s = int(stride)
    if s < 2:
        raise ValueError(f"checkerboard_score: stride must be >= 2, got {stride}")
    a = np.asarray(getattr(images, "data", images), dtype=np.float64)
    a = a[None] if a.ndim == 2 else _as_images(a, "checkerboard_score")
    h, w = a.shape[1:]
    if h % s or w % s:
        raise ValueError(
            f"checkerboard_score: image size {h}x{w} is not divisible by stride {s}, so the "
            f"stride frequencies H/stride = {h}/{s}, W/stride = {w}/{s} fall between FFT bins"
        )
    power = (np.abs(np.fft.fft2(a)) ** 2).mean(axis=0)  # (H, W), averaged over images
    power[0, 0] = 0.0
    total = power.sum()
    if total <= 0.0:
        return 0.0  # constant images: no pattern at all
    rows = np.zeros(h, dtype=bool)
    rows[h // s::h // s] = True  # bins h/s, 2h/s, ..., (s-1)h/s
    cols = np.zeros(w, dtype=bool)
    cols[w // s::w // s] = True
    at_stride = rows[:, None] | cols[None, :]
    return float(np.clip(power[at_stride].sum() / total, 0.0, 1.0))


def _count_map(ax, label: str, counts: np.ndarray, vmax: int) -> None:
    """A small heatmap of overlap counts with each count written in its cell."""
    counts = np.asarray(counts)
    full = counts.shape
    shown = counts[:_CROP, :_CROP]
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=max(vmax, 1) * 1.25, interpolation="nearest")
    for (i, j), v in np.ndenumerate(shown):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                color="white" if v > 0.6 * vmax else "black")
    _bare(ax)
    if shown.shape != full:
        where = f"top-left {shown.shape[0]}x{shown.shape[1]} of {full[0]}x{full[1]}"
    else:
        where = f"whole {full[0]}x{full[1]} map"
    ax.set_title(f"{label}\ntaps per output pixel\n{where}", fontsize=8)


def checkerboard_figure(panels, path, title="Checkerboard artifacts: decoder outputs and "
                        "transposed-convolution overlap counts", n_digits=4) -> Path:
    """One row per decoder: a few output digits, a magnified centre crop, the overlap maps.

    panels: a list of dicts {"name": str, "outputs": (n, 1, H, W) array in [0, 1],
    "overlaps": [(label, 2-D int array), ...] (may be empty), "score": float}. The score
    (``checkerboard_score`` of the outputs) goes into the row label.
    """
    if not panels:
        raise ValueError("checkerboard_figure: no panels")
    outputs = [_as_images(p["outputs"], f"checkerboard_figure: {p['name']} outputs")
               for p in panels]
    n_digits = max(1, min([int(n_digits)] + [len(o) for o in outputs]))
    n_maps = max(1, max(len(p["overlaps"]) for p in panels))
    vmax = max([int(np.max(m)) for p in panels for _, m in p["overlaps"]] or [1])
    ncols = n_digits + 1 + n_maps

    fig = _new_figure(2.2 + 1.45 * ncols, 0.6 + 1.9 * len(panels))
    axes = fig.subplots(len(panels), ncols, squeeze=False)
    for r, (panel, imgs) in enumerate(zip(panels, outputs, strict=True)):
        for c in range(n_digits):
            ax = axes[r, c]
            ax.imshow(imgs[c], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            _bare(ax)
            if r == 0:
                ax.set_title(f"output {c + 1}", fontsize=9)
        _row_label(axes[r, 0], f"{panel['name']}\ncheckerboard\nscore {panel['score']:.3f}")

        # the centre of the first digit, blown up: a checkerboard shows as a 2-pixel weave
        h, w = imgs.shape[1:]
        side = min(12, h, w)
        top, left = (h - side) // 2, (w - side) // 2
        ax = axes[r, n_digits]
        ax.imshow(imgs[0, top:top + side, left:left + side], cmap="gray", vmin=0.0, vmax=1.0,
                  interpolation="nearest")
        _bare(ax)
        ax.set_title(f"output 1, centre\n{side}x{side} magnified", fontsize=8)

        for m in range(n_maps):
            ax = axes[r, n_digits + 1 + m]
            if m < len(panel["overlaps"]):
                label, counts = panel["overlaps"][m]
                _count_map(ax, label, counts, vmax)
            else:
                ax.axis("off")
                if m == 0:
                    ax.text(0.5, 0.5, "no transposed\nconvolution:\nno uneven overlap",
                            ha="center", va="center", fontsize=8, transform=ax.transAxes)
    if title:
        fig.suptitle(title, fontsize=13)
    return _save(fig, path)
