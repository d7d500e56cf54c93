"""The single entry point: inputs in, a feature matrix and per-file errors out."""
from __future__ import annotations

import itertools
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from ._cache import FeatureCache, resolve_cache
from ._progress import Progress
from ._sources import Item, expand_inputs
from ._version import __version__
from .features import describe_features, resolve_features
from .loading import (DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE, ImageReadError, check_min_size,
                      load_image)

__all__ = ["ImageError", "Extraction", "extract", "DEFAULT_FEATURES"]

#: Families computed when none are named.
DEFAULT_FEATURES = ("spectrum", "residual")


class ImageError(NamedTuple):
    """An input that gave no feature row: its name and the reason."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class Extraction(NamedTuple):
    """Result of :func:`extract`.

    Attributes
    ----------
    X : ndarray of float32, shape (n_images, n_features)
        One row per input that could be read, in input order.
    names : list of str
        Column names of ``X``.
    sources : list of str
        Name (path) of the input behind each row.
    labels : ndarray of int8, shape (n_images,)
        1 = fake, 0 = real (from ``fake``/``real`` folders), -1 = unknown.
    errors : list of ImageError
        One record per input that could not be read, in input order.
    """

    X: np.ndarray
    names: list[str]
    sources: list[str]
    labels: np.ndarray
    errors: list[ImageError]


def _default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _features_of(item: Item, families, max_pixels: int, min_size: int,
                 cache: FeatureCache | None) -> np.ndarray:
    """Read one input and compute its feature row (runs in a worker thread)."""
    if item.error is not None:
        raise ImageReadError(item.name, item.error)
    key = cache.key(item.obj) if cache and isinstance(item.obj, (str, os.PathLike)) else None
    if key is not None and (row := cache.get(key)) is not None:
        return row
    try:
        rgb = load_image(item.obj, max_pixels=max_pixels, min_size=min_size, name=item.name)
    except (MemoryError, OSError) as exc:  # ImageReadError, a ValueError, passes through
        raise ImageReadError(item.name, f"cannot read: {exc or type(exc).__name__}") from exc
    try:
        row = np.concatenate([f.compute(rgb)[0] for f in families])
    except (ValueError, MemoryError) as exc:
        raise ImageReadError(item.name, f"features failed: {exc or type(exc).__name__}") \
            from exc
    if key is not None:
        cache.put(key, row)
    return row


def _open_cache(cache, families, max_pixels: int, min_size: int) -> FeatureCache | None:
    root = resolve_cache(cache)
    if root is None:
        return None
    config = {"features": describe_features(families), "ffeat": __version__,
              "max_pixels": max_pixels, "min_size": min_size}
    return FeatureCache(root, config, sum(len(f.feature_names()) for f in families))


def _rows(items: list[Item], families, *, jobs: int | None, on_error: str,
          progress: bool | None, max_pixels: int, min_size: int, cache):
    """Yield ``(position, item, row or ImageError)`` for every item, in order."""
    if on_error not in ("collect", "raise"):
        raise ValueError(f"on_error must be 'collect' or 'raise', got {on_error!r}")
    check_min_size(min_size)
    store = _open_cache(cache, families, max_pixels, min_size)
    jobs = _default_jobs() if jobs is None or jobs < 1 else jobs
    bar = Progress(len(items), "ffeat extract", enabled=progress)
    with ThreadPoolExecutor(max_workers=jobs) as pool:

        def submit(position: int, item: Item):
            return position, item, pool.submit(_features_of, item, families, max_pixels,
                                               min_size, store)

        # A bounded window of tasks in flight keeps memory flat for any input count.
        todo = enumerate(items)
        pending = deque(submit(*nxt) for nxt in itertools.islice(todo, 4 * jobs))
        try:
            while pending:
                position, item, future = pending.popleft()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(submit(*nxt))
                try:
                    row = future.result()
                except ImageReadError as exc:
                    if on_error == "raise":
                        raise
                    bar.update(ok=False)
                    yield position, item, ImageError(item.name, exc.reason)
                    continue
                bar.update()
                yield position, item, row
        finally:
            for _, _, future in pending:
                future.cancel()
            bar.close()


def extract(images, features=DEFAULT_FEATURES, *, jobs: int | None = None,
            on_error: str = "collect", progress: bool | None = False,
            max_pixels: int = DEFAULT_MAX_PIXELS,
            min_size: int = DEFAULT_MIN_SIZE, cache=False) -> Extraction:
    """Compute forensic features for a collection of images.

    Parameters
    ----------
    images : path, folder, bytes, PIL image, ndarray, or an iterable of those
        Folders are searched recursively for image files; a 4-D array is a
        batch of images.
    features : str, family object, or sequence of those, optional
        Families to compute, in column order: ``"gray"``, ``"spectrum"``,
        ``"residual"`` or configured :class:`~ffeat.Gray`,
        :class:`~ffeat.Spectrum`, :class:`~ffeat.Residual` objects.
    jobs : int, optional
        Worker threads that decode and compute in parallel; ``None`` or less
        than 1 means all available cores.
    on_error : {"collect", "raise"}, optional
        ``"collect"`` records unreadable inputs in ``errors`` and goes on;
        ``"raise"`` raises :class:`~ffeat.ImageReadError` at the first one.
    progress : bool or None, optional
        Show a progress bar on stderr (``None``: only when it is a terminal).
    max_pixels, min_size : int, optional
        Limits passed to :func:`~ffeat.load_image`.
    cache : bool or path, optional
        Keep the rows of files on disk in a cache keyed on file content and
        feature configuration, so that a second run does not decode them again:
        ``True`` uses ``$FFEAT_CACHE_DIR`` (default ``~/.cache/ffeat``), a path
        uses that folder, ``False`` (default) caches nothing.

    Returns
    -------
    Extraction
        ``(X, names, sources, labels, errors)``.

    Examples
    --------
    >>> import numpy as np, ffeat
    >>> rng = np.random.default_rng(0)
    >>> batch = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    >>> result = ffeat.extract(batch, features="spectrum")
    >>> result.X.shape
    (2, 64)
    """
    families = resolve_features(features)
    names = [n for f in families for n in f.feature_names()]
    rows, sources, labels, errors = [], [], [], []
    for _, item, row in _rows(expand_inputs(images), families, jobs=jobs, on_error=on_error,
                              progress=progress, max_pixels=max_pixels, min_size=min_size,
                              cache=cache):
        if isinstance(row, ImageError):
            errors.append(row)
            continue
        rows.append(row)
        sources.append(item.name)
        labels.append(item.label)
    X = np.vstack(rows).astype(np.float32, copy=False) if rows else \
        np.empty((0, len(names)), dtype=np.float32)
    return Extraction(X, names, sources, np.array(labels, dtype=np.int8), errors)
