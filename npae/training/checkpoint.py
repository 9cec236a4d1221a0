"""Checkpoints: one ``.npz`` file, no pickle anywhere on the load path.

Layout (all plain arrays; ``meta`` is a JSON string stored as a 0-d unicode array):

    meta              {"format": "npae-checkpoint", "version": 1, "model": ..., "settings": ...,
                       "epochs_done": ..., "history": [...], "rng_state": {...},
                       "optimizer": {"name": "Adam", "hyper": {...}}}
    param/<name>      every parameter, by its dotted name
    optim/<i>/<key>   optimizer state of parameter i (moments, step counts as 0-d arrays)

Writes are atomic: the file is written beside its destination, flushed to disk, then renamed
over it, so a run killed at any moment leaves either the old checkpoint or the new one.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from npae.data.fileio import atomic_write
from npae.engine.dispatch import to_host

CHECKPOINT = "checkpoint.npz"  # its name in a training folder
FORMAT = "npae-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint could not be read, or does not fit the model it is loaded into."""


def save(path, model, optimizer, meta: dict) -> None:
    # always host arrays: a checkpoint written on a GPU loads anywhere
    arrays = {f"param/{name}": to_host(p.data) for name, p in model.named_parameters()}
    opt_state = optimizer.state_dict()
    for i, state in enumerate(opt_state["state"]):
        for key, value in state.items():
            arrays[f"optim/{i}/{key}"] = np.asarray(to_host(value))
    meta = dict(meta, format=FORMAT, version=VERSION,
                optimizer={"name": type(optimizer).__name__, "hyper": opt_state["hyper"]})
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path) -> tuple[dict, dict, dict]:
    """(meta, parameters by name, optimizer state dict). Reads every array now, so a truncated
    file fails here with a clear message rather than later."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT  # a training folder: its checkpoint
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # every .npz is a zip archive
            raise CheckpointError(f"{path} is not an npae checkpoint (not an .npz archive)")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
        hyper = meta["optimizer"]["hyper"]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{path} is not a readable npae checkpoint (truncated or corrupt: {err}); "
            f"delete it and train again, or resume from another copy"
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an npae checkpoint (format {meta.get('format')!r})")
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    states: dict[int, dict] = {}
    for key, value in arrays.items():
        if key.startswith("optim/"):
            _, i, name = key.split("/", 2)
            # 0-d integers are counters (Adam's step); 0-d floats stay arrays (a scalar's moments)
            is_count = value.ndim == 0 and value.dtype.kind in "iu"
            states.setdefault(int(i), {})[name] = int(value) if is_count else value
    optim = {"hyper": hyper,
             "state": [states.get(i, {}) for i in range(len(params))]}
    return meta, params, optim


def restore(path, model, optimizer=None, expect_model: str | None = None) -> dict:
    """Load a checkpoint into ``model`` (and ``optimizer``); returns its meta."""
    meta, params, optim = load(path)
    if expect_model is not None and meta.get("model") != expect_model:
        raise CheckpointError(
            f"{path} holds a {meta.get('model')!r} model, not {expect_model!r}"
        )
    try:
        model.load_state_dict(params)
        if optimizer is not None:
            optimizer.load_state_dict(optim)
    except ValueError as err:
        raise CheckpointError(f"{path} does not fit this model: {err}") from None
    return meta
