"""An exclusive, non-blocking lock on an output while a run writes it.

Two runs writing the same output would interleave their rows; the second one
is refused at once instead. The lock is ``fcntl.flock`` on a lock file (beside
a file output: ``out.csv.lock``; inside a folder output: ``DIR/.lock``) that
holds the process id, host and start time of the run holding it, so the
refusal can say who that is. The kernel releases the lock when the process
ends, however it ends; a lock file left by a killed run is taken over.

An existing file at the lock's name is never opened for writing: the lock file
is always created afresh (``O_CREAT | O_EXCL``, never through a link). A file
already there is opened read-only and without blocking; it is taken over (removed,
then created again) only when it is an unlocked regular file with one link
that holds nothing but what ffeat writes there. Anything else there (a hard or
symbolic link, a FIFO, a folder, someone's file) is refused, naming it, and
left as it is.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import os
import re
import socket
import stat
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


#: What ffeat writes in a lock file: ``pid N on HOST since TIME``.
_CONTENT = re.compile(rb"pid \d+ on [^\n]* since [^\n]*\n?")
#: Most bytes read from a lock file.
_MAX_READ = 512


def _open_existing(path: Path) -> int | None:
    """A read-only descriptor of what is at ``path`` (never blocking, links not
    followed), or None when nothing is there."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                       | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):  # a symbolic link (O_NOFOLLOW)
            raise _not_a_lock(path, "a symbolic link") from None
        if exc.errno == errno.ENXIO:  # a socket, a device without its driver
            raise _not_a_lock(path, "not a regular file") from None
        raise


def _not_a_lock(path: Path, what: str) -> OSError:
    return FileExistsError(errno.EEXIST, f"{path} is {what}, not a lock file ffeat wrote; "
                           "ffeat neither writes nor removes it: move it away, or choose "
                           "another output")


def _read_fd(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, _MAX_READ)


def _holder_of(fd: int) -> str:
    """Who holds the lock, as its lock file says (bounded read)."""
    try:
        text = _read_fd(fd).decode("utf-8", "replace")
    except OSError:
        text = ""
    return " ".join(text.split()) or "a process that has not written its name yet"


def _check_existing(fd: int, path: Path) -> None:
    """Refuse what is at the lock's name unless it is a lock file ffeat wrote."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise _not_a_lock(path, "not a regular file")
    if st.st_nlink != 1:
        raise _not_a_lock(path, f"a file with {st.st_nlink} names (a hard link)")
    content = _read_fd(fd)
    if content and not _CONTENT.fullmatch(content):
        raise _not_a_lock(path, "a file of other content")


def _create(path: Path, output: Path) -> int | None:
    """A new lock file at ``path``, or None when a file appeared there meanwhile."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                       | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        return None
    except FileNotFoundError:
        raise FileNotFoundError(f"{output}: its folder {path.parent} does not exist; "
                                "create it first") from None


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        seen, ours = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (seen.st_dev, seen.st_ino) == (ours.st_dev, ours.st_ino)


def _lock_or_refuse(fd: int, path: Path, output: Path) -> None:
    """``flock`` ``fd``, or raise :class:`OutputLockedError` naming the holder."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder_of(fd)
        raise OutputLockedError(
            f"{output} is being written by another ffeat run ({holder}; lock "
            f"file {path}); wait for it to finish, or choose another output") from None


def _acquire(path: Path, output: Path) -> int:
    """A descriptor of a lock file ffeat created at ``path``, locked."""
    while True:
        fd = _create(path, output)
        if fd is None:  # a file is there: a holder's, a killed run's, or not ours at all
            old = _open_existing(path)
            if old is None:
                continue  # removed meanwhile
            try:
                if stat.S_ISREG(os.fstat(old).st_mode):
                    _lock_or_refuse(old, path, output)  # a live holder: refuse
                _check_existing(old, path)
                # Unlocked and ours: left by a killed run. Remove it while holding its
                # lock, unless it was replaced meanwhile, and create a new one.
                if _same_file(old, path):
                    os.unlink(path)
            finally:
                os.close(old)
            continue
        try:
            _lock_or_refuse(fd, path, output)
        except BaseException:
            os.close(fd)
            raise
        # The holder before us may have removed the file between our open and flock:
        # then we locked a file nobody else can see, so start over.
        if _same_file(fd, path):
            return fd
        os.close(fd)


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
    fd = _acquire(path, output)
    try:
        since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode())
        yield path
    finally:
        if _same_file(fd, path):  # while still locked: nobody can hold the name we remove
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        os.close(fd)
