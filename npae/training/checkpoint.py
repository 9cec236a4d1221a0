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
import math
import warnings
import zipfile
from pathlib import Path

import numpy as np

from npae.data.fileio import atomic_write
from npae.engine.config import check_fits_in_memory
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


def read_meta(path) -> dict:
    """The checked metadata of a checkpoint, reading nothing else from the file."""
    path = _checkpoint_path(path)
    with _open(path) as archive:
        return _meta(path, archive, _members(path, archive))


def load(path, expect: dict | None = None) -> tuple[dict, dict, dict]:
    """(meta, parameters by name, optimizer state dict). Reads every array now, so a truncated
    file fails here with a clear message rather than later.

    Nothing is inflated before it is checked: only the members this module writes are read,
    each one's size must be what its ``.npy`` header (shape and dtype) says, and with ``expect``
    ({parameter name: shape}, the model it will go into) every parameter and its optimizer state
    must have that shape. A file that fails a check raises CheckpointError.
    """
    path = _checkpoint_path(path)
    with _open(path) as archive:
        members = _members(path, archive)
        meta = _meta(path, archive, members)
        _check_sizes(path, archive, members, expect)
        try:
            arrays = {key: _read(archive, info) for key, info in members.items() if key != "meta"}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
            raise _corrupt(path, err) from None
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    states: dict[int, dict] = {}
    for key, value in arrays.items():
        if key.startswith("optim/"):
            _, i, name = key.split("/", 2)
            # 0-d integers are counters (Adam's step); 0-d floats stay arrays (a scalar's moments)
            is_count = value.ndim == 0 and value.dtype.kind in "iu"
            states.setdefault(int(i), {})[name] = int(value) if is_count else value
    optim = {"hyper": meta["optimizer"]["hyper"],
             "state": [states.get(i, {}) for i in range(len(params))]}
    return meta, params, optim


# --- reading with checks first ----------------------------------------------------------------

META_LIMIT = 64 * 2**20  # the metadata is a few kB of JSON; anything near this is not ours
# what these entries of the metadata must be (json types); the caller's own entries are checked
# by the caller, with require()
META_FIELDS = {"format": str, "version": int, "optimizer": dict}


def _checkpoint_path(path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT  # a training folder: its checkpoint
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # every .npz is a zip archive
            raise CheckpointError(f"{path} is not an npae checkpoint (not an .npz archive)")
    return path


def _corrupt(path, err) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a readable npae checkpoint (truncated or corrupt: {err}); "
        f"delete it and train again, or resume from another copy"
    )


def _open(path) -> zipfile.ZipFile:
    """The archive (a context manager), with zip-level damage reported as CheckpointError."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise _corrupt(path, err) from None


def _members(path, archive) -> dict:
    """{key: ZipInfo} for 'meta', 'param/<name>' and 'optim/<i>/<key>'; anything else refused."""
    members = {}
    for info in archive.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        parts = key.split("/") if key else []
        known = (key == "meta" or (len(parts) == 2 and parts[0] == "param" and parts[1])
                 or (len(parts) == 3 and parts[0] == "optim" and parts[1].isdigit() and parts[2]))
        if not known or key in members:
            raise CheckpointError(
                f"{path} is not an npae checkpoint: it holds a member {info.filename!r} "
                f"({info.file_size:,} bytes) that npae does not write; refusing to read it"
            )
        members[key] = info
    if "meta" not in members:
        raise CheckpointError(f"{path} is not an npae checkpoint (no metadata)")
    return members


def _header(archive, info):
    """(shape, dtype, bytes the member must inflate to) from its .npy header alone."""
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        start = f.tell()
    if dtype.hasobject:
        raise ValueError("it holds Python objects")
    return shape, dtype, start + math.prod(shape) * dtype.itemsize


def _check_sizes(path, archive, members, expect) -> None:
    total = 0
    order = list(expect) if expect is not None else None
    for key, info in members.items():
        try:
            shape, dtype, size = _header(archive, info)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise _corrupt(path, f"{info.filename}: {err}") from None
        if size != info.file_size:
            raise CheckpointError(
                f"{path}: member {info.filename} says it holds a {dtype} array of shape {shape} "
                f"({size:,} bytes) but declares {info.file_size:,} bytes; refusing to read it"
            )
        total += size
        try:
            check_fits_in_memory(f"{path}: its arrays", total)
        except MemoryError as err:
            raise CheckpointError(f"{err}; refusing to read it") from None
        if key == "meta":
            if size > META_LIMIT:
                raise CheckpointError(f"{path}: metadata of {size:,} bytes is not npae's")
        elif expect is not None:
            want = _expected_shape(key, expect, order)
            if want is None or (shape != want and not (key.startswith("optim/") and shape == ())):
                raise CheckpointError(
                    f"{path} does not fit this model: {key} has shape {shape}, the model "
                    + ("has no such parameter" if want is None else f"needs {want}")
                )


def _expected_shape(key, expect, order):
    if key.startswith("param/"):
        return expect.get(key[len("param/"):])
    i = int(key.split("/")[1])  # optim/<i>/<name>: the state of the i-th parameter
    return tuple(expect[order[i]]) if i < len(order) else None


def _read(archive, info):
    with archive.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _meta(path, archive, members) -> dict:
    info = members["meta"]
    if info.file_size > META_LIMIT:
        raise CheckpointError(f"{path}: metadata of {info.file_size:,} bytes is not npae's")
    try:
        meta = json.loads(str(_read(archive, info)))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise _corrupt(path, err) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path} is not an npae checkpoint (format {found!r})")
    require(path, meta, META_FIELDS)
    require(path, meta["optimizer"], {"name": str, "hyper": dict}, "optimizer ")
    return meta


def require(path, meta: dict, fields: dict, within: str = "") -> None:
    """CheckpointError unless each ``meta[key]`` exists with the JSON type ``fields[key]``."""
    for key, kind in fields.items():
        if key not in meta:
            raise CheckpointError(f"{path}: its metadata lacks {within}{key!r}; it was not "
                                  f"written by this version of npae")
        value = meta[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CheckpointError(f"{path}: metadata {within}{key!r} should be a {kind.__name__},"
                                  f" got {type(value).__name__} {value!r:.60}")


def restore(path, model, optimizer=None, expect_model: str | None = None) -> dict:
    """Load a checkpoint into ``model`` (and ``optimizer``); returns its meta. Warns
    (RuntimeWarning) when a parameter holds NaN or infinity: such a model outputs NaN."""
    meta = read_meta(path)
    if expect_model is not None and meta["model"] != expect_model:
        raise CheckpointError(
            f"{path} holds a {meta['model']!r} model, not {expect_model!r}"
        )
    expect = {name: tuple(p.shape) for name, p in model.named_parameters()}
    meta, params, optim = load(path, expect)
    bad = [name for name, value in params.items() if not np.isfinite(value).all()]
    if bad:
        warnings.warn(f"{path}: parameter(s) {', '.join(bad)} hold NaN or infinite values; "
                      f"the model's outputs will not be finite", RuntimeWarning, stacklevel=2)
    try:
        model.load_state_dict(params)
        if optimizer is not None:
            optimizer.load_state_dict(optim)
    except ValueError as err:
        raise CheckpointError(f"{path} does not fit this model: {err}") from None
    return meta
