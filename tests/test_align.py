"""Tests of ``ffeat.reading.align``: FFHQ's quad from landmarks, its crop, and the ``"align"``
face policy. The quad and warp tests need neither dlib nor data; those that find faces
skip without dlib, and those on the shared faces skip without them."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from ffeat.reading import align
from ffeat.reading.faces import FACE_POLICIES, NoFaceError, face_crops

FACES = Path(os.environ.get("FFEAT_FACES",
                            Path(__file__).resolve().parents[2] / "shared" / "faces"))

#: Eye centres and mouth corners of an upright face: eyes one unit apart, mouth one
#: unit under them, 0.8 wide.
UPRIGHT = np.array([[-0.5, 0.0], [0.5, 0.0], [-0.4, 1.0], [0.4, 1.0]])


def _similar(points: np.ndarray, angle: float, scale: float, shift) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ (scale * np.array([[c, s], [-s, c]])) + np.asarray(shift, float)


def test_the_quad_of_an_upright_face_by_hand():
    # axis = eye line + perpendicular of eye-mouth line = (2, 0), scaled to max(2 * 1, 1.8 * 1)
    # = 2; perpendicular (0, 2); centre a tenth of the way to the mouth.
    expected = [[-2.0, -1.9], [-2.0, 2.1], [2.0, 2.1], [2.0, -1.9]]
    np.testing.assert_allclose(align.ffhq_quad(UPRIGHT), expected, atol=1e-12)


@pytest.mark.parametrize("angle, scale, shift", [(0.0, 1.0, (0, 0)), (0.3, 1.0, (0, 0)),
                                                 (-1.2, 1.0, (0, 0)), (0.0, 37.5, (0, 0)),
                                                 (0.0, 1.0, (120.5, -33)),
                                                 (2.5, 0.02, (-7, 4000.25))])
def test_the_quad_moves_turns_and_scales_with_the_face(angle, scale, shift):
    quad = align.ffhq_quad(_similar(UPRIGHT, angle, scale, shift))
    np.testing.assert_allclose(quad, _similar(align.ffhq_quad(UPRIGHT), angle, scale, shift),
                               rtol=1e-10, atol=1e-9 * max(1.0, scale))


def test_the_quad_takes_the_larger_of_the_eye_and_mouth_distances():
    long_face = UPRIGHT * [1.0, 2.0]  # eyes to mouth 2: 1.8 * 2 = 3.6 > 2 * 1
    side = np.hypot(*(align.ffhq_quad(long_face)[3] - align.ffhq_quad(long_face)[0]))
    assert side == pytest.approx(2 * 3.6)


def test_the_ffhq_points_of_68_landmarks():
    lm = np.zeros((68, 2))
    lm[36:42] = [10, 20]
    lm[42:48] = [30, 20]
    lm[48], lm[54] = [12, 40], [28, 40]
    np.testing.assert_array_equal(align.ffhq_points(lm), [[10, 20], [30, 20], [12, 40], [28, 40]])


def test_aligned_error_is_zero_when_the_quad_is_the_image():
    quad = np.array([[0, 0], [0, 256], [256, 256], [256, 0]], float)
    assert align.aligned_error(quad, (256, 256, 3)) == 0.0
    assert align.aligned_error(quad + [5.12, 0], (256, 256, 3)) == pytest.approx(0.02)


def test_plausible_accepts_a_face_and_refuses_other_shapes():
    box = (0, 0, 2, 2)  # eye distance half the box
    assert align.plausible(UPRIGHT, box)
    assert align.plausible(_similar(UPRIGHT, 0.5, 30.0, (100, 100)), (80, 80, 60, 60))
    assert not align.plausible(UPRIGHT * [1, -1], box)          # mouth above the eyes
    assert not align.plausible(UPRIGHT * [1, 3], box)           # mouth far below
    assert not align.plausible(UPRIGHT, (0, 0, 10, 10))         # eyes tiny in the box
    assert not align.plausible(UPRIGHT + [[0, 0], [0, 0], [0.9, 0], [0.9, 0]], box)  # aside


def _pattern(size: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (size // 10, size // 10, 3), dtype=np.uint8)
    return np.kron(small, np.ones((10, 10, 1), np.uint8))


def test_the_warp_of_a_square_inside_is_that_square():
    rgb = _pattern()
    quad = np.array([[20, 20], [20, 180], [180, 180], [180, 20]], float)
    crop, padded = align.warp(rgb, quad, 160)
    assert not padded and crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    inner = np.abs(crop.astype(int) - rgb[20:180, 20:180]).mean()
    assert inner < 6  # only the blocks' edges are softened


def test_the_warp_turns_with_the_quad():
    rgb = _pattern()
    # The quad turned a quarter: its top left is the image's top right.
    quad = np.array([[180, 20], [20, 20], [20, 180], [180, 180]], float)
    crop, _ = align.warp(rgb, quad, 160)
    turned = np.rot90(rgb[20:180, 20:180], k=1)  # the top right corner comes to the top left
    assert np.abs(crop.astype(int) - turned).mean() < 6


def test_a_quad_leaving_the_image_is_padded_by_reflection_not_black():
    rgb = np.full((200, 200, 3), 180, np.uint8)
    quad = np.array([[-100, -100], [-100, 150], [150, 150], [150, -100]], float)
    crop, padded = align.warp(rgb, quad, 128)
    assert padded and crop.shape == (128, 128, 3)
    assert crop.min() >= 170  # no black fill where the quad leaves the image
    inside = np.array([[20, 20], [20, 180], [180, 180], [180, 20]], float)
    assert not align.warp(rgb, inside, 128)[1]


def test_a_quad_at_the_edge_is_not_blurred():
    rgb = _pattern()
    flush = np.array([[0, 0], [0, 160], [160, 160], [160, 0]], float)
    crop, padded = align.warp(rgb, flush, 160)
    assert not padded
    assert np.abs(crop.astype(int) - rgb[:160, :160]).mean() < 6  # as the image, sharp
    ffhq, padded = align.warp(rgb, flush, 160, slack=None)
    assert padded and np.abs(ffhq[:8].astype(int) - rgb[:8, :160]).mean() > 10  # blurred


def test_a_large_quad_is_shrunk_before_resampling():
    rgb = _pattern(2000)
    quad = np.array([[0, 0], [0, 2000], [2000, 2000], [2000, 0]], float)
    t = time.process_time()
    crop, _ = align.warp(rgb, quad, 64)
    assert crop.shape == (64, 64, 3)
    assert time.process_time() - t < 1.0


def test_the_align_policy_is_offered():
    assert "align" in FACE_POLICIES


# --- with dlib --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dlib():
    return pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


def test_the_astronaut_is_found_and_aligned(dlib, astronaut):
    (face,) = align.aligned_faces(astronaut, 256)
    x, y, w, h = face.box
    assert 150 < x + w / 2 < 260 and 60 < y + h / 2 < 180
    assert face.crop.shape == (256, 256, 3) and face.crop.dtype == np.uint8
    assert face.quad.shape == (4, 2) and not face.padded
    assert align.plausible(face.points, face.box)


def test_an_aligned_crop_is_used_as_it_is(dlib, astronaut):
    crop = align.aligned_faces(astronaut, 256)[0].crop
    (again,) = align.aligned_faces(crop, 256)
    assert align.aligned_error(again.quad, crop.shape) <= align.ALIGNED
    assert again.crop is crop  # not resampled
    ((box, view, quad),) = face_crops(crop, "align")
    assert view is crop and box == again.box
    np.testing.assert_allclose(quad, again.quad, atol=0.05)


@pytest.mark.parametrize("rgb", [np.full((300, 400, 3), 128, np.uint8),
                                 np.random.default_rng(1).integers(0, 256, (256, 256, 3),
                                                                   dtype=np.uint8),
                                 data.coffee()], ids=["flat", "noise", "coffee"])
def test_no_face_is_refused(dlib, rgb):
    assert align.aligned_faces(rgb) == []
    with pytest.raises(NoFaceError, match="no frontal face"):
        face_crops(rgb, "align")


def test_faces_are_capped(dlib, astronaut):
    face = align.aligned_faces(astronaut, 200)[0].crop
    canvas = np.concatenate([np.concatenate([face] * 4, axis=1)] * 3, axis=0)  # 12 faces
    found = align.aligned_faces(canvas, 64, max_faces=5)
    assert len(found) == 5
    assert len(align.aligned_faces(canvas, 64)) <= align.MAX_FACES


def test_a_huge_image_costs_about_what_a_small_one_does(dlib, astronaut):
    huge = np.asarray(__import__("PIL.Image").Image.fromarray(astronaut).resize((6000, 6000)))
    align.aligned_faces(astronaut)  # models loaded
    t = time.process_time()
    found = align.aligned_faces(huge)
    seconds = time.process_time() - t
    assert len(found) == 1
    assert seconds < 1.5  # measured about 0.1 s; generous for a loaded machine


def test_the_policy_records_through_face_crops(dlib, astronaut):
    ((box, crop, quad),) = face_crops(astronaut, "align", size=128)
    assert crop.shape == (128, 128, 3) and len(box) == 4 and np.shape(quad) == (4, 2)


# --- on the shared faces ----------------------------------------------------------------


@pytest.mark.skipif(not (FACES / "140k" / "real").is_dir(), reason="no shared faces "
                    "(set FFEAT_FACES to their folder)")
def test_140k_images_are_used_as_they_are(dlib):
    import ffeat
    files = sorted((FACES / "140k" / "real").glob("*.jpg"))[:8]
    used = 0
    for f in files:
        rgb = ffeat.load_image(f)
        faces = align.aligned_faces(rgb)
        assert faces, f.name
        used += faces[0].crop is rgb
    assert used >= 6


def test_extract_scores_the_aligned_face_and_records_no_face(dlib, astronaut):
    import ffeat

    flat = np.full((100, 100, 3), 100, np.uint8)
    result = ffeat.extract([astronaut, flat], features="hog",
                           reading=ffeat.Reading(faces="align"), jobs=1)
    assert len(result.X) == 1 and "no frontal face" in result.errors[0].reason
    crop = align.aligned_faces(astronaut, 256)[0].crop
    np.testing.assert_array_equal(result.X[0], ffeat.extract([crop], features="hog").X[0])


def test_a_detector_takes_the_align_policy():
    import ffeat

    reading = ffeat.Reading(faces="align", frame=256)
    assert ffeat.Detector(features="hog", reading=reading).get_params()["reading"].faces == \
        "align"


def test_threads_give_the_same_faces(dlib, astronaut):
    import ffeat

    images = [astronaut, astronaut[:, ::-1].copy(), astronaut[50:450, 30:480].copy()] * 2
    aligned = ffeat.Reading(faces="align")
    one = ffeat.extract(images, features="hog", reading=aligned, jobs=1).X
    np.testing.assert_array_equal(ffeat.extract(images, features="hog", reading=aligned,
                                                jobs=3).X, one)


def test_predictions_carry_the_scored_face_quad(dlib, astronaut):
    import ffeat
    from ffeat.models._predictions import cells, prediction_rows
    from ffeat.models._scoring import score_items
    from ffeat._base import image_items

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(8)]
    detector = ffeat.Detector(features="gray", classifier="logistic", calibration=None,
                              band=None, augment=None, cache=False,
                              reading=ffeat.Reading(frame=64)).fit(images, [0, 1] * 4)
    aligned = detector.set_params(reading=ffeat.Reading(faces="align", frame=64))
    flat = np.full((100, 100, 3), 100, np.uint8)
    records = score_items(aligned, image_items([astronaut, flat]))
    face, nothing = prediction_rows(records, 0.5)
    want = align.aligned_faces(astronaut, 64)[0].quad
    np.testing.assert_allclose(face["quad"], want, atol=0.051)
    assert face["faces"] == [list(align.aligned_faces(astronaut, 64)[0].box)]
    assert nothing["quad"] is None and "no frontal face" in nothing["error"]
    cell = cells(face)[8]
    assert [tuple(map(float, c.split(","))) for c in cell.split(";")] == \
        [tuple(c) for c in face["quad"]]


def test_the_cache_keeps_each_face_and_keys_on_the_alignment(dlib, astronaut, tmp_path):
    import ffeat
    from PIL import Image

    from ffeat.features import resolve_features
    from ffeat.reading._rows import _features_of, _open_cache
    from ffeat.reading._sources import Item

    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    aligned = ffeat.Reading(faces="align", frame=64)
    cache = tmp_path / "cache"
    first = ffeat.extract([path], "hog", reading=aligned, cache=cache, jobs=1)
    entries = list(cache.rglob("*.row"))
    assert len(entries) == 1
    again = ffeat.extract([path], "hog", reading=aligned, cache=cache, jobs=1)
    np.testing.assert_array_equal(again.X, first.X)
    # The entry holds the face's box and quad beside its row: scoring from the cache
    # gives the same record as reading the image.
    families = resolve_features("hog")
    fresh = _features_of(Item(str(path), str(path)), families, aligned, None)
    cached = _features_of(Item(str(path), str(path)), families, aligned,
                          _open_cache(cache, families, aligned))
    assert cached.boxes == fresh.boxes and cached.quads == fresh.quads
    np.testing.assert_array_equal(cached.rows, fresh.rows.astype(np.float32))
    # Another policy, or another frame, is another entry.
    ffeat.extract([path], "hog", reading=aligned.replace(faces="crop"), cache=cache, jobs=1)
    ffeat.extract([path], "hog", reading=aligned.replace(faces="off"), cache=cache, jobs=1)
    assert len(list(cache.rglob("*.row"))) == 3
    assert aligned.cache_config()["align"]["model"][0].endswith(".dat")
