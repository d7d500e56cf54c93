"""Faces aligned as FFHQ aligns them: landmarks in, framing shortcuts out.

The families compare histograms at fixed positions, and every training face
(FFHQ, the ``140k`` set) was cut out by one recipe: dlib's 68 facial landmarks,
an oriented square (the *quad*) placed from the eye centres and mouth corners,
and a resampling of that square. This module repeats the recipe on any photo:

* **Finding**: dlib's HOG frontal-face detector on gray copies whose longest side
  is at most :data:`DETECT_SIDES` pixels (never enlarged), so its cost does not
  grow with the image. It finds upright frontal faces of about 80 pixels of a
  copy and more: a quarter of the image's side in the first pass, an eighth in
  the second, run only when the first finds no face. Profiles, faces rolled or
  turned further than about 30 degrees and faces cut by the image's border (extreme
  close-ups) are missed. Faces scoring under :data:`MIN_SCORE` are dropped, at most
  :data:`MAX_FACES` kept (the most certain first). Measured (``benchmarks/faces.py
  --finder align``, 400 images per source): a face in 99.3-100% of the images of
  ``140k``, ``tpdne`` fakes, ``lfw``, ``hq`` fakes, ``boredhumans`` and ``studio``,
  98.8-98.9% of ``utkface`` and ``hq`` reals, 95% of ``sdfd``; in 0-3.5% of the same
  images with their faces destroyed and in none of 20 faceless photographs.
* **Landmarks**: dlib's 68-point shape predictor inside the detector's box, on a
  gray copy of the face's surroundings at full resolution (thinned to
  :data:`LANDMARK_FACE` pixels for a larger face). The 68-point model was chosen
  over the 5-point one by measurement (``benchmarks/faces.py``, ``landmarks``):
  the 5-point model has no mouth, and the best linear estimate of the mouth corners
  from its points doubles the quad's corner error on ``140k``.
* **Verification**: the detector's score (:data:`MIN_SCORE`, dlib's own 0: lower
  thresholds let destroyed faces through, higher ones drop real faces); a face whose
  landmarks are not shaped like a face (:func:`plausible`: broken fits only) is
  dropped, as is one narrower than :data:`MIN_FACE` pixels.
* **The quad**: FFHQ's recipe (:func:`ffhq_quad`), written from its description.
* **The crop**: an image whose quad already is the image (every corner within
  :data:`ALIGNED` of the side from the image's corner: a face aligned like FFHQ;
  97-100% of the StyleGAN and FFHQ images, under 1% of the other sources) is used
  as it is, not resampled; otherwise the quad is cut from the image as
  FFHQ's script does (:func:`warp`): shrunk by a whole factor when it is more than
  twice as large as needed, padded by reflection with a blur toward the edge
  where it leaves the image (by more than :data:`PAD_SLACK`), resampled bilinearly
  to at most :data:`SUPERSAMPLE` times the output side and shrunk with Lanczos to
  the output side.

dlib (the ``dlib-bin`` wheel) and the landmark model (``face-recognition-models``)
are imported only when a face is aligned. Terms: dlib is under the Boost Software
License; its 68-point landmark model was trained on the iBUG 300-W data set, whose
terms exclude commercial use, so the model carries them (the package that ships it,
``face-recognition-models``, is MIT-licensed and says CC0 for the files; the
restriction comes from the training data).

The step the reading path calls is :func:`aligned_faces`, which maps a decoded
RGB array to :class:`AlignedFace` records (box, quad, crop).
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["ALIGNED", "DETECT_SIDES", "MAX_FACES", "MIN_FACE", "MIN_SCORE",
           "SUPERSAMPLE", "LANDMARK_FACE", "PAD_SLACK", "AlignedFace", "aligned_error",
           "aligned_faces", "ffhq_points", "ffhq_quad", "find_landmarks", "plausible",
           "settings", "warp"]

#: Longest sides of the gray copies the detector searches, in turn until a face is
#: found (a larger image is reduced to each, a smaller one searched as it is, once):
#: they bound the cost of finding faces. The detector sees faces of about 80 pixels
#: and more, so the first pass finds faces of a quarter of the image's side and
#: more, the second (only when the first finds none) faces of an eighth.
DETECT_SIDES = (320, 640)
#: Lowest detector score kept (dlib's own threshold is 0).
MIN_SCORE = 0.0
#: Most faces kept per image, the most certain first.
MAX_FACES = 8
#: Narrowest face kept, in pixels of the image (the detector's box).
MIN_FACE = 40
#: Largest distance of a quad corner from the image's corner, as a fraction of the
#: image's side, for an image to count as aligned already (used as it is). On 140k
#: (the true FFHQ crop) the largest corner error is a median 1.1%, p95 3.2%, p99 5.2%.
ALIGNED = 0.05
#: Most the quad is resampled to, in output sides, before it is shrunk to the output
#: (FFHQ's script: 4; here the quad is first shrunk to under twice the output side, so
#: 2 is always enough to resample without aliasing).
SUPERSAMPLE = 2
#: Largest distance, as a fraction of the quad's side, by which a quad may leave the
#: image and still not be padded FFHQ's way (its edge pixels are repeated instead).
PAD_SLACK = 0.01
#: Widest face the landmarks are fitted at, in pixels: a larger face is thinned to it.
LANDMARK_FACE = 256

Box = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """One face found and aligned.

    Attributes
    ----------
    box : (x, y, w, h)
        The detector's box, in pixels of the image.
    quad : ndarray of shape (4, 2)
        FFHQ's oriented square (x, y per corner: top left, bottom left, bottom right,
        top right of the face), in pixels of the image; may reach outside it.
    crop : ndarray of shape (S, S, 3), uint8
        The quad resampled to the output side S, or the image itself (not a copy)
        when it is already aligned.
    score : float
        The detector's score (higher: more certain).
    points : ndarray of shape (4, 2)
        The eye centres and mouth corners the quad was placed from.
    padded : bool
        Whether the quad left the image and part of the crop is padding.
    """

    box: Box
    quad: np.ndarray
    crop: np.ndarray
    score: float
    points: np.ndarray
    padded: bool = False


# --- the recipe -------------------------------------------------------------------------


def ffhq_quad(points: np.ndarray) -> np.ndarray:
    """FFHQ's oriented square from the eye centres and mouth corners.

    Parameters
    ----------
    points : array of shape (4, 2)
        (x, y) of the eye on the image's left, the eye on its right, the mouth
        corner on its left and on its right.

    Returns
    -------
    ndarray of shape (4, 2), float64
        Corners top left, bottom left, bottom right, top right (the face upright).
        Its side is twice the larger of twice the eye distance and 1.8 times the
        distance from the eyes' midpoint to the mouth's; its horizontal axis is the
        average of the eye line and the perpendicular of the eye-mouth line; its
        centre lies a tenth of the way from the eyes' midpoint to the mouth's. The
        quad moves, turns and scales with the points (a similarity of the points
        maps it exactly).
    """
    p = np.asarray(points, dtype=np.float64).reshape(4, 2)
    eyes = (p[0] + p[1]) / 2
    across = p[1] - p[0]                    # eye to eye
    down = (p[2] + p[3]) / 2 - eyes         # eyes' midpoint to mouth's
    # The perpendicular of ``down`` that points the way ``across`` does: (down_y, -down_x).
    axis = across + np.array([down[1], -down[0]])
    axis *= max(2.0 * math.hypot(*across), 1.8 * math.hypot(*down)) / math.hypot(*axis)
    perp = np.array([-axis[1], axis[0]])    # the axis turned a quarter toward the chin
    centre = eyes + 0.1 * down
    return np.stack([centre - axis - perp, centre - axis + perp,
                     centre + axis + perp, centre + axis - perp])


def ffhq_points(landmarks: np.ndarray) -> np.ndarray:
    """The eye centres and mouth corners of :func:`ffhq_quad` from 68 landmarks (iBUG
    order): the means of points 36-41 and 42-47, and points 48 and 54."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[48], lm[54]])


def plausible(points: np.ndarray, box: Box) -> bool:
    """Whether the eye centres and mouth corners are shaped like a frontal face
    inside the detector's box.

    In the frame of the eyes (origin their midpoint, unit their distance), the
    mouth's midpoint must lie 0.6 to 2 eye distances under them and within 0.4
    sideways, the mouth be 0.4 to 1.5 eye distances wide and tilted at most 0.3 of
    its width, and the eye distance be 0.2 to 0.65 of the box's width. The bounds
    are wider than the 0.1 and 99.9 percentiles of the faces of the shared sets
    (``benchmarks/faces.py``): they drop broken fits only. The landmark model fits
    a face-shaped set of points to whatever it is given, so the shape does not tell
    a false detection from a face; the detector's score (:data:`MIN_SCORE`) does.
    """
    p = np.asarray(points, dtype=np.float64)
    across = p[1] - p[0]
    eye = math.hypot(*across)
    if not eye > 0 or not 0.2 <= eye / max(box[2], 1) <= 0.65:
        return False
    ux = across / eye
    rot = np.array([ux, [-ux[1], ux[0]]])
    local = (p - (p[0] + p[1]) / 2) @ rot.T / eye
    mouth = (local[2] + local[3]) / 2
    width = local[3] - local[2]
    return bool(0.6 <= mouth[1] <= 2.0 and abs(mouth[0]) <= 0.4
                and 0.4 <= width[0] <= 1.5 and abs(width[1]) <= 0.3 * width[0])


def aligned_error(quad: np.ndarray, shape: tuple[int, ...]) -> float:
    """Largest distance of a quad corner from the image's matching corner, as a
    fraction of the image's side (its mean of width and height); 0 when the quad is
    the image."""
    height, width = shape[:2]
    corners = np.array([[0, 0], [0, height], [width, height], [width, 0]], dtype=np.float64)
    return float(np.hypot(*(np.asarray(quad) - corners).T).max() / ((width + height) / 2))


# --- dlib -------------------------------------------------------------------------------


def _dlib():
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("faces='align' needs dlib: pip install dlib-bin "
                          "face-recognition-models (or reinstall ffeat)") from exc
    return dlib


#: dlib's frontal-face detectors not in use, and the lock that guards the list.
_idle_detectors: list = []
_idle_lock = threading.Lock()


@contextlib.contextmanager
def _detector():
    """dlib's frontal-face detector for one search, used by one thread at a time (ffeat
    reads images on threads; the landmark model, read-only once loaded, is shared).

    Detectors are kept for the life of the process and lent out in turn: making one
    costs about 0.4 s, and every call of ``ffeat.extract`` or ``score_images`` reads on
    threads of its own, so one detector per thread was made again at each call."""
    with _idle_lock:
        detector = _idle_detectors.pop() if _idle_detectors else None
    if detector is None:
        detector = _dlib().get_frontal_face_detector()
    try:
        yield detector
    finally:
        with _idle_lock:
            _idle_detectors.append(detector)


def _model_file(model: str) -> Path | None:
    """The landmark model's file (``"68"`` or ``"5"`` points), or None when it is not
    installed. It is found without importing its package, whose ``__init__`` imports
    ``pkg_resources``, which recent setuptools no longer ship."""
    spec = importlib.util.find_spec("face_recognition_models")
    name = "68_face_landmarks" if model == "68" else "5_face_landmarks"
    path = None if spec is None else \
        Path(spec.submodule_search_locations[0]) / "models" / f"shape_predictor_{name}.dat"
    return path if path is not None and path.is_file() else None


@lru_cache(maxsize=2)
def _predictor(model: str = "68"):
    dlib = _dlib()
    path = _model_file(model)
    if path is None:
        raise ImportError("faces='align' needs dlib's landmark models: pip install "
                          "face-recognition-models")
    return dlib.shape_predictor(str(path))


def _gray(rgb: np.ndarray) -> np.ndarray:
    """Luma of ``rgb`` as uint8 (ITU-R 601, as Pillow's ``convert("L")``)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))


def _thinned(rgb: np.ndarray, step: int) -> np.ndarray:
    """Gray copy of every ``step``-th pixel of ``rgb`` (no copy of the full image)."""
    return _gray(rgb[::step, ::step] if step > 1 else rgb)


def _detection_copy(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """The gray copy the detector searches (longest side at most ``side``) and the
    factor from its pixels to the image's. A large image is first thinned by a whole
    stride (to between once and twice the side), then resampled: the cost stays that
    of a copy of a few times ``side``, whatever the image's size."""
    height, width = rgb.shape[:2]
    longest = max(height, width)
    if longest <= side:
        return _gray(rgb), 1.0
    thin = _thinned(rgb, max(1, longest // side))
    scale = side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(thin).resize(size, Image.BILINEAR))
    return small, width / size[0]


def _landmarks(rgb: np.ndarray, box: Box, predictor) -> np.ndarray:
    """The predictor's landmarks of the face in ``box``, in pixels of ``rgb``, fitted on
    a gray copy of the face's surroundings thinned so that the face is at most
    :data:`LANDMARK_FACE` pixels wide (bounded cost for a large face)."""
    dlib = _dlib()
    x, y, w, h = box
    height, width = rgb.shape[:2]
    x0, y0 = max(x - w // 2, 0), max(y - h // 2, 0)
    x1, y1 = min(x + w + w // 2, width), min(y + h + h // 2, height)
    step = max(1, w // LANDMARK_FACE)
    gray = _thinned(rgb[y0:y1, x0:x1], step)
    rect = dlib.rectangle(round((x - x0) / step), round((y - y0) / step),
                          round((x + w - x0) / step), round((y + h - y0) / step))
    shape = predictor(gray, rect)
    pts = np.array([(shape.part(k).x, shape.part(k).y) for k in range(shape.num_parts)],
                   dtype=np.float64)
    # A thinned pixel k covers image pixels [k * step, (k + 1) * step): its centre.
    return pts * step + (step - 1) / 2 + (x0, y0)


def find_landmarks(rgb: np.ndarray, max_faces: int = MAX_FACES,
                   min_score: float = MIN_SCORE, verify: bool = True
                   ) -> list[tuple[Box, float, np.ndarray]]:
    """The frontal faces of an image, with the FFHQ points of each.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        The decoded image.
    max_faces : int, default MAX_FACES
        Most faces returned.
    min_score : float, default MIN_SCORE
        Lowest detector score kept.
    verify : bool, default True
        Drop faces whose landmarks are not shaped like a face (:func:`plausible`)
        or that are narrower than :data:`MIN_FACE`.

    Returns
    -------
    list of (box, score, points)
        The detector's box (x, y, w, h) in pixels of ``rgb``, its score, and the
        eye centres and mouth corners (4, 2); the most certain face first.
    """
    predictor = _predictor()
    longest = max(rgb.shape[:2])
    out: list = []
    for n, side in enumerate(DETECT_SIDES):
        if n and (out or longest <= DETECT_SIDES[n - 1]):
            break  # a face found, or the image was searched whole already
        _search(rgb, side, predictor, max_faces, min_score, verify, out)
    return out


def _search(rgb, side, predictor, max_faces, min_score, verify, out) -> None:
    """One detection pass of :func:`find_landmarks` on a copy of ``side`` pixels."""
    small, factor = _detection_copy(rgb, side)
    with _detector() as detector:
        rects, scores, _ = detector.run(small, 0, min(min_score, 0.0))
    for i in sorted(range(len(rects)), key=lambda i: -scores[i]):
        if scores[i] < min_score:
            continue
        r = rects[i]
        box = (round(r.left() * factor), round(r.top() * factor),
               round(r.width() * factor), round(r.height() * factor))
        if verify and box[2] < MIN_FACE:
            continue
        pts = _landmarks(rgb, box, predictor)
        points = ffhq_points(pts)
        if verify and not plausible(points, box):
            continue
        out.append((box, float(scores[i]), points))
        if len(out) >= max_faces:
            break


# --- the crop ---------------------------------------------------------------------------


def warp(rgb: np.ndarray, quad: np.ndarray, size: int, supersample: int = SUPERSAMPLE,
         slack: float | None = PAD_SLACK) -> tuple[np.ndarray, bool]:
    """The quad of ``rgb`` resampled to a ``size`` square, as FFHQ's script cuts it.

    The region around the quad (a tenth of its side more, at least 3 pixels) is
    cut out; shrunk by a whole factor (averaging blocks of pixels) when the quad is at least twice
    ``size`` (FFHQ's script: four times), so that it is under twice ``size``; padded
    where the quad leaves the image by more than ``slack`` of its side (by
    reflection, at least 0.3 of the quad's side, then blurred and faded toward the
    median colour with the distance from the image's edge, as FFHQ's script pads;
    a quad inside, or out by less, only has the image's edge pixels repeated around
    it); resampled bilinearly to
    ``k * size``, ``k`` the quad's side over ``size`` rounded up and at most
    ``supersample``; and shrunk with Lanczos to ``size``.

    ``slack=None`` pads as FFHQ's script does: whenever the quad with a tenth of its
    side around it leaves the image. That pads (and blurs the outer tenth of) the
    crop of a face that lies inside the image near its edge, and the padding is a
    cue the features read (``benchmarks/faces.py``): hence :data:`PAD_SLACK`.

    Returns
    -------
    crop : ndarray of shape (size, size, 3), uint8
    padded : bool
        Whether FFHQ's padding was applied.
    """
    quad = np.asarray(quad, dtype=np.float64).copy()
    qsize = math.hypot(*(quad[3] - quad[0]))
    height, width = rgb.shape[:2]
    border = max(round(qsize * 0.1), 3)
    lo = np.floor(quad.min(0)).astype(int)
    hi = np.ceil(quad.max(0)).astype(int)
    # Cut first (bounded work on a large photo), then shrink only the cut.
    x0, y0 = max(lo[0] - border, 0), max(lo[1] - border, 0)
    x1, y1 = min(hi[0] + border, width), min(hi[1] + border, height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError("the face's square lies outside the image")
    img = Image.fromarray(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
    quad -= (x0, y0)
    shrink = int(qsize / size)
    if shrink > 1:
        img = img.reduce(shrink)  # box filter: FFHQ's script uses Lanczos, 5 times slower
        quad /= shrink
        qsize /= shrink
        border = max(round(qsize * 0.1), 3)
    # Padding where the quad (with its border) leaves what was cut.
    lo = np.floor(quad.min(0)).astype(int)
    hi = np.ceil(quad.max(0)).astype(int)
    pad = np.array([max(-lo[0] + border, 0), max(-lo[1] + border, 0),
                    max(hi[0] - img.width + border, 0), max(hi[1] - img.height + border, 0)])
    if slack is None:
        padded = bool(max(pad) > border - 4)
    else:
        out = max(-lo[0], -lo[1], hi[0] - img.width, hi[1] - img.height)
        padded = bool(out > slack * qsize)
    if padded:
        img, shift = _pad(np.asarray(img), pad, qsize)
        quad += shift
    elif max(pad) > 0:  # the quad's surroundings leave the image: repeat its edge
        left, top, right, bottom = (int(v) for v in pad)
        img = Image.fromarray(np.pad(np.asarray(img), ((top, bottom), (left, right), (0, 0)),
                                     mode="edge"))
        quad += (left, top)
    big = max(1, min(supersample, math.ceil(qsize / size))) * size
    # FFHQ's script adds half a pixel to the quad: with Pillow's convention (pixel centres
    # at half-integers) that shifts the crop by half a source pixel, 0.06 px of a 256 px
    # FFHQ crop at most; here the quad is passed as it is.
    out = img.transform((big, big), Image.QUAD, quad.ravel().tolist(), Image.BILINEAR)
    if big != size:
        out = out.resize((size, size), Image.LANCZOS)
    return np.asarray(out), padded


def _pad(arr: np.ndarray, pad: np.ndarray, qsize: float) -> tuple[Image.Image, np.ndarray]:
    """FFHQ's padding: reflect by ``pad`` (left, top, right, bottom; each at least 0.3
    of the quad's side), blur toward the new edges and fade to the median colour.

    As FFHQ's script, but the blur (a Gaussian of 2% of the quad's side) is Pillow's
    box-blur approximation on the 8-bit image and the median is taken over every
    fourth pixel each way: 40 times faster than an exact float blur, within a few
    levels of it."""
    from PIL import ImageFilter

    left, top, right, bottom = (int(v) for v in np.maximum(pad, round(qsize * 0.3)))
    padded = np.pad(arr, ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w = padded.shape[:2]
    y, x = np.ogrid[:h, :w]
    # Below 0 inside the image, 0 at its edge, rising to 1 at the padding's outer edge.
    mask = np.maximum(1.0 - np.minimum(x / max(left, 1), (w - 1 - x) / max(right, 1)),
                      1.0 - np.minimum(y / max(top, 1), (h - 1 - y) / max(bottom, 1)))
    mask = mask.astype(np.float32)[..., None]
    blurred = np.asarray(Image.fromarray(padded).filter(
        ImageFilter.GaussianBlur(qsize * 0.02)), dtype=np.float32)
    img = padded.astype(np.float32)
    img += (blurred - img) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    img += (np.median(img[::4, ::4], axis=(0, 1)) - img) * np.clip(mask, 0.0, 1.0)
    out = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return out, np.array([left, top], dtype=np.float64)


def settings() -> dict:
    """What an aligned crop depends on besides the image: this module's constants and
    the landmark model's file (name and size), for keys of cached results."""
    model = _model_file("68")
    return {"detect_sides": list(DETECT_SIDES), "min_score": MIN_SCORE,
            "max_faces": MAX_FACES, "min_face": MIN_FACE, "aligned": ALIGNED,
            "supersample": SUPERSAMPLE, "pad_slack": PAD_SLACK,
            "landmark_face": LANDMARK_FACE, "recipe": 1,
            "model": None if model is None else [model.name, model.stat().st_size]}


def aligned_faces(rgb: np.ndarray, size: int = 256,
                  max_faces: int = MAX_FACES) -> list[AlignedFace]:
    """Every frontal face of an image, aligned as FFHQ's faces are.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        The decoded image.
    size : int, default 256
        Side of each crop in pixels (the analysis frame).
    max_faces : int, default MAX_FACES
        Most faces returned.

    Returns
    -------
    list of AlignedFace
        The most certain first; empty when no face is found. The crop of an image
        whose quad is within :data:`ALIGNED` of its corners is the image itself.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image, got shape {rgb.shape} {rgb.dtype}")
    out = []
    for box, score, points in find_landmarks(rgb, max_faces):
        quad = ffhq_quad(points)
        if aligned_error(quad, rgb.shape) <= ALIGNED:
            crop, padded = rgb, False
        else:
            crop, padded = warp(rgb, quad, size)
        out.append(AlignedFace(box, quad, crop, score, points, padded))
    return out
