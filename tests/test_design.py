"""The structure the rest is built on: one reading value, one scoring path, a detector of
two fitted steps, no import cycles (issue "One reading value, one scoring path")."""
from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

import ffeat
from ffeat import Detector, Reading, StackedLogistic
from ffeat.models._scoring import CHUNK_ROWS, iter_scored, score_items
from ffeat.reading._sources import Item
from ffeat.cli import main
from ffeat.detector import FeatureClassifier, FeatureExtractor
from ffeat.reading.faces import find_faces

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "ffeat"  # the source tree (CI tests an installed copy)


# ------------------------------------------------------------------ imports

def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path) -> set[str]:
    """The ffeat modules a module imports when it is imported (not inside functions, not
    under ``if TYPE_CHECKING``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # submodules imported
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ffeat"))
    return found


def test_no_module_level_import_cycle_in_the_package():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: {t for t in _top_level_imports(p) if t in modules and t != m}
             for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = path[path.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert "ffeat.cnn_detector" not in graph["ffeat.detector"]


def test_private_scikit_learn_names_are_imported_in_one_module():
    private = re.compile(r"^\s*(from sklearn[\w.]* import [^\n]*\b_\w+"
                         r"|(from|import) sklearn(\.\w+)*\._)", re.M)
    importers = sorted(p.name for p in PACKAGE.rglob("*.py") if private.search(p.read_text()))
    assert importers == ["_sklearn_compat.py"]
    text = (ROOT / "pyproject.toml").read_text()
    assert '"scikit-learn>=1.6,<1.10"' in text


# ------------------------------------------------------------------ the reading value

def test_a_reading_is_frozen_checked_and_replaced():
    reading = Reading(frame=128)
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.frame = 64
    assert reading.replace(faces="auto") == Reading(faces="auto", frame=128)
    assert type(Reading(frame=np.int64(64)).frame) is int
    for bad, match in [({"faces": "on"}, "faces must be one of"),
                       ({"frame": 8}, "frame must be None or a side"),
                       ({"max_pixels": 0}, "max_pixels must be at least 1"),
                       ({"min_size": 2}, "min_size must be at least")]:
        with pytest.raises(ValueError, match=match):
            Reading(**bad)


def test_the_reading_travels_as_one_value_to_every_reader(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (96, 120, 3), dtype=np.uint8) for _ in range(3)]
    reading = Reading(frame=64)
    want = ffeat.extract(images, "gray", reading=reading).X
    got = FeatureExtractor("gray", reading=reading).transform(images)
    np.testing.assert_array_equal(got, want)
    ffeat.extract_to(images, tmp_path / "shards", "gray", reading=reading)
    np.testing.assert_array_equal(ffeat.read_features(tmp_path / "shards").X, want)
    assert not np.array_equal(ffeat.extract(images, "gray").X[:, :4], want[:, :4])


# ------------------------------------------------------------------ the detector's steps

@pytest.fixture(scope="module")
def demo():
    return ffeat.make_demo_set(n_per_class=12, size=64)


def _plain(**params) -> Detector:
    return Detector(("spectrum", "gray"), cache=False, jobs=1, augment=None, calibration=None,
                    band=None, reading=Reading(), **params)


def test_a_fitted_detector_is_its_two_steps(demo):
    det = _plain().fit(*demo)
    assert isinstance(det.features_, FeatureExtractor) and det.features_.reading == Reading()
    assert isinstance(det.classifier_, FeatureClassifier)
    rows = det.features_.transform(demo[0])
    np.testing.assert_allclose(det.classifier_.decision_function(rows),
                               det.decision_function(demo[0]))
    assert [name for name, _ in det.pipeline_.steps] == ["features", "classifier"]


def test_the_classifier_is_given_as_an_estimator(demo, tmp_path):
    by_name = _plain(classifier="stacked", C=0.05).fit(*demo)
    given = _plain(classifier=StackedLogistic(C=0.05)).fit(*demo)
    np.testing.assert_array_equal(given.decision_function(demo[0]),
                                  by_name.decision_function(demo[0]))
    given.save(tmp_path / "given.model")
    by_name.save(tmp_path / "name.model")
    assert (tmp_path / "given.model").read_bytes() == (tmp_path / "name.model").read_bytes()
    loaded = Detector.load(tmp_path / "given.model")
    assert (loaded.classifier, loaded.C) == ("stacked", 0.05)


def test_an_estimator_of_no_saved_kind_or_with_shortcut_settings_is_refused(demo):
    from sklearn.svm import SVC

    with pytest.raises(ValueError, match="SVC is not one ffeat can save and score"):
        _plain(classifier=SVC()).fit(*demo)
    with pytest.raises(ValueError, match="C set the string shortcuts"):
        _plain(classifier=StackedLogistic(), C=1.0).fit(*demo)


# ------------------------------------------------------------------ one scoring path

def test_scoring_memory_is_bounded_in_chunks(demo, monkeypatch):
    det = _plain(classifier="logistic").fit(*demo)
    sizes = []
    model = det.model_

    class Counting:
        kind = model.kind

        def decision_function(self, X):
            sizes.append(len(X))
            return model.decision_function(X)

    det.model_ = Counting()
    images = list(demo[0]) * 8  # 192 images
    records = score_items(det, [Item(im, str(i)) for i, im in enumerate(images)])
    assert len(records) == len(images) and max(sizes) <= CHUNK_ROWS
    assert [r.item.name for r in records] == [str(i) for i in range(len(images))]


def _two_face_photo(astronaut: np.ndarray, rng, noisy_left: bool) -> np.ndarray:
    """The astronaut and her mirror image side by side, one side noisier (scores apart)."""
    two = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    side = (np.arange(two.shape[1]) < 512) == noisy_left
    noise = rng.normal(0, 8, two.shape) * side[None, :, None]
    return np.clip(two + noise, 0, 255).astype(np.uint8)


def test_evaluate_and_the_report_agree_on_two_face_photos(tmp_path, capsys):
    astronaut = data.astronaut()
    rng = np.random.default_rng(3)
    root = tmp_path / "data"
    for cls in ("real", "fake"):
        (root / cls).mkdir(parents=True)
    images, labels = [], []
    for i in range(10):
        photo = _two_face_photo(astronaut, rng, noisy_left=bool(i % 2))
        if i % 3 == 0:  # some photos lighter, so that the classes overlap
            photo = np.clip(photo.astype(int) + 30, 0, 255).astype(np.uint8)
        images.append(photo)
        labels.append(i % 2)
        Image.fromarray(photo).save(root / ("real", "fake")[i % 2] / f"{i}.png")
    det = Detector("hog", "logistic", cache=False, jobs=1, augment=None, calibration=None,
                   band=None, reading=Reading(faces="auto", frame=128)).fit(images, labels)
    model = tmp_path / "faces.model"
    det.save(model)
    records = score_items(det, [Item(im, str(i)) for i, im in enumerate(images)])
    two = [(r, im) for r, im in zip(records, images) if len(r.faces) == 2]
    assert len(two) >= 5  # most photos show both faces
    # the case that split the two paths: the most fake face is not the most certain one
    assert any(r.faces[0].box != find_faces(im)[0] for r, im in two)

    assert main(["evaluate", str(root), "--model", str(model), "--json", "-q",
                 "--no-cache"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(root), "--model", str(model), "--json", "-q", "--no-cache",
                 "--report", str(tmp_path / "report")]) == 0
    reported = json.loads(capsys.readouterr().out)
    assert reported == plain
    keys = ("roc_auc", "average_precision", "eer", "brier", "ece")
    assert all(plain[k] is not None for k in keys)
    saved = json.loads((tmp_path / "report" / "report.json").read_text())["metrics"]
    assert {k: saved[k] for k in keys} == pytest.approx({k: plain[k] for k in keys})


def test_iter_scored_keeps_the_scored_face_row(demo):
    det = _plain(classifier="logistic").fit(*demo)
    (record,) = iter_scored(det, [Item(demo[0][0], "a")], keep_rows=True)
    np.testing.assert_array_equal(record.row, det.features_.transform(demo[0][:1])[0])
    assert record.faces is None and record.error is None
