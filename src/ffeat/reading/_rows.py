"""The reading engine: inputs in, one feature row or one error record per input out.

Every layer reads images through here: :func:`ffeat.extract` and the streaming
shards (:func:`iter_rows`), the estimators and the report (:func:`feature_rows`),
the CNN and the report's image statistics (:func:`read_item`).

Two names for an unreadable input, on purpose: :class:`~ffeat.ImageReadError`
is the *exception* (raised by :func:`~ffeat.load_image`, by :func:`read_item`
and with ``on_error="raise"``; a ``ValueError``, so it carries a traceback and
stops the caller), :class:`ImageError` the *record* kept in results (a plain
immutable value: comparable, hashable, printable, picklable to dask workers and
written to feature files, holding no traceback or frame). Every result lists
its records in input order, as a list.

Per image the work is: :func:`read_item` (decode, and perturb an augmented or
perturbed copy), then :func:`read_views` (the face policy's crops, each put in
the analysis frame, ``ffeat.reading._framing``), then the families' ``compute`` on each
``(H, W, 3)`` view, in ``_features_of`` (CPU) or the batched CUDA pipeline.
Every path reads through :func:`read_views`, so the frame applies to all alike.
"""
from __future__ import annotations

import functools
import itertools
import os
from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from .._gpu import resolve_backend
from .._version import __version__
from ..features import column_names, describe_features
from ..running._cache import PLACE_WIDTH, FeatureCache, resolve_cache
from ..running._progress import Progress
from ..running._workers import DaemonPool
from . import NATIVE, Reading
from ._framing import frame_image
from ._perturb import Perturbed
from ._sources import Item
from .faces import FRAME_SIZE, FaceCrop, NoFaceError, face_crops, rounded_quad
from .loading import ImageReadError, load_image

__all__ = ["ImageError", "FaceRows", "default_jobs", "read_item", "read_views", "views_of",
           "feature_error", "image_row", "iter_rows", "feature_rows", "match_errors"]


class ImageError(NamedTuple):
    """An input that gave no feature row: its name and the reason."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


def default_jobs(jobs: int | None = None) -> int:
    """``jobs`` worker threads, or every core this process may use when ``jobs`` is
    None or less than 1."""
    if jobs is not None and jobs >= 1:
        return jobs
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def read_item(item: Item, reading: Reading = NATIVE) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 image of one input, decoded within ``reading``'s size
    limits; every failure raises :class:`~ffeat.ImageReadError` naming the input (safe
    to run in a worker)."""
    if item.error is not None:
        raise ImageReadError(item.name, item.error)
    max_pixels, min_size = reading.max_pixels, reading.min_size
    try:
        if isinstance(item.obj, Perturbed):  # a copy made in memory from its source
            return item.obj.load(max_pixels=max_pixels, min_size=min_size, name=item.name)
        return load_image(item.obj, max_pixels=max_pixels, min_size=min_size, name=item.name)
    except (MemoryError, OSError) as exc:  # ImageReadError, a ValueError, passes through
        raise ImageReadError(item.name, f"cannot read: {exc or type(exc).__name__}") from exc


def read_views(item: Item, reading: Reading = NATIVE) -> list[FaceCrop]:
    """What the families see of one input under ``reading``: its
    :class:`~ffeat.reading.faces.FaceCrop` records, each crop in the analysis frame.

    The input is decoded (:func:`read_item`), cut into the face policy's crops
    (:func:`ffeat.reading.faces.face_crops`, each face resized to the frame, or to
    :data:`~ffeat.reading.faces.FRAME_SIZE` when there is none), and each crop is put
    in the analysis frame (:func:`ffeat.reading._framing.frame_image`). Under
    ``faces="off"`` one record, ``FaceCrop(None, view)``.

    Raises
    ------
    ffeat.ImageReadError
        When the input cannot be read, holds no face under ``faces="crop"``, or
        cannot be cropped or framed (:func:`feature_error`).
    """
    return views_of(read_item(item, reading), reading, item.name)


def views_of(rgb: np.ndarray, reading: Reading, name: str) -> list[FaceCrop]:
    """The :func:`read_views` of an image already decoded (``rgb``), named ``name`` in
    errors.

    Raises
    ------
    ffeat.ImageReadError
        As :func:`read_views`, for a missing face or a crop or frame that fails.
    """
    frame = reading.frame
    try:
        return [face._replace(crop=frame_image(face.crop, frame))
                for face in face_crops(rgb, reading.faces, size=frame or FRAME_SIZE)]
    except NoFaceError as exc:
        raise ImageReadError(name, str(exc)) from exc
    except (ValueError, MemoryError) as exc:
        raise feature_error(name, exc) from exc


def feature_error(name: str, exc: Exception) -> ImageReadError:
    """The exception of an image whose features could not be computed."""
    return ImageReadError(name, f"features failed: {exc or type(exc).__name__}")


class FaceRows(NamedTuple):
    """The feature rows of one image read under a face policy: one per face found,
    the most certain first, with its box ``(x, y, w, h)`` and quad (see
    :class:`~ffeat.reading.faces.FaceCrop`); a box is None where the whole image was
    used, a quad None outside ``faces="align"``."""

    boxes: list
    rows: np.ndarray
    quads: list


def image_row(row: np.ndarray | FaceRows) -> np.ndarray:
    """The feature row that stands for an image: under a face policy, its most
    certain face's."""
    return row.rows[0] if isinstance(row, FaceRows) else row


def _assembled(views: list[FaceCrop], rows: np.ndarray,
               reading: Reading) -> np.ndarray | FaceRows:
    """What one input was read as, from its views and their feature ``rows``: its one
    row, or under a face policy other than ``"off"`` its :class:`FaceRows`."""
    if reading.faces == "off":
        return rows[0]
    return FaceRows([v.box for v in views], rows, [v.quad for v in views])


def _places(views: list[FaceCrop]) -> np.ndarray:
    """Each face's box and quad as one row of ``PLACE_WIDTH`` numbers (NaN: none), as
    the feature cache keeps them."""
    out = np.full((len(views), PLACE_WIDTH), np.nan)
    for row, v in zip(out, views):
        if v.box is not None:
            row[:4] = v.box
        if v.quad is not None:
            row[4:] = np.ravel(v.quad)
    return out


def _cached(rows: np.ndarray, places: np.ndarray | None,
            reading: Reading) -> np.ndarray | FaceRows:
    """A feature cache entry as :func:`_assembled` makes it (the inverse of
    :func:`_places`)."""
    if places is None:
        places = np.full((1, PLACE_WIDTH), np.nan)
    views = []
    for p in places:
        box = None if np.isnan(p[0]) else tuple(int(v) for v in p[:4])
        quad = None if np.isnan(p[4]) else rounded_quad(p[4:].reshape(4, 2))
        views.append(FaceCrop(box, None, quad))
    return _assembled(views, rows, reading)


def _features_of(item: Item, families, reading: Reading,
                 cache: FeatureCache | None) -> np.ndarray | FaceRows:
    """Read one input and compute its feature row, or under a face policy other than
    ``"off"`` the :class:`FaceRows` of its faces (runs in a worker thread); a file's
    result is taken from, or kept in, the feature cache."""
    key = cache.key(item.obj) if cache and isinstance(item.obj, (str, os.PathLike)) else None
    if key is not None and (hit := cache.get(key)) is not None:
        return _cached(*hit, reading)
    views = read_views(item, reading)
    try:
        rows = [np.concatenate([f.compute(view.crop) for f in families], axis=1)
                for view in views]
        rows = rows[0] if len(rows) == 1 else np.vstack(rows)  # one view: no second copy
    except (ValueError, MemoryError) as exc:
        raise feature_error(item.name, exc) from exc
    if key is not None:
        cache.put(key, rows, None if reading.faces == "off" else _places(views))
    return _assembled(views, rows, reading)


def _cpu_results(items: list[Item], families, reading: Reading, jobs: int,
                 cache: FeatureCache | None):
    """``(item, future)`` in input order from a thread pool computing one image per task
    (daemon threads: Ctrl-C ends the process even when a worker is stuck in a read)."""
    with DaemonPool(jobs) as pool:

        def submit(item: Item):
            return item, pool.submit(_features_of, item, families, reading, cache)

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


def _cuda_results(items: list[Item], families, reading: Reading, jobs: int):
    """``(item, future)`` in input order from the batched CUDA pipeline (read, cut into
    the face policy's crops and framed on the CPU, in the reading threads)."""
    from .._gpu._backend import import_cupy
    from .._gpu._pipeline import batched_results
    return batched_results(items, families, xp=import_cupy(), jobs=jobs, fail=feature_error,
                           read=functools.partial(read_views, reading=reading),
                           assemble=functools.partial(_assembled, reading=reading))


def _open_cache(cache, families, reading: Reading) -> FeatureCache | None:
    root = resolve_cache(cache)
    if root is None:
        return None
    config = {"features": describe_features(families), "ffeat": __version__,
              **reading.cache_config()}
    return FeatureCache(root, config, len(column_names(families)))


def iter_rows(items: list[Item], families, reading: Reading = NATIVE, *,
              jobs: int | None = None, on_error: str = "collect",
              progress: bool | None = False, cache=False, backend: str = "cpu",
              ) -> Iterator[tuple[Item, np.ndarray | FaceRows | ImageError]]:
    """``(item, row)`` for every input in input order, ``row`` the float feature row of
    ``families`` (under a face policy other than ``"off"``, the :class:`FaceRows`) or
    the :class:`ImageError` of an input that could not be read.

    Parameters
    ----------
    items : list of Item
        The inputs (see ``ffeat.reading._sources``).
    families : sequence of families
        Resolved feature families, in column order.
    reading : Reading, optional
        How each input becomes pixels (face policy, frame, size limits).
    jobs, progress, cache, backend
        As for :func:`ffeat.extract`.
    on_error : {"collect", "raise"}, optional
        ``"raise"``: raise :class:`~ffeat.ImageReadError` at the first unreadable input.
    """
    if on_error not in ("collect", "raise"):
        raise ValueError(f"on_error must be 'collect' or 'raise', got {on_error!r}")
    if not isinstance(reading, Reading):
        raise TypeError(f"reading must be an ffeat.Reading, got {type(reading).__name__}")
    backend = resolve_backend(backend)
    jobs = default_jobs(jobs)
    if backend == "cuda":
        results = _cuda_results(items, families, reading, jobs)
    else:
        results = _cpu_results(items, families, reading, jobs,
                               _open_cache(cache, families, reading))
    bar = Progress(len(items), "ffeat extract", enabled=progress)
    try:
        for item, future in results:
            try:
                row = future.result()
            except ImageReadError as exc:
                if on_error == "raise":
                    raise
                bar.update(ok=False)
                yield item, ImageError(item.name, exc.reason)
                continue
            bar.update()
            yield item, row
    finally:
        results.close()
        bar.close()


def feature_rows(items: list[Item], families, reading: Reading = NATIVE, *,
                 jobs: int | None = None, cache=False, backend: str = "cpu",
                 progress: bool | None = False) -> tuple[np.ndarray, list[ImageError]]:
    """The float64 feature matrix of ``items`` (one row per input) and the error records;
    under a face policy an image's row is its most certain face's (:func:`image_row`).

    A row is NaN exactly where the list holds a record for its input, in input
    order: an input that could not be read, or whose features came out NaN
    (recorded as such), so the positions of the errors are the NaN rows.
    """
    X = np.full((len(items), len(column_names(families))), np.nan)
    errors = []
    for position, (item, row) in enumerate(iter_rows(items, families, reading, jobs=jobs,
                                                     progress=progress, cache=cache,
                                                     backend=backend)):
        if isinstance(row, ImageError):
            errors.append(row)
            continue
        X[position] = image_row(row)
        if np.isnan(X[position]).any():
            X[position] = np.nan
            errors.append(ImageError(item.name, "features failed: NaN values"))
    return X, errors


def match_errors(items: list[Item], failed: np.ndarray,
                 errors: list[ImageError]) -> list[ImageError | None]:
    """Per item, its record from ``errors`` (records in input order, of failed items), or
    None: for an item that did not fail, or failed without a record (a NaN score)."""
    records = deque(errors)
    matched = []
    for item, bad in zip(items, failed):
        take = bool(bad) and bool(records) and records[0].source == item.name
        matched.append(records.popleft() if take else None)
    return matched
