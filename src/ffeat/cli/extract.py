"""``ffeat extract``: features of images into a .npz file."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .._atomic import atomic_write
from .._version import __version__
from ..demo import make_demo_set
from ..extraction import DEFAULT_FEATURES, Extraction, extract
from ..features import describe_features, resolve_features
from ._common import (add_features_option, add_run_options, fail, progress,
                      report_skipped, say)


def _save_npz(path: Path, result: Extraction, families) -> None:
    """Write the extraction atomically: a temporary file beside ``path``, then a rename."""
    arrays = {
        "X": result.X,
        "names": np.array(result.names, dtype=str),
        "paths": np.array(result.sources, dtype=str),
        "labels": result.labels,
        "error_paths": np.array([e.source for e in result.errors], dtype=str),
        "error_reasons": np.array([e.reason for e in result.errors], dtype=str),
        "features": np.array(json.dumps(describe_features(families))),
        "ffeat_version": np.array(__version__),
    }
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def _with_demo(result: Extraction, families, jobs: int | None, backend: str) -> Extraction:
    """Append the embedded demo set's rows, named and labelled like files on disk."""
    images, labels = make_demo_set()
    demo = extract(images, families, jobs=jobs, on_error="raise", backend=backend)
    names = [f"demo/{'fake' if y else 'real'}/{i:04d}.png" for i, y in enumerate(labels)]
    return result._replace(X=np.vstack([result.X, demo.X]), sources=result.sources + names,
                           labels=np.concatenate([result.labels, labels]).astype(np.int8))


def _run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix != ".npz":
        return fail(f"output {out} must end in .npz", 2)
    if not out.parent.is_dir():
        return fail(f"folder {out.parent} of the output does not exist", 2)
    if not args.data and not args.demo:
        return fail("give image files or folders to read, or --demo", 2)
    if any(Path(d).resolve() == out.resolve() for d in args.data):
        return fail(f"output {out} is also an input; choose another name", 2)
    try:
        families = resolve_features(args.features)
    except ValueError as exc:
        return fail(str(exc), 2)

    result = extract(args.data, families, jobs=args.jobs, progress=progress(args),
                     cache=args.cache, backend=args.backend)
    if args.demo:
        result = _with_demo(result, families, args.jobs, args.backend)

    report_skipped(result.errors)
    if not result.sources:
        return fail(f"no image could be read ({len(result.errors)} inputs failed); "
                     "nothing written")
    try:
        _save_npz(out, result, families)
    except OSError as exc:
        return fail(f"cannot write {out}: {exc}")
    n_real = int((result.labels == 0).sum())
    n_fake = int((result.labels == 1).sum())
    say(args, f"wrote {out}: {result.X.shape[0]} images x {result.X.shape[1]} features "
              f"({n_real} real, {n_fake} fake, {len(result.labels) - n_real - n_fake} "
              f"unlabelled; {len(result.errors)} skipped)")
    return 0


def add_parser(sub) -> None:
    """Register ``ffeat extract``."""
    ex = sub.add_parser(
        "extract", help="compute features of images into a .npz file",
        description="Compute features of image files and folders (searched recursively) "
                    "into a .npz file holding X, names, paths, labels (1 fake, 0 real, "
                    "-1 unknown, from 'fake'/'real' folders at any depth) and the "
                    "errors. Unreadable files are listed on stderr and skipped; the exit "
                    "status is 0 when at least one image was read.")
    ex.add_argument("data", nargs="*", metavar="DATA", help="image files or folders")
    ex.add_argument("-o", "--output", required=True, metavar="FILE.npz",
                    help="where to write the features")
    add_features_option(ex, DEFAULT_FEATURES)
    ex.add_argument("--demo", action="store_true",
                    help="also read the embedded demo set (120 labelled images made "
                         "from scikit-image's photographs)")
    add_run_options(ex)
    ex.set_defaults(func=_run)
