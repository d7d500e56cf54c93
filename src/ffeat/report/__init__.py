"""The evaluation report: one self-contained HTML page with its figures beside it.

``write_report(detector, data, out_dir)`` scores a labelled dataset and writes
``out_dir/index.html`` (no scripts, no network), PNG figures, JPEG thumbnails
under ``thumbs/``, per-image maps under ``maps/`` and ``report.json`` with the
numbers. matplotlib is needed (``pip install "ffeat[report]"``); importing this
package does not import it.
"""
from __future__ import annotations

import importlib.util
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from .._base import check_fitted
from .._text import printable
from .._version import __version__
from ..evaluation import Evaluation, NoReadableImages, call_metrics
from ..families import column_groups, resolve_features
from ..models._calibration import probability
from ..models._models import uses_features
from ..models._scoring import iter_scored
from ..reading._perturb import Perturbation, parse_perturbations
from ..reading._rows import default_jobs, read_item, views_of
from ..reading._sources import single_item
from ..reading.dataset import Dataset, describe_data, labelled_data
from ..reading.faces import NO_FACE
from ..reading.loading import ImageReadError
from ..robustness import robustness as _robustness
from ..running._progress import status
from ._gallery import select, write_thumbnail

__all__ = ["Report", "write_report", "write_training_curves", "MATPLOTLIB_MISSING"]

MATPLOTLIB_MISSING = ("the evaluation report needs matplotlib, which is not installed; "
                      "install it with: pip install \"ffeat[report]\" (or pip install "
                      "\"matplotlib>=3.7\")")
_LOGIT_CLIP = 30.0


@dataclass
class Report:
    """What :func:`write_report` wrote.

    Attributes
    ----------
    path : Path
        ``index.html``.
    evaluation : Evaluation
        Metrics and probabilities on the unperturbed data.
    robustness : list of dict or None
        Rows of :func:`ffeat.robustness` when perturbations were asked for.
    summary : dict
        The numbers of the report, as written to ``report.json``.
    """

    path: Path
    evaluation: Evaluation
    robustness: list[dict] | None
    summary: dict


def require_matplotlib() -> None:
    """Raise ImportError saying what to install when matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError(MATPLOTLIB_MISSING)


def _logit(p: float) -> float:
    p = min(max(p, 1e-13), 1 - 1e-13)
    return float(np.clip(np.log(p / (1 - p)), -_LOGIT_CLIP, _LOGIT_CLIP))


def _recalibrated(detector, y: np.ndarray, scores: np.ndarray, default: float) -> list[dict]:
    """The default threshold beside the EER and best-accuracy thresholds of this data
    (all on log-odds, with the matching probability)."""
    rows = [("default (model)", default)]
    if len(np.unique(y)) == 2:
        fpr, tpr, thr = skm.roc_curve(y, scores, drop_intermediate=False)
        finite = np.isfinite(thr)
        fpr, tpr, thr = fpr[finite], tpr[finite], thr[finite]
        i = int(np.argmin(np.abs(fpr - (1 - tpr))))
        n1, n0 = int((y == 1).sum()), int((y == 0).sum())
        acc = (tpr * n1 + (1 - fpr) * n0) / len(y)
        j = int(np.argmax(acc))
        rows += [("equal error rate (this data)", float(thr[i])),
                 ("best accuracy (this data)", float(thr[j]))]
    return [{"name": name, "log_odds": t, "probability": float(probability(detector,
                                                                         np.array(t))),
             **{k: v for k, v in call_metrics(y, scores >= t).items()
                if k != "confusion_matrix"}} for name, t in rows]


def _same_data(train: str | None, evaluated: str) -> bool | None:
    """True when the evaluated data is (inside) the training data, None when unknown."""
    if not train or not os.path.isabs(train):
        return None
    root = train.rstrip(os.sep)
    return evaluated == train or evaluated.startswith(root + os.sep)


def _faces_found(found: np.ndarray, y: np.ndarray, errors: list,
                 y_failed: np.ndarray) -> dict:
    """Per class, images with a face found and images looked at: the images read
    plus those refused for having none (``faces="crop"`` or ``"align"``); ``y_failed``
    are the labels of the failed images, whose records ``errors`` are, in order."""
    refused = np.array([e.reason.startswith(NO_FACE) for e in errors], dtype=bool)
    return {c: {"found": int(found[y == c].sum()),
                "images": int((y == c).sum() + (y_failed[refused] == c).sum())}
            for c in (0, 1)}


def _scored_view(rgb: np.ndarray, record, reading):
    """What the model read of the decoded image ``rgb`` for its score ``record``: under a
    face policy the crop of the face that counted (its most fake), else the framed
    image."""
    views = views_of(rgb, reading, record.item.name)
    box = record.faces[0].box if record.faces else None
    return next((v.crop for v in views if v.box == box), views[0].crop)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_training_curves(detector, path) -> Path:
    """Draw a CNN detector's training curves (loss and accuracy per epoch) as a PNG.

    Parameters
    ----------
    detector : CnnDetector
        Fitted or loaded (its ``training_["history"]``).
    path : path
        The PNG to write.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ImportError
        When matplotlib is missing (the message says what to install).
    ValueError
        When the detector recorded no per-epoch history (feature detectors do not).
    """
    require_matplotlib()
    from . import _plots

    history = getattr(detector, "training_", {}).get("history")
    if not history:
        raise ValueError("this detector recorded no training history; only "
                         "the CNN (CnnDetector) trains in epochs")
    path = Path(path)
    _plots.training_curves(history, detector.training_.get("best_epoch"), path)
    return path


def write_report(detector, data, out_dir, *, labels=None, classes: Mapping | None = None,
                 threshold: float | None = None,
                 perturb: Iterable[str | Perturbation] = (), progress: bool | None = False,
                 gallery_size: int = 12, n_maps: int = 2, seed: int = 0) -> Report:
    """Score labelled data with a detector and write an HTML report about it.

    Parameters
    ----------
    detector : Detector
        A fitted (or loaded) detector.
    data : path, Dataset, or sequence of images
        A dataset folder or CSV manifest, a :class:`~ffeat.Dataset`, or images
        with ``labels``.
    out_dir : path
        Folder for ``index.html`` and its files (created; files of an earlier
        report there are replaced).
    labels : array-like of {0, 1}, optional
        True labels when ``data`` is a sequence of images.
    classes : mapping, optional
        Class names for a dataset path, as for :func:`~ffeat.load_dataset`.
    threshold : float, optional
        Decision threshold on the probability of fake (the detector's by default).
    perturb : iterable of str or Perturbation, optional
        Robustness perturbations, e.g. ``["jpeg=90,70,50", "blur=1,2"]``; each
        is applied to copies in memory and the data re-scored.
    progress : bool or None, optional
        Progress on stderr (``None``: on a terminal).
    gallery_size : int, optional
        Thumbnails per gallery.
    n_maps : int, optional
        Images per gallery that get patch-score and residual maps.
    seed : int, optional
        Seed of t-SNE, permutation importance and perturbation noise.

    Returns
    -------
    Report

    Raises
    ------
    ImportError
        When matplotlib is missing (the message says what to install).
    ValueError
        For unusable data or perturbation specs, or when no image can be read.
    """
    require_matplotlib()
    from . import _embed, _explain, _imagestats, _plots

    started = time.perf_counter()
    todo = parse_perturbations(perturb)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder; give a folder for the report")
    images, y_all, data_sources = labelled_data(data, labels, classes)
    check_fitted(detector)
    if not uses_features(detector.model_.kind):
        raise ValueError("the report explains feature detectors (spectra, coefficients, "
                         f"feature embeddings); a {detector.model_.kind} model has no "
                         "features: evaluate it without a report")
    for sub in ("thumbs", "maps"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    jobs = default_jobs(detector.jobs)
    families = resolve_features(detector.features)
    items = [single_item(obj, i) for i, obj in enumerate(images)]

    status(f"report: features of {len(items)} images", progress)
    records = list(iter_scored(detector, items, progress=progress, keep_rows=True))
    ok = np.array([r.error is None for r in records], dtype=bool)
    errors = [r.error for r in records if r.error is not None]
    if not ok.any():
        raise NoReadableImages(errors)
    t = detector.threshold if threshold is None else float(threshold)
    evaluation = Evaluation.of_records(detector, records, y_all, t, data_sources=data_sources)
    scored = [r for r in records if r.error is None]
    F, y = np.vstack([r.row for r in scored]), y_all[ok]
    kept = [r.item for r in scored]
    scores = np.array([r.log_odds for r in scored])
    called = evaluation.proba >= t
    correct = called == (y == 1)
    calibration = getattr(detector, "calibration_", None)
    t_logit = _logit(t) if calibration is None else float(
        np.clip(calibration.log_odds_at(t), -_LOGIT_CLIP, _LOGIT_CLIP))
    both = len(np.unique(y)) == 2
    files: dict[str, str] = {}

    def plot(name: str, fn, *args) -> str:
        fn(*args, out / name)
        files[name] = name
        return name

    # -- training vs evaluated data ------------------------------------------------------
    train = dict(detector.training_)
    eval_desc = describe_data(data if isinstance(data, (str, os.PathLike, Dataset))
                              else images)
    same = _same_data(train.get("data"), eval_desc)
    thresholds = _recalibrated(detector, y, scores, t_logit)

    # -- figures of scores -------------------------------------------------------------
    status("report: curves and histograms", progress)
    if both:
        plot("curves.png", _plots.curves, y, scores)
    plot("reliability.png", _plots.reliability, y, evaluation.proba)
    plot("scores.png", _plots.score_histograms, y, scores,
         {r["name"]: r["log_odds"] for r in thresholds})

    # -- image statistics, spectra -----------------------------------------------------
    status("report: image statistics and spectra", progress)
    stats = _imagestats.image_stats(kept, y, jobs=jobs, progress=progress,
                                    faces=detector.reading.faces != "off")
    plot("spectra.png", _plots.spectra, stats.spectrum, y)
    plot("residual_spectrum.png", _plots.residual_spectrum, stats.residual_power, stats.crop)
    plot("dataset.png", _plots.distributions, stats.brightness, stats.saturation,
         stats.sharpness, y)

    # -- galleries and maps ------------------------------------------------------------
    status("report: galleries and per-image maps", progress)
    chosen = select(y, scores, called, gallery_size)
    thumbs: dict[str, list[dict]] = {}
    map_rows: list[dict] = []
    for gallery, rows in chosen.items():
        thumbs[gallery] = []
        for j, i in enumerate(rows):
            try:
                rgb = read_item(kept[i], detector.reading)
            except ImageReadError:
                continue
            name = f"thumbs/{gallery}-{j:02d}.jpg"
            faces = scored[i].faces or ()
            write_thumbnail(rgb, out / name, boxes=[f.box for f in faces if f.box is not None],
                            quads=[f.quad for f in faces if f.quad is not None])
            files[name] = name
            entry = {"src": name, "source": kept[i].name, "proba": float(evaluation.proba[i]),
                     "label": int(y[i]), "correct": bool(correct[i]),
                     "generator": None if evaluation.generators is None
                     else evaluation.generators[i]}
            thumbs[gallery].append(entry)
            if j < n_maps:
                view = _scored_view(rgb, scored[i], detector.reading)
                pmap = _explain.patch_map(view, families, detector.model_)
                emap = _explain.residual_energy_map(view)
                name = printable(os.path.basename(kept[i].name))  # a plot title: one line
                title = f"{name}  P(fake)={entry['proba']:.3f}"
                src = plot(f"maps/{gallery}-{j:02d}.png", _plots.image_maps, view, pmap,
                           emap, title, t_logit)
                map_rows.append({**entry, "map": src, "gallery": gallery})

    # -- embedding ---------------------------------------------------------------------
    status(f"report: PCA and t-SNE of {len(F)} feature vectors", progress)
    emb = _embed.embed(F, seed=seed)
    plot("embedding.png", _plots.embedding, emb, y, correct)

    # -- explanations ------------------------------------------------------------------
    status("report: coefficients and permutation importance", progress)
    groups = column_groups(families)
    coef = _explain.coefficients(detector.model_, detector.feature_names_, groups)
    if coef is not None:
        plot("coefficients.png", _plots.coefficients, coef)
    n_repeats = 5 if coef is not None else 2
    perm = _explain.permutation_importance(detector.model_, F, y, groups,
                                           n_repeats=n_repeats, seed=seed)
    if perm:
        plot("permutation.png", _plots.permutation, perm)

    # -- robustness --------------------------------------------------------------------
    rob = None
    if todo:
        rob = _robustness(detector, images, todo, y_all, threshold=t, baseline=evaluation,
                          progress=progress)
        if rob[0]["roc_auc"] is not None:
            plot("robustness.png", _plots.robustness, rob)

    # -- dataset overview numbers --------------------------------------------------------
    n_listed = {c: int((y_all == c).sum()) for c in (0, 1)}
    n_read = {c: int((y == c).sum()) for c in (0, 1)}
    sizes = {c: Counter(f"{w}x{h}" for w, h, yy in zip(stats.width, stats.height, y)
                        if yy == c) for c in (0, 1)}
    formats = {c: Counter(f for f, yy in zip(stats.formats, y) if yy == c) for c in (0, 1)}
    faces_found = None if stats.face_found is None else _faces_found(stats.face_found, y,
                                                                     errors, y_all[~ok])

    summary = _jsonable({
        "ffeat_version": __version__, "metrics": evaluation.to_dict(),
        "training": train, "evaluated_data": eval_desc, "same_data_as_training": same,
        "thresholds": thresholds, "robustness": rob,
        "permutation_importance": [{"group": g, "auc_drop": m, "std": s} for g, m, s in perm],
        "coefficient_groups": None if coef is None else
        [{"group": g, "sum_abs": v, "n_columns": n} for g, v, n in coef["groups"]],
        "dataset": {"listed": n_listed, "read": n_read,
                    "sizes": {c: dict(sizes[c].most_common()) for c in (0, 1)},
                    "formats": {c: dict(formats[c]) for c in (0, 1)},
                    "faces_found": faces_found},
        "galleries": thumbs, "files": sorted(files),
    })
    (out / "report.json").write_text(json.dumps(summary, indent=1) + "\n")

    from ._sections import PageContent, build_page
    content = PageContent(
        detector=detector, evaluation=evaluation, train=train, eval_desc=eval_desc,
        same=same, thresholds=thresholds, files=files, thumbs=thumbs, map_rows=map_rows,
        coef=coef, perm=perm, rob=rob, stats=stats, y=y, n_listed=n_listed, n_read=n_read,
        sizes=sizes, formats=formats, faces_found=faces_found, emb=emb,
        perturb_asked=bool(todo), elapsed=time.perf_counter() - started)
    page = build_page(content)
    index = out / "index.html"
    index.write_text(page, encoding="utf-8", errors="backslashreplace")
    status(f"report: wrote {index} in {time.perf_counter() - started:.1f} s", progress)
    return Report(index, evaluation, rob, summary)
