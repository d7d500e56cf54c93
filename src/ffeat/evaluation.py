"""Scoring a detector on labelled data: the metrics analysts report."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from sklearn import metrics as skm

from ._checks import check_probability
from .models._calibration import band_of, probability
from .reading._rows import ImageError
from .reading.dataset import labelled_data

__all__ = ["Evaluation", "NoReadableImages", "evaluate", "equal_error_rate",
           "call_metrics", "source_breakdown",
           "calibration_metrics", "ECE_BINS"]

#: Equal-width probability bins of the expected calibration error.
ECE_BINS = 10


class NoReadableImages(ValueError):
    """None of the images to score could be read; ``errors`` says why for each."""

    def __init__(self, errors: list[ImageError]) -> None:
        super().__init__(f"none of the {len(errors)} images could be read")
        self.errors = errors


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The rate at which false positives and false negatives are equal.

    Interpolated linearly on the ROC curve between the two operating points
    where ``FPR - FNR`` changes sign.
    """
    fpr, tpr, _ = skm.roc_curve(labels, scores)
    fnr = 1 - tpr
    d = fpr - fnr
    i = int(np.flatnonzero(d >= 0)[0])  # d goes from -1 (at fpr=0) to +1 (at fpr=1)
    if i == 0 or d[i] == 0:
        return float(fpr[i])
    t = -d[i - 1] / (d[i] - d[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def call_metrics(labels: np.ndarray, called: np.ndarray) -> dict:
    """Metrics of 0/1 calls against 0/1 labels, fake the positive class (scikit-learn's).

    Parameters
    ----------
    labels, called : ndarray of {0, 1} or bool
        True labels and the calls, one per image.

    Returns
    -------
    dict
        ``accuracy`` (None for no images), ``precision``, ``recall``, ``f1`` (0 where
        undefined), ``fpr`` and ``fnr`` (None where undefined) and
        ``confusion_matrix`` (rows: true real, true fake; columns: called real,
        called fake).
    """
    y, called = np.asarray(labels).astype(int), np.asarray(called).astype(int)
    if not len(y):
        return {"accuracy": None, "precision": 0.0, "recall": 0.0, "f1": 0.0, "fpr": None,
                "fnr": None, "confusion_matrix": [[0, 0], [0, 0]]}
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y, called, average="binary", zero_division=0.0)
    (tn, fp), (fn, tp) = confusion = skm.confusion_matrix(y, called, labels=[0, 1]).tolist()
    return {"accuracy": float(skm.accuracy_score(y, called)), "precision": float(precision),
            "recall": float(recall), "f1": float(f1),
            "fpr": fp / (fp + tn) if fp + tn else None,
            "fnr": fn / (fn + tp) if fn + tp else None, "confusion_matrix": confusion}


def _source_auc(y: np.ndarray, p: np.ndarray,
                pooled_real: np.ndarray) -> tuple[float | None, str | None]:
    """ROC AUC of one source and what it is measured against: its own reals when it holds
    both classes, the data's pooled reals when it holds fakes only, else none."""
    if (y == 0).any() and (y == 1).any():
        return float(skm.roc_auc_score(y, p)), "within"
    if (y == 1).all() and len(pooled_real):
        both = np.concatenate([np.zeros(len(pooled_real)), np.ones(len(p))])
        return float(skm.roc_auc_score(both, np.concatenate([pooled_real, p]))), "pooled real"
    return None, None


def source_breakdown(labels: np.ndarray, proba: np.ndarray, threshold: float,
                     sources) -> dict | None:
    """The figures of each source of the data, as :attr:`Evaluation.by_source` gives them.

    Parameters
    ----------
    labels, proba : ndarray
        True labels (1 = fake) and probabilities of fake of the scored images.
    threshold : float
        Probability at and above which an image is called fake.
    sources : sequence of str or None
        The source of each scored image.

    Returns
    -------
    dict or None
        Per source (sorted by name): ``n``, ``n_real``, ``n_fake``, ``recall``
        (fakes called fake; None without fakes), ``fpr`` (reals called fake; None
        without reals), ``accuracy``, ``roc_auc`` and ``roc_auc_against``
        (``"within"`` the source when it holds both classes, ``"pooled real"``:
        its fakes against every real image of the data when it holds only fakes;
        None otherwise). None when there are fewer than two sources.
    """
    if sources is None or len(set(sources)) < 2:
        return None
    sources = np.asarray(sources, dtype=object)
    labels, proba = np.asarray(labels), np.asarray(proba)
    called = proba >= threshold
    pooled_real = proba[labels == 0]
    out = {}
    for name in sorted(set(sources)):
        m = sources == name
        y = labels[m]
        calls = call_metrics(y, called[m])
        auc, against = _source_auc(y, proba[m], pooled_real)
        n_fake = int((y == 1).sum())
        out[str(name)] = {"n": int(m.sum()), "n_real": int((y == 0).sum()), "n_fake": n_fake,
                          "recall": calls["recall"] if n_fake else None, "fpr": calls["fpr"],
                          "accuracy": calls["accuracy"], "roc_auc": auc,
                          "roc_auc_against": against}
    return out


def calibration_metrics(labels: np.ndarray, proba: np.ndarray) -> dict:
    """How well probabilities of fake match the frequency of fakes.

    Parameters
    ----------
    labels : ndarray of {0, 1}
    proba : ndarray of float
        Probability of fake per image.

    Returns
    -------
    dict
        ``brier`` (mean squared difference of probability and label) and ``ece``
        (expected calibration error: over ``ECE_BINS`` equal-width bins of the
        probability, the image-weighted mean of ``|share of fakes - mean
        probability|``); None for no images.
    """
    y, p = np.asarray(labels, dtype=np.float64), np.asarray(proba, dtype=np.float64)
    if not len(y):
        return {"brier": None, "ece": None}
    bins = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)
    count = np.bincount(bins, minlength=ECE_BINS)
    gap = np.abs(np.bincount(bins, y, ECE_BINS) - np.bincount(bins, p, ECE_BINS))
    return {"brier": float(np.mean((p - y) ** 2)), "ece": float(gap.sum() / count.sum())}


def reliability(labels: np.ndarray, proba: np.ndarray) -> list[dict]:
    """The reliability diagram's points: per non-empty bin of :func:`calibration_metrics`,
    ``lo``, ``hi``, ``n``, ``mean_proba`` and ``fake_share``."""
    y, p = np.asarray(labels, dtype=np.float64), np.asarray(proba, dtype=np.float64)
    bins = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)
    return [{"lo": b / ECE_BINS, "hi": (b + 1) / ECE_BINS, "n": int((bins == b).sum()),
             "mean_proba": float(p[bins == b].mean()), "fake_share": float(y[bins == b].mean())}
            for b in range(ECE_BINS) if (bins == b).any()]


def conclusive_metrics(labels: np.ndarray, proba: np.ndarray, threshold: float,
                       band: tuple[float, float] | None) -> dict:
    """``coverage`` (share of images outside the inconclusive ``band`` ``[lo, hi)``),
    ``n_inconclusive`` and ``conclusive_accuracy`` (accuracy at ``threshold`` on the
    others; None when there are none)."""
    y, p = np.asarray(labels), np.asarray(proba, dtype=np.float64)
    lo, hi = (threshold, threshold) if band is None else band
    conclusive = ~((p >= lo) & (p < hi))
    right = (p >= threshold) == (y == 1)
    return {"coverage": float(conclusive.mean()) if len(p) else None,
            "n_inconclusive": int((~conclusive).sum()),
            "conclusive_accuracy": float(right[conclusive].mean()) if conclusive.any()
            else None}


@dataclass
class Evaluation:
    """Scores and metrics of a detector on labelled images.

    Attributes
    ----------
    sources : list of str
        The images that could be read.
    labels : ndarray of int
        Their true labels (1 = fake).
    proba : ndarray of float
        Their probability of fake.
    threshold : float
        Probability at and above which an image is called fake.
    errors : list of ImageError
        Images that could not be read.
    data_sources : list of str, optional
        The source of each image read (:attr:`Dataset.sources`); None when the
        data holds a single source.
    band : tuple of float, optional
        The detector's inconclusive band ``(lo, hi)`` (None: none).
    generators : list of str, optional
        An expert detector's attribution of each image read: the expert with the
        highest probability (None for another detector).
    metrics : dict
        ``accuracy``, ``precision``, ``recall``, ``f1`` (fake is the positive
        class), ``roc_auc``, ``average_precision``, ``eer`` (None when only one
        class was read), ``brier`` and ``ece`` (:func:`calibration_metrics`),
        ``coverage``, ``n_inconclusive`` and ``conclusive_accuracy``
        (:func:`conclusive_metrics`; forced-choice metrics count every image),
        ``confusion_matrix`` (rows: true real, true fake; columns: called real,
        called fake), ``n_real``, ``n_fake``.
    """

    sources: list[str]
    labels: np.ndarray
    proba: np.ndarray
    threshold: float
    errors: list[ImageError]
    data_sources: list[str] | None = field(default=None, kw_only=True)
    band: tuple[float, float] | None = field(default=None, kw_only=True)
    generators: list[str] | None = field(default=None, kw_only=True)
    metrics: dict = field(init=False)

    def __post_init__(self) -> None:
        y, p = self.labels, self.proba
        calls = call_metrics(y, p >= self.threshold)
        both = len(np.unique(y)) == 2
        self.metrics = {
            **{k: calls[k] for k in ("accuracy", "precision", "recall", "f1")},
            "roc_auc": float(skm.roc_auc_score(y, p)) if both else None,
            "average_precision": float(skm.average_precision_score(y, p)) if both else None,
            "eer": equal_error_rate(y, p) if both else None,
            **calibration_metrics(y, p),
            **conclusive_metrics(y, p, self.threshold, self.band),
            "confusion_matrix": calls["confusion_matrix"],
            "n_real": int((y == 0).sum()),
            "n_fake": int((y == 1).sum()),
        }

    @classmethod
    def of_records(cls, detector, records: list, labels, threshold: float, *,
                   data_sources: list[str] | None = None) -> Evaluation:
        """The evaluation of ``detector`` from its scoring records of labelled images.

        What :func:`evaluate`, the report and :func:`~ffeat.robustness` all build, so
        that the same records give the same metrics everywhere.

        Parameters
        ----------
        detector : Detector
            Fitted; its calibration (if any) maps the log-odds to probabilities, and
            its inconclusive band is the evaluation's.
        records : list of Scored
            One per image, in order (``ffeat.models._scoring``; :meth:`Detector.score_records`).
        labels : array-like of {0, 1}
            The true label of each image.
        threshold : float
            Probability at and above which an image is called fake.
        data_sources : list of str, optional
            The source of each image (see the class docstring).

        Returns
        -------
        Evaluation
        """
        ok = np.array([r.error is None for r in records], dtype=bool)
        z = np.array([r.log_odds for r in records], dtype=np.float64)
        names = getattr(getattr(detector, "model_", None), "names", None)  # an expert model
        generators = None if names is None else \
            [names[int(np.argmax(r.experts))] for r in records if r.error is None]
        return cls([r.item.name for r in records if r.error is None],
                   np.asarray(labels)[ok].astype(int), probability(detector, z[ok]),
                   float(threshold), [r.error for r in records if r.error is not None],
                   data_sources=None if data_sources is None
                   else [s for s, good in zip(data_sources, ok) if good],
                   band=band_of(detector), generators=generators)

    @property
    def by_source(self) -> dict | None:
        """Per source, when the data holds at least two (see :func:`source_breakdown`):
        counts, recall, false-positive rate, accuracy and ROC AUC; else None."""
        return source_breakdown(self.labels, self.proba, self.threshold, self.data_sources)

    @property
    def attribution(self) -> dict | None:
        """An expert detector's attribution of the fakes, when the data holds sources:
        ``by_source`` (per fake source, the share of its fakes given to each expert)
        and ``accuracy`` (over the fakes whose source is named after an expert, the
        share given to that expert; None when no source is), ``n`` those fakes; None
        for another detector or data without sources."""
        if self.generators is None or self.data_sources is None:
            return None
        gen = np.asarray(self.generators, dtype=object)
        src = np.asarray(self.data_sources, dtype=object)
        fake = self.labels == 1
        named = fake & np.isin(src, list(dict.fromkeys(self.generators)))
        return {"accuracy": float(np.mean(gen[named] == src[named])) if named.any() else None,
                "n": int(named.sum()),
                "by_source": {s: {g: float(np.mean(gen[fake & (src == s)] == g))
                                  for g in sorted(set(gen[fake & (src == s)]))}
                              for s in sorted(set(src[fake]))}}

    def to_dict(self) -> dict:
        """The metrics, the threshold and the errors (and ``by_source`` when the data
        holds several sources, ``attribution`` for an expert detector), ready for
        ``json.dumps``."""
        by_source, attribution = self.by_source, self.attribution
        return {**self.metrics, "threshold": self.threshold,
                "band": None if self.band is None else list(self.band),
                "errors": [{"path": e.source, "reason": e.reason} for e in self.errors],
                **({"by_source": by_source} if by_source is not None else {}),
                **({"attribution": attribution} if attribution is not None else {})}


def evaluate(detector, data, labels=None, *, threshold: float | None = None,
             classes: Mapping | None = None, progress: bool | None = False) -> Evaluation:
    """Score a fitted detector on labelled images.

    Parameters
    ----------
    detector : Detector
        A fitted (or loaded) detector.
    data : path, Dataset, or sequence of images
        A dataset folder or CSV manifest (see :func:`~ffeat.load_dataset`), a
        :class:`~ffeat.Dataset`, or images with ``labels`` (a sequence, or a 4-D
        array batch; a path is always a dataset, never one image).
    labels : array-like of {0, 1}, optional
        True labels when ``data`` is a sequence of images.
    threshold : float, optional
        Decision threshold on the probability of fake; the detector's own by default.
    classes : mapping, optional
        Class names for a dataset path, as for :func:`~ffeat.load_dataset`.
    progress : bool or None, optional
        Progress bar on stderr (``None``: on a terminal).

    Returns
    -------
    Evaluation
        With ``by_source`` when the data holds several sources (the top-level
        subfolders of a dataset folder, or a manifest's source column).

    Raises
    ------
    TypeError
        When ``detector`` has no ``score_records``, or ``data`` or ``threshold``
        is of the wrong kind (the message names the argument).
    ValueError
        When ``threshold`` lies outside [0, 1], or as for :func:`labelled_images`.
    """
    if not callable(getattr(detector, "score_records", None)):
        raise TypeError(f"detector must be a fitted ffeat.Detector (or have score_records), "
                        f"got {type(detector).__name__}")
    threshold = detector.threshold if threshold is None else threshold
    check_probability(threshold, "threshold")
    images, labels, data_sources = labelled_data(data, labels, classes)
    records = detector.score_records(images, progress=progress)
    return Evaluation.of_records(detector, records, labels, threshold,
                                 data_sources=data_sources)
