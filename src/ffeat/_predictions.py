"""Prediction rows: one per input, errors included, and their text cells.

Under a face policy (:mod:`ffeat.faces`) a row also carries the box
``(x, y, w, h)`` of the face it was scored on (the most fake one) and ``faces``,
the boxes of every face found, the most fake first: ``[]`` when none was found
and the whole image was scored (``"auto"``); None (blank cells) under ``"off"``.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._calibration import labels_of, probability
from ._reading import ImageError, match_errors
from ._scoring import NO_SCORE
from ._sources import Item
from ._text import lossless, printable, spreadsheet_safe

#: Columns of a prediction table, in order.
COLUMNS = ("path", "prob_fake", "label", "x", "y", "w", "h", "faces", "error")
#: Columns of a prediction CSV: :data:`COLUMNS`, then ``path_escaped``: 1 where the path
#: cell is the escaped form of the file name (``ffeat._text.unescape`` gives it back
#: exactly), 0 where it is the name itself.
CSV_COLUMNS = (*COLUMNS, "path_escaped")
#: The columns of the scored face's box.
_BOX = ("x", "y", "w", "h")


def _face_cells(boxes: list | None) -> dict:
    """The box columns and ``faces`` of a row scored on ``boxes`` (see the module)."""
    if boxes is None:
        return {**dict.fromkeys(_BOX), "faces": None}
    found = [list(b) for b in boxes if b is not None]
    return {**dict(zip(_BOX, found[0] if found else [None] * 4)), "faces": found}


def prediction_rows(items: list[Item], scores: np.ndarray, errors: list[ImageError],
                    threshold: float, boxes: list | None = None, *, detector=None,
                    families: dict | None = None) -> Iterator[dict]:
    """One dict per input (keys :data:`COLUMNS`), in input order, errors included.

    Parameters
    ----------
    items : list of Item
        The inputs scored.
    scores : ndarray
        Log-odds of fake per input, NaN where it has no verdict.
    errors : list of ImageError
        Records of the inputs that could not be read, in input order (as
        :func:`~ffeat._scoring.score_items` returns them).
    threshold : float
        Probability of fake at and above which the label is ``"fake"``.
    boxes : list, optional
        Per input, its face boxes as ``ffeat._scoring.score_items`` gives them
        (None: the whole image, no face policy).
    detector : Detector or SavedDetector, optional
        Whose calibration gives ``prob_fake`` and whose inconclusive band makes a
        label ``"inconclusive"`` (None: the logistic probability, no band).
    families : dict, optional
        Per family name, its log-odds per input (``ffeat._scoring.explain_items``):
        adds a ``families`` dict to each scored row.

    A score that is NaN without a recorded error (the model gave no number)
    is an error row too, never a label.
    """
    boxes = [None] * len(items) if boxes is None else boxes
    failed = np.isnan(scores)
    proba = probability(detector, scores)
    labels = labels_of(detector, proba, threshold)
    for i, (item, record, found) in enumerate(zip(items, match_errors(items, failed, errors),
                                                  boxes)):
        if failed[i]:
            row = {"path": item.name, "prob_fake": None, "label": None, **_face_cells(None),
                   "error": NO_SCORE if record is None else record.reason}
        else:
            row = {"path": item.name, "prob_fake": float(proba[i]), "label": labels[i],
                   **_face_cells(found), "error": None}
        if families is not None:
            row["families"] = None if failed[i] else {k: float(v[i])
                                                      for k, v in families.items()}
        yield row


def _faces_text(faces: list | None) -> str:
    """``faces`` as text: boxes ``x,y,w,h`` joined by ``;``, ``none``, or blank."""
    if faces is None:
        return ""
    return ";".join(",".join(map(str, b)) for b in faces) if faces else "none"


def cells(row: dict, encoding: str | None = None) -> list[str]:
    """The text of one row's cells: probability to 4 decimals, blanks for None, the
    path and the reason :func:`~ffeat._text.printable` (one line that ``encoding``,
    the output's, can write; None: UTF-8)."""
    return [printable(row["path"], encoding),
            "" if row["prob_fake"] is None else f"{row['prob_fake']:.4f}",
            row["label"] or "", *("" if row[k] is None else str(row[k]) for k in _BOX),
            _faces_text(row["faces"]), printable(row["error"] or "", encoding)]


def csv_cells(row: dict, encoding: str | None = None) -> list[str]:
    """The cells of one CSV row (:data:`CSV_COLUMNS`): the path in the lossless form of
    :func:`~ffeat._text.lossless` with its ``path_escaped`` flag last, the reason (text
    from outside) :func:`~ffeat._text.printable` and
    :func:`~ffeat._text.spreadsheet_safe`; the other cells are ffeat's own numbers
    (a box may start left of or above the image: a negative number)."""
    text = cells(row, encoding)
    path, escaped = lossless(row["path"], encoding)
    return [path, *text[1:-1], spreadsheet_safe(text[-1]), "1" if escaped else "0"]
