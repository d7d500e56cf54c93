"""The single entry point: inputs in, a feature matrix and per-file errors out."""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ._checks import check_int
from .features import column_names, resolve_features
from .reading import Reading, as_reading
from .reading._rows import ImageError, image_row, iter_rows
from .reading._sources import Item, expand_inputs
from .running._workers import MAX_JOBS

__all__ = ["ImageError", "Extraction", "extract", "extract_items", "DEFAULT_FEATURES"]

#: Families computed when none are named.
DEFAULT_FEATURES = ("gray", "spectrum", "residual", "hog", "lbp")


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


def extract(images, features=DEFAULT_FEATURES, *, reading: Reading | None = None,
            jobs: int | None = None, on_error: str = "collect",
            progress: bool | None = False, cache=False, backend: str = "cpu") -> Extraction:
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
    reading : Reading, optional
        How each image becomes pixels (:class:`~ffeat.Reading`: face policy,
        analysis frame, size limits); None (default): as decoded, native size.
        Under a face policy (``Reading(faces="align")``, ``"crop"`` or ``"auto"``)
        an image's row is that of its most certain face, cut as the aligned
        training faces were (``"align"`` and ``"crop"`` record an image without a
        face as an error, "no face found"; the cache keys on the policy and the
        aligner's settings). With a frame, after
        decoding (and after the face crop) the centre square of side
        ``min(H, W)`` is resized to ``frame x frame`` px (Pillow, bicubic; an
        image already of that size is not resampled).
    jobs : int, optional
        Worker threads that decode and compute in parallel; ``None`` or less
        than 1 means all available cores; at most 256.
    on_error : {"collect", "raise"}, optional
        ``"collect"`` records unreadable inputs in ``errors`` and goes on;
        ``"raise"`` raises :class:`~ffeat.ImageReadError` at the first one.
    progress : bool or None, optional
        Show a progress bar on stderr (``None``: only when it is a terminal).
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
    reading = as_reading(reading)
    check_int(jobs, "jobs", none=True, maximum=MAX_JOBS)
    if not isinstance(cache, (bool, str, os.PathLike)):
        raise TypeError(f"cache must be True, False or a folder path, got {cache!r}")
    return extract_items(expand_inputs(images), resolve_features(features), reading,
                         jobs=jobs, on_error=on_error, progress=progress, cache=cache,
                         backend=backend)


def extract_items(items: list[Item], families, reading: Reading, **options) -> Extraction:
    """The :class:`Extraction` of listed inputs (``ffeat.reading._sources``) and resolved families
    read under ``reading``.

    ``options`` are the run options of :func:`ffeat.reading._rows.iter_rows`; what
    :func:`extract` and each streamed shard compute.
    """
    rows, sources, labels, errors = [], [], [], []
    for item, row in iter_rows(items, families, reading, **options):
        if isinstance(row, ImageError):
            errors.append(row)
            continue
        rows.append(image_row(row))
        sources.append(item.name)
        labels.append(item.label)
    X = np.vstack(rows).astype(np.float32, copy=False) if rows else \
        np.empty((0, len(column_names(families))), dtype=np.float32)
    return Extraction(X, column_names(families), sources, np.array(labels, dtype=np.int8), errors)
