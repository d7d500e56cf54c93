"""Telling a PNG whose compressed data cannot hold its declared image, from its
chunks alone, before anything is decoded.

Deflate expands at most about 1032 times (a 258-byte match coded in 2 bits), so
the IDAT chunks of a PNG must hold at least ``raw / 1032`` bytes, ``raw`` being
the bytes of its filtered rows (at least ``width * height * bits / 8``). A 107-byte
file declaring 9400 x 9400 pixels is refused from its header, without allocating
them. A PNG whose data inflate to fewer bytes than its declared rows need (a cut
file, or one whose zlib stream ends early: Pillow fills the missing rows with
black and reports nothing) is refused too; counting them inflates the data once
more, in 1 MB blocks, keeping none of it.
"""
from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

__all__ = ["png_problem"]

#: Most a deflate stream expands (bytes out per byte in), rounded up.
MAX_DEFLATE_RATIO = 1032
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Channels of each PNG colour type.
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Bytes read and inflated at a time.
_BLOCK = 1 << 20
#: Most chunks walked (a PNG has a handful; a file of millions of empty chunks is
#: not walked to its end: the check then passes and the decoder decides).
_MAX_CHUNKS = 100_000


def _idat_chunks(fp: BinaryIO, size: int) -> list[tuple[int, int]] | None:
    """``(offset, length)`` of the IDAT chunks' data of the PNG in ``fp`` (of ``size``
    bytes), None when its chunks cannot be followed."""
    pos, found = 8 + 25, []  # signature, IHDR
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > size:
            return found
        fp.seek(pos)
        length, kind = struct.unpack(">I4s", fp.read(8))
        if kind == b"IDAT":
            found.append((pos + 8, min(length, max(size - pos - 8, 0))))
        elif kind == b"IEND":
            return found
        pos += 12 + length
    return None


#: Adam7 passes: first column, first row, column step, row step.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))


def _filtered_bytes(width: int, height: int, bits: int, interlaced: bool) -> int:
    """Bytes of the filtered rows of an image: each row its pixels' bytes and one
    filter byte, for every pass of an interlaced image."""
    if not interlaced:
        return height * (1 + -(-width * bits // 8))
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        w, h = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if w > 0 and h > 0:
            total += h * (1 + -(-w * bits // 8))
    return total


def _inflated_bytes(fp: BinaryIO, chunks: list[tuple[int, int]], wanted: int) -> int:
    """How many bytes the IDAT data inflate to, up to ``wanted`` (in blocks: memory
    stays flat); fewer when the stream ends early or is corrupt."""
    inflate = zlib.decompressobj()
    total = 0
    try:
        for offset, length in chunks:
            fp.seek(offset)
            while length > 0 and total < wanted:
                data = fp.read(min(length, _BLOCK))
                if not data:
                    return total
                length -= len(data)
                while data and total < wanted:
                    total += len(inflate.decompress(data, _BLOCK))
                    data = inflate.unconsumed_tail
                if inflate.eof:
                    return total
    except zlib.error:
        return total
    return total


def png_problem(fp: BinaryIO) -> str | None:
    """Why the PNG in ``fp`` cannot hold its declared image, or None (also for data
    that is not a PNG whose header can be read: the decoder then decides)."""
    fp.seek(0)
    head = fp.read(8 + 25)
    if len(head) < 33 or head[:8] != _SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    channels = _CHANNELS.get(colour)
    if channels is None or depth not in (1, 2, 4, 8, 16):
        return None
    size = fp.seek(0, 2)
    chunks = _idat_chunks(fp, size)
    if chunks is None:
        return None
    idat = sum(length for _, length in chunks)
    raw = _filtered_bytes(width, height, channels * depth, interlace == 1)
    if idat * MAX_DEFLATE_RATIO < raw:
        return (f"truncated PNG: {width}x{height} pixels declared need at least "
                f"{-(-raw // MAX_DEFLATE_RATIO):,} bytes of compressed data, the file has "
                f"{idat:,}")
    inflated = _inflated_bytes(fp, chunks, raw)
    if inflated < raw:
        return (f"truncated or corrupt PNG: its compressed data hold {inflated:,} of the "
                f"{raw:,} bytes its {width}x{height} pixels need (rows are missing)")
    return None
