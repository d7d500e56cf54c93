"""The canonical analysis frame: every image the families see, at one size.

The families read texture at fixed pixel scales, so a 768 px face and a 256 px
face differ in every statistic before either is judged; a classifier trained on
sources of different sizes can then tell them apart by size alone. With a
``frame`` of ``N`` the reading engine (``ffeat.reading._rows``) gives the families the
centre square of each decoded image (side ``min(H, W)``), resized to ``N x N``
px with :data:`FRAME_FILTER`; ``None`` keeps the image as decoded. An image
whose centre square is already ``N`` px is cut, never resampled.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .. import _resample

__all__ = ["FRAME_FILTER", "MIN_FRAME", "MAX_FRAME", "check_frame",
           "frame_image"]

#: Pillow filter of the resize to the frame (bicubic: antialiased when shrinking).
FRAME_FILTER = Image.Resampling.BICUBIC
#: Smallest frame, in pixels: the families' smallest useful image.
MIN_FRAME = 32
#: Largest frame, in pixels: bounds the memory of one framed image (48 MiB).
MAX_FRAME = 4096


def check_frame(frame, name: str = "frame") -> None:
    """Refuse a frame that is neither None nor an integer in [MIN_FRAME, MAX_FRAME].

    Raises
    ------
    TypeError
        When ``frame`` is not an integer or None (the message names ``name``).
    ValueError
        When it lies outside the range.
    """
    if frame is None:
        return
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
        raise TypeError(f"{name} must be None or a side in pixels (an integer), got "
                        f"{frame!r} ({type(frame).__name__})")
    if not MIN_FRAME <= frame <= MAX_FRAME:
        raise ValueError(f"{name} must be None or a side in pixels from {MIN_FRAME} to "
                         f"{MAX_FRAME}, got {frame}")


def frame_image(rgb: np.ndarray, frame: int | None) -> np.ndarray:
    """An image in the canonical analysis frame.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        The decoded image (or a face crop).
    frame : int or None
        Side of the frame in pixels; None: ``rgb`` as it is.

    Returns
    -------
    ndarray of shape (frame, frame, 3), uint8
        The centre square of side ``min(H, W)`` (the extra rows or columns split
        evenly, the odd one at the bottom or right), resized with
        :data:`FRAME_FILTER`; ``rgb`` itself when it is already ``frame x frame``,
        and the square uncut by any resampling when its side is ``frame``.
    """
    if frame is None:
        return rgb
    height, width = rgb.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = rgb if height == width else np.ascontiguousarray(
        rgb[top:top + side, left:left + side])
    if side == frame:
        return square
    if side > frame and FRAME_FILTER == Image.Resampling.BICUBIC and rgb.dtype == np.uint8 \
            and rgb.ndim == 3 and rgb.shape[2] == 3:
        # Pillow's bicubic reduction of a square, bit for bit, in vectorised passes
        # (``ext/_resample.pyx``): half of Pillow's time at 1024 px.
        return _resample.resize_bicubic(np.ascontiguousarray(square), frame, frame)
    resized = Image.fromarray(np.ascontiguousarray(square)).resize((frame, frame), FRAME_FILTER)
    return np.asarray(resized, dtype=np.uint8)
