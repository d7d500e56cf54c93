"""The one ``.npz`` writer of ffeat, for model and features files alike.

``numpy.savez`` stamps every member with the time of writing; this writer
stamps them all with the earliest time a zip file can hold and writes the
members in name order, so the same arrays always give the same bytes. Members
are stored uncompressed and written without pickle; files are read back with
``allow_pickle=False``.
"""
from __future__ import annotations

import os
import zipfile
from typing import BinaryIO

import numpy as np

from ..running._atomic import atomic_write

__all__ = ["write_npz"]

#: Timestamp of every archive member (the earliest a zip file can hold).
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _write(fh: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name in sorted(arrays):
            with archive.open(zipfile.ZipInfo(f"{name}.npy", _EPOCH), "w",
                              force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(arrays[name]),
                                          allow_pickle=False)


def write_npz(target, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a byte-reproducible ``.npz`` archive.

    Parameters
    ----------
    target : path or binary file object
        A path is written atomically (see ``ffeat.running._atomic``); a file object
        opened for writing gets the archive at its position.
    arrays : dict of str to ndarray
        Member names (``/`` makes folders) and their arrays; object arrays are
        refused (``ValueError``: nothing is pickled).
    """
    if isinstance(target, (str, os.PathLike)):
        atomic_write(target, lambda fh: _write(fh, arrays))
    else:
        _write(target, arrays)
