"""Scoring images with a fitted model: feature rows, then the model's log-odds.

Nothing here imports scikit-learn: a fitted feature model is plain arrays
(``ffeat._models``), so scoring a saved model (``ffeat predict``, the shards of
:func:`ffeat.predict_to`) starts fast. :class:`~ffeat.Detector` scores through
the same functions.
"""
from __future__ import annotations

import numpy as np

from ._sources import Item
from .extraction import ImageError, _rows, image_row
from .features import resolve_features
from .loading import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE

__all__ = ["featurize", "score_items", "SavedDetector"]


def _read_rows(items: list[Item], families, *, jobs, cache, backend, progress, faces):
    """``(position, item, row)`` of every item, errors collected: the row is an
    :class:`~ffeat.extraction.ImageError`, or under a face policy a ``FaceRows``."""
    return _rows(items, families, jobs=jobs, on_error="collect", progress=progress,
                 max_pixels=DEFAULT_MAX_PIXELS, min_size=DEFAULT_MIN_SIZE, cache=cache,
                 backend=backend, faces=faces)


def featurize(items: list[Item], families, *, jobs, cache, backend="cpu", progress=False,
              faces: str = "off"):
    """Feature matrix (float64, NaN rows for unreadable inputs) and the errors by
    position; under a face policy (:mod:`ffeat.faces`) an image's row is its most
    certain face's."""
    n_features = sum(len(f.feature_names()) for f in families)
    X = np.full((len(items), n_features), np.nan)
    errors = {}
    for position, _, row in _read_rows(items, families, jobs=jobs, cache=cache,
                                       backend=backend, progress=progress, faces=faces):
        if isinstance(row, ImageError):
            errors[position] = row
        else:
            X[position] = image_row(row)
    return X, errors


def _score_faces(model, families, items: list[Item], *, jobs, backend: str,
                 progress: bool | None, faces: str):
    """:func:`score_items` under a face policy: every face scored, the most fake first."""
    scores = np.full(len(items), np.nan)
    boxes: list = [None] * len(items)
    errors = {}
    for position, _, found in _read_rows(items, families, jobs=jobs, cache=False,
                                         backend=backend, progress=progress, faces=faces):
        if isinstance(found, ImageError):
            errors[position] = found
            continue
        face_scores = model.decision_function(found.rows)
        order = np.argsort(-face_scores, kind="stable")
        scores[position] = face_scores[order[0]]
        boxes[position] = [found.boxes[i] for i in order]
    return scores, errors, boxes


def score_items(model, families, items: list[Item], *, jobs, cache, backend: str,
                batch_size: int, progress: bool | None, faces: str = "off"):
    """Log-odds of fake per item from a fitted ``model`` (a feature model over the
    rows of ``families``, or the CNN over pixels), ``{position: ImageError}`` for
    the items that could not be read, and the face boxes of each item.

    Under ``faces="off"`` the boxes are all None. Otherwise an item's boxes are
    those of every face found, the most fake first (its score is that face's);
    ``[None]`` where no face was found and the whole image was scored (``"auto"``).
    """
    if model.kind == "cnn":
        scores, errors = model.score_items(items, jobs=jobs, batch_size=batch_size,
                                           progress=progress)
        return scores, errors, [None] * len(items)
    if faces != "off":
        return _score_faces(model, families, items, jobs=jobs, backend=backend,
                            progress=progress, faces=faces)
    F, errors = featurize(items, families, jobs=jobs, cache=cache, backend=backend,
                          progress=progress)
    ok = ~np.isnan(F).any(axis=1)
    scores = np.full(len(F), np.nan)
    if ok.any():
        scores[ok] = model.decision_function(F[ok])
    return scores, errors, [None] * len(items)


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
    **saved
        The other saved parameters (classifier, C, ...), unused for scoring.
    """

    #: What :meth:`set_params` may change.
    OPTIONS = ("threshold", "jobs", "cache", "backend", "faces")

    def __init__(self, features, *, threshold: float = 0.5, batch_size: int = 32,
                 jobs: int | None = None, cache=True, backend: str = "cpu",
                 faces: str = "off", **saved) -> None:
        self.features = features
        self.threshold = threshold
        self.batch_size = batch_size
        self.jobs = jobs
        self.cache = cache
        self.backend = backend
        self.faces = faces
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

    def _score_items(self, items: list[Item], progress: bool | None):
        """Log-odds per item, ``{position: ImageError}`` for those unreadable, and
        the face boxes per item (see :func:`score_items`)."""
        return score_items(self.model_, resolve_features(self.features), items,
                           jobs=self.jobs, cache=self.cache, backend=self.backend,
                           batch_size=self.batch_size, progress=progress, faces=self.faces)
