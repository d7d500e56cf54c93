"""Render the result tables of README.md and docs/ from the benchmarks' JSON.

Every generated table sits in a markdown file between two marker comments::

    <!-- table:accuracy begin -->
    ...
    <!-- table:accuracy end -->

and is rendered from one committed JSON file (:data:`TABLES`): the files under
``docs/results/`` have the layout the benchmark scripts write with ``--json
FILE`` (``accuracy.py``, ``sources.py``, ``calibration.py``, ``faces.py``,
``experts.py``) or
``ffeat compare --format json`` prints, so a rerun can replace a file directly;
the shipped detector's tables come from its model card,
``src/ffeat/models/default.card.json``, which ``benchmarks/train_default.py``
writes. Standard library only: the tables render without ffeat built.

Usage: ``python benchmarks/render_docs.py`` rewrites the tables in place;
``python benchmarks/render_docs.py --check`` changes nothing and exits 1 when a
table differs from what its JSON renders (``tests/test_docs.py`` runs it, so a
hand edit of a generated table fails the tests), 2 on a malformed marker or an
unknown table.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
CARD = ROOT / "src" / "ffeat" / "models" / "default.card.json"
#: The markdown files that may hold generated tables (globs relative to ROOT).
PAGES = ("README.md", "docs/*.md")
#: The classifier whose row of the accuracy table is the default's.
DEFAULT_CLASSIFIER = "stacked"

MARKER = re.compile(r"<!-- table:(?P<name>[a-z0-9-]+) (?P<end>begin|end) -->")


class MarkerError(ValueError):
    """A marker without its partner, nested markers or an unknown table name."""


# --- formatting helpers -----------------------------------------------------------------


def _f(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, ``-`` when missing or NaN."""
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    """A share as a percentage with one decimal (``100%`` when whole)."""
    if value is None:
        return "-"
    return "100%" if value == 1 else f"{value:.1%}"


def _size(n: int) -> str:
    """A byte count as ``ffeat compare`` prints it."""
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    """Markdown table lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _set(path: str) -> str:
    """``140k/real`` as ``` `140k` real```."""
    name, _, cls = path.partition("/")
    return f"`{name}` {cls}".strip()


# --- the tables ---------------------------------------------------------------------------


def accuracy(result: dict) -> str:
    """The ``140k`` protocol of ``benchmarks/accuracy.py``: one row per feature set and
    classifier; ``ms/img`` on the first row of each feature set (it is the same for
    every classifier), the default set's default classifier in bold.

    Parameters
    ----------
    result : dict
        What ``accuracy.py --json`` writes: ``n_140k``, ``n_tpdne``,
        ``decode_ms_per_image`` and ``rows`` (``features``, ``classifier``,
        ``n_features``, ``cv_auc``, ``cv_accuracy``, ``tpdne_auc``,
        ``ms_per_image``); ``date`` when present.

    Returns
    -------
    str
        A caption line and the table.
    """
    caption = (f"{result['n_140k']:,} `140k` images (5-fold), {result['n_tpdne']:,} `tpdne` "
               f"images; JPEG decoding {result['decode_ms_per_image']:.2f} ms per image")
    if result.get("date"):
        caption += f"; measured {result['date']}"
    rows, seen = [], set()
    for r in result["rows"]:
        default = "(default)" in r["features"] and r["classifier"] == DEFAULT_CLASSIFIER
        cells = [r["features"].replace("+", " + "),
                 r["classifier"] + (" (default)" if default else ""),
                 f"{r['n_features']:,}", _f(r["cv_auc"]), _f(r["cv_accuracy"]),
                 _f(r.get("tpdne_auc"))]
        if default:
            cells = [f"**{c}**" if i != 2 else c for i, c in enumerate(cells)]
        cells.append("" if r["features"] in seen else _f(r["ms_per_image"], 2))
        seen.add(r["features"])
        rows.append(cells)
    header = ["features", "classifier", "columns", "140k 5-fold AUC", "140k accuracy",
              "140k -> tpdne AUC", "ms/img"]
    return "\n".join([caption + ":", "", *_table(header, rows)])


def _control_labels(result: dict) -> list[tuple[str, str]]:
    """``(key, label)`` of every control column: the codec controls, then the framings
    (runs before the framing control have none)."""
    codecs = dict.fromkeys([*result["controls"]["reals"],
                            "{}px q{}".format(*result["controls"]["fakes"])])
    framings = dict.fromkeys(c for e in result["sources"].values() for c in e.get("framing", {}))
    return [("controls", c) for c in codecs] + [("framing", c) for c in framings]


def sources(result: dict) -> str:
    """The per-source table of ``benchmarks/sources.py`` and its summary line.

    Parameters
    ----------
    result : dict
        What ``sources.py --json`` writes (``sources``, ``controls``, ``overall``,
        ``cv_140k``, ``train_sources``, ``params``, ``threshold``; ``date`` when
        present).

    Returns
    -------
    str
        A caption, the table (recall of fake sources, false-positive rate of real
        ones, each control and framing as rate and change) and the overall figures.
    """
    labels = _control_labels(result)
    params = ", ".join(f"{k}={v}" for k, v in result["params"].items()) or "defaults"
    caption = (f"`Detector({params})` trained on the training halves of "
               f"{', '.join(result['train_sources'])}; their test halves, threshold "
               f"{result['threshold']:g}")
    if result.get("date"):
        caption += f"; measured {result['date']}"
    rows = []
    for name, e in result["sources"].items():
        rate = e["recall"] if e["role"] == "fake" else e["fpr"]
        loso = e.get("loso") or {}
        controls = [e.get(key, {}).get(c) for key, c in labels]
        rows.append([name, e["role"] + ("" if e.get("in_mix", True) else " (not trained on)"),
                     f"{e['n_test']:,}", _f(rate), _f(e["auc"]),
                     _f(loso["recall"]) if loso else "", _f(loso["auc"]) if loso else "",
                     *["" if c is None else f"{_f(c['rate'])} ({c['delta']:+.3f})"
                       for c in controls]])
    header = ["source", "role", "n test", "recall / FPR", "AUC", "LOSO recall", "LOSO AUC",
              *[f"as {c}" if key == "controls" else c for key, c in labels]]
    o, cv = result["overall"], result["cv_140k"]
    summary = (f"All {o['n']:,} test images: accuracy {o['accuracy']:.3f}, AUC {o['auc']:.3f}; "
               f"`140k` 5-fold ({cv['n']:,} images) AUC {cv['auc']:.3f}, accuracy "
               f"{cv['accuracy']:.3f}.")
    return "\n".join([caption + ":", "", *_table(header, rows), "", summary])


def source_targets(result: dict) -> str:
    """The issue's targets and this run's figures, as ``sources.py`` judges them.

    Parameters
    ----------
    result : dict
        What ``sources.py --json`` writes; only ``targets`` (``target``, ``goal``,
        ``value``, ``met``) is read.

    Returns
    -------
    str
        The table.
    """
    verdict = {True: "met", False: "**missed**", None: "n/a"}
    rows = [[t["target"], t["goal"], _f(t["value"]), verdict[t["met"]]]
            for t in result["targets"]]
    return "\n".join(_table(["figure", "target", "measured", ""], rows))


def calibration(result: dict) -> str:
    """The calibration protocol of ``benchmarks/calibration.py``.

    Parameters
    ----------
    result : dict
        What ``calibration.py --json`` writes: ``n_images``, ``folds``, ``seed`` and
        ``settings`` (setting -> calibration -> figures).

    Returns
    -------
    str
        A caption and one row per setting and calibration.
    """
    names = {"none": "no augmentation", "augment": "`jpeg`, `resize`, `blur` copies"}
    first = next(iter(next(iter(result["settings"].values())).values()))
    perturbed = [k for k in first if k.startswith("accuracy ")]
    rows = []
    for setting, kinds in result["settings"].items():
        for kind, r in kinds.items():
            rows.append([names.get(setting, setting), kind, _f(r["ece"]), _f(r["brier"]),
                         _f(r["accuracy"]), *[_f(r[k]) for k in perturbed],
                         _f(r["coverage"]), _f(r["conclusive_accuracy"])])
    header = ["training", "calibration", "ECE", "Brier", "acc",
              *[f"acc {k.removeprefix('accuracy ')}" for k in perturbed], "coverage",
              "acc on conclusive"]
    caption = (f"`140k`, {result['n_images']:,} images, stratified {result['folds']}-fold, "
               f"seed {result['seed']}")
    return "\n".join([caption + ":", "", *_table(header, rows)])


def faces_found(result: dict) -> str:
    """The face finder's found rates of ``benchmarks/faces.py`` ("found").

    Parameters
    ----------
    result : dict
        What ``faces.py --json`` writes; ``found`` is read.

    Returns
    -------
    str
        The table, then the control on photographs without a face and the
        ``140k`` box geometry.
    """
    found = result["found"]
    rows = [[_set(r["source"]), f"{r['images']:,}", _pct(r["found"]),
             _pct(r["found_scrambled"]), _pct(r["aligned"]) if "aligned" in r else ""]
            for r in found["rows"]]
    header = ["source", "images", "face found",
              'the same images, faces destroyed: "found"',
              "`140k`: frame is the image (IoU >= 0.7)"]
    lines = _table(header, rows)
    lines += ["", f"scikit-image photographs without a face: a face \"found\" in "
              f"{found['non_faces_found']} of {found['non_faces']}."]
    if "margin" in found:
        lines[-1] += (f" On `140k` the image side is a median {found['margin']:.3f} box "
                      f"widths and its centre {found['offset']:.3f} widths above the box "
                      "centre.")
    return "\n".join(lines)


def faces_cost(result: dict) -> str:
    """Milliseconds per image of finding the faces, ``benchmarks/faces.py`` ("cost").

    Parameters
    ----------
    result : dict
        What ``faces.py --json`` writes; ``cost`` is read (``find_S`` wall and
        ``find_S_cpu`` CPU milliseconds for each input ``S``; ``features_256``).

    Returns
    -------
    str
        The table (a wall-time column only when the file has wall times).
    """
    cost = result["cost"]
    inputs = [k.removeprefix("find_").removesuffix("_cpu") for k in cost
              if k.startswith("find_") and k.endswith("_cpu")]
    wall = any(f"find_{s}" in cost for s in inputs)

    def label(s: str) -> str:
        return f"`140k` resized to {s} px" if s.isdigit() else f"`{s}` portraits as they are"

    rows = [[label(s), _f(cost[f"find_{s}_cpu"], 1),
             *([_f(cost.get(f"find_{s}"), 1)] if wall else [])] for s in inputs]
    if "features_256" in cost:
        rows.append(["default features on the 256 px frame (not face finding)", "",
                     *([_f(cost["features_256"], 1)] if wall else [])])
    header = ["input", "CPU ms per image", *(["wall ms per image"] if wall else [])]
    return "\n".join(_table(header, rows))


_TESTS = {"aligned": "aligned (as trained)",
          "pasted": "pasted at 0.5-1.0 of the side into 512 px photographs without faces",
          "margin": "portraits with margins (reflected out by 25% per side)"}
_TRAININGS = {"aligned": "crop model trained on aligned", "boxcut": "box cuts",
              "reframed": "re-framed", "mixed": "aligned + re-framed",
              "jitter": "aligned + jittered boxes"}


def _auc(rows: list[dict], test: str, faces: str, train: str) -> str:
    for r in rows:
        if (r["test"], r["faces"], r["train"]) == (test, faces, train):
            return _f(r["auc"])
    return "-"


def faces_reframed(result: dict) -> str:
    """Re-framed ``140k`` under ``--faces off`` and ``crop``, ``benchmarks/faces.py``.

    Parameters
    ----------
    result : dict
        What ``faces.py --json`` writes; ``reframed`` is read.

    Returns
    -------
    str
        The table of ROC AUCs.
    """
    re_ = result["reframed"]
    tests = list(dict.fromkeys(r["test"] for r in re_["rows"]))
    rows = [[_TESTS.get(t, t), _auc(re_["rows"], t, "off", "whole"),
             _auc(re_["rows"], t, "crop", "aligned")] for t in tests]
    return "\n".join(_table(["test images", "`--faces off`", "`--faces crop`"], rows))


def faces_training(result: dict) -> str:
    """The crop model trained on other frames (``faces.py --train ...``).

    Parameters
    ----------
    result : dict
        What ``faces.py --json`` writes; ``reframed`` is read.

    Returns
    -------
    str
        The table of ROC AUCs, or a line saying the run measured none.
    """
    re_ = result["reframed"]
    trains = list(dict.fromkeys(r["train"] for r in re_["rows"] if r["faces"] == "crop"))
    if trains == ["aligned"]:
        return "(not measured in this run: `python benchmarks/faces.py --train ...`)"
    tests = list(dict.fromkeys(r["test"] for r in re_["rows"]))
    rows = [[t, *[_auc(re_["rows"], t, "crop", v) for v in trains]] for t in tests]
    return "\n".join(_table(["test images", *[_TRAININGS.get(v, v) for v in trains]], rows))


def faces_tolerance(result: dict) -> str:
    """How precisely a face must be framed, ``benchmarks/faces.py`` ("tolerance").

    Parameters
    ----------
    result : dict
        What ``faces.py --json`` writes; ``reframed.tolerance`` is read.

    Returns
    -------
    str
        The table of ROC AUCs per framing error.
    """
    rows = []
    for t in result["reframed"]["tolerance"]:
        parts = [f"{k} {v:.0%}" for k, v in (("shift", t["shift"]), ("side", t["scale"])) if v]
        rows.append([", ".join(parts) or "none", _f(t["auc"])])
    return "\n".join(_table(["error (standard deviation, fraction of the side)", "ROC AUC"],
                            rows))


def faces_detector(result: dict) -> str:
    """Trained detectors on re-framed ``140k`` test faces, ``benchmarks/faces.py
    --detector`` (one run per detector).

    Parameters
    ----------
    result : dict
        ``detectors``: what ``faces.py --json`` writes under ``detector`` per run.

    Returns
    -------
    str
        One row per test variant: each detector's ROC AUC and images without a score.
    """
    runs = result["detectors"]
    rows = [[variant["variant"], *[f"{_f(r['rows'][i]['auc'])} ({r['rows'][i]['no_score']})"
                                   for r in runs]]
            for i, variant in enumerate(runs[0]["rows"])]
    header = ["`140k` test faces", *[f"{r['model']}: ROC AUC (no score)" for r in runs]]
    return "\n".join(_table(header, rows))


def compare(result: dict) -> str:
    """``ffeat compare``'s table.

    Parameters
    ----------
    result : dict
        What ``ffeat compare --format json`` prints (``split``, ``data``, ``test``,
        ``rows``); ``date`` when present.

    Returns
    -------
    str
        A caption and the table, as ``ffeat compare --format markdown`` prints it.
    """
    test = Path(result["test"]).name if result.get("test") else None
    header = ["detector", "held-out ROC AUC", "held-out accuracy"]
    if test:
        header += [f"{test} ROC AUC", f"{test} accuracy"]
    header += ["train s", "predict img/s", "model size"]
    rows = []
    for r in result["rows"]:
        line = [r["detector"], _f(r["roc_auc"]), _f(r["accuracy"])]
        if test:
            line += [_f(r["test_roc_auc"]), _f(r["test_accuracy"])]
        line += [f"{r['train_s']:.1f}", f"{r['images_per_s']:,.0f}", _size(r["model_bytes"])]
        rows.append(line)
    caption = f"{result['split']} of `{result['data']}`"
    if test:
        caption += f"; cross-dataset test: `{result['test']}`"
    if result.get("date"):
        caption += f"; measured {result['date']}"
    return "\n".join([caption + ":", "", *_table(header, rows)])


def _per_source(card: dict) -> list[tuple[dict, dict]]:
    figures = {r["source"]: r for r in card["protocol"]["per_source"]}
    return [(s, figures.get(s["name"], {})) for s in card["sources"]]


def shipped(card: dict) -> str:
    """The shipped detector's held-out figures per source, from its model card.

    Parameters
    ----------
    card : dict
        ``src/ffeat/models/default.card.json`` (``sources``, ``protocol``,
        ``calibration``, ``band``, ``detector``).

    Returns
    -------
    str
        The table and the calibration and band figures.
    """
    per = _per_source(card)
    controls = list(dict.fromkeys(k for _, f in per for k in f.get("controls", {})))
    loso = any("loso_recall" in f for _, f in per)
    rows = []
    for s, f in per:
        rate = f.get("recall" if s["label"] == "fake" else "fpr")
        rows.append([s["name"], s.get("family", s["label"]), f"{s['count']:,}",
                     f"{f.get('n', 0):,}", f"{f['no_score']:,}" if "no_score" in f else "",
                     _f(rate), _f(f["called_fake"]) if "called_fake" in f else "",
                     _f(f.get("auc")) if "auc" in f else "",
                     _f(f["attribution"]) if "attribution" in f else "",
                     *(_f(f["controls"][c]) if c in f.get("controls", {}) else ""
                       for c in controls),
                     *([_f(f["loso_recall"]) if "loso_recall" in f else ""] if loso else [])])
    header = ["source", "family", "n trained", "n test", "no face", "recall / FPR",
              "called fake (3-way)", "AUC (against the pooled reals)",
              "attributed to its family", *(f"control: {c}" for c in controls),
              *(["left out of training: recall"] if loso else [])]
    fig, band = card["calibration"]["figures"], card["band"]
    n = sum(f.get("n", 0) for _, f in per)
    t = card["detector"]["training"]
    lines = _table(header, rows)
    if card.get("experts"):
        lines += ["", "Experts: " + "; ".join(
            f"`{e['name']}` ({', '.join(e['sources'])}: {e['count']:,} fakes)"
            for e in card["experts"]) + "."]
    lines += ["", f"Trained on {t['n_real'] + t['n_fake']:,} images ({t['n_fake']:,} fake, "
              f"{t['n_real']:,} real; {t['n_rows']:,} rows with the augmented copies). All "
              f"{n:,} test images scored: accuracy {fig['accuracy']:.3f}, ROC AUC "
              f"{fig['roc_auc']:.3f}, Brier {fig['brier']:.3f}, ECE {fig['ece']:.3f} "
              f"(10 bins, `{card['calibration']['method']}` calibration); the inconclusive "
              f"band is `prob_fake` in [{band['low']:.3f}, {band['high']:.3f}): "
              f"{fig['coverage']:.1%} of the images get a conclusive answer, and "
              f"{fig['conclusive_accuracy']:.1%} of those are right."]
    return "\n".join(lines)


def headline(card: dict) -> str:
    """A few figures of the shipped detector for README.md, from its model card.

    Parameters
    ----------
    card : dict
        ``src/ffeat/models/default.card.json``.

    Returns
    -------
    str
        A short table: held-out accuracy and AUC, conclusive answers, and the
        best and worst per-source figures (worst real false-positive rate, recall
        of generators left out of training).
    """
    fig = card["calibration"]["figures"]
    per = [f for _, f in _per_source(card)]
    n = sum(f.get("n", 0) for f in per)
    fakes = [f for f in per if "recall" in f]
    reals = [f for f in per if "fpr" in f]
    worst_real = max(reals, key=lambda f: f["fpr"])
    loso = sorted((f for f in fakes if "loso_recall" in f), key=lambda f: f["loso_recall"])
    unscored = sum(f.get("no_score", 0) for f in per)
    rows = [[f"held-out images of its {len(per)} training sources scored (no face found)",
             f"{n:,} ({unscored:,})"],
            ["accuracy / ROC AUC", f"{fig['accuracy']:.3f} / {fig['roc_auc']:.3f}"],
            ["conclusive answers / accuracy on them",
             f"{fig['coverage']:.1%} / {fig['conclusive_accuracy']:.1%}"],
            ["recall per fake source (" + ", ".join(f["source"] for f in fakes) + ")",
             " / ".join(_f(f["recall"]) for f in fakes)],
            [f"worst false-positive rate of a real source ({worst_real['source']})",
             _f(worst_real["fpr"])]]
    if all("attribution" in f for f in fakes):
        rows.append(["fakes attributed to their generator family (same order)",
                     " / ".join(_f(f["attribution"]) for f in fakes)])
    if loso:
        rows.append(["recall of a generator left out of training ("
                     + ", ".join(f["source"] for f in loso) + ")",
                     " / ".join(_f(f["loso_recall"]) for f in loso)])
    return "\n".join(_table(["shipped detector", ""], rows))


# --- output -------------------------------------------------------------------------------


def experts(result: dict) -> str:
    """The experts protocol's tables (``docs/experts.md``).

    Parameters
    ----------
    result : dict
        What ``experts.py --json`` writes (``sources``, ``models``, ``attribution``,
        ``few_shot_summary``, ...).
    """
    models = [m for m in result["models"] if "sources" in result["models"][m]]
    lines = [f"Rows: default features, `Reading(faces=\"align\", frame=256)`, no augmented "
             f"copies; classifier {result['classifier']}; seed-{result['seed']} halves. "
             f"Threshold per model: the log-odds that calls {result['fpr_target']:.0%} of the "
             f"{result['thresholds_tuned_on']} fake. Rule chosen by the mean fake recall at "
             f"that threshold: **{result['chosen_rule']}**.", "",
             "Recall (fakes) or FPR (reals) of the test halves at that threshold; in brackets "
             "the share called \"fake\" by the 3-way label (calibrated, automatic band, 0.5).",
             "", "| source | role | n test | " + " | ".join(models) + " |",
             "|---" * (3 + len(models)) + "|"]
    for name, info in result["sources"].items():
        cells = []
        for m in models:
            e = result["models"][m]["sources"][name]
            cells.append(f"{_f(e['at_threshold'])} ({_f(e['called_fake'])})")
        role = "real" if info["family"] == "real" else info["family"]
        lines.append(f"| {name} | {role} | {info['n_test']} | " + " | ".join(cells) + " |")
    lines.append("| 140k AUC (test halves) | | | " + " | ".join(
        _f(result["models"][m]["auc_140k"]) for m in models) + " |")
    lines.append("| 140k inconclusive | | | " + " | ".join(
        _f(result["models"][m]["inconclusive_140k"]) for m in models) + " |")
    lines += _expert_controls(result, ["binary", f"experts/{result['chosen_rule']}"])
    lines += ["", f"A 140k-only model (the same classifier on 140k's training halves): 140k "
              f"AUC {_f(result['models']['140k-only']['auc_140k'])}.", "",
              f"Attribution (the expert with the highest probability names the family of a "
              f"test fake): accuracy {_f(result['attribution']['accuracy'])}; "
              + ", ".join(f"{k} {_f(v)}" for k, v in result["attribution"]["sources"].items()),
              "", "Few-shot: the family's expert dropped and added back from n of its training "
              f"images (seeds {', '.join(map(str, result['few_shot_seeds']))}) against every "
              "training real, the other experts untouched; recall of its test fakes and FPR of the "
              f"test reals at the threshold that calls {result['fpr_target']:.0%} of the "
              "training reals fake.", "", "| family | n | recall (mean) | recall (min) | "
              "real FPR (mean) |", "|---|---|---|---|---|"]
    for s in result["few_shot_summary"]:
        lines.append(f"| {s['family']} | {s['n']} | {_f(s['recall_mean'])} | "
                     f"{_f(s['recall_min'])} | {_f(s['real_fpr_mean'])} |")
    sec = result["seconds"]
    lines += ["", "Time: " + ", ".join(f"{k} {v:.0f} s" for k, v in sec.items())]
    return "\n".join(lines)


def _expert_controls(result: dict, models: list[str]) -> list[str]:
    """The controls of the experts protocol for ``models``: per source, the rate of each
    control's copies at the model's threshold, with its shift from the source's own."""
    first = next(iter(result["models"][models[0]]["sources"].values()))
    controls = list(first.get("controls", {}))
    if not controls:  # a result from before the controls were measured
        return []
    lines = ["", "Controls: every test image copied " + ", ".join(controls) + "; the rate of "
             "the copies at the same threshold (in brackets, its shift from the source's own "
             "rate).", "", "| source | " + " | ".join(f"{m}: {c}" for m in models
                                                      for c in controls) + " |",
             "|---" * (1 + len(models) * len(controls)) + "|"]
    for name in result["sources"]:
        cells = [result["models"][m]["sources"][name]["controls"][c]
                 for m in models for c in controls]
        lines.append(f"| {name} | " + " | ".join(
            f"{_f(c['at_threshold'])} ({c['delta']:+.3f})" for c in cells) + " |")
    lines.append("| worst shift | " + " | ".join(
        _f(result["models"][m]["worst_control_shift"]) if i == 0 else ""
        for m in models for i in range(len(controls))) + " |")
    return lines


def residual_chroma(result: dict) -> str:
    """Residual chroma at half against full resolution (and luma alone).

    Parameters
    ----------
    result : dict
        What ``residual_chroma.py --json`` writes (``sets``: per set ``n`` and
        ``variants``: ``columns``, ``auc``, ``auc_sd``, ``ms``; ``seed``, ``folds``).
    """
    lines = [f"| set (images) | residual | columns | AUC ({result['folds']}-fold) | ms / image |",
             "|---|---|---|---|---|"]
    for set_name, m in result["sets"].items():
        for name, v in m["variants"].items():
            lines.append(f"| {set_name} ({m['n']}) | {name} | {v['columns']} | "
                         f"{_f(v['auc'])} ± {_f(v['auc_sd'])} | {v['ms']:.2f} |")
    return "\n".join(lines)


#: Table name -> (JSON file, renderer).
TABLES: dict[str, tuple[Path, Callable[[dict], str]]] = {
    "accuracy": (RESULTS / "accuracy.json", accuracy),
    "sources": (RESULTS / "sources.json", sources),
    "sources-targets": (RESULTS / "sources.json", source_targets),
    "calibration": (RESULTS / "calibration.json", calibration),
    "faces-found": (RESULTS / "faces.json", faces_found),
    "faces-cost": (RESULTS / "faces.json", faces_cost),
    "faces-reframed": (RESULTS / "faces.json", faces_reframed),
    "faces-training": (RESULTS / "faces.json", faces_training),
    "faces-tolerance": (RESULTS / "faces.json", faces_tolerance),
    "faces-detector": (RESULTS / "faces-detector.json", faces_detector),
    "compare": (RESULTS / "compare.json", compare),
    "shipped": (CARD, shipped),
    "headline": (CARD, headline),
    "experts": (RESULTS / "experts.json", experts),
    "residual-chroma": (RESULTS / "residual-chroma.json", residual_chroma),
}


# --- markers ------------------------------------------------------------------------------


def render(name: str) -> str:
    """The markdown of table ``name``, from its JSON file.

    Parameters
    ----------
    name : str
        A key of :data:`TABLES`.

    Returns
    -------
    str
        The table (and its caption lines), without the markers.
    """
    path, renderer = TABLES[name]
    return renderer(json.loads(path.read_text(encoding="utf-8")))


def update(text: str) -> tuple[str, list[str]]:
    """``text`` with every marked table rendered again.

    Parameters
    ----------
    text : str
        A markdown page.

    Returns
    -------
    new_text : str
        The page with each block between ``<!-- table:NAME begin -->`` and
        ``<!-- table:NAME end -->`` replaced by a blank line, the rendered table
        and a blank line.
    changed : list of str
        The names of the tables whose block changed.

    Raises
    ------
    MarkerError
        For an unknown table name, an end without its begin, a begin without
        its end, or a marker inside another table's block.
    """
    out, changed, pos, open_ = [], [], 0, None
    for m in MARKER.finditer(text):
        name, end = m["name"], m["end"] == "end"
        if name not in TABLES:
            raise MarkerError(f"unknown table {name!r} (known: {', '.join(TABLES)})")
        if not end:
            if open_ is not None:
                raise MarkerError(f"table {name!r} begins inside table {open_[0]!r}")
            out.append(text[pos:m.end()])
            open_, pos = (name, m.end()), m.end()
            continue
        if open_ is None or open_[0] != name:
            raise MarkerError(f"end of table {name!r} without its begin")
        block = "\n\n" + render(name) + "\n\n"
        if text[pos:m.start()] != block:
            changed.append(name)
        out.append(block + m.group(0))
        open_, pos = None, m.end()
    if open_ is not None:
        raise MarkerError(f"table {open_[0]!r} has no end marker")
    out.append(text[pos:])
    return "".join(out), changed


def pages(root: Path = ROOT) -> list[Path]:
    """The markdown files that may hold tables, in a fixed order."""
    return sorted({p for pattern in PAGES for p in root.glob(pattern)})


def main(argv: list[str] | None = None) -> int:
    """Render (or with ``--check`` compare) every marked table.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every table is (or now is) what its JSON renders, 1 when
        ``--check`` found a difference, 2 on a marker error.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true",
                   help="change nothing; exit 1 when a table differs from its JSON")
    args = p.parse_args(argv)
    stale = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        try:
            new, changed = update(text)
        except MarkerError as exc:
            print(f"{page.relative_to(ROOT)}: {exc}", file=sys.stderr)
            return 2
        for name in changed:
            stale.append(f"{page.relative_to(ROOT)}: table {name!r}")
        if changed and not args.check:
            page.write_text(new, encoding="utf-8")
    if args.check and stale:
        print("tables that differ from their JSON (run python benchmarks/render_docs.py):",
              *stale, sep="\n  ", file=sys.stderr)
        return 1
    for line in stale:
        print(f"rendered {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
