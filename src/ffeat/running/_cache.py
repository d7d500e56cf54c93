"""On-disk cache of feature rows, keyed on file content and feature configuration.

An entry is an image's one row, or under a face policy the rows of its faces with
where each face lies (its *places*, see :meth:`FeatureCache.put`).

Training a second classifier on the same folder, or evaluating on it again,
then reads each file once to hash it instead of decoding it. A row lives in
``ROOT/CONFIG/ab/abcdef....row`` where ``CONFIG`` hashes the feature
configuration, the ffeat version and the read limits, and the file name is the
SHA-256 of the file's bytes: renaming or moving a file keeps its row, editing it
invalidates it. Only regular files of at most :data:`MAX_HASHED_BYTES` are cached
(a larger one is decoded every time: hashing a 4 GB sparse file would take longer).

A row is trusted only when it carries the right HMAC-SHA256, keyed by a secret
made for each cache folder (``ROOT/hmac.key``: 32 random bytes, created with mode
0600 in a folder created 0700) over the configuration, the file's SHA-256 and the
row's values: a row planted or edited by someone who cannot read the key is
ignored (and recomputed), and so is one moved to another file's name. A key file
that is not a regular file of this user readable by no one else (or that cannot
be read) makes the whole cache unused for the run, with a warning: such a folder
is not trusted, and it is as if ``--no-cache`` had been given. Rows are written
atomically (never through a link planted at their name); an unreadable, short or
mismatched row, or anything but a regular file at its name (a FIFO is never
waited on), is treated as missing. Temporary files that a killed run left in a
folder of rows are removed by the next run that writes there.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from ..reading.loading import ImageReadError, open_regular_file
from ._atomic import remove_stale_temps

__all__ = ["FeatureCache", "default_cache_dir", "resolve_cache", "MAX_HASHED_BYTES"]

#: Largest file whose row is cached: larger files are not hashed, only decoded.
MAX_HASHED_BYTES = 256 << 20
#: The secret of a cache folder, inside it.
KEY_NAME = "hmac.key"
_KEY_BYTES = 32
_TAG_BYTES = 32
_SUFFIX = ".row"
#: Most faces an entry holds (a longer read is not an entry).
_MAX_ROWS = 64
#: Numbers per face in an entry's places (a box and a quad: see ``reading._rows``).
PLACE_WIDTH = 12


def default_cache_dir() -> Path:
    """``$FFEAT_CACHE_DIR``, else ``$XDG_CACHE_HOME/ffeat``, else ``~/.cache/ffeat``."""
    if os.environ.get("FFEAT_CACHE_DIR"):
        return Path(os.environ["FFEAT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ffeat"


def _open_plain(path: Path) -> int:
    """A read-only descriptor of the regular file at ``path``, never blocking and never
    through a symbolic link; OSError for anything else."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                 | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is not a regular file")
    return fd


def _read_key(path: Path) -> bytes:
    """The secret at ``path``; OSError when it is missing, and ValueError naming the
    reason when it is not a secret this user alone can read."""
    fd = _open_plain(path)
    try:
        st = os.fstat(fd)
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise ValueError("it belongs to another user")
        if st.st_mode & 0o077:
            raise ValueError(f"others may read or change it (mode {st.st_mode & 0o777:o})")
        key = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != _KEY_BYTES:
        raise ValueError(f"it holds {len(key)} bytes, not {_KEY_BYTES}")
    return key


def _make_key(root: Path, path: Path) -> None:
    """A new secret at ``path`` (mode 0600), created whole: written to a temporary file,
    then linked to its name, so a concurrent run sees all of it or none."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{KEY_NAME}.ffeat-{os.getpid()}-", suffix=".tmp",
                               dir=root)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secrets.token_bytes(_KEY_BYTES))
        os.fsync(fd)
        os.close(fd)
        fd = -1
        with contextlib.suppress(FileExistsError):  # another run made one first
            os.link(tmp, path)
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(tmp)


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
        self.root = Path(root)
        self.folder = self.root / digest[:20]
        self.config_digest = digest
        self.n_features = n_features
        self._lock = threading.Lock()
        self._secret: bytes | None = None
        self._usable: bool | None = None
        self._swept: set[Path] = set()

    @staticmethod
    def key(path) -> str | None:
        """SHA-256 of a regular file's content; None when it cannot be read, is not a
        regular file (never blocks: a FIFO is not opened for reading) or is larger
        than :data:`MAX_HASHED_BYTES`."""
        try:
            with open_regular_file(path, os.fspath(path)) as fh:
                if os.fstat(fh.fileno()).st_size > MAX_HASHED_BYTES:
                    return None
                return hashlib.file_digest(fh, "sha256").hexdigest()
        except (ImageReadError, OSError, ValueError):
            return None  # the reader reports the reason

    def _key_secret(self) -> bytes | None:
        """This cache folder's secret (made on first use); None when the folder is not
        trusted or cannot hold one: then nothing is read or written."""
        with self._lock:
            if self._usable is None:
                path = self.root / KEY_NAME
                try:
                    try:
                        self._secret = _read_key(path)
                    except FileNotFoundError:
                        _make_key(self.root, path)
                        self._secret = _read_key(path)
                    self._usable = True
                except ValueError as exc:
                    self._usable = False
                    warnings.warn(f"feature cache {self.root} not used: its key file {path} "
                                  f"is not trusted ({exc}); remove the folder to start a new "
                                  "cache, or run without the cache", RuntimeWarning,
                                  stacklevel=2)
                except OSError:  # a read-only or unusable folder: run without the cache
                    self._usable = False
            return self._secret if self._usable else None

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}{_SUFFIX}"

    def _tag(self, secret: bytes, key: str, payload: bytes, faces: bool) -> bytes:
        kind = "ffeat-faces-1" if faces else "ffeat-row-1"
        message = f"{kind}|{self.config_digest}|{key}|".encode() + payload
        return hmac.new(secret, message, hashlib.sha256).digest()

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The cached entry as ``(rows, places)`` (see :meth:`put`), or None: absent,
        unreadable, of the wrong size or with an HMAC that does not match."""
        secret = self._key_secret()
        if secret is None:
            return None
        row_bytes = 4 * self.n_features
        most = _TAG_BYTES + 4 + _MAX_ROWS * (row_bytes + 8 * PLACE_WIDTH)
        path = self._path(key)
        self._sweep(path.parent)
        try:
            fd = _open_plain(path)
            try:
                size = os.fstat(fd).st_size
                if size > max(most, _TAG_BYTES + row_bytes):
                    return None
                data = os.read(fd, size + 1)
            finally:
                os.close(fd)
        except OSError:
            return None
        tag, payload = data[:_TAG_BYTES], data[_TAG_BYTES:]
        if len(payload) == row_bytes and hmac.compare_digest(
                tag, self._tag(secret, key, payload, faces=False)):
            return np.frombuffer(payload, dtype="<f4").astype(np.float32)[None], None
        n = int.from_bytes(payload[:4], "little") if len(payload) >= 4 else 0
        if not (0 < n <= _MAX_ROWS and len(payload) == 4 + n * (row_bytes + 8 * PLACE_WIDTH)
                and hmac.compare_digest(tag, self._tag(secret, key, payload, faces=True))):
            return None
        split = 4 + 8 * PLACE_WIDTH * n
        places = np.frombuffer(payload[4:split], dtype="<f8").reshape(n, PLACE_WIDTH)
        rows = np.frombuffer(payload[split:], dtype="<f4").reshape(n, self.n_features)
        return rows.astype(np.float32), places.astype(np.float64)

    def _sweep(self, folder: Path) -> None:
        """The first time a run reads or writes a folder of rows: remove the temporary
        files that killed writers left there (``kill -9`` mid-write)."""
        with self._lock:
            if folder in self._swept:
                return
            self._swept.add(folder)
        remove_stale_temps(folder)

    def _folder_of(self, target: Path) -> bool:
        """Create the folders of a row (0700); whether they are plain folders (no link
        planted in their place)."""
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for folder in (target.parent, target.parent.parent):
            if not stat.S_ISDIR(os.lstat(folder).st_mode):
                return False
        self._sweep(target.parent)
        return True

    def put(self, key: str, rows: np.ndarray, places: np.ndarray | None = None) -> None:
        """Store an entry; a failure to write (full disk, read-only cache) is ignored.

        Parameters
        ----------
        key : str
            The file's key (:meth:`key`).
        rows : ndarray of shape (n, n_features)
            The feature rows: one (the whole image), or one per face.
        places : ndarray of shape (n, PLACE_WIDTH), optional
            Under a face policy, where each face lies (float64; NaN for none); None:
            an image's one row.
        """
        secret = self._key_secret()
        if secret is None:
            return
        rows = np.ascontiguousarray(rows, dtype="<f4")
        if places is None:
            payload = rows[0].tobytes()
        else:
            if not 0 < len(rows) <= _MAX_ROWS:
                return
            payload = (len(rows).to_bytes(4, "little")
                       + np.ascontiguousarray(places, dtype="<f8").tobytes() + rows.tobytes())
        target = self._path(key)
        try:
            if not self._folder_of(target):
                return
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.ffeat-{os.getpid()}-",
                                       suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(self._tag(secret, key, payload, places is not None) + payload)
                os.replace(tmp, target)  # replaces a link at the name, never follows it
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            pass


def resolve_cache(cache) -> Path | None:
    """``True``: the default folder; ``False``/``None``: no cache; a path: that folder."""
    if cache is True:
        return default_cache_dir()
    if cache is None or cache is False:
        return None
    return Path(cache)
