"""Tests of ``ffeat.reading.faces``: finding faces (scikit-image's cascade) and the canonical
frame, on scikit-image's astronaut photograph (no shared data needed)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from ffeat.reading.faces import (FRAME_SIZE, FRAMED, NoFaceError, face_crops, find_faces, frame,
                         frame_overlap)

#: The astronaut's face in scikit-image's 512 px photograph (x, y, w, h), by eye.
ASTRONAUT_FACE = (175, 65, 100, 100)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def _centre(box) -> np.ndarray:
    x, y, w, h = box
    return np.array([x + w / 2, y + h / 2])


def test_the_astronaut_has_one_face_where_it_is(astronaut):
    boxes = find_faces(astronaut)
    assert len(boxes) == 1
    assert np.abs(_centre(boxes[0]) - _centre(ASTRONAUT_FACE)).max() < 15
    assert 0.8 < boxes[0][2] / ASTRONAUT_FACE[2] < 1.25


@pytest.mark.parametrize("rgb", [np.full((300, 400, 3), 128, np.uint8),
                                 np.zeros((64, 64, 3), np.uint8)], ids=["flat", "black"])
def test_no_face_in_an_empty_image(rgb):
    assert find_faces(rgb) == []


def test_a_pasted_face_is_found_where_it_was_pasted(astronaut):
    face = frame(astronaut, find_faces(astronaut)[0], size=200)
    canvas = np.full((700, 900, 3), 90, np.uint8)
    canvas[400:600, 550:750] = face
    boxes = find_faces(canvas)
    assert boxes, "the pasted face was not found"
    assert np.abs(_centre(boxes[0]) - (650, 500)).max() < 25


def test_the_frame_of_a_framed_face_is_nearly_itself(astronaut):
    framed = frame(astronaut, find_faces(astronaut)[0])
    assert framed.shape == (FRAME_SIZE, FRAME_SIZE, 3) and framed.dtype == np.uint8
    assert frame_overlap(find_faces(framed)[0], framed.shape) >= FRAMED
    ((_, crop, _),) = face_crops(framed, "crop")
    assert crop is framed  # already framed: used as it is, not resampled


def test_the_frame_comes_from_the_full_resolution_pixels(astronaut):
    box = find_faces(astronaut)[0]
    small = frame(astronaut, box, size=box[2] // 2)
    big = frame(astronaut, box, size=4 * box[2])
    small_then_big = np.asarray(Image.fromarray(small).resize(big.shape[:2], Image.LANCZOS))
    sharp = np.abs(np.diff(big.astype(int), axis=1)).mean()
    assert sharp > 1.3 * np.abs(np.diff(small_then_big.astype(int), axis=1)).mean()
    assert big.shape == (4 * box[2],) * 2 + (3,)


def test_a_frame_past_the_border_repeats_the_edge():
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[:, :50] = 200
    out = frame(rgb, (-20, 10, 40, 40), size=56)
    assert out.shape == (56, 56, 3)
    assert (out[:, :10] == 200).all()


def test_policies(astronaut):
    flat = np.full((128, 128, 3), 128, np.uint8)
    ((box, crop, quad),) = face_crops(astronaut, "off")
    assert box is None and crop is astronaut and quad is None
    ((box, crop, quad),) = face_crops(astronaut, "crop")
    assert box is not None and crop.shape == (FRAME_SIZE, FRAME_SIZE, 3) and quad is None
    ((box, crop, _),) = face_crops(flat, "auto")
    assert box is None and crop is flat
    with pytest.raises(NoFaceError, match="no face found.*faces='auto'"):
        face_crops(flat, "crop")
    with pytest.raises(ValueError, match="faces must be one of 'off', 'crop', 'auto'"):
        face_crops(flat, "on")


# -- the policies in the Detector, the model file and the commands ---------------------------

def _faces_set(astronaut) -> tuple[list[np.ndarray], np.ndarray]:
    """Eight 200 px images with the astronaut's face at several places (fake: noisier)."""
    face = frame(astronaut, find_faces(astronaut)[0], size=120)
    rng = np.random.default_rng(0)
    images, labels = [], []
    for i in range(8):
        canvas = np.full((200, 200, 3), 60 + 10 * i, np.uint8)
        r, c = rng.integers(0, 80, size=2)
        canvas[r:r + 120, c:c + 120] = face
        if i % 2:
            canvas = np.clip(canvas + rng.normal(0, 8, canvas.shape), 0, 255).astype(np.uint8)
        images.append(canvas)
        labels.append(i % 2)
    return images, np.array(labels)


@pytest.fixture(scope="module")
def face_model(astronaut, tmp_path_factory):
    import ffeat

    images, labels = _faces_set(astronaut)
    detector = ffeat.Detector(features="hog", classifier="logistic", cache=False,
                              reading=ffeat.Reading(faces="crop", frame=256),
                              jobs=1).fit(images, labels)
    path = tmp_path_factory.mktemp("model") / "faces.npz"
    detector.save(path)
    return detector, path


def test_the_face_policy_is_a_validated_parameter():
    import ffeat
    from sklearn.utils._param_validation import InvalidParameterError

    images, labels = ffeat.make_demo_set(n_per_class=2, size=64)
    with pytest.raises(ValueError, match="faces must be one of"):
        ffeat.Reading(faces="on")
    with pytest.raises(ValueError, match="faces must be one of"):
        ffeat.Reading(faces=True)
    with pytest.raises(InvalidParameterError, match="'reading' parameter"):
        ffeat.Detector(reading="crop", cache=False).fit(images, labels)
    with pytest.raises(InvalidParameterError, match="'reading' parameter"):
        ffeat.FeatureExtractor(reading={"faces": "crop"}).transform(images)


def test_crop_scores_the_most_fake_face_and_saves_the_policy(face_model, astronaut):
    import ffeat
    from ffeat.models._scoring import score_items
    from ffeat._base import image_items

    detector, path = face_model
    loaded = ffeat.Detector.load(path)
    assert loaded.reading.faces == "crop"
    two = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)  # two faces, side by side
    left = (np.arange(two.shape[1]) < 512)[None, :, None]  # two faces that score apart
    noise = np.random.default_rng(1).normal(0, 8, two.shape) * left
    noisy = np.clip(two + noise, 0, 255).astype(np.uint8)
    (record,) = score_items(loaded, image_items([noisy]))
    boxes = [f.box for f in record.faces]
    assert record.error is None and len(boxes) == 2
    crops = {f.box: f.crop for f in face_crops(noisy, "crop")}
    each = loaded.set_params(reading=loaded.reading.replace(faces="off")).decision_function(
        [crops[b] for b in boxes])
    assert record.log_odds == pytest.approx(each.max()) and each[0] >= each[1]
    assert [f.log_odds for f in record.faces] == pytest.approx(list(each))
    assert {b[0] < 512 for b in boxes} == {True, False}  # one face on each side


def test_no_face_is_an_error_under_crop_and_the_whole_image_under_auto(face_model):
    detector, _ = face_model
    flat = np.full((128, 128, 3), 128, np.uint8)
    scores, errors = detector.score_images([flat])
    assert np.isnan(scores[0]) and "no face found" in errors[0].reason
    detector = detector.__class__.load(face_model[1])
    detector.set_params(reading=detector.reading.replace(faces="auto"))
    scores, errors = detector.score_images([flat])
    assert not errors and np.isfinite(scores[0])


def test_predict_rows_carry_the_boxes(face_model, astronaut, tmp_path, capsys):
    import csv
    import io
    import json

    from ffeat.cli import main

    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    Image.fromarray(np.full((128, 128, 3), 128, np.uint8)).save(tmp_path / "flat.png")
    files = [str(tmp_path / "astronaut.png"), str(tmp_path / "flat.png")]
    assert main(["predict", "--model", str(face_model[1]), *files, "--format", "csv", "-q"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    x, y, w, h = find_faces(astronaut)[0]
    assert rows[0]["x"] == str(x) and rows[0]["w"] == str(w) and rows[0]["faces"] == \
        f"{x},{y},{w},{h}"
    assert rows[1]["prob_fake"] == "" and rows[1]["error"].startswith("no face found")
    assert main(["predict", "--model", str(face_model[1]), *files, "--format", "json", "-q",
                 "--faces", "auto"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["faces"] == [[x, y, w, h]]
    assert rows[1]["faces"] == [] and rows[1]["x"] is None and rows[1]["error"] is None
    out = tmp_path / "rows.csv"
    assert main(["predict", "--model", str(face_model[1]), *files, "-o", str(out), "-q"]) == 0
    rows = list(csv.DictReader(out.open(newline="")))
    assert rows[0]["faces"] == f"{x},{y},{w},{h}" and "no face" in rows[1]["error"]


def test_extract_takes_the_most_certain_face_or_records_none(astronaut, tmp_path):
    import ffeat
    from ffeat.cli import main

    flat = np.full((100, 100, 3), 100, np.uint8)
    result = ffeat.extract([astronaut, flat], features="hog",
                           reading=ffeat.Reading(faces="crop"), jobs=1)
    assert len(result.X) == 1 and "no face found" in result.errors[0].reason
    framed = frame(astronaut, find_faces(astronaut)[0])
    np.testing.assert_array_equal(result.X[0], ffeat.extract([framed], features="hog").X[0])
    assert len(ffeat.extract([astronaut, flat], features="hog",
                             reading=ffeat.Reading(faces="auto")).X) == 2
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    assert main(["extract", str(tmp_path / "a.png"), "-o", f"{tmp_path / 'shards'}/",
                 "--features", "hog", "--faces", "crop", "-q", "--no-cache"]) == 0
    np.testing.assert_array_equal(ffeat.read_features(tmp_path / "shards").X, result.X)


def test_the_report_draws_the_boxes_and_counts_faces_per_class(face_model, astronaut,
                                                               tmp_path):
    pytest.importorskip("matplotlib")
    import ffeat

    images, labels = _faces_set(astronaut)
    flat = np.full((200, 200, 3), 128, np.uint8)
    detector = ffeat.Detector.load(face_model[1]).set_params(jobs=1, cache=False)
    report = ffeat.write_report(detector, [*images, flat], tmp_path / "r",
                                labels=[*labels, 1], gallery_size=2, n_maps=0)
    assert report.summary["dataset"]["faces_found"] == {
        "0": {"found": 4, "images": 4}, "1": {"found": 4, "images": 5}}
    assert "Faces found" in report.path.read_text()
    red = []
    for path in sorted((tmp_path / "r" / "thumbs").glob("*.jpg")):
        thumb = np.asarray(Image.open(path)).astype(int)
        red.append(((thumb[..., 0] > 200) & (thumb[..., 1] < 90) & (thumb[..., 2] < 90)).sum())
    assert max(red) > 150, red  # a face's box, drawn in red (none in the images)


def test_the_faces_benchmark_skips_without_data_and_times_in_quick_mode(tmp_path, monkeypatch,
                                                                       capsys):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    monkeypatch.setenv("FFEAT_FACES", str(tmp_path))
    monkeypatch.setenv("FFEAT_BENCH_QUICK", "1")
    from benchmarks import faces

    assert faces.main([]) == 2
    assert "FFEAT_FACES" in capsys.readouterr().err
    cost = faces.measure_cost(2)
    assert set(cost) == {"find_256", "find_256_cpu", "features_256"}
    assert min(cost.values()) > 0


def test_the_faces_benchmark_controls_destroy_faces_and_misframe_as_asked(astronaut,
                                                                         monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from benchmarks import faces

    rng = np.random.default_rng(0)
    scrambled = faces._scrambled(astronaut, rng)
    assert scrambled.shape == astronaut.shape and not np.array_equal(scrambled, astronaut)
    assert np.array_equal(np.sort(scrambled, axis=None), np.sort(astronaut, axis=None))
    square = (100, 40, 256)
    exact = faces._misframed(astronaut, square, 0.0, 0.0, rng)
    assert np.abs(exact.astype(int) - astronaut[40:296, 100:356]).max() <= 1
    moved = faces._misframed(astronaut, square, 0.05, 0.05, rng)
    assert np.abs(moved.astype(int) - exact).mean() > 5
    photos = faces._non_faces()
    assert len(photos) == len(faces.NON_FACES)
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in photos)


def test_a_crowd_gives_at_most_max_faces(astronaut, monkeypatch):
    import ffeat.reading.faces

    face = frame(astronaut, find_faces(astronaut)[0], size=100)
    crowd = np.tile(face, (3, 3, 1))  # nine faces
    assert len(find_faces(crowd)) >= 4
    monkeypatch.setattr(ffeat.reading.faces, "MAX_FACES", 2)
    assert len(find_faces(crowd)) == 2
