"""``ffeat extract``: features of images into a .npz file or a folder of shards."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from ..demo import make_demo_set
from ..extraction import DEFAULT_FEATURES, Extraction, extract
from ..features import resolve_features
from ..reading import Reading
from ..running._featurefile import save_extraction
from ..running.streaming import extract_to
from ._common import (
    add_faces_option,
    add_features_option,
    add_frame_option,
    add_run_options,
    add_scale_options,
    fail,
    holding_lock,
    progress,
    reading_of,
    report_skipped,
    run_sharded,
    say,
)
from ._output import claim_output, listed_files


def _with_demo(result: Extraction, families, reading: Reading, jobs: int | None,
               backend: str) -> Extraction:
    """Append the embedded demo set's rows, named and labelled like files on disk."""
    images, labels = make_demo_set()
    demo = extract(images, families, reading=reading.replace(faces="off"), jobs=jobs,
                   on_error="raise", backend=backend)
    names = [f"demo/{'fake' if y else 'real'}/{i:04d}.png" for i, y in enumerate(labels)]
    return result._replace(X=np.vstack([result.X, demo.X]), sources=result.sources + names,
                           labels=np.concatenate([result.labels, labels]).astype(np.int8))


def _run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    sharded = args.output.endswith(("/", os.sep)) or out.is_dir()
    if not sharded and (args.shard_size is not None or args.scheduler is not None):
        return fail("--shard-size and --scheduler write a folder of shards: give -o DIR/", 2)
    if not sharded and out.suffix != ".npz":
        return fail(f"output {out} must end in .npz (one file) or in / (a folder of "
                    "shards)", 2)
    if not out.parent.is_dir():
        return fail(f"folder {out.parent} of the output does not exist", 2)
    if not args.data and not args.demo:
        return fail("give image files or folders to read, or --demo", 2)
    if sharded and args.demo:
        return fail("--demo writes one .npz file, not a folder of shards", 2)
    if (problem := claim_output(out, listed_files(args.data), folder=sharded)) is not None:
        return fail(problem, 2)
    try:
        families = resolve_features(args.features)
    except ValueError as exc:
        return fail(str(exc), 2)
    reading = reading_of(args)
    if sharded:
        return run_sharded(args, extract_to, args.data, out, families, reading=reading)
    return holding_lock(out, _extract_one, args, out, families, reading)


def _extract_one(args: argparse.Namespace, out: Path, families, reading: Reading) -> int:
    """``-o FILE.npz``: every row in memory, written at once."""
    result = extract(args.data, families, reading=reading, jobs=args.jobs,
                     progress=progress(args), cache=args.cache, backend=args.backend)
    if args.demo:
        result = _with_demo(result, families, reading, args.jobs, args.backend)

    report_skipped(result.errors)
    if not result.sources:
        return fail(f"no image could be read ({len(result.errors)} inputs failed); "
                     "nothing written")
    try:
        save_extraction(out, result, families)
    except OSError as exc:
        return fail(f"cannot write {out}: {exc}")
    n_real = int((result.labels == 0).sum())
    n_fake = int((result.labels == 1).sum())
    say(args, f"wrote {out}: {result.X.shape[0]} images x {result.X.shape[1]} features "
              f"({n_real} real, {n_fake} fake, {len(result.labels) - n_real - n_fake} "
              f"unlabelled; {len(result.errors)} skipped)")
    return 0


def add_parser(sub, summary: str) -> None:
    """Register ``ffeat extract``."""
    ex = sub.add_parser(
        "extract", help=summary,
        description="Compute features of image files and folders (searched recursively) "
                    "into a .npz file holding X, names, paths, labels (1 fake, 0 real, "
                    "-1 unknown, from 'fake'/'real' folders at any depth) and the "
                    "errors. Unreadable files are listed on stderr and skipped; the exit "
                    "status is 0 when at least one image was read. With -o DIR/ the "
                    "inputs are streamed in shards of --shard-size, each written to "
                    "DIR/shard-NNNNN.npz and recorded in DIR/manifest.json; rerunning "
                    "the same command resumes after an interruption.")
    ex.add_argument("data", nargs="*", metavar="DATA", help="image files or folders")
    ex.add_argument("-o", "--output", required=True, metavar="FILE.npz|DIR/",
                    help="where to write the features: one .npz file, or a folder of "
                         "shards (a name ending in / or an existing folder)")
    add_features_option(ex, DEFAULT_FEATURES)
    ex.add_argument("--demo", action="store_true",
                    help="also read the embedded demo set (120 labelled images made "
                         "from scikit-image's photographs)")
    add_faces_option(ex, "off")
    add_frame_option(ex)
    add_scale_options(ex)
    add_run_options(ex)
    ex.set_defaults(func=_run)
