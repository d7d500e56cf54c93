"""Prediction rows: one per input, errors included, and their text cells."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._models import sigmoid
from ._reading import ImageError, match_errors
from ._scoring import NO_SCORE
from ._sources import Item
from ._text import printable, spreadsheet_safe

#: Columns of a prediction table, in order.
COLUMNS = ("path", "prob_fake", "label", "error")


def prediction_rows(items: list[Item], scores: np.ndarray, errors: list[ImageError],
                    threshold: float) -> Iterator[dict]:
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

    A score that is NaN without a recorded error (the model gave no number)
    is an error row too, never a label.
    """
    failed = np.isnan(scores)
    for item, score, record in zip(items, scores, match_errors(items, failed, errors)):
        if np.isnan(score):
            yield {"path": item.name, "prob_fake": None, "label": None,
                   "error": NO_SCORE if record is None else record.reason}
        else:
            p = float(sigmoid(score))
            yield {"path": item.name, "prob_fake": p,
                   "label": "fake" if p >= threshold else "real", "error": None}


def cells(row: dict) -> list[str]:
    """The text of one row's cells: probability to 4 decimals, blanks for None, the
    path and the reason :func:`~ffeat._text.printable` (one line, any encoding)."""
    return [printable(row["path"]),
            "" if row["prob_fake"] is None else f"{row['prob_fake']:.4f}",
            row["label"] or "", printable(row["error"] or "")]


def csv_cells(row: dict) -> list[str]:
    """:func:`cells` for a CSV file, each one :func:`~ffeat._text.spreadsheet_safe`."""
    return [spreadsheet_safe(c) for c in cells(row)]
