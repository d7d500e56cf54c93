"""Prediction rows: one per input, errors included, and their text cells.

Under a face policy (:mod:`ffeat.reading.faces`) a row also carries the box
``(x, y, w, h)`` of the face it was scored on (the most fake one) and ``faces``,
the boxes of every face scored, the most fake first: ``[]`` when none was found
and the whole image was scored (``"auto"``); None (blank cells) under ``"off"``.
Under ``"align"`` it carries the scored face's ``quad`` too: FFHQ's oriented square
the face was cut from, four ``(x, y)`` corners (top left, bottom left, bottom right,
top right of the upright face) in pixels of the image; a cell writes them
``x,y;x,y;x,y;x,y``.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._text import lossless, printable, spreadsheet_safe
from ._calibration import labels_of, probability
from ._scoring import Scored

#: Columns of a prediction table, in order.
COLUMNS = ("path", "prob_fake", "label", "x", "y", "w", "h", "faces", "quad", "error")
#: Columns of a prediction CSV: :data:`COLUMNS`, then ``path_escaped``: 1 where the path
#: cell is the escaped form of the file name (``ffeat._text.unescape`` gives it back
#: exactly), 0 where it is the name itself.
CSV_COLUMNS = (*COLUMNS, "path_escaped")
#: The columns of the scored face's box.
_BOX = ("x", "y", "w", "h")


def _face_cells(faces) -> dict:
    """The box columns and ``faces`` of a row scored on ``faces`` (see the module)."""
    if faces is None:
        return {**dict.fromkeys(_BOX), "faces": None, "quad": None}
    found = [list(f.box) for f in faces if f.box is not None]
    quad = faces[0].quad if faces else None
    return {**dict(zip(_BOX, found[0] if found else [None] * 4)), "faces": found,
            "quad": None if quad is None else [list(corner) for corner in quad]}


def prediction_rows(records: list[Scored], threshold: float, *, detector=None,
                    families: list[str] | None = None,
                    experts: list[str] | None = None) -> Iterator[dict]:
    """One dict per scoring record (keys :data:`COLUMNS`), in input order, errors included.

    Parameters
    ----------
    records : list of Scored
        The inputs scored (``ffeat.models._scoring.iter_scored``).
    threshold : float
        Probability of fake at and above which the label is ``"fake"``.
    detector : Detector or SavedDetector, optional
        Whose calibration gives ``prob_fake`` and whose inconclusive band makes a
        label ``"inconclusive"`` (None: the logistic probability, no band).
    families : list of str, optional
        The detector's family names, for records scored with ``explain``: adds a
        ``families`` dict (name to log-odds) to each row.
    experts : list of str, optional
        An expert detector's expert names: adds ``generator`` (the expert with the
        highest probability) and ``experts`` (name to calibrated probability) to each
        row (None where unscored).
    """
    z = np.array([r.log_odds for r in records], dtype=np.float64)
    proba = probability(detector, z)
    labels = labels_of(detector, proba, threshold)
    for r, p, label in zip(records, proba, labels):
        if r.error is not None:
            row = {"path": r.item.name, "prob_fake": None, "label": None, **_face_cells(None),
                   "error": r.error.reason}
        else:
            row = {"path": r.item.name, "prob_fake": float(p), "label": label,
                   **_face_cells(r.faces), "error": None}
        if families is not None:
            row["families"] = None if r.error is not None else dict(
                zip(families, map(float, r.families)))
        if experts is not None:
            scored = r.error is None and r.experts is not None
            row["generator"] = experts[int(np.argmax(r.experts))] if scored else None
            row["experts"] = dict(zip(experts, map(float, r.experts))) if scored else None
        yield row


def _faces_text(faces: list | None) -> str:
    """``faces`` as text: boxes ``x,y,w,h`` joined by ``;``, ``none``, or blank."""
    if faces is None:
        return ""
    return ";".join(",".join(map(str, b)) for b in faces) if faces else "none"


def _quad_text(quad: list | None) -> str:
    """``quad`` as text: corners ``x,y`` joined by ``;``, or blank."""
    return "" if quad is None else ";".join(f"{x:g},{y:g}" for x, y in quad)


def cells(row: dict, encoding: str | None = None) -> list[str]:
    """The text of one row's cells: probability to 4 decimals, blanks for None, the
    path and the reason :func:`~ffeat._text.printable` (one line that ``encoding``,
    the output's, can write; None: UTF-8)."""
    return [printable(row["path"], encoding),
            "" if row["prob_fake"] is None else f"{row['prob_fake']:.4f}",
            row["label"] or "", *("" if row[k] is None else str(row[k]) for k in _BOX),
            _faces_text(row["faces"]), _quad_text(row["quad"]),
            printable(row["error"] or "", encoding)]


def expert_columns(experts: list[str]) -> list[str]:
    """The columns an expert model's rows add: ``generator``, then ``prob_<expert>`` per
    expert (none for another model)."""
    return ["generator", *(f"prob_{n}" for n in experts)] if experts else []


def expert_cells(row: dict, experts: list[str]) -> list[str]:
    """The cells of :func:`expert_columns`: the generator, then each expert's probability
    to 4 decimals (blanks where unscored); nothing for another model."""
    if not experts:
        return []
    found = row.get("experts")
    return [row.get("generator") or "",
            *("" if found is None else f"{found[n]:.4f}" for n in experts)]


def csv_columns(extra: list[str] = ()) -> list[str]:
    """The header of a prediction CSV: :data:`CSV_COLUMNS` with ``extra`` columns
    before the reason."""
    return [*COLUMNS[:-1], *extra, *CSV_COLUMNS[-2:]]


def csv_cells(row: dict, encoding: str | None = None, extra: list[str] = ()) -> list[str]:
    """The cells of one CSV row (:func:`csv_columns`, ``extra`` cells before the reason):
    the path in the lossless form of :func:`~ffeat._text.lossless` with its
    ``path_escaped`` flag last, the reason (text from outside)
    :func:`~ffeat._text.printable` and :func:`~ffeat._text.spreadsheet_safe`; the other
    cells are ffeat's own numbers (a box may start left of or above the image: a
    negative number)."""
    text = cells(row, encoding)
    path, escaped = lossless(row["path"], encoding)
    return [path, *text[1:-1], *extra, spreadsheet_safe(text[-1]), "1" if escaped else "0"]
