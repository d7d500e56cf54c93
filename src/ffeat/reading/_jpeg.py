"""Telling a JPEG whose coded data ends before its declared image does.

libjpeg decodes such a file without complaint when an end marker follows the
cut: it fills every block it has no data for with zero coefficients, which is
uniform mid-gray (128) in a sequential JPEG, and leaves the coefficients of
missing scans at zero in a progressive one. Pillow then reports no error. Three
checks catch it:

* before decoding, from the marker segments alone: Huffman-coded data spends at
  least one bit on every 8x8 block of every component, so coded data shorter
  than ``blocks / 8`` bytes cannot hold the declared image (a 10 kB file that
  claims 9000 x 9000 pixels is refused without allocating them);
* before decoding, a progressive JPEG whose scans do not send every coefficient
  (DC and AC 1-63) of every component down to its last bit;
* after decoding a sequential JPEG, a last row of blocks that is exactly 128 in
  every channel across the full width: libjpeg's fill for missing data, or a
  genuine gray row (letterbox bars, padding). The two are told apart by decoding
  once more with filler bytes put where the last scan's data end: a scan that ended
  early decodes them into its missing blocks, so the last row changes; a complete
  one ignores them (libjpeg skips data after the last block), so it stays gray.

A cut inside the last row of blocks, or inside the last scan of a progressive
JPEG, is not seen; an arithmetic-coded JPEG is only checked for missing scans.
"""
from __future__ import annotations

import io
import re
import struct
from typing import BinaryIO, NamedTuple

import numpy as np
from PIL import Image

__all__ = ["JpegLayout", "read_layout", "missing_data", "gray_fill", "scan_ends_early"]

#: Start-of-frame markers of Huffman-coded frames (sequential and progressive).
_HUFFMAN_FRAMES = {0xC0, 0xC1, 0xC2}
_PROGRESSIVE_FRAMES = {0xC2, 0xC6, 0xCA, 0xCE}
_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
#: A marker inside entropy-coded data: 0xFF then anything but a stuffed 0x00, a
#: restart marker (0xD0-0xD7) or a fill byte.
_MARKER = re.compile(rb"\xff[\xc0-\xcf\xd8-\xfe]")
#: Bytes of coded data searched for the next marker at a time.
_CHUNK = 1 << 20
#: Rows checked for libjpeg's mid-gray fill: one row of 8x8 blocks.
_FILL_ROWS = 8


class JpegLayout(NamedTuple):
    """What the marker segments of a JPEG declare, and how much coded data it has.

    Attributes
    ----------
    frame : int
        The start-of-frame marker (0xC0 baseline ... 0xCF).
    blocks : int
        8x8 blocks over all components at the declared size.
    coded_bytes : int
        Bytes from the first scan's data to the end of the file.
    unsent : int
        Coefficients of the frame's components whose last bit no scan sends (0
        for a complete file; counted for progressive JPEGs).
    scan_end : int
        Where the last scan's coded data end: the offset of the marker after them,
        or the file's size.
    """

    frame: int
    blocks: int
    coded_bytes: int
    unsent: int
    scan_end: int = 0


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _frame(segment) -> tuple[int, list[int]]:
    """8x8 blocks over all components of a start-of-frame segment, and their ids."""
    height, width, n = struct.unpack(">HHB", segment[1:6])
    ids = [segment[6 + 3 * i] for i in range(n)]
    sampling = [(segment[7 + 3 * i] >> 4, segment[7 + 3 * i] & 15) for i in range(n)]
    hmax = max((h for h, _ in sampling), default=1) or 1
    vmax = max((v for _, v in sampling), default=1) or 1
    blocks = sum(_ceil(_ceil(width * h, hmax), 8) * _ceil(_ceil(height * v, vmax), 8)
                 for h, v in sampling)
    return blocks, ids


def read_layout(fp: BinaryIO) -> JpegLayout | None:
    """The layout of the JPEG in ``fp``, None when its marker structure cannot be
    followed (the decoder then reports the problem). Reads the segments and
    searches the coded data a chunk at a time: memory stays flat for any file."""
    try:
        return _walk(fp)
    except (struct.error, IndexError, ValueError):
        return None


def _read_at(fp: BinaryIO, pos: int, n: int) -> bytes:
    fp.seek(pos)
    return fp.read(n)


def _next_marker(fp: BinaryIO, pos: int) -> int:
    """Where the coded data from ``pos`` ends: its next marker, or the end of the file."""
    while True:
        chunk = _read_at(fp, pos, _CHUNK + 1)  # one byte more: a marker across the seam
        found = _MARKER.search(chunk)
        if found:
            return pos + found.start()
        if len(chunk) <= _CHUNK:
            return pos + len(chunk)
        pos += _CHUNK


def _walk(fp: BinaryIO) -> JpegLayout | None:
    """Follow the marker segments of a JPEG, skipping over the coded data of each scan."""
    if _read_at(fp, 0, 2) != b"\xff\xd8":
        return None
    size = fp.seek(0, io.SEEK_END)
    frame, blocks, ids, first_scan, scans, scan_end = None, 0, [], None, [], 0
    pos = 2
    while pos + 4 <= size:
        head = _read_at(fp, pos, 4)
        if head[0] != 0xFF:
            return None
        marker = head[1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            break
        length = struct.unpack(">H", head[2:])[0]
        if length < 2:
            return None
        segment = fp.read(length - 2)
        pos += 2 + length
        if marker in _FRAMES:
            frame = marker
            blocks, ids = _frame(segment)
        elif marker == 0xDA:  # start of scan: components, then Ss, Se, Ah/Al
            first_scan = pos if first_scan is None else first_scan
            n = segment[0]
            ss, se, ahal = segment[1 + 2 * n:4 + 2 * n]
            scans.append(([segment[1 + 2 * i] for i in range(n)], ss, se, ahal))
            pos = scan_end = _next_marker(fp, pos)
    if frame is None or first_scan is None:
        return None
    unsent = 0 if frame not in _PROGRESSIVE_FRAMES else _unsent(scans, ids)
    return JpegLayout(frame, blocks, size - first_scan, unsent, scan_end)


def _unsent(scans, ids) -> int:
    """Coefficients of the components ``ids`` whose last bit no scan sends; ``scans``:
    ``(component ids, Ss, Se, Ah/Al)`` of each (counted for progressive frames only, at
    the end: the bookkeeping costs more than the rest of the walk)."""
    sent: dict = {}
    for components, ss, se, ahal in scans:
        for c in components:  # the lowest bit sent so far of each coefficient
            low = sent.setdefault(c, {})
            for k in range(ss, min(se, 63) + 1):
                low[k] = min(low.get(k, 99), ahal & 15)
    return sum(sum(sent.get(c, {}).get(k, 99) > 0 for k in range(64)) for c in ids)


def missing_data(layout: JpegLayout) -> str | None:
    """Why the coded data cannot hold the declared image, or None (see the module notes)."""
    if layout.frame in _HUFFMAN_FRAMES and layout.coded_bytes * 8 < layout.blocks:
        return (f"truncated JPEG: {layout.blocks:,} blocks declared need at least "
                f"{_ceil(layout.blocks, 8):,} bytes of coded data, the file has "
                f"{layout.coded_bytes:,}")
    if layout.unsent:
        return (f"truncated JPEG: its scans end before every coefficient is sent in full "
                f"({layout.unsent} coefficients of its components are missing bits)")
    return None


def gray_fill(im: Image.Image, layout: JpegLayout) -> bool:
    """Whether a decoded sequential JPEG ends in libjpeg's mid-gray fill for missing
    data: its last row of blocks exactly 128 in every channel, across the full width."""
    if layout.frame in _PROGRESSIVE_FRAMES or im.mode not in ("L", "RGB"):
        return False
    w, h = im.size
    if h < _FILL_ROWS:
        return False
    return bool((np.asarray(im.crop((0, h - _FILL_ROWS, w, h))) == 128).all())


#: Seed of the filler bytes of :func:`scan_ends_early` (any bytes but 0xFF do).
_FILLER_SEED = 29
#: Filler bytes per declared 8x8 block: random bytes decode at about 7 bytes a block
#: with libjpeg's standard tables, so 32 cover every block a scan may lack.
_FILLER_PER_BLOCK = 32


def scan_ends_early(fp: BinaryIO, layout: JpegLayout) -> bool:
    """Whether the last scan of a JPEG whose last row of blocks came out gray
    (:func:`gray_fill`) ends before its last block: decoded again with filler bytes
    (32 per declared 8x8 block, at least 4 kB) inserted where its coded data end, a
    complete scan ignores them and keeps its gray row, one that ended early decodes
    them into the blocks it lacked. Costs one more decode (and the filler: 32 bytes a
    block, 0.5 bytes a pixel), only for images ending in gray."""
    size = fp.seek(0, io.SEEK_END)
    if not 0 < layout.scan_end <= size:
        return True
    filler = np.random.default_rng(_FILLER_SEED).integers(
        0, 0xFF, max(_FILLER_PER_BLOCK * layout.blocks, 4096), dtype=np.uint8).tobytes()
    data = _read_at(fp, 0, layout.scan_end) + filler + _read_at(fp, layout.scan_end,
                                                                 size - layout.scan_end)
    if not data.endswith(b"\xff\xd9"):
        data += b"\xff\xd9"
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as again:
            again.load()
            return not gray_fill(again, layout)
    except Exception:  # noqa: BLE001 - a decoder failing on the filler: data were missing
        return True
