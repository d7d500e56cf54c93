"""Residual chroma at full or half resolution: separation and cost.

The ``residual`` family filters the chroma planes (Cb, Cr) at half resolution by default
(``Residual(half_res=("Cb", "Cr"))``: 2 x 2 block means, where JPEG's 4:2:0 sampling
keeps colour). This protocol compares that with full-resolution chroma
(``half_res=()``) and with luma alone (``channels=("Y",)``), on the residual columns
only, for each two-class set (``140k``: FFHQ against StyleGAN at 256 px; ``hq``:
CelebA-HQ against StyleGAN at 512 px), images as given:

- ``auc``: ROC AUC of a standardised logistic regression (C = 0.1), mean and standard
  deviation over stratified 5-fold cross-validation (seed 0);
- ``ms``: the family's compiled kernel, milliseconds an image, one thread, median of 5
  passes over the set's first 32 images (each pass after a warm-up).

The detector is not tuned here: no setting is chosen from these folds but
``half_res`` itself, which these figures motivated (say so when quoting them).

Usage: ``python benchmarks/residual_chroma.py [--quick] [--json FILE]``
(``--json docs/results/residual-chroma.json`` for the table in docs/features.md).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

try:
    from . import _data, render_docs
except ImportError:  # run as a script: this folder is on sys.path
    import _data
    import render_docs

import ffeat  # noqa: E402

SEED = 0
FOLDS = 5
SETS = ("140k", "hq")
VARIANTS = {
    "half-resolution chroma (default)": ffeat.Residual(),
    "full-resolution chroma": ffeat.Residual(half_res=()),
    "luma only": ffeat.Residual(channels=("Y",)),
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(set_name: str, n_per_class: int | None = None) -> dict:
    """The figures of every variant on one set (see the module docstring)."""
    files, y = _data.face_files(set_name, n_per_class)
    images = [ffeat.load_image(f) for f in files]
    out = {"n": len(files), "variants": {}}
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    for name, family in VARIANTS.items():
        X = np.vstack([family.compute(im) for im in images]).astype(np.float64)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
        auc = cross_val_score(model, X, y, cv=folds, scoring="roc_auc")
        sample = images[:32]
        seconds = _data.median_time(lambda: [family.compute(im) for im in sample], 5)
        out["variants"][name] = {"family": repr(family), "columns": X.shape[1],
                                 "auc": float(auc.mean()), "auc_sd": float(auc.std()),
                                 "ms": seconds / len(sample) * 1e3}
        _log(f"{set_name}: {name}: AUC {auc.mean():.3f} +- {auc.std():.3f}, "
             f"{seconds / len(sample) * 1e3:.2f} ms an image")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 images a class")
    parser.add_argument("--json", metavar="FILE", help="write the figures here")
    args = parser.parse_args(argv)
    if _data.faces_missing("residual_chroma.py", "140k/ and hq/"):
        return 0
    started = time.perf_counter()
    result = {"seed": SEED, "folds": FOLDS, "sets": {
        s: measure(s, 40 if args.quick else None) for s in SETS if _data.faces_dir(s)}}
    result["seconds"] = time.perf_counter() - started
    _data.write_results(result, render_docs.residual_chroma(result), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
