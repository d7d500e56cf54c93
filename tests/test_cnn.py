"""Tests of the optional CNN detector (``CnnDetector``) and ``ffeat compare``, on tiny
demo data (12 per class, 64 px, resized to 32 px, two epochs). Tests that train need
PyTorch and skip without it; the missing-PyTorch messages are tested either way."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

import ffeat
from ffeat import CnnDetector, Detector, ModelFileError
from ffeat.cli import main
from conftest import WHOLE

N, SIZE = 12, 64
CNN = {"epochs": 2, "input_size": 32, "batch_size": 8, "jobs": 2}
INSTALL = 'pip install "ffeat[cnn]"'


pytestmark = pytest.mark.usefixtures("one_openmp_thread")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def cnn(torch, demo):
    images, labels = demo
    return CnnDetector(**CNN).fit(images, labels)


@pytest.fixture(scope="module")
def cnn_file(cnn, tmp_path_factory):
    path = tmp_path_factory.mktemp("cnn") / "cnn.model"
    cnn.save(path)
    return path


@pytest.fixture
def no_torch(monkeypatch):
    """``import torch`` fails as it does where PyTorch is not installed."""
    monkeypatch.setitem(sys.modules, "torch", None)


# ------------------------------------------------------------------ training and scoring

def test_fit_records_counts_and_history(cnn):
    t = cnn.training_
    assert (t["n_real"], t["n_fake"], t["n_errors"]) == (N, N, 0)
    assert t["n_rows"] + t["n_validation"] == 2 * N and t["n_validation"] >= 2
    assert 1 <= t["epochs_run"] <= 2 and 1 <= t["best_epoch"] <= t["epochs_run"]
    assert [h["epoch"] for h in t["history"]] == list(range(1, t["epochs_run"] + 1))
    assert set(t["history"][0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                                    "lr"}
    assert cnn.errors_ == [] and not hasattr(cnn, "feature_names_")


def test_probabilities_are_seeded_and_in_range(cnn, demo):
    images, labels = demo
    p = cnn.predict_proba(images)
    assert p.shape == (2 * N, 2) and np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1)
    again = CnnDetector(**CNN).fit(images, labels)
    np.testing.assert_array_equal(again.predict_proba(images), p)
    assert set(cnn.predict(images)) <= {0, 1}


def test_files_and_arrays_give_the_same_scores(cnn, demo_dir):
    paths = sorted(str(p) for p in demo_dir.rglob("*.png"))
    from PIL import Image
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    np.testing.assert_array_equal(cnn.decision_function(paths), cnn.decision_function(arrays))


def test_unreadable_images_give_nan_and_minus_one(cnn, demo, tmp_path, bad_files):
    images, _ = demo
    bad = bad_files(tmp_path / "bad")
    mixed = [images[0], *bad, images[-1]]
    with pytest.warns(UserWarning, match="4 of 6 images could not be read"):
        p = cnn.predict_proba(mixed)[:, 1]
    assert np.isnan(p[1:5]).all() and np.isfinite(p[[0, -1]]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cnn.predict(mixed)[1:5].tolist() == [-1] * 4
        np.testing.assert_array_equal(p[[0, -1]], cnn.predict_proba(images[:1] + images[-1:])[:, 1])
    scores, errors = cnn.score_images(mixed)
    assert [e.source for e in errors] == bad


def test_fit_leaves_out_unreadable_training_images(torch, demo_dir, tmp_path, bad_files):
    bad_files(tmp_path / "data" / "fake")
    (tmp_path / "data" / "real").mkdir()
    for p in demo_dir.rglob("*.png"):
        target = tmp_path / "data" / p.parent.name / p.name
        target.write_bytes(p.read_bytes())
    with pytest.warns(UserWarning, match="4 of 28 images could not be read"):
        det = CnnDetector(**{**CNN, "epochs": 1}).fit(tmp_path / "data")
    assert len(det.errors_) == 4
    assert (det.training_["n_real"], det.training_["n_fake"]) == (N, N)


def test_augmentation_flips_shifts_and_perturbs_in_memory(torch):
    from ffeat.models import _cnn
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    before = batch.copy()
    out = _cnn._augment(batch, ("jpeg", "blur"), np.random.default_rng(1))
    assert out.shape == batch.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(batch, before)
    assert not np.array_equal(out, batch)
    np.testing.assert_array_equal(out, _cnn._augment(batch, ("jpeg", "blur"),
                                                     np.random.default_rng(1)))


def test_robustness_perturbs_the_cnn_inputs(cnn, demo):
    images, labels = demo
    rows = ffeat.robustness(cnn, images, ["flip", "jpeg=50"], labels)
    assert [r["label"] for r in rows] == ["clean", "flip", "jpeg=50"]
    assert all(r["n_scored"] == 2 * N for r in rows)


def test_bad_cnn_parameters_are_refused(demo):  # checked before PyTorch is needed
    with pytest.raises(ValueError, match=r"'input_size' parameter .* range \[32, inf\)"):
        CnnDetector(**{**CNN, "input_size": 16}).fit(*demo)
    with pytest.raises(ValueError, match=r"'epochs' parameter .* range \[1, inf\)"):
        CnnDetector(**{**CNN, "epochs": 0}).fit(*demo)


def test_clone_keeps_the_cnn_parameters(cnn):
    copy = clone(cnn)
    assert copy.get_params() == cnn.get_params()
    assert (copy.epochs, copy.input_size, copy.batch_size, copy.patience) == (2, 32, 8, 5)
    assert not hasattr(copy, "model_")


# ------------------------------------------------------------------ model files

@pytest.mark.parametrize("load", [CnnDetector.load, ffeat.load_detector])
def test_save_load_round_trip_gives_identical_probabilities(cnn, cnn_file, demo, load):
    images, _ = demo
    loaded = load(cnn_file)
    assert type(loaded) is CnnDetector
    np.testing.assert_array_equal(loaded.predict_proba(images), cnn.predict_proba(images))
    assert loaded.training_ == cnn.training_
    assert {**loaded.get_params(), "jobs": 2} == cnn.get_params()


def test_a_cnn_file_of_the_previous_layout_loads(cnn, cnn_file, tmp_path, demo):
    # Before CnnDetector, a CNN file held every Detector parameter and the features.
    from ffeat.models import _npz, _persist
    meta, arrays, _, _ = _persist._read(Path(cnn_file), Path(cnn_file))
    meta["params"] |= {"C": 0.1, "max_iter": 300, "learning_rate": 0.1}
    meta["features"] = [{"family": "spectrum"}]
    meta["feature_names"] = []
    text = json.dumps(meta)
    arrays = {f"model/{k}": v for k, v in arrays.items()}
    old = tmp_path / "old.model"
    _npz.write_npz(old, {"meta": np.array(text), **arrays,
                         "checksum": np.array(_persist._checksum(text, arrays))})
    loaded = ffeat.load_detector(old)
    assert type(loaded) is CnnDetector and loaded.epochs == 2
    np.testing.assert_array_equal(loaded.decision_function(demo[0][:3]),
                                  cnn.decision_function(demo[0][:3]))


def test_model_file_holds_arrays_and_json_only(cnn_file):
    with np.load(cnn_file, allow_pickle=False) as z:
        names = z.files
        config = json.loads(str(z["model/config"]))
        assert all(z[n].dtype != object for n in names)
    assert config["input_size"] == 32 and config["channels"] == [16, 32, 64, 128, 256]
    assert "model/weights/0.weight" in names and "model/weights/1.running_mean" in names


def test_a_cnn_file_with_wrong_weights_is_refused(cnn_file, tmp_path):
    from ffeat.models import _persist
    meta, arrays, kind, cls = _persist._read(Path(cnn_file), Path(cnn_file))
    arrays["weights/0.weight"] = arrays["weights/0.weight"][:8]
    with pytest.raises(ModelFileError, match="do not fit its configuration"):
        _persist._build(cls, meta, arrays, kind, cnn_file)


# ------------------------------------------------------------------ without PyTorch

def test_import_ffeat_does_not_import_torch():
    code = ("import sys, ffeat; ffeat.Detector().get_params(); "
            "ffeat.CnnDetector().get_params(); "
            "assert 'torch' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_torch_says_what_to_install(no_torch, demo, demo_dir, tmp_path, capsys):
    with pytest.raises(ImportError, match=r'pip install "ffeat\[cnn\]"'):
        CnnDetector(**CNN).fit(*demo)
    with pytest.raises(ImportError, match=r'pip install "ffeat\[cnn\]"'):
        ffeat.compare(demo_dir)
    assert main(["train", str(demo_dir), "-o", str(tmp_path / "m.model"), "--classifier",
                 "cnn", "-q"]) == 1
    assert INSTALL in capsys.readouterr().err
    assert main(["compare", str(demo_dir), "--faces", "off", "-q"]) == 1
    assert INSTALL in capsys.readouterr().err
    assert not (tmp_path / "m.model").exists()


def test_loading_a_cnn_file_without_torch_is_a_model_file_error(cnn_file, monkeypatch,
                                                                 capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ModelFileError, match=r'cnn model cannot be loaded.*ffeat\[cnn\]'):
        CnnDetector.load(cnn_file)
    with pytest.raises(ModelFileError, match=r'cnn model cannot be loaded.*ffeat\[cnn\]'):
        ffeat.load_detector(cnn_file)
    assert main(["predict", "--model", str(cnn_file), "x.png"]) == 2
    assert INSTALL in capsys.readouterr().err


# ------------------------------------------------------------------ command line

def test_train_predict_and_curves(torch, demo_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    model = tmp_path / "cnn.model"
    assert main(["train", str(demo_dir), "-o", str(model), "--classifier", "cnn",
                 "--epochs", "1", "--input-size", "32", "--batch-size", "8", "-j", "2"]) == 0
    err = capsys.readouterr().err
    assert "with pixels resized to 32 px" in err and "curves.png" in err
    assert (tmp_path / "cnn.model.curves.png").stat().st_size > 1000
    assert main(["predict", "--model", str(model), str(demo_dir), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 * N and all(0 <= r["prob_fake"] <= 1 for r in rows)
    # evaluate and the sharded predict load the file as a CnnDetector (load_detector)
    assert main(["evaluate", "--model", str(model), str(demo_dir), "--json", "-j", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["n_real"], result["n_fake"], result["errors"]) == (N, N, [])
    out = tmp_path / "p.csv"
    assert main(["predict", "--model", str(model), str(demo_dir), "-o", str(out), "-q"]) == 0
    assert len(out.read_text().splitlines()) == 2 * N + 1


def test_compare_prints_one_table(torch, demo_dir, tmp_path, capsys):
    other = tmp_path / "other"
    ffeat.write_demo_set(other, n_per_class=6, size=SIZE, seed=1)
    assert main(["compare", str(demo_dir), "--test", str(other), "--classifiers", "logistic",
                 "cnn", "--faces", "off", "--epochs", "1", "--input-size", "32", "-j", "2",
                 "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("stratified 80/20 split (seed 0): 19 train, 5 held out")
    assert "cross-dataset test" in lines[0]
    for column in ("held-out ROC AUC", "other ROC AUC", "train s", "predict img/s",
                   "model size"):
        assert column in lines[1]
    assert lines[3].startswith(f"logistic ({'+'.join(ffeat.DEFAULT_FEATURES)})")
    assert lines[4].startswith("cnn (32 px)") and lines[4].endswith("MB")
    assert len(lines) == 5


def test_compare_library_and_formats(torch, demo_dir):
    result = ffeat.compare(demo_dir, classifiers=["cnn"], test_size=0.25, epochs=1,
                           input_size=32, jobs=2)
    (row,) = result.rows
    assert row["test_roc_auc"] is None and row["model_bytes"] > 100_000
    assert row["epochs_run"] == 1 and row["train_s"] > 0 and row["images_per_s"] > 0
    assert result.detectors[0].training_["n_rows"] + \
        result.detectors[0].training_["n_validation"] == 18
    table = result.format_table(markdown=True).splitlines()
    assert table[1].startswith("| detector |") and table[3].startswith("| cnn (32 px) |")
    assert json.loads(json.dumps(result.to_dict()))["rows"][0]["classifier"] == "cnn"


def test_compare_usage_errors(demo_dir, capsys):
    assert main(["compare", str(demo_dir), "--faces", "off", "--test-size", "1.5"]) == 2
    assert main(["compare", str(demo_dir), "--faces", "off",
                 "--classifiers", "logistic", "--curves",
                 "c.png"]) == 2
    assert "add cnn" in capsys.readouterr().err


def test_curves_and_report_refuse_the_other_kind(cnn, demo, tmp_path):
    pytest.importorskip("matplotlib")
    images, labels = demo
    assert ffeat.write_training_curves(cnn, tmp_path / "c.png").stat().st_size > 1000
    features = Detector(cache=False, reading=WHOLE).fit(images, labels)
    with pytest.raises(ValueError, match="no training history"):
        ffeat.write_training_curves(features, tmp_path / "f.png")
    with pytest.raises(ValueError, match="cnn model has no features"):
        ffeat.write_report(cnn, images, tmp_path / "r", labels=labels)
