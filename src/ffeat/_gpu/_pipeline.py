"""Batched extraction: CPU threads decode, the device computes batches, rows in input order.

Inputs are taken in chunks of ``batch_size`` in input order. While the device
computes one chunk, the thread pool reads the next one (decoding, the face
policy's crops, the frame). Within a chunk the views read (one per input, or one
per face) are grouped by size, each group stacked (through pinned host
memory on CUDA) and computed as one batch, or several when its pixels exceed
``PIXEL_BUDGET``. Every input then yields a finished
:class:`concurrent.futures.Future` holding its result (its feature row, or its
faces' rows) or its
:class:`~ffeat.ImageReadError`, exactly like the CPU path's futures, so the
caller's error handling and progress reporting are shared.
"""
from __future__ import annotations

import itertools
from collections import deque
from concurrent.futures import Future
from typing import Callable, Iterator

import numpy as np

from ..families import compute_families
from ..families._common import is_cupy
from ..running._workers import DaemonPool

__all__ = ["batched_results", "DEFAULT_BATCH_SIZE", "PIXEL_BUDGET"]

#: Images per chunk (and largest batch) by default.
DEFAULT_BATCH_SIZE = 64
#: Most pixels in one device batch (64 images of 512 x 512): bounds the device
#: memory of the temporaries to about 1.5 GB.
PIXEL_BUDGET = 1 << 24


def _finished(result=None, exception: BaseException | None = None) -> Future:
    future = Future()
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
    return future


def _compute_batch(xp, images: list[np.ndarray], families, raw_kernels: bool) -> np.ndarray:
    """Stack same-size images into a host buffer (pinned on CUDA), upload, compute."""
    shape = (len(images),) + images[0].shape
    if is_cupy(xp):
        import cupyx
        host = cupyx.empty_pinned(shape, dtype=np.uint8)  # from CuPy's pinned memory pool
    else:
        host = np.empty(shape, dtype=np.uint8)
    np.stack(images, out=host)
    # compute_families returns host rows, which waits for the device: `host`
    # stays alive (and unreused) until the asynchronous upload has finished.
    return compute_families(xp, xp.asarray(host), families, raw_kernels)


def _compute_chunk(xp, chunk, families, fail, assemble, raw_kernels: bool):
    """(item, finished future) for each (item, read future) of a chunk, in order: the
    views of every input read are grouped by shape, computed in batches and each
    input's rows handed to ``assemble``."""
    views = {}  # position in the chunk -> the views read
    for position, (_, future) in enumerate(chunk):
        if future.exception() is None:  # waits for the read
            views[position] = future.result()
    rows = {p: [None] * len(v) for p, v in views.items()}
    failed: dict[int, Exception] = {}
    by_shape: dict[tuple, list[tuple[int, int]]] = {}
    for p, read in views.items():
        for j, view in enumerate(read):
            by_shape.setdefault(view.crop.shape, []).append((p, j))
    for (h, w, _), slots in by_shape.items():
        step = max(1, PIXEL_BUDGET // (h * w))
        for start in range(0, len(slots), step):
            batch = slots[start:start + step]
            try:
                out = _compute_batch(xp, [views[p][j].crop for p, j in batch], families,
                                     raw_kernels)
            except (ValueError, MemoryError) as exc:  # cupy's OutOfMemoryError is one
                for p, _ in batch:
                    failed.setdefault(p, fail(chunk[p][0].name, exc))
            else:
                for (p, j), row in zip(batch, out):
                    rows[p][j] = row
    for position, (item, future) in enumerate(chunk):
        if position in failed:
            future = _finished(exception=failed[position])
        elif position in views:
            future = _finished(assemble(views[position], np.vstack(rows[position])))
        yield item, future


def batched_results(items: list, families, *, read: Callable, fail: Callable,
                    assemble: Callable, jobs: int, xp, batch_size: int = DEFAULT_BATCH_SIZE,
                    raw_kernels: bool = True) -> Iterator[tuple[object, Future]]:
    """Decode on threads and compute in batches; ``(item, future)`` in input order.

    Parameters
    ----------
    items : list of ffeat.reading._sources.Item
    families : sequence of Gray, Spectrum, Residual, Hog, Lbp
    read : callable
        ``read(item)`` returns the input's views, records whose ``crop`` is an
        ``(H, W, 3)`` uint8 image (:class:`ffeat.reading.faces.FaceCrop`: the whole
        image, or each face under a face policy), or raises
        :class:`~ffeat.ImageReadError` (run in the worker threads).
    fail : callable
        ``fail(name, exc)`` turns a failed feature computation into the
        :class:`~ffeat.ImageReadError` recorded for each input of the batch.
    assemble : callable
        ``assemble(views, rows)`` makes an input's result from its views and their
        float32 feature rows (one per view, stacked).
    jobs : int
        Decoding threads.
    xp : module
        ``cupy`` (or ``numpy``, which runs the same pipeline on the CPU).
    batch_size : int, optional
        Images per chunk, hence the largest batch.
    raw_kernels : bool, optional
        Passed to :func:`ffeat.families.compute_families`.

    Yields
    ------
    (Item, concurrent.futures.Future)
        Finished futures: ``.result()`` is what ``assemble`` made, or raises.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    with DaemonPool(jobs) as pool:  # a stuck read never keeps the process alive
        chunks = (items[i:i + batch_size] for i in range(0, len(items), batch_size))

        def submit(chunk):
            return [(item, pool.submit(read, item)) for item in chunk]

        # While one chunk is computed, the next two are being decoded.
        window = deque(submit(chunk) for chunk in itertools.islice(chunks, 2))
        try:
            while window:
                chunk = window.popleft()
                following = next(chunks, None)
                if following is not None:
                    window.append(submit(following))
                yield from _compute_chunk(xp, chunk, families, fail, assemble, raw_kernels)
        finally:
            for chunk in window:
                for _, future in chunk:
                    future.cancel()
