"""``ffeat predict``: probability of fake for every image file."""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

from .. import _persist
from .._predictions import COLUMNS, CSV_COLUMNS, cells, csv_cells, prediction_rows
from .._scoring import SavedDetector, explain_items, score_items
from .._sources import expand_inputs
from ._common import (add_faces_option, add_model_option, add_run_options, add_scale_options,
                      add_threshold_option, fail, model_file, progress, run_sharded,
                      threshold_problem, warn)
from ._output import claim_output, listed_files

#: First member of a model file: ``ffeat._npz`` writes members in name order
#: (``calibration/...``, ``checksum``, ``meta``, ``model/...``).
_FIRST_MEMBERS = (b"calibration/band.npy", b"checksum.npy", b"meta.npy")
#: The local header of a zip archive's first member, up to its name (30 bytes).
_ZIP_HEADER = 30


def _family_cells(row: dict, names: list[str]) -> list[str]:
    """A row's per-family log-odds (``--explain``) to 4 decimals, blank where unscored."""
    found = row.get("families")
    return ["" if found is None else f"{found[n]:.4f}" for n in names]


def _write(rows: list[dict], fmt: str, families: list[str] = ()) -> None:
    """Rows on stdout; ``families`` (``--explain``) adds a column ``log_odds_<family>``
    per family before the reason (a ``families`` object in JSON)."""
    out = sys.stdout
    encoding = getattr(out, "encoding", None)  # names the stdout cannot write: escaped
    if fmt == "json":
        json.dump(rows, out, indent=1)  # ASCII, names exact (\udcNN for non-UTF-8 bytes)
        out.write("\n")
        return
    head = [*COLUMNS[:-1], *(f"log_odds_{n}" for n in families), COLUMNS[-1]]
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow([*head, CSV_COLUMNS[-1]])
        writer.writerows([*c[:-2], *_family_cells(r, families), *c[-2:]]
                         for r, c in ((r, csv_cells(r, encoding)) for r in rows))
        return
    table = [[*c[:-1], *_family_cells(r, families), c[-1]]
             for r, c in ((r, cells(r, encoding)) for r in rows)]
    last = len(head) - 1  # the reason, unpadded
    widths = [max([len(c[i]) for c in table] + [len(head[i])]) for i in range(last)]
    for line in [head] + table:
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[last])
        out.write("\n")


def _run_sharded(args: argparse.Namespace, threshold: float) -> int:
    """``--output FILE.csv``: rows streamed to the file shard by shard, resumably."""
    out = Path(args.output)
    if out.suffix.lower() != ".csv":
        return fail(f"--output {out} must end in .csv (Parquet is not written)", 2)
    if args.format not in (None, "csv"):
        return fail(f"--output writes CSV; --format {args.format} is for stdout", 2)
    if not out.parent.is_dir():
        return fail(f"folder {out.parent} of the output does not exist", 2)
    manifest = out.with_name(out.name + ".manifest.json")
    if (problem := claim_output(out, listed_files([args.model, *args.paths]),
                                     also=[manifest])) is not None:
        return fail(problem, 2)
    from ..streaming import predict_to  # loads the full Detector

    return run_sharded(args, predict_to, args.model, args.paths, out, threshold=threshold,
                       faces=args.faces)


def _is_model_file(path: str) -> bool:
    """Whether ``path`` is a regular file that opens as an ffeat model file does: a zip
    archive whose first member is the one ffeat writes first (no image format starts
    so). Reads at most 42 bytes; the file is loaded, and checked, only as a model."""
    if not os.path.isfile(path):  # folders, pipes and devices are inputs like any other
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(_ZIP_HEADER + max(map(len, _FIRST_MEMBERS)))
    except OSError:
        return False
    name_length = int.from_bytes(head[26:28], "little")
    return head[:4] == b"PK\x03\x04" \
        and head[_ZIP_HEADER:_ZIP_HEADER + name_length] in _FIRST_MEMBERS


def _legacy_model(args: argparse.Namespace) -> int | None:
    """``ffeat predict MODEL PATH...``, the form before ``--model``: a first PATH that is
    a model file is taken as the model, with a warning, so that old scripts keep
    scoring what they scored; a usage error (its exit status) when ``--model`` is
    given too or no image follows."""
    first = args.paths[0]
    if not _is_model_file(first):
        return None
    if args.model is not None or len(args.paths) == 1:
        return fail(f"{first} is an ffeat model file, not an image: name one model with "
                    "--model FILE and the images after it (ffeat predict --model FILE "
                    "PATH...)", 2)
    warn(f"'ffeat predict MODEL PATH...' is deprecated: name the model with --model {first} "
         "(without --model, the detector shipped with ffeat is used)")
    args.model, args.paths = first, args.paths[1:]
    return None


def _run(args: argparse.Namespace) -> int:
    if (status := _legacy_model(args)) is not None:
        return status
    args.model = model_file(args)
    try:
        detector = _persist.load(SavedDetector, args.model)  # scoring needs no scikit-learn
    except _persist.ModelFileError as exc:  # the model named is unusable: a usage error
        return fail(str(exc), 2)
    threshold = detector.threshold if args.threshold is None else args.threshold
    if (problem := threshold_problem(threshold)) is not None:
        return fail(problem, 2)
    if args.output is not None:
        if args.explain:
            return fail("--explain writes to stdout; it does not combine with --output", 2)
        return _run_sharded(args, threshold)
    if args.shard_size is not None or args.scheduler is not None:
        return fail("--shard-size and --scheduler need --output FILE.csv", 2)
    detector.set_params(jobs=args.jobs, cache=args.cache, backend=args.backend,
                        faces=args.faces or detector.faces)
    items = expand_inputs(args.paths)
    families = None
    if args.explain:
        try:
            scores, errors, boxes, families = explain_items(detector, items,
                                                            progress=progress(args))
        except ValueError as exc:  # a model without per-family log-odds
            return fail(f"--explain: {exc}", 2)
    else:
        scores, errors, boxes = score_items(detector, items, progress=progress(args))
    rows = list(prediction_rows(items, scores, errors, threshold, boxes, detector=detector,
                                families=families))
    _write(rows, args.format or "table", list(families or ()))
    n_bad = sum(r["error"] is not None for r in rows)
    if n_bad == len(rows):
        return fail(f"none of the {len(rows)} inputs could be read")
    return 0


def add_parser(sub, summary: str) -> None:
    """Register ``ffeat predict``."""
    p = sub.add_parser(
        "predict", help=summary,
        description="Score image files and folders (searched recursively) with the "
                    "detector shipped with ffeat or --model FILE: one row per file with "
                    "its path, probability of fake (calibrated when the model was trained "
                    "with a calibration), label (fake at and above the threshold, "
                    "inconclusive inside the model's inconclusive band), under a face "
                    "policy the box x, y, "
                    "w, h of the face scored and every face's box, and, for files that "
                    "could not be read, the reason. Exit status 0 when at least one file "
                    "was scored.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    add_model_option(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default=None,
                   help="output format on stdout (default: table)")
    p.add_argument("--output", "-o", default=None, metavar="FILE.csv",
                   help="stream the rows to this CSV file shard by shard instead of "
                        "stdout, in bounded memory; rerunning resumes after the last "
                        "shard written (FILE.csv.manifest.json records them)")
    p.add_argument("--explain", action="store_true",
                   help="add each feature family's log-odds (before calibration; the score "
                        "is the model's intercept plus their sum): a log_odds_FAMILY column "
                        "per family (table, CSV), a families object per row (JSON); linear "
                        "models (stacked, logistic) only")
    add_threshold_option(p, "a file")
    add_faces_option(p, saved=True)
    add_scale_options(p)
    add_run_options(p)
    p.set_defaults(func=_run)
