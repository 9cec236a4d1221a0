"""Dead code units: counted after every epoch, recorded in metrics.json, explained in the log."""

import json

import numpy as np

import npae
from npae import models
from npae.training import loop as T
from npae.training.dead_units import dead_units
from npae.training.loop import TrainSettings


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 1, 28, 28)) / 256).astype(np.float32)


def _kill(conv, channels):
    """Make the code channels' pre-activation negative for every input in [0, 1): zero
    weights and a negative bias, so the ReLU after them outputs 0 everywhere."""
    for c in channels:
        conv.weight.data[c] = 0
        conv.bias.data[c] = -1


def test_a_channel_zero_for_every_image_is_dead_and_only_it():
    npae.manual_seed(0)
    model = models.create("conv-transpose")
    conv = [m for m in model.encoder.modules() if type(m).__name__ == "Conv2d"][-1]
    x = _images(20)
    _kill(conv, [1, 3])
    conv.bias.data[[0, 2]] = 5.0  # and the other two alive for sure
    d = dead_units(model, x, batch_size=7)  # batches that do not divide the images
    assert (d.dead, d.units, d.kind) == ([1, 3], 4, "channel")
    assert "2 of 4 code channels dead" in d.message("conv-transpose")
    assert "channel 1, 3" in d.message("conv-transpose")
    assert "the other 2" in d.message("conv-transpose")
    _kill(conv, [0, 2])
    assert "one constant image" in dead_units(model, x).message("conv-transpose")


class _CodeIsInput(npae.nn.Module):
    """A model whose code is its input, to set the code directly."""

    def code(self, x):
        return x


def test_a_channel_alive_at_one_position_of_one_image_is_alive():
    x = np.zeros((3, 4, 5, 5), np.float32)
    x[:, 0] = 1.0
    x[1, 2, 4, 0] = 0.5  # channel 2: one position of one image
    x[:, 3] = -1.0  # nonzero counts as alive (a code without a ReLU)
    assert dead_units(_CodeIsInput(), x, batch_size=2).dead == [1]
    x[1, 2, 4, 0] = 0.0
    assert dead_units(_CodeIsInput(), x, batch_size=2).dead == [1, 2]


def test_flat_codes_count_units_and_chains_stop_before_the_first_unpool():
    npae.manual_seed(0)
    lin = models.create("linear")
    assert dead_units(lin, _images(8)).units == 32 and dead_units(lin, _images(8)).kind == "unit"
    unpool = models.create("conv-unpool")
    assert unpool.code(npae.Tensor(_images(2))).shape == (2, 4, 7, 7)
    assert dead_units(models.create("vae"), _images(4)) is None  # a Gaussian code


def test_training_records_and_reports_dead_units(tmp_path, monkeypatch):
    npae.manual_seed(0)
    data = T.Data(_images(128), _images(32, 1), _images(32, 2))
    metrics, model = T.train(TrainSettings("conv-transpose", epochs=1, batch_size=64),
                             tmp_path / "run", data=data, progress=False, log=lambda m: None)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["epochs"][0]["code_units"] == 4
    assert saved["epochs"][0]["dead_units"] == dead_units(model, data.val).dead
    assert saved["dead_units"] == saved["epochs"][0]["dead_units"]

    # a model whose whole code is dead from the start: the log says so after each epoch
    create = models.create

    def dead_model(name):
        model = create(name)
        _kill([m for m in model.encoder.modules() if type(m).__name__ == "Conv2d"][-1],
              range(4))
        return model

    monkeypatch.setattr(T.models, "create", dead_model)
    logs = []
    metrics, _ = T.train(TrainSettings("conv-transpose", epochs=1, batch_size=64),
                         tmp_path / "dead", data=data, progress=False, log=logs.append)
    assert metrics["dead_units"] == [0, 1, 2, 3]
    said = [m for m in logs if "code channels dead" in m]
    assert len(said) == 1 and "4 of 4" in said[0] and "one constant image" in said[0]
