"""Reading images into the one working representation every feature uses.

Every input becomes an ``(H, W, 3)`` ``uint8`` RGB array, the same for every
backend:

* files and bytes are decoded with Pillow's in-process decoders of
  :data:`ACCEPTED_FORMATS` only (JPEG, PNG, WebP, BMP, TIFF, GIF first frame);
  any other format is refused, so no external program ever sees input data
  (Pillow runs Ghostscript on PostScript); the EXIF orientation is applied;
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
decompression bomb is refused from its header). Only regular files are read: a
FIFO, socket, device or folder is refused without blocking, and so are symbolic
link loops and dangling links. Truncated data is refused, also a JPEG cut short
with an end marker appended (see :mod:`ffeat.reading._jpeg`), and a PNG whose compressed
data are too short for its declared size, from its chunks (:mod:`ffeat.reading._png`).
Whatever a decoder raises on malformed data (``struct.error``, ``TypeError``, ...)
becomes an :class:`ImageReadError` naming the input. Decoding takes at most
about 10 bytes per pixel (the decoded image and its RGB array), and a file of up to
:data:`READ_WHOLE` bytes is read into memory whole first (one read instead of the
decoder's and the checks' many small ones). Inputs are never
modified: files are opened read-only and arrays are copied before conversion.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .._checks import check_int
from ._jpeg import gray_fill, missing_data, read_layout, scan_ends_early
from ._png import png_problem

__all__ = ["ImageReadError", "load_image", "DEFAULT_MAX_PIXELS", "DEFAULT_MIN_SIZE"]

#: Largest image decoded by default: Pillow's own warning limit (89,478,485
#: pixels, e.g. 9459 x 9459). Pillow refuses twice that by itself, so larger
#: values also need ``PIL.Image.MAX_IMAGE_PIXELS`` raised.
DEFAULT_MAX_PIXELS = 89_478_485
#: Pillow formats read from files and bytes: all decoded in-process, so no
#: external program ever sees input data (Pillow's EPS plugin runs Ghostscript).
#: Pillow opens JPEG files with several pictures (MPO) as JPEG.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
#: Files up to this size (bytes) are read into memory whole before decoding.
READ_WHOLE = 1 << 25
#: Smallest side accepted by default, in pixels.
DEFAULT_MIN_SIZE = 32
#: Smallest ``min_size`` allowed: every family needs images at least this big.
MIN_SIZE_LIMIT = 12


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


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words: ``"a named pipe (FIFO)"``..."""
    return ("a regular file" if stat.S_ISREG(mode) else
            "a folder" if stat.S_ISDIR(mode) else
            "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")


def _refuse_non_regular(mode: int, source: str) -> None:
    """Raise the error for anything but a regular file."""
    if stat.S_ISREG(mode):
        return
    raise ImageReadError(source, f"is {file_kind(mode)}, not an image file; give regular "
                                 "files only")


class NotRegularFileError(OSError):
    """A path that names a FIFO, socket, device or folder where a regular file is read."""


def open_regular(path) -> BinaryIO:
    """Open the regular file ``path`` for binary reading without ever blocking: anything
    else (a FIFO, which would block ``open()`` until a writer comes, a socket, a device,
    a folder) raises :class:`NotRegularFileError` naming what it is; other failures
    raise the usual ``OSError``. For ffeat's own files (manifests, cards)."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(errno.EINVAL, f"{os.fspath(path)} is {file_kind(mode)}, "
                                                "not a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # swapped after the first look
        os.close(fd)
        raise NotRegularFileError(errno.EINVAL, f"{os.fspath(path)} is {file_kind(mode)}, "
                                                "not a regular file")
    return os.fdopen(fd, "rb")


def open_regular_file(path, source: str) -> BinaryIO:
    """Open a regular file for reading, without ever blocking on anything else.

    A FIFO, socket, device or folder is refused before a byte is read (a FIFO
    would block ``open()`` until a writer comes, a device may never end; devices
    are not even opened). The type is checked again on the opened descriptor,
    so a file swapped after the first check is caught too. Symbolic links are
    followed; a loop or a dangling link is refused.

    Parameters
    ----------
    path : str or os.PathLike
        The file to open.
    source : str
        Its name in error messages.

    Returns
    -------
    BinaryIO
        The file, open for binary reading; the caller closes it.

    Raises
    ------
    ImageReadError
        Naming the file and why it cannot be read.
    """
    try:
        _refuse_non_regular(os.stat(path).st_mode, source)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ImageReadError(source, "dangling symbolic link (its target does not exist)"
                             if os.path.islink(path) else "no such file") from None
    except PermissionError:
        raise ImageReadError(source, "permission denied") from None
    except ImageReadError:
        raise
    except ValueError:  # "embedded null byte": no file can have that name
        raise ImageReadError(source, "the path holds a NUL byte; no file has such a "
                                     "name") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError(source, "symbolic link loop") from None
        raise ImageReadError(source, f"cannot read: {exc.strerror or exc}") from None
    try:
        _refuse_non_regular(os.fstat(fd).st_mode, source)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _stream(obj, source: str) -> BinaryIO:
    """The encoded bytes of a path or a bytes-like input, as a file to read."""
    if isinstance(obj, (str, os.PathLike)):
        fp = open_regular_file(obj, source)
        if os.fstat(fp.fileno()).st_size == 0:
            fp.close()
            raise ImageReadError(source, "file is empty (0 bytes)")
        return fp
    fp = io.BytesIO(bytes(obj))
    if not fp.getbuffer().nbytes:
        raise ImageReadError(source, "no data (0 bytes)")
    return fp


def _identify(fp: BinaryIO) -> str | None:
    """The format Pillow would take data for, from its first 18 bytes only (no
    plugin parses or decodes anything), or None. Each plugin's ``accept`` is
    called guarded (some index short data); a few are told apart further, where
    one format's signature matches another's data (see :func:`_refine`)."""
    fp.seek(0)
    head = fp.read(18)
    prefix = head[:16]
    Image.init()
    for fmt in Image.ID:
        accept = Image.OPEN[fmt][1]
        try:
            accepted = accept is not None and accept(prefix)
        except Exception:  # noqa: BLE001 - an accept() failing on short or odd data
            accepted = False
        if accepted:
            return _refine(fmt, head)
    return _refine(None, head)


#: TGA image types (uncompressed and RLE colour-mapped, truecolour, gray).
_TGA_TYPES = {1, 2, 3, 9, 10, 11}


def _looks_tga(head: bytes) -> bool:
    """Whether an 18-byte header is a plausible TGA header (TGA has no signature)."""
    if len(head) < 18 or head[1] not in (0, 1) or head[2] not in _TGA_TYPES:
        return False
    width, height = int.from_bytes(head[12:14], "little"), int.from_bytes(head[14:16], "little")
    return width > 0 and height > 0 and head[16] in (1, 8, 15, 16, 24, 32)


def _refine(fmt: str | None, head: bytes) -> str | None:
    """Formats whose signature another's data match: XPM files start with
    ``/* XPM */``; an ICO or CUR header declares at least one picture, where a
    TGA header (TGA has no signature: Pillow's TGA plugin has no ``accept``) holds a
    plausible type, size and depth instead."""
    if head.lstrip().startswith(b"/* XPM */"):
        return "XPM"
    if fmt in ("ICO", "CUR", None) and (fmt is None or head[4:6] == b"\0\0") \
            and _looks_tga(head):
        return "TGA"
    return fmt


def _open(fp: BinaryIO, source: str) -> Image.Image:
    """Open encoded image data with one of the in-process decoders of
    :data:`ACCEPTED_FORMATS`, translating failures into clear reasons."""
    try:
        return Image.open(fp, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise _bomb(source, exc) from None
    except UnidentifiedImageError:
        fmt = _identify(fp)
        if fmt is not None and fmt not in ACCEPTED_FORMATS:
            raise ImageReadError(source, f"unsupported format: {fmt} (ffeat reads "
                                         f"{', '.join(ACCEPTED_FORMATS)})") from None
        raise ImageReadError(source, "not an image Pillow can read (unknown format or "
                                     "corrupt header)") from None
    except OSError as exc:
        raise ImageReadError(source, f"cannot open: {exc}") from None


def _guarded(source: str, step, *args):
    """``step(*args)``, with any failure but :class:`ImageReadError` turned into one
    naming ``source``: Pillow's plugins raise many kinds of exception on hostile data
    (``struct.error``, ``ValueError``, ``TypeError``, ``IndexError``, ...), and one
    file must never stop a batch. ``MemoryError`` is reported as such."""
    try:
        return step(*args)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(source, "not enough memory to decode the image") from None
    except RecursionError:
        raise ImageReadError(source, "corrupt image data (nested too deeply)") from None
    except Exception as exc:  # noqa: BLE001 - see above
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ImageReadError(source, f"corrupt or unreadable image data ({detail})") from None


@contextlib.contextmanager
def open_image(obj, source: str) -> Iterator[Image.Image]:
    """Open a path or encoded bytes as :func:`load_image` does, without decoding.

    Only a regular file is opened, without blocking, and only by the in-process
    decoders of :data:`ACCEPTED_FORMATS`: for reading a header (size, format).
    Any failure to open is an :class:`ImageReadError`.

    Parameters
    ----------
    obj : str, os.PathLike or bytes
        The file or the encoded image.
    source : str
        Its name in error messages.

    Yields
    ------
    PIL.Image.Image
        The opened image, closed with its file when the block ends.

    Raises
    ------
    ImageReadError
        Naming the input and why it cannot be opened.
    """
    with _stream(obj, source) as fp:
        im = _guarded(source, _open, fp, source)
        try:
            yield im
        finally:
            with contextlib.suppress(Exception):
                im.close()


def _decode(obj, source: str, max_pixels: int) -> np.ndarray:
    with _stream(obj, source) as fp:
        return _guarded(source, _decode_open, _in_memory(fp, source), source, max_pixels)


def _in_memory(fp: BinaryIO, source: str) -> BinaryIO:
    """A file of at most :data:`READ_WHOLE` bytes read into memory whole (one read,
    where the decoder and the JPEG checks make dozens of small ones: about a tenth of a
    256 px JPEG's decoding time); a larger one, or bytes already in memory, as it is."""
    if isinstance(fp, io.BytesIO) or os.fstat(fp.fileno()).st_size > READ_WHOLE:
        return fp
    try:
        return io.BytesIO(fp.read())
    except OSError as exc:
        raise ImageReadError(source, f"cannot read: {exc.strerror or exc}") from None


def _decode_open(fp: BinaryIO, source: str, max_pixels: int) -> np.ndarray:
    """Decode the image data in ``fp`` (see :func:`_decode`; every call guarded)."""
    with _open(fp, source) as im:
        w, h = im.size
        if w * h > max_pixels:
            raise ImageReadError(
                source, f"image too large: {w}x{h} = {w * h:,} pixels, over max_pixels="
                f"{max_pixels:,}; raise max_pixels if this image is genuine")
        layout = read_layout(fp) if im.format in ("JPEG", "MPO") else None
        if layout is not None and (problem := missing_data(layout)):
            raise ImageReadError(source, problem)
        if im.format == "PNG" and (problem := png_problem(fp)):
            raise ImageReadError(source, problem)
        try:
            im.seek(0)  # first frame of animations
            im.load()
        except Image.DecompressionBombError as exc:
            raise _bomb(source, exc) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageReadError(source, f"truncated or corrupt image data ({exc})") from None
        if layout is not None and gray_fill(im, layout) and scan_ends_early(fp, layout):
            raise ImageReadError(source, "truncated JPEG: its last row of blocks is the "
                                         "uniform gray libjpeg puts where data is missing")
        try:
            ImageOps.exif_transpose(im, in_place=True)  # no copy of the pixels
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageReadError(source, f"corrupt orientation data ({exc})") from None
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
        rgb = _guarded(name, lambda: _pil_to_rgb(ImageOps.exif_transpose(source), name))
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
