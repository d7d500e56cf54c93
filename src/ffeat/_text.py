"""File names and messages made safe to print.

Names come from folders an adversary may have filled: a newline in one would
split a row of a table, an escape sequence would act on the analyst's terminal,
bytes that are not UTF-8 (kept by Python as lone surrogates) would stop a
strict UTF-8 stdout half-way, and a cell starting with ``=`` would run as a
spreadsheet formula. :func:`printable` escapes the first three visibly,
:func:`spreadsheet_safe` defuses the last.
"""
from __future__ import annotations

import re

__all__ = ["printable", "spreadsheet_safe"]

#: Control characters (C0, DEL, C1), line and paragraph separators, bidirectional
#: overrides and isolates (which reorder what a terminal shows), lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                     "\ud800-\udfff]")
#: First characters that make a spreadsheet read a cell as a formula (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character that could act on a terminal or break a line escaped.

    Control characters become ``\\xNN`` (a newline ``\\x0a``), bytes that were not
    UTF-8 ``\\xNN`` too, other invisible or reordering characters ``\\uNNNN``;
    everything else is kept as it is.

    Parameters
    ----------
    text : str
        A file name, a reason, a message.

    Returns
    -------
    str
        One line that any encoding of stdout can print (as ``errors="strict"`` UTF-8).
    """
    return _UNSAFE.sub(_escape, text)


def spreadsheet_safe(cell: str) -> str:
    """A CSV cell that a spreadsheet shows as text: prefixed with ``'`` when it starts
    with ``=``, ``+``, ``-``, ``@``, tab or carriage return (the OWASP rule)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell
