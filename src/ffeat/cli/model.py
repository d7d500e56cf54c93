"""``ffeat model``: the model card of the shipped detector, or what a model file says."""
from __future__ import annotations

import argparse
import json
import sys
import textwrap

from .._text import printable
from ..models import _shipped
from ..models._persist import ModelFileError, load_detector
from ._common import add_model_option, fail, model_file

#: What the card says when it lacks a figure (or the model has no card).
NOT_MEASURED = "not measured"
#: Columns of the protocol table: card key and heading.
_FIGURES = (("n", "n"), ("recall", "recall"), ("fpr", "FPR"), ("called_fake", "called fake"),
            ("auc", "AUC"), ("attribution", "attributed"), ("loso_recall", "LOSO recall"))
_WIDTH = 88


def _row(label: str, value: str) -> str:
    return f"{label:<19}{value}"


def _value(v) -> str:
    if isinstance(v, list):
        return f"({', '.join(map(_value, v))})"
    return format(v, ".3g") if isinstance(v, float) else str(v)


def _pairs(mapping: dict) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in mapping.items())


def _detector_lines(d: dict) -> list[str]:
    """The model's own metadata (:func:`ffeat.models._shipped.summary`) as labelled lines."""
    features = ", ".join(f"{f['family']}({_pairs({k: v for k, v in f.items() if k != 'family'})})"
                         for f in d["features"]) or "none (the CNN reads pixels)"
    frame = d["params"].get("frame")
    t = d["training"]
    training = (f"{t.get('n_real', '?'):,} real, {t.get('n_fake', '?'):,} fake images read "
                f"({t.get('n_errors', 0)} unreadable), {t.get('n_rows', '?'):,} feature rows; "
                f"augmentation: {', '.join(t.get('augment') or []) or 'none'}")
    generators = t.get("generators")  # an expert model: its experts, fakes each
    return [_row("classifier", d["classifier"]),
            *([_row("experts", ", ".join(f"{name} ({n:,} fakes)" if isinstance(n, int)
                                         else str(name) for name, n in generators.items()))]
              if isinstance(generators, dict) else []),
            _row("features", f"{features} ({d['n_columns']:,} columns)"),
            _row("frame", "the whole image" if frame is None
                 else f"centre square resized to {frame} px"),
            _row("threshold", _value(d["threshold"])),
            _row("parameters", _pairs(d["params"])),
            _row("training", training),
            _row("training data", t.get("data", "?"))]


def _protocol_lines(protocol: dict | None) -> list[str]:
    if not protocol:
        return [f"protocol figures: {NOT_MEASURED}"]
    rows = [[r["source"], r["label"], *(_value(r[k]) if k in r else "-" for k, _ in _FIGURES)]
            for r in protocol["per_source"]]
    head = ["source", "class", *(h for _, h in _FIGURES)]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = ["protocol figures (held-out images, at the threshold; - not measured)"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
              for row in [head, *rows]]
    lines += [f"  controls, {r['source']}: {_pairs(r['controls'])}"
              for r in protocol["per_source"] if r.get("controls")]
    lines += [f"  {k}: {_value(v)}" for k, v in protocol.get("summary", {}).items()]
    if "note" in protocol:
        lines.append(f"  {protocol['note']}")
    return lines


def _card_lines(card: dict) -> list[str]:
    lines = ["", "training sources"]
    lines += [f"  {s['name']:<16}{s['label']:<6}{s.get('family', ''):<11}{s['count']:>8,}"
              for s in card["sources"]]
    if card.get("experts"):
        lines += ["", "experts (the training sources of their fakes)"]
        lines += [f"  {e['name']:<16}{', '.join(e['sources'])} ({e['count']:,} fakes)"
                  for e in card["experts"]]
    lines += ["", *_protocol_lines(card.get("protocol")), ""]
    calibration = card.get("calibration")
    lines.append(_row("calibration", NOT_MEASURED if not calibration else "; ".join(
        filter(None, [calibration.get("method"), _pairs(calibration.get("figures", {})),
                      calibration.get("note")]))))
    band = card.get("band")
    lines.append(_row("inconclusive band", NOT_MEASURED if band is None else
                      f"prob_fake in [{band['low']:.3f}, {band['high']:.3f})"
                      + (f": {band['rule']}" if "rule" in band else "")))
    lines += ["", "known blind spots"]
    lines += [textwrap.fill(s, _WIDTH, initial_indent="  - ", subsequent_indent="    ")
              for s in card["blind_spots"]]
    lines += ["", "terms", textwrap.fill(card["terms"], _WIDTH, initial_indent="  ",
                                         subsequent_indent="  ")]
    return lines


def format_card(described: dict) -> str:
    """The text ``ffeat model`` prints for ``described`` (its ``--json`` object)."""
    origin = " (the detector shipped with ffeat)" if described["shipped"] else ""
    lines = [_row("model", f"{described['model']}{origin}"),
             _row("sha256", described["sha256"]),
             *_detector_lines(described["detector"])]
    if described["card"] is None:
        lines += ["", f"no model card ({_shipped.card_path(described['model']).name} beside the "
                      "file): training sources, protocol figures, calibration, inconclusive "
                      f"band, blind spots and terms: {NOT_MEASURED}"]
    else:
        lines += _card_lines(described["card"])
    return "\n".join(printable(line) for text in lines for line in text.split("\n"))


def _run(args: argparse.Namespace) -> int:
    path = model_file(args)
    try:
        detector = load_detector(path)
    except ModelFileError as exc:  # the model named is unusable: a usage error
        return fail(str(exc), 2)
    try:
        card = _shipped.read_card(path, detector)
    except _shipped.ModelCardError as exc:
        return fail(str(exc))
    described = {"model": path, "shipped": args.model is None, "sha256": _shipped.file_sha256(path),
                 "detector": _shipped.summary(detector), "card": card}
    if args.json:
        json.dump(described, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_card(described))
    return 0


def add_parser(sub, summary: str) -> None:
    """Register ``ffeat model``."""
    p = sub.add_parser(
        "model", help=summary,
        description="Print the model card of the detector shipped with ffeat (training "
                    "sources and counts, features, frame and classifier, the protocol's "
                    "figures per source, calibration, the inconclusive band, known blind "
                    "spots, terms), or for --model FILE its card (NAME.card.json beside "
                    "it) or, without one, what its metadata says. Figures a card lacks "
                    "are printed as 'not measured'.")
    add_model_option(p)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: model, shipped, sha256, detector (the "
                        "metadata) and card (null without one)")
    p.set_defaults(func=_run)
