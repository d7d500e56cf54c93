"""``ffeat train``: fit a detector on a labelled dataset and save it."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .._perturb import parse_augment
from ..dataset import describe_data, load_dataset
from ..detector import Detector
from ..extraction import DEFAULT_FEATURES
from ..features import resolve_features
from ._common import (add_classes_option, add_features_option, add_run_options, fail,
                      parse_classes, progress, quiet_warnings, report_skipped, say)


def _run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if not out.resolve().parent.is_dir():
        return fail(f"folder {out.parent} of the output does not exist", 2)
    try:
        families = resolve_features(args.features)
        augment = parse_augment(args.augment)
        dataset = load_dataset(args.data, parse_classes(args.classes))
    except ValueError as exc:
        return fail(str(exc), 2)
    n_real, n_fake = dataset.counts()
    say(args, f"training {args.classifier} on {len(dataset.paths)} images ({n_real} real, "
              f"{n_fake} fake) with features {', '.join(f.name for f in families)}"
              + (f", augmented with {', '.join(augment)}" if augment else ""))
    detector = Detector(families, args.classifier, jobs=args.jobs, cache=args.cache,
                        backend=args.backend, augment=list(augment) or None)
    start = time.perf_counter()
    try:
        with quiet_warnings():
            detector.fit(dataset, progress=progress(args))
    except ValueError as exc:
        report_skipped(getattr(detector, "errors_", []))
        return fail(str(exc))
    report_skipped(detector.errors_)
    detector.training_["data"] = describe_data(args.data)  # the folder or manifest given
    try:
        detector.save(out)
    except OSError as exc:
        return fail(f"cannot write {out}: {exc}")
    t = detector.training_
    say(args, f"wrote {out}: trained on {t['n_real']} real and {t['n_fake']} fake images "
              f"({t['n_errors']} unreadable, left out) in {time.perf_counter() - start:.1f} s")
    return 0


def add_parser(sub) -> None:
    """Register ``ffeat train``."""
    p = sub.add_parser(
        "train", help="train a detector on labelled images and save it",
        description="Train a detector on DATA: a folder with real/ and fake/ images at any "
                    "depth (train/real, valid/fake, ...; other names with --classes) or a "
                    "CSV manifest with path and label columns. Unreadable images are "
                    "listed and left out. Features are cached, so training another "
                    "classifier on the same files does not decode them again.")
    p.add_argument("data", metavar="DATA", help="dataset folder or CSV manifest")
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="where to write the model")
    add_features_option(p, DEFAULT_FEATURES)
    p.add_argument("--classifier", choices=("logistic", "hgb"), default="logistic",
                   help="logistic regression or histogram gradient boosting "
                        "(default: logistic)")
    p.add_argument("--augment", metavar="KINDS", default=None,
                   help="add augmented copies made in memory, one per image and kind: "
                        "comma-separated of jpeg (quality 60-95), blur (sigma 0-2 px), "
                        "resize (factor 0.5-1), noise (std 1-5 levels), flip; e.g. "
                        "--augment jpeg,blur,resize,flip")
    add_classes_option(p)
    add_run_options(p)
    p.set_defaults(func=_run)
