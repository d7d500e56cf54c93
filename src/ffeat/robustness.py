"""Robustness: the same labelled data re-scored on perturbed copies made in memory."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from .evaluation import Evaluation, evaluate
from .reading._perturb import Perturbation, Perturbed, parse_perturbations
from .reading._sources import single_item
from .reading.dataset import labelled_images
from .running._progress import status

__all__ = ["robustness", "format_robustness"]

_KEYS = ("roc_auc", "average_precision", "accuracy", "eer")


def _row(kind: str, strength, label: str, result: Evaluation) -> dict:
    m = result.metrics
    return {"perturbation": kind, "strength": strength, "label": label,
            **{k: m[k] for k in _KEYS}, "n_scored": len(result.labels),
            "n_errors": len(result.errors)}


def robustness(detector, data, perturbations: Iterable[str | Perturbation], labels=None, *,
               classes: Mapping | None = None, threshold: float | None = None,
               baseline: Evaluation | None = None,
               progress: bool | None = False) -> list[dict]:
    """ROC AUC, average precision, accuracy and EER on perturbed copies of a dataset.

    Every image is read, perturbed in memory (inputs are never modified) and
    scored again, once per perturbation and strength.

    Parameters
    ----------
    detector : Detector
        A fitted (or loaded) detector.
    data : path, Dataset, or sequence of images
        As for :func:`~ffeat.evaluate`.
    perturbations : iterable of str or Perturbation
        E.g. ``["jpeg=90,70,50", "resize=0.75,0.5", "blur=1,2", "noise=2,5"]``.
    labels : array-like of {0, 1}, optional
        True labels when ``data`` is a sequence of images.
    classes : mapping, optional
        Class names for a dataset path, as for :func:`~ffeat.load_dataset`.
    threshold : float, optional
        Decision threshold for accuracy; the detector's own by default.
    baseline : Evaluation, optional
        The unperturbed evaluation of the same data, if already computed.
    progress : bool or None, optional
        Progress bars on stderr (``None``: on a terminal).

    Returns
    -------
    list of dict
        The unperturbed row first (``perturbation`` ``"none"``), then one per
        perturbation and strength: ``perturbation``, ``strength``, ``label``
        (e.g. ``"jpeg=70"``), ``roc_auc``, ``average_precision``, ``accuracy``,
        ``eer`` (None when only one class could be read), ``n_scored``, ``n_errors``.
    """
    todo = parse_perturbations(perturbations)
    images, y = labelled_images(data, labels, classes)
    if baseline is None:
        baseline = evaluate(detector, images, y, threshold=threshold, progress=progress)
    t = baseline.threshold
    rows = [_row("none", None, "clean", baseline)]
    names = [single_item(obj, i).name for i, obj in enumerate(images)]
    for n, p in enumerate(todo, 1):
        status(f"robustness {n}/{len(todo)}: {p.label}", progress)
        copies = [Perturbed(obj, p, seed=i, name=f"{names[i]} [{p.label}]")
                  for i, obj in enumerate(images)]
        result = Evaluation.of_records(detector, detector.score_records(copies,
                                                                        progress=progress),
                                       y, t)
        rows.append(_row(p.kind, p.strength, p.label, result))
    return rows


def format_robustness(rows: list[dict]) -> str:
    """The robustness rows as an aligned text table."""
    def f(v):
        return "n/a" if v is None else f"{v:.4f}"
    lines = [f"{'perturbation':<16}{'ROC AUC':>9}{'AP':>9}{'accuracy':>10}{'EER':>9}"
             f"{'scored':>8}"]
    lines += [f"{r['label']:<16}{f(r['roc_auc']):>9}{f(r['average_precision']):>9}"
              f"{f(r['accuracy']):>10}{f(r['eer']):>9}{r['n_scored']:>8}" for r in rows]
    return "\n".join(lines)
