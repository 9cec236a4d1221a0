"""Writing files so that a crash never leaves half of one: readers see the old file or the new."""

import contextlib
import os
import secrets
from pathlib import Path


def _fsync_folder(folder: Path) -> None:
    # makes the rename itself durable; POSIX only (Windows cannot open a folder this way)
    if os.name == "posix":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path, write) -> None:
    """Write ``path`` so readers see the old file or the whole new one, never a partial one.

    ``write(f)`` fills a temporary file in the same folder (os.replace is atomic only within one
    file system); it is flushed to disk before it takes the final name.
    """
    # os.open rather than mkstemp: mkstemp makes the file private (0600), and a cache shared
    # through NPAE_DATA should get the usual permissions of the user's umask.
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def make_writable_folder(folder) -> Path:
    """Create ``folder`` (and its parents) and prove it can be written by creating and removing
    a file in it; raises the OSError otherwise. Done before slow work whose result would have to
    be thrown away if the folder turned out to be read-only."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".npae-probe.{os.getpid()}.{secrets.token_hex(4)}"
    probe.write_bytes(b"")
    probe.unlink()
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder) -> list[Path]:
    """Delete the temporary files that ``atomic_write`` calls of processes that no longer run
    left in ``folder`` (a ``kill -9`` in the middle of a write); returns what was removed."""
    removed = []
    for path in Path(folder).glob(".*.*.*.tmp"):
        parts = path.name.split(".")  # '', name parts..., pid, token, 'tmp'
        if len(parts) < 5 or not parts[-3].isdigit() or int(parts[-3]) == os.getpid():
            continue
        if not _alive(int(parts[-3])):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed
