"""Where a command writes: never over one of its inputs, and cleared of what killed
earlier writes of the same output left behind.

Every command that writes (``extract -o``, ``predict --output``, ``train -o``,
``evaluate --report``, ``compare --curves``) asks :func:`claim_output` first.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..reading._sources import iter_inputs
from ..running._atomic import remove_stale_temps


def _identity(path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file ``path`` names, links followed; None if none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _inside(path, folder: Path) -> bool:
    """Whether ``path``, as named or with its links resolved, lies in ``folder``."""
    return any(Path(p).is_relative_to(folder)
               for p in (os.path.abspath(path), os.path.realpath(path)))


def output_problem(output, inputs: Iterable, *, folder: bool = False) -> str | None:
    """Why writing ``output`` could overwrite one of ``inputs``, or None when it cannot.

    A file output is refused when it is an input file, a link to one, or a
    hard link of one (compared by device and inode after resolving links), and
    when it is a broken symbolic link (writing would create a file elsewhere).
    A folder output is refused when an input file lies in it. ``inputs`` is
    only iterated when ``output`` exists, so a lazy listing of large folders
    costs nothing for a new output.

    Parameters
    ----------
    output : path
        The file or folder the command is about to write.
    inputs : iterable of paths
        Every input file the command reads (folders expanded), including a
        dataset's CSV manifest.
    folder : bool, optional
        Whether ``output`` is a folder the command writes files into.

    Returns
    -------
    str or None
        The reason, naming the output and the input, for a usage error.
    """
    out = Path(output)
    if out.is_symlink() and not out.exists():
        return (f"output {out} is a broken symbolic link (to {os.readlink(out)}); "
                "remove it or choose another name")
    target = Path(os.path.realpath(out))
    if folder and target.is_dir():
        clash = next((p for p in inputs if _inside(p, target)), None)
        if clash is not None:
            return (f"output folder {out} holds the input {os.fspath(clash)}; "
                    "choose another folder")
        return None
    identity = _identity(target)
    if identity is None:
        return None
    clash = next((p for p in inputs if _identity(p) == identity), None)
    if clash is not None:
        return (f"output {out} is the input {os.fspath(clash)} (or a link to it); "
                "choose another name")
    return None


def claim_output(output, inputs: Iterable, *, folder: bool = False,
                 also: Iterable = ()) -> str | None:
    """:func:`output_problem` of ``output`` (and of each of ``also``, files written
    beside it); when there is none, remove the temporary files killed writes of
    the file outputs left (see :func:`ffeat.running._atomic.remove_stale_temps`).

    Returns
    -------
    str or None
        Why the command must not write there (a usage error), or None.
    """
    inputs = list(inputs) if any(Path(p).exists() or Path(p).is_symlink()
                                 for p in [output, *also]) else []
    outputs = [(Path(output), folder), *((Path(p), False) for p in also)]
    for path, is_folder in outputs:
        if (problem := output_problem(path, inputs, folder=is_folder)) is not None:
            return problem
    for path, is_folder in outputs:
        if not is_folder:  # atomic_write names its temporary file after the resolved path
            real = Path(os.path.realpath(path))
            remove_stale_temps(real.parent, real.name)
    # A folder is swept by its writer once it has accepted and locked it (a folder of
    # shards: ffeat.running.streaming.extract_to), never here: it may yet be refused.
    return None


def listed_files(paths: Iterable) -> Iterator:
    """The files ``paths`` (files and folders, as the commands take them) expand to,
    lazily: what :func:`ffeat.extract` would read."""
    return (item.obj for item in iter_inputs(list(paths))
            if isinstance(item.obj, (str, os.PathLike)))
