"""Tests of ``ffeat train``, ``predict``, ``evaluate`` and ``demo``, run in-process through
``ffeat.cli.main`` on the embedded demo data written as PNG files (20 per class, 64 px)."""
from __future__ import annotations

import csv
import io
import json
import shutil
from functools import partial

import numpy as np
import pytest

import ffeat
from ffeat.cli import demo as demo_cli, main
from conftest import WHOLE, counts

N, SIZE = 20, 64
EVALUATE_KEYS = {"accuracy", "precision", "recall", "f1", "roc_auc", "average_precision",
                 "eer", "confusion_matrix", "n_real", "n_fake", "threshold", "errors"}


pytestmark = pytest.mark.usefixtures("one_openmp_thread")


@pytest.fixture(scope="module")
def model(demo_dir, tmp_path_factory):
    """A model trained by the command (no cache), shared by the tests that only read it."""
    path = tmp_path_factory.mktemp("model") / "m.model"
    assert main(["train", str(demo_dir), "--faces", "off",
                 "-o", str(path), "--no-cache", "-q", "-j", "2"]) == 0
    return path


@pytest.fixture
def mixed(demo_dir, tmp_path, bad_files):
    """A folder of 3 good images and 4 unreadable files; returns (folder, good, bad)."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    good = []
    for src in (demo_dir / "real" / "0000.png", demo_dir / "real" / "0001.png",
                demo_dir / "fake" / f"{N:04d}.png"):
        good.append(str(shutil.copy(src, folder / f"good_{src.name}")))
    return folder, good, bad_files(folder / "bad")


def _predict(model, *args, capsys):
    status = main(["predict", *map(str, args), "--model", str(model), "--no-cache", "-q"])
    out, err = capsys.readouterr()
    return status, out, err


# ------------------------------------------------------------------ train

def test_train_writes_a_model_that_loads(demo_dir, tmp_path, capsys):
    out = tmp_path / "det.model"
    assert main(["train", str(demo_dir), "--faces", "off",
                 "-o", str(out), "--no-cache", "-j", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"on 40 images ({N} real, {N} fake)" in captured.err
    assert f"wrote {out}" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.model"]
    det = ffeat.Detector.load(out)
    assert det.classifier == "stacked" and counts(det.training_) == {"n_real": N, "n_fake": N,
                                                               "n_errors": 0}
    # The same files in the same order: the stack's folds depend on the row order.
    lib = ffeat.Detector(cache=False, reading=WHOLE).fit(ffeat.load_dataset(demo_dir))
    images, _ = ffeat.make_demo_set(n_per_class=N, size=SIZE)
    np.testing.assert_allclose(det.predict_proba(images), lib.predict_proba(images),
                               rtol=1e-9, atol=1e-12)


def test_train_options_reach_the_model(demo_dir, tmp_path, capsys):
    out = tmp_path / "hgb.model"
    assert main(["train", str(demo_dir), "--faces", "off", "-o", str(out), "--classifier", "hgb",
                 "--features", "spectrum", "gray", "--no-cache", "-q"]) == 0
    assert capsys.readouterr().err == ""  # --quiet
    det = ffeat.Detector.load(out)
    assert det.classifier == "hgb"
    assert [f.name for f in det.features] == ["spectrum", "gray"]


@pytest.mark.parametrize("calibration, band, kind, expected", [
    ("sigmoid", "0.3,0.7", "sigmoid", (0.3, 0.7)),
    ("isotonic", "none", "isotonic", (0.5, 0.5)),
    ("none", "0.2,0.6", None, (0.2, 0.6)),
])
def test_train_calibration_and_band_reach_the_model(demo_dir, tmp_path, calibration, band,
                                                    kind, expected):
    out = tmp_path / "m.model"
    assert main(["train", str(demo_dir), "--faces", "off", "-o", str(out), "--features", "spectrum",
                 "--calibration", calibration, "--band", band, "--no-cache", "-q"]) == 0
    det = ffeat.Detector.load(out)
    assert (det.calibration, det.calibration_.kind) == (kind, kind)
    assert det.band_ == pytest.approx(expected)


@pytest.mark.parametrize("command", ["train", "compare"])
def test_train_and_compare_align_faces_unless_told_or_training_the_cnn(command):
    from ffeat.cli import _parser
    from ffeat.cli._common import reading_of

    def reading(*argv, whole=False):
        output = ["-o", "m.model"] if command == "train" else []
        args = _parser(command).parse_args([command, "data", *output, *argv])
        return reading_of(args, whole=whole)

    assert reading() == ffeat.Detector().reading == ffeat.Reading(faces="align", frame=256)
    assert reading(whole=True).faces == "off"  # the CNN reads whole images
    assert reading("--faces", "crop", whole=True).faces == "crop"  # refused by the CNN
    assert reading("--faces", "off", "--frame", "128") == ffeat.Reading(frame=128)


def test_train_defaults_are_the_shipped_frame_and_augmentation(demo_dir, tmp_path):
    """Without --frame and --augment a feature detector is framed at 256 px and trained
    on each image, its recoded copy and its reframed copy, as ``Detector()``; ``none``
    turns both off."""
    out = tmp_path / "m.model"
    assert main(["train", str(demo_dir), "--faces", "off", "-o", str(out), "--features", "spectrum",
                 "--no-cache", "-q"]) == 0
    det = ffeat.Detector.load(out)
    n = det.training_["n_real"] + det.training_["n_fake"]
    assert (det.reading.frame, det.augment) == (256, "recode,reframe") == (
        ffeat.Detector().reading.frame, ffeat.Detector().augment)
    assert det.training_["n_rows"] + det.training_["n_augment_errors"] == 3 * n
    assert main(["train", str(demo_dir), "--faces", "off", "-o", str(out), "--features", "spectrum",
                 "--frame", "none", "--augment", "none", "--no-cache", "-q"]) == 0
    det = ffeat.Detector.load(out)
    assert (det.reading.frame, det.augment, det.training_["n_rows"]) == (None, None, n)


def test_train_band_auto_and_no_calibration(demo_dir, tmp_path):
    out = tmp_path / "m.model"
    assert main(["train", str(demo_dir), "--faces", "off", "-o", str(out), "--features", "spectrum",
                 "--calibration", "none", "--band", "none", "--no-cache", "-q"]) == 0
    assert ffeat.Detector.load(out).calibration_ is None
    assert main(["train", str(demo_dir), "--faces", "off", "-o", str(out), "--features", "spectrum",
                 "--calibration", "sigmoid", "--band", "auto", "--no-cache", "-q"]) == 0
    det = ffeat.Detector.load(out)
    assert det.band == "auto" and det.calibration_.kind == "sigmoid"
    lib = ffeat.Detector("spectrum", cache=False, calibration="sigmoid", band="auto",
                         reading=WHOLE).fit(ffeat.load_dataset(demo_dir))
    assert det.band_ == lib.band_


def test_train_lists_unreadable_images_and_leaves_them_out(demo_dir, tmp_path, capsys,
                                                           bad_files):
    data = shutil.copytree(demo_dir, tmp_path / "data")
    bad = bad_files(data / "real" / "broken")
    out = tmp_path / "m.model"
    assert main(["train", str(data), "--faces", "off", "-o", str(out), "--no-cache"]) == 0
    err = capsys.readouterr().err
    for path in bad:
        assert f"skipped {path}: " in err
    assert "(4 unreadable, left out)" in err
    assert ffeat.Detector.load(out).training_["n_errors"] == 4


def test_train_with_other_class_names(demo_dir, tmp_path, capsys):
    data = tmp_path / "dsta"
    shutil.copytree(demo_dir / "real", data / "ffhq")
    shutil.copytree(demo_dir / "fake", data / "stylegan2")
    out = tmp_path / "m.model"
    assert main(["train", str(data), "--faces", "off", "-o", str(out), "--no-cache", "-q"]) == 2
    assert "--classes" in capsys.readouterr().err
    assert not out.exists()
    assert main(["train", str(data), "--faces", "off", "-o", str(out), "--no-cache", "-q",
                 "--classes", "ffhq=real", "stylegan2=fake"]) == 0
    assert counts(ffeat.Detector.load(out).training_) == {"n_real": N, "n_fake": N, "n_errors": 0}
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), str(data), "--json", "--no-cache", "-q",
                 "--classes", "ffhq=real", "stylegan2=fake"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["n_real"], result["n_fake"]) == (N, N)


def test_train_on_a_manifest(demo_dir, tmp_path, capsys):
    data = shutil.copytree(demo_dir, tmp_path / "data")
    rows = [f"{p.stem},{p.parent.name}" for p in sorted(data.rglob("*.png"))]
    (data / "data.csv").write_text("images_id,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "m.model"
    assert main(["train", str(data / "data.csv"), "--faces", "off",
                 "-o", str(out), "--no-cache", "-q"]) == 0
    assert counts(ffeat.Detector.load(out).training_) == {"n_real": N, "n_fake": N, "n_errors": 0}


def test_train_uses_the_feature_cache_unless_told_not_to(demo_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FFEAT_CACHE_DIR", str(cache))
    assert main(["train", str(demo_dir), "--faces", "off", "-o", str(tmp_path / "a.model"), "-q",
                 "--no-cache"]) == 0
    assert not cache.exists()
    assert main(["train", str(demo_dir), "--faces", "off",
                 "-o", str(tmp_path / "b.model"), "-q"]) == 0
    assert len(list(cache.rglob("*.row"))) == 2 * N


@pytest.mark.parametrize("case", ["output_folder", "no_data", "bad_classes", "bad_features",
                                  "one_class"])
def test_train_usage_errors_exit_2(demo_dir, tmp_path, capsys, case):
    out = tmp_path / "m.model"
    argv = ["train", str(demo_dir), "--faces", "off", "-o", str(out), "--no-cache", "-q"]
    expected = {"output_folder": "does not exist", "no_data": "no such folder",
                "bad_classes": "NAME=real or NAME=fake", "bad_features": "'colour'",
                "one_class": "no fake images"}[case]
    if case == "output_folder":
        argv[argv.index("-o") + 1] = str(tmp_path / "nope" / "m.model")
    elif case == "no_data":
        argv[1] = str(tmp_path / "absent")
    elif case == "bad_classes":
        argv += ["--classes", "real:real"]
    elif case == "bad_features":
        argv += ["--features", "colour"]
    else:
        argv[1] = str(demo_dir / "real")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ffeat: error: ") and expected in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv,expected", [
    (["--classifier", "svm"], "invalid choice: 'svm'"),
    (["--jobs", "many"], "invalid int value"),
    (["--calibration", "platt"], "give sigmoid, isotonic or none; got 'platt'"),
    (["--band", "0.8,0.2"], "LO,HI with 0 <= LO <= HI <= 1"),
    (["--band", "0.2"], "give none, auto or LO,HI"),
    (["--band", "nan,0.5"], "give none, auto or LO,HI"),
    (["--augment", "nope"], "unknown augmentation 'nope'"),
    (["--augment", "jpeg,jpeg"], "each augmentation may appear once"),
])
def test_train_argument_errors_exit_2(demo_dir, tmp_path, capsys, argv, expected):
    with pytest.raises(SystemExit) as info:
        main(["train", str(demo_dir), "--faces", "off", "-o", str(tmp_path / "m.model"), *argv])
    assert info.value.code == 2
    assert expected in capsys.readouterr().err


# ------------------------------------------------------------------ predict

def _check_rows(rows, model, good, bad):
    """Rows in order (good files first, then bad); probabilities and labels (fake, real,
    or inconclusive inside the model's band) as the library gives."""
    assert [r["path"] for r in rows] == good + bad
    detector = ffeat.Detector.load(model)
    expected = detector.predict_proba(good)[:, 1]
    for row, p, label in zip(rows[:len(good)], expected, detector.label(good)):
        assert row["error"] in (None, "")
        assert float(row["prob_fake"]) == pytest.approx(p, abs=5e-5)
        assert row["label"] == label
    for row in rows[len(good):]:
        assert row["prob_fake"] in (None, "") and row["label"] in (None, "")
        assert row["error"]
    return expected


def test_predict_csv(model, mixed, capsys):
    folder, good, bad = mixed
    status, out, err = _predict(model, folder, "--format", "csv", capsys=capsys)
    assert status == 0 and err == ""
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["path", "prob_fake", "label", "x", "y", "w", "h", "faces", "quad",
                             "error", "path_escaped"]
    assert {r["faces"] for r in rows} == {""}  # no face policy: no boxes
    # Folder order: the bad/ subfolder's files after the top-level ones, sorted.
    _check_rows(rows, model, good, sorted(bad))
    reasons = {r["path"]: r["error"] for r in rows}
    assert "empty" in reasons[str(folder / "bad" / "empty.jpg")]
    assert "truncated" in reasons[str(folder / "bad" / "truncated.jpg")].lower()
    assert "too small" in reasons[str(folder / "bad" / "tiny.png")]


def test_predict_json(model, mixed, capsys):
    folder, good, bad = mixed
    status, out, _ = _predict(model, *good, *bad, "--format", "json", capsys=capsys)
    assert status == 0
    rows = json.loads(out)
    assert all(set(r) == {"path", "prob_fake", "label", "x", "y", "w", "h", "faces", "quad",
                           "error"}
               for r in rows)
    expected = _check_rows(rows, model, good, bad)  # named files keep their order
    assert [r["prob_fake"] for r in rows[:3]] == expected.tolist()  # exact in JSON


def test_predict_table(model, mixed, capsys):
    folder, good, bad = mixed
    status, out, _ = _predict(model, folder, capsys=capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["path", "prob_fake", "label", "x", "y", "w", "h", "faces",
                                "quad", "error"]
    assert len(lines) == 1 + len(good) + len(bad)
    body = {line.split()[0]: line for line in lines[1:]}
    assert sorted(body) == sorted(good + bad)
    for path in good:
        prob, label = body[path].split()[1:]
        assert 0 <= float(prob) <= 1 and label in ("real", "fake", "inconclusive")
    for path in bad:
        assert len(body[path].split()) > 1  # the reason, in the error column
    assert "empty" in body[str(folder / "bad" / "empty.jpg")]


def test_predict_threshold(model, mixed, capsys):
    """--threshold moves the forced call; the model's inconclusive band still applies."""
    folder, good, _ = mixed
    lo, hi = ffeat.Detector.load(model).band_
    for threshold, forced in (("0", "fake"), ("1", "real")):
        status, out, _ = _predict(model, *good, "--format", "json", "--threshold", threshold,
                                  capsys=capsys)
        rows = json.loads(out)
        assert status == 0 and all(0 < r["prob_fake"] < 1 for r in rows)
        assert [r["label"] for r in rows] == [
            "inconclusive" if lo <= r["prob_fake"] < hi else forced for r in rows]


def test_predict_nothing_readable_exits_1(model, tmp_path, capsys, bad_files):
    bad = bad_files(tmp_path / "bad")
    status, out, err = _predict(model, tmp_path / "bad", "--format", "csv", capsys=capsys)
    assert status == 1
    assert "none of the 4 inputs could be read" in err
    assert len(list(csv.DictReader(io.StringIO(out)))) == len(bad)  # still listed


@pytest.mark.parametrize("case", ["missing", "not_a_model", "threshold_high",
                                  "threshold_negative"])
def test_predict_usage_errors_exit_2(model, mixed, tmp_path, capsys, case):
    folder, good, _ = mixed
    model_arg, extra = str(model), []
    if case == "missing":
        model_arg = str(tmp_path / "absent.model")
    elif case == "not_a_model":
        model_arg = good[0]
    elif case == "threshold_high":
        extra = ["--threshold", "1.5"]
    else:
        extra = ["--threshold=-0.1"]
    status, out, err = _predict(model_arg, *good, *extra, capsys=capsys)
    assert status == 2 and out == ""
    assert err.startswith("ffeat: error: ")
    expected = {"missing": f"{model_arg}: no such model file",
                "not_a_model": f"{model_arg}: not an ffeat model",
                "threshold_high": "--threshold must lie in [0, 1], got 1.5",
                "threshold_negative": "--threshold must lie in [0, 1], got -0.1"}[case]
    assert expected in err


def test_predict_threshold_must_be_a_number(model, capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict", "--model", str(model), "x.png", "--threshold", "high"])
    assert info.value.code == 2
    assert "invalid float value: 'high'" in capsys.readouterr().err


# ------------------------------------------------------------------ evaluate

def test_evaluate_json(model, demo_dir, tmp_path, capsys, bad_files):
    data = shutil.copytree(demo_dir, tmp_path / "data")
    bad = bad_files(data / "fake" / "broken")
    assert main(["evaluate", "--model", str(model), str(data), "--json", "--no-cache"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)  # exactly one JSON document on stdout
    assert isinstance(result, dict) and EVALUATE_KEYS <= set(result)
    assert (result["n_real"], result["n_fake"]) == (N, N)
    assert result["threshold"] == 0.5
    assert sorted(e["path"] for e in result["errors"]) == sorted(bad)
    assert all(e["reason"] for e in result["errors"])
    (tn, fp), (fn, tp) = result["confusion_matrix"]
    assert tn + fp == N and fn + tp == N
    assert result["accuracy"] == pytest.approx((tn + tp) / (2 * N))
    assert result["accuracy"] >= 0.9 and result["roc_auc"] >= 0.9  # its training images
    assert 0 <= result["eer"] <= 0.5
    lib = ffeat.evaluate(ffeat.Detector.load(model).set_params(cache=False), data).to_dict()
    assert result == json.loads(json.dumps(lib))
    for path in bad:
        assert f"skipped {path}: " in err


def test_evaluate_text_and_threshold(model, demo_dir, capsys):
    assert main(["evaluate", "--model", str(model), str(demo_dir), "--no-cache", "-q",
                 "--threshold", "1"]) == 0
    out = capsys.readouterr().out
    for label in ("accuracy", "ROC AUC", "equal error rate", "called real", "called fake",
                  "true real", "true fake"):
        assert label in out
    assert f"{'threshold':<20}1\n" in out
    assert f"{N} real, {N} fake images scored; 0 could not be read" in out
    fake_row = next(line for line in out.splitlines() if line.startswith("true fake"))
    assert fake_row.split()[2:] == [str(N), "0"]  # nothing reaches probability 1


@pytest.mark.parametrize("case", ["missing_model", "damaged_model", "missing_data",
                                  "threshold"])
def test_evaluate_usage_errors_exit_2(model, demo_dir, tmp_path, capsys, case):
    model_arg, data, extra = str(model), str(demo_dir), []
    if case == "missing_model":
        model_arg = str(tmp_path / "absent.model")
    elif case == "damaged_model":
        raw = model.read_bytes()
        (tmp_path / "cut.model").write_bytes(raw[:len(raw) // 2])
        model_arg = str(tmp_path / "cut.model")
    elif case == "missing_data":
        data = str(tmp_path / "absent")
    else:
        extra = ["--threshold", "2"]
    assert main(["evaluate", data, "--model", model_arg, "--json", "--no-cache", "-q",
                 *extra]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("ffeat: error: ")
    expected = {"missing_model": "no such model file", "damaged_model": "truncated",
                "missing_data": "no such folder", "threshold": "--threshold"}[case]
    assert expected in err
    if case != "threshold":
        assert (model_arg if "model" in case else data) in err


# ------------------------------------------------------------------ demo

def test_demo_prints_every_feature_classifier(capsys, monkeypatch):
    # speed only: no calibration, which would refit boosting and logistic once per fold
    monkeypatch.setattr(demo_cli, "Detector", partial(ffeat.Detector, calibration=None,
                                                      band=None))
    assert main(["demo", "--n", "12", "-q", "-j", "2"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["classifier", "features", "ROC", "AUC"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert sorted(rows) == ["hgb", "logistic", "stacked"]
    for cells in rows.values():
        assert cells[1] == "+".join(ffeat.DEFAULT_FEATURES)
        auc, accuracy, eer = map(float, cells[2:5])
        assert 0 <= auc <= 1 and 0 <= accuracy <= 1 and 0 <= eer <= 1
    assert float(rows["logistic"][2]) >= 0.75  # the demo set is meant to be learnable


@pytest.mark.parametrize("argv, expected", [
    ([], {"reading": ffeat.Reading(frame=256)}),
    (["--frame", "none", "--augment", "none"], {"reading": ffeat.Reading(), "augment": None}),
    (["--augment", "jpeg,blur"], {"reading": ffeat.Reading(frame=256),
                                  "augment": ["jpeg", "blur"]}),
])
def test_compare_passes_frame_and_augment_as_train_does(demo_dir, monkeypatch, argv, expected):
    """Without --augment each detector keeps its own default (recode for the feature
    detectors, none for the CNN); --frame defaults to the Detector's frame."""
    from ffeat.cli import compare as compare_cli

    seen = {}

    def fake(data, test, **params):
        seen.update(params)
        raise ValueError("stop here")

    monkeypatch.setattr(compare_cli, "compare", fake)
    assert main(["compare", str(demo_dir), "--faces", "off", "-q", *argv]) == 1
    assert {k: seen[k] for k in ("reading", "augment") if k in seen} == expected
