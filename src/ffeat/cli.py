"""The ``ffeat`` command line."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import __version__
from .demo import make_demo_set
from .extraction import DEFAULT_FEATURES, Extraction, extract
from .features import FAMILIES, describe_features, resolve_features


def _fail(message: str, status: int = 1) -> int:
    print(f"ffeat: error: {message}", file=sys.stderr)
    return status


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
    path = path.resolve()  # write through a symbolic link, not over it
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would outlive the rename
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _with_demo(result: Extraction, families, jobs: int | None) -> Extraction:
    """Append the embedded demo set's rows, named and labelled like files on disk."""
    images, labels = make_demo_set()
    demo = extract(images, families, jobs=jobs, on_error="raise")
    names = [f"demo/{'fake' if y else 'real'}/{i:04d}.png" for i, y in enumerate(labels)]
    return result._replace(X=np.vstack([result.X, demo.X]), sources=result.sources + names,
                           labels=np.concatenate([result.labels, labels]).astype(np.int8))


def _cmd_extract(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix != ".npz":
        return _fail(f"output {out} must end in .npz", 2)
    if not out.parent.is_dir():
        return _fail(f"folder {out.parent} of the output does not exist", 2)
    if not args.data and not args.demo:
        return _fail("give image files or folders to read, or --demo", 2)
    if any(Path(d).resolve() == out.resolve() for d in args.data):
        return _fail(f"output {out} is also an input; choose another name", 2)
    try:
        families = resolve_features(args.features)
    except ValueError as exc:
        return _fail(str(exc), 2)

    show = None if not args.quiet else False
    result = extract(args.data, families, jobs=args.jobs, progress=show)
    if args.demo:
        result = _with_demo(result, families, args.jobs)

    for err in result.errors:
        print(f"ffeat: skipped {err.source}: {err.reason}", file=sys.stderr)
    if not result.sources:
        return _fail(f"no image could be read ({len(result.errors)} inputs failed); "
                     "nothing written")
    try:
        _save_npz(out, result, families)
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc}")
    n_real = int((result.labels == 0).sum())
    n_fake = int((result.labels == 1).sum())
    if not args.quiet:
        print(f"ffeat: wrote {out}: {result.X.shape[0]} images x {result.X.shape[1]} "
              f"features ({n_real} real, {n_fake} fake, "
              f"{len(result.labels) - n_real - n_fake} unlabelled; "
              f"{len(result.errors)} skipped)", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ffeat", description="Forensic features that tell AI-generated faces "
                                  "from real photographs.")
    parser.add_argument("--version", action="version", version=f"ffeat {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
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
    ex.add_argument("--features", nargs="+", default=list(DEFAULT_FEATURES),
                    metavar="FAMILY",
                    help=f"families to compute, of {', '.join(FAMILIES)} "
                         f"(default: {' '.join(DEFAULT_FEATURES)})")
    ex.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                    help="parallel worker threads (default, or N < 1: all cores)")
    ex.add_argument("--demo", action="store_true",
                    help="also read the embedded demo set (120 labelled images made "
                         "from scikit-image's photographs)")
    ex.add_argument("--quiet", "-q", action="store_true",
                    help="no progress bar and no summary")
    ex.set_defaults(func=_cmd_extract)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
