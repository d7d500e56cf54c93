"""``ffeat demo``: the main job, start to finish, on the embedded demo data."""
from __future__ import annotations

import argparse
import time

from sklearn.model_selection import train_test_split

from ..demo import DEMO_AUGMENT, DEMO_READING, make_demo_set
from ..detector import Detector
from ..evaluation import evaluate
from ..extraction import DEFAULT_FEATURES
from ._common import add_run_options, positive_int, say


def _run(args: argparse.Namespace) -> int:
    images, labels = make_demo_set(n_per_class=args.n)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=1 / 3, stratify=labels, random_state=0)
    say(args, f"demo set: {len(images)} images ({args.n} real photo crops, {args.n} fakes "
              f"through transposed-convolution upsampling), {len(train_x)} to train, "
              f"{len(test_x)} held out; read at their own {images[0].shape[0]} px size, "
              "no augmented copies")
    features = "+".join(DEFAULT_FEATURES)
    width = max(len(features), len("features"))
    header = (f"{'classifier':<10}  {'features':<{width}}  {'ROC AUC':>7}  {'accuracy':>8}  "
              f"{'EER':>6}  {'train s':>7}  {'img/s':>6}")
    lines = [header, "-" * len(header)]
    for classifier in ("stacked", "logistic", "hgb"):
        # gradient boosting has no out-of-fold scores of its own: calibrating it refits it
        # five times (169 s against 45 s for the whole demo on 2 cores), and the table's
        # figures do not depend on calibration
        uncalibrated = {"calibration": None, "band": None} if classifier == "hgb" else {}
        detector = Detector(DEFAULT_FEATURES, classifier, jobs=args.jobs, cache=False,
                            backend=args.backend, reading=DEMO_READING,
                            augment=DEMO_AUGMENT, **uncalibrated)
        start = time.perf_counter()
        detector.fit(train_x, train_y)
        fitted = time.perf_counter()
        m = evaluate(detector, test_x, test_y).metrics
        rate = len(test_x) / (time.perf_counter() - fitted)
        lines.append(f"{classifier:<10}  {features:<{width}}  "
                     f"{m['roc_auc']:>7.3f}  {m['accuracy']:>8.3f}  {m['eer']:>6.3f}  "
                     f"{fitted - start:>7.2f}  {rate:>6.0f}")
    print("\n".join(lines))
    say(args, "train on your own folders with: ffeat train DATA -o model.ffeat")
    return 0


def add_parser(sub, summary: str) -> None:
    """Register ``ffeat demo``."""
    p = sub.add_parser(
        "demo", help=summary,
        description="Build the embedded demo set (crops of scikit-image's photographs as "
                    "real, the same crops through a transposed-convolution upsampler as "
                    "fake), train the stacked and plain logistic regressions and gradient "
                    "boosting (uncalibrated) on two thirds, at the images' own size and "
                    "without augmented copies, and print ROC AUC, accuracy and equal "
                    "error rate on the held-out third.")
    p.add_argument("--n", type=positive_int, default=60, metavar="N",
                   help="images per class (default: 60)")
    add_run_options(p, cache=False)
    p.set_defaults(func=_run)
