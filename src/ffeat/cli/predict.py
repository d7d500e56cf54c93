"""``ffeat predict``: probability of fake for every image file."""
from __future__ import annotations

import argparse
import csv
import json
import sys

from .._models import sigmoid
from .._persist import ModelFileError
from .._sources import expand_inputs
from ..detector import Detector
from ..extraction import ImageError
from ._common import add_run_options, fail, progress

_COLUMNS = ("path", "prob_fake", "label", "error")


def _rows(items, scores, errors: dict[int, ImageError], threshold: float):
    """One dict per input, in input order, errors included."""
    for position, (item, score) in enumerate(zip(items, scores)):
        if position in errors:
            yield {"path": item.name, "prob_fake": None, "label": None,
                   "error": errors[position].reason}
        else:
            p = float(sigmoid(score))
            yield {"path": item.name, "prob_fake": p,
                   "label": "fake" if p >= threshold else "real", "error": None}


def _write(rows: list[dict], fmt: str) -> None:
    out = sys.stdout
    if fmt == "json":
        json.dump(rows, out, indent=1)
        out.write("\n")
        return
    cells = [[r["path"], "" if r["prob_fake"] is None else f"{r['prob_fake']:.4f}",
              r["label"] or "", r["error"] or ""] for r in rows]
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(_COLUMNS)
        writer.writerows(cells)
        return
    widths = [max([len(c[i]) for c in cells] + [len(_COLUMNS[i])]) for i in range(3)]
    for line in [list(_COLUMNS)] + cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[3])
        out.write("\n")


def _run(args: argparse.Namespace) -> int:
    try:
        detector = Detector.load(args.model)
    except ModelFileError as exc:  # the MODEL argument is unusable: a usage error
        return fail(str(exc), 2)
    threshold = detector.threshold if args.threshold is None else args.threshold
    if not 0 <= threshold <= 1:
        return fail(f"--threshold must lie in [0, 1], got {threshold}", 2)
    detector.set_params(jobs=args.jobs, cache=args.cache, backend=args.backend)
    items = expand_inputs(args.paths)
    scores, errors = detector._score_items(items, progress(args))
    rows = list(_rows(items, scores, errors, threshold))
    _write(rows, args.format)
    n_bad = sum(r["error"] is not None for r in rows)
    if n_bad == len(rows):
        return fail(f"none of the {len(rows)} inputs could be read")
    return 0


def add_parser(sub) -> None:
    """Register ``ffeat predict``."""
    p = sub.add_parser(
        "predict", help="probability of fake for image files and folders",
        description="Score image files and folders (searched recursively) with a saved "
                    "model: one row per file with its path, probability of fake, label "
                    "(fake at and above the threshold) and, for files that could not be "
                    "read, the reason. Exit status 0 when at least one file was scored.")
    p.add_argument("model", metavar="MODEL", help="a model written by ffeat train")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="output format on stdout (default: table)")
    p.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="probability of fake at and above which a file is called fake "
                        "(default: the model's, 0.5)")
    add_run_options(p)
    p.set_defaults(func=_run)
