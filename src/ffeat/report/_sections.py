"""The report's sections as HTML, from the numbers and files ``write_report`` made."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .._version import __version__
from ..evaluation import Evaluation
from ..features import resolve_features
from ._gallery import GALLERIES
from ._html import esc, figure, fmt, page, table
from ._imagestats import ImageStats

__all__ = ["PageContent", "build_page"]

_METRICS = [("accuracy", "accuracy"), ("precision", "precision (fake)"),
            ("recall", "recall (fake)"), ("f1", "F1 (fake)"), ("roc_auc", "ROC AUC"),
            ("average_precision", "average precision"), ("eer", "equal error rate"),
            ("brier", "Brier score"), ("ece", "expected calibration error (10 bins)"),
            ("coverage", "coverage (outside the inconclusive band)"),
            ("conclusive_accuracy", "accuracy on the conclusive images")]


def _p(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{esc(text)}</p>'


def _missing(files: dict, name: str, why: str) -> str:
    return figure(name, name) if name in files else _p(why, "warn")


def _training_line(train: dict) -> str:
    if not train:
        return "not recorded in the model file"
    parts = [f"{train.get('n_real', '?')} real and {train.get('n_fake', '?')} fake images"]
    if train.get("data"):
        parts.append(f"from {train['data']}")
    else:
        parts.append("(data path not recorded: model saved by an older ffeat)")
    if train.get("augment"):
        parts.append(f"augmented with {', '.join(train['augment'])} "
                     f"({train.get('n_rows', '?')} training rows)")
    return " ".join(parts)


def _summary(detector, evaluation, train, eval_desc, same) -> str:
    m = evaluation.metrics
    params = detector.get_params()
    rows = [["model", f"{params['classifier']} on "
                      f"{', '.join(f.name for f in resolve_features(detector.features))}"],
            ["trained on", _training_line(train)],
            ["evaluated on", f"{eval_desc}: {m['n_real']} real, {m['n_fake']} fake read, "
                             f"{len(evaluation.errors)} unreadable"],
            ["threshold", f"P(fake) >= {evaluation.threshold:g}"],
            ["ROC AUC / accuracy / EER",
             f"{fmt(m['roc_auc'])} / {fmt(m['accuracy'])} / {fmt(m['eer'])}"]]
    if same is True:
        verdict = ("The evaluated data is the training data (or part of it): these numbers "
                   "are optimistic. Evaluate on held-out or other data for a fair estimate.")
    elif same is False:
        verdict = ("Cross-dataset evaluation: the evaluated data differs from the training "
                   "data. See 'Cross-dataset' for thresholds recalibrated on this data.")
    else:
        verdict = ("The model does not record where its training data came from, so it is "
                   "unknown whether this is a cross-dataset evaluation.")
    body = table(None, rows) + _p(verdict, "warn" if same is not None else "note")
    if evaluation.errors:
        shown = "".join(f"<li>{esc(e.source)}: {esc(e.reason)}</li>"
                        for e in evaluation.errors[:20])
        more = f"<li>... {len(evaluation.errors) - 20} more</li>" \
            if len(evaluation.errors) > 20 else ""
        body += f"<p>Unreadable images (left out):</p><ul>{shown}{more}</ul>"
    return body


def _metrics(evaluation) -> str:
    m = evaluation.metrics
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    body = table(["metric", "value"], [[label, m[key]] for key, label in _METRICS])
    body += "<h3>Confusion matrix</h3>" + table(
        ["", "called real", "called fake", "total"],
        [["true real", tn, fp, tn + fp], ["true fake", fn, tp, fn + tp],
         ["total", tn + fn, fp + tp, tn + fp + fn + tp]], "cm")
    return body + _p(f"Fake is the positive class; an image is called fake when its "
                     f"probability of fake is at least {evaluation.threshold:g}.")


def _by_source(by_source: dict) -> str:
    rows = [[name, r["n"], r["n_real"], r["n_fake"], r["recall"], r["fpr"], r["accuracy"],
             r["roc_auc"], r["roc_auc_against"]] for name, r in by_source.items()]
    head = ["source", "images", "real", "fake", "recall (fakes called fake)",
            "FPR (reals called fake)", "accuracy", "ROC AUC", "AUC against"]
    return table(head, rows) + _p(
        "One row per source of the evaluated data (its top-level subfolders, or the "
        "manifest's source column), at the same threshold. ROC AUC is measured within a "
        "source that holds both classes, and for a source of fakes only against every real "
        "image of the data (pooled real): a generator the detector misses shows here even "
        "when the pooled figures look good.")


def _cross(train, eval_desc, same, thresholds) -> str:
    rows = [[r["name"], r["probability"], r["log_odds"], r["accuracy"], r["precision"],
             r["recall"], r["f1"], r["fpr"], r["fnr"]] for r in thresholds]
    head = ["threshold", "P(fake)", "log-odds", "accuracy", "precision", "recall", "F1",
            "FPR (real called fake)", "FNR (fake called real)"]
    intro = (f"Training data: {_training_line(train)}. Evaluated data: {eval_desc}. ")
    if same is False:
        intro += ("They differ, so this is the cross-dataset case: scores can shift on data "
                  "from another source even when their ranking (ROC AUC) holds up. The "
                  "thresholds below are recalibrated on the evaluated data's own labels; they "
                  "show what a threshold tuned for this data would give, and are optimistic "
                  "for that reason (use a labelled sample of the target data to pick one).")
    elif same is True:
        intro += ("They are the same data, so recalibration adds little; the thresholds are "
                  "shown for completeness.")
    else:
        intro += "Whether they differ is unknown; the recalibrated thresholds are shown."
    return _p(intro) + table(head, rows)


def _gallery(thumbs: dict) -> str:
    body = ""
    for gid, (title, order) in GALLERIES.items():
        entries = thumbs.get(gid, [])
        cells = "".join(
            f'<div class="thumb {"right" if e["correct"] else "wrong"}" '
            f'title="{esc(e["source"])}"><img src="{esc(e["src"])}" '
            f'alt="{esc(os.path.basename(e["source"]))}">'
            f'{esc(os.path.basename(e["source"]))}<br>P(fake) {e["proba"]:.3f}'
            + (f'<br>like {esc(e["generator"])}' if e.get("generator") else "") + '</div>'
            for e in entries)
        body += (f'<h3 id="gallery-{esc(gid)}">{esc(title)} ({len(entries)} shown, '
                 f'{esc(order)})</h3>')
        body += f'<div class="gallery">{cells}</div>' if entries else _p("none")
    return body


def _explanations(files, coef, perm) -> str:
    body = "<h3>Coefficients</h3>"
    if coef is None:
        body += _p("The classifier is not linear (gradient boosting), so it has no "
                   "coefficients; the permutation importance below applies to any model.")
    else:
        body += figure("coefficients.png", "coefficients",
                       "Logistic coefficients on standardised features: the weight each group "
                       "carries, and per spectrum bin the sign (orange: more power pushes "
                       "towards fake).")
        body += table(["feature", "coefficient"], [[n, v] for n, v in coef["top"]])
    body += "<h3>Permutation importance</h3>"
    if perm:
        body += figure("permutation.png", "permutation importance",
                       "ROC AUC lost on the evaluated data when one group's columns are "
                       "shuffled across images (seeded). A negative drop means the group "
                       "hurts on this data: common when it comes from another source.")
        top = sorted(perm, key=lambda p: -p[1])[:10]
        body += table(["group", "AUC drop", "std"], [[g, m, s] for g, m, s in top])
    else:
        body += _p("Needs both classes in the evaluated data.", "warn")
    return body


def _maps(map_rows) -> str:
    if not map_rows:
        return _p("No images were selected.", "warn")
    body = _p("For images from the galleries: the image, the detector's log-odds of fake on "
              "overlapping patches (a quarter of the short side each, scored like whole "
              "images; the colour scale is centred on the threshold, so red areas push "
              "towards fake), and the local energy of the high-pass noise residual that "
              "the residual features summarise. Patches are smaller than what the model was "
              "trained on, so read patch scores relative to each other.")
    for r in map_rows:
        title = GALLERIES[r["gallery"]][0].split(":")[0]
        body += figure(r["map"], r["source"],
                       f"{title}: {r['source']} (true {'fake' if r['label'] else 'real'}, "
                       f"P(fake) {r['proba']:.3f})")
    return body


def _dataset(stats, y, n_listed, n_read, sizes, formats, faces_found) -> str:
    rows = [[name, n_listed[c], n_read[c], n_listed[c] - n_read[c]]
            for c, name in ((0, "real"), (1, "fake"))]
    body = "<h3>Class counts</h3>" + table(["class", "listed", "read", "unreadable"], rows)
    if faces_found is not None:
        rows = [[name, faces_found[c]["found"], faces_found[c]["images"],
                 faces_found[c]["found"] / faces_found[c]["images"]
                 if faces_found[c]["images"] else None]
                for c, name in ((0, "real"), (1, "fake"))]
        body += "<h3>Faces found</h3>" + table(["class", "face found", "images", "rate"], rows)
    body += "<h3>Image sizes (width x height) and formats</h3>"
    size_rows = []
    for c, name in ((0, "real"), (1, "fake")):
        common = sizes[c].most_common(6)
        rest = sum(sizes[c].values()) - sum(n for _, n in common)
        size_rows.append([name, ", ".join(f"{s}: {n}" for s, n in common)
                          + (f", other: {rest}" if rest else ""),
                          ", ".join(f"{f}: {n}" for f, n in formats[c].most_common())])
    body += table(["class", "sizes", "formats"], size_rows)
    stat_rows = []
    for c, name in ((0, "real"), (1, "fake")):
        m = y == c
        stat_rows.append([name] + [float(np.nanmedian(v[m])) if m.any() else None
                                   for v in (stats.brightness, stats.saturation,
                                             stats.sharpness)])
    body += "<h3>Brightness, saturation and sharpness</h3>"
    body += table(["class (medians)", "brightness", "saturation", "sharpness"], stat_rows)
    body += figure("dataset.png", "distributions",
                   "Per class: mean luma, mean HSV saturation, variance of the Laplacian of "
                   "the luma (log10). Differences here are composition or processing "
                   "differences a detector may pick up instead of generator traces.")
    return body


def _robustness(files, rob, perturb_asked) -> str:
    if not perturb_asked:
        return _p("Not run. Add perturbations, e.g. ffeat evaluate MODEL DATA --report DIR "
                  "--perturb jpeg=90,70,50 --perturb resize=0.75,0.5 --perturb blur=1,2 "
                  "--perturb noise=2,5", "warn")
    head = ["perturbation", "ROC AUC", "AP", "accuracy", "EER", "scored", "unreadable"]
    rows = [[r["label"], r["roc_auc"], r["average_precision"], r["accuracy"], r["eer"],
             r["n_scored"], r["n_errors"]] for r in rob]
    body = _p("Every image re-scored after the perturbation, made in memory on the decoded "
              "pixels (inputs are not modified): JPEG re-encoding at the given quality, "
              "bicubic rescaling by the factor, Gaussian blur of the given sigma (px), "
              "Gaussian noise of the given std (8-bit levels, seeded per image).")
    body += table(head, rows)
    if "robustness.png" in files:
        body += figure("robustness.png", "robustness", "ROC AUC against strength; dashed: "
                                                       "unperturbed, dotted: chance.")
    return body


@dataclass(frozen=True)
class PageContent:
    """What the report page shows, as :func:`ffeat.report.write_report` computed it.

    Attributes
    ----------
    detector, evaluation
        The fitted detector and its :class:`~ffeat.Evaluation` on the data.
    train, eval_desc, same
        ``training_`` of the detector, the evaluated data's description, and
        whether it is (inside) the training data (None: unknown).
    thresholds
        Rows of the default and recalibrated thresholds.
    files, thumbs, map_rows
        Figures written, gallery thumbnails and per-image map rows.
    coef, perm, rob
        Coefficient groups (None for a non-linear model), permutation
        importance, robustness rows (None when not asked for).
    stats, y, n_listed, n_read, sizes, formats, emb
        Image statistics, labels of the images read, counts per class, image
        sizes and formats per class, the PCA and t-SNE embedding.
    faces_found : dict or None
        Per class, images with a face found and images looked at (None: no face
        policy).
    perturb_asked : bool
        Whether robustness was asked for.
    elapsed : float
        Seconds taken.
    """

    detector: object
    evaluation: Evaluation
    train: dict
    eval_desc: str
    same: bool | None
    thresholds: list[dict]
    files: dict[str, str]
    thumbs: dict[str, list[dict]]
    map_rows: list[dict]
    coef: dict | None
    perm: list[tuple[str, float, float]]
    rob: list[dict] | None
    stats: ImageStats
    y: np.ndarray
    n_listed: dict[int, int]
    n_read: dict[int, int]
    sizes: dict
    formats: dict
    faces_found: dict | None
    emb: dict
    perturb_asked: bool
    elapsed: float


def build_page(c: PageContent) -> str:
    """The whole report page from its content ``c``."""
    both = c.evaluation.metrics["roc_auc"] is not None
    sections = [
        ("summary", "Summary", _summary(c.detector, c.evaluation, c.train, c.eval_desc, c.same)),
        ("metrics", "Metrics", _metrics(c.evaluation)),
        ("curves", "ROC and precision-recall",
         _missing(c.files, "curves.png", "Needs both classes in the evaluated data.")),
        ("scores", "Score histograms",
         figure("scores.png", "score histograms",
                "Log-odds of fake per true class; vertical lines: the model's threshold and "
                "the thresholds recalibrated on this data.")),
        ("calibration", "Calibration",
         figure("reliability.png", "reliability diagram",
                "Share of fakes against the mean probability of fake in 10 equal-width "
                "bins of the probability (calibrated when the model has a calibration): "
                "points on the diagonal mean the probabilities say what they mean.")),
        ("cross-dataset", "Cross-dataset", _cross(c.train, c.eval_desc, c.same, c.thresholds)),
        ("galleries", "Galleries", _gallery(c.thumbs)),
        ("spectra", "Spectra",
         figure("spectra.png", "azimuthal spectra",
                "Azimuthally averaged log power spectrum of the luma (the spectrum feature): "
                "class means with +-1 std bands, and their difference with +-2 standard "
                "errors.")
         + figure("residual_spectrum.png", "mean residual spectrum",
                  f"Mean 2-D power spectrum of the high-pass residual over "
                  f"{c.stats.crop}x{c.stats.crop} centre crops: up-sampling generators "
                  "leave periodic peaks here.")),
        ("embedding", "Feature embedding",
         figure("embedding.png", "PCA and t-SNE",
                "Standardised feature vectors in 2-D (PCA, and t-SNE with a fixed seed"
                + (f", {len(c.emb['tsne_index'])} images" if c.emb["tsne"] is not None
                   else "; t-SNE needs at least 10 images") + "), coloured by true label "
                "and by whether the detector got them right.")),
        ("explanations", "Explanations", _explanations(c.files, c.coef, c.perm)),
        ("maps", "Per-image evidence maps", _maps(c.map_rows)),
        ("dataset", "Dataset overview",
         _dataset(c.stats, c.y, c.n_listed, c.n_read, c.sizes, c.formats, c.faces_found)),
        ("robustness", "Robustness", _robustness(c.files, c.rob, c.perturb_asked)),
    ]
    if not both:
        sections[1] = ("metrics", "Metrics", _metrics(c.evaluation)
                       + _p("Only one class could be read: AUC, AP and EER are undefined.",
                            "warn"))
    if (by_source := c.evaluation.by_source) is not None:
        sections.insert(2, ("sources", "By source", _by_source(by_source)))
    subtitle = (f"ffeat {__version__}; {c.evaluation.metrics['n_real']} real and "
                f"{c.evaluation.metrics['n_fake']} fake images; written in {c.elapsed:.0f} s")
    return page("ffeat evaluation report", subtitle, sections)
