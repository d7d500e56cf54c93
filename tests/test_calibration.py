"""Calibration, the inconclusive band, per-family log-odds and the calibration metrics."""
import io
import json

import numpy as np
import pytest

import ffeat
from ffeat import Detector, ModelFileError
from ffeat.models import _calibration, _persist, _stacking
from ffeat.models._predictions import prediction_rows
from ffeat.models._scoring import SavedDetector, Scored, family_names, score_items
from ffeat.reading._sources import Item
from ffeat.models._stacking import StackedLogistic
from ffeat.cli import main
from ffeat._base import image_items
from ffeat.evaluation import Evaluation, calibration_metrics, conclusive_metrics
from conftest import WHOLE, resealed, saved_bytes

N, SIZE = 10, 48
pytestmark = pytest.mark.usefixtures("one_openmp_thread")


def _fit(demo, **kw):
    return Detector(features="spectrum", cache=False, jobs=1, **kw, reading=WHOLE).fit(*demo)


@pytest.fixture(scope="module")
def fitted(demo, one_openmp_thread):
    return {kind: _fit(demo, calibration=kind) for kind in ("sigmoid", "isotonic")}


@pytest.mark.parametrize("kind", ["sigmoid", "isotonic"])
def test_calibration_is_saved_and_scores_alike_everywhere(fitted, demo, kind):
    det = fitted[kind]
    images = demo[0]
    assert det.calibration_.kind == kind
    z = det.decision_function(images)
    p = det.predict_proba(images)[:, 1]
    np.testing.assert_allclose(p, det.calibration_.probability(z))
    np.testing.assert_allclose(det.pipeline_.predict_proba(images)[:, 1], p)
    loaded = Detector.load(io.BytesIO(saved_bytes(det)))
    np.testing.assert_array_equal(loaded.predict_proba(images)[:, 1], p)
    saved = _persist.load(SavedDetector, io.BytesIO(saved_bytes(det)))
    items = image_items(images)
    rows = list(prediction_rows(score_items(saved, items), 0.5, detector=saved))
    np.testing.assert_allclose([r["prob_fake"] for r in rows], p)
    assert [r["label"] for r in rows] == list(det.label(images))


def test_sigmoid_calibration_changes_the_probability(demo):
    raw = _fit(demo, calibration=None, band=None)
    calibrated = _fit(demo, calibration="sigmoid", band=None)
    assert raw.calibration_ is None
    z = raw.decision_function(demo[0])
    np.testing.assert_allclose(raw.predict_proba(demo[0])[:, 1], 1 / (1 + np.exp(-z)))
    a, b = calibrated.calibration_.x
    assert a > 0 and not np.allclose([a, b], [1, 0])


def test_out_of_fold_scores_keep_an_image_and_its_copies_in_one_fold():
    y = np.tile([0, 1] * 5, 2)  # 10 images, then one augmented copy of each
    groups = np.tile(np.arange(10), 2)
    folds = _calibration._folds(y, groups, 0)
    assert len(folds) == 5
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])


def _stack_rows(n=120, seed=0):
    """Three blocks of rows: informative, noise, weak."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = np.hstack([rng.normal(size=(n, 3)) + 0.8 * y[:, None], rng.normal(size=(n, 20)),
                   rng.normal(size=(n, 2)) + 0.4 * y[:, None]])
    return X, y, (3, 20, 2)


def test_stacked_out_of_fold_scores_calibrate_as_refitting_the_stack_did():
    """The stack's own out-of-fold log-odds replace five refits of it: the same kind of
    held-out score, giving nearly the same calibration."""
    X, y, blocks = _stack_rows()
    stack = StackedLogistic(blocks=blocks).fit(X, y)
    groups = np.arange(len(y))
    z = _calibration._out_of_fold(stack, X, y, groups, 0)
    assert z is stack.oof_log_odds_
    refitted = _calibration._refitted_out_of_fold(stack, X, y, groups, 0)
    assert np.corrcoef(z, refitted)[0, 1] > 0.95
    scores = stack.decision_function(X)
    for kind, tolerance in (("sigmoid", 0.06), ("isotonic", 0.1)):
        new, old = (_calibration.Calibration(kind, *_calibration._fit_map(kind, v, y), None)
                    for v in (z, refitted))
        gap = np.abs(new.probability(scores) - old.probability(scores))
        assert (gap.max() if kind == "sigmoid" else gap.mean()) < tolerance, kind


@pytest.mark.parametrize("classifier, refits", [("stacked", 0), ("logistic", 5)])
def test_only_a_classifier_without_its_own_out_of_fold_scores_is_refitted(
        demo, monkeypatch, classifier, refits):
    calls = []
    refit = _calibration._refitted_out_of_fold

    def counted(estimator, X, y, groups, random_state):
        calls.append(1)
        return refit(estimator, X, y, groups, random_state)

    monkeypatch.setattr(_calibration, "_refitted_out_of_fold", counted)
    det = _fit(demo, classifier=classifier, calibration="sigmoid", band="auto")
    assert len(calls) == (refits > 0) and det.calibration_.kind == "sigmoid"
    assert det.calibration_.scores_.shape == (det.training_["n_rows"],)  # copies included


def test_stacked_folds_keep_an_image_and_its_augmented_copies_together(demo, monkeypatch):
    seen = []
    grouped = _stacking.grouped_folds

    def spy(y, groups, n_folds, random_state):
        folds = grouped(y, groups, n_folds, random_state)
        seen.append((groups, folds))
        return folds

    monkeypatch.setattr(_stacking, "grouped_folds", spy)
    _fit(demo, augment="flip", calibration="sigmoid")
    (groups, folds), = seen  # one split, shared by the blocks, combiner and calibration
    assert len(groups) == 2 * 2 * N and len(set(groups)) == 2 * N
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])


def test_auto_band_covers_where_the_held_out_error_is_high():
    p = np.linspace(0, 1, 201)
    y = (np.random.default_rng(0).random(201) < p).astype(int)  # calibrated by design
    lo, hi = _calibration._auto_band(p, y, 0.5)
    assert 0.02 < lo < 0.5 < hi < 0.98
    clean = _calibration._auto_band(p, (p >= 0.5).astype(int), 0.5)  # no errors at all
    assert clean[0] == clean[1] == 0.5


def test_label_three_answers_and_band_by_hand(demo):
    images = demo[0]
    everything = _fit(demo, calibration=None, band=(0.0, 1.0))
    assert set(everything.label(images)) == {"inconclusive"}
    forced = _fit(demo, band=None)
    assert forced.band_ == (0.5, 0.5)
    expected = np.where(forced.predict(images) == 1, "fake", "real")
    assert list(forced.label(images)) == list(expected)
    with pytest.warns(UserWarning, match="no label"):
        assert forced.label([b"not an image"])[0] is None
    with pytest.raises(ValueError, match="band must be"):
        _fit(demo, band=(0.8, 0.2))


@pytest.mark.parametrize("classifier", ["stacked", "logistic"])
def test_family_log_odds_add_up_to_the_score(demo, classifier):
    det = Detector(features=("spectrum", "gray"), classifier=classifier, cache=False,
                   jobs=1, calibration=None, band=None, reading=WHOLE).fit(*demo)
    items = image_items(demo[0][:4] + [b"broken"])
    records = score_items(det, items, explain=True)
    assert family_names(det) == ["spectrum", "gray"]
    total = [det.model_.intercept + r.families.sum() for r in records[:4]]
    np.testing.assert_allclose(total, [r.log_odds for r in records[:4]])
    assert records[4].families is None and records[4].error is not None


def test_family_log_odds_refused_for_boosting(demo):
    det = Detector(features="spectrum", classifier="hgb", max_iter=5, cache=False, jobs=1,
                   calibration=None, reading=WHOLE).fit(*demo)
    with pytest.raises(ValueError, match="not for a hgb model"):
        score_items(det, image_items(demo[0][:2]), explain=True)


@pytest.mark.parametrize("change, reason", [
    (lambda a: {**a, "calibration/x": np.array([np.nan, 0.0])}, "NaN"),
    (lambda a: {**a, "calibration/x": np.array([1.0, 2.0, 3.0])}, "sigmoid"),
    (lambda a: {**a, "calibration/band": np.array([0.9, 0.1])}, "band"),
    (lambda a: {k: v for k, v in a.items() if k != "calibration/band"}, "missing"),
    (lambda a: {k: v for k, v in a.items() if not k.startswith("calibration/")},
     "no calibration arrays"),
])
def test_hostile_sigmoid_calibration_is_refused(fitted, change, reason):
    with pytest.raises(ModelFileError, match=reason):
        Detector.load(resealed(saved_bytes(fitted["sigmoid"]), arrays=change))


@pytest.mark.parametrize("change, reason", [
    (lambda a: {**a, "calibration/y": a["calibration/y"][::-1].copy()}, "monotone"),
    (lambda a: {**a, "calibration/y": a["calibration/y"] + 2}, "monotone"),
    (lambda a: {**a, "calibration/y": a["calibration/y"][:1]}, "breakpoints"),
    (lambda a: {**a, "calibration/x": np.zeros(_calibration.MAX_POINTS + 1),
                "calibration/y": np.zeros(_calibration.MAX_POINTS + 1)}, "breakpoints"),
])
def test_hostile_isotonic_calibration_is_refused(fitted, change, reason):
    data = saved_bytes(fitted["isotonic"])
    if len(np.load(io.BytesIO(data))["calibration/y"]) < 3 and reason == "monotone":
        pytest.skip("a flat map cannot be reversed")
    with pytest.raises(ModelFileError, match=reason):
        Detector.load(resealed(data, arrays=change))


def test_model_file_from_before_calibration_scores_as_before(fitted, demo):
    det = fitted["sigmoid"]

    def old_meta(meta):
        for k in ("calibration", "band"):
            meta["params"].pop(k)
        return meta

    old = resealed(saved_bytes(det), meta=old_meta, arrays=lambda a: {
        k: v for k, v in a.items() if not k.startswith("calibration/")})
    loaded = Detector.load(old)
    assert loaded.calibration_ is None and loaded.calibration is None
    z = det.decision_function(demo[0])
    np.testing.assert_allclose(loaded.predict_proba(demo[0])[:, 1], 1 / (1 + np.exp(-z)))
    assert set(loaded.label(demo[0])) <= {"fake", "real"}


def test_an_evaluation_of_scores_is_calibrated_and_banded_as_its_detector(demo, monkeypatch):
    det = _fit(demo, calibration="sigmoid", band=(0.3, 0.7))
    images, y = demo
    z = det.decision_function(images)
    names = [f"i{k}" for k in range(len(y))]
    records = [Scored(Item(im, name), float(s), None) for im, name, s in zip(images, names, z)]
    ev = Evaluation.of_records(det, records, y, 0.5, data_sources=["a"] * len(y))
    np.testing.assert_allclose(ev.proba, det.calibration_.probability(z))
    assert ev.band == (0.3, 0.7) and ev.sources == names and ev.data_sources == ["a"] * len(y)
    inside = (ev.proba >= 0.3) & (ev.proba < 0.7)
    assert ev.metrics["n_inconclusive"] == inside.sum()
    built = []  # evaluate and robustness build theirs this one way
    of_records = Evaluation.of_records.__func__
    monkeypatch.setattr(Evaluation, "of_records", classmethod(
        lambda cls, detector, *a, **kw: built.append(detector) or of_records(cls, detector, *a,
                                                                             **kw)))
    rows = ffeat.robustness(det, images, ["flip"], y)
    assert built == [det, det] and rows[0]["accuracy"] == ev.metrics["accuracy"]


def test_calibration_metrics_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.05, 0.15, 0.85, 0.95])
    m = calibration_metrics(y, p)
    assert m["brier"] == pytest.approx((0.05**2 + 0.15**2) * 2 / 4)
    assert m["ece"] == pytest.approx(0.1)  # every bin is 0.05 or 0.15 off
    assert calibration_metrics(np.array([1, 1]), np.array([1.0, 1.0]))["ece"] == 0
    c = conclusive_metrics(y, np.array([0.05, 0.6, 0.4, 0.95]), 0.5, (0.3, 0.7))
    assert c == {"coverage": 0.5, "n_inconclusive": 2, "conclusive_accuracy": 1.0}
    e = Evaluation(["a", "b", "c", "d"], y, np.array([0.05, 0.6, 0.4, 0.95]), 0.5, [],
                   band=(0.3, 0.7))
    assert e.metrics["accuracy"] == 0.5 and e.metrics["coverage"] == 0.5
    assert e.to_dict()["band"] == [0.3, 0.7]


def test_cli_predict_explain_and_evaluate_calibration(fitted, demo_dir, tmp_path, capsys):
    model = tmp_path / "m.model"
    fitted["sigmoid"].save(model)
    assert main(["predict", "--model", str(model), str(demo_dir), "--explain", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(",")[-3:] == ["log_odds_spectrum", "error", "path_escaped"]
    assert len(lines) == 2 * N + 1
    assert main(["predict", "--model", str(model), str(demo_dir), "--explain", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert set(rows[0]["families"]) == {"spectrum"}
    assert {r["label"] for r in rows} <= {"fake", "real", "inconclusive"}
    assert main(["evaluate", "--model", str(model), str(demo_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["ece"] <= 1 and 0 <= out["brier"] <= 1 and 0 <= out["coverage"] <= 1
    assert out["band"] is None or len(out["band"]) == 2
    assert main(["evaluate", "--model", str(model), str(demo_dir)]) == 0
    assert "calibration error" in capsys.readouterr().out


def test_reliability_diagram_is_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    from ffeat.evaluation import reliability
    from ffeat.report import _plots

    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.05, 0.3, 0.35, 0.9, 1.0])
    points = reliability(y, p)
    assert [(b["lo"], b["n"], b["fake_share"]) for b in points] == [
        (0.0, 1, 0.0), (0.3, 2, 0.5), (0.9, 2, 1.0)]
    _plots.reliability(y, p, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
