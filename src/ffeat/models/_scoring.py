"""Scoring images with a fitted model: feature rows, then the model's log-odds.

Nothing here imports scikit-learn: a fitted feature model is plain arrays
(``ffeat.models._models``), so scoring a saved model (``ffeat predict``, the shards of
:func:`ffeat.predict_to`) starts fast. :class:`~ffeat.Detector` scores through
the same functions.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from ..features import n_columns, resolve_features
from ..reading import NATIVE, Reading
from ..reading._rows import FaceRows, ImageError, iter_rows, match_errors
from ..reading._sources import Item

__all__ = ["Face", "Scored", "iter_scored", "score_items", "scores_and_errors",
           "family_names", "expert_names", "SavedDetector", "NO_SCORE", "CHUNK_ROWS"]

#: The reason recorded for an image that was read but given no score (NaN).
NO_SCORE = "the model gave no score (NaN) for this image"
#: Feature rows scored at once: bounds scoring memory whatever the number of images
#: (64 rows of the default 41,444 columns are 10.6 MB of float32).
CHUNK_ROWS = 64


class Face(NamedTuple):
    """One face scored: its box ``(x, y, w, h)`` (None: the whole image, read under
    ``faces="auto"`` when no face was found), its log-odds of fake and, under
    ``faces="align"``, the quad it was cut from (see
    :class:`~ffeat.reading.faces.FaceCrop`)."""

    box: tuple | None
    log_odds: float
    quad: tuple | None = None


class Scored(NamedTuple):
    """One input through scoring; nothing about it travels in a parallel list.

    Attributes
    ----------
    item : Item
        The input.
    log_odds : float
        Its log-odds of fake (under a face policy, its most fake face's); NaN
        exactly when ``error`` is set.
    error : ImageError or None
        Why it has no score: unreadable, no face, or a model that gave no number.
    faces : tuple of Face or None
        Under a face policy, every face scored, the most fake first; None under
        ``faces="off"`` and for an error.
    row : ndarray or None
        With ``keep_rows``: the feature row the score comes from (the most fake
        face's).
    families : ndarray or None
        With ``explain``: each feature family's share of ``log_odds`` (see
        :func:`iter_scored`).
    experts : ndarray or None
        For an expert model (``ffeat.models._experts``): each expert's calibrated
        probability of the scored face (the most fake), in the model's order; the
        family the image resembles most is the expert with the highest.
    """

    item: Item
    log_odds: float
    error: ImageError | None
    faces: tuple[Face, ...] | None = None
    row: np.ndarray | None = None
    families: np.ndarray | None = None
    experts: np.ndarray | None = None


def _failed(item: Item, error: ImageError) -> Scored:
    return Scored(item, float("nan"), error)


def _rows_of(row) -> np.ndarray:
    """The feature rows an input was read as: one per face, or the image's one row."""
    return row.rows if isinstance(row, FaceRows) else row[None]


@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency
    return ThreadpoolController()


def _one_blas_thread():
    """Context holding the BLAS libraries to one thread while a chunk is scored: the
    products of 64 rows gain nothing from a second thread, and OpenBLAS's threads spin
    after each call, which took 14% of the second core beside one worker job (CPU time
    = 1.14x wall time for ``ffeat predict -j 1``, 1.00x held to one) and competed with
    the feature workers of two."""
    return _blas_controller().limit(limits=1, user_api="blas")


def _score_chunk(model, chunk: list, explainer, keep_rows: bool) -> list[Scored]:
    """Records of ``(item, row)`` pairs in input order, ``row`` an :class:`ImageError` or
    what was read: all the rows (every face's) scored in one call of the model."""
    stacks = [_rows_of(row) for _, row in chunk if not isinstance(row, ImageError)]
    X = np.vstack(stacks) if stacks else np.empty((0, 0))
    with _one_blas_thread():
        P = model.expert_probabilities(X) \
            if stacks and hasattr(model, "expert_probabilities") else None
        z = (model.decision_function(X) if P is None else model.combine(P)) if stacks else X
        shares = explainer(X) if explainer is not None and stacks else None
    out, start, read = [], 0, iter(stacks)
    for item, row in chunk:
        if isinstance(row, ImageError):
            out.append(_failed(item, row))
            continue
        rows = next(read)
        span = slice(start, start + len(rows))
        start = span.stop
        out.append(_scored(item, row, rows, z[span],
                           None if shares is None else shares[span], keep_rows,
                           None if P is None else P[span]))
    return out


def _scored(item: Item, row, rows: np.ndarray, z: np.ndarray, shares,
            keep_rows: bool, experts: np.ndarray | None = None) -> Scored:
    """The record of one input read as ``row`` (its feature ``rows``) whose rows scored
    ``z`` (per-family ``shares`` with ``explain``, per-expert probabilities ``experts``
    for an expert model)."""
    if np.isnan(rows).any():
        return _failed(item, ImageError(item.name, "features failed: NaN values"))
    order = np.argsort(-z, kind="stable")
    best = int(order[0])
    if np.isnan(z[best]):
        return _failed(item, ImageError(item.name, NO_SCORE))
    faces = tuple(Face(row.boxes[i], float(z[i]), row.quads[i]) for i in order) \
        if isinstance(row, FaceRows) else None
    return Scored(item, float(z[best]), None, faces, rows[best] if keep_rows else None,
                  None if shares is None else shares[best],
                  None if experts is None else experts[best])


def _explainer(model, families):
    """The per-family log-odds of feature rows under a linear ``model``."""
    if not hasattr(model, "contributions"):
        raise ValueError(f"per-family log-odds are available for the linear classifiers "
                         f"(stacked, logistic), not for a {model.kind} model")
    blocks = tuple(n_columns(f) for f in families)
    return lambda rows: model.contributions(rows, blocks)


def _cnn_scored(detector, items: list[Item], progress) -> Iterator[Scored]:
    """Records of the CNN's scores (it reads pixels, not feature rows)."""
    scores, errors = detector.model_.score_items(items, jobs=detector.jobs,
                                                 batch_size=detector.batch_size,
                                                 progress=progress)
    failed = np.isnan(scores)
    for item, z, bad, record in zip(items, scores, failed, match_errors(items, failed, errors)):
        yield _failed(item, record or ImageError(item.name, NO_SCORE)) if bad \
            else Scored(item, float(z), None)


def iter_scored(detector, items: list[Item], *, progress: bool | None = False,
                explain: bool = False, keep_rows: bool = False) -> Iterator[Scored]:
    """Every input through a fitted detector, one :class:`Scored` record each, in input
    order: the one scoring path of ffeat (``predict``, ``evaluate``, the report,
    robustness, streamed predictions, the estimators' ``score_images``).

    Rows are read by the reading engine (``ffeat.reading._rows``) and scored in chunks of
    :data:`CHUNK_ROWS`, so memory stays flat in the number of images.

    Parameters
    ----------
    detector : Detector or SavedDetector
        Fitted; its ``features``, ``reading``, ``jobs``, ``cache`` and ``backend``
        say how the items are read (a CNN: ``jobs`` and ``batch_size``).
    items : list of Item
    progress : bool or None, optional
    explain : bool, optional
        Give each record ``families``: per feature family (in the detector's order)
        the sum of coefficient times standardised feature over its columns, so the
        score is the model's intercept plus their sum; before calibration.
    keep_rows : bool, optional
        Give each record the feature ``row`` its score comes from.

    Raises
    ------
    ValueError
        With ``explain``, for a model that is not linear in its features (``hgb``,
        the CNN).
    """
    model = detector.model_
    if model.kind == "cnn":
        if explain:
            _explainer(model, ())  # raises: the CNN has no families
        yield from _cnn_scored(detector, items, progress)
        return
    families = resolve_features(detector.features)
    explainer = _explainer(model, families) if explain else None
    chunk: list = []  # (item, rows or error), in input order
    n_rows = 0
    for item, row in iter_rows(items, families, detector.reading, jobs=detector.jobs,
                               progress=progress, cache=detector.cache,
                               backend=detector.backend):
        chunk.append((item, row))
        if not isinstance(row, ImageError):
            n_rows += len(_rows_of(row))
        if n_rows >= CHUNK_ROWS:
            yield from _score_chunk(model, chunk, explainer, keep_rows)
            chunk, n_rows = [], 0
    if chunk:
        yield from _score_chunk(model, chunk, explainer, keep_rows)


def score_items(detector, items: list[Item], *, progress: bool | None = False,
                explain: bool = False) -> list[Scored]:
    """All of :func:`iter_scored` as a list (records hold no feature rows)."""
    return list(iter_scored(detector, items, progress=progress, explain=explain))


def scores_and_errors(records: list[Scored]) -> tuple[np.ndarray, list[ImageError]]:
    """The log-odds of every record (NaN where it failed) and the error records, in
    input order."""
    return (np.array([r.log_odds for r in records], dtype=np.float64),
            [r.error for r in records if r.error is not None])


def family_names(detector) -> list[str]:
    """The names of a detector's feature families, in column order."""
    return [f.name for f in resolve_features(detector.features)]


def expert_names(detector) -> list[str] | None:
    """The names of an expert detector's experts, in order; None for another model."""
    return getattr(getattr(detector, "model_", None), "names", None)


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
    jobs, cache, backend
        As for :class:`ffeat.Detector`.
    reading : Reading
        The saved reading (face policy and frame; files written before the frame
        existed: native size).
    **saved
        The other saved parameters (classifier, C, ...), unused for scoring.
    """

    #: What :meth:`set_params` may change.
    OPTIONS = ("threshold", "jobs", "cache", "backend", "reading")

    def __init__(self, features, *, threshold: float = 0.5, batch_size: int = 32,
                 jobs: int | None = None, cache=True, backend: str = "cpu",
                 reading: Reading = NATIVE, **saved) -> None:
        self.features = features
        self.threshold = threshold
        self.batch_size = batch_size
        self.jobs = jobs
        self.cache = cache
        self.backend = backend
        self.reading = reading
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
