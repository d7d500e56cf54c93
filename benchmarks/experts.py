"""The experts protocol of issue 31: one binary boundary against one expert per
generator family, on every source of ``shared/faces``.

Sources: every class folder of every set (``_corpus.SOURCES``), each with its
family (``gan``, ``diffusion`` or ``real``) and its *pipeline* (the set whose files
it shares a size and codec with; reals of a matched pair carry their fakes'
pipeline, the other reals are the common real pool). Each source is cut into
seed-0 halves (``_corpus.halves``: sorted paths, shuffled, first half trains).

Every image's feature row is computed once (the default features, read with
``Reading(faces="align", frame=256)``, one job, no augmented copies) and kept as
one ``.npz`` per source in a folder (``--rows``, default ``$FFEAT_EXPERTS_ROWS`` or
``~/.cache/ffeat-benchmarks/experts-rows``: outside the repository, they are rows of
licensed images); a later run reads them back. The fits, all with the shipped detector's classifier (``StackedLogistic``,
``C=0.1``, one block per family):

- ``binary``: one boundary over the training halves of every source;
- ``140k-only``: the same on ``140k``'s training halves alone;
- ``experts``: a GAN expert (the four StyleGAN sources) and a diffusion expert
  (SD 2.1), each on its fakes against every training real (the matched reals and
  the common pool), calibrated on its out-of-fold log-odds
  (``ffeat.models._experts_fit.Experts``), combined by each rule of
  ``ffeat.models._experts.RULES``;
- few-shot: each family's expert dropped and added back from 50, 100 or 200 of its
  training images (seeds 0, 1, 2) against every training real
  (``fit_expert``, as ``ffeat.add_expert`` does), the other expert untouched.

Thresholds are tuned on the training halves only: per model, the log-odds that
calls ``FPR_TARGET`` (2%) of the pooled training reals fake, on their out-of-fold
scores; the 3-way label's calibration and band are fitted on the same out-of-fold
scores. The test halves are only scored: per source, recall (fakes) or FPR (reals)
at that threshold, the share called "fake" by the 3-way label, AUC against the
pooled test reals (fakes); ``140k`` AUC; attribution accuracy (the expert with the
highest probability names a test fake's family); few-shot recall and real FPR; and
the controls: every test image copied under each of ``sources.COPIES`` (framed 0.5x
and 1.5x, recoded as 256 px q75; rows cached beside the others as
``SOURCE.CONTROL.npz``), each copy scored by every model at its threshold, the rate
beside the source's own. The rule with the best mean fake recall is reported as
chosen.

Usage: ``python benchmarks/experts.py [--rows DIR] [--json FILE] [--markdown FILE]
[--quick N] [--rows-only]``; results are saved before and after the few-shot runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

try:
    from . import _corpus, _data, render_docs, sources
except ImportError:  # run as a script: this folder is on sys.path
    import _corpus
    import _data
    import render_docs
    import sources

import ffeat  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from ffeat.models._calibration import Calibration, _auto_band, _fit_map  # noqa: E402
from ffeat.models._experts import RULES, ExpertSet  # noqa: E402
from ffeat.models._experts_fit import Experts, combiner, fit_expert  # noqa: E402
from ffeat.models._models import sigmoid  # noqa: E402
from ffeat.features import column_names, resolve_features  # noqa: E402
from ffeat.reading._rows import feature_rows  # noqa: E402
from ffeat.reading._sources import Item  # noqa: E402

#: The reading every row is computed with (the detector's, aligned faces).
READING = ffeat.Reading(faces="align", frame=256)
#: Default folder of the rows (outside the repository: rows of licensed images).
ROWS = Path(os.environ.get("FFEAT_EXPERTS_ROWS", "~/.cache/ffeat-benchmarks/experts-rows")
            ).expanduser()
#: Share of the pooled training reals each rule's threshold calls fake.
FPR_TARGET = 0.02
#: Images of a left-out family its new expert is fitted on, and the seeds of their draw.
FEW_SHOT = [50, 100, 200]
FEW_SHOT_SEEDS = (0, 1, 2)
#: Images per call of the reading engine (bounds memory, shows progress).
CHUNK = 128


#: Every source of ``shared/faces`` (``_corpus.SOURCES``: fakes first, then the matched
#: reals, then the pool).
SOURCES = _corpus.SOURCES


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- rows ---------------------------------------------------------------------------------


class Rows(NamedTuple):
    """Every image's feature row with its source, half and path (NaN rows: unreadable
    or no face found)."""

    X: np.ndarray
    source: np.ndarray
    half: np.ndarray
    path: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return ~np.isnan(self.X).any(axis=1)

    @property
    def label(self) -> np.ndarray:
        return (self.family != "real").astype(np.int8)

    @property
    def family(self) -> np.ndarray:
        return np.array([_corpus.family_of(s) for s in self.source])


def _cached_rows(saved: Path, items: list[Item], jobs: int) -> np.ndarray:
    """The rows of ``items``: read from ``saved`` when it holds them (the same names, in
    the same order), else computed in chunks and saved there."""
    names = [item.name for item in items]
    if saved.exists():
        with np.load(saved) as z:
            if list(z["path"]) == names:
                return z["X"]
    families = resolve_features(ffeat.DEFAULT_FEATURES)
    t = time.perf_counter()
    X = np.empty((0, len(column_names(families))), np.float32)
    for start in range(0, len(items), CHUNK):
        rows, _ = feature_rows(items[start:start + CHUNK], families, READING, jobs=jobs,
                               cache=False)
        X = np.concatenate([X, rows.astype(np.float32)])
        _log(f"  {saved.stem}: {len(X)}/{len(items)}")
    saved.parent.mkdir(parents=True, exist_ok=True)
    tmp = saved.with_suffix(".tmp.npz")
    np.savez(tmp, X=X, path=np.array(names))
    tmp.replace(saved)
    _log(f"{saved.stem}: {len(items)} images in {time.perf_counter() - t:.0f} s")
    return X


def compute_rows(root: Path, folder: Path, jobs: int = 1) -> Rows:
    """The rows of every source's images: read from ``folder/SOURCE.npz`` when it holds
    them (the same files, in the same order), else computed and saved there."""
    parts = {k: [] for k in ("X", "source", "half", "path")}
    for source in SOURCES:
        train, test = _corpus.halves(_corpus.source_files(source.name, root))
        paths = [str(p) for p in train + test]
        parts["X"].append(_cached_rows(folder / f"{source.name}.npz",
                                       [Item(p, p) for p in paths], jobs))
        parts["source"] += [source.name] * len(paths)
        parts["half"] += ["train"] * len(train) + ["test"] * len(test)
        parts["path"] += paths
    return Rows(np.concatenate(parts["X"]), np.array(parts["source"]),
                np.array(parts["half"]), np.array(parts["path"]))


def compute_copies(rows: Rows, folder: Path, jobs: int = 1) -> dict[str, np.ndarray]:
    """Per control of ``sources.COPIES``, the rows of the copies of every test image, in
    the order of the test rows of ``rows`` (NaN: no face found), cached in ``folder`` as
    ``SOURCE.CONTROL.npz``."""
    out = {}
    for label, make in sources.COPIES.items():
        slug = label.replace(" ", "-")
        parts = []
        for source in SOURCES:
            paths = rows.path[(rows.half == "test") & (rows.source == source.name)]
            items = [Item(make(p, f"{p} [{label}]"), f"{p} [{label}]") for p in paths]
            parts.append(_cached_rows(folder / f"{source.name}.{slug}.npz", items, jobs))
        out[label] = np.concatenate(parts)
    return out


def _first(rows: Rows, n: int) -> Rows:
    """The first ``n`` rows of every source half (a quick run)."""
    keep = np.zeros(len(rows.X), bool)
    for name in np.unique(rows.source):
        for half in ("train", "test"):
            keep[np.flatnonzero((rows.source == name) & (rows.half == half))[:n]] = True
    return Rows(*(a[keep] for a in rows))


# --- the protocol -------------------------------------------------------------------------


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    if not len(pos) or not len(neg):
        return float("nan")
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


class Scores(NamedTuple):
    """One model's log-odds: out-of-fold on the training rows, plain on the test rows
    and, per control, on the copies of every test image (NaN: no face found)."""

    oof: np.ndarray
    test: np.ndarray
    copies: dict[str, np.ndarray]


def _on_copies(score, copies: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``score(X)`` of each control's copy rows (one value or one row of values per
    copy), NaN where a copy has no row."""
    out = {}
    for label, X in copies.items():
        ok = ~np.isnan(X).any(axis=1)
        values = score(X[ok])
        out[label] = np.full((len(X), *values.shape[1:]), np.nan)
        out[label][ok] = values
    return out


def evaluate(scores: Scores, y_train: np.ndarray, y_test: np.ndarray,
             source_test: np.ndarray, source_copies: np.ndarray) -> dict:
    """A model's figures on the test halves, and on the copies of every test image
    (``source_copies``: their sources) under each control: the rate at the threshold
    and its shift from the source's own (``worst_control_shift``: the largest).

    The threshold is the log-odds that calls ``FPR_TARGET`` of the pooled training
    reals fake (their out-of-fold scores); the 3-way label is the detector's: a
    sigmoid calibration and an automatic band (``ffeat.models._calibration``) fitted on
    the same out-of-fold scores, "fake" at and above 0.5 outside the band.
    """
    threshold = float(np.quantile(scores.oof[y_train == 0], 1 - FPR_TARGET))
    x, _ = _fit_map("sigmoid", scores.oof, y_train)
    calibration = Calibration("sigmoid", x, np.empty(0), np.array([0.5, 0.5]))
    band = _auto_band(calibration.probability(scores.oof), y_train, 0.5)
    p = calibration.probability(scores.test)
    fake = (p >= 0.5) & ~((p >= band[0]) & (p < band[1]))
    unsure = (p >= band[0]) & (p < band[1])
    reals, fakes = scores.test[y_test == 0], scores.test[y_test == 1]
    out = {"threshold_log_odds": threshold, "band": band.tolist(), "sources": {}}
    for source in SOURCES:
        m = source_test == source.name
        s = scores.test[m]
        role = "real" if source.family == "real" else "fake"
        rate = float(np.mean(s >= threshold))
        controls = {}
        for label, z in scores.copies.items():
            z = z[(source_copies == source.name) & ~np.isnan(z)]
            copied = float(np.mean(z >= threshold))
            controls[label] = {"n": int(len(z)), "at_threshold": copied, "delta": copied - rate}
        out["sources"][source.name] = {
            "role": role, "n_test": int(m.sum()), "at_threshold": rate,
            "called_fake": float(np.mean(fake[m])), "inconclusive": float(np.mean(unsure[m])),
            "auc": _auc(s, reals) if role == "fake" else _auc(fakes, s), "controls": controls}
    out["worst_control_shift"] = max((abs(c["delta"]) for e in out["sources"].values()
                                      for c in e["controls"].values()), default=None)
    m140 = np.isin(source_test, ["ffhq", "stylegan1"])
    out["auc_140k"] = _auc(scores.test[m140 & (y_test == 1)], scores.test[m140 & (y_test == 0)])
    m140_unsure = unsure[m140]
    out["inconclusive_140k"] = float(np.mean(m140_unsure))
    out["auc_all"] = _auc(fakes, reals)
    return out


def _rule_scores(experts: Experts, rule: str, Z_oof: np.ndarray, P_test: np.ndarray,
                 P_copies: dict[str, np.ndarray], y_train: np.ndarray) -> Scores:
    """The scores of the fitted experts combined by ``rule``, from their out-of-fold
    log-odds and their probabilities on the test rows and on each control's copies."""
    weights, bias = combiner(Z_oof, y_train) if rule == "combiner" else (None, 0.0)
    combined = ExpertSet(experts.experts_.experts, rule, weights, bias)
    return Scores(combined.combine(sigmoid(Z_oof)), combined.combine(P_test),
                  {label: combined.combine(P) for label, P in P_copies.items()})


def few_shot(rows: Rows, experts: Experts, base, train: np.ndarray, test: np.ndarray,
             rule: str) -> list[dict]:
    """Each fake family left out of the experts and added back as a new expert from
    ``n`` of its training images (``FEW_SHOT`` sizes, ``FEW_SHOT_SEEDS``) against every
    training real; its test recall at the threshold that calls ``FPR_TARGET`` of the
    training reals fake (out-of-fold), and the test reals' FPR there."""
    y, family = rows.label, rows.family
    names = experts.experts_.names
    Z_real = experts.oof_expert_log_odds_[y[train] == 0]
    real_rows = np.flatnonzero(train & (y == 0))
    out = []
    for left in names:
        keep = [j for j, n in enumerate(names) if n != left]
        kept = [experts.experts_.experts[j] for j in keep]
        pool = np.flatnonzero(train & (family == left))
        for n in FEW_SHOT:
            for seed in FEW_SHOT_SEEDS:
                chosen = np.random.default_rng(seed).choice(pool, min(n, len(pool)),
                                                            replace=False)
                fit = np.r_[chosen, real_rows]
                expert, oof = fit_expert(base, rows.X[fit], y[fit], None, left,
                                         f"{n} images")
                added = ExpertSet(kept, rule).with_expert(expert)
                z_new = expert.platt[0] * oof[len(chosen):] + expert.platt[1]
                oof_real = added.combine(sigmoid(np.column_stack([Z_real[:, keep], z_new])))
                threshold = float(np.quantile(oof_real, 1 - FPR_TARGET))
                s = added.decision_function(rows.X[test])
                fam_test = family[test]
                entry = {"family": left, "n": int(len(chosen)), "seed": seed,
                         "recall": float(np.mean(s[fam_test == left] >= threshold)),
                         "real_fpr": float(np.mean(s[fam_test == "real"] >= threshold)),
                         "sources": {src.name: float(np.mean(
                             s[rows.source[test] == src.name] >= threshold))
                             for src in SOURCES if src.family == left}}
                out.append(entry)
                _log(f"few-shot {left} n={n} seed={seed}: recall {entry['recall']:.3f}, "
                     f"real FPR {entry['real_fpr']:.3f}")
    return out


def measure(rows: Rows, copies: dict[str, np.ndarray], save=None) -> dict:
    """Fit every model on the training halves and score the test halves and their
    ``copies`` (:func:`compute_copies`; see the module docstring); ``save(result)``,
    when given, is called with the result before the few-shot runs (``few_shot``
    empty) and at the end."""
    from sklearn.base import clone

    t_start = time.perf_counter()
    ok = rows.ok
    train, test = ok & (rows.half == "train"), ok & (rows.half == "test")
    y, family, source = rows.label, rows.family, rows.source
    base = ffeat.Detector(augment=None)._estimator()  # the shipped classifier, unfitted
    seconds, results = {}, {}

    def timed(name, fn):
        t = time.perf_counter()
        value = fn()
        seconds[name] = time.perf_counter() - t
        _log(f"{name}: {seconds[name]:.0f} s")
        return value

    y_train, y_test, src_test = y[train], y[test], source[test]
    src_copies = source[rows.half == "test"]
    binary = timed("binary", lambda: clone(base).fit(rows.X[train], y_train,
                                                     groups=np.arange(train.sum())))
    results["binary"] = evaluate(Scores(binary.oof_log_odds_,
                                        binary.decision_function(rows.X[test]),
                                        _on_copies(binary.decision_function, copies)),
                                 y_train, y_test, src_test, src_copies)
    del binary
    m140 = train & np.isin(source, ["ffhq", "stylegan1"])
    only = timed("140k-only", lambda: clone(base).fit(rows.X[m140], y[m140],
                                                      groups=np.arange(m140.sum())))
    t140 = test & np.isin(source, ["ffhq", "stylegan1"])
    s140 = only.decision_function(rows.X[t140])
    results["140k-only"] = {"auc_140k": _auc(s140[y[t140] == 1], s140[y[t140] == 0])}
    del only
    experts = timed("experts", lambda: Experts(base, "max").fit(
        rows.X[train], y_train, generator=family[train]))
    for i, e in enumerate(experts.experts_.experts):
        sources = ",".join(s.name for s in SOURCES if s.family == e.name)
        experts.experts_.experts = (*experts.experts_.experts[:i], e._replace(sources=sources),
                                    *experts.experts_.experts[i + 1:])
    P_test = experts.experts_.expert_probabilities(rows.X[test])
    P_copies = _on_copies(experts.experts_.expert_probabilities, copies)  # once for all rules
    for rule in RULES:
        results[f"experts/{rule}"] = evaluate(
            _rule_scores(experts, rule, experts.oof_expert_log_odds_, P_test, P_copies,
                         y_train), y_train, y_test, src_test, src_copies)
    names = np.array(experts.experts_.names)
    guess = names[P_test.argmax(axis=1)]
    fakes = y_test == 1
    attribution = {"accuracy": float(np.mean(guess[fakes] == family[test][fakes])),
                   "sources": {s.name: float(np.mean(guess[src_test == s.name] == s.family))
                               for s in SOURCES if s.family != "real"}}
    chosen = max(RULES, key=lambda r: _fake_mean(results[f"experts/{r}"]))
    shots: list[dict] = []
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ffeat": ffeat.__version__, "reading": dataclasses.asdict(READING),
        "features": list(ffeat.DEFAULT_FEATURES), "classifier": "stacked (C=0.1)",
        "augment": None, "seed": _corpus.SEED, "fpr_target": FPR_TARGET,
        "thresholds_tuned_on": "out-of-fold scores of the pooled training-half reals "
                               "(every real source's training half)",
        "sources": {s.name: {"folder": s.folder, "family": s.family, "pipeline": s.pipeline,
                             "n_train": int((train & (source == s.name)).sum()),
                             "n_test": int((test & (source == s.name)).sum()),
                             "n_unread": int((~ok & (source == s.name)).sum())}
                    for s in SOURCES},
        "experts": [{"name": e.name, "sources": e.sources, "platt": e.platt.tolist()}
                    for e in experts.experts_.experts],
        "chosen_rule": chosen, "models": results, "attribution": attribution,
        "few_shot_seeds": list(FEW_SHOT_SEEDS), "few_shot": shots,
        "few_shot_summary": _few_shot_summary(shots),
        "seconds": seconds}
    if save is not None:
        save(result)
    shots += timed("few-shot", lambda: few_shot(rows, experts, base, train, test, chosen))
    result["few_shot_summary"] = _few_shot_summary(shots)
    seconds["total"] = time.perf_counter() - t_start
    if save is not None:
        save(result)
    return result


def _fake_mean(result: dict) -> float:
    """Mean recall at the threshold over the fake sources (the rule's criterion)."""
    return float(np.mean([e["at_threshold"] for e in result["sources"].values()
                          if e["role"] == "fake"]))


def _few_shot_summary(shots: list[dict]) -> list[dict]:
    """Mean and minimum recall and mean real FPR over the seeds, per family and size."""
    out = []
    for key in dict.fromkeys((s["family"], s["n"]) for s in shots):
        runs = [s for s in shots if (s["family"], s["n"]) == key]
        out.append({"family": key[0], "n": key[1],
                    "recall_mean": float(np.mean([r["recall"] for r in runs])),
                    "recall_min": float(np.min([r["recall"] for r in runs])),
                    "real_fpr_mean": float(np.mean([r["real_fpr"] for r in runs]))})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=Path, default=ROWS, help=f"rows folder (default {ROWS})")
    p.add_argument("--rows-only", action="store_true", help="compute the rows and stop")
    p.add_argument("--quick", type=int, metavar="N",
                   help="at most N images per source half, one few-shot size (a smoke test)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the tables as markdown")
    args = p.parse_args(argv)
    root = _data.faces_root()
    absent = [s.folder for s in SOURCES if not (root / s.folder).is_dir()]
    if absent:
        print(f"experts.py: the face sets are not at {root} (missing {', '.join(absent)}); "
              "set FFEAT_FACES to the folder that holds them", file=sys.stderr)
        return 2
    with _data.one_blas_thread():
        rows = compute_rows(root, args.rows)
    if args.rows_only:
        return 0
    if args.quick:
        rows = _first(rows, args.quick)
        FEW_SHOT[:] = [min(FEW_SHOT[0], args.quick)]
    with _data.one_blas_thread():
        copies = compute_copies(rows, args.rows)

    def save(result: dict) -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        if args.markdown:
            Path(args.markdown).write_text(render_docs.experts(result) + "\n")

    with _data.one_blas_thread():
        result = measure(rows, copies, save)
    print(render_docs.experts(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
