"""Calibration, inconclusive band and perturbed accuracy on ``140k`` held-out folds.

For each training setting (no augmentation; ``augment="jpeg,resize,blur"``) and
each calibration (None, ``"sigmoid"``, ``"isotonic"``), on stratified 5-fold
cross-validation of ``140k`` (seed 0), the Detector's own procedure is run on
the training folds' feature rows: its estimator on all training rows, the
calibrator and the automatic band on the training rows' out-of-fold scores
(``ffeat.models._calibration``). The held-out fold gives:

- ``ece`` (10 equal-width bins) and ``brier`` of the probability of fake;
- ``accuracy`` at the threshold (0.5), clean and after JPEG q50, resize 0.5 and
  blur 1 (the held-out images perturbed as ``ffeat evaluate --perturb`` does);
- ``coverage`` (share of conclusive answers) and ``conclusive_accuracy`` with the
  automatic band.

Feature rows are computed once (clean, augmented copies, perturbed copies), so
the calibrations share them. The inner out-of-fold scores are also shared by the
calibrations of one setting and fold (they do not depend on the calibration).

Usage: ``python benchmarks/calibration.py [--quick] [--augment-only | --no-augment]
[--json FILE]``
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from sklearn.model_selection import StratifiedKFold

try:
    from . import _data
except ImportError:  # run as a script: this folder is on sys.path
    import _data

import ffeat  # noqa: E402
from ffeat.models import _calibration as cal
from ffeat.reading._perturb import Perturbed, parse_perturbations  # noqa: E402
from ffeat.reading._rows import feature_rows  # noqa: E402
from ffeat.reading._sources import Item  # noqa: E402
from ffeat.detector import _augmented_items, image_items  # noqa: E402
from ffeat.evaluation import calibration_metrics, call_metrics  # noqa: E402
from ffeat.features import resolve_features  # noqa: E402

SEED = 0
FOLDS = 5
AUGMENT = ("jpeg", "resize", "blur")
PERTURB = ("jpeg=50", "resize=0.5", "blur=1")
THRESHOLD = 0.5


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _rows(items: list[Item], families) -> np.ndarray:
    F, errors = feature_rows(items, families, jobs=None, cache=True)
    if errors:
        raise RuntimeError(f"{len(errors)} images could not be read: {errors[:3]}")
    return F.astype(np.float32)


def _features(files, kinds: tuple[str, ...]):
    """Clean rows, augmented rows (kind-major, as Detector.fit) and perturbed rows."""
    families = resolve_features(ffeat.DEFAULT_FEATURES)
    items = image_items([str(f) for f in files])
    t = time.perf_counter()
    clean = _rows(items, families)
    _log(f"clean rows: {time.perf_counter() - t:.0f} s")
    augmented = _rows(_augmented_items(items, kinds, SEED), families) if kinds else None
    _log(f"augmented rows: {time.perf_counter() - t:.0f} s")
    perturbed = {}
    for p in parse_perturbations(PERTURB):
        perturbed[p.label] = _rows([Item(Perturbed(it.obj, p, seed=i, name=it.name), it.name,
                                         it.label) for i, it in enumerate(items)], families)
        _log(f"{p.label} rows: {time.perf_counter() - t:.0f} s")
    return clean, augmented, perturbed


def _fold(train, test, clean, augmented, perturbed, y, n_aug) -> dict:
    """Every calibration's held-out figures on one outer fold."""
    n = len(y)
    rows = [clean[train]] + ([augmented[k * n + train] for k in range(n_aug)])
    X = np.concatenate(rows).astype(np.float64)
    y_tr = np.tile(y[train], 1 + n_aug)
    groups = np.tile(train, 1 + n_aug)
    model = ffeat.Detector(random_state=SEED)._fit_rows(X, y_tr, groups)
    z_oof = cal._out_of_fold(model, X, y_tr, groups, SEED)
    z_test = model.decision_function(clean[test].astype(np.float64))
    z_pert = {k: model.decision_function(v[test].astype(np.float64))
              for k, v in perturbed.items()}
    out = {}
    for kind in (None, *cal.KINDS):
        x_arr, y_arr = cal._fit_map(kind, z_oof, y_tr)
        c = cal.Calibration(kind, x_arr, y_arr, np.array([THRESHOLD, THRESHOLD]))
        c.band = cal._auto_band(c.probability(z_oof), y_tr, THRESHOLD)
        out[str(kind)] = {"p": c.probability(z_test), "band": c.band.tolist(),
                          "perturbed": {k: c.probability(z) for k, z in z_pert.items()}}
    return out


def _summary(y: np.ndarray, p: np.ndarray, perturbed: dict, bands: list) -> dict:
    calls = call_metrics(y, p >= THRESHOLD)
    lo, hi = np.array(bands).T  # per fold, broadcast to its images below
    inconclusive = (p >= lo) & (p < hi)
    conclusive = ~inconclusive
    return {**calibration_metrics(y, p), "accuracy": calls["accuracy"],
            **{f"accuracy {k}": call_metrics(y, v >= THRESHOLD)["accuracy"]
               for k, v in perturbed.items()},
            "coverage": float(conclusive.mean()),
            "conclusive_accuracy": float(((p >= THRESHOLD) == y)[conclusive].mean())
            if conclusive.any() else None,
            "band_per_fold": [[round(a, 4), round(b, 4)] for a, b in
                              dict.fromkeys(map(tuple, np.array(bands).tolist()))]}


def measure(n_per_class: int | None, settings: list[str], partial: str | None = None) -> dict:
    """Every setting's figures; after each fold, those of the folds done so far are
    written to ``partial`` (JSON) when given, so a long run can be read before it ends."""
    files, y = _data.face_files("140k", n_per_class)
    y = y.astype(np.int64)
    clean, augmented, perturbed = _features(files, AUGMENT if "augment" in settings else ())
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(clean, y))
    result = {"n_images": int(len(y)), "folds": FOLDS, "seed": SEED, "settings": {}}
    for setting in settings:
        n_aug = len(AUGMENT) if setting == "augment" else 0
        p = {k: np.empty(len(y)) for k in ("None", *cal.KINDS)}
        pp = {k: {q: np.empty(len(y)) for q in perturbed} for k in p}
        bands = {k: np.empty((len(y), 2)) for k in p}
        done = np.zeros(len(y), dtype=bool)
        for i, (train, test) in enumerate(folds):
            t = time.perf_counter()
            got = _fold(train, test, clean, augmented, perturbed, y, n_aug)
            for k, r in got.items():
                p[k][test] = r["p"]
                bands[k][test] = r["band"]
                for q, v in r["perturbed"].items():
                    pp[k][q][test] = v
            _log(f"{setting} fold {i + 1}/{FOLDS}: {time.perf_counter() - t:.0f} s")
            done[test] = True
            if partial:
                with open(partial, "w") as fh:
                    json.dump({"setting": setting, "folds_done": i + 1, "n_images": int(
                        done.sum()), **{k: _summary(y[done], p[k][done], {
                            q: v[done] for q, v in pp[k].items()}, bands[k][done])
                        for k in p}}, fh, indent=1)
        result["settings"][setting] = {k: _summary(y, p[k], pp[k], bands[k]) for k in p}
    return result


def markdown(result: dict) -> str:
    lines = [f"{result['n_images']} images of 140k, {result['folds']}-fold, seed "
             f"{result['seed']}", "",
             "| training | calibration | ECE | Brier | acc | acc jpeg=50 | acc resize=0.5 | "
             "acc blur=1 | coverage | acc conclusive |", "|---|---|---|---|---|---|---|---|---|---|"]
    for setting, kinds in result["settings"].items():
        for kind, r in kinds.items():
            lines.append(
                f"| {setting} | {kind} | {r['ece']:.3f} | {r['brier']:.3f} | "
                f"{r['accuracy']:.3f} | {r['accuracy jpeg=50']:.3f} | "
                f"{r['accuracy resize=0.5']:.3f} | {r['accuracy blur=1']:.3f} | "
                f"{r['coverage']:.3f} | {r['conclusive_accuracy'] or float('nan'):.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="40 images per class (a smoke test)")
    p.add_argument("--settings", nargs="+", default=["none", "augment"],
                   choices=["none", "augment"])
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    if _data.faces_missing("calibration.py", "140k/"):
        return 2
    with _data.one_blas_thread():
        result = measure(40 if args.quick else None, args.settings,
                         args.json and args.json + ".partial")
    print(markdown(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
