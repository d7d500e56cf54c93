"""The fixed accuracy protocol of docs/measurements.md, "Accuracy on real faces".

For every feature family alone, the default set and all families together, and
for each classifier (the Detector's own estimators, on the same feature rows):

- ``140k AUC`` / ``acc``: stratified 5-fold cross-validation on ``140k`` (seed
  0), ROC AUC of the out-of-fold scores and accuracy at the default threshold
  (probability of fake 0.5);
- ``tpdne AUC``: trained on all of ``140k``, scored on ``tpdne`` (the
  cross-dataset test the sets' README recommends);
- ``ms/img``: feature time per 256 px image on one core (compiled kernels,
  decoding excluded; decoding is timed on its own row).

Gradient boosting is left out of rows wider than ``HGB_MAX_COLUMNS`` columns: its
time grows with the columns (gray, 1,024 of them, takes two minutes for the six
fits on two cores; the default set, 21,000, would take most of an hour).

The sets are read from ``$FFEAT_FACES`` (default ``../shared/faces`` beside the
repository); the script exits with a message when they are absent.

Usage: ``python benchmarks/accuracy.py [--classifiers logistic stacked hgb]
[--quick] [--json FILE] [--plot FILE]``
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

try:
    from . import _data
except ImportError:  # run as a script: this folder is on sys.path
    import _data

import ffeat  # noqa: E402
from ffeat.models._models import MODELS, sigmoid  # noqa: E402
from ffeat.features import FAMILIES, resolve_features  # noqa: E402

SEED = 0
FOLDS = 5
HGB_MAX_COLUMNS = 2000


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _decode(files) -> tuple[np.ndarray, float]:
    """RGB arrays of same-sized images and the median decode time per image (s)."""
    times, images = [], []
    for f in files:
        t = time.perf_counter()
        images.append(ffeat.load_image(f))
        times.append(time.perf_counter() - t)
    return np.stack(images), float(np.median(times))


def _features(rgb: np.ndarray, family) -> tuple[np.ndarray, float]:
    """One family's rows (batches of 64, one thread) and the time per image (s)."""
    t = time.perf_counter()
    rows = np.concatenate([family.compute(rgb[i:i + 64], 1) for i in range(0, len(rgb), 64)])
    return rows, (time.perf_counter() - t) / len(rgb)


def _estimator(classifier: str, names: tuple[str, ...]):
    """What a Detector with these families and classifier trains on its feature rows."""
    return ffeat.Detector(names, classifier, random_state=SEED)._estimator()


def _evaluate(classifier: str, names: tuple[str, ...], X: np.ndarray, y: np.ndarray,
              X_test: np.ndarray | None, y_test: np.ndarray | None) -> dict:
    """Out-of-fold AUC and accuracy on the training set, AUC on the test set."""
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    scores = np.empty(len(y))
    for train, test in folds.split(X, y):
        model = _estimator(classifier, names).fit(X[train], y[train])
        scores[test] = model.decision_function(X[test])
    result = {"cv_auc": roc_auc_score(y, scores),
              "cv_accuracy": accuracy_score(y, sigmoid(scores) >= 0.5)}
    if X_test is not None:
        model = _estimator(classifier, names).fit(X, y)
        result["tpdne_auc"] = roc_auc_score(y_test, model.decision_function(X_test))
    return result


def _rows() -> list[tuple[str, tuple[str, ...]]]:
    default = tuple(ffeat.DEFAULT_FEATURES)
    rows = [(name, (name,)) for name in FAMILIES]
    rows.append(("+".join(default) + " (default)", default))
    if set(default) != set(FAMILIES):
        rows.append(("all families", tuple(FAMILIES)))
    return rows


def measure(classifiers, n_per_class: int | None) -> dict:
    """Decode both sets, compute every family once, then evaluate every row."""
    sets = {}
    for name in ("140k", "tpdne"):
        if _data.faces_dir(name) is None:
            continue
        files, labels = _data.face_files(name, n_per_class)
        _log(f"decoding {len(files)} images of {name}")
        sets[name] = (*_decode(files), labels)
    rgb, decode_s, y = sets["140k"]
    feats, seconds = {}, {"decode": decode_s}
    for name in FAMILIES:
        _log(f"computing {name}")
        (family,) = resolve_features(name)
        feats[name, "140k"], seconds[name] = _features(rgb, family)
        if "tpdne" in sets:
            feats[name, "tpdne"] = _features(sets["tpdne"][0], family)[0]
    y_test = sets["tpdne"][2] if "tpdne" in sets else None
    table = []
    for label, names in _rows():
        X = np.hstack([feats[n, "140k"] for n in names])
        X_test = np.hstack([feats[n, "tpdne"] for n in names]) if "tpdne" in sets else None
        for classifier in classifiers:
            if classifier == "hgb" and X.shape[1] > HGB_MAX_COLUMNS:
                _log(f"{label} / hgb: skipped ({X.shape[1]} columns)")
                continue
            t = time.perf_counter()
            row = {"features": label, "classifier": classifier, "n_features": X.shape[1],
                   "ms_per_image": 1000 * sum(seconds[n] for n in names),
                   **_evaluate(classifier, names, X, y, X_test, y_test)}
            _log(f"{label} / {classifier}: AUC {row['cv_auc']:.3f} "
                 f"({time.perf_counter() - t:.0f} s)")
            table.append(row)
    return {"n_140k": int(len(y)), "n_tpdne": int(len(y_test)) if y_test is not None else 0,
            "decode_ms_per_image": 1000 * decode_s, "rows": table}


def markdown(result: dict) -> str:
    """The table, one row per feature set and classifier (docs/measurements.md renders
    its own from the JSON: benchmarks/render_docs.py)."""
    lines = [f"{result['n_140k']} images of 140k, {result['n_tpdne']} of tpdne; "
             f"JPEG decode {result['decode_ms_per_image']:.2f} ms/img", "",
             "| features | classifier | dims | 140k AUC | acc | tpdne AUC | ms/img |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        tpdne = f"{r['tpdne_auc']:.3f}" if "tpdne_auc" in r else "-"
        lines.append(f"| {r['features']} | {r['classifier']} | {r['n_features']} | "
                     f"{r['cv_auc']:.3f} | {r['cv_accuracy']:.3f} | {tpdne} | "
                     f"{r['ms_per_image']:.2f} |")
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    """Bar chart of the cross-validated and cross-dataset AUC of every row."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    labels = [f"{r['features']}\n{r['classifier']}" for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(rows)), 4.5))
    ax.bar(x - 0.2, [r["cv_auc"] for r in rows], 0.4, label="140k, 5-fold CV")
    ax.bar(x + 0.2, [r.get("tpdne_auc", np.nan) for r in rows], 0.4,
           label="trained on 140k, tested on tpdne")
    ax.axhline(0.95, color="k", lw=0.8, ls="--", label="target 0.95")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0.5, 1.0)
    ax.set_ylabel("ROC AUC")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3,
              frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classifiers", nargs="+", default=list(MODELS),
                   choices=list(MODELS))
    p.add_argument("--quick", action="store_true", help="20 images per class (a smoke test)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--plot", metavar="FILE", help="also plot the AUCs (needs matplotlib)")
    args = p.parse_args(argv)
    if _data.faces_missing("accuracy.py", "140k/ and tpdne/"):
        return 2
    with _data.one_blas_thread():
        result = measure(args.classifiers, 20 if args.quick else None)
    _data.write_results(result, markdown(result), args.json, args.plot, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
