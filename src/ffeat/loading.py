"""Reading images into the one working representation every feature uses.

Every input becomes an ``(H, W, 3)`` ``uint8`` RGB array, the same for every
backend:

* files and bytes are decoded with Pillow (JPEG, PNG, WebP, BMP, TIFF, GIF
  first frame, and whatever else the installed Pillow reads); the EXIF
  orientation is applied;
* colour conversion: L, LA, 1, P and PA are expanded to RGB (gray images give
  three equal channels); CMYK, YCbCr, LAB and HSV go through Pillow's RGB
  conversion;
  alpha is dropped (not composited), so a transparent pixel keeps its colour;
* 16-bit and 32-bit integer images (I;16*, I) are scaled from 0-65535 to
  0-255; 32-bit float images (F) are taken as 0-1 if their maximum is at most
  1, as 0-255 otherwise, and must not be negative or over 255;
* NumPy arrays: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``;
  uint8 as is, uint16 scaled by 255/65535, bool as 0/255, floats in [0, 1]
  (the scikit-image convention);
* no crop and no resize: every family maps any size to a fixed-length vector.

Images smaller than ``min_size`` pixels on a side are refused, and so are
encoded images of more than ``max_pixels`` pixels, before decoding (a
decompression bomb is refused from its header). Inputs are never modified: files
are opened read-only and arrays are copied before conversion.
"""
from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._checks import check_int

__all__ = ["ImageReadError", "load_image", "DEFAULT_MAX_PIXELS", "DEFAULT_MIN_SIZE"]

#: Largest image decoded by default: Pillow's own warning limit (89,478,485
#: pixels, e.g. 9459 x 9459). Pillow refuses twice that by itself, so larger
#: values also need ``PIL.Image.MAX_IMAGE_PIXELS`` raised.
DEFAULT_MAX_PIXELS = 89_478_485
#: Smallest side accepted by default, in pixels.
DEFAULT_MIN_SIZE = 32
#: Smallest ``min_size`` allowed: every family needs images at least this big.
MIN_SIZE_LIMIT = 8


class ImageReadError(ValueError):
    """An input could not be turned into an image; says which and why.

    Attributes
    ----------
    source : str
        The file path, or a description of an in-memory input.
    reason : str
        What was wrong, in words meant for the person who gave the input.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


def describe_source(obj, position: int | None = None) -> str:
    """A short name for an input, for error records and output rows."""
    if isinstance(obj, (str, os.PathLike)):
        return os.fspath(obj)
    suffix = "" if position is None else f" #{position}"
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return f"<bytes{suffix}>"
    if isinstance(obj, Image.Image):
        name = getattr(obj, "filename", "")
        return name if name else f"<PIL image{suffix}>"
    if isinstance(obj, np.ndarray):
        return f"<array{suffix}>"
    return f"<{type(obj).__name__}{suffix}>"


def _scale_to_uint8(a: np.ndarray, source: str) -> np.ndarray:
    """Map a numeric pixel array to uint8 by the rules in the module docstring."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint16:
        return np.rint(a * (255 / 65535)).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageReadError(source, "float image contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:
            raise ImageReadError(
                source, f"float image values must lie in [0, 1], got [{lo:g}, {hi:g}]; "
                "divide by 255 or pass uint8")
        return np.rint(a * 255).astype(np.uint8)
    raise ImageReadError(source, f"unsupported array dtype {a.dtype}; "
                                 "use uint8, uint16, bool or float in [0, 1]")


def _array_to_rgb(a: np.ndarray, source: str) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[:, :, :3]
    else:
        raise ImageReadError(source, f"array of shape {a.shape} is not an image; expected "
                                     "(H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    return np.ascontiguousarray(_scale_to_uint8(a, source))


def _pil_to_rgb(im: Image.Image, source: str) -> np.ndarray:
    """Convert a loaded PIL image to uint8 RGB following the documented rules."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if mode in ("L", "1", "P", "PA", "LA", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB",
                "HSV"):
        if mode in ("P", "PA"):
            im = im.convert("RGBA")
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    if mode.startswith("I;16"):
        a = np.asarray(im).astype(np.uint16)
        return _array_to_rgb(a, source)
    if mode == "I":
        a = np.asarray(im)
        if a.min() < 0 or a.max() > 65535:
            raise ImageReadError(source, f"32-bit integer image values lie in "
                                         f"[{a.min()}, {a.max()}], outside 0-65535")
        return _array_to_rgb(a.astype(np.uint16), source)
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo and hi <= 255):
            raise ImageReadError(source, f"32-bit float image values lie in [{lo:g}, {hi:g}]; "
                                         "expected finite values in 0-1 or 0-255")
        return _array_to_rgb(a / 255 if hi > 1 else a, source)
    raise ImageReadError(source, f"unsupported image mode {mode!r}")


def _bomb(source: str, exc: Exception) -> ImageReadError:
    """The error for an image over Pillow's own decompression-bomb limit."""
    return ImageReadError(source, f"image too large (decompression bomb): {exc} Raise "
                                  "PIL.Image.MAX_IMAGE_PIXELS and max_pixels if it is genuine")


def _open(obj, source: str) -> Image.Image:
    """Open a path or bytes with Pillow, translating failures into clear reasons."""
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ImageReadError(source, "no such file") from None
        except OSError as exc:
            raise ImageReadError(source, f"cannot read: {exc.strerror or exc}") from None
        if stat.S_ISDIR(st.st_mode):
            raise ImageReadError(source, "is a folder, not an image file")
        if st.st_size == 0:
            raise ImageReadError(source, "file is empty (0 bytes)")
        fp = path
    else:
        fp = io.BytesIO(bytes(obj))
        if not fp.getbuffer().nbytes:
            raise ImageReadError(source, "no data (0 bytes)")
    try:
        return Image.open(fp)
    except Image.DecompressionBombError as exc:
        raise _bomb(source, exc) from None
    except UnidentifiedImageError:
        raise ImageReadError(source, "not an image Pillow can read (unknown format or "
                                     "corrupt header)") from None
    except PermissionError:
        raise ImageReadError(source, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(source, f"cannot open: {exc}") from None


def _decode(obj, source: str, max_pixels: int) -> np.ndarray:
    im = _open(obj, source)
    with im:
        w, h = im.size
        if w * h > max_pixels:
            raise ImageReadError(
                source, f"image too large: {w}x{h} = {w * h:,} pixels, over max_pixels="
                f"{max_pixels:,}; raise max_pixels if this image is genuine")
        try:
            im.seek(0)  # first frame of animations
            im.load()
            im = ImageOps.exif_transpose(im)
        except Image.DecompressionBombError as exc:
            raise _bomb(source, exc) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageReadError(source, f"truncated or corrupt image data ({exc})") from None
        return _pil_to_rgb(im, source)


def check_min_size(min_size: int) -> None:
    """Refuse a ``min_size`` below what every feature family needs."""
    check_int(min_size, "min_size")
    if min_size < MIN_SIZE_LIMIT:
        raise ValueError(f"min_size must be at least {MIN_SIZE_LIMIT} (the residual filters "
                         f"need a {MIN_SIZE_LIMIT} px image), got {min_size}")


def load_image(source, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               min_size: int = DEFAULT_MIN_SIZE, name: str | None = None) -> np.ndarray:
    """Read one image into the ``(H, W, 3)`` uint8 RGB working representation.

    Parameters
    ----------
    source : str, os.PathLike, bytes, PIL.Image.Image or numpy.ndarray
        A file path, encoded image bytes, a PIL image or a pixel array.
    max_pixels : int, optional
        Refuse encoded images with more pixels than this (checked from the
        header, before decoding).
    min_size : int, optional
        Refuse images whose height or width is below this; at least 8.
    name : str, optional
        How to call the input in error messages (defaults to its path or type).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        A new array; ``source`` is left untouched.

    Raises
    ------
    ImageReadError
        With the input's name and the reason it could not be read.
    """
    check_min_size(min_size)
    check_int(max_pixels, "max_pixels", minimum=1)
    name = name if name is not None else describe_source(source)
    if isinstance(source, np.ndarray):
        rgb = _array_to_rgb(np.array(source, copy=True), name)
    elif isinstance(source, Image.Image):
        try:
            rgb = _pil_to_rgb(ImageOps.exif_transpose(source), name)
        except (OSError, ValueError) as exc:
            if isinstance(exc, ImageReadError):
                raise
            raise ImageReadError(name, f"cannot convert PIL image ({exc})") from None
    elif isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        rgb = _decode(source, name, max_pixels)
    else:
        raise ImageReadError(name, f"cannot read an image from a {type(source).__name__}; "
                                   "give a path, bytes, a PIL image or a NumPy array")
    h, w = rgb.shape[:2]
    if min(h, w) < min_size:
        raise ImageReadError(name, f"image too small: {w}x{h} pixels, features need at "
                                   f"least {min_size}x{min_size}")
    return rgb
