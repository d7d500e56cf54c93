"""The reading engine, its one error list, the one .npz writer and the package's boundaries."""
from __future__ import annotations

import ast
import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

import ffeat
from ffeat import Detector
from ffeat.running._featurefile import save_extraction
from ffeat.reading._rows import ImageError, feature_rows
from ffeat.models._scoring import score_items, scores_and_errors
from ffeat.reading._sources import expand_inputs
from ffeat.reading.dataset import labelled_images
from ffeat.evaluation import call_metrics
from ffeat.features import resolve_features
from conftest import WHOLE

N, SIZE = 6, 48
pytestmark = pytest.mark.usefixtures("one_openmp_thread")
SRC = Path(ffeat.__file__).parent


@pytest.fixture(scope="module")
def small(demo):
    images, labels = demo
    return Detector(features="gray", classifier="logistic", cache=False, jobs=1, reading=WHOLE
                    ).fit(images, labels)


class _NanForRow:
    """A feature model that gives no number (NaN) for rows whose first column is ``value``."""

    kind = "logistic"

    def __init__(self, model, value: float) -> None:
        self.model, self.value = model, value

    def decision_function(self, F):
        out = self.model.decision_function(F)
        out[F[:, 0] == self.value] = np.nan
        return out


def test_a_read_image_without_a_score_gets_its_record_in_input_order(small, demo, tmp_path):
    images, _ = demo
    items = expand_inputs([images[0], str(tmp_path / "missing.png"), images[1]])
    detector = Detector.load(_saved(small)).set_params(jobs=1, cache=False)
    first = feature_rows(items[:1], resolve_features("gray"), detector.reading)[0][0, 0]
    detector.model_ = _NanForRow(detector.model_, first)
    scores, errors = scores_and_errors(score_items(detector, items))
    assert np.isnan(scores[:2]).all() and np.isfinite(scores[2])
    assert [e.source for e in errors] == [items[0].name, items[1].name]
    assert "no score" in errors[0].reason and "no such file" in errors[1].reason


def test_feature_rows_are_nan_exactly_where_an_error_is_listed(demo, tmp_path):
    images, _ = demo
    items = expand_inputs([images[0], str(tmp_path / "missing.png"), images[1]])
    F, errors = feature_rows(items, resolve_features("gray"), jobs=1)
    assert isinstance(errors, list) and errors == [ImageError(items[1].name, errors[0].reason)]
    assert np.isnan(F).any(axis=1).tolist() == [False, True, False]


def _saved(detector) -> io.BytesIO:
    buffer = io.BytesIO()
    detector.save(buffer)
    buffer.seek(0)
    return buffer


def test_a_model_file_object_round_trips_and_its_bytes_are_reproducible(small, demo, tmp_path):
    first, second = _saved(small).getvalue(), _saved(small).getvalue()
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    small.save(tmp_path / "m.model")
    assert (tmp_path / "m.model").read_bytes() == first
    images, _ = demo
    loaded = Detector.load(io.BytesIO(first))
    np.testing.assert_array_equal(loaded.decision_function(images[:4]),
                                  small.decision_function(images[:4]))


def test_a_damaged_model_file_object_is_refused_by_name(small):
    data = bytearray(_saved(small).getvalue())
    with pytest.raises(ffeat.ModelFileError, match="truncated or damaged"):
        Detector.load(io.BytesIO(bytes(data[:len(data) // 2])))


def test_feature_files_come_from_the_same_writer(demo, tmp_path):
    images, _ = demo
    result = ffeat.extract(images[:2], "gray", jobs=1)
    save_extraction(tmp_path / "f.npz", result, resolve_features("gray"))
    with zipfile.ZipFile(tmp_path / "f.npz") as archive:
        names = [i.filename for i in archive.infolist()]
    assert names == sorted(names)


def test_fit_and_evaluate_read_images_and_labels_through_one_parser(small, demo):
    images, _ = demo
    with pytest.raises(ValueError, match=r"must be 0 \(real\) or 1 \(fake\); got values \[2\]"):
        ffeat.evaluate(small, images[:2], [0, 2])
    with pytest.raises(ValueError, match=r"got 2 images but labels of shape \(3,\)"):
        Detector().fit(images[:2], [0, 1, 1])
    got, labels = labelled_images(images[:2], np.array([1, 0]), name="X")
    assert len(got) == 2 and labels.dtype == np.int64


def _private_imports(path: Path) -> list[str]:
    """``from .module import _name`` lines of ``path`` whose ``_name`` is not a module."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        where = f"{base}.{node.module}" if node.module else base
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__") \
                    and importlib.util.find_spec(f"{where}.{alias.name}") is None:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {alias.name}")
    return found


def test_no_private_name_is_imported_from_another_module():
    assert [hit for p in sorted(SRC.rglob("*.py")) for hit in _private_imports(p)] == []


def test_call_metrics_are_scikit_learns():
    y = np.array([0, 0, 1, 1, 1, 0])
    called = np.array([0, 1, 1, 0, 1, 0], dtype=bool)
    got = call_metrics(y, called)
    assert got["accuracy"] == skm.accuracy_score(y, called)
    assert got["f1"] == skm.f1_score(y, called)
    assert (got["fpr"], got["fnr"]) == (1 / 3, 1 / 3)
    assert got["confusion_matrix"] == [[2, 1], [1, 2]]
    assert call_metrics(y[:0], called[:0])["accuracy"] is None
