"""npae/engine/shapes.py and the memory guard in npae/engine/config.py: sizes parsed once, and
an output that cannot fit in this machine's memory refused before it is allocated."""

import os
import subprocess
import sys

import numpy as np
import pytest

import npae
import npae.functional as F
from npae.engine import config, shapes


def test_hw_text_round_trips():
    assert shapes.parse_hw("4x2") == (4, 2)
    assert shapes.parse_hw("5X5") == (5, 5)
    assert shapes.parse_hw("3") == (3, 3)
    assert shapes.format_hw((4, 2)) == "4x2"
    assert shapes.format_hp((2, 2)) == "2" and shapes.format_hp((2, 1)) == "2x1"
    for bad in ("4x", "x", "4x2x1", "a", ""):
        with pytest.raises(ValueError, match=f"expected an int or HxW like 4x2, got {bad!r}"):
            shapes.parse_hw(bad)


def test_an_upsampled_output_larger_than_the_machine_is_refused_before_allocating():
    # the case: scale_factor=1e6 on 28x28 raised a raw MemoryError from NumPy
    x = npae.Tensor(np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(MemoryError, match=r"upsample_nearest2d: an output of 28000000x28000000 "
                                          r"pixels per channel \(float32\) would need 2\.8 PiB, "
                                          r"more than this machine's .* of memory"):
        F.upsample_nearest2d(x, scale_factor=1e6)


def test_the_memory_guard_says_how_much_in_readable_units(monkeypatch):
    monkeypatch.setattr(config, "memory_bytes", lambda: 3 * 2**30)
    config.check_fits_in_memory("this", 3 * 2**30)  # exactly fits
    with pytest.raises(MemoryError, match=r"^that would need 3\.0 GiB, more than this machine's "
                                          r"3\.0 GiB of memory$"):
        config.check_fits_in_memory("that", 3 * 2**30 + 1)


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5"])
def test_a_bad_scratch_setting_in_the_environment_warns_and_keeps_the_default(value):
    # it used to make `import npae` itself fail (abc) or be taken as given (-1)
    env = dict(os.environ, NPAE_MAX_SCRATCH_MB=value)
    run = subprocess.run([sys.executable, "-c", "import npae; print(npae.max_scratch_bytes())"],
                         env=env, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == str(64 * 2**20)
    assert f"NPAE_MAX_SCRATCH_MB={value!r} is not a positive whole number of MiB" in run.stderr


def test_a_good_scratch_setting_is_used():
    env = dict(os.environ, NPAE_MAX_SCRATCH_MB="8")
    run = subprocess.run([sys.executable, "-c", "import npae; print(npae.max_scratch_bytes())"],
                         env=env, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == str(8 * 2**20) and run.stderr == ""


@pytest.mark.parametrize("n, k, s, p, floor_out, ceil_out", [
    (5, 2, 2, 1, 3, 3),   # the case
    (6, 3, 2, 0, 2, 3),   # ceil_mode keeps a last, partial window
    (5, 3, 3, 1, 2, 2),   # ...unless it would start inside the right padding: dropped
    (7, 3, 3, 1, 3, 3),
    (4, 2, 2, 1, 3, 3),
])
def test_pooling_output_size_at_the_ceil_mode_boundary(n, k, s, p, floor_out, ceil_out):
    # PyTorch: out = ceil((n + 2p - (k - 1) - 1) / s) + 1, minus 1 when (out - 1) * s >= n + p
    assert shapes.pool2d_out(n, k, s, p, 1, ceil_mode=False) == floor_out
    assert shapes.pool2d_out(n, k, s, p, 1, ceil_mode=True) == ceil_out
    x = npae.Tensor(np.arange(n * n, dtype=np.float64).reshape(1, 1, n, n))
    assert F.max_pool2d(x, k, s, p, ceil_mode=True).shape == (1, 1, ceil_out, ceil_out)


@pytest.mark.parametrize("op, call", [
    ("conv_transpose2d", lambda x: F.conv_transpose2d(x, npae.Tensor(np.zeros((1, 2, 3, 3))))),
    ("max_unpool2d", lambda x: F.max_unpool2d(x, npae.Tensor(np.zeros(x.shape, np.int64)), 2)),
    ("upsample_nearest2d", lambda x: F.upsample_nearest2d(x, scale_factor=2)),
])
@pytest.mark.parametrize("hw", [(0, 3), (3, 0)])
def test_an_image_with_a_side_of_zero_is_refused_at_entry(op, call, hw):
    # conv_transpose2d used to divide by zero in its chunk planner
    x = npae.Tensor(np.zeros((1, 1, *hw)))
    with pytest.raises(ValueError, match=rf"{op}: the input image is {hw[0]}x{hw[1]}; it needs "
                                         r"at least one pixel a side"):
        call(x)
