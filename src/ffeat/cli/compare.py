"""``ffeat compare``: the feature detectors and the CNN side by side on one split."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..comparison import compare
from ..extraction import DEFAULT_FEATURES
from ..features import resolve_features
from ..models._models import CLASSIFIERS
from ..reading import DETECTOR_READING
from ..reading.dataset import load_dataset
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
    parse_classes,
    progress,
    quiet_warnings,
    reading_of,
    say,
)
from ._output import claim_output


def _run(args: argparse.Namespace) -> int:
    if not 0 < args.test_size < 1:
        return fail(f"--test-size must lie strictly between 0 and 1, got {args.test_size}", 2)
    if args.curves is not None and "cnn" not in args.classifiers:
        return fail("--curves draws the CNN's training curves; add cnn to --classifiers", 2)
    try:
        families = resolve_features(args.features)
        classes = parse_classes(args.classes)
        data = load_dataset(args.data, classes)
        test = load_dataset(args.test, classes) if args.test else None
    except ValueError as exc:
        return fail(str(exc), 2)
    if args.curves is not None:
        inputs = [args.data, *data.paths] + ([args.test, *test.paths] if test else [])
        if (problem := claim_output(args.curves, inputs)) is not None:
            return fail(f"--curves: {problem}", 2)
    try:
        with quiet_warnings():
            result = compare(data, test, classifiers=args.classifiers,
                             test_size=args.test_size, random_state=args.seed,
                             progress=progress(args), features=families,
                             reading=reading_of(args), jobs=args.jobs, backend=args.backend,
                             **augment_params(args), **cnn_params(args))
    except (ValueError, ImportError) as exc:
        return fail(str(exc))
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(result.format_table(markdown=args.format == "markdown"))
    if args.curves is not None:
        from ..report import write_training_curves
        cnn = result.detectors[list(args.classifiers).index("cnn")]
        try:
            say(args, f"wrote {write_training_curves(cnn, Path(args.curves))}")
        except (ImportError, OSError) as exc:
            say(args, f"training curves not written: {exc}")
    return 0


def add_parser(sub, summary: str) -> None:
    """Register ``ffeat compare``."""
    p = sub.add_parser(
        "compare", help=summary,
        description="Split DATA (a labelled folder or CSV manifest) into training and "
                    "held-out images (stratified, seeded), train every detector on the "
                    "same training images with the feature cache off, and print one "
                    "table: ROC AUC and accuracy on the held-out images (and on --test, "
                    "scored whole, for a cross-dataset test), training wall time, "
                    "prediction images/s end to end from the files, and model file size. "
                    "The CNN needs PyTorch: pip install 'ffeat[cnn]'.")
    p.add_argument("data", metavar="DATA", help="dataset folder or CSV manifest to split")
    p.add_argument("--test", metavar="DATA2", default=None,
                   help="a second labelled dataset every detector is also scored on")
    p.add_argument("--classifiers", nargs="+", choices=CLASSIFIERS, default=list(CLASSIFIERS),
                   metavar="NAME", help=f"detectors to compare, of {', '.join(CLASSIFIERS)} "
                                        "(default: all)")
    p.add_argument("--test-size", type=float, default=0.2, metavar="F",
                   help="share of DATA held out (default: 0.2, an 80/20 split)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the split and of every detector (default: 0)")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table",
                   help="output on stdout (default: table)")
    p.add_argument("--curves", metavar="FILE.png", default=None,
                   help="also draw the CNN's training curves (needs matplotlib)")
    add_features_option(p, DEFAULT_FEATURES)
    add_faces_option(p, None, f"{DETECTOR_READING.faces}; off for the CNN")
    add_frame_option(p, DETECTOR_READING.frame)
    add_augment_option(p, "training augmentation for every detector, as for ffeat train")
    add_cnn_options(p)
    add_classes_option(p)
    add_run_options(p, cache=False)
    p.set_defaults(func=_run)
