"""Feature detectors and the CNN side by side on the same split: :func:`compare`.

ffeat's claim is that forensic features are faster than a CNN and nearly as
accurate; this measures it. Every detector is trained on the same seeded,
stratified split of one dataset and scored on the held-out part (and,
optionally, on a second dataset as a cross-dataset test), with the feature
cache off so that every detector pays for reading its own images.
"""
from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.model_selection import train_test_split

from ._base import ImageClassifier
from ._factory import make_detector
from .evaluation import Evaluation, evaluate
from .extraction import DEFAULT_FEATURES
from .features import resolve_features
from .models._models import CLASSIFIERS, uses_features
from .reading.dataset import describe_data, labelled_images
from .running._progress import status

__all__ = ["Comparison", "compare"]


@dataclass
class Comparison:
    """What :func:`compare` measured.

    Attributes
    ----------
    rows : list of dict
        One per detector: ``detector`` (its name), ``classifier``, ``roc_auc``
        and ``accuracy`` on the held-out split, ``test_roc_auc`` and
        ``test_accuracy`` on the test set (None without one), ``train_s`` (wall
        seconds of ``fit``, reading the images included), ``images_per_s``
        (held-out images scored per wall second, end to end from the files),
        ``model_bytes`` (size of the saved model file) and, for the CNN,
        ``epochs_run`` and ``best_epoch``.
    split : str
        How the data was split, e.g. ``"stratified 80/20 split (seed 0): 1280
        train, 320 held out"``.
    data, test : str
        Where the split data and the test set came from (``test`` None without one).
    detectors : list of Detector or CnnDetector
        The fitted detectors, in row order.
    """

    rows: list[dict]
    split: str
    data: str
    test: str | None
    detectors: list

    def to_dict(self) -> dict:
        """The rows, the split and the data, ready for ``json.dumps``."""
        return {"split": self.split, "data": self.data, "test": self.test, "rows": self.rows}

    def format_table(self, markdown: bool = False) -> str:
        """One line per detector: ROC AUC and accuracy on the held-out split and the
        test set, training seconds, prediction images/s and model size."""
        test = Path(self.test).name if self.test else None
        header = ["detector", "held-out ROC AUC", "held-out accuracy"]
        if test:
            header += [f"{test} ROC AUC", f"{test} accuracy"]
        header += ["train s", "predict img/s", "model size"]
        cells = []
        for r in self.rows:
            line = [r["detector"], _num(r["roc_auc"]), _num(r["accuracy"])]
            if test:
                line += [_num(r["test_roc_auc"]), _num(r["test_accuracy"])]
            line += [f"{r['train_s']:.1f}", f"{r['images_per_s']:,.0f}",
                     _size(r["model_bytes"])]
            cells.append(line)
        if markdown:
            lines = ["| " + " | ".join(header) + " |",
                     "|" + "|".join("---" for _ in header) + "|"]
            lines += ["| " + " | ".join(c) + " |" for c in cells]
        else:
            widths = [max(len(x[i]) for x in [header, *cells]) for i in range(len(header))]
            lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                               for i, (h, w) in enumerate(zip(line, widths)))
                     for line in [header, *cells]]
            lines.insert(1, "-" * len(lines[0]))
        return "\n".join([f"{self.split} of {self.data}" +
                          (f"; cross-dataset test: {self.test}" if self.test else ""),
                          *lines])


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _size(n: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _name(detector: ImageClassifier) -> str:
    if not uses_features(detector.classifier):
        return f"{detector.classifier} ({detector.input_size} px)"
    families = "+".join(f.name for f in resolve_features(detector.features))
    return f"{detector.classifier} ({families})"


def _model_bytes(detector: ImageClassifier) -> int:
    buffer = io.BytesIO()
    detector.save(buffer)
    return buffer.tell()


def _metrics(result: Evaluation | None) -> tuple[float | None, float | None]:
    if result is None:
        return None, None
    return result.metrics["roc_auc"], result.metrics["accuracy"]


def compare(data, test=None, *, classifiers: Sequence[str] = CLASSIFIERS,
            test_size: float = 0.2, random_state: int = 0, classes: Mapping | None = None,
            progress: bool | None = False, **params) -> Comparison:
    """Train every detector on the same split and measure accuracy, time and size.

    Parameters
    ----------
    data : path or Dataset
        A dataset folder or CSV manifest (see :func:`~ffeat.load_dataset`), or a
        :class:`~ffeat.Dataset`, to split into training and held-out images.
    test : path or Dataset, optional
        A second labelled dataset scored whole by every detector (cross-dataset).
    classifiers : sequence of str
        Detectors to train (default: ``logistic``, ``hgb`` and ``cnn``).
    test_size : float
        Share of ``data`` held out (stratified by label, seeded by ``random_state``).
    random_state : int
        Seed of the split and of every detector.
    classes : mapping, optional
        Class names for dataset paths, as for :func:`~ffeat.load_dataset`.
    progress : bool or None, optional
        Progress on stderr (``None``: on a terminal).
    **params
        Other parameters for every detector, e.g. ``features=``, ``jobs=2``,
        ``epochs=20``, ``input_size=128``, ``augment="jpeg,blur"``: each
        detector (a :class:`~ffeat.Detector`, or a :class:`~ffeat.CnnDetector`
        for ``cnn``) takes those it has, so CNN parameters do not change the
        feature detectors nor ``features`` the CNN; ``reading`` (face policy, frame)
        is the feature detectors' only, the CNN reading whole images at its own input
        size. The feature cache is always off.

    Returns
    -------
    Comparison

    Raises
    ------
    ImportError
        When ``cnn`` is among the classifiers and PyTorch is missing.
    ValueError
        For unusable data, an unknown classifier or a split too small for both classes.
    """
    unknown = [c for c in classifiers if c not in CLASSIFIERS]
    if unknown or not classifiers:
        raise ValueError(f"unknown classifiers {unknown}; choose from {', '.join(CLASSIFIERS)}")
    if "cnn" in classifiers:
        from .models._cnn import import_torch
        import_torch()
    images, labels = labelled_images(data, classes=classes)
    tests = labelled_images(test, classes=classes) if test is not None else None
    train_x, held_x, train_y, held_y = train_test_split(
        images, labels, test_size=test_size, stratify=labels, random_state=random_state)
    split = (f"stratified {round(100 * (1 - test_size))}/{round(100 * test_size)} split "
             f"(seed {random_state}): {len(train_x)} train, {len(held_x)} held out")
    params = {"features": DEFAULT_FEATURES, **params}
    rows, detectors = [], []
    for classifier in classifiers:
        # The reading (face policy, frame) is the feature detectors'; the CNN reads whole
        # images at its own input size.
        mine = params if uses_features(classifier) else \
            {k: v for k, v in params.items() if k != "reading"}
        detector = make_detector(classifier, **{**mine, "cache": False,
                                                "random_state": random_state})
        status(f"compare: training {_name(detector)} on {len(train_x)} images", progress)
        start = time.perf_counter()
        detector.fit(train_x, train_y, progress=progress)
        train_s = time.perf_counter() - start
        status(f"compare: scoring {_name(detector)}", progress)
        start = time.perf_counter()
        held = evaluate(detector, held_x, held_y, progress=progress)
        rate = len(held_x) / (time.perf_counter() - start)
        tested = evaluate(detector, *tests, progress=progress) if tests else None
        row = {"detector": _name(detector), "classifier": classifier,
               **dict(zip(("roc_auc", "accuracy"), _metrics(held))),
               **dict(zip(("test_roc_auc", "test_accuracy"), _metrics(tested))),
               "train_s": round(train_s, 3), "images_per_s": round(rate, 2),
               "model_bytes": _model_bytes(detector)}
        if not uses_features(classifier):
            row |= {k: detector.training_[k] for k in ("epochs_run", "best_epoch")}
        rows.append(row)
        detectors.append(detector)
    return Comparison(rows, split, describe_data(data),
                      None if test is None else describe_data(test), detectors)
