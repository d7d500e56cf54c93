"""Tests of ``ffeat.faces``: finding faces (scikit-image's cascade) and the canonical
frame, on scikit-image's astronaut photograph (no shared data needed)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from ffeat.faces import FRAME_MARGIN, FRAME_OFFSET, FRAME_SIZE, NoFaceError, face_crops, find_faces, frame

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


def _frame_square(box) -> tuple[float, float, float]:
    """Left, top and side of the canonical frame of ``box`` (as ``frame`` cuts it)."""
    x, y, w, h = box
    side = FRAME_MARGIN * w
    return x + w / 2 - side / 2, y + h / 2 + FRAME_OFFSET * w - side / 2, side


def test_the_frame_of_a_framed_face_is_nearly_itself(astronaut):
    framed = frame(astronaut, find_faces(astronaut)[0])
    assert framed.shape == (FRAME_SIZE, FRAME_SIZE, 3) and framed.dtype == np.uint8
    left, top, side = _frame_square(find_faces(framed)[0])
    across = min(left + side, FRAME_SIZE) - max(left, 0)
    down = min(top + side, FRAME_SIZE) - max(top, 0)
    overlap = across * down / (side**2 + FRAME_SIZE**2 - across * down)
    assert overlap > 0.75, (left, top, side)


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
    ((box, crop),) = face_crops(astronaut, "off")
    assert box is None and crop is astronaut
    ((box, crop),) = face_crops(astronaut, "crop")
    assert box is not None and crop.shape == (FRAME_SIZE, FRAME_SIZE, 3)
    ((box, crop),) = face_crops(flat, "auto")
    assert box is None and crop is flat
    with pytest.raises(NoFaceError, match="no face found.*faces='auto'"):
        face_crops(flat, "crop")
    with pytest.raises(ValueError, match="faces must be one of 'off', 'crop', 'auto'"):
        face_crops(flat, "on")
