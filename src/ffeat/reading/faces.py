"""Finding faces in a photo and giving each the framing the features were trained on.

The families compare histograms at fixed positions, which works because every
training face (FFHQ, the ``140k`` set) is aligned the same way. An in-the-wild
photo is not: this module finds the faces and cuts each one out in that framing.

* **Finding**: scikit-image's LBP frontal-face cascade (its XML ships inside the
  scikit-image wheel; nothing is downloaded), run on a reduced gray copy in two
  passes: a 64 px copy with a 25% black border on each side finds faces from
  30% of the side up to faces larger than the image (tight crops cut through the
  forehead and chin); only when it finds none, a 160 px copy finds faces of 15%
  to 50% of the side (people in a wider scene). Overlapping accepted windows
  are averaged into one face; the face seen by most windows is kept, others only
  when seen by at least 3 windows and half as many as it; faces under
  :data:`MIN_FACE` pixels are dropped, and at most :data:`MAX_FACES` kept.
  Frontal faces only: profiles and faces turned further than about 45 degrees
  are usually missed. The search is permissive (one accepted window is a face),
  so it also "finds" a face in most images without one (README, "Faces in
  photos"): a crop of such an image is scored, not refused.
* **Canonical frame**: a square of :data:`FRAME_MARGIN` times the box width,
  centred :data:`FRAME_OFFSET` box widths below the box centre (negative: above),
  cut from the full-resolution pixels (parts outside the image repeat its edge
  pixels) and resized to the analysis frame (``frame``, see ``ffeat.reading._framing``),
  :data:`FRAME_SIZE` when there is none. Both constants were measured on
  ``140k`` (``benchmarks/faces.py``): there the frame of an image is the image
  itself, up to a few pixels. An image that is already framed so (the frame
  overlaps it by an intersection over union of at least :data:`FRAMED`) is used
  as it is: resampling it would blur the traces the features look for.

The one step the reading path calls is :func:`face_crops`, which maps a decoded
RGB array to ``(box, crop)`` records under a policy (:data:`FACE_POLICIES`).
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from PIL import Image

__all__ = ["FACE_POLICIES", "FRAME_MARGIN", "FRAME_OFFSET", "FRAME_SIZE", "FRAMED",
           "MAX_FACES", "MIN_FACE", "NO_FACE", "FaceCrop", "NoFaceError", "check_faces",
           "face_crops", "find_faces", "frame", "frame_overlap", "rounded_quad"]

#: ``"off"``: the whole image; ``"crop"``: each face found, none is an error;
#: ``"auto"``: each face found, the whole image (box ``None``) when none is;
#: ``"align"``: each face found by its landmarks and cut as FFHQ's faces were
#: (:mod:`ffeat.reading.align`, needs dlib), none is an error.
FACE_POLICIES = ("off", "crop", "auto", "align")
#: Side of the canonical frame in box widths (median over ``140k``).
FRAME_MARGIN = 1.41
#: Centre of the frame below the box centre, in box widths (``140k`` median).
FRAME_OFFSET = -0.08
#: Side of a face's canonical frame in pixels when no analysis frame is set: the
#: ``140k`` training size.
FRAME_SIZE = 256
#: A face whose frame overlaps the whole image this much (intersection over union)
#: is already framed: the image is used as it is, not resampled.
FRAMED = 0.7

#: Search passes: (side of the reduced copy, border as a fraction of the side,
#: smallest and largest face as fractions of the side; None: up to the border).
_PASSES = ((64, 0.25, 0.3, None), (160, 0.0, 0.15, 0.5))
#: Ratio between successive window sizes of the cascade's search.
_SCALE_STEP = 1.15
#: Window step of the cascade's search, in pixels at its smallest scale.
_STEP_RATIO = 1
#: Windows a face other than the most-seen one needs to count as a face.
_MIN_WINDOWS = 3
#: Narrowest face kept, in pixels of the image: smaller ones carry no detail to judge.
MIN_FACE = 20
#: Most faces kept per image (the most certain): bounds the work on a crowd or on
#: a texture the cascade mistakes for many faces.
MAX_FACES = 16

Box = tuple[int, int, int, int]


class FaceCrop(NamedTuple):
    """What the families see of one face (or of the whole image) and where it lies.

    Attributes
    ----------
    box : (x, y, w, h) or None
        The face's box in pixels of the image; None where the whole image is read.
    crop : ndarray of shape (H, W, 3), uint8
        The pixels read.
    quad : tuple of four (x, y) or None
        Under ``"align"``, FFHQ's oriented square the crop was cut from (corners top
        left, bottom left, bottom right, top right of the upright face, in pixels of
        the image, rounded to 0.1; it may reach outside the image); None otherwise.
    """

    box: Box | None
    crop: np.ndarray
    quad: tuple | None = None


#: How the reason of an image refused for having no face begins.
NO_FACE = "no face found"


def rounded_quad(quad) -> tuple:
    """A quad's four ``(x, y)`` corners as a tuple of pairs rounded to 0.1 pixel: how
    :class:`FaceCrop`, prediction rows and the feature cache hold it."""
    return tuple((round(float(x), 1), round(float(y), 1)) for x, y in quad)


class NoFaceError(ValueError):
    """No face was found in an image that needed one (policy ``"crop"``)."""


@lru_cache(maxsize=1)
def _cascade():
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade
    return Cascade(lbp_frontal_face_cascade_filename())


def _search(gray: Image.Image, side: int, border: float, smallest: float,
            largest: float | None) -> list[tuple[float, float, float]]:
    """Every window the cascade accepts in one reduced copy, as (x, y, width)
    fractions of the image's width and height."""
    small = np.asarray(gray.resize((side, side), Image.BILINEAR, reducing_gap=2.0),
                       dtype=np.float32) / np.float32(255)
    pad = round(side * border)
    small = np.pad(small, pad)
    top = small.shape[0] if largest is None else round(side * largest)
    found = _cascade().detect_multi_scale(
        img=small, scale_factor=_SCALE_STEP, step_ratio=_STEP_RATIO,
        min_size=(round(side * smallest),) * 2, max_size=(top, top), min_neighbor_number=1,
        intersection_score_threshold=1.0)  # no grouping: _group counts the windows
    return [((d["c"] - pad) / side, (d["r"] - pad) / side, d["width"] / side) for d in found]


def _group(windows: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """Faces from accepted windows: overlapping windows (their intersection over half
    the smaller one's area) are averaged; the face seen by most windows comes first,
    then those seen by at least :data:`_MIN_WINDOWS` windows and half as many as it."""
    groups: list[list[float]] = []  # sums of x, y, width, and the count
    for x, y, w in sorted(windows, key=lambda d: -d[2]):
        for g in groups:
            gx, gy, gw = g[0] / g[3], g[1] / g[3], g[2] / g[3]
            across = max(0.0, min(x + w, gx + gw) - max(x, gx))
            down = max(0.0, min(y + w, gy + gw) - max(y, gy))
            if across * down > 0.5 * min(w, gw) ** 2:
                g[0] += x
                g[1] += y
                g[2] += w
                g[3] += 1
                break
        else:
            groups.append([x, y, w, 1])
    groups.sort(key=lambda g: -g[3])
    floor = max(_MIN_WINDOWS, groups[0][3] / 2) if groups else 0
    return [(g[0] / g[3], g[1] / g[3], g[2] / g[3]) for i, g in enumerate(groups)
            if i == 0 or g[3] >= floor]


def find_faces(rgb: np.ndarray) -> list[Box]:
    """Boxes of the frontal faces in an image, the most certain first.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        The decoded image.

    Returns
    -------
    list of (x, y, w, h)
        Column, row, width and height of each face, in pixels of ``rgb``; the
        box may reach outside the image for a face cut by its border. Empty
        when no face of at least :data:`MIN_FACE` pixels is found; at most
        :data:`MAX_FACES`.
    """
    height, width = rgb.shape[:2]
    gray = Image.fromarray(rgb).convert("L")
    for side, border, smallest, largest in _PASSES:
        found = _group(_search(gray, side, border, smallest, largest))
        if found:
            boxes = [(round(x * width), round(y * height), round(w * width),
                      round(w * height)) for x, y, w in found]
            return [b for b in boxes if b[2] >= MIN_FACE][:MAX_FACES]
    return []


def _square(box: Box) -> tuple[int, int, int]:
    """Left, top and side of the canonical frame of ``box``, in image pixels."""
    x, y, w, h = box
    side = max(1, round(FRAME_MARGIN * w))
    return (round(x + w / 2 - side / 2), round(y + h / 2 + FRAME_OFFSET * w - side / 2), side)


def frame_overlap(box: Box, shape: tuple[int, ...]) -> float:
    """Intersection over union of a face's canonical frame and the whole image.

    Parameters
    ----------
    box : (x, y, w, h)
        The face's box.
    shape : tuple
        The image's shape, ``(H, W, ...)``.

    Returns
    -------
    float
        1 when the frame is the image: it is already framed like the training faces.
    """
    left, top, side = _square(box)
    height, width = shape[:2]
    across = max(0, min(left + side, width) - max(left, 0))
    down = max(0, min(top + side, height) - max(top, 0))
    inter = across * down
    return inter / (side * side + height * width - inter)


def frame(rgb: np.ndarray, box: Box, size: int = FRAME_SIZE) -> np.ndarray:
    """The canonical frame of a face: its square crop, resized to ``size``.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        The full-resolution image.
    box : (x, y, w, h)
        The face's box, as :func:`find_faces` gives it.
    size : int, default FRAME_SIZE
        Side of the returned crop.

    Returns
    -------
    ndarray of shape (size, size, 3), uint8
        The square of ``FRAME_MARGIN * w`` pixels centred ``FRAME_OFFSET * w``
        below the box centre; parts outside the image repeat its edge pixels.
    """
    left, top, side = _square(box)
    height, width = rgb.shape[:2]
    inside = rgb[max(top, 0):min(top + side, height), max(left, 0):min(left + side, width)]
    pads = ((max(-top, 0), max(top + side - height, 0)),
            (max(-left, 0), max(left + side - width, 0)), (0, 0))
    square = np.pad(inside, pads, mode="edge") if any(p[0] or p[1] for p in pads) else inside
    if side == size:
        return np.ascontiguousarray(square)
    return np.asarray(Image.fromarray(np.ascontiguousarray(square)).resize(
        (size, size), Image.LANCZOS))


def check_faces(policy) -> None:
    """Refuse a face policy that is not one of :data:`FACE_POLICIES`.

    Raises
    ------
    ValueError
        Naming the argument ``faces``, the value given and the choices.
    """
    if not isinstance(policy, str) or policy not in FACE_POLICIES:
        raise ValueError(f"faces must be one of {', '.join(map(repr, FACE_POLICIES))}, "
                         f"got {policy!r}")


def face_crops(rgb: np.ndarray, policy: str,
               size: int = FRAME_SIZE) -> list[FaceCrop]:
    """The images the features see for one decoded image, under a face policy.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        The decoded image.
    policy : {"off", "crop", "auto", "align"}
        ``"off"``: the whole image; ``"crop"``: the canonical frame of each face
        found (the image itself, not resampled, where that frame overlaps it by
        at least :data:`FRAMED`); ``"auto"``: as ``"crop"``, or the whole image
        when no face is found; ``"align"``: FFHQ's crop of each face found by its
        landmarks (:func:`ffeat.reading.align.aligned_faces`; the image itself where it
        is already so aligned).
    size : int, default FRAME_SIZE
        Side of each face's crop in pixels (the analysis frame).

    Returns
    -------
    list of FaceCrop
        One record per face, the most certain first, with its box ``(x, y, w, h)``
        (and under ``"align"`` its quad); a single ``FaceCrop(None, rgb)`` when the
        whole image is used.

    Raises
    ------
    NoFaceError
        Under ``"crop"`` and ``"align"``, when no face is found.
    ValueError
        When ``policy`` is not one of :data:`FACE_POLICIES`.
    """
    check_faces(policy)
    if policy == "off":
        return [FaceCrop(None, rgb)]
    if policy == "align":
        from .align import aligned_faces
        found = aligned_faces(rgb, size)
        if not found:
            raise NoFaceError(f"{NO_FACE}: no frontal face (faces='align'); use faces='off' to "
                              "score the whole image")
        return [FaceCrop(face.box, face.crop, rounded_quad(face.quad)) for face in found]
    boxes = find_faces(rgb)
    if not boxes:
        if policy == "crop":
            raise NoFaceError(f"{NO_FACE}; use faces='auto' to score the whole image "
                              "instead, or faces='off'")
        return [FaceCrop(None, rgb)]
    return [FaceCrop(box, rgb if frame_overlap(box, rgb.shape) >= FRAMED
                     else frame(rgb, box, size)) for box in boxes]
