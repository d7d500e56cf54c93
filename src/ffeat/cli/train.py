"""``ffeat train``: fit a detector on a labelled dataset and save it."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .._base import ImageClassifier
from .._factory import make_detector
from ..extraction import DEFAULT_FEATURES
from ..features import resolve_features
from ..models._calibration import DEFAULT_BAND, DEFAULT_CALIBRATION, KINDS
from ..models._models import CLASSIFIERS, DEFAULT_CLASSIFIER, uses_features
from ..reading import DETECTOR_READING
from ..reading._perturb import parse_augment
from ..reading.dataset import describe_data, load_dataset
from ._common import (
    add_augment_option,
    add_classes_option,
    add_cnn_options,
    add_faces_option,
    add_features_option,
    add_frame_option,
    add_run_options,
    augment_params,
    cnn_params,
    fail,
    holding_lock,
    parse_classes,
    progress,
    quiet_warnings,
    reading_of,
    report_skipped,
    say,
)
from ._output import claim_output


def _curves_path(model: Path) -> Path:
    """Where the CNN's training curves go: ``MODEL.curves.png``."""
    return model.with_name(model.name + ".curves.png")


def _write_curves(args: argparse.Namespace, detector: ImageClassifier, model: Path) -> None:
    """The CNN's training curves as ``MODEL.curves.png``, or a note why not."""
    from ..report import write_training_curves

    path = _curves_path(model)
    try:
        write_training_curves(detector, path)
    except ImportError as exc:
        say(args, f"training curves not drawn: {exc}")
    except OSError as exc:
        say(args, f"training curves not written to {path}: {exc}")
    else:
        say(args, f"wrote {path}")


def _calibration(text: str) -> str | None:
    """``type=`` of ``--calibration``: a calibrator, or ``none`` (argparse exits 2)."""
    value = text.strip().lower()
    if value == "none":
        return None
    if value not in KINDS:
        raise argparse.ArgumentTypeError(f"give {', '.join(KINDS)} or none; got {text!r}")
    return value


def _band(text: str):
    """``type=`` of ``--band``: ``none``, ``auto`` or ``LO,HI`` with ``0 <= LO <= HI <= 1``
    (argparse exits 2)."""
    value = text.strip().lower()
    if value in ("none", "auto"):
        return None if value == "none" else value
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        lo = hi = float("nan")
    if not 0 <= lo <= hi <= 1:
        raise argparse.ArgumentTypeError(f"give none, auto or LO,HI with 0 <= LO <= HI <= 1 "
                                         f"(probabilities, e.g. 0.2,0.8); got {text!r}")
    return (lo, hi)


def _run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if not Path(os.path.realpath(out)).parent.is_dir():
        return fail(f"folder {out.parent} of the output does not exist", 2)
    try:
        families = resolve_features(args.features)
        dataset = load_dataset(args.data, parse_classes(args.classes))
        detector = make_detector(args.classifier, features=families, jobs=args.jobs,
                                 cache=args.cache, backend=args.backend,
                                 reading=reading_of(args, whole=args.classifier == "cnn"),
                                 calibration=args.calibration,
                                 band=args.band, **augment_params(args),
                                 **cnn_params(args))
    except ValueError as exc:  # also --faces with the CNN
        return fail(str(exc), 2)
    curves = [_curves_path(out)] if args.classifier == "cnn" else []
    if (problem := claim_output(out, [args.data, *dataset.paths], also=curves)) is not None:
        return fail(problem, 2)
    return holding_lock(out, _train, args, out, families, dataset, detector)


def _train(args: argparse.Namespace, out: Path, families, dataset, detector) -> int:
    """Fit ``detector`` on ``dataset`` and save it to ``out`` (locked)."""
    n_real, n_fake = dataset.counts()
    inputs = (f"features {', '.join(f.name for f in families)}"
              + (f" in a {args.frame} px frame" if args.frame else "")
              if uses_features(args.classifier) else f"pixels resized to {args.input_size} px")
    kinds = parse_augment(detector.augment)
    say(args, f"training {args.classifier} on {len(dataset.paths)} images ({n_real} real, "
              f"{n_fake} fake) with {inputs}"
              + (f", augmented with {', '.join(kinds)}" if kinds else ""))
    start = time.perf_counter()
    if args.classifier == "experts" and dataset.sources is None:
        return fail("--classifier experts trains one expert per generator family, named "
                    "after the top-level folders of DATA: put each family's images under "
                    "DATA/FAMILY/fake (and reals under DATA/ANY/real), e.g. DATA/gan/fake, "
                    "DATA/diffusion/fake, DATA/photos/real", 2)
    # experts: each fake's family is its source, the top-level folder it lies under
    generator = {"generator": dataset.sources} if args.classifier == "experts" else {}
    try:
        with quiet_warnings():
            detector.fit(dataset, progress=progress(args), **generator)
    except (ValueError, ImportError) as exc:
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
    if "history" in t:
        _write_curves(args, detector, out)
    return 0


def add_parser(sub, summary: str) -> None:
    """Register ``ffeat train``."""
    p = sub.add_parser(
        "train", help=summary,
        description="Train a detector on DATA: a folder with real/ and fake/ images at any "
                    "depth (train/real, valid/fake, ...; other names with --classes) or a "
                    "CSV manifest with path and label columns. Unreadable images are "
                    "listed and left out. Features are cached, so training another "
                    "classifier on the same files does not decode them again.")
    p.add_argument("data", metavar="DATA", help="dataset folder or CSV manifest")
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="where to write the model")
    add_features_option(p, DEFAULT_FEATURES)
    p.add_argument("--classifier", choices=CLASSIFIERS, default=DEFAULT_CLASSIFIER,
                   help="logistic regression on the features, stacked (one logistic "
                        "regression per feature family, combined by another), experts (one "
                        "stacked expert per generator family: the top-level folders of DATA "
                        "name the families of their fakes), histogram "
                        "gradient boosting, or a CNN over the pixels (PyTorch; writes its training "
                        "curves to MODEL.curves.png) (default: %(default)s)")
    add_augment_option(p, "add augmented copies made in memory, one per image and kind: "
                          "comma-separated of jpeg (quality 60-95), blur (sigma 0-2 px), "
                          "resize (factor 0.5-1), noise (std 1-5 levels), flip, recode "
                          "(rescale by 1/3-3, then JPEG 70-95); e.g. --augment "
                          "jpeg,blur,resize,flip; none: no copies (the CNN instead perturbs "
                          "each image on the fly, each kind with probability 0.1 per epoch)")
    p.add_argument("--calibration", type=_calibration, default=DEFAULT_CALIBRATION,
                   metavar="none|" + "|".join(KINDS),
                   help="calibrate prob_fake on 5-fold out-of-fold scores of the training "
                        "images: sigmoid (Platt scaling) or isotonic; none: the raw "
                        "logistic output (feature classifiers; default: "
                        f"{DEFAULT_CALIBRATION or 'none'})")
    p.add_argument("--band", type=_band, default=DEFAULT_BAND, metavar="none|auto|LO,HI",
                   help="the inconclusive band on prob_fake, where predict labels an image "
                        "inconclusive: auto measures it from the out-of-fold scores (where "
                        "the forced call errs more than 10%%), LO,HI sets it (a "
                        "probability in [LO, HI)), none: always fake or real (feature "
                        f"classifiers; default: {DEFAULT_BAND or 'none'})")
    add_faces_option(p, None, f"{DETECTOR_READING.faces}; off for the CNN")
    add_frame_option(p, DETECTOR_READING.frame)
    add_cnn_options(p)
    add_classes_option(p)
    add_run_options(p)
    p.set_defaults(func=_run)
