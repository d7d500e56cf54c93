"""``ffeat predict``: probability of fake for every image file."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from ..models import _persist
from ..models._predictions import (
    COLUMNS,
    cells,
    csv_cells,
    csv_columns,
    expert_cells,
    expert_columns,
    prediction_rows,
)
from ..models._scoring import SavedDetector, expert_names, family_names, score_items
from ..reading._sources import expand_inputs
from ._common import (
    add_faces_option,
    add_model_option,
    add_run_options,
    add_scale_options,
    add_threshold_option,
    faces_reading,
    fail,
    model_file,
    progress,
    run_sharded,
    threshold_problem,
)
from ._output import claim_output, listed_files


def _family_cells(row: dict, names: list[str]) -> list[str]:
    """A row's per-family log-odds (``--explain``) to 4 decimals, blank where unscored."""
    found = row.get("families")
    return ["" if found is None else f"{found[n]:.4f}" for n in names]


def _write(rows: list[dict], fmt: str, families: list[str] = (),
           experts: list[str] = ()) -> None:
    """Rows on stdout; ``families`` (``--explain``) adds a column ``log_odds_<family>``
    per family before the reason (a ``families`` object in JSON); ``experts`` (an
    expert model) a ``generator`` column and a ``prob_<expert>`` column per expert
    (``generator`` and an ``experts`` object in JSON)."""
    out = sys.stdout
    encoding = getattr(out, "encoding", None)  # names the stdout cannot write: escaped
    if fmt == "json":
        json.dump(rows, out, indent=1)  # ASCII, names exact (\udcNN for non-UTF-8 bytes)
        out.write("\n")
        return
    extra_head = [*(f"log_odds_{n}" for n in families), *expert_columns(experts)]
    head = [*COLUMNS[:-1], *extra_head, COLUMNS[-1]]

    def extra(r):
        return [*_family_cells(r, families), *expert_cells(r, experts)]

    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(csv_columns(extra_head))
        writer.writerows(csv_cells(r, encoding, extra(r)) for r in rows)
        return
    table = [[*c[:-1], *extra(r), c[-1]] for r, c in ((r, cells(r, encoding)) for r in rows)]
    last = len(head) - 1  # the reason, unpadded
    widths = [max([len(c[i]) for c in table] + [len(head[i])]) for i in range(last)]
    for line in [head] + table:
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[last])
        out.write("\n")


def _run_sharded(args: argparse.Namespace, detector: SavedDetector, threshold: float) -> int:
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
    from ..running.streaming import predict_to  # loads the full Detector

    return run_sharded(args, predict_to, args.model, args.paths, out, threshold=threshold,
                       **faces_reading(detector, args.faces))


def _run(args: argparse.Namespace) -> int:
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
        return _run_sharded(args, detector, threshold)
    if args.shard_size is not None or args.scheduler is not None:
        return fail("--shard-size and --scheduler need --output FILE.csv", 2)
    detector.set_params(jobs=args.jobs, cache=args.cache, backend=args.backend,
                        **faces_reading(detector, args.faces))
    families = family_names(detector) if args.explain else None
    try:
        records = score_items(detector, expand_inputs(args.paths), progress=progress(args),
                              explain=args.explain)
    except ValueError as exc:  # --explain of a model without per-family log-odds
        return fail(f"--explain: {exc}", 2)
    experts = expert_names(detector)
    rows = list(prediction_rows(records, threshold, detector=detector, families=families,
                                experts=experts))
    _write(rows, args.format or "table", families or [], experts or [])
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
    add_faces_option(p, None)
    add_scale_options(p)
    add_run_options(p)
    p.set_defaults(func=_run)
