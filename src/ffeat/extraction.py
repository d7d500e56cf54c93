"""The single entry point: inputs in, a feature matrix and per-file errors out."""
from __future__ import annotations

import functools
import itertools
import os
from collections import deque
from typing import NamedTuple

import numpy as np

from ._cache import FeatureCache, resolve_cache
from ._checks import check_int
from ._gpu import resolve_backend
from ._perturb import Perturbed
from ._progress import Progress
from ._sources import Item, expand_inputs
from ._version import __version__
from ._workers import DaemonPool
from .faces import NoFaceError, check_faces, face_crops
from .features import describe_features, resolve_features
from .loading import (DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE, ImageReadError, check_min_size,
                      load_image)

__all__ = ["ImageError", "Extraction", "extract", "DEFAULT_FEATURES"]

#: Families computed when none are named.
DEFAULT_FEATURES = ("gray", "spectrum", "residual", "hog", "lbp")


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


def _read_item(item: Item, max_pixels: int, min_size: int) -> np.ndarray:
    """Decode one input, every failure as an :class:`ImageReadError` (runs in a worker)."""
    if item.error is not None:
        raise ImageReadError(item.name, item.error)
    try:
        if isinstance(item.obj, Perturbed):  # a copy made in memory from its source
            return item.obj.load(max_pixels=max_pixels, min_size=min_size, name=item.name)
        return load_image(item.obj, max_pixels=max_pixels, min_size=min_size, name=item.name)
    except (MemoryError, OSError) as exc:  # ImageReadError, a ValueError, passes through
        raise ImageReadError(item.name, f"cannot read: {exc or type(exc).__name__}") from exc


def _feature_error(name: str, exc: Exception) -> ImageReadError:
    """The error record of an image whose features could not be computed."""
    return ImageReadError(name, f"features failed: {exc or type(exc).__name__}")


class FaceRows(NamedTuple):
    """The feature rows of one image read under a face policy: one per face found,
    the most certain first, with its box ``(x, y, w, h)``; a box is None where the
    whole image was used."""

    boxes: list
    rows: np.ndarray


def _face_rows(item: Item, families, max_pixels: int, min_size: int,
               faces: str) -> FaceRows:
    """Read one input and compute the rows of its faces (:func:`ffeat.faces.face_crops`)."""
    rgb = _read_item(item, max_pixels, min_size)
    try:
        found = face_crops(rgb, faces)
        rows = np.vstack([np.concatenate([f.compute(crop)[0] for f in families])
                          for _, crop in found])
    except NoFaceError as exc:
        raise ImageReadError(item.name, str(exc)) from exc
    except (ValueError, MemoryError) as exc:
        raise _feature_error(item.name, exc) from exc
    return FaceRows([box for box, _ in found], rows)


def image_row(row: np.ndarray | FaceRows) -> np.ndarray:
    """The feature row that stands for an image: under a face policy, its most
    certain face's."""
    return row.rows[0] if isinstance(row, FaceRows) else row


def _features_of(item: Item, families, max_pixels: int, min_size: int,
                 cache: FeatureCache | None, faces: str = "off") -> np.ndarray | FaceRows:
    """Read one input and compute its feature row, or under a face policy other than
    ``"off"`` its :class:`FaceRows` (runs in a worker thread)."""
    if faces != "off":
        return _face_rows(item, families, max_pixels, min_size, faces)
    key = cache.key(item.obj) if cache and isinstance(item.obj, (str, os.PathLike)) else None
    if key is not None and (row := cache.get(key)) is not None:
        return row
    rgb = _read_item(item, max_pixels, min_size)
    try:
        row = np.concatenate([f.compute(rgb)[0] for f in families])
    except (ValueError, MemoryError) as exc:
        raise _feature_error(item.name, exc) from exc
    if key is not None:
        cache.put(key, row)
    return row


def _cpu_results(items: list[Item], families, jobs: int, max_pixels: int, min_size: int,
                 cache: FeatureCache | None, faces: str):
    """``(item, future)`` in input order from a thread pool computing one image per task
    (daemon threads: Ctrl-C ends the process even when a worker is stuck in a read)."""
    with DaemonPool(jobs) as pool:

        def submit(item: Item):
            return item, pool.submit(_features_of, item, families, max_pixels, min_size, cache,
                                     faces)

        # A bounded window of tasks in flight keeps memory flat for any input count.
        todo = iter(items)
        pending = deque(submit(item) for item in itertools.islice(todo, 4 * jobs))
        try:
            while pending:
                item, future = pending.popleft()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(submit(nxt))
                yield item, future
        finally:
            for _, future in pending:
                future.cancel()


def _cuda_results(items: list[Item], families, jobs: int, max_pixels: int, min_size: int):
    """``(item, future)`` in input order from the batched CUDA pipeline."""
    from ._gpu._backend import import_cupy
    from ._gpu._pipeline import batched_results
    return batched_results(items, families, xp=import_cupy(), jobs=jobs, fail=_feature_error,
                           read=functools.partial(_read_item, max_pixels=max_pixels,
                                                  min_size=min_size))


def _open_cache(cache, families, max_pixels: int, min_size: int) -> FeatureCache | None:
    root = resolve_cache(cache)
    if root is None:
        return None
    config = {"features": describe_features(families), "ffeat": __version__,
              "max_pixels": max_pixels, "min_size": min_size}
    return FeatureCache(root, config, sum(len(f.feature_names()) for f in families))


def _rows(items: list[Item], families, *, jobs: int | None, on_error: str,
          progress: bool | None, max_pixels: int, min_size: int, cache,
          backend: str = "cpu", faces: str = "off"):
    """Yield ``(position, item, row or ImageError)`` for every item, in order; under a
    face policy other than ``"off"`` the row is a :class:`FaceRows` (CPU only, not
    cached)."""
    if on_error not in ("collect", "raise"):
        raise ValueError(f"on_error must be 'collect' or 'raise', got {on_error!r}")
    check_faces(faces)
    check_min_size(min_size)
    backend = resolve_backend(backend)
    jobs = _default_jobs() if jobs is None or jobs < 1 else jobs
    if backend == "cuda":
        if faces != "off":
            raise ValueError(f"faces={faces!r} runs on the CPU backend only; use "
                             "backend='cpu' or faces='off'")
        results = _cuda_results(items, families, jobs, max_pixels, min_size)
    else:
        cache = _open_cache(cache, families, max_pixels, min_size) if faces == "off" else None
        results = _cpu_results(items, families, jobs, max_pixels, min_size, cache, faces)
    bar = Progress(len(items), "ffeat extract", enabled=progress)
    try:
        for position, (item, future) in enumerate(results):
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
        results.close()
        bar.close()


def extract(images, features=DEFAULT_FEATURES, *, jobs: int | None = None,
            on_error: str = "collect", progress: bool | None = False,
            max_pixels: int = DEFAULT_MAX_PIXELS,
            min_size: int = DEFAULT_MIN_SIZE, cache=False, backend: str = "cpu",
            faces: str = "off") -> Extraction:
    """Compute forensic features for a collection of images.

    Parameters
    ----------
    images : path, folder, bytes, PIL image, ndarray, or an iterable of those
        Folders are searched recursively for image files; a 4-D array is a
        batch of images.
    features : str, family object, or sequence of those, optional
        Families to compute, in column order: ``"gray"``, ``"spectrum"``,
        ``"residual"``, ``"hog"``, ``"lbp"`` or configured :class:`~ffeat.Gray`,
        :class:`~ffeat.Spectrum`, :class:`~ffeat.Residual`, :class:`~ffeat.Hog`,
        :class:`~ffeat.Lbp` objects.
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
    backend : {"cpu", "cuda", "auto"}, optional
        Where the features are computed. ``"cuda"`` decodes on ``jobs`` CPU
        threads and computes batches of same-size images on the GPU with CuPy
        (``pip install "ffeat[cuda]"``); ``"auto"`` uses CUDA when a device is
        found, else the CPU. The result has the same structure either way, the
        values agree to float32 round-off.
    cache : bool or path, optional
        Keep the rows of files on disk in a cache keyed on file content and
        feature configuration, so that a second run does not decode them again:
        ``True`` uses ``$FFEAT_CACHE_DIR`` (default ``~/.cache/ffeat``), a path
        uses that folder, ``False`` (default) caches nothing. The CPU backend
        reads and writes it; the CUDA backend computes every row.
    faces : {"off", "crop", "auto"}, optional
        Face policy (see :class:`~ffeat.Detector`): with ``"crop"`` or ``"auto"``
        an image's row is that of its most certain face, in the framing of the
        aligned training faces; ``"crop"`` records an image without a face as an
        error, "no face found". CPU backend only; not cached.

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
    check_int(jobs, "jobs", none=True)
    check_int(max_pixels, "max_pixels", minimum=1)
    if not isinstance(cache, (bool, str, os.PathLike)):
        raise TypeError(f"cache must be True, False or a folder path, got {cache!r}")
    families = resolve_features(features)
    return _gather(_rows(expand_inputs(images), families, jobs=jobs, on_error=on_error,
                         progress=progress, max_pixels=max_pixels, min_size=min_size,
                         cache=cache, backend=backend, faces=faces),
                   [n for f in families for n in f.feature_names()])


def _gather(results, names: list[str]) -> Extraction:
    """The :class:`Extraction` of a :func:`_rows` stream whose columns are ``names``."""
    rows, sources, labels, errors = [], [], [], []
    for _, item, row in results:
        if isinstance(row, ImageError):
            errors.append(row)
            continue
        rows.append(image_row(row))
        sources.append(item.name)
        labels.append(item.label)
    X = np.vstack(rows).astype(np.float32, copy=False) if rows else \
        np.empty((0, len(names)), dtype=np.float32)
    return Extraction(X, names, sources, np.array(labels, dtype=np.int8), errors)
