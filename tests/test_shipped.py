"""The detector shipped with ffeat: package data, ``Detector.default()``, ``--model`` on
the commands that read a model (and the form before it), ``ffeat model`` and the model
card, and (marked slow, not run by CI) ``benchmarks/train_default.py --check``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ffeat
from ffeat.models import _shipped
from ffeat.cli import main
from conftest import WHOLE

N, SIZE = 4, 64
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_openmp_thread")


@pytest.fixture(scope="module")
def user_model(demo, tmp_path_factory):
    """A user's own small model (no card), and the detector it holds."""
    images, labels = demo
    detector = ffeat.Detector(features=("gray",), cache=False, reading=WHOLE).fit(images, labels)
    path = tmp_path_factory.mktemp("user") / "user.model"
    detector.save(path)
    return path, detector


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory):
    """Four JPEGs of scikit-image's astronaut (as given, mirrored, cropped, shrunk) under
    real/ and fake/: images with a face, which the shipped detector aligns."""
    from PIL import Image
    from skimage import data

    rgb = data.astronaut()
    variants = [rgb, rgb[:, ::-1], rgb[20:460, 40:480],
                np.asarray(Image.fromarray(rgb).resize((400, 400)))]
    root = tmp_path_factory.mktemp("faces")
    for i, im in enumerate(variants):
        path = root / ("real" if i < 2 else "fake") / f"astronaut-{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.ascontiguousarray(im)).save(path, quality=90)
    return root


@pytest.fixture(scope="module")
def images(faces_dir):
    """Two face JPEGs, a "real" one and a "fake" one."""
    return [str(faces_dir / "real" / "astronaut-0.jpg"),
            str(faces_dir / "fake" / "astronaut-3.jpg")]


def _json(capsys, *argv) -> tuple[int, object, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, json.loads(out) if status == 0 else None, err


def _probs(rows) -> list[float]:
    return [r["prob_fake"] for r in rows]


# -- the shipped model -----------------------------------------------------------------------

def test_default_detector_aligns_faces_and_refuses_images_without_one(demo, images):
    detector = ffeat.Detector.default()
    assert detector.reading == ffeat.Reading(faces="align", frame=256)
    proba = detector.predict_proba(images)
    assert proba.shape == (len(images), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    (record,) = detector.score_records(demo[0][:1])  # a synthetic texture: no face
    assert record.error is not None and record.error.reason.startswith("no face found")
    assert np.ptp(proba[:, 1]) > 0  # the scores depend on the image


def test_shipped_model_is_package_data_with_its_card():
    path = _shipped.model_path()
    assert path.parent.name == "models" and path.is_file()
    assert path.stat().st_size < 5 << 20
    detector = ffeat.load_detector()  # no argument: the shipped one
    assert isinstance(detector, ffeat.Detector)
    assert detector.training_ == ffeat.Detector.default().training_
    card = _shipped.read_card(path, detector)
    assert card is not None and card["sources"] and "non-commercial" in card["terms"]


def test_meson_installs_the_models_folder():
    """``install_subdir('src/ffeat')`` installs everything below it, models/ included (no
    exclusion of the folder or of .model/.json files)."""
    build = (ROOT / "meson.build").read_text()
    assert "install_subdir('src/ffeat'" in build and "exclude" not in build


# -- --model on predict and evaluate ---------------------------------------------------------

def test_predict_without_model_uses_the_shipped_detector(images, capsys):
    status, rows, _ = _json(capsys, "predict", *images, "--format", "json", "-q")
    assert status == 0 and [r["path"] for r in rows] == images
    expected = ffeat.Detector.default().predict_proba(images)[:, 1]
    np.testing.assert_allclose(_probs(rows), expected, rtol=1e-6)


def test_predict_with_the_shipped_detector_loads_no_scikit_learn(images):
    """The shipped model scores as any saved model does: plain arrays, a fast start."""
    code = (f"import sys\nfrom ffeat.cli import main\n"
            f"assert main(['predict', {images[0]!r}, '-q']) == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_predict_model_option_scores_with_that_model(user_model, images, capsys):
    path, detector = user_model
    status, rows, err = _json(capsys, "predict", *images, "--model", str(path),
                              "--format", "json", "-q")
    assert status == 0 and err == ""
    np.testing.assert_allclose(_probs(rows), detector.predict_proba(images)[:, 1], rtol=1e-6)


def test_a_model_file_where_images_go_is_an_input_like_any_other(user_model, images,
                                                                   capsys):
    """The positional MODEL form of 0.x is gone: nothing sniffs an input to guess."""
    path = str(user_model[0])
    status, rows, err = _json(capsys, "predict", path, *images, "--format", "json", "-q")
    assert status == 0 and [r["path"] for r in rows] == [path, *images]
    assert rows[0]["prob_fake"] is None and rows[0]["error"]  # not an image
    assert all(r["error"] is None for r in rows[1:]) and "deprecated" not in err


def test_a_zip_that_is_not_a_model_is_an_input_like_any_other(tmp_path, images, capsys):
    import zipfile
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.txt", "not a model")
    status, rows, err = _json(capsys, "predict", str(archive), images[0], "--format", "json",
                              "-q")
    assert status == 0 and [r["path"] for r in rows] == [str(archive), images[0]]
    assert rows[0]["error"] and "deprecated" not in err


def test_predict_output_counts_the_model_as_an_input(user_model, images, tmp_path, capsys):
    model = tmp_path / "model.csv"  # a model file named like the output
    shutil.copy(user_model[0], model)
    for argv in (["--model", str(model), *images], [str(model), *images]):
        assert main(["predict", *argv, "--output", str(model), "-q"]) == 2
        assert f"output {model} is the input {model}" in capsys.readouterr().err
    assert model.read_bytes() == user_model[0].read_bytes()


def test_evaluate_takes_the_model_option_and_the_shipped_default(user_model, faces_dir,
                                                                  capsys):
    path, _ = user_model
    status, named, err = _json(capsys, "evaluate", str(faces_dir), "--model", str(path),
                               "--json", "-q")
    assert status == 0 and err == ""
    status, shipped, _ = _json(capsys, "evaluate", str(faces_dir), "--json", "-q")
    assert status == 0 and shipped["n_real"] == shipped["n_fake"] == 2
    assert shipped != named  # another model scored
    with pytest.raises(SystemExit) as info:  # the positional MODEL form is gone
        main(["evaluate", str(path), str(faces_dir), "--json"])
    assert info.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


# -- ffeat model -----------------------------------------------------------------------------

def test_model_prints_the_shipped_card(capsys):
    assert main(["model"]) == 0
    out = capsys.readouterr().out
    for text in ("(the detector shipped with ffeat)", "classifier", "training sources",
                 "known blind spots", "terms", "non-commercial use only",
                 "inconclusive band", "experts (the training sources of their fakes)",
                 "  gan             stylegan1, stylegan2, hq-fake, boredhumans (",
                 "  diffusion       sd21 (", "controls, ffhq: framed 0.5x="):
        assert text in out
    status, described, _ = _json(capsys, "model", "--json")
    assert status == 0 and described["shipped"] is True
    assert described["card"]["detector"] == described["detector"]
    assert described["sha256"] == _shipped.file_sha256(_shipped.model_path())


def test_model_of_a_user_model_prints_its_metadata(user_model, capsys):
    path, detector = user_model
    assert main(["model", "--model", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{N:,} real, {N:,} fake images read" in out and "gray(size=32)" in out
    assert "no model card" in out and "not measured" in out
    status, described, _ = _json(capsys, "model", "--model", str(path), "--json")
    assert described["card"] is None and described["shipped"] is False
    assert described["detector"]["training"]["n_real"] == N
    assert described["detector"]["classifier"] == detector.classifier


def test_model_refuses_a_file_that_is_not_a_model(tmp_path, capsys):
    bad = tmp_path / "x.model"
    bad.write_text("hello")
    assert main(["model", "--model", str(bad)]) == 2
    assert f"{bad}: not an ffeat model file" in capsys.readouterr().err


def _resealed(edit):
    """A tamper that edits the card and sets its checksum again, as a deliberate edit would."""
    def tamper(card: dict) -> dict:
        edit(card)
        return _shipped.seal_card(card)
    return tamper


@pytest.mark.parametrize("tamper, reason", [
    (lambda c: "not json {", "it is not JSON"),
    (lambda c: " " * (_shipped.MAX_CARD_BYTES + 1), "it is larger than the"),
    (lambda c: [c], "the card is not an object"),
    (lambda c: {**c, "extra": 1}, "the card holds the unknown key 'extra'"),
    (lambda c: {**c, "band": {"low": 0.3, "high": 1.5}},
     "the card.band.high is 1.5, not a number in [0, 1]"),
    (lambda c: {**c, "terms": "free for any use"}, "it was modified after it was written"),
    (_resealed(lambda c: c["detector"].update(threshold=0.1)),
     "its detector section differs from what the model file says"),
    (_resealed(lambda c: c["sources"][0].update(count=c["sources"][0]["count"] + 1)),
     "its sources hold"),
    (_resealed(lambda c: c["experts"].pop()), "its experts differ from the model's"),
    (_resealed(lambda c: c["protocol"]["per_source"][0]["controls"].update(x=2)),
     "the card.protocol.per_source[0].controls.x is 2, not a number in [0, 1]"),
])
def test_tampered_card_is_refused(tmp_path, capsys, tamper, reason):
    model = tmp_path / "default.model"
    shutil.copy(_shipped.model_path(), model)
    changed = tamper(json.loads(_shipped.card_path(_shipped.model_path()).read_text()))
    text = changed if isinstance(changed, str) else json.dumps(changed)
    _shipped.card_path(model).write_text(text)
    assert main(["model", "--model", str(model)]) == 1
    err = capsys.readouterr().err
    assert f"{_shipped.card_path(model)}: model card refused: {reason}" in err
    assert "train_default.py" in err


def test_a_card_for_another_model_is_refused(user_model, tmp_path, capsys):
    model = tmp_path / "user.model"
    shutil.copy(user_model[0], model)
    shutil.copy(_shipped.card_path(_shipped.model_path()), _shipped.card_path(model))
    assert main(["model", "--model", str(model)]) == 1
    assert "written for another model file" in capsys.readouterr().err


# -- benchmarks/train_default.py -------------------------------------------------------------

def _script():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import train_default
    finally:
        sys.path.remove(str(ROOT))
    return train_default


def test_training_script_card_takes_the_protocol_figures(user_model, tmp_path, capsys):
    path, detector = user_model
    model = tmp_path / "mine.model"
    shutil.copy(path, model)
    held_out = {"rows": [{"source": "stylegan1", "label": "fake", "n": 400, "recall": 0.97,
                          "called_fake": 0.93, "auc": 0.99, "attribution": 0.88,
                          "controls": {"framed 1.5x": 0.42}},
                         {"source": "sd21", "label": "fake", "n": 250, "recall": 0.5},
                         {"source": "unsplash", "label": "real", "n": 125, "fpr": 0.015}],
                "calibration": {"brier": 0.083, "ece": 0.021}}
    protocol = {"sources": {"stylegan1": {"role": "fake", "n_test": 400, "recall": 0.9,
                                          "auc": 0.99, "loso": {"recall": 0.91}},
                            "sd21": {"role": "fake", "n_test": 250, "recall": 0.5,
                                     "auc": 0.8, "loso": None},
                            "unsplash": {"role": "real", "n_test": 125, "fpr": 0.015,
                                         "auc": 0.9}},
                "cv_140k": {"auc": 0.951, "accuracy": 0.9}}
    script = _script()
    sources = [{"name": "ffhq", "label": "real", "count": N},
               {"name": "stylegan1", "label": "fake", "count": N}]
    card = script.card(detector, sources, model, held_out, protocol)
    _shipped.card_path(model).write_text(json.dumps(card))
    assert main(["model", "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "0.97" in out and "0.91" in out and "0.015" in out and "140k 5-fold AUC: 0.951" in out
    assert "0.93" in out and "0.88" in out and "controls, stylegan1: framed 1.5x=0.42" in out
    assert "sd21 recall: 0.5" in out and "worst control shift" not in out  # None: left out
    assert "0.021" in out and "non-commercial use only" in out
    # without held-out figures: no per-source rows, calibration not measured
    bare = script.card(detector, sources, model, None, None)
    assert "protocol" not in bare and "calibration" not in bare and "band" in bare


def test_training_script_scores_the_controls_on_copies(user_model, demo, tmp_path):
    from PIL import Image

    _, detector = user_model
    paths = []
    for i, im in enumerate(demo[0][:4]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(im).save(paths[-1])
    script = _script()
    rates = script.control_rates(detector, paths, ["a", "a", "b", "b"])
    assert list(rates) == ["a", "b"]
    for name, rows in (("a", paths[:2]), ("b", paths[2:])):
        assert list(rates[name]) == list(script.CONTROLS)
        for label, make in script.CONTROLS.items():  # the copies, scored apart
            p = detector.predict_proba([make(str(q), str(q)) for q in rows])[:, 1]
            assert rates[name][label] == np.mean(p >= detector.threshold), (name, label)


@pytest.mark.slow
def test_train_default_reproduces_the_shipped_model():
    """Retrains on ../shared/faces (about two minutes): the same bytes as shipped."""
    script = _script()
    if script._data.faces_dir("140k") is None:
        pytest.skip("the real face sets are absent")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_default.py"),
                             "--check"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "byte for byte" in result.stderr
