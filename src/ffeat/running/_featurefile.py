"""The features ``.npz`` file: one extraction and the configuration behind it.

It holds ``X``, ``names``, ``paths``, ``labels``, ``error_paths``,
``error_reasons``, ``features`` (the configuration as JSON) and
``ffeat_version``. It is written by ``ffeat.models._npz`` (the same extraction always
gives the same bytes), atomically, and read back with ``allow_pickle=False``.
"""
from __future__ import annotations

import json
import zipfile

import numpy as np

from .._version import __version__
from ..extraction import Extraction
from ..features import describe_features
from ..models._npz import write_npz
from ..reading._rows import ImageError

__all__ = ["save_extraction", "load_extraction"]


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
    write_npz(path, arrays)


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
