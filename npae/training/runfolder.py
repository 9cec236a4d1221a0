"""The run folder of ``npae train``: one run at a time, writable before any work starts, and
free of the temporary files a killed run left behind.

    with claim(out):      # creates out/, checks it can be written, locks it for this process
        ...               # train; a second run into the same folder is refused meanwhile

The lock is ``flock`` on the folder itself (POSIX), so it leaves no lock file behind and the
kernel releases it when the process dies, however it dies. While the lock is held,
``out/.npae-run.json`` names the process that holds it, for the message a second run prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from npae.data.fileio import make_writable_folder, remove_stale_temporaries

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are then not protected from each other
    fcntl = None

OWNER = ".npae-run.json"


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN or infinite loss, a checkpoint that does not fit, a run
    folder that is busy or cannot be written)."""


@contextlib.contextmanager
def claim(out: Path):
    """Create ``out``, check it is writable, lock it for this process (TrainingError if another
    run holds it) and remove stale temporary files; release the lock on exit."""
    out = Path(out)
    check_writable(out)
    fd = _lock(out)
    owner = out / OWNER
    try:
        owner.write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv),
        }))
        remove_stale_temporaries(out)
        yield out
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock


def check_writable(out: Path) -> None:
    """Create ``out`` and prove it writable, or raise TrainingError in one line."""
    # A full epoch is lost if the folder turns out to be unwritable only when the first
    # checkpoint is saved, so try it now.
    try:
        make_writable_folder(out)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise TrainingError(
            f"cannot write the run folder {out}: {reason}"
            + (f" ({err.filename})" if err.filename and str(err.filename) != str(out) else "")
            + "; choose another --out"
        ) from None


def _lock(out: Path):
    if fcntl is None:
        return None
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise TrainingError(
            f"{out} is in use by another training run ({_holder(out)}); wait for it to "
            f"finish, or train into another --out folder"
        ) from None
    return fd


def _holder(out: Path) -> str:
    try:
        who = json.loads((out / OWNER).read_text())
        return (f"process {who['pid']} on {who['host']}, started {who['started']}: "
                f"{who['command']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"
