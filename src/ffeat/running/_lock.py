"""An exclusive, non-blocking lock on an output while a run writes it.

Two runs writing the same output would interleave their rows; the second one
is refused at once instead. The lock is ``fcntl.flock`` on a lock file (beside
a file output: ``out.csv.lock``; inside a folder output: ``DIR/.lock``) that
holds the process id, host and start time of the run holding it, so the
refusal can say who that is. The kernel releases the lock when the process
ends, however it ends; a lock file left by a killed run is taken over.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import socket
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; outputs are not locked there
    fcntl = None

__all__ = ["OutputLockedError", "lock_path", "locked"]


class OutputLockedError(ValueError):
    """Another run holds the lock on an output; the message says which."""


def lock_path(output: Path) -> Path:
    """The lock file of ``output``: ``DIR/.lock`` for a folder, ``FILE.lock`` otherwise."""
    return output / ".lock" if output.is_dir() else output.with_name(output.name + ".lock")


def _holder(path: Path) -> str:
    """Who holds the lock, as its lock file says (bounded read)."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(512).decode("utf-8", "replace")
    except OSError:
        text = ""
    return " ".join(text.split()) or "a process that has not written its name yet"


@contextlib.contextmanager
def locked(output) -> Iterator[Path]:
    """Hold an exclusive lock on ``output`` (a file or a folder) for the ``with`` block.

    Parameters
    ----------
    output : path
        The output about to be written; a folder must exist already.

    Yields
    ------
    Path
        The lock file (removed when the block ends).

    Raises
    ------
    OutputLockedError
        When another run holds the lock (the message names its pid, host and
        start time); the lock is not waited for.
    OSError
        When the lock file cannot be created (FileNotFoundError naming ``output``
        when its folder is missing).
    """
    output = Path(output)
    path = lock_path(output)
    if fcntl is None:
        yield path
        return
    while True:
        # O_NOFOLLOW: a link planted at the lock file's name must not lead our write elsewhere.
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            raise FileNotFoundError(f"{output}: its folder {path.parent} does not exist; "
                                    "create it first") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputLockedError(
                f"{output} is being written by another ffeat run ({_holder(path)}; lock "
                f"file {path}); wait for it to finish, or choose another output") from None
        except BaseException:
            os.close(fd)
            raise
        # The holder before us may have removed the file between our open and flock:
        # then we locked a file nobody else can see, so start over.
        with contextlib.suppress(FileNotFoundError):
            seen, ours = os.stat(path), os.fstat(fd)
            if (seen.st_dev, seen.st_ino) == (ours.st_dev, ours.st_ino):
                break
        os.close(fd)
    try:
        since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode())
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still locked: nobody can hold the name we remove
        os.close(fd)
