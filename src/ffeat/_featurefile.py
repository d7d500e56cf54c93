"""The features ``.npz`` file: one extraction and the configuration behind it.

It holds ``X``, ``names``, ``paths``, ``labels``, ``error_paths``,
``error_reasons``, ``features`` (the configuration as JSON) and
``ffeat_version``. The archive is written with fixed entry timestamps, so the
same extraction always gives the same bytes (``numpy.savez`` stamps the time),
and atomically; it is read back with ``allow_pickle=False``.
"""
from __future__ import annotations

import json
import zipfile
from typing import BinaryIO

import numpy as np

from ._atomic import atomic_write
from ._version import __version__
from .extraction import Extraction, ImageError
from .features import describe_features

__all__ = ["save_extraction", "load_extraction"]

#: Timestamp of every archive entry (the earliest a zip file can hold).
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _write_npz(fh: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """``numpy.savez`` with fixed entry timestamps: equal arrays, equal bytes."""
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{name}.npy", _EPOCH), "w",
                              force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(array), allow_pickle=False)


def save_extraction(path, result: Extraction, families) -> None:
    """Write ``result``, computed with ``families``, to ``path`` atomically."""
    arrays = {
        "X": result.X,
        "names": np.array(result.names, dtype=str),
        "paths": np.array(result.sources, dtype=str),
        "labels": result.labels,
        "error_paths": np.array([e.source for e in result.errors], dtype=str),
        "error_reasons": np.array([e.reason for e in result.errors], dtype=str),
        "features": np.array(json.dumps(describe_features(families))),
        "ffeat_version": np.array(__version__),
    }
    atomic_write(path, lambda fh: _write_npz(fh, arrays))


def load_extraction(path) -> Extraction:
    """Read a file written by :func:`save_extraction` (or ``ffeat extract -o FILE.npz``).

    Raises
    ------
    ValueError
        When the file is not a features file; the message names it.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            return Extraction(z["X"], z["names"].tolist(), z["paths"].tolist(),
                              z["labels"].astype(np.int8),
                              [ImageError(s, r) for s, r in zip(z["error_paths"].tolist(),
                                                                z["error_reasons"].tolist())])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not an ffeat features file ({exc})") from None
