"""Writing a file all at once: a temporary file beside it, then a rename.

The temporary file is ``.NAME.ffeat-PID-XXXXXXXX.tmp`` beside ``NAME``: a write
killed half-way leaves it behind, and :func:`remove_stale_temps` removes it on
the next run that writes the same output.
"""
from __future__ import annotations

import errno
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "remove_stale_temps"]

#: A temporary file of :func:`atomic_write`: target name, writer's process id
#: (absent from the names ffeat 0.1 wrote before the id was added).
_TEMP = re.compile(r"\.(?P<name>.+)\.(?:ffeat-(?P<pid>\d+)-[a-z0-9_]+|[a-z0-9_]{8})\.tmp")
#: Age in seconds after which a temporary file is stale whoever wrote it (the
#: writer may run on another machine sharing the folder, or its pid be reused).
STALE_AFTER = 24 * 3600
#: Seconds without a write after which a temporary file named without a process
#: id (by an earlier ffeat, which wrote continuously) is taken as abandoned.
_LEGACY_IDLE = 600


def _read_umask() -> int:
    """The process umask, read without changing it where the system tells
    (``/proc/self/status``), else by setting it and back (once, at import)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


#: Read once: changing the umask to read it is not thread-safe (cache rows are
#: written from worker threads).
_UMASK = _read_umask()


def atomic_write(path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it over ``path``.

    A reader never sees a half-written file, a failure leaves ``path`` as it
    was, a symbolic link at ``path`` is written through (not replaced), the
    data are on disk (``fsync``) before the rename, and the file gets the
    usual permissions (the umask at import), not ``mkstemp``'s 0600.

    Raises
    ------
    FileNotFoundError
        When the folder of ``path`` does not exist; the message names both.
    """
    path = Path(os.path.realpath(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path}: its folder "
                                f"{path.parent} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.ffeat-{os.getpid()}-", suffix=".tmp",
                               dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _writer_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine (never true of this one)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process; beyond any pid
        return True
    except OSError:  # it exists, owned by another user
        return False
    return False


def remove_stale_temps(folder, name: str | None = None, *,
                       targets: re.Pattern | None = None) -> list[Path]:
    """Delete what killed :func:`atomic_write` calls left in ``folder``.

    Only files named like ffeat's temporary files (``.NAME.ffeat-PID-*.tmp``)
    are touched, only those of target ``name`` when it is given (or of a target
    matching ``targets``), and only when their writer process is gone or they
    are older than a day, so a concurrent writer's file is left alone. Names of
    earlier versions (``.NAME.XXXXXXXX.tmp``, without a process id, removed after
    ten minutes without a write) are only matched for a given ``name``: in a
    whole-folder sweep they could be anyone's files.

    Parameters
    ----------
    folder : path
        Where the output is written; nothing happens when it does not exist.
    name : str, optional
        The output's file name; ``None``: every output in ``folder`` (for a
        folder ffeat writes whole, such as a folder of shards).
    targets : re.Pattern, optional
        With ``name`` None: only temporary files of targets whose names match it
        in full (the files ffeat writes in that folder).

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _TEMP.fullmatch(entry.name)
        if match is None or (name is not None and match["name"] != name) \
                or (name is None and (match["pid"] is None or (
                    targets is not None and not targets.fullmatch(match["name"])))):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            idle = now - entry.stat().st_mtime
            writer_gone = (idle > _LEGACY_IDLE if match["pid"] is None
                           else _writer_gone(int(match["pid"])))
            if writer_gone or idle > STALE_AFTER:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone meanwhile, or not ours to remove
            continue
    return removed
