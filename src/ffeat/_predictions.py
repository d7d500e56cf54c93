"""Prediction rows: one per input, errors included, and their text cells."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._models import sigmoid
from ._sources import Item
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
    """
    for position, (item, score) in enumerate(zip(items, scores)):
        if position in errors:
            yield {"path": item.name, "prob_fake": None, "label": None,
                   "error": errors[position].reason}
        else:
            p = float(sigmoid(score))
            yield {"path": item.name, "prob_fake": p,
                   "label": "fake" if p >= threshold else "real", "error": None}


def cells(row: dict) -> list[str]:
    """The text of one row's cells: probability to 4 decimals, blanks for None."""
    return [row["path"], "" if row["prob_fake"] is None else f"{row['prob_fake']:.4f}",
            row["label"] or "", row["error"] or ""]
