"""Tests of the detector layer: Detector, FeatureExtractor, load_dataset, evaluate,
model files and the feature cache, on the embedded demo data (20 per class, 64 px)."""
from __future__ import annotations

import io
import json
import shutil
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as skm
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

import ffeat
import ffeat.reading._rows
from ffeat import Detector, FeatureExtractor, ModelFileError
from ffeat.models import _persist
from ffeat.models._scoring import Scored
from ffeat.reading._sources import Item
from ffeat.features import describe_features
from conftest import WHOLE, counts

N, SIZE = 20, 64
# Few boosting iterations: the same code paths as the default 300, a fraction of the time.
# The stack keeps the default calibration (its own out-of-fold scores, no refit); the others
# would be refitted once per fold for it, which these tests do not need.
_RAW = {"calibration": None, "band": None}
CLASSIFIERS = {"logistic": _RAW, "stacked": {}, "hgb": {"max_iter": 25, **_RAW}}


pytestmark = pytest.mark.usefixtures("one_openmp_thread")


@pytest.fixture(scope="module")
def fitted(demo):
    """One fitted detector per classifier (no cache), with a non-default threshold."""
    images, labels = demo
    return {name: Detector(classifier=name, threshold=0.4, cache=False, jobs=2, **kw, reading=WHOLE)
            .fit(images, labels) for name, kw in CLASSIFIERS.items()}


@pytest.fixture(scope="module")
def model_file(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "det.model"
    fitted["logistic"].save(path)
    return path


def _copy_tree(src, dst):
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------ save and load

@pytest.mark.parametrize("classifier", list(CLASSIFIERS))
def test_save_load_round_trip_is_bit_identical(fitted, demo, tmp_path, classifier):
    det = fitted[classifier]
    path = tmp_path / f"{classifier}.model"
    det.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left
    loaded = Detector.load(path)
    images, _ = demo
    np.testing.assert_array_equal(loaded.predict_proba(images), det.predict_proba(images))
    np.testing.assert_array_equal(loaded.decision_function(images),
                                  det.decision_function(images))
    assert loaded.classifier == classifier
    assert loaded.threshold == 0.4
    np.testing.assert_array_equal(loaded.predict(images),
                                  (det.predict_proba(images)[:, 1] >= 0.4).astype(int))
    assert describe_features(loaded.features) == describe_features(
        ffeat.features.resolve_features(det.features))
    assert loaded.feature_names_ == det.feature_names_
    assert loaded.training_ == det.training_
    assert counts(det.training_) == {"n_real": N, "n_fake": N, "n_errors": 0}
    assert {k: v for k, v in loaded.get_params().items() if k != "features"} == \
        {k: v for k, v in det.get_params().items() if k not in ("features", "jobs", "cache")} \
        | {"jobs": None, "cache": True}


def test_save_load_keeps_a_non_default_feature_configuration(demo, tmp_path):
    images, labels = demo
    features = (ffeat.Spectrum(n_bins=16), ffeat.Gray(size=4))
    det = Detector(features=features, C=2.0, cache=False, jobs=2, reading=WHOLE).fit(images, labels)
    det.save(tmp_path / "m.model")
    loaded = Detector.load(tmp_path / "m.model")
    assert loaded.features == features
    assert loaded.C == 2.0
    assert len(loaded.feature_names_) == 16 + 16
    np.testing.assert_array_equal(loaded.predict_proba(images[:5]),
                                  det.predict_proba(images[:5]))


def test_params_from_a_numpy_grid_can_be_saved(demo, tmp_path):
    """GridSearchCV hands NumPy scalars to set_params; the best model must still save."""
    images, labels = demo
    search = GridSearchCV(Detector(features="spectrum", cache=False, jobs=2, reading=WHOLE),
                          {"C": np.array([0.1, 1.0]), "random_state": np.arange(2)}, cv=2)
    search.fit(images, labels)
    best = search.best_estimator_
    assert isinstance(best.random_state, np.integer)
    best.save(tmp_path / "best.model")
    loaded = Detector.load(tmp_path / "best.model")
    assert loaded.random_state == best.random_state and loaded.C == best.C
    np.testing.assert_array_equal(loaded.predict_proba(images), best.predict_proba(images))


def test_save_before_fit_says_not_fitted(tmp_path):
    with pytest.raises(AttributeError, match="not fitted"):
        Detector().save(tmp_path / "m.model")
    assert not list(tmp_path.iterdir())


def _rewrite(src, dst, *, meta=None, arrays=None, checksum=True):
    """Copy a model file with its meta (a function of the dict) or arrays changed; the
    checksum recomputed so that only the intended check can refuse it, or kept stale."""
    with np.load(src, allow_pickle=False) as z:
        content = {k: z[k] for k in z.files}
    meta_text = str(content["meta"])
    if meta is not None:
        meta_text = json.dumps(meta(json.loads(meta_text)))
    model = {k: v for k, v in content.items() if k.startswith(("model/", "calibration/"))}
    if arrays is not None:
        model = arrays(model)
    new_sum = _persist._checksum(meta_text, model) if checksum else str(content["checksum"])
    with open(dst, "wb") as fh:  # a name, not a path: np.savez would append .npz
        np.savez(fh, meta=np.array(meta_text), checksum=np.array(new_sum), **model)
    return dst


def _model_error(path) -> str:
    """The message of the ModelFileError loading ``path`` raises, which must name the
    file; returned without the file name (test names in tmp_path hold reason words)."""
    with pytest.raises(ModelFileError) as info:
        Detector.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    return message.replace(str(path), "<path>")


def test_a_changed_byte_is_refused(model_file, tmp_path):
    raw = bytearray(model_file.read_bytes())
    with np.load(model_file) as z:
        coef = z["model/coef"]
    at = bytes(raw).index(coef.tobytes())  # stored uncompressed: change a coefficient
    raw[at + 3] ^= 0x10
    path = tmp_path / "tampered.model"
    path.write_bytes(bytes(raw))
    message = _model_error(path)
    assert "damaged" in message and "modified" in message
    assert "not an ffeat model" not in message  # it is one, just no longer intact


def test_a_rewritten_archive_fails_the_checksum(model_file, tmp_path):
    def nudge(model):
        model["model/coef"] = model["model/coef"] + 1e-9
        return model

    path = _rewrite(model_file, tmp_path / "edited.model", arrays=nudge, checksum=False)
    message = _model_error(path)
    assert "checksum" in message and "modified" in message


@pytest.mark.parametrize("keep", [0.5, 0.95, 100])
def test_a_truncated_file_is_refused(model_file, tmp_path, keep):
    raw = model_file.read_bytes()
    path = tmp_path / "cut.model"
    path.write_bytes(raw[:int(len(raw) * keep) if keep < 1 else keep])
    message = _model_error(path)
    assert "truncated" in message


def test_damage_anywhere_raises_only_model_file_error(model_file, tmp_path):
    """Zip and npy headers damaged in ways that made zipfile or numpy raise other kinds
    (tokenize.TokenError, RuntimeError 'encrypted', NotImplementedError)."""
    raw = model_file.read_bytes()
    path = tmp_path / "damaged.model"
    # Offsets into the first member's npy header and into the central directory.
    starts = [raw.index(b"{'descr'") + k for k in range(-3, 64)]
    central = raw.index(b"PK\x01\x02")
    starts += [central + k for k in range(0, 46)]
    for at in starts:
        for bit in (0x01, 0x40):
            b = bytearray(raw)
            b[at] ^= bit
            path.write_bytes(bytes(b))
            try:
                Detector.load(path)
            except ModelFileError as exc:
                assert str(path) in str(exc)
            # A flip in bytes nothing reads (times, unused flags) may load: that is fine.


@pytest.mark.parametrize("kind", ["png", "text", "other_npz", "empty"])
def test_files_that_are_not_models_are_refused(tmp_path, kind):
    path = tmp_path / f"file.{kind}"
    if kind == "png":
        Image.new("RGB", (40, 40)).save(path, "PNG")
    elif kind == "text":
        path.write_text("weights = [1, 2, 3]\n")
    elif kind == "other_npz":
        with open(path, "wb") as fh:
            np.savez(fh, X=np.zeros((2, 3)))
    else:
        path.write_bytes(b"")
    assert "not an ffeat model" in _model_error(path)


def test_pickled_content_is_refused_not_run(model_file, tmp_path):
    with np.load(model_file) as z:
        content = {k: z[k] for k in z.files}
    content["meta"] = np.array([{"format": "ffeat-detector"}], dtype=object)  # a pickle
    path = tmp_path / "pickle.model"
    with open(path, "wb") as fh:
        np.savez(fh, **content)
    message = _model_error(path)
    assert "pickle" in message.lower()


@pytest.mark.parametrize("change", ["minor", "major", "patch"])
def test_another_ffeat_minor_version_is_refused(model_file, tmp_path, change):
    major, minor = map(int, ffeat.__version__.split(".")[:2])
    version = {"minor": f"{major}.{minor + 1}.0", "major": f"{major + 1}.{minor}.0",
               "patch": f"{major}.{minor}.99"}[change]
    loads = change == "patch"

    def stamp(meta):
        return {**meta, "ffeat_version": version}

    path = _rewrite(model_file, tmp_path / "other.model", meta=stamp)
    if loads:  # a patch release reads the model
        assert Detector.load(path).threshold == 0.4
        return
    message = _model_error(path)
    assert f"ffeat {version}" in message and ffeat.__version__ in message
    assert "version" in message and "retrain" in message


def test_another_format_version_is_refused(model_file, tmp_path):
    path = _rewrite(model_file, tmp_path / "v2.model",
                    meta=lambda m: {**m, "format_version": 2})
    assert "format 2" in _model_error(path)


@pytest.mark.parametrize("damage", ["no_params", "extra_param", "features_not_dicts",
                                    "unknown_family", "unknown_classifier", "no_coef"])
def test_checksummed_files_with_a_foreign_layout_are_refused(model_file, tmp_path, damage):
    meta = arrays = None
    if damage == "no_params":
        meta = lambda m: {k: v for k, v in m.items() if k != "params"}  # noqa: E731
    elif damage == "extra_param":
        meta = lambda m: {**m, "params": {**m["params"], "colour": 1}}  # noqa: E731
    elif damage == "features_not_dicts":
        meta = lambda m: {**m, "features": ["spectrum"]}  # noqa: E731
    elif damage == "unknown_family":
        meta = lambda m: {**m, "features": [{"family": "wavelet"}]}  # noqa: E731
    elif damage == "unknown_classifier":
        meta = lambda m: {**m, "params": {**m["params"], "classifier": "svm"}}  # noqa: E731
    else:
        arrays = lambda a: {k: v for k, v in a.items() if k != "model/coef"}  # noqa: E731
    path = _rewrite(model_file, tmp_path / "odd.model", meta=meta, arrays=arrays)
    _model_error(path)


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_missing_path_or_folder_is_refused(tmp_path, kind):
    path = tmp_path / "nope.model"
    if kind == "folder":
        path.mkdir()
    message = _model_error(path)
    assert ("no such model file" if kind == "missing" else "folder") in message


# ------------------------------------------------------------------ hostile model files

def _members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _write_zip(path, members: dict[str, bytes], deflated=()) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data, zipfile.ZIP_DEFLATED if name in deflated
                        else zipfile.ZIP_STORED)


def _opened(monkeypatch) -> list[str]:
    """The members that zipfile is asked to open from now on."""
    names, original = [], zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        names.append(getattr(name, "filename", name))
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    return names


def test_a_zip_bomb_model_is_refused_before_anything_is_read(model_file, tmp_path,
                                                              monkeypatch):
    members = _members(model_file)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (2_500_000,)})
    members["model/mean.npy"] = header.getvalue() + bytes(20_000_000)  # 20 kB deflated
    path = tmp_path / "bomb.model"
    _write_zip(path, members, deflated={"model/mean.npy"})
    assert path.stat().st_size < model_file.stat().st_size + 100_000
    opened = _opened(monkeypatch)
    message = _model_error(path)
    assert "model/mean.npy expands" in message and "zip bomb" in message
    assert opened == []


def test_model_arrays_larger_than_the_metadata_allows_are_not_read(fitted, model_file,
                                                                    tmp_path, monkeypatch):
    n = len(fitted["logistic"].feature_names_)
    path = _rewrite(model_file, tmp_path / "big.model",
                    arrays=lambda m: {**m, "model/mean": np.zeros(4 * n)})
    opened = _opened(monkeypatch)
    message = _model_error(path)
    assert "declare" in message and "more than" in message and "logistic" in message
    assert opened == ["meta.npy"]  # the metadata only, which bounds the rest


@pytest.mark.parametrize("name", ["run.sh", "model/../meta.npy", "other.npy"])
def test_unknown_members_are_refused(model_file, tmp_path, name):
    members = {**_members(model_file), name: b"#!/bin/sh\n"}
    path = tmp_path / "extra.model"
    _write_zip(path, members)
    assert "unknown or repeated member" in _model_error(path)


def _tree(fitted, tmp_path):
    path = tmp_path / "tree.model"
    fitted["hgb"].save(path)
    return path


def _set(name, change):
    def edit(model):
        model[f"model/{name}"] = change(model[f"model/{name}"].copy())
        return model
    return edit


def _at(index, value):
    def change(a):
        a[index] = value
        return a
    return change


@pytest.mark.parametrize("name, change, words", [
    ("left", _at(0, 0), "'left': a tree node's child does not come after it"),
    ("right", _at(0, 10**6), "'right': a tree node's child"),
    ("feature", _at(0, 10**6), "'feature' holds indices outside"),
    ("left", lambda a: a[:-1], "'left' is int64 of shape"),
    ("threshold", lambda a: a.astype(str), "'threshold' is <U"),
    ("offsets", lambda a: a[:-1], "'offsets' does not cut"),
    ("value", _at(-1, np.nan), "'value' holds NaN"),
])
def test_tree_arrays_are_checked_at_load(fitted, tmp_path, name, change, words):
    path = _rewrite(_tree(fitted, tmp_path), tmp_path / "edited.model",
                    arrays=_set(name, change))
    message = _model_error(path)  # before: predict looped forever or raised IndexError
    assert words in message and "retrain" in message


@pytest.mark.parametrize("name, change, words", [
    ("coef", lambda a: a[:-1], "'coef' is float64 of shape"),
    ("scale", lambda a: a * 0, "'scale' holds zeros"),
    ("intercept", lambda a: np.array("0.5"), "'intercept' is <U3"),
    ("mean", _at(3, np.inf), "'mean' holds NaN or infinite"),
])
def test_linear_arrays_are_checked_at_load(model_file, tmp_path, name, change, words):
    path = _rewrite(model_file, tmp_path / "edited.model", arrays=_set(name, change))
    assert words in _model_error(path)


def test_a_threshold_saved_as_text_is_refused(model_file, tmp_path):
    def text(meta):
        meta["params"]["threshold"] = "0.4"
        return meta
    path = _rewrite(model_file, tmp_path / "text.model", meta=text)
    assert "threshold '0.4' is not a number" in _model_error(path)


def test_an_absurd_feature_configuration_is_refused_before_naming_its_columns(
        model_file, tmp_path, monkeypatch):
    def absurd(meta):
        meta["features"] = [{"family": "lbp", "cells": 256, "radii": list(range(1, 33))}]
        return meta
    path = _rewrite(model_file, tmp_path / "absurd.model", meta=absurd)

    def never(self):
        raise AssertionError("21 million column names built")
    monkeypatch.setattr(ffeat.features.Lbp, "feature_names", never)
    assert "another count" in _model_error(path)


@pytest.mark.parametrize("change, words", [
    ({"channels": [100_000] * 5}, "channels"),
    ({"dropout": "0.3"}, "dropout"),
    ({"input_size": 10**6}, "input_size 1000000 is above"),
    ({"input_size": 2}, "input_size must be a whole number"),
])
def test_a_cnn_configuration_is_checked_before_the_network_is_built(change, words):
    from ffeat.models._cnn import _ARCHITECTURE, CHANNELS, DROPOUT, CnnModel
    config = {"architecture": _ARCHITECTURE, "input_size": 128, "channels": list(CHANNELS),
              "dropout": DROPOUT, **change}
    with pytest.raises(ValueError, match=words):  # before torch is needed: no torch here
        CnnModel.from_arrays({"config": np.array(json.dumps(config))})


@pytest.mark.parametrize("family", [
    ffeat.features.Gray(7), ffeat.features.Spectrum(5), ffeat.features.Residual(("Y", "R"), 3),
    ffeat.features.Hog(3, 4), ffeat.features.Lbp(2, (1, 5))])
def test_column_count_matches_the_names(family):
    assert ffeat.features.n_columns(family) == len(family.feature_names())


# ------------------------------------------------------------------ datasets

def _png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return str(path)


def test_class_folders_at_any_depth(tmp_path):
    root = tmp_path / "set"
    expected = {
        _png(root / "train" / "real" / "a.png"): 0,
        _png(root / "train" / "fake" / "b.png"): 1,
        _png(root / "valid" / "REAL" / "c.png"): 0,
        _png(root / "valid" / "fake" / "deep" / "er" / "d.png"): 1,
        _png(root / "fake" / "real" / "e.png"): 0,  # the deepest class folder wins
    }
    _png(root / "unsorted" / "f.png")  # outside any class folder: left out
    (root / "train" / "real" / "notes.txt").write_text("not an image")
    data = ffeat.load_dataset(root)
    assert data.paths == sorted(expected)
    assert dict(zip(data.paths, data.labels.tolist())) == expected
    assert data.counts() == (3, 2)


def test_folder_dataset_is_sorted_by_path(tmp_path):
    _png(tmp_path / "d" / "real" / "a.png")
    _png(tmp_path / "d" / "fake" / "b.png")
    data = ffeat.load_dataset(tmp_path / "d")
    assert data.paths == [str(tmp_path / "d" / "fake" / "b.png"),
                          str(tmp_path / "d" / "real" / "a.png")]
    assert data.labels.tolist() == [1, 0] and data.labels.dtype == np.int8


def test_other_class_names_with_classes(tmp_path):
    root = tmp_path / "dsta"
    real = [_png(root / "ffhq" / f"{i}.png", i) for i in range(2)]
    fake = [_png(root / "StyleGAN2" / f"{i}.png", 10 + i) for i in range(3)]
    data = ffeat.load_dataset(root, classes={"ffhq": "real", "stylegan2": "fake"})
    assert dict(zip(data.paths, data.labels.tolist())) == {**dict.fromkeys(real, 0),
                                                           **dict.fromkeys(fake, 1)}
    with pytest.raises(ValueError, match=r"no real images.*--classes"):
        ffeat.load_dataset(root)
    with pytest.raises(ValueError, match="'maybe'"):
        ffeat.load_dataset(root, classes={"ffhq": "maybe", "stylegan2": "fake"})
    with pytest.raises(ValueError, match="at least one real and one fake"):
        ffeat.load_dataset(root, classes={"ffhq": "fake", "stylegan2": "fake"})


def test_kaggle_manifest_with_ids_in_label_folders(tmp_path):
    root = tmp_path / "kaggle"
    for i in range(2):
        _png(root / "real" / f"real_{i:05d}.png", i)
        _png(root / "fake" / f"fake_{i:05d}.png", 10 + i)
    # Ids without extensions; label values in any case.
    (root / "data.csv").write_text("images_id,label\nfake_00000,fake\n"
                                   "real_00000,real\nreal_00001,Real\nfake_00001,fake\n",
                                   encoding="utf-8")
    data = ffeat.load_dataset(root / "data.csv")
    assert data.paths == [str(root / "fake" / "fake_00000.png"),
                          str(root / "real" / "real_00000.png"),
                          str(root / "real" / "real_00001.png"),
                          str(root / "fake" / "fake_00001.png")]  # row order
    assert data.labels.tolist() == [1, 0, 0, 1]


def test_manifest_with_a_byte_order_mark(tmp_path):
    """Excel saves CSV as UTF-8 with a BOM before the first column name."""
    root = tmp_path / "m"
    _png(root / "a.png", 1)
    _png(root / "b.png", 2)
    (root / "m.csv").write_bytes("\ufeffimages_id,label\na.png,real\nb.png,fake\n"
                                 .encode("utf-8"))
    data = ffeat.load_dataset(root / "m.csv")
    assert data.labels.tolist() == [0, 1]


def test_manifest_with_relative_paths_and_01_labels(tmp_path):
    root = tmp_path / "m"
    a = _png(root / "img" / "a.jpg", 1)
    b = _png(root / "img" / "b.jpg", 2)
    c = _png(root / "img" / "sub" / "c.jpg", 3)
    (root / "list.csv").write_text("Path,Target,notes\nimg/a.jpg,0,x\nimg/b.jpg,1,\n"
                                   "img/sub/c.jpg, 1 ,\n")
    data = ffeat.load_dataset(root / "list.csv")
    assert data.paths == [a, b, c] and data.labels.tolist() == [0, 1, 1]
    named = ffeat.load_dataset(root / "list.csv", path_column="Path", label_column="Target")
    assert named.paths == data.paths
    with pytest.raises(ValueError, match="no column 'lbl'"):
        ffeat.load_dataset(root / "list.csv", label_column="lbl")


def test_manifest_labels_mapped_with_classes(tmp_path):
    root = tmp_path / "m"
    _png(root / "x.png", 1)
    _png(root / "y.png", 2)
    (root / "m.csv").write_text("file,class\nx.png,ffhq\ny.png,stylegan2\n")
    data = ffeat.load_dataset(root / "m.csv", classes={"ffhq": "real", "stylegan2": 1})
    assert data.labels.tolist() == [0, 1]


@pytest.mark.parametrize("case,match", [
    ("unknown_label", r"unknown label values \['maybe'\]"),
    ("missing_file", r"1 of 3 files not found \(e\.g\. gone\.png\)"),
    ("one_class", "has no fake images"),
    ("no_label_column", "no label column"),
    ("no_rows", "has no rows"),
])
def test_manifest_errors_name_the_manifest_and_the_problem(tmp_path, case, match):
    root = tmp_path / "m"
    _png(root / "a.png", 1)
    _png(root / "b.png", 2)
    rows = {"unknown_label": "path,label\na.png,real\nb.png,maybe\n",
            "missing_file": "path,label\na.png,real\nb.png,fake\ngone.png,fake\n",
            "one_class": "path,label\na.png,real\nb.png,0\n",
            "no_label_column": "path,kind\na.png,real\n",
            "no_rows": "path,label\n"}[case]
    manifest = root / "m.csv"
    manifest.write_text(rows)
    with pytest.raises(ValueError, match=match) as info:
        ffeat.load_dataset(manifest)
    assert str(manifest) in str(info.value)


@pytest.mark.parametrize("case,match", [
    ("no_fake", "has no fake images"),
    ("no_real", "has no real images"),
    ("no_images", "holds no image files"),
    ("missing", "no such folder"),
    ("not_csv", "not a CSV manifest"),
])
def test_folder_errors(tmp_path, case, match):
    root = tmp_path / "d"
    root.mkdir()
    if case == "no_fake":
        _png(root / "real" / "a.png")
        (root / "fake").mkdir()
    elif case == "no_real":
        _png(root / "x" / "fake" / "a.png")
        _png(root / "x" / "other" / "b.png")
    elif case == "no_images":
        (root / "real").mkdir()
        (root / "real" / "a.txt").write_text("x")
    elif case == "missing":
        root = tmp_path / "absent"
    else:
        root = tmp_path / "d.json"
        root.write_text("{}")
    with pytest.raises(ValueError, match=match) as info:
        ffeat.load_dataset(root)
    assert str(root) in str(info.value)


# ------------------------------------------------------------------ training and prediction

def test_fit_on_a_folder_path_and_a_dataset_agree(demo_files):
    root, paths = demo_files
    by_path = Detector(features="spectrum", cache=False, jobs=2, reading=WHOLE).fit(str(root))
    by_dataset = Detector(features="spectrum", cache=False, jobs=2, reading=WHOLE).fit(
        ffeat.load_dataset(root))
    assert counts(by_path.training_) == {"n_real": N, "n_fake": N, "n_errors": 0}
    np.testing.assert_array_equal(by_path.predict_proba(paths[:4]),
                                  by_dataset.predict_proba(paths[:4]))


def test_files_and_arrays_give_the_same_scores(fitted, demo, demo_files):
    images, _ = demo
    _, paths = demo_files  # the same images, written as PNG
    det = fitted["logistic"]
    np.testing.assert_array_equal(det.predict_proba(paths), det.predict_proba(images))


def test_the_detector_learns_the_demo_set(fitted, demo):
    images, labels = ffeat.make_demo_set(n_per_class=10, size=SIZE, seed=7)  # unseen
    for det in fitted.values():
        assert skm.roc_auc_score(labels, det.predict_proba(images)[:, 1]) > 0.8


def test_unreadable_images_give_nan_and_minus_one_and_keep_the_rest(fitted, demo, tmp_path,
                                                                    bad_files):
    images, _ = demo
    det = fitted["logistic"]
    bad = bad_files(tmp_path / "bad")
    batch = [images[0], bad[0], images[-1], b"not an image", bad[1], images[1]]
    good_at, bad_at = [0, 2, 5], [1, 3, 4]
    with pytest.warns(UserWarning, match=r"3 of 6 images could not be read") as record:
        proba = det.predict_proba(batch)
    assert bad[0] in str(record[0].message)
    assert proba.shape == (6, 2)
    assert np.isnan(proba[bad_at]).all()
    np.testing.assert_array_equal(proba[good_at],
                                  det.predict_proba([images[0], images[-1], images[1]]))
    with pytest.warns(UserWarning):
        labels = det.predict(batch)
    assert labels[bad_at].tolist() == [-1, -1, -1]
    assert set(labels[good_at].tolist()) <= {0, 1}
    with pytest.warns(UserWarning):
        scores = det.decision_function(batch)
    assert np.isnan(scores[bad_at]).all() and np.isfinite(scores[good_at]).all()
    scores, errors = det.score_images(batch)
    assert [e.source for e in errors][0] == bad[0] and len(errors) == 3


def test_only_unreadable_images(fitted, tmp_path, bad_files):
    bad = bad_files(tmp_path / "bad")
    with pytest.warns(UserWarning, match="4 of 4"):
        assert fitted["hgb"].predict(bad).tolist() == [-1] * 4


def test_fit_leaves_out_unreadable_training_images(demo_files, tmp_path, bad_files):
    root = _copy_tree(demo_files[0], tmp_path / "data")
    bad = bad_files(root / "fake" / "broken")
    with pytest.warns(UserWarning, match=r"4 of 44 images could not be read and were left"):
        det = Detector(features="spectrum", cache=False, jobs=2, reading=WHOLE).fit(root)
    assert counts(det.training_) == {"n_real": N, "n_fake": N, "n_errors": 4}
    assert sorted(e.source for e in det.errors_) == sorted(bad)


def test_fit_needs_both_classes_readable(demo, tmp_path, bad_files):
    images, _ = demo
    bad = bad_files(tmp_path / "bad")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="both classes"):
        Detector(cache=False, reading=WHOLE).fit(images[:3] + bad, [0, 0, 0, 1, 1, 1, 1])


@pytest.mark.parametrize("labels,match", [([0, 1, 2], "must be 0 .* got values \\[2\\]"),
                                          ([0, 1], "got 3 images but labels of shape")])
def test_fit_checks_labels(demo, labels, match):
    with pytest.raises(ValueError, match=match):
        Detector(cache=False, reading=WHOLE).fit(demo[0][:3], labels)


def test_predict_before_fit_says_not_fitted(demo):
    with pytest.raises(NotFittedError, match="not fitted"):
        Detector().predict(demo[0][:1])


def test_unknown_classifier_is_named(demo):
    with pytest.raises(InvalidParameterError, match="'classifier' parameter of Detector must "
                                                    "be a str among .*'stacked'.*Got 'svm'"):
        Detector(classifier="svm", cache=False, reading=WHOLE).fit(*demo)


# ------------------------------------------------------------------ scikit-learn

def test_clone_and_params(fitted):
    det = fitted["hgb"]
    copy = clone(det)
    assert copy.get_params() == det.get_params()
    assert not hasattr(copy, "model_")
    assert copy.set_params(C=3.0, threshold=0.7) is copy
    assert (copy.C, copy.threshold) == (3.0, 0.7)
    assert det.C == 0.1 and det.threshold == 0.4
    assert set(Detector().get_params()) == {"features", "classifier", "C", "max_iter",
                                            "learning_rate", "threshold", "jobs", "cache",
                                            "backend", "reading", "augment",
                                            "random_state", "calibration", "band"}
    with pytest.raises(ValueError):
        copy.set_params(colour="red")


def test_clone_of_a_loaded_detector_refits_the_same(model_file, demo):
    images, labels = demo
    loaded = Detector.load(model_file)
    refit = clone(loaded).set_params(cache=False, jobs=2).fit(images, labels)
    np.testing.assert_allclose(refit.predict_proba(images), loaded.predict_proba(images),
                               rtol=1e-10, atol=1e-12)


def test_cross_val_score(demo):
    images, labels = demo
    scores = cross_val_score(Detector(features="spectrum", cache=False, jobs=2,
                                      reading=WHOLE), images, labels, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() >= 0.8


def test_feature_extractor_in_a_pipeline(demo, demo_files):
    images, labels = demo
    extractor = FeatureExtractor(features=("spectrum", "gray"), jobs=2)
    pipe = make_pipeline(extractor, StandardScaler(), LogisticRegression(max_iter=2000))
    pipe.fit(images, labels)
    assert pipe.score(images, labels) >= 0.9
    names = extractor.get_feature_names_out()
    assert len(names) == 64 + 1024 and names[0] == "spectrum_000" and names[-1] == "gray_31_31"
    F = extractor.transform(demo_files[1][:3])
    assert F.shape == (3, len(names)) and F.dtype == np.float64
    np.testing.assert_array_equal(F, extractor.transform(images[:3]))
    expected = ffeat.extract(images[:3], features=("spectrum", "gray")).X
    np.testing.assert_array_equal(F, expected)
    assert clone(extractor).get_params() == extractor.get_params()


def test_feature_extractor_nan_rows_with_a_warning(demo):
    with pytest.warns(UserWarning, match="1 of 2 images could not be read and have NaN"):
        F = FeatureExtractor(features="spectrum").transform([demo[0][0], b""])
    assert np.isfinite(F[0]).all() and np.isnan(F[1]).all()


# ------------------------------------------------------------------ evaluate

class _FixedScores:
    """A stand-in detector whose log-odds are given; evaluate only needs these two."""

    threshold = 0.5

    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=float)

    def score_records(self, images, *, progress=False):
        return [Scored(Item(im, str(im)), z, None if np.isfinite(z)
                       else ffeat.ImageError(str(im), "unreadable"))
                for im, z in zip(images, self.scores)]


def test_evaluate_perfectly_separable():
    labels = np.array([0, 0, 0, 1, 1, 1])
    result = ffeat.evaluate(_FixedScores([-3, -2, -0.5, 0.5, 2, 3]),
                            [f"img{i}.png" for i in range(6)], labels)
    m = result.metrics
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "eer",
            "confusion_matrix", "n_real", "n_fake"} <= set(m)
    assert m["accuracy"] == m["precision"] == m["recall"] == m["f1"] == 1.0
    assert m["roc_auc"] == m["average_precision"] == 1.0
    assert m["eer"] == 0.0
    assert m["confusion_matrix"] == [[3, 0], [0, 3]]
    assert (m["n_real"], m["n_fake"]) == (3, 3)
    assert result.sources == [f"img{i}.png" for i in range(6)]
    d = result.to_dict()
    assert d["threshold"] == 0.5 and d["errors"] == []
    json.dumps(d)


def test_evaluate_matches_sklearn_and_drops_unreadable_rows():
    labels = np.array([0, 1, 0, 1, 0, 1, 1, 0, 0])
    scores = np.array([-1.0, 2.0, 0.3, -0.2, np.nan, 1.5, 0.1, -2.0, 0.0])
    result = ffeat.evaluate(_FixedScores(scores), [f"i{k}" for k in range(9)], labels)
    ok = ~np.isnan(scores)
    y, p = labels[ok], 1 / (1 + np.exp(-scores[ok]))
    called = (p >= 0.5).astype(int)  # score 0.0 is exactly 0.5: called fake
    m = result.metrics
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, called))
    assert m["precision"] == pytest.approx(skm.precision_score(y, called))
    assert m["recall"] == pytest.approx(skm.recall_score(y, called))
    assert m["f1"] == pytest.approx(skm.f1_score(y, called))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, called).tolist()
    assert (m["n_real"], m["n_fake"]) == (4, 4)
    assert "i4" not in result.sources and len(result.sources) == 8
    np.testing.assert_array_equal(result.labels, y)
    assert [e.source for e in result.errors] == ["i4"]
    assert 0 < m["eer"] < 0.5


def test_equal_error_rate_by_hand():
    from ffeat.evaluation import equal_error_rate
    # ROC points (0,0) (0,.5) (.5,.5) (.5,1) (1,1): FPR = FNR = 0.5 at (.5,.5).
    assert equal_error_rate(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9])) == 0.5
    # Fully inverted scores: everything wrong.
    assert equal_error_rate(np.array([0, 1]), np.array([0.9, 0.1])) == 1.0


def test_evaluate_threshold_and_one_class():
    labels = np.array([0, 0, 1, 1])
    high = ffeat.evaluate(_FixedScores([-3, -2, 2, 3]), list("abcd"), labels, threshold=1.0)
    assert high.threshold == 1.0
    assert high.metrics["recall"] == 0.0 and high.metrics["confusion_matrix"] == [[2, 0],
                                                                                  [2, 0]]
    assert high.metrics["roc_auc"] == 1.0  # threshold-free
    only_fake = ffeat.evaluate(_FixedScores([1.0, 2.0]), list("ab"), np.array([1, 1]))
    assert only_fake.metrics["roc_auc"] is None and only_fake.metrics["eer"] is None
    assert only_fake.metrics["accuracy"] == 1.0
    with pytest.raises(ValueError, match="labels are needed"):
        ffeat.evaluate(_FixedScores([1.0]), ["a"])


def test_evaluate_a_real_detector_on_a_folder(fitted, demo_files, tmp_path, bad_files):
    root = _copy_tree(demo_files[0], tmp_path / "data")
    bad = bad_files(root / "real" / "broken")
    det = fitted["logistic"]
    result = ffeat.evaluate(det, root)
    assert sorted(e.source for e in result.errors) == sorted(bad)
    assert (result.metrics["n_real"], result.metrics["n_fake"]) == (N, N)
    assert result.threshold == 0.4
    dataset = ffeat.load_dataset(root)
    keep = [i for i, p in enumerate(dataset.paths) if p not in bad]
    assert result.sources == [dataset.paths[i] for i in keep]
    np.testing.assert_array_equal(result.labels, dataset.labels[keep])
    np.testing.assert_array_equal(result.proba, det.predict_proba(result.sources)[:, 1])
    assert result.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(result.labels, result.proba))
    assert result.metrics["accuracy"] >= 0.9  # scored on its own training images


# ------------------------------------------------------------------ feature cache

@pytest.fixture
def count_decodes(monkeypatch):
    """Count the images the extraction decodes."""
    calls = []
    real = ffeat.reading._rows.load_image

    def counting(source, **kw):
        calls.append(str(source))
        return real(source, **kw)

    monkeypatch.setattr(ffeat.reading._rows, "load_image", counting)
    return calls


def _cache_rows(folder):
    return sorted(folder.rglob("*.row"))


def test_second_fit_reads_the_cache_not_the_images(demo_files, tmp_path, count_decodes):
    root, paths = demo_files
    cache = tmp_path / "cache"
    first = Detector(cache=cache, jobs=2, reading=WHOLE).fit(root)
    assert len(count_decodes) == 2 * N  # the recoded copies are made (not cached) apart
    assert len(_cache_rows(cache)) == 2 * N
    count_decodes.clear()
    second = Detector(classifier="hgb", max_iter=10, cache=cache, jobs=2, augment=None,
                      **_RAW, reading=WHOLE).fit(root)
    again = Detector(cache=cache, jobs=2, reading=WHOLE).fit(root)
    assert count_decodes == []  # hashed, not decoded
    assert second.training_["n_rows"] == 2 * N and again.training_ == first.training_
    np.testing.assert_array_equal(again.model_.coef, first.model_.coef)
    cold = FeatureExtractor(cache=False, jobs=2, reading=first.reading).transform(paths)
    count_decodes.clear()
    warm = FeatureExtractor(cache=cache, jobs=2, reading=first.reading).transform(paths)
    assert count_decodes == []
    np.testing.assert_array_equal(warm, cold)


def test_cache_true_uses_ffeat_cache_dir(demo_files, tmp_path, monkeypatch, count_decodes):
    root, paths = demo_files
    monkeypatch.setenv("FFEAT_CACHE_DIR", str(tmp_path / "env-cache"))
    det = Detector(features="spectrum", jobs=2, reading=WHOLE).fit(root)  # cache=True by default
    assert len(_cache_rows(tmp_path / "env-cache")) == 2 * N
    count_decodes.clear()
    det.predict_proba(paths)
    assert count_decodes == []


def test_in_memory_images_are_not_cached(demo, tmp_path):
    Detector(features="spectrum", cache=tmp_path / "c", jobs=2, reading=WHOLE).fit(*demo)
    assert not (tmp_path / "c").exists()


def test_a_modified_file_is_not_served_from_the_cache(demo_files, tmp_path, count_decodes):
    root = _copy_tree(demo_files[0], tmp_path / "data")
    cache = tmp_path / "cache"
    paths = ffeat.load_dataset(root).paths
    extractor = FeatureExtractor(cache=cache, jobs=2)
    before = extractor.transform(paths)
    target = paths[0]
    with Image.open(target) as im:
        edited = np.asarray(im) // 2  # same size and name, other content
    Image.fromarray(edited).save(target)
    count_decodes.clear()
    after = extractor.transform(paths)
    assert count_decodes == [target]
    np.testing.assert_array_equal(after[1:], before[1:])
    assert not np.array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[0], ffeat.extract([edited]).X[0])


def test_cache_is_keyed_on_the_feature_configuration(demo_files, tmp_path, count_decodes):
    _, paths = demo_files
    cache = tmp_path / "cache"
    FeatureExtractor(features="spectrum", cache=cache, jobs=2).transform(paths[:3])
    count_decodes.clear()
    F = FeatureExtractor(features=ffeat.Spectrum(n_bins=32), cache=cache,
                         jobs=2).transform(paths[:3])
    assert len(count_decodes) == 3 and F.shape == (3, 32)


def test_a_damaged_cache_entry_is_recomputed(demo_files, tmp_path, count_decodes):
    _, paths = demo_files
    cache = tmp_path / "cache"
    extractor = FeatureExtractor(features="spectrum", cache=cache, jobs=1)
    before = extractor.transform(paths[:2])
    rows = _cache_rows(cache)
    assert len(rows) == 2
    rows[0].write_bytes(b"garbage")
    count_decodes.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = extractor.transform(paths[:2])
    assert len(count_decodes) == 1
    np.testing.assert_array_equal(after, before)


def test_manifest_with_01_labels_finds_class_folders(tmp_path):
    root = tmp_path / "m"
    real = _png(root / "real" / "00001.jpg", 1)
    fake = _png(root / "fake" / "ab12cd34ef.jpg", 2)
    (root / "train.csv").write_text("id,label\n00001,0\nab12cd34ef,1\n")
    data = ffeat.load_dataset(root / "train.csv")
    assert data.paths == [real, fake] and data.labels.tolist() == [0, 1]


def test_scoring_holds_blas_to_one_thread_and_gives_it_back(fitted, demo, monkeypatch):
    """A chunk's products run with BLAS held to one thread (its threads would spin beside
    the feature workers), and the limit ends with the chunk."""
    from threadpoolctl import threadpool_info, threadpool_limits
    det = fitted["logistic"]
    seen = []
    model = det.model_
    real = model.decision_function
    monkeypatch.setattr(model, "decision_function", lambda X: seen.append(
        [m["num_threads"] for m in threadpool_info() if m["user_api"] == "blas"]) or real(X))
    with threadpool_limits(limits=2, user_api="blas"):
        scores, errors = det.score_images(demo[0][:3])
        after = [m["num_threads"] for m in threadpool_info() if m["user_api"] == "blas"]
    assert np.isfinite(scores).all() and not errors
    assert seen and all(n == [1] * len(n) for n in seen)
    assert after and after == [2] * len(after)
