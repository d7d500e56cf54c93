"""One pass over the decoded images: what the dataset looks like, and its spectra."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from ..features import RESIDUAL_FILTERS, Spectrum
from ..reading._rows import read_item
from ..reading._sources import Item
from ..reading.faces import find_faces
from ..reading.loading import ImageReadError, open_image
from ..running._progress import Progress

__all__ = ["ImageStats", "image_stats", "luma"]

#: Largest centre crop the mean residual spectrum is computed on.
MAX_CROP = 256
_CHUNK = 64


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 RGB image as float32 in 8-bit levels."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class ImageStats:
    """Per-image measurements (one row per readable image, in order) and class means.

    Attributes
    ----------
    height, width : ndarray of int
    formats : list of str
        Pillow's format name for files and bytes, else the input's type.
    brightness : ndarray
        Mean luma in [0, 1].
    saturation : ndarray
        Mean HSV saturation in [0, 1].
    sharpness : ndarray
        Variance of the Laplacian of the luma (8-bit levels squared).
    spectrum : ndarray, shape (n, n_bins)
        Azimuthally averaged log power spectrum of every image.
    residual_power : dict {0: ndarray, 1: ndarray}
        Mean 2-D power spectrum (``fftshift``-ed, DC at the centre) of the 3x3
        high-pass residual of the luma, on a Hann-windowed centre crop of side
        ``crop``, per class (None when the class has no images).
    crop : int
    face_found : ndarray of bool or None
        Whether :func:`ffeat.reading.faces.find_faces` finds a face (None: not looked for).
    """

    height: np.ndarray
    width: np.ndarray
    formats: list[str]
    brightness: np.ndarray
    saturation: np.ndarray
    sharpness: np.ndarray
    spectrum: np.ndarray
    residual_power: dict
    crop: int
    face_found: np.ndarray | None = None


def _format_of(obj) -> str:
    if isinstance(obj, (str, os.PathLike, bytes, bytearray)):
        try:
            with open_image(obj, "") as im:
                return im.format or "unknown"
        except (OSError, ValueError):
            return "unknown"
    if isinstance(obj, Image.Image):
        return obj.format or "PIL image"
    return "array" if isinstance(obj, np.ndarray) else type(obj).__name__


def _min_side(obj) -> int | None:
    """Smallest side from the header (files, bytes) or the shape (arrays), if cheap."""
    try:
        if isinstance(obj, np.ndarray):
            return int(min(obj.shape[:2]))
        if isinstance(obj, Image.Image):
            return int(min(obj.size))
        if isinstance(obj, (str, os.PathLike)):
            with open_image(obj, "") as im:  # never blocks on a FIFO, no Ghostscript
                return int(min(im.size))
    except (OSError, ValueError):
        return None
    return None


def _kb_kernel() -> np.ndarray:
    kernel, denom, _ = RESIDUAL_FILTERS["kb"]
    return (kernel / denom).astype(np.float32)


def _measure(item: Item, crop: int, window: np.ndarray, spectrum: Spectrum,
             faces: bool) -> dict | None:
    try:
        rgb = read_item(item)
    except ImageReadError:
        return None
    y = luma(rgb)
    mx = rgb.max(axis=2).astype(np.float32)
    mn = rgb.min(axis=2).astype(np.float32)
    sat = np.divide(mx - mn, mx, out=np.zeros_like(mx), where=mx > 0)
    h, w = y.shape
    power = None
    if min(h, w) >= crop:
        top, left = (h - crop) // 2, (w - crop) // 2
        res = ndimage.convolve(y[top:top + crop, left:left + crop], _kb_kernel(),
                               mode="reflect")
        power = np.abs(np.fft.fft2(res * window)) ** 2
    return {"format": _format_of(item.obj), "height": h, "width": w,
            "brightness": float(y.mean() / 255), "saturation": float(sat.mean()),
            "sharpness": float(ndimage.laplace(y).var()),
            "spectrum": spectrum.compute(rgb)[0], "power": power,
            "face": bool(find_faces(rgb)) if faces else None}


def image_stats(items: list[Item], labels: np.ndarray, *, jobs: int,
                progress: bool | None = False, faces: bool = False) -> ImageStats:
    """Measure every item (all readable; see :class:`ImageStats`); with ``faces``,
    also whether a face is found in it."""
    sides = [s for s in map(_min_side, (it.obj for it in items)) if s]
    crop = max(32, min([MAX_CROP, *sides]) // 2 * 2)
    hann = np.hanning(crop).astype(np.float32)
    window = np.outer(hann, hann)
    spectrum = Spectrum()
    rows: list[dict] = []
    sums = {0: np.zeros((crop, crop)), 1: np.zeros((crop, crop))}
    counts = {0: 0, 1: 0}
    bar = Progress(len(items), "ffeat report: image statistics", enabled=progress)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for start in range(0, len(items), _CHUNK):
            chunk = items[start:start + _CHUNK]
            for i, r in enumerate(pool.map(
                    lambda it: _measure(it, crop, window, spectrum, faces), chunk)):
                bar.update(r is not None)
                if r is None:  # features were read, so this is rare (file changed since)
                    r = {"format": "unreadable", "height": 0, "width": 0,
                         "brightness": np.nan, "saturation": np.nan, "sharpness": np.nan,
                         "spectrum": np.full(spectrum.n_bins, np.nan), "power": None,
                         "face": False if faces else None}
                label = int(labels[start + i])
                power = r.pop("power")
                if power is not None:
                    sums[label] += power
                    counts[label] += 1
                rows.append(r)
    bar.close()
    power = {c: np.fft.fftshift(sums[c] / counts[c]) if counts[c] else None for c in (0, 1)}
    return ImageStats(
        height=np.array([r["height"] for r in rows]), width=np.array([r["width"] for r in rows]),
        formats=[r["format"] for r in rows],
        brightness=np.array([r["brightness"] for r in rows]),
        saturation=np.array([r["saturation"] for r in rows]),
        sharpness=np.array([r["sharpness"] for r in rows]),
        spectrum=np.array([r["spectrum"] for r in rows]).reshape(len(rows), spectrum.n_bins),
        residual_power=power, crop=crop,
        face_found=np.array([r["face"] for r in rows], dtype=bool) if faces else None)
