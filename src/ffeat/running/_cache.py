"""On-disk cache of feature rows, keyed on file content and feature configuration.

Training a second classifier on the same folder, or evaluating on it again,
then reads each file once to hash it instead of decoding it. A row lives in
``ROOT/CONFIG/ab/abcdef....npy`` where ``CONFIG`` hashes the feature
configuration, the ffeat version and the read limits, and the file name is the
SHA-256 of the file's bytes: renaming or moving a file keeps its row, editing it
invalidates it. Only files on disk are cached; rows are written atomically, and
an unreadable or mismatched entry is treated as missing.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ._atomic import atomic_write
from ..reading.loading import ImageReadError, open_regular_file

__all__ = ["FeatureCache", "default_cache_dir", "resolve_cache"]


def default_cache_dir() -> Path:
    """``$FFEAT_CACHE_DIR``, else ``$XDG_CACHE_HOME/ffeat``, else ``~/.cache/ffeat``."""
    if os.environ.get("FFEAT_CACHE_DIR"):
        return Path(os.environ["FFEAT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ffeat"


class FeatureCache:
    """Feature rows of one configuration under ``root``.

    Parameters
    ----------
    root : path
        Cache folder (created when the first row is written).
    config : dict
        Everything the rows depend on besides the file content; JSON-serialisable.
    n_features : int
        Row length; entries of another length are ignored.
    """

    def __init__(self, root, config: dict, n_features: int) -> None:
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
        self.folder = Path(root) / digest[:20]
        self.n_features = n_features

    @staticmethod
    def key(path) -> str | None:
        """SHA-256 of a regular file's content; None when it cannot be read or is not a
        regular file (never blocks: a FIFO is not opened for reading)."""
        try:
            with open_regular_file(path, os.fspath(path)) as fh:
                return hashlib.file_digest(fh, "sha256").hexdigest()
        except (ImageReadError, OSError):
            return None  # the reader reports the reason

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached row, or None."""
        try:
            row = np.load(self._path(key), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if row.shape != (self.n_features,) or row.dtype != np.float32:
            return None
        return row

    def put(self, key: str, row: np.ndarray) -> None:
        """Store a row; a failure to write (full disk, read-only cache) is ignored."""
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, lambda fh: np.save(fh, np.asarray(row, dtype=np.float32)))
        except OSError:
            pass


def resolve_cache(cache) -> Path | None:
    """``True``: the default folder; ``False``/``None``: no cache; a path: that folder."""
    if cache is True:
        return default_cache_dir()
    if cache is None or cache is False:
        return None
    return Path(cache)
