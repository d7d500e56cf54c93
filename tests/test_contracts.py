"""The library's contracts: parameter and argument checks, scikit-learn's estimator API
over images, and what ``import ffeat`` loads."""
from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

import ffeat
from ffeat import CnnDetector, Detector, FeatureExtractor, ModelFileError
from ffeat.models import _persist
from ffeat.models._scoring import SavedDetector, score_items
from ffeat.reading._sources import expand_inputs
from ffeat.cli import main
from conftest import WHOLE

N, SIZE = 12, 64

pytestmark = pytest.mark.usefixtures("one_openmp_thread")


@pytest.fixture(scope="module")
def small(demo):
    """A logistic detector on the spectrum: the cheapest fitted detector."""
    images, labels = demo
    return Detector(features="spectrum", classifier="logistic", cache=False, jobs=1, reading=WHOLE
                    ).fit(images, labels)


# ------------------------------------------------------------------ estimator parameters

@pytest.mark.parametrize("param,value", [
    ("C", -1), ("C", 0), ("jobs", "x"), ("threshold", 5), ("threshold", -0.1),
    ("classifier", "svm"), ("max_iter", 0), ("learning_rate", 0), ("backend", "gpu"),
    ("cache", 3), ("augment", 3), ("random_state", -1)])
def test_invalid_parameters_are_named_before_any_image_is_read(param, value):
    # The dataset does not exist: reading anything first would raise another error.
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of Detector"):
        Detector(**{param: value}).fit("/nonexistent/dataset")


@pytest.mark.parametrize("param,value", [
    ("input_size", 16), ("epochs", 0), ("batch_size", 1), ("patience", 0), ("threshold", 5),
    ("jobs", "x"), ("augment", 3), ("random_state", -1), ("random_state", 1.5)])
def test_invalid_cnn_parameters_are_named_before_pytorch_or_any_image(param, value,
                                                                       monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as where PyTorch is not installed
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of CnnDetector"):
        CnnDetector(**{param: value}).fit("/nonexistent/dataset")


@pytest.mark.parametrize("param", ["epochs", "batch_size", "input_size", "patience"])
def test_the_detector_takes_no_cnn_parameter(param):
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{param}'"):
        Detector(**{param: 3})
    with pytest.raises(InvalidParameterError, match="'classifier' parameter of Detector"):
        Detector(classifier="cnn").fit("/nonexistent/dataset")


@pytest.mark.parametrize("param,value", [("jobs", 1.5), ("backend", "gpu"), ("cache", 3)])
def test_feature_extractor_parameters_are_checked_by_fit_and_transform(param, value, demo):
    extractor = FeatureExtractor(features="spectrum", **{param: value})
    match = f"'{param}' parameter of FeatureExtractor"
    with pytest.raises(InvalidParameterError, match=match):
        extractor.fit()
    with pytest.raises(InvalidParameterError, match=match):
        extractor.transform(demo[0][:1])


def test_a_threshold_set_after_fitting_is_refused_when_scoring(small, demo):
    bad = clone(small).set_params(threshold=2)
    bad.model_, bad.classes_ = small.model_, small.classes_
    with pytest.raises(InvalidParameterError, match="'threshold' parameter of Detector"):
        bad.predict(demo[0][:1])


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function",
                                    "score_images"])
def test_an_unfitted_detector_raises_not_fitted(method, demo):
    with pytest.raises(NotFittedError, match="Detector is not fitted yet"):
        getattr(Detector(), method)(demo[0][:1])


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function",
                                    "score_images"])
def test_an_unfitted_cnn_detector_raises_not_fitted(method, demo):
    with pytest.raises(NotFittedError, match="CnnDetector is not fitted yet.*CnnDetector.load"):
        getattr(CnnDetector(), method)(demo[0][:1])


@pytest.mark.parametrize("cls", [Detector, CnnDetector])
def test_save_of_an_unfitted_detector_raises_not_fitted(tmp_path, cls):
    with pytest.raises(NotFittedError):
        cls().save(tmp_path / "m.model")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ image arguments

_ONE_IMAGE = {
    "path": "x.jpg", "pathlib": Path("x.jpg"), "bytes": b"\xff\xd8\xff",
    "pil": Image.new("RGB", (64, 64)), "array": np.zeros((64, 64, 3), np.uint8),
}
_NOT_IMAGES = {"none": None, "int": 3, "float": 0.5}


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function",
                                    "score_images"])
@pytest.mark.parametrize("kind", [*_ONE_IMAGE, *_NOT_IMAGES])
def test_scoring_refuses_what_is_not_a_sequence_of_images(small, method, kind):
    value = {**_ONE_IMAGE, **_NOT_IMAGES}[kind]
    name = "images" if method == "score_images" else "X"
    hint = r"pass \[" if kind in _ONE_IMAGE else r"\(" + type(value).__name__
    with pytest.raises(TypeError, match=f"^{name} must be a sequence of images.*{hint}"):
        getattr(small, method)(value)


@pytest.mark.parametrize("kind", ["path", "array", "none"])
def test_transform_and_evaluate_refuse_a_single_image(kind, small):
    value = {**_ONE_IMAGE, **_NOT_IMAGES}[kind]
    with pytest.raises(TypeError, match="^X must be a sequence of images"):
        FeatureExtractor(features="spectrum").transform(value)
    if kind != "path":  # a path given to evaluate is a dataset
        with pytest.raises(TypeError, match="^data must be a sequence of images"):
            ffeat.evaluate(small, value, [0])


def test_fit_refuses_what_is_not_images(demo):
    with pytest.raises(TypeError, match="^X must be a sequence of images.*NoneType"):
        Detector(cache=False).fit(None, [0, 1])


def test_a_4d_batch_and_a_list_of_images_score_alike(small, demo):
    images = demo[0][:4]
    np.testing.assert_array_equal(small.decision_function(np.stack(images)),
                                  small.decision_function(images))


@pytest.mark.parametrize("call,error,match", [
    (lambda: ffeat.load_image("x.jpg", max_pixels=-1), ValueError,
     "max_pixels must be at least 1, got -1"),
    (lambda: ffeat.load_image("x.jpg", max_pixels="big"), TypeError,
     "max_pixels must be an integer, got 'big'"),
    (lambda: ffeat.load_image("x.jpg", min_size=None), TypeError,
     "min_size must be an integer, got None"),
    (lambda: ffeat.Reading(max_pixels=0), ValueError, "max_pixels must be at least 1"),
    (lambda: ffeat.extract([], reading=256), TypeError, "reading must be an ffeat.Reading"),
    (lambda: ffeat.extract([], jobs="x"), TypeError, "jobs must be an integer or None"),
    (lambda: ffeat.extract([], cache=5), TypeError, "cache must be True, False or a folder"),
])
def test_function_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("threshold,error", [(2, ValueError), (-0.5, ValueError),
                                             ("0.5", TypeError)])
def test_evaluate_threshold_must_be_a_probability(small, demo, threshold, error):
    with pytest.raises(error, match="threshold must be a probability in"):
        ffeat.evaluate(small, demo[0][:2], [0, 1], threshold=threshold)


def test_evaluate_needs_a_detector(demo):
    with pytest.raises(TypeError, match="detector must be a fitted ffeat.Detector.*list"):
        ffeat.evaluate([1, 2], demo[0][:2], [0, 1])


# ------------------------------------------------------------------ scikit-learn over images

def test_image_estimators_declare_images_not_arrays():
    for estimator in (Detector(), CnnDetector(), FeatureExtractor()):
        tags = estimator.__sklearn_tags__()
        assert not tags.input_tags.two_d_array and tags.input_tags.string
    for estimator in (Detector(), CnnDetector()):
        tags = estimator.__sklearn_tags__()
        assert tags.classifier_tags.multi_class is False and tags.estimator_type == "classifier"
    assert FeatureExtractor().__sklearn_tags__().requires_fit is False


def test_feature_extractor_clone_and_params():
    extractor = FeatureExtractor(features=("gray", "lbp"), jobs=2, cache=False)
    copy = clone(extractor)
    assert copy is not extractor and copy.get_params() == extractor.get_params()
    assert copy.set_params(features="hog", backend="auto") is copy
    assert (copy.features, extractor.features) == ("hog", ("gray", "lbp"))


def test_cnn_detector_clone_and_params():
    cnn = CnnDetector(epochs=3, input_size=64, augment="jpeg", jobs=2)
    copy = clone(cnn)
    assert copy is not cnn and copy.get_params() == cnn.get_params()
    assert set(cnn.get_params()) == {"input_size", "epochs", "batch_size", "patience",
                                     "augment", "threshold", "jobs", "random_state"}
    assert copy.set_params(epochs=5, threshold=0.7) is copy
    assert (copy.epochs, copy.threshold, cnn.epochs) == (5, 0.7, 3)
    with pytest.raises(ValueError, match="Invalid parameter 'features'"):
        copy.set_params(features="hog")
    assert CnnDetector.classifier == "cnn" and "classifier" not in cnn.get_params()
    options = {"jobs": 1, "cache": False, "backend": "auto"}
    assert copy.set_run_options(**options) is copy and copy.jobs == 1
    assert Detector().set_run_options(**options).get_params().items() >= options.items()


def test_make_detector_gives_each_kind_the_options_it_takes():
    from ffeat._factory import make_detector
    options = {"features": "spectrum", "cache": False, "backend": "cpu", "epochs": 3,
               "input_size": 64, "jobs": 1}
    cnn, det = make_detector("cnn", **options), make_detector("hgb", **options)
    assert type(cnn) is CnnDetector and (cnn.epochs, cnn.input_size, cnn.jobs) == (3, 64, 1)
    assert type(det) is Detector and (det.classifier, det.features, det.cache) == \
        ("hgb", "spectrum", False)
    with pytest.raises(ValueError, match="faces='crop' works with the feature classifiers"):
        make_detector("cnn", reading=ffeat.Reading(faces="crop"))
    assert make_detector("cnn", reading=ffeat.Reading()).get_params() == \
        CnnDetector().get_params()


def test_train_refuses_faces_with_the_cnn_as_a_usage_error(demo_dir, tmp_path, capsys):
    model = tmp_path / "m.model"
    assert main(["train", str(demo_dir), "-o", str(model), "--classifier", "cnn", "--faces",
                 "crop", "-q"]) == 2
    assert "the CNN reads whole images" in capsys.readouterr().err and not model.exists()


class _StubNet:
    """Stands in for a trained network: a CNN model file is written without PyTorch."""

    kind = "cnn"

    def to_arrays(self):
        return {"config": np.array("{}")}


def _stub_cnn_file() -> io.BytesIO:
    cnn = CnnDetector()
    cnn.model_, cnn.classes_, cnn.training_ = _StubNet(), np.array([0, 1]), {}
    buffer = io.BytesIO()
    cnn.save(buffer)
    buffer.seek(0)
    return buffer


def test_each_kind_of_model_file_loads_as_its_class_only(small, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # refused before PyTorch is needed
    with pytest.raises(ModelFileError, match="holds a cnn model, which ffeat.CnnDetector "
                                             "loads, not Detector; use ffeat.CnnDetector.load "
                                             "or ffeat.load_detector"):
        Detector.load(_stub_cnn_file())
    features = io.BytesIO()
    small.save(features)
    features.seek(0)
    with pytest.raises(ModelFileError, match="holds a logistic model, which ffeat.Detector "
                                             "loads, not CnnDetector"):
        CnnDetector.load(features)
    features.seek(0)
    loaded = ffeat.load_detector(features)
    assert type(loaded) is Detector and (loaded.classifier, loaded.C) == ("logistic", small.C)
    assert _persist.ESTIMATORS == {"stacked": "detector.Detector",
                                   "logistic": "detector.Detector", "hgb": "detector.Detector",
                                   "experts": "detector.Detector",
                                   "cnn": "cnn_detector.CnnDetector"}


def test_grid_search_over_image_paths(demo_files):
    root, paths = demo_files
    labels = ffeat.load_dataset(root).labels
    search = GridSearchCV(Detector(features="spectrum", classifier="logistic", cache=False,
                                   jobs=1, augment=None, reading=WHOLE),
                          {"C": [0.01, 1.0],
                           "reading": [ffeat.Reading(), ffeat.Reading(frame=256)]}, cv=2)
    search.fit(paths, labels)
    assert search.best_params_["C"] in (0.01, 1.0) and len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.predict(paths[:2]).tolist() == labels[:2].tolist()
    assert search.best_score_ >= 0.8


def test_pipeline_of_the_extractor_and_the_stack_is_the_detector(demo_files):
    root, paths = demo_files
    labels = ffeat.load_dataset(root).labels
    families = ("spectrum", "gray")
    pipe = Pipeline([("features", FeatureExtractor(features=families, jobs=1, reading=WHOLE)),
                     ("stack", ffeat.StackedLogistic(blocks=(64, 1024), C=0.1))])
    pipe.fit(paths, labels)
    det = Detector(features=families, classifier="stacked", cache=False, jobs=1,
                   calibration=None, augment=None,
                   reading=WHOLE).fit(paths, labels)  # the raw stack
    np.testing.assert_allclose(pipe.decision_function(paths), det.decision_function(paths),
                               rtol=1e-8, atol=1e-8)
    assert pipe.predict(paths).tolist() == det.predict(paths).tolist()


def test_predict_marks_an_unreadable_image_outside_the_classes(small, demo):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        predicted = small.predict([demo[0][0], b"not an image"])
    assert predicted[1] == -1 and -1 not in small.classes_


# ------------------------------------------------------------------ start-up

_HEAVY = ("sklearn", "torch", "matplotlib", "dask")


def _loaded_after(code: str, packages=_HEAVY) -> list[str]:
    """The modules of ``packages`` loaded in a fresh interpreter after ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n' + ' '.join(sys.modules))"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    return sorted(m for m in out.splitlines()[-1].split()
                  if m in packages or m.startswith(tuple(f"{p}." for p in packages)))


def test_import_ffeat_loads_no_heavy_package():
    assert _loaded_after("import ffeat") == []


def test_importing_a_submodule_keeps_the_public_function_of_its_name():
    code = ("import ffeat.robustness\nimport ffeat\n"
            "assert callable(ffeat.robustness), ffeat.robustness\n"
            "assert ffeat.robustness is ffeat.robustness.__globals__['robustness']")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_using_the_detector_loads_no_ensemble_or_plotting():
    loaded = _loaded_after("import ffeat\nffeat.Detector; ffeat.extract; ffeat.evaluate",
                           ("sklearn.ensemble", "torch", "matplotlib", "dask"))
    assert loaded == []


def test_cli_version_imports_no_subcommand():
    code = ("from ffeat.cli import main\ntry:\n    main(['--version'])\n"
            "except SystemExit:\n    pass")
    assert _loaded_after(code, (*_HEAVY, "ffeat.detector", *(
        f"ffeat.cli.{name}" for name in ("demo", "train", "predict", "evaluate", "extract",
                                         "compare")))) == []


def test_cli_predict_of_a_saved_model_loads_no_scikit_learn(small, demo_files, tmp_path):
    model = tmp_path / "small.model"
    small.save(model)
    code = (f"from ffeat.cli import main\nassert main(['predict', '--model', {str(model)!r}, "
            f"{demo_files[1][0]!r}, '--no-cache', '-q']) == 0")
    assert _loaded_after(code) == []


def test_a_saved_detector_scores_like_the_loaded_detector(small, demo_files, tmp_path):
    model = tmp_path / "small.model"
    small.save(model)
    items = expand_inputs([*demo_files[1][:3], str(tmp_path / "missing.png")])
    saved = _persist.load(SavedDetector, model).set_params(jobs=1, cache=False)
    records = score_items(saved, items)
    expected = score_items(Detector.load(model).set_params(jobs=1), items)
    np.testing.assert_array_equal([r.log_odds for r in records], [r.log_odds for r in expected])
    assert [r.error for r in records] == [r.error for r in expected]
    assert [r.item for r in records] == items
    assert [r.error.source for r in records if r.error] == [items[3].name]
    assert [r.faces for r in records] == [None] * 4
    assert saved.threshold == small.threshold and saved.saved["classifier"] == "logistic"
    with pytest.raises(ValueError,
                       match="takes only threshold, jobs, cache, backend, reading; got C"):
        saved.set_params(C=1.0)


def test_cli_help_lists_every_command_and_a_command_gets_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    for name in ("demo", "train", "predict", "evaluate", "extract", "compare"):
        assert f"    {name} " in listing
    assert "probability of fake for image files and folders" in listing
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "--output FILE.csv" in capsys.readouterr().out
