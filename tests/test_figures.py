"""npae/training/figures.py: each figure is a real, non-blank PNG; the two measurements match
hand counts."""

import matplotlib.image
import numpy as np
import pytest

from npae import nn
from npae.training import figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def digits(rng, n):
    """n blurred rings, (n, 1, 28, 28) in [0, 1]: enough like digits for a picture."""
    yy, xx = np.mgrid[0:28, 0:28]
    out = np.empty((n, 1, 28, 28))
    for i in range(n):
        cy, cx = rng.uniform(11, 17, 2)
        r = np.hypot((xx - cx) / rng.uniform(4, 7), (yy - cy) / rng.uniform(6, 9))
        out[i, 0] = np.exp(-((r - 1) ** 2) / 0.04)
    return out


def blob(size=28, sigma=3.0):
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2
    return np.exp(-((yy - c) ** 2 + (xx - c) ** 2) / (2 * sigma**2))


def checker(size=28):
    yy, xx = np.mgrid[0:size, 0:size]
    return (-1.0) ** (yy + xx)


def assert_real_png(path):
    assert path.exists()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    # not one flat colour: something was drawn
    assert img.reshape(-1, img.shape[-1]).std(axis=0).max() > 0.05


# ------------------------------------------------------------------------------- the figures
def test_reconstructions_writes_png_and_creates_folders(tmp_path, rng):
    x = digits(rng, 12)
    y = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1)
    path = figures.reconstructions(x, y, tmp_path / "a" / "b" / "recon.png", title="AE")
    assert path == tmp_path / "a" / "b" / "recon.png"
    assert_real_png(path)


def test_reconstructions_with_noisy_row_and_3d_input(tmp_path, rng):
    x = digits(rng, 5)[:, 0]  # (N, 28, 28)
    noisy = np.clip(x + rng.normal(0, 0.3, x.shape), 0, 1)
    path = figures.reconstructions(x, x, tmp_path / "dae.png", noisy=noisy, title="DAE", n=10)
    assert_real_png(path)


def test_reconstructions_rejects_mismatched_counts(tmp_path, rng):
    with pytest.raises(ValueError, match="counts differ"):
        figures.reconstructions(digits(rng, 4), digits(rng, 3), tmp_path / "x.png")


def test_loss_curves(tmp_path):
    history = [{"epoch": e, "train_loss": 0.3 / e + 0.1, "val_loss": 0.3 / e + 0.12}
               for e in range(1, 8)]
    assert_real_png(figures.loss_curves(history, tmp_path / "loss.png", title="loss"))


def test_loss_curves_single_epoch_still_draws(tmp_path):
    history = [{"epoch": 1, "train_loss": 0.4, "val_loss": 0.38}]
    assert_real_png(figures.loss_curves(history, tmp_path / "loss1.png"))


def test_image_grid(tmp_path, rng):
    path = figures.image_grid(digits(rng, 100), tmp_path / "grid.png", title="samples")
    assert_real_png(path)
    # a ragged last row is fine
    assert_real_png(figures.image_grid(digits(rng, 7), tmp_path / "grid7.png", nrow=3))


def test_checkerboard_figure(tmp_path, rng):
    x = digits(rng, 6)
    weave = np.clip(x + 0.1 * checker() * (x > 0.1), 0, 1)
    k3 = nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1)
    panels = [
        {"name": "conv-strided", "outputs": weave,
         "overlaps": [("layer 1", figures.overlap_count({"kernel_size": 3, "stride": 2}, 2)),
                      ("layer 2", figures.overlap_count(k3, 14))],
         "score": figures.checkerboard_score(weave)},
        {"name": "upsample", "outputs": x, "overlaps": [],
         "score": figures.checkerboard_score(x)},
    ]
    assert_real_png(figures.checkerboard_figure(panels, tmp_path / "cb.png"))


# --------------------------------------------------------------------------- overlap_count
def test_overlap_count_k3_s2_by_hand():
    expected = np.array([
        [1, 1, 2, 1, 1],
        [1, 1, 2, 1, 1],
        [2, 2, 4, 2, 2],
        [1, 1, 2, 1, 1],
        [1, 1, 2, 1, 1],
    ])
    counts = figures.overlap_count({"kernel_size": 3, "stride": 2, "padding": 0,
                                    "output_padding": 0, "dilation": 1}, (2, 2))
    assert counts.dtype.kind == "i"
    np.testing.assert_array_equal(counts, expected)


def test_overlap_count_k2_s2_tiles_exactly():
    counts = figures.overlap_count({"kernel_size": (2, 2), "stride": (2, 2)}, 7)
    np.testing.assert_array_equal(counts, np.ones((14, 14), dtype=int))


def test_overlap_count_of_a_layer_14_to_28():
    layer = nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1)
    counts = figures.overlap_count(layer, 14)
    assert counts.shape == (28, 28)
    assert set(np.unique(counts)) == {1, 2, 4}
    # the pattern repeats every 2 pixels: the checkerboard's period
    np.testing.assert_array_equal(counts[:2, :2], [[1, 2], [2, 4]])
    np.testing.assert_array_equal(counts[2:26], counts[:24])


def test_overlap_count_without_padding_keeps_every_tap():
    # nothing is cropped, so the counts add up to (input pixels) x (kernel taps)
    counts = figures.overlap_count({"kernel_size": (3, 2), "stride": (2, 3), "dilation": 2},
                                   (4, 5))
    assert counts.sum() == 4 * 5 * 3 * 2


# ------------------------------------------------------------------------ checkerboard_score
def test_pure_checkerboard_scores_one():
    assert figures.checkerboard_score(0.5 + 0.5 * checker()) == pytest.approx(1.0)
    stripes = np.tile([0.0, 1.0], (28, 14))  # vertical stripes of period 2: column bin 14
    assert figures.checkerboard_score(stripes) == pytest.approx(1.0)


def test_smooth_blob_scores_zero():
    assert figures.checkerboard_score(blob()) < 1e-6


def test_score_rises_with_checkerboard_amplitude():
    amplitudes = [0.0, 0.005, 0.02, 0.05, 0.1, 0.3]
    scores = [figures.checkerboard_score(blob() + a * checker()) for a in amplitudes]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert np.all(np.diff(scores) > 0)


def test_score_averages_over_a_batch(rng):
    x = digits(rng, 8)  # (N, 1, 28, 28)
    weak = x + 0.05 * checker()
    assert figures.checkerboard_score(x) < figures.checkerboard_score(weak)
    assert figures.checkerboard_score(x[:, 0]) == pytest.approx(figures.checkerboard_score(x))


def test_score_other_strides():
    yy, xx = np.mgrid[0:28, 0:28]
    period4 = np.cos(np.pi * yy / 2) + np.cos(np.pi * xx / 2)  # bins 7 and 21 of 28
    assert figures.checkerboard_score(period4, stride=4) == pytest.approx(1.0)
    assert figures.checkerboard_score(period4, stride=2) < 1e-12
    with pytest.raises(ValueError, match="not divisible"):
        figures.checkerboard_score(blob(), stride=3)
    with pytest.raises(ValueError, match="stride must be >= 2"):
        figures.checkerboard_score(blob(), stride=1)


def test_constant_images_score_zero():
    assert figures.checkerboard_score(np.full((3, 28, 28), 0.7)) == 0.0
