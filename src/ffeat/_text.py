"""File names and messages made safe to print, and a lossless form of names for CSV.

Names come from folders an adversary may have filled: a newline in one would
split a row of a table, an escape sequence would act on the analyst's terminal,
bidirectional marks (U+200E, U+200F, U+202E...) and zero-width characters would
show a name other than the file's, bytes that are not UTF-8 (kept by Python as
lone surrogates) would stop a strict UTF-8 stdout half-way, a character the
stdout's encoding lacks (``é`` on ASCII) would stop it too, and a cell starting
with ``=`` would run as a spreadsheet formula. :func:`printable` escapes the
first ones visibly, :func:`spreadsheet_safe` defuses the last, and
:func:`lossless` gives a CSV cell plus a flag from which :func:`unescape` gets
the exact name back.

Escapes: ``\\xNN`` for a character below U+0080 (a newline is ``\\x0a``) and for
a byte that was not UTF-8 (NN from 80 to ff: Python's surrogate escape U+DC80-
U+DCFF), ``\\uNNNN`` and ``\\UNNNNNNNN`` for other characters. What is escaped:
every character :meth:`str.isprintable` refuses (control and format characters,
line and paragraph separators, spaces other than U+0020, surrogates, private-use
and unassigned code points), and every one the output encoding cannot encode.
"""
from __future__ import annotations

import codecs
import re

__all__ = ["printable", "spreadsheet_safe", "lossless", "unescape"]

#: First characters that make a spreadsheet read a cell as a formula (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: An escape written by :func:`lossless`.
_ESCAPE = re.compile(r"\\(?:\\|x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8}))")


def _code(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _encoder(encoding: str | None):
    """Whether a character can be written in ``encoding`` (None: UTF-8, all but
    surrogates, which are escaped anyway)."""
    if not encoding:
        return None
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        name = "ascii"
    if name in ("utf-8", "utf-16", "utf-32", "utf-8-sig"):
        return None
    encode = codecs.getencoder(name)

    def fits(ch: str) -> bool:
        try:
            encode(ch)
        except UnicodeError:
            return False
        return True
    return fits


def _needs(ch: str, fits) -> bool:
    return not ch.isprintable() or (fits is not None and not ch.isascii() and not fits(ch))


def printable(text: str, encoding: str | None = None) -> str:
    """``text`` with every character that could act on a terminal, break a line, hide
    or reorder what is shown, or not be encodable in ``encoding`` escaped.

    Control characters become ``\\xNN`` (a newline ``\\x0a``), bytes that were not
    UTF-8 ``\\xNN`` too, other invisible, reordering or unencodable characters
    ``\\uNNNN``; everything else is kept as it is. Meant for reading, not for
    getting the name back (a backslash is not escaped): see :func:`lossless`.

    Parameters
    ----------
    text : str
        A file name, a reason, a message.
    encoding : str, optional
        The encoding the text will be written in (``sys.stdout.encoding``); None:
        UTF-8.

    Returns
    -------
    str
        One line that the given encoding can write with ``errors="strict"``.
    """
    fits = _encoder(encoding)
    if text.isprintable() and (fits is None or text.isascii()):
        return text
    return "".join(_code(ch) if _needs(ch, fits) else ch for ch in text)


def spreadsheet_safe(cell: str) -> str:
    """A CSV cell that a spreadsheet shows as text: prefixed with ``'`` when it starts
    with ``=``, ``+``, ``-``, ``@``, tab or carriage return (the OWASP rule)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def lossless(name: str, encoding: str | None = None) -> tuple[str, bool]:
    """A CSV cell for ``name`` that maps back to it exactly, and whether it is escaped.

    A name that :func:`printable` leaves alone (and that starts with no formula
    character) is its own cell, flag False. Any other is escaped, flag True:
    backslashes doubled, every character :func:`printable` escapes written as an
    escape, a leading ``'`` as ``\\x27``; then a cell starting with a formula
    character is prefixed with ``'`` (:func:`spreadsheet_safe`).
    :func:`unescape` reverses it.

    Returns
    -------
    (str, bool)
        The cell, and whether :func:`unescape` must be applied to it.
    """
    fits = _encoder(encoding)
    if not name.startswith(_FORMULA_START) and name.isprintable() \
            and (fits is None or name.isascii()):
        return name, False
    cell = "".join("\\\\" if ch == "\\" else _code(ch) if _needs(ch, fits) else ch
                   for ch in name)
    if cell.startswith("'"):
        cell = "\\x27" + cell[1:]
    return spreadsheet_safe(cell), True


def _unescaped(match: re.Match) -> str:
    byte, short, long = match.groups()
    if byte is not None:
        code = int(byte, 16)
        return chr(code if code < 0x80 else 0xDC00 + code)
    if short is not None or long is not None:
        return chr(int(short or long, 16))
    return "\\"


def unescape(cell: str, escaped: bool = True) -> str:
    """The exact name a :func:`lossless` cell stands for (``escaped``: its flag).
    Bytes that were not UTF-8 come back as Python's surrogate escapes, so
    ``os.fsencode`` gives the original bytes."""
    if not escaped:
        return cell
    if cell.startswith("'"):
        cell = cell[1:]
    return _ESCAPE.sub(_unescaped, cell)
