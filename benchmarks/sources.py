"""The multi-source protocol of issue 18: how one detector configuration does on every
source of the face corpus, left out of training, and against shortcut controls.

The detector measured is ``ffeat.Detector(**params)`` (its defaults, or ``--param
KEY=VALUE`` overrides), trained on the training halves of the training mix
(``--train-sources``, default all twelve sources of ``_corpus.py``) with the
Detector's own estimator (``Detector._fit_rows``; ``classifier=experts`` learns
each fake's family from its source) on the feature rows the
reading engine gives for the Detector's reading parameters (jobs, cache, backend,
faces and whatever else ``ffeat.reading._rows.feature_rows`` takes), and augmented rows
from the Detector's own deferred copies (``augment``). It reports, on the test
halves (``_corpus.py``: seed 0, sorted paths):

- at the detector's threshold, the recall of every fake source and the
  false-positive rate (FPR) of every real source; ROC AUC of each fake source
  against the pooled test reals (of each real source: the pooled test fakes
  against it); overall accuracy and AUC of all test images;
- leave-one-source-out (LOSO): for every fake source in the mix, trained on the
  mix without it, its recall and AUC (against the pooled test reals); a fake
  source outside the mix is left out of the main fit already, so its LOSO
  figures are the main ones;
- shortcut controls: the test reals resized (Pillow bicubic, square) to each
  fake source's size and re-encoded as JPEG at its quality (the most common side
  of its files and the IJG quality of their luma quantisation table), scored by
  the main model: FPR beside the uncontrolled FPR; the test fakes re-encoded as
  256 px q75: recall beside the uncontrolled recall. Copies are made in memory by
  the reading engine's worker threads;
- ``140k`` stratified 5-fold cross-validation (seed 0, the folds of
  ``accuracy.py``) of the same configuration: ROC AUC of the out-of-fold scores
  and accuracy at the threshold, comparable with ``accuracy.py``'s rows; and the
  main model's AUC and accuracy on the ``140k`` test halves.

Every image's feature row (and each augmented copy's) is computed once and used
by every fit; control rows are computed after the fits, scored and dropped.
The sets are read from ``$FFEAT_FACES`` (default ``../shared/faces`` beside the
repository); without them the script says so and exits 0.

Usage: ``python benchmarks/sources.py [--param KEY=VALUE ...] [--train-sources
a,b,c] [--quick] [--json FILE] [--plot FILE]``
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import inspect
import io
import sys
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from PIL import Image
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

try:
    from . import _corpus, _data
except ImportError:  # run as a script: this folder is on sys.path
    import _corpus
    import _data

import ffeat  # noqa: E402
from ffeat.models._models import kind_name, sigmoid  # noqa: E402
from ffeat.reading._perturb import Perturbation, Perturbed, parse_augment  # noqa: E402
from ffeat.reading._rows import feature_rows  # noqa: E402
from ffeat.reading._sources import Item  # noqa: E402
from ffeat.detector import _augmented_items  # noqa: E402
from ffeat.features import column_names, resolve_features  # noqa: E402
from ffeat.reading.loading import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE, load_image  # noqa: E402

SEED = _corpus.SEED
FOLDS = 5
#: The sources of ``140k``, cross-validated as in ``accuracy.py``.
CV_SOURCES = ("ffhq", "stylegan1")
#: Images per source half in a ``--quick`` run.
QUICK_N = 10
#: Side and JPEG quality the fakes' control re-encodes them at.
FAKE_CONTROL = (256, 75)
#: Framings of the framing control: every test image framed this many times tighter
#: than given (``reframe=F``: 0.5 a looser photo, 1.5 a tighter crop).
FRAMINGS = (0.5, 1.5)
#: Files per source read for its side and quality.
CODEC_FILES = 50
#: Feature rows computed per call of the reading engine (bounds memory).
CHUNK = 256
#: The issue's targets: (name, comparison, value).
TARGETS = (("sd21 recall", ">=", 0.95), ("worst real FPR", "<=", 0.02),
           ("140k 5-fold AUC", ">=", 0.95), ("140k 5-fold accuracy", ">=", 0.90),
           ("worst StyleGAN LOSO recall", ">=", 0.90), ("worst control shift", "<=", 0.02),
           ("worst framing shift", "<=", 0.02))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- configuration ------------------------------------------------------------------------


def _value(text: str):
    """A ``--param`` value: true/false/none, an int, a float, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_params(specs: list[str]) -> dict:
    """Detector parameters from ``["key=value", ...]`` (e.g. ``augment=jpeg,resize``).

    Raises
    ------
    ValueError
        For a spec without ``=`` or a key given twice.
    """
    params = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--param {spec!r}: give KEY=VALUE, e.g. "
                             "--param augment=jpeg,resize")
        if key in params:
            raise ValueError(f"--param {key} is given twice")
        params[key] = _value(value)
    return params


def make_detector(params: dict) -> ffeat.Detector:
    """``ffeat.Detector(**params)``, its parameters checked before any image is read; the
    fields of its :class:`~ffeat.Reading` (``faces``, ``frame``, ...) are given by name
    too and change the Detector's default reading.

    Raises
    ------
    ValueError
        For a parameter the Detector does not take or an invalid value (the message
        names it and, for an unknown one, lists the parameters).
    """
    fields = [f.name for f in dataclasses.fields(ffeat.Reading)]
    names = [k for k in ffeat.Detector().get_params() if k != "reading"] + fields
    unknown = [k for k in params if k not in names]
    if unknown:
        raise ValueError(f"--param {unknown[0]}: Detector has no such parameter; choose from "
                         f"{', '.join(names)}")
    reading = ffeat.Detector().reading.replace(**{k: v for k, v in params.items()
                                                  if k in fields})
    detector = ffeat.Detector(**{k: v for k, v in params.items() if k not in fields},
                              reading=reading)
    detector._validate_params()
    resolve_features(detector.features)
    parse_augment(detector.augment)
    return detector


def reading_params(detector: ffeat.Detector) -> dict:
    """The detector's parameters the reading engine takes (``jobs``, ``cache``,
    ``backend``, ``faces``, and any it takes later), by name."""
    accepted = inspect.signature(feature_rows).parameters
    return {k: v for k, v in detector.get_params().items()
            if k in accepted and k not in ("items", "families")}


def _jsonable(value):
    if dataclasses.is_dataclass(value):  # a Reading: its fields
        return dataclasses.asdict(value)
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


# --- controls -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _luma_table(quality: int) -> tuple[int, ...]:
    """Pillow's luma quantisation table at an IJG quality."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=quality)
    with Image.open(buf) as im:
        return tuple(im.quantization[0])


def _quality(table) -> int:
    """The IJG quality whose luma table is closest to ``table`` (summed differences)."""
    return min(range(1, 101),
               key=lambda q: int(np.abs(np.subtract(_luma_table(q), table)).sum()))


def source_codec(paths) -> tuple[int, int]:
    """The most common side (the larger of width and height) and the most common
    estimated JPEG quality of the first ``CODEC_FILES`` of ``paths`` (headers only)."""
    sides, qualities = Counter(), Counter()
    for path in paths[:CODEC_FILES]:
        with Image.open(path) as im:
            sides[max(im.size)] += 1
            qualities[_quality(im.quantization[0])] += 1
    return sides.most_common(1)[0][0], qualities.most_common(1)[0][0]


@dataclass(frozen=True)
class _Recoded(Perturbed):
    """A deferred copy of ``source`` resized (Pillow bicubic) to ``side`` x ``side``
    pixels, then ``perturbation`` (a JPEG re-encoding) applied: a photo made to look
    like another source's files, made in a worker thread like any ``Perturbed``."""

    side: int = 256

    def load(self, *, max_pixels: int = DEFAULT_MAX_PIXELS,
             min_size: int = DEFAULT_MIN_SIZE, name: str | None = None) -> np.ndarray:
        rgb = load_image(self.source, max_pixels=max_pixels, min_size=min_size,
                         name=self.name if name is None else name)
        resized = Image.fromarray(rgb).resize((self.side, self.side), Image.Resampling.BICUBIC)
        return self.perturbation.apply(np.asarray(resized))


def _codec_label(codec: tuple[int, int]) -> str:
    return f"{codec[0]}px q{codec[1]}"


def controls(root=None) -> dict[str, tuple[int, int]]:
    """The reals' controls: label (``"300px q75"``) -> (side, quality), one per fake
    source's codec, in source order (sources sharing a codec share a control)."""
    out = {}
    for name in _corpus.FAKE:
        codec = source_codec(_corpus.source_files(name, root))
        out.setdefault(_codec_label(codec), codec)
    return out


# --- rows ---------------------------------------------------------------------------------


class _Rows:
    """Feature rows (float32) of images and augmented copies, with each row's source,
    label, image path, half (``train``/``test``) and kind (``original``/``augment``)."""

    def __init__(self, detector: ffeat.Detector) -> None:
        self.families = resolve_features(detector.features)
        self.reading = reading_params(detector)
        self.parts: list[np.ndarray] = []
        self.meta: list[tuple[str, int, str, str, str]] = []

    def compute(self, items: list[Item]) -> np.ndarray:
        """Feature rows of ``items`` in chunks of ``CHUNK`` (float32, NaN where unreadable)."""
        parts = [np.empty((0, len(column_names(self.families))), np.float32)]
        for start in range(0, len(items), CHUNK):
            X, _ = feature_rows(items[start:start + CHUNK], self.families, **self.reading)
            parts.append(X.astype(np.float32))
            _log(f"  {start + len(X)}/{len(items)} images")
        return np.concatenate(parts)

    def add(self, items: list[Item], sample: _corpus.Sample, half: str, kind: str) -> None:
        """Compute and keep the rows of ``items``, the images of ``sample`` (or copies)."""
        self.parts.append(self.compute(items))
        self.meta += [(s, int(y), str(p), half, kind)
                      for p, y, s in zip(sample.paths, sample.labels, sample.sources)]

    def freeze(self) -> None:
        """The rows as one matrix ``X`` and per-row arrays (after the last :meth:`add`)."""
        self.X = np.concatenate(self.parts)
        del self.parts
        source, label, image, half, kind = zip(*self.meta)
        self.source, self.image = np.array(source), np.array(image)
        self.label = np.array(label, dtype=np.int8)
        self.half, self.kind = np.array(half), np.array(kind)
        self.ok = ~np.isnan(self.X).any(axis=1)


def _fit(detector: ffeat.Detector, rows: _Rows, where: np.ndarray):
    """The detector's classifier fitted on the rows ``where`` (an expert detector learns
    each fake's family from its source, ``_corpus.family_of``)."""
    generator = None
    if kind_name(detector.classifier) == "experts":
        generator = np.array([_corpus.family_of(s) for s in rows.source[where]])
    return detector._fit_rows(rows.X[where], rows.label[where], rows.image[where], generator)


def _items(paths) -> list[Item]:
    return [Item(str(p), str(p)) for p in paths]


def _rate(scores: np.ndarray, threshold: float) -> float:
    """Share of ``scores`` (log-odds) at or above the probability ``threshold``."""
    return float(np.mean(sigmoid(scores) >= threshold)) if len(scores) else float("nan")


def _auc(fakes: np.ndarray, reals: np.ndarray) -> float:
    if not len(fakes) or not len(reals):
        return float("nan")
    y = np.r_[np.ones(len(fakes)), np.zeros(len(reals))]
    return float(roc_auc_score(y, np.r_[fakes, reals]))


# --- the protocol -------------------------------------------------------------------------


def measure(params: dict | None = None, mix=_corpus.NAMES, n: int | None = None,
            root=None) -> dict:
    """Run the protocol for ``Detector(**params)`` trained on the sources ``mix``.

    Parameters
    ----------
    params : dict, optional
        Detector parameters (default: its defaults).
    mix : str or sequence of str, optional
        The training mix (source names; default all).
    n : int, optional
        At most ``n`` images per source half (a quick run).
    root : path, optional
        The faces folder (default ``_data.faces_root()``).

    Returns
    -------
    dict
        Everything measured (see the module docstring), JSON-ready.
    """
    t_start, cpu_start = time.perf_counter(), time.process_time()
    detector = make_detector(params or {})
    mix = _corpus.parse_names(mix)
    threshold = detector.threshold
    kinds = parse_augment(detector.augment)
    rows = _Rows(detector)

    # Originals: the training halves the fits use (the mix's, and 140k's for the
    # cross-validation), then every test half; augmented copies of every image a fit
    # trains on (140k's test halves train the other folds of the cross-validation).
    train = _corpus.training_mix(_corpus.parse_names(mix + CV_SOURCES), root, n)
    test = _corpus.held_out(_corpus.NAMES, root, n)
    _log(f"reading {len(train.paths)} training and {len(test.paths)} test images")
    t = time.perf_counter()
    rows.add(_items(train.paths), train, "train", "original")
    rows.add(_items(test.paths), test, "test", "original")
    if kinds:
        cv_test = _corpus.held_out(CV_SOURCES, root, n)
        base = _corpus.Sample(train.paths + cv_test.paths, np.r_[train.labels, cv_test.labels],
                              train.sources + cv_test.sources)
        _log(f"augmenting: {len(kinds) * len(base.paths)} copies ({', '.join(kinds)})")
        aug = _augmented_items(_items(base.paths), kinds, detector.random_state)
        for k in range(len(kinds)):  # kind-major: one copy of every image per kind
            part = aug[k * len(base.paths):(k + 1) * len(base.paths)]
            rows.add(part[:len(train.paths)], train, "train", "augment")
            rows.add(part[len(train.paths):], cv_test, "test", "augment")
    rows.freeze()
    seconds = {"features": time.perf_counter() - t}

    # Fits on the rows computed once: main, leave-one-source-out, 140k 5-fold.
    t = time.perf_counter()
    tested = rows.ok & (rows.half == "test") & (rows.kind == "original")

    def fit_on(sources):
        m = rows.ok & (rows.half == "train") & np.isin(rows.source, list(sources))
        if len(np.unique(rows.label[m])) < 2:
            return None
        return _fit(detector, rows, np.flatnonzero(m))

    def scored(model) -> np.ndarray:
        out = np.full(len(rows.X), np.nan)
        out[tested] = model.decision_function(rows.X[tested])
        return out

    main = fit_on(mix)
    if main is None:
        raise ValueError(f"the training mix {','.join(mix)} holds one class; name real and "
                         "fake sources")
    scores = scored(main)
    per_source = _per_source(rows, scores, tested, mix, threshold)
    for name in _corpus.FAKE:
        model = fit_on(set(mix) - {name}) if name in mix else main
        if model is None:
            per_source[name]["loso"] = None
            continue
        s = scores if model is main else scored(model)
        per_source[name]["loso"] = {
            "recall": _rate(s[tested & (rows.source == name)], threshold),
            "auc": _auc(s[tested & (rows.source == name)], s[tested & (rows.label == 0)]),
            "left_out": name in mix}
        _log(f"without {name}: recall {per_source[name]['loso']['recall']:.3f}")
    overall = _summary(rows.label[tested], scores[tested], threshold)
    m140 = tested & np.isin(rows.source, CV_SOURCES)
    split_140k = _summary(rows.label[m140], scores[m140], threshold)
    cv = _cross_validate(detector, rows)
    seconds["fits"] = time.perf_counter() - t

    # Controls: copies of the test images recoded in memory, scored by the main model.
    t = time.perf_counter()
    reals_control = controls(root)
    for codec in reals_control.values():
        _score_copies(rows, main, test, (0,), _codec_label(codec), recoded(codec),
                      threshold, per_source, "controls")
    _score_copies(rows, main, test, (1,), _codec_label(FAKE_CONTROL),
                  recoded(FAKE_CONTROL), threshold, per_source, "controls")
    for factor in FRAMINGS:
        _score_copies(rows, main, test, (0, 1), f"framed {factor:g}x", reframed(factor),
                      threshold, per_source, "framing")
    for entry in per_source.values():
        for c in [*entry.get("controls", {}).values(), *entry.get("framing", {}).values()]:
            c["delta"] = c["rate"] - entry["recall" if entry["role"] == "fake" else "fpr"]
    seconds["controls"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start
    seconds["cpu_total"] = time.process_time() - cpu_start  # all threads of this process
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ffeat": ffeat.__version__,
        "detector": {k: _jsonable(v) for k, v in detector.get_params().items()},
        "params": {k: _jsonable(v) for k, v in (params or {}).items()},
        "reading": {**{k: _jsonable(v) for k, v in reading_params(detector).items()
                       if k != "reading"}, **dataclasses.asdict(detector.reading)},
        "threshold": threshold, "train_sources": list(mix), "seed": SEED, "folds": FOLDS,
        "n_per_half": n, "faces_root": str(root or _data.faces_root()),
        "split": {name: dict(zip(("train", "test"), map(len, _corpus.split(name, root, n))))
                  for name in _corpus.NAMES},
        "n_training_rows": int((rows.ok & (rows.half == "train")
                                & np.isin(rows.source, mix)).sum()),
        "controls": {"reals": {k: list(v) for k, v in reals_control.items()},
                     "fakes": list(FAKE_CONTROL)},
        "sources": per_source, "overall": overall, "split_140k": split_140k,
        "cv_140k": cv, "seconds": seconds}
    result["targets"] = targets(result)
    return result


def _summary(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Count, accuracy at ``threshold`` and ROC AUC of labelled log-odds."""
    return {"n": int(len(y)),
            "accuracy": float(accuracy_score(y, sigmoid(scores) >= threshold)),
            "auc": float(roc_auc_score(y, scores))}


def _per_source(rows: _Rows, scores: np.ndarray, tested: np.ndarray, mix, threshold: float
                ) -> dict:
    """Each source's test count, errors, recall or FPR, and AUC under the main model: a
    fake source against the pooled test reals, a real source against the pooled fakes."""
    reals, fakes = scores[tested & (rows.label == 0)], scores[tested & (rows.label == 1)]
    out = {}
    for name in _corpus.NAMES:
        s = scores[tested & (rows.source == name)]
        fake = name in _corpus.FAKE
        own = (rows.source == name) & (rows.kind == "original")
        out[name] = {"role": "fake" if fake else "real", "in_mix": name in mix,
                     "n_train": int((own & (rows.half == "train") & rows.ok).sum())
                     if name in mix else 0,
                     "n_test": int(len(s)),
                     "n_errors": int((own & (rows.half == "test") & ~rows.ok).sum()),
                     "recall" if fake else "fpr": _rate(s, threshold),
                     "auc": _auc(s, reals) if fake else _auc(fakes, s)}
    return out


def _score_copies(rows: _Rows, model, test: _corpus.Sample, classes: tuple[int, ...],
                  label: str, make, threshold: float, per_source: dict, key: str) -> None:
    """Score copies of the test images of ``classes`` made by ``make(path, name)`` (a
    deferred ``Perturbed``) and record each source's rate as ``per_source[s][key][label]``."""
    chosen = [(p, s) for p, s, y in zip(test.paths, test.sources, test.labels)
              if y in classes]
    items = [Item(make(str(p), f"{p} [{label}]"), f"{p} [{label}]") for p, _ in chosen]
    _log(f"{key} {label}: {len(items)} test images")
    X = rows.compute(items)
    ok = ~np.isnan(X).any(axis=1)
    scores = np.full(len(X), np.nan)
    if ok.any():
        scores[ok] = model.decision_function(X[ok])
    sources = np.array([s for _, s in chosen])
    for name in np.unique(sources):
        s = scores[(sources == name) & ok]
        per_source[name].setdefault(key, {})[label] = {"rate": _rate(s, threshold),
                                                       "n": int(len(s))}


def recoded(codec: tuple[int, int]):
    """``make(path, name)``: a deferred copy of ``path`` resized to the side and
    re-encoded at the JPEG quality of ``codec`` (the codec controls)."""
    side, quality = codec
    return lambda path, name: _Recoded(path, Perturbation("jpeg", quality), side=side,
                                       name=name)


def reframed(factor: float):
    """``make(path, name)``: a deferred copy of ``path`` framed ``factor`` times tighter
    (the framing control)."""
    return lambda path, name: Perturbed(path, Perturbation("reframe", factor), name=name)


#: The controls every held-out image is copied under by the model card
#: (``train_default.py``) and the experts protocol (``experts.py``): framed 0.5x and 1.5x
#: (``FRAMINGS``), and recoded like the ``140k`` faces (``FAKE_CONTROL``, 256 px q75).
COPIES = {**{f"framed {f:g}x": reframed(f) for f in FRAMINGS},
          "as 256 px q75": recoded(FAKE_CONTROL)}


def _cross_validate(detector: ffeat.Detector, rows: _Rows) -> dict:
    """``140k`` stratified 5-fold AUC and accuracy: images ordered real then fake, each
    sorted by path (the folds of ``accuracy.py``); a fold trains on its images' rows and
    their augmented copies and is scored on its test images' rows."""
    where = np.flatnonzero(rows.ok & (rows.kind == "original")
                           & np.isin(rows.source, CV_SOURCES))
    where = where[np.lexsort((rows.image[where], rows.label[where]))]
    y = rows.label[where]
    copies = np.flatnonzero(rows.ok & (rows.kind == "augment"))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    scores = np.empty(len(where))
    for train, test in folds.split(where, y):
        fit_rows = np.r_[where[train],
                         copies[np.isin(rows.image[copies], rows.image[where[train]])]]
        model = _fit(detector, rows, fit_rows)
        scores[test] = model.decision_function(rows.X[where[test]])
    return _summary(y, scores, detector.threshold)


def figures(result: dict) -> dict[str, float | None]:
    """The figures the issue's targets name (``None`` where the run has none): SD 2.1
    recall, worst real FPR, 140k 5-fold AUC and accuracy, worst StyleGAN recall left out
    of training, the worst control shift (a real source's FPR rising, a fake
    source's recall falling) and the worst framing shift (either way)."""
    src = result["sources"]
    shifts = [c["delta"] if e["role"] == "real" else -c["delta"]
              for e in src.values() for c in e.get("controls", {}).values()]
    framing = [abs(c["delta"]) for e in src.values() for c in e.get("framing", {}).values()]
    loso = [e["loso"]["recall"] for n, e in src.items()
            if n.startswith("stylegan") and e.get("loso")]
    return {"sd21 recall": src["sd21"]["recall"],
            "worst real FPR": max(e["fpr"] for e in src.values() if e["role"] == "real"),
            "140k 5-fold AUC": result["cv_140k"]["auc"],
            "140k 5-fold accuracy": result["cv_140k"]["accuracy"],
            "worst StyleGAN LOSO recall": min(loso) if loso else None,
            "worst control shift": max(shifts) if shifts else None,
            "worst framing shift": max(framing) if framing else None}


def targets(result: dict) -> list[dict]:
    """The issue's targets with this run's figure and whether it is met (``None`` when
    the run has no such figure)."""
    values = figures(result)
    out = []
    for name, op, goal in TARGETS:
        v = values[name]
        met = None if v is None or v != v else (v >= goal if op == ">=" else v <= goal)
        out.append({"target": name, "goal": f"{op} {goal}", "value": v, "met": met})
    return out


# --- output -------------------------------------------------------------------------------


def _f(v) -> str:
    return "-" if v is None or v != v else f"{v:.3f}"


def markdown(result: dict) -> str:
    """The per-source table and the summary lines."""
    labels = list(dict.fromkeys((key, c) for key in ("controls", "framing")
                                for e in result["sources"].values() for c in e.get(key, {})))
    changed = ", ".join(f"{k}={v}" for k, v in result["params"].items()) or "defaults"
    lines = [f"Detector({changed}) trained on the training halves of "
             f"{', '.join(result['train_sources'])} ({result['n_training_rows']} rows); "
             f"test halves below (seed {result['seed']}); threshold {result['threshold']:g}",
             "", "| source | role | in mix | n test | recall / FPR | AUC | LOSO recall | "
             "LOSO AUC | " + " | ".join(f"as {c}" if key == "controls" else c
                                          for key, c in labels) + " |",
             "|---" * (8 + len(labels)) + "|"]
    for name, e in result["sources"].items():
        rate = e["recall"] if e["role"] == "fake" else e["fpr"]
        loso = e.get("loso") or {}
        ctrl = [e.get(key, {}).get(c) for key, c in labels]
        cells = ["" if c is None else f"{_f(c['rate'])} ({c['delta']:+.3f})" for c in ctrl]
        lines.append(f"| {name} | {e['role']} | {'yes' if e['in_mix'] else 'no'} | "
                     f"{e['n_test']} | {_f(rate)} | {_f(e['auc'])} | "
                     f"{_f(loso.get('recall'))} | {_f(loso.get('auc'))} | "
                     + " | ".join(cells) + " |")
    o, s, cv = result["overall"], result["split_140k"], result["cv_140k"]
    sec = result["seconds"]
    lines += ["", f"All {o['n']} test images: accuracy {o['accuracy']:.3f}, "
              f"AUC {o['auc']:.3f}; "
              f"140k test halves: AUC {s['auc']:.3f}, accuracy {s['accuracy']:.3f}; "
              f"140k 5-fold ({cv['n']} images): AUC {cv['auc']:.3f}, "
              f"accuracy {cv['accuracy']:.3f}",
              f"Time: {sec['total']:.0f} s (features {sec['features']:.0f}, fits "
              f"{sec['fits']:.0f}, controls {sec['controls']:.0f}); "
              f"CPU {sec['cpu_total']:.0f} s",
              ""]
    for t in result["targets"]:
        verdict = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        lines.append(f"- {t['target']} {t['goal']}: {_f(t['value'])} ({verdict})")
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    """Per-source bars: fakes' recall (main, LOSO, control) with the 0.95 target, reals'
    FPR (main and each control) with the 0.02 target."""
    from matplotlib.figure import Figure

    src = result["sources"]
    fakes = [n for n, e in src.items() if e["role"] == "fake"]
    reals = [n for n, e in src.items() if e["role"] == "real"]
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[len(fakes), len(reals)])
    for ax, names, key, goal, title in ((ax1, fakes, "recall", 0.95, "fake sources: recall"),
                                        (ax2, reals, "fpr", 0.02, "real sources: FPR")):
        series = {"main": [src[n][key] for n in names]}
        if key == "recall":
            series["left out (LOSO)"] = [(src[n].get("loso") or {}).get("recall", np.nan)
                                         for n in names]
        copies = [{**{f"as {c}": v for c, v in src[n].get("controls", {}).items()},
                   **src[n].get("framing", {})} for n in names]
        for c in dict.fromkeys(c for e in copies for c in e):
            series[c] = [e.get(c, {}).get("rate", np.nan) for e in copies]
        width = 0.8 / len(series)
        x = np.arange(len(names))
        for i, (label, values) in enumerate(series.items()):
            ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label)
        ax.axhline(goal, color="k", lw=0.8, ls="--", label=f"target {goal:g}")
        ax.set_xticks(x, names)
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=120, metadata={"Software": None})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a Detector parameter (repeat), e.g. --param augment=jpeg,resize")
    p.add_argument("--train-sources", default=",".join(_corpus.NAMES), metavar="A,B,C",
                   help=f"the training mix (default all: {','.join(_corpus.NAMES)})")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_N} images per source half (a smoke test)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--plot", metavar="FILE", help="also plot the rates (needs matplotlib)")
    args = p.parse_args(argv)
    try:
        params = parse_params(args.param)
        make_detector(params)
        mix = _corpus.parse_names(args.train_sources)
    except (TypeError, ValueError) as exc:
        p.error(str(exc))
    absent = _corpus.missing()
    if absent:
        some = len(absent) < len(_corpus.SOURCES)
        print(f"sources.py: {'some of ' if some else ''}the real face sets are not at "
              f"{_data.faces_root()} (missing {', '.join(absent)}); set FFEAT_FACES to the "
              "folder that holds them", file=sys.stderr)
        return 2 if some else 0
    with _data.one_blas_thread():
        result = measure(params, mix, QUICK_N if args.quick else None)
    _data.write_results(result, markdown(result), args.json, args.plot, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
