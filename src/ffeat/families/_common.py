"""What the feature families share: the batch check, the array namespace ``xp``,
the luma planes and the cell grid of hog and lbp.

Array functions take ``xp``, ``numpy`` or ``cupy``, and never import CuPy.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["CHANNELS", "as_batch", "is_cupy", "to_host", "luma", "luma_int", "interior_cells",
           "cell_sums"]

#: RGB weights of the channel planes in 1/256 of an 8-bit level (JPEG's BT.601
#: YCbCr without offsets, which the zero-sum filters cancel anyway).
CHANNELS: dict[str, tuple[int, int, int]] = {
    "Y": (77, 150, 29),
    "Cb": (-43, -85, 128),
    "Cr": (128, -107, -21),
    "R": (256, 0, 0),
    "G": (0, 256, 0),
    "B": (0, 0, 256),
}


def as_batch(rgb: np.ndarray) -> np.ndarray:
    """View one image or a batch as a C-contiguous ``(B, H, W, 3)`` uint8 array."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 3:
        rgb = rgb[None]
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(
            "feature kernels take uint8 RGB images of shape (H, W, 3) or (B, H, W, 3); "
            f"got {rgb.dtype} {rgb.shape}. Use ffeat.load_image to convert other inputs.")
    return np.ascontiguousarray(rgb)


def is_cupy(xp) -> bool:
    """Whether ``xp`` is CuPy (checked by name: never imports CuPy)."""
    return xp.__name__ == "cupy"


def to_host(xp, a) -> np.ndarray:
    """A NumPy copy (or view) of an ``xp`` array."""
    return a.get() if is_cupy(xp) else np.asarray(a)


def luma(xp, rgb):
    """BT.601 luma ``(B, H, W)`` float32 of a ``(B, H, W, 3)`` uint8 batch."""
    f = rgb.astype(xp.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def luma_int(xp, rgb):
    """Exact integer luma ``77 R + 150 G + 29 B`` ``(B, H, W)`` int32 of a batch."""
    return sum(rgb[..., c].astype(xp.int32) * weight for c, weight in enumerate(CHANNELS["Y"]))


def interior_cells(h: int, w: int, cells: int, margin: int = 1) -> np.ndarray:
    """``(h - 2 margin, w - 2 margin)`` int32 cell of each pixel at least ``margin``
    from every border of an ``h x w`` image: ``(i * cells // h) * cells + j * cells // w``
    for ``margin <= i < h - margin``, ``margin <= j < w - margin`` (the cell grid
    of hog and lbp)."""
    rows = np.arange(margin, h - margin) * cells // h
    cols = np.arange(margin, w - margin) * cells // w
    return (rows[:, None] * cells + cols[None, :]).astype(np.int32)


@functools.lru_cache(maxsize=32)
def _cell_offsets(h: int, w: int, cells: int, n: int, margin: int) -> np.ndarray:
    """Read-only :func:`interior_cells` times ``n``: the first histogram slot of
    each pixel's cell."""
    offsets = interior_cells(h, w, cells, margin) * np.int32(n)
    offsets.setflags(write=False)
    return offsets


def cell_sums(xp, index, weights, cells: int, n: int, margin: int = 1):
    """``(B, cells**2, n)`` sums per image, cell and bin over the pixels at least
    ``margin`` from every border: ``index`` the ``(B, H - 2 margin, W - 2 margin)``
    int32 bin of each (overwritten), ``weights`` float64 alike or ``None`` (counts,
    int64). One ``bincount`` for the batch."""
    b, hi, wi = index.shape
    n_hist = cells * cells * n
    offsets = _cell_offsets(hi + 2 * margin, wi + 2 * margin, cells, n, margin)
    index += xp.asarray(offsets)[None]
    index = index + (n_hist * xp.arange(b, dtype=xp.int64))[:, None, None]
    sums = xp.bincount(index.ravel(), weights=None if weights is None else weights.ravel(),
                       minlength=b * n_hist)
    return sums.reshape(b, cells * cells, n)
