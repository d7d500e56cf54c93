"""Scoring images with a fitted model: feature rows, then the model's log-odds.

Nothing here imports scikit-learn: a fitted feature model is plain arrays
(``ffeat._models``), so scoring a saved model (``ffeat predict``, the shards of
:func:`ffeat.predict_to`) starts fast. :class:`~ffeat.Detector` scores through
the same functions.
"""
from __future__ import annotations

import numpy as np

from ._reading import ImageError, feature_rows, iter_rows, match_errors
from ._sources import Item
from .features import n_columns, resolve_features

__all__ = ["score_items", "explain_items", "SavedDetector", "NO_SCORE"]

#: The reason recorded for an image that was read but given no score (NaN).
NO_SCORE = "the model gave no score (NaN) for this image"


def _score_faces(model, families, items: list[Item], detector, progress: bool | None,
                 explain):
    """Log-odds, error records, boxes and (with ``explain``, a function of feature rows)
    per-family log-odds under a face policy: every face scored, an item's score its
    most fake face's, its boxes the most fake first."""
    scores = np.full(len(items), np.nan)
    shares = np.full((len(items), len(families)), np.nan) if explain else None
    boxes: list = [None] * len(items)
    errors = []
    for position, (_, found) in enumerate(iter_rows(
            items, families, jobs=detector.jobs, progress=progress, cache=False,
            backend=detector.backend, faces=detector.faces, frame=detector.frame)):
        if isinstance(found, ImageError):
            errors.append(found)
            continue
        face_scores = model.decision_function(found.rows)
        order = np.argsort(-face_scores, kind="stable")
        scores[position] = face_scores[order[0]]
        boxes[position] = [found.boxes[i] for i in order]
        if explain:
            shares[position] = explain(found.rows[order[:1]])[0]
    return scores, errors, boxes, shares


def score_items(detector, items: list[Item], *,
                progress: bool | None = False) -> tuple[np.ndarray, list[ImageError], list]:
    """Log-odds of fake per item from a fitted detector's ``model_``, the error
    records in input order, and the face boxes of each item.

    Parameters
    ----------
    detector : Detector or SavedDetector
        Fitted; its ``features``, ``jobs``, ``cache``, ``backend``, ``faces``,
        ``frame`` and ``batch_size`` say how the items are read.
    items : list of Item
    progress : bool or None, optional

    Returns
    -------
    scores : ndarray of float64, shape (n_items,)
        NaN exactly where ``errors`` holds a record for the item: unreadable, or
        (recorded as such) a model that gave no number.
    errors : list of ImageError
    boxes : list
        Per item: None under ``faces="off"``; else the boxes of every face found,
        the most fake first (the item's score is that face's), ``[None]`` where
        none was found and the whole image was scored (``"auto"``).
    """
    scores, errors, boxes, _ = _score(detector, items, progress, explain=False)
    return scores, errors, boxes


def explain_items(detector, items: list[Item], *, progress: bool | None = False):
    """:func:`score_items`, and each feature family's share of every item's log-odds.

    Returns
    -------
    scores, errors, boxes
        As :func:`score_items`.
    families : dict of str to ndarray
        Per family name (in the detector's order), its log-odds per item (NaN where
        the item has no score): the sum of coefficient times standardised feature
        over the family's columns, so the score is the model's intercept plus their
        sum. Log-odds before calibration.

    Raises
    ------
    ValueError
        For a model that is not linear in its features (``hgb``, the CNN).
    """
    scores, errors, boxes, shares = _score(detector, items, progress, explain=True)
    names = [f.name for f in resolve_features(detector.features)]
    return scores, errors, boxes, dict(zip(names, shares.T))


def _score(detector, items: list[Item], progress: bool | None, *, explain: bool):
    """Scores, errors, boxes, and with ``explain`` the per-family log-odds (else None)."""
    model = detector.model_
    families = resolve_features(detector.features) if model.kind != "cnn" else ()
    explainer = None
    if explain:
        if not hasattr(model, "contributions"):
            raise ValueError(f"per-family log-odds are available for the linear classifiers "
                             f"(stacked, logistic), not for a {model.kind} model")
        blocks = tuple(n_columns(f) for f in families)
        explainer = lambda rows: model.contributions(rows, blocks)  # noqa: E731
    boxes: list = [None] * len(items)
    shares = None
    if model.kind == "cnn":
        scores, errors = model.score_items(items, jobs=detector.jobs,
                                           batch_size=detector.batch_size, progress=progress)
    elif detector.faces != "off":
        scores, errors, boxes, shares = _score_faces(model, families, items, detector,
                                                     progress, explainer)
    else:
        F, errors = feature_rows(items, families, jobs=detector.jobs,
                                 cache=detector.cache, backend=detector.backend,
                                 progress=progress, frame=detector.frame)
        read = ~np.isnan(F).any(axis=1)
        scores = np.full(len(F), np.nan)
        if explain:
            shares = np.full((len(F), len(families)), np.nan)
        if read.any():
            scores[read] = model.decision_function(F[read])
            if explain:
                shares[read] = explainer(F[read])
    failed = np.isnan(scores)
    if shares is not None:
        shares[failed] = np.nan
    return scores, [record or ImageError(item.name, NO_SCORE) for item, record, bad
                    in zip(items, match_errors(items, failed, errors), failed) if bad], \
        boxes, shares


class SavedDetector:
    """A saved detector restored for scoring only, without scikit-learn.

    What ``ffeat predict`` loads (``_persist.load(SavedDetector, path)``, as
    :meth:`ffeat.Detector.load` does for a full estimator): the feature
    families, the fitted ``model_`` and the options scoring uses. The training
    parameters are kept as saved, in ``saved``; nothing here retrains.

    Parameters
    ----------
    features : tuple of families
        The saved feature configuration.
    threshold : float
        Probability of fake at and above which an image is called fake.
    batch_size : int
        CNN: images per scoring batch.
    jobs, cache, backend, faces
        As for :class:`ffeat.Detector`.
    frame : int or None
        The saved analysis frame (files written before it existed: None).
    **saved
        The other saved parameters (classifier, C, ...), unused for scoring.
    """

    #: What :meth:`set_params` may change.
    OPTIONS = ("threshold", "jobs", "cache", "backend", "faces")

    def __init__(self, features, *, threshold: float = 0.5, batch_size: int = 32,
                 jobs: int | None = None, cache=True, backend: str = "cpu",
                 faces: str = "off", frame: int | None = None, **saved) -> None:
        self.features = features
        self.threshold = threshold
        self.batch_size = batch_size
        self.jobs = jobs
        self.cache = cache
        self.backend = backend
        self.faces = faces
        self.frame = frame
        self.saved = saved

    def set_params(self, **params) -> SavedDetector:
        """Change scoring options (:attr:`OPTIONS`); returns ``self``."""
        unknown = sorted(set(params) - set(self.OPTIONS))
        if unknown:
            raise ValueError(f"a saved detector takes only {', '.join(self.OPTIONS)}; got "
                             f"{', '.join(unknown)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self
