"""Prediction rows: one per input, errors included, and their text cells."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._models import sigmoid
from ._sources import Item
from ._text import printable, spreadsheet_safe
from .extraction import ImageError

#: Columns of a prediction table, in order.
COLUMNS = ("path", "prob_fake", "label", "error")


def prediction_rows(items: list[Item], scores: np.ndarray, errors: dict[int, ImageError],
                    threshold: float) -> Iterator[dict]:
    """One dict per input (keys :data:`COLUMNS`), in input order, errors included.

    Parameters
    ----------
    items : list of Item
        The inputs scored.
    scores : ndarray
        Log-odds of fake per input (any value where an error is recorded).
    errors : dict
        ``{position: ImageError}`` of the inputs that could not be read.
    threshold : float
        Probability of fake at and above which the label is ``"fake"``.

    A score that is NaN without a recorded error (the model gave no number)
    is an error row too, never a label.
    """
    for position, (item, score) in enumerate(zip(items, scores)):
        if position in errors:
            yield {"path": item.name, "prob_fake": None, "label": None,
                   "error": errors[position].reason}
        elif np.isnan(score):
            yield {"path": item.name, "prob_fake": None, "label": None,
                   "error": "the model gave no score (NaN) for this image"}
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
