"""``ffeat evaluate``: metrics of a saved model on a labelled dataset."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from .._text import printable
from ..evaluation import Evaluation, NoReadableImages, evaluate
from ..models._persist import ModelFileError, load_detector
from ..reading._perturb import parse_perturbations
from ..reading.dataset import load_dataset
from ..robustness import format_robustness, robustness
from ._common import (
    add_classes_option,
    add_faces_option,
    add_model_option,
    add_run_options,
    add_threshold_option,
    faces_reading,
    fail,
    model_file,
    parse_classes,
    progress,
    report_skipped,
    say,
    threshold_problem,
)
from ._output import claim_output

_LABELS = {"accuracy": "accuracy", "precision": "precision (fake)", "recall": "recall (fake)",
           "f1": "F1 (fake)", "roc_auc": "ROC AUC", "average_precision": "average precision",
           "eer": "equal error rate", "brier": "Brier score",
           "ece": "calibration error", "coverage": "coverage",
           "conclusive_accuracy": "accuracy conclusive"}


def format_metrics(result: Evaluation) -> str:
    """The metrics, confusion matrix and counts as aligned text."""
    m = result.metrics
    lines = [f"{label:<20}{'n/a' if m[key] is None else format(m[key], '.4f')}"
             for key, label in _LABELS.items()]
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    width = max(len(str(v)) for v in (tn, fp, fn, tp, "called fake"))
    band = "none" if result.band is None else "[{:.4g}, {:.4g})".format(*result.band)
    lines += [
        f"{'threshold':<20}{result.threshold:g}",
        f"{'inconclusive band':<20}{band} ({m['n_inconclusive']} images)",
        "",
        f"{'':<14}{'called real':>{width + 2}}{'called fake':>{width + 2}}",
        f"{'true real':<14}{tn:>{width + 2}}{fp:>{width + 2}}",
        f"{'true fake':<14}{fn:>{width + 2}}{tp:>{width + 2}}",
        "",
        f"{m['n_real']} real, {m['n_fake']} fake images scored; {len(result.errors)} "
        "could not be read",
    ]
    return "\n".join(lines)


def format_sources(by_source: dict) -> str:
    """The per-source figures (:attr:`ffeat.Evaluation.by_source`) as aligned text."""
    def f(v):
        return "n/a" if v is None else f"{v:.4f}"
    names = {name: printable(name) for name in by_source}
    width = max(len("source"), *map(len, names.values())) + 2
    lines = [f"{'source':<{width}}{'images':>8}{'real':>7}{'fake':>7}{'recall':>9}{'FPR':>9}"
             f"{'accuracy':>10}{'ROC AUC':>9}  AUC against"]
    lines += [f"{names[name]:<{width}}{r['n']:>8}{r['n_real']:>7}{r['n_fake']:>7}"
              f"{f(r['recall']):>9}{f(r['fpr']):>9}{f(r['accuracy']):>10}{f(r['roc_auc']):>9}"
              f"  {r['roc_auc_against'] or ''}".rstrip() for name, r in by_source.items()]
    return "\n".join(lines)


def format_attribution(attribution: dict) -> str:
    """An expert detector's attribution (:attr:`ffeat.Evaluation.attribution`) as text:
    the accuracy, then per fake source the share given to each expert."""
    accuracy = attribution["accuracy"]
    lines = [f"attribution accuracy: {'n/a' if accuracy is None else f'{accuracy:.4f}'} "
             f"({attribution['n']} fakes from sources named after an expert)"]
    lines += [f"  {printable(name)}: " + ", ".join(f"{printable(g)} {v:.4f}"
                                                    for g, v in shares.items())
              for name, shares in attribution["by_source"].items()]
    return "\n".join(lines)


def _inputs(args: argparse.Namespace, classes) -> Iterator[str]:
    """Every file the command reads, listed only when asked for."""
    yield args.model
    yield args.data
    yield from load_dataset(args.data, classes).paths


def _run(args: argparse.Namespace) -> int:
    args.model = model_file(args)
    try:
        perturbations = parse_perturbations(args.perturb or ())
        classes = parse_classes(args.classes)
    except ValueError as exc:
        return fail(str(exc), 2)
    if (problem := threshold_problem(args.threshold)) is not None:
        return fail(problem, 2)
    if args.report is not None:
        from ..report import require_matplotlib
        try:
            require_matplotlib()
            problem = claim_output(args.report, _inputs(args, classes), folder=True)
        except ImportError as exc:
            return fail(f"--report: {exc}")
        except ValueError as exc:  # the dataset cannot be listed
            return fail(str(exc), 2)
        if problem is not None:
            return fail(f"--report: {problem}", 2)
    try:
        detector = load_detector(args.model)
    except ModelFileError as exc:  # the model named is unusable: a usage error
        return fail(str(exc), 2)
    detector.set_run_options(jobs=args.jobs, cache=args.cache, backend=args.backend,
                             **faces_reading(detector, args.faces))
    rows = None
    try:
        if args.report is not None:
            from ..report import write_report
            report = write_report(detector, args.data, args.report, classes=classes,
                                  threshold=args.threshold, perturb=perturbations,
                                  progress=progress(args))
            result, rows = report.evaluation, report.robustness
        else:
            result = evaluate(detector, args.data, threshold=args.threshold, classes=classes,
                              progress=progress(args))
    except NoReadableImages as exc:
        report_skipped(exc.errors)
        return fail(str(exc))
    except ValueError as exc:
        return fail(str(exc), 2)
    except OSError as exc:
        return fail(f"cannot write the report to {args.report}: {exc}")
    report_skipped(result.errors)
    if not result.sources:
        return fail(f"none of the {len(result.errors)} images could be read")
    if perturbations and rows is None:
        rows = robustness(detector, args.data, perturbations, classes=classes,
                          threshold=args.threshold, baseline=result, progress=progress(args))
    if args.json:
        out = result.to_dict()
        if rows is not None:
            out["robustness"] = rows
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_metrics(result))
        if (by_source := result.by_source) is not None:
            print("\nby source (recall: fakes called fake; FPR: reals called fake):")
            print(format_sources(by_source))
        if (attribution := result.attribution) is not None:
            print("\nfakes by the expert that names them (generator):")
            print(format_attribution(attribution))
        if rows is not None:
            print("\nrobustness (every image re-scored on a perturbed copy):")
            print(format_robustness(rows))
    if args.report is not None:
        say(args, f"wrote the report to {Path(args.report) / 'index.html'}")
    return 0


def add_parser(sub, summary: str) -> None:
    """Register ``ffeat evaluate``."""
    p = sub.add_parser(
        "evaluate", help=summary,
        description="Score a labelled dataset (folder with real/ and fake/ at any depth, "
                    "or a CSV manifest) with the detector shipped with ffeat or --model "
                    "FILE and print accuracy, precision, recall, F1, ROC AUC, average "
                    "precision, equal error rate, Brier score, expected calibration error "
                    "(10 bins), coverage (share outside the model's inconclusive band) and "
                    "accuracy on those, the confusion matrix and the counts (fake is the "
                    "positive class); when DATA holds several sources (top-level "
                    "subfolders, or a manifest's source column), the same per source.")
    p.add_argument("data", metavar="DATA", help="dataset folder or CSV manifest")
    add_model_option(p)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (accuracy, precision, recall, f1, roc_auc, "
                        "average_precision, eer, brier, ece, coverage, n_inconclusive, "
                        "conclusive_accuracy, confusion_matrix, n_real, n_fake, threshold, "
                        "band, errors, and by_source when DATA holds several sources)")
    add_threshold_option(p, "an image")
    p.add_argument("--report", metavar="DIR", default=None,
                   help="also write an HTML report (DIR/index.html with figures, galleries, "
                        "spectra, embeddings, explanations, dataset overview; needs "
                        "matplotlib: pip install 'ffeat[report]')")
    p.add_argument("--perturb", action="append", metavar="KIND=S[,S...]", default=None,
                   help="re-evaluate on perturbed copies made in memory (inputs are never "
                        "modified); repeatable: jpeg=90,70,50 (quality), resize=0.75,0.5 "
                        "(factor), blur=1,2 (sigma, px), noise=2,5 (std, 8-bit levels), "
                        "flip. Adds a robustness table (and key in --json)")
    add_faces_option(p, None)
    add_classes_option(p)
    add_run_options(p)
    p.set_defaults(func=_run)
