"""Training and evaluation of the article's autoencoders on MNIST.

``train(model_name, out_dir, ...)`` runs Adam over the 50,000 training digits, shows a progress
bar per epoch, scores the 10,000 validation digits after each epoch, writes
``out_dir/checkpoint.npz`` and ``out_dir/metrics.json`` after each epoch and the test loss at the
end. Everything random is derived from ``seed`` (the shuffle and the noise of epoch e from
(seed, e); the VAE's sampling from npae's generator, whose state each checkpoint carries), so a
run resumed from its last checkpoint continues bit for bit as if it had never stopped.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import npae
from npae import models
from npae.data import add_noise, batches, mnist, num_batches, to_float
from npae.data.fileio import atomic_write
from npae.engine.random import get_state, manual_seed, set_state
from npae.engine.tensor import Tensor, no_grad
from npae.optim import Adam
from npae.training import checkpoint
from npae.training.checkpoint import CHECKPOINT
from npae.training.dead_units import dead_units
from npae.training.runfolder import TrainingError, claim

CURVE_EVERY = 10  # steps between the points of the loss curve kept in metrics.json
METRICS = "metrics.json"


@dataclass
class TrainSettings:
    model: str
    epochs: int = 2
    batch_size: int = 128
    lr: float = 1e-3
    noise: float = 0.0
    seed: int = 0

    def check(self):
        if self.model not in models.names():
            raise ValueError(
                f"unknown model {self.model!r}; choose one of: {', '.join(models.names())}"
            )
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be positive and finite, got {self.lr}")
        if not (self.noise >= 0 and math.isfinite(self.noise)):
            raise ValueError(f"noise factor must be >= 0 and finite, got {self.noise}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        return self


@dataclass
class Data:
    """float32 images (N, 1, 28, 28) in [0, 1) for each split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @classmethod
    def mnist(cls, progress=True):
        d = mnist(progress=progress)
        return cls(to_float(d.train.images), to_float(d.val.images), to_float(d.test.images))


def _noise_rng(seed, epoch, purpose):
    return np.random.default_rng([seed, epoch, purpose])


def evaluate(model, images, noise=0.0, seed=0, batch_size=1000) -> float:
    """Mean loss over ``images`` (noisy inputs from a fixed stream when noise > 0), with the
    VAE's sampling drawn from a generator seeded by ``seed``: the same seed, the same number.
    npae's global generator is left as it was."""
    if len(images) == 0:
        raise ValueError("evaluate: no images to score (an empty split)")
    saved = get_state()
    manual_seed(seed)
    noise_rng = _noise_rng(seed, 0, 2)
    model.eval()
    total, count = 0.0, 0
    try:
        with no_grad():
            for (xb,) in batches((images,), batch_size):
                x_in = add_noise(xb, noise, noise_rng) if noise else xb
                loss = model.loss(Tensor(x_in), Tensor(xb)).item()
                total += loss * len(xb)
                count += len(xb)
    finally:
        set_state(saved)
        model.train()
    return total / count


def _write_json(path, obj):
    text = json.dumps(obj, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def train(settings: TrainSettings, out_dir, resume=False, data: Data | None = None, progress=True,
          log=None, overwrite=False):
    """Train ``settings.model``; returns (metrics dict, also written to metrics.json, model).

    A folder that already holds a checkpoint is continued with ``resume=True`` or replaced with
    ``overwrite=True``; otherwise it is left alone and TrainingError says so. The folder is
    created and checked to be writable before anything else, and locked for the whole run: a
    second run into it meanwhile gets a TrainingError naming this one's process.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    settings.check()
    with claim(Path(out_dir)) as out:
        return _train(settings, out, resume, data, progress, log, overwrite)


def _train(settings, out, resume, data, progress, log, overwrite):
    ckpt_path = out / CHECKPOINT

    model = None
    history, start_epoch, wall_before = [], 0, 0.0
    if ckpt_path.exists() and not resume and not overwrite:
        raise TrainingError(
            f"{out} already holds a checkpoint from an earlier run: continue it with --resume, "
            f"replace it with --force, or train into another --out folder"
        )
    if resume and ckpt_path.exists():
        meta = checkpoint.read_meta(ckpt_path)
        saved = saved_settings(ckpt_path, meta)
        if meta["model"] != settings.model:
            raise TrainingError(
                f"{ckpt_path} holds a {meta['model']!r} model; cannot resume it as "
                f"{settings.model!r}"
            )
        changed = [k for k in ("batch_size", "lr", "noise", "seed")
                   if getattr(saved, k) != getattr(settings, k)]
        if changed:
            raise TrainingError(
                f"cannot resume {ckpt_path} with different settings ("
                + ", ".join(f"{k}: {getattr(saved, k)} in the checkpoint, {getattr(settings, k)}"
                            f" now" for k in changed)
                + "); only --epochs may change"
            )
        model = models.create(settings.model)
        opt = Adam(model.parameters(), lr=settings.lr)
        meta = checkpoint.restore(ckpt_path, model, opt, expect_model=settings.model)
        try:
            set_state(meta["rng_state"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise checkpoint.CheckpointError(
                f"{ckpt_path}: its random generator state is not valid ({err!r})") from None
        history, start_epoch = meta["history"], meta["epochs_done"]
        wall_before = meta.get("wall_time_s", 0.0)
        if settings.epochs < start_epoch:
            raise TrainingError(
                f"{ckpt_path} has already trained {start_epoch} epochs; --epochs must be at "
                f"least {start_epoch} to resume it"
            )
        log(f"npae: resuming {settings.model} from {ckpt_path} after epoch {start_epoch}")
    elif resume:
        log(f"npae: no checkpoint in {out}; starting from scratch")
    if model is None:
        if ckpt_path.exists():  # overwrite: the old run's files go only once this one saves
            log(f"npae: replacing the earlier run in {out}")
        manual_seed(settings.seed)
        model = models.create(settings.model)
        opt = Adam(model.parameters(), lr=settings.lr)
    data = data or Data.mnist(progress=progress)
    n_train = len(data.train)
    steps = num_batches(n_train, settings.batch_size, drop_last=False)
    wall_start = time.perf_counter()
    for epoch in range(start_epoch, settings.epochs):
        t0 = time.perf_counter()
        noise_rng = _noise_rng(settings.seed, epoch, 1)
        losses, curve = [], []
        bar = tqdm(total=steps, desc=f"{settings.model} epoch {epoch + 1}/{settings.epochs}",
                   unit="batch", disable=not progress, file=sys.stderr, dynamic_ncols=True,
                   leave=True, mininterval=0.5)
        seen = 0
        try:
            for step, (xb,) in enumerate(batches((data.train,), settings.batch_size, shuffle=True,
                                                 seed=settings.seed, epoch=epoch)):
                x_in = add_noise(xb, settings.noise, noise_rng) if settings.noise else xb
                opt.zero_grad()
                loss = model.loss(Tensor(x_in), Tensor(xb))
                value = loss.item()
                if not math.isfinite(value):
                    raise TrainingError(
                        f"the loss became {value} at epoch {epoch + 1}, step {step + 1} of "
                        f"{steps}: training stopped (try a smaller --lr); the last good "
                        f"checkpoint is {ckpt_path if ckpt_path.exists() else 'not written yet'}"
                    )
                loss.backward()
                opt.step()
                losses.append(value)
                if (step + 1) % CURVE_EVERY == 0 or step == steps - 1:
                    curve.append([epoch + (step + 1) / steps,
                                  float(np.mean(losses[-CURVE_EVERY:]))])
                seen += len(xb)
                bar.update(1)
                if step % 10 == 0 or step == steps - 1:
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", img_s=f"{rate:,.0f}")
        finally:
            bar.close()
        train_time = time.perf_counter() - t0
        val_loss = evaluate(model, data.val, settings.noise, settings.seed)
        if not math.isfinite(val_loss):
            raise TrainingError(
                f"the validation loss became {val_loss} after epoch {epoch + 1} (the weights "
                f"are no longer finite); this epoch is not saved: try a smaller --lr"
            )
        dead = dead_units(model, data.val)
        history.append({
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            "val_loss": val_loss,
            "train_seconds": train_time,
            "images_per_s": seen / train_time,
            "curve": curve,
            # code units zero for every validation image (None: the model's code cannot die)
            "dead_units": None if dead is None else dead.dead,
            "code_units": None if dead is None else dead.units,
        })
        log(f"npae: {settings.model} epoch {epoch + 1}: train loss {history[-1]['train_loss']:.5f}"
            f", validation loss {val_loss:.5f}, {seen / train_time:,.0f} images/s")
        if dead is not None and dead.count:
            log(dead.message(settings.model))
        checkpoint.save(ckpt_path, model, opt, {
            "model": settings.model, "settings": asdict(settings), "epochs_done": epoch + 1,
            "history": history, "rng_state": get_state(), "npae_version": npae.__version__,
            "wall_time_s": wall_before + time.perf_counter() - wall_start,
        })
        _write_json(out / METRICS, _metrics(settings, model, history, None, ckpt_path))

    test_loss = evaluate(model, data.test, settings.noise, settings.seed)
    metrics = _metrics(settings, model, history, test_loss, ckpt_path,
                       wall=wall_before + time.perf_counter() - wall_start)
    _write_json(out / METRICS, metrics)
    return metrics, model


def _metrics(settings, model, history, test_loss, ckpt_path, wall=None):
    train_seconds = sum(h["train_seconds"] for h in history)
    images = sum(h["images_per_s"] * h["train_seconds"] for h in history)
    return {
        "model": settings.model,
        "settings": asdict(settings),
        "parameters": model.num_parameters(),
        "epochs": history,
        "test_loss": test_loss,
        "wall_time_s": wall,
        "train_seconds": train_seconds,
        "images_per_s": images / train_seconds if train_seconds else None,
        # after the last epoch (None: not counted for this model, or from an older run)
        "dead_units": history[-1].get("dead_units") if history else None,
        "checkpoint": str(ckpt_path),
    }


def load_model(ckpt_path):
    """(model, meta) from a checkpoint written by train()."""
    meta = checkpoint.read_meta(ckpt_path)
    saved_settings(ckpt_path, meta)
    name = meta["model"]
    if name not in models.names():
        raise checkpoint.CheckpointError(f"{ckpt_path}: unknown model {name!r}")
    model = models.create(name)
    checkpoint.restore(ckpt_path, model, expect_model=name)
    return model, meta


# what train() writes into a checkpoint's metadata, beside what checkpoint.save adds
RUN_META = {"model": str, "settings": dict, "epochs_done": int, "history": list,
            "rng_state": dict}


def saved_settings(ckpt_path, meta) -> TrainSettings:
    """The settings a checkpoint was trained with, checked like the command line's."""
    checkpoint.require(ckpt_path, meta, RUN_META)
    try:
        return TrainSettings(**meta["settings"]).check()
    except (TypeError, ValueError) as err:
        raise checkpoint.CheckpointError(
            f"{ckpt_path}: its training settings are not valid ({err})") from None


__all__ = ["TrainSettings", "Data", "train", "evaluate", "load_model", "TrainingError"]
