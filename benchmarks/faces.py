"""The fixed face-finding protocol of the README's "Faces in photos" section.

- ``found``: the share of images of every source of ``$FFEAT_FACES`` (default
  ``../shared/faces``) in which :func:`ffeat.reading.faces.find_faces` finds a face, and
  the share of the same images with their faces destroyed (cut into a 4 x 4 grid
  of blocks shuffled with a fixed seed) in which it still finds one, as it does in
  scikit-image's photographs without faces (:data:`NON_FACES`); for
  ``140k`` also the share where the canonical frame of the most certain face
  lies where the aligned image is (intersection over union with the whole image
  at least ``FRAMED``: used as it is), and the median box geometry that sets ``FRAME_MARGIN`` and
  ``FRAME_OFFSET``; the names of a few misses per source.
- ``cost``: milliseconds per image of finding the face on one core (BLAS and
  OpenMP held to one thread), wall and CPU time, 140k images resized (bicubic) to
  256, 512 and 1024 px and ``unsplash`` portraits at their own size (where the
  second pass runs more often), beside the default feature set's cost on the
  256 px frame.
- ``reframed``: ROC AUC on held-out ``140k`` images (seeded half split), with a
  logistic regression on cheap families (``FEATURES``; the default set is too
  slow for this protocol on two cores) trained on the aligned half: aligned
  test images; faces pasted at random positions and scales (0.5-1.0 of the
  side) into 512 px crops of scikit-image's face-free photographs; portraits
  with margins (the image reflected out by 25% on each side). Each re-framed
  set is scored with ``faces="off"`` (model trained on whole images) and
  ``faces="crop"`` (model trained on the frames of the aligned images; an image
  with no face found is scored whole, as ``"auto"`` does, and counted).
  ``--train`` adds rows for crop models trained on other frames of the same
  training half (:data:`TRAININGS`; the test sets and their features are shared):
  ``boxcut``: every aligned image's frame cut from its box, never used as it is;
  ``reframed``: the frames of its pasted and margin versions (built as the test
  sets are, with their own random stream); ``mixed``: the aligned frames plus
  those; ``jitter``: the aligned frames plus :data:`JITTERS` frames per image
  cut from the box shifted by up to :data:`SHIFT` box widths and scaled by up
  to :data:`SCALE`.
  ``tolerance``: how precisely a face must be framed: the pasted test faces cut
  from their true square with seeded normal errors of its position and side
  (:data:`TOLERANCES`), scored by the model trained on the aligned images.

With ``--finder align`` (or ``--finder cascade align``) the same protocol measures
:mod:`ffeat.reading.align` (``faces="align"``: dlib's detector, 68 landmarks, FFHQ's quad):

- ``align_found``: per source the found rate, the found rate on the destroyed faces,
  the share of images used as they are (their quad within ``ALIGNED`` of their
  corners) and of images whose crop was padded; faces found in the faceless
  photographs (and which); on 140k the distance of the quad's corners from the
  image's (the true FFHQ crop), mean and largest of the 4 corners, as percentiles.
- ``landmarks``: the landmark model chosen by measurement (:func:`measure_landmarks`:
  68-point against 5-point with a linear mouth fitted on the other sources).
- ``align_cost``: ms per image of :func:`ffeat.reading.align.aligned_faces` on one core,
  crops included: 140k images resized to 256, 512, 1024 and 4000 px (aligned
  already: found and used as they are; 4 images at 4000), the same faces pasted at
  a third of the side into a 4000 px photograph (found, cut and resampled), and
  ``unsplash`` portraits (cut and resampled; most need the second pass).
- ``reframed`` gains the ``align`` policy (its model trained on the aligned crops of
  the training half) and the ``tight`` test images (the centre 70% of each aligned
  image: FFHQ's quad leaves it, so its crop is padded); each row gives the mean
  score of the real and fake images; ``padding`` is the cross-validated ROC AUC of
  the cheap families telling a padded crop (``tight``) from an unpadded one of the
  same pixels (``margin``).

``--detector`` (the shipped detector, or ``--detector FILE`` a saved one) measures a
trained detector through its own reading instead of the cheap model: ``detector``
gives its ROC AUC on the ``140k`` test halves of the corpus (``_corpus.held_out``:
images the shipped detector was not trained on) as given, pasted into photos, with
margins, and framed 1.5x tighter (the centre two thirds, not resized); AUC over the
images it scored, and the count it gave no score (no face found).

Usage: ``python benchmarks/faces.py [--finder cascade|align ...] [--n N] [--seed S]
[--train VARIANT ...] [--skip PART ...] [--detector [FILE]] [--json FILE] [--plot FILE]``
(``--n``: at most N images per source and class, all by default).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time

import numpy as np
from PIL import Image

try:
    from . import _corpus, _data
except ImportError:  # run as a script: this folder is on sys.path
    import _corpus
    import _data

import ffeat  # noqa: E402
from ffeat.reading.faces import FRAMED, face_crops, find_faces, frame, frame_overlap  # noqa: E402
from ffeat.reading import align
from ffeat.features import resolve_features  # noqa: E402

SEED = 0
#: Sources and classes of the shared sets.
SOURCES = ("140k/real", "140k/fake", "tpdne/real", "tpdne/fake", "sdfd/fake",
           "utkface/real", "lfw/real", "unsplash/real", "hq/real", "hq/fake",
           "boredhumans/fake", "studio/real")
#: Sources whose images do not all show a frontal face (README of the shared faces:
#: side-on crops, faces turned away): the found-rate target does not apply to them.
NOT_ALL_FRONTAL = ("tpdne/real", "unsplash/real")
#: Face finders: ``cascade``, :func:`ffeat.reading.faces.find_faces` and its canonical frame
#: (``faces="crop"``); ``align``, :func:`ffeat.reading.align.aligned_faces` (``faces="align"``).
FINDERS = ("cascade", "align")
#: Sides of the images the cost of the aligner is timed at (140k images resized).
ALIGN_SIZES = (256, 512, 1024, 4000)
#: Images per size in the cost runs (fewer at 4000 px: 48 MB each).
COST_IMAGES = 16
#: Fraction of each side kept by the ``tight`` test images (the centre of the
#: aligned image, not resized): FFHQ's quad then leaves the image and is padded.
TIGHT = 0.7
#: Families of the re-framed measurement.
FEATURES = ("gray", "hog", "lbp")
#: Side of the re-framed backgrounds.
BACKGROUND = 512
#: Training frames of the crop model: the default, then the ``--train`` variants.
TRAININGS = ("aligned", "boxcut", "reframed", "mixed", "jitter")
#: Largest shift of a jittered training frame, in box widths (each axis).
SHIFT = 0.08
#: Largest relative change of a jittered training frame's box width.
SCALE = 0.1
#: Jittered frames per training image.
JITTERS = 2
#: Framing errors of the tolerance rows: standard deviations of the shift (each axis)
#: and of the relative change of the side, as fractions of the true side.
TOLERANCES = ((0.0, 0.0), (0.01, 0.0), (0.02, 0.0), (0.04, 0.0), (0.0, 0.02), (0.0, 0.05))
#: scikit-image photographs without a face (all ship inside its wheel).
NON_FACES = ("coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "chelsea",
             "retina", "brick", "grass", "gravel", "colorwheel", "coins", "moon", "page",
             "text", "horse", "logo", "clock", "microaneurysms", "cell",
             "shepp_logan_phantom")
#: Side of the block grid that destroys the faces of the control images.
BLOCKS = 4


def _files(source: str, n: int | None, seed: int) -> list:
    files = sorted((_data.faces_root() / source).glob("*.jpg"))
    random.Random(seed).shuffle(files)
    return files[:n]


def _scrambled(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` cut into a :data:`BLOCKS` x :data:`BLOCKS` grid of blocks, shuffled."""
    rows, cols = rgb.shape[0] // BLOCKS, rgb.shape[1] // BLOCKS
    blocks = [rgb[i * rows:(i + 1) * rows, j * cols:(j + 1) * cols]
              for i in range(BLOCKS) for j in range(BLOCKS)]
    order = rng.permutation(len(blocks))
    return np.vstack([np.hstack([blocks[k] for k in order[i * BLOCKS:(i + 1) * BLOCKS]])
                      for i in range(BLOCKS)])


def _non_faces() -> list[np.ndarray]:
    """The photographs of :data:`NON_FACES` as RGB uint8."""
    from skimage import data, img_as_ubyte
    out = []
    for name in NON_FACES:
        image = img_as_ubyte(getattr(data, name)())
        image = image[..., :3] if image.ndim == 3 else np.stack([image] * 3, axis=-1)
        out.append(np.ascontiguousarray(image))
    return out


def measure_found(n: int | None, seed: int, finder: str = "cascade") -> dict:
    """Found rate, misses and (140k) framing per source; found rate on the same images
    with their faces destroyed and on photographs without faces. With the ``align``
    finder, also per source the share of images used as they are (already aligned) and
    of images whose crop needed padding, and on 140k the corner error of the quad."""
    if finder == "align":
        return _measure_found_align(n, seed)
    rows, geometry = [], []
    rng = np.random.default_rng(seed)
    for source in SOURCES:
        files = _files(source, n, seed)
        found, aligned, misses, false = 0, 0, [], 0
        for f in files:
            rgb = ffeat.load_image(f)
            false += bool(find_faces(_scrambled(rgb, rng)))
            boxes = find_faces(rgb)
            if not boxes:
                misses.append(f.name)
                continue
            found += 1
            if source.startswith("140k"):
                x, y, w, _ = boxes[0]
                side = rgb.shape[0]
                aligned += frame_overlap(boxes[0], rgb.shape) >= FRAMED
                geometry.append((side / w, (side / 2 - x - w / 2) / w,
                                 (side / 2 - y - w / 2) / w))
        row = {"source": source, "images": len(files), "found": found / len(files),
               "found_scrambled": false / len(files), "misses": misses[:5],
               "n_misses": len(misses)}
        if source.startswith("140k"):
            row["aligned"] = aligned / len(files)
        rows.append(row)
    g = np.array(geometry)
    photos = _non_faces()
    return {"finder": finder, "rows": rows, "margin": float(np.median(g[:, 0])),
            "offset_x": float(np.median(g[:, 1])), "offset": float(np.median(g[:, 2])),
            "non_faces": len(photos),
            "non_faces_found": sum(bool(find_faces(p)) for p in photos)}


def corner_errors(quad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Distance of each corner of ``quad`` from the image's matching corner, as a
    fraction of the image's side."""
    height, width = shape[:2]
    corners = np.array([[0, 0], [0, height], [width, height], [width, 0]], dtype=np.float64)
    return np.hypot(*(np.asarray(quad) - corners).T) / ((width + height) / 2)


def _percentiles(values, qs=(50, 90, 95, 99, 100)) -> dict:
    return {f"p{q}": float(np.percentile(values, q)) for q in qs} if len(values) else {}


def _measure_found_align(n: int | None, seed: int) -> dict:
    rows, errors = [], []
    rng = np.random.default_rng(seed)
    for source in SOURCES:
        files = _files(source, n, seed)
        found, as_is, padded, misses, false = 0, 0, 0, [], 0
        for f in files:
            rgb = ffeat.load_image(f)
            false += bool(align.aligned_faces(_scrambled(rgb, rng)))
            faces = align.aligned_faces(rgb)
            if not faces:
                misses.append(f.name)
                continue
            found += 1
            as_is += faces[0].crop is rgb
            padded += faces[0].padded
            if source.startswith("140k"):
                errors.append(corner_errors(faces[0].quad, rgb.shape))
        rows.append({"source": source, "images": len(files), "found": found / len(files),
                     "found_scrambled": false / len(files), "as_is": as_is / len(files),
                     "padded": padded / len(files), "misses": misses[:5],
                     "n_misses": len(misses), "frontal": source not in NOT_ALL_FRONTAL})
    e = np.array(errors)
    photos = _non_faces()
    hits = [name for name, p in zip(NON_FACES, photos) if align.aligned_faces(p)]
    return {"finder": "align", "rows": rows, "non_faces": len(photos),
            "non_faces_found": len(hits), "non_faces_hits": hits,
            "corner_error_mean": _percentiles(e.mean(1)),
            "corner_error_max": _percentiles(e.max(1)), "aligned_tolerance": align.ALIGNED}


def _five_frame(five: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Origin (the eyes' midpoint), rotation (rows: unit x along the eyes, unit y) and
    scale (eye distance) of dlib's 5 landmarks: points 0-1 are the corners of the eye
    on the image's right, 2-3 of the other, 4 the base of the nose."""
    left, right = five[2:4].mean(0), five[0:2].mean(0)
    across = right - left
    scale = float(np.hypot(*across))
    ux = across / scale
    return (left + right) / 2, np.array([ux, [-ux[1], ux[0]]]), scale


def _to_frame(five: np.ndarray, points: np.ndarray) -> np.ndarray:
    origin, rot, scale = _five_frame(five)
    return (points - origin) @ rot.T / scale


def _from_frame(five: np.ndarray, local: np.ndarray) -> np.ndarray:
    origin, rot, scale = _five_frame(five)
    return local * scale @ rot + origin


def measure_landmarks(n: int | None, seed: int) -> dict:
    """The landmark model chosen by measurement: dlib's 68-point model against its
    5-point one with a fitted mouth. For the most certain face of each image, both
    models' landmarks; a least-squares linear map (in the frame of the 5-point eyes)
    from the 5 points to FFHQ's four (eye centres, mouth corners) fitted on every
    source but 140k and tested on 140k: corner error of the 5-point quad against the
    68-point one (% of the quad's side), and of each against the 140k image (the
    true FFHQ crop; % of the image's side), mean of the 4 corners; and the
    predictors' ms per face."""
    p68, p5 = align._predictor("68"), align._predictor("5")
    train_x, train_y, test = [], [], []
    ms = {"68": [], "5": []}
    for source in SOURCES:
        for f in _files(source, n, seed):
            rgb = ffeat.load_image(f)
            found = align.find_landmarks(rgb, max_faces=1, verify=False)
            if not found:
                continue
            box = found[0][0]
            t = time.process_time()
            lm68 = align._landmarks(rgb, box, p68)
            t68 = time.process_time()
            five = align._landmarks(rgb, box, p5)
            ms["68"].append(t68 - t)
            ms["5"].append(time.process_time() - t68)
            x = np.append(_to_frame(five, five).ravel(), 1.0)
            y = _to_frame(five, align.ffhq_points(lm68)).ravel()
            if source.startswith("140k"):
                test.append((x, five, lm68, rgb.shape))
            else:
                train_x.append(x)
                train_y.append(y)
    coef, *_ = np.linalg.lstsq(np.array(train_x), np.array(train_y), rcond=None)
    between, err5, err68 = [], [], []
    for x, five, lm68, shape in test:
        q5 = align.ffhq_quad(_from_frame(five, (x @ coef).reshape(4, 2)))
        q68 = align.ffhq_quad(align.ffhq_points(lm68))
        between.append(np.hypot(*(q5 - q68).T).mean() / np.hypot(*(q68[3] - q68[0])))
        err5.append(corner_errors(q5, shape).mean())
        err68.append(corner_errors(q68, shape).mean())
    return {"n_fit": len(train_x), "n_test": len(test),
            "five_vs_68": _percentiles(between), "five_vs_image": _percentiles(err5),
            "68_vs_image": _percentiles(err68),
            "ms_per_face": {k: 1000 * float(np.median(v)) for k, v in ms.items()}}


def _find_ms(arrays: list[np.ndarray], repeats: int, finder=find_faces) -> dict:
    """Median wall and CPU milliseconds per image of finding the faces of ``arrays``."""
    return {clock: 1000 * _data.median_time(lambda: [finder(a) for a in arrays], repeats,
                                            clock=getattr(time, clock)) / len(arrays)
            for clock in ("perf_counter", "process_time")}


def measure_cost(n: int, repeats: int = 3, finder: str = "cascade") -> dict:
    """Median ms per image (wall, and CPU: ``_cpu``) of finding faces at each size and in
    ``unsplash`` portraits (when there), and of the default features. With the
    ``align`` finder (the whole :func:`ffeat.reading.align.aligned_faces`, crops included): 140k
    images at :data:`ALIGN_SIZES` (already aligned: found and used as they are), the
    same faces pasted at a third of the side into a 4000 px photograph (``scene_4000``:
    found, then cut and resampled), ``unsplash`` portraits (cut and resampled)."""
    if finder == "align":
        return _measure_cost_align(n, repeats)
    images, _ = _data.source_images(n)
    sets = {str(size): [np.asarray(im) for im in _data.resized(images, size)]
            for size in _data.sizes()}
    if _data.faces_dir("unsplash") is not None:
        sets["unsplash"] = [ffeat.load_image(f) for f in _files("unsplash/real", n, SEED)]
    out = {}
    for name, arrays in sets.items():
        ms = _find_ms(arrays, repeats)
        out[f"find_{name}"], out[f"find_{name}_cpu"] = ms["perf_counter"], ms["process_time"]
    rgb = np.stack([np.asarray(im) for im in _data.resized(images, 256)])
    per = _data.median_time(lambda: _data.compute_compiled(_data.DEFAULT, rgb), repeats)
    out["features_256"] = 1000 * per / len(rgb)
    return out


def _scene(face: Image.Image, side: int, seed: int) -> np.ndarray:
    """``face`` pasted at a third of ``side`` into a ``side`` px photograph."""
    from skimage import data
    canvas = Image.fromarray(data.coffee()).resize((side, side), Image.BILINEAR)
    small = face.resize((side // 3, side // 3), Image.BICUBIC)
    r, c = np.random.default_rng(seed).integers(0, side - side // 3, size=2)
    canvas.paste(small, (int(c), int(r)))
    return np.asarray(canvas)


def _measure_cost_align(n: int, repeats: int) -> dict:
    images, _ = _data.source_images(n)
    align.aligned_faces(np.asarray(images[0]))  # dlib and its models loaded
    few = images[: max(1, n // 4)]
    sets = {str(size): (lambda size=size: [np.asarray(im) for im in _data.resized(
        images if size <= 1024 else few, size)]) for size in ALIGN_SIZES}
    sets["scene_4000"] = lambda: [_scene(im, 4000, i) for i, im in enumerate(few)]
    if _data.faces_dir("unsplash") is not None:
        sets["unsplash"] = lambda: [ffeat.load_image(f)
                                    for f in _files("unsplash/real", n, SEED)]
    out = {}
    for name, make in sets.items():
        arrays = make()
        ms = _find_ms(arrays, repeats, align.aligned_faces)
        out[f"align_{name}"], out[f"align_{name}_cpu"] = ms["perf_counter"], ms["process_time"]
        del arrays
    return out


def _backgrounds() -> list[np.ndarray]:
    from skimage import data
    photos = (data.coffee(), data.rocket(), data.hubble_deep_field(),
              data.immunohistochemistry(), data.chelsea(), data.retina())
    return [np.asarray(Image.fromarray(p).resize((BACKGROUND, BACKGROUND), Image.BICUBIC))
            for p in photos]


def _pasted(rgb: np.ndarray, rng: np.random.Generator,
            backgrounds) -> tuple[np.ndarray, tuple[int, int, int]]:
    """``rgb`` scaled to 0.5-1.0 of a background's side, at a random position; and
    where it lies (left, top, side)."""
    canvas = backgrounds[rng.integers(len(backgrounds))].copy()
    side = int(rng.uniform(0.5, 1.0) * BACKGROUND)
    face = np.asarray(Image.fromarray(rgb).resize((side, side), Image.BICUBIC))
    r, c = rng.integers(0, BACKGROUND - side + 1, size=2)
    canvas[r:r + side, c:c + side] = face
    return canvas, (int(c), int(r), side)


def _misframed(rgb: np.ndarray, square: tuple[int, int, int], shift: float, scale: float,
               rng: np.random.Generator) -> np.ndarray:
    """The 256 px crop of ``square`` (left, top, side) moved and resized by seeded normal
    errors of ``shift`` and ``scale`` of its side (edge pixels repeated past the border)."""
    left, top, side = square
    dx, dy = rng.normal(0.0, shift, size=2) * side
    new = side * (1 + rng.normal(0.0, scale))
    x0, y0 = left + dx - (new - side) / 2, top + dy - (new - side) / 2
    pad = side
    padded = Image.fromarray(np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
    return np.asarray(padded.resize((256, 256), Image.LANCZOS,
                                    box=(x0 + pad, y0 + pad, x0 + new + pad, y0 + new + pad)))


def _margin(rgb: np.ndarray) -> np.ndarray:
    pad = rgb.shape[0] // 4
    return np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")


def _rows(images: list[np.ndarray]) -> np.ndarray:
    families = resolve_features(FEATURES)
    return np.vstack([np.hstack([f.compute(im[None], 1) for f in families])
                      for im in images])


def _jittered(box: tuple[int, int, int, int], rng: np.random.Generator) -> tuple[int, ...]:
    """``box`` shifted by up to :data:`SHIFT` of its width and scaled by up to :data:`SCALE`."""
    x, y, w, h = box
    dx, dy = rng.uniform(-SHIFT, SHIFT, size=2) * w
    s = rng.uniform(1 - SCALE, 1 + SCALE)
    return (round(x + dx + w * (1 - s) / 2), round(y + dy + h * (1 - s) / 2),
            max(1, round(w * s)), max(1, round(h * s)))


def _training_frames(images: list[np.ndarray], variant: str, seed: int, backgrounds) -> list:
    """Indices into ``images`` and the crop model's training frames of one variant."""
    first = [face_crops(im, "auto")[0] for im in images]
    aligned = [(i, f.crop) for i, f in enumerate(first)]
    if variant == "aligned":
        return aligned
    if variant == "boxcut":
        return [(i, f.crop if f.box is None else frame(im, f.box))
                for i, (im, f) in enumerate(zip(images, first))]
    rng = np.random.default_rng(seed + 1)  # not the test sets' stream
    if variant == "jitter":
        return aligned + [(i, frame(im, _jittered(f.box, rng))) for i, (im, f)
                          in enumerate(zip(images, first)) if f.box is not None
                          for _ in range(JITTERS)]
    reframed = [(i, face_crops(make(im), "auto")[0].crop)
                for make in (lambda im: _pasted(im, rng, backgrounds)[0], _margin)
                for i, im in enumerate(images)]
    return aligned + reframed if variant == "mixed" else reframed


def _tight(rgb: np.ndarray, keep: float = TIGHT) -> np.ndarray:
    """The centre ``keep`` of ``rgb`` (not resized): FFHQ's quad leaves it."""
    side = rgb.shape[0]
    cut = round(side * (1 - keep) / 2)
    return np.ascontiguousarray(rgb[cut:side - cut, cut:side - cut])


def _align_views(im: np.ndarray) -> tuple[list[np.ndarray], bool, bool]:
    """The aligned crops of ``im`` (the whole image when no face is found), whether none
    was found, and whether the first crop was padded."""
    faces = align.aligned_faces(im)
    if not faces:
        return [im], True, False
    return [f.crop for f in faces], False, faces[0].padded


def _test_rows(images, policy: str) -> tuple[list[np.ndarray], int, int]:
    """Per image, the feature rows of its faces; the count of images without one and
    (``align``) of images whose first face was padded."""
    rows, missed, padded = [], 0, 0
    for im in images:
        if policy == "align":
            crops, miss, pad = _align_views(im)
            missed += miss
            padded += pad
        else:
            found = face_crops(im, "auto" if policy == "crop" else "off")
            missed += policy == "crop" and found[0].box is None
            crops = [f.crop for f in found]
        rows.append(_rows(crops))
    return rows, missed, padded


def _scores(model, rows: list[np.ndarray]) -> np.ndarray:
    """Per image, the most-fake face's probability."""
    return np.array([model.predict_proba(r)[:, 1].max() for r in rows])


def measure_reframed(n: int | None, seed: int,
                     trainings: tuple[str, ...] = TRAININGS[:1],
                     policies: tuple[str, ...] = ("off", "crop")) -> dict:
    """AUCs of aligned, pasted, margin and tight test images under each policy (and, with
    ``faces="crop"``, each training variant of :data:`TRAININGS` asked for). Under
    ``faces="align"`` (when asked for) the model is trained on the aligned crops of the
    training half; ``padding`` then says how well the cheap families tell a padded
    crop (of a ``tight`` image) from an unpadded one (of its ``margin`` image).
    Each row gives the mean score of the real and of the fake test images, so that a
    shift of the padded (``tight``) crops' scores shows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    files, labels = _data.face_files("140k", n)
    order = np.random.default_rng(seed).permutation(len(files))
    train, test = order[: len(order) // 2], order[len(order) // 2:]
    images = [ffeat.load_image(f) for f in files]

    def fit(rows, y):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
        return model.fit(rows, y)

    backgrounds = _backgrounds()
    whole = fit(_rows([images[i] for i in train]), labels[train])
    framed = {}
    if "crop" in policies:
        for variant in trainings:
            pairs = _training_frames([images[i] for i in train], variant, seed, backgrounds)
            framed[variant] = fit(_rows([c for _, c in pairs]),
                                  labels[train][[i for i, _ in pairs]])
    if "align" in policies:
        crops = [_align_views(images[i])[0][0] for i in train]
        aligned_model = fit(_rows(crops), labels[train])
    rng = np.random.default_rng(seed)
    pasted = [_pasted(images[i], rng, backgrounds) for i in test]
    tests = {"aligned": [images[i] for i in test], "pasted": [p for p, _ in pasted],
             "margin": [_margin(images[i]) for i in test],
             "tight": [_tight(images[i]) for i in test]}
    rows, features_of = [], {}
    y = labels[test]
    for name, imgs in tests.items():
        for policy in policies:
            t = time.perf_counter()
            features, missed, padded = _test_rows(imgs, policy)
            seconds = time.perf_counter() - t
            features_of[name, policy] = features
            models = ({"whole": whole} if policy == "off" else framed if policy == "crop"
                      else {"aligned": aligned_model})
            for variant, model in models.items():
                scores = _scores(model, features)
                rows.append({"test": name, "faces": policy, "train": variant, "missed": missed,
                             "padded": padded, "auc": float(roc_auc_score(y, scores)),
                             "mean_real": float(scores[y == 0].mean()),
                             "mean_fake": float(scores[y == 1].mean()), "s": seconds})
    tolerance = []
    for shift, scale in TOLERANCES:
        crops = [_misframed(p, square, shift, scale, rng) for p, square in pasted]
        tolerance.append({"shift": shift, "scale": scale, "auc": float(roc_auc_score(
            labels[test], whole.predict_proba(_rows(crops))[:, 1]))})
    out = {"n_train": len(train), "n_test": len(test), "features": "+".join(FEATURES),
           "rows": rows, "tolerance": tolerance}
    if "align" in policies:
        out["padding"] = _padding_cue(features_of["margin", "align"],
                                      features_of["tight", "align"])
    return out


def _padding_cue(plain: list[np.ndarray], padded: list[np.ndarray]) -> dict:
    """Cross-validated ROC AUC (5 folds, an image's two crops in one fold) of the cheap
    families telling the first aligned crop of a ``tight`` image (padded) from that of
    its ``margin`` image (the same pixels at the same scale, resampled alike, with its
    true surroundings instead of padding), both classes pooled."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.vstack([r[:1] for r in plain] + [r[:1] for r in padded])
    y = np.r_[np.zeros(len(plain)), np.ones(len(padded))]
    groups = np.r_[np.arange(len(plain)), np.arange(len(padded))]  # an image's two crops
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
    p = cross_val_predict(model, X, y, groups=groups, cv=GroupKFold(5), method="predict_proba")
    return {"auc_padded_vs_not": float(roc_auc_score(y, p[:, 1])), "n": len(plain)}


def measure_detector(model: str | None, n: int | None, seed: int) -> dict:
    """A trained detector (the shipped one when ``model`` is None) on the ``140k`` test
    halves, as given and re-framed (see the module docstring): per variant ROC AUC of
    the images scored, their count and the count without a score."""
    from sklearn.metrics import roc_auc_score

    detector = ffeat.load_detector(model) if model else ffeat.load_detector()
    test = _corpus.held_out(("ffhq", "stylegan1"), None, n)
    images = [ffeat.load_image(p) for p in test.paths]
    rng = np.random.default_rng(seed)
    backgrounds = _backgrounds()
    variants = {"as given": lambda im: im,
                "pasted into photos": lambda im: _pasted(im, rng, backgrounds)[0],
                "with margins": _margin,
                "framed 1.5x tighter": lambda im: _tight(im, 2 / 3)}
    rows = []
    for name, make in variants.items():
        scores, _ = detector.score_images([make(im) for im in images])
        ok = ~np.isnan(scores)
        rows.append({"variant": name, "n": int(ok.sum()), "no_score": int((~ok).sum()),
                     "auc": float(roc_auc_score(test.labels[ok], scores[ok]))})
        print(f"detector, {name}: AUC {rows[-1]['auc']:.3f} ({rows[-1]['no_score']} "
              "without a score)", file=sys.stderr, flush=True)
    return {"model": model or "shipped", "reading": dict(vars(detector.reading)),
            "rows": rows}


def markdown(result: dict) -> str:
    """The tables of the finders measured, as text (docs/faces.md renders its own from the
    JSON: benchmarks/render_docs.py)."""
    lines = []
    if "found" in result:
        found = result["found"]
        lines += ["| source | images | face found | faces destroyed: found | "
                  "frame on the aligned image | misses (first) |", "|---|---|---|---|---|---|"]
        for r in found["rows"]:
            aligned = f"{r['aligned']:.3f}" if "aligned" in r else "-"
            lines.append(f"| {r['source']} | {r['images']} | {r['found']:.3f} | "
                         f"{r['found_scrambled']:.3f} | {aligned} | "
                         f"{', '.join(r['misses'][:3])} |")
        lines += ["", f"scikit-image photographs without a face: a face found in "
                  f"{found['non_faces_found']} of {found['non_faces']}"]
        lines += ["", f"140k box geometry (medians): side/width {found['margin']:.3f}, "
                  f"centre offset x {found['offset_x']:.3f}, y {found['offset']:.3f} widths", ""]
    if "align_found" in result:
        found = result["align_found"]
        lines += ["faces='align' (ffeat.reading.align)", "",
                  "| source | images | face found | faces destroyed: found | used as it is | "
                  "padded | misses (first) |", "|---|---|---|---|---|---|---|"]
        for r in found["rows"]:
            star = "" if r["frontal"] else " (not all frontal)"
            lines.append(f"| {r['source']}{star} | {r['images']} | {r['found']:.3f} | "
                         f"{r['found_scrambled']:.3f} | {r['as_is']:.3f} | {r['padded']:.3f} | "
                         f"{', '.join(r['misses'][:3])} |")
        lines += ["", f"scikit-image photographs without a face: a face found in "
                  f"{found['non_faces_found']} of {found['non_faces']} "
                  f"({', '.join(found['non_faces_hits']) or 'none'})"]
        for kind in ("mean", "max"):
            e = found[f"corner_error_{kind}"]
            lines += ["", f"140k quad corner error ({kind} of the 4 corners, % of the side): "
                      + ", ".join(f"{k} {v:.2%}" for k, v in e.items())]
        lines += [""]
    if "landmarks" in result:
        lm = result["landmarks"]
        lines += [f"Landmark model ({lm['n_fit']} faces to fit the 5-point mouth, "
                  f"{lm['n_test']} 140k faces to test; mean corner error, percentiles)", "",
                  "| quad | " + " | ".join(lm["68_vs_image"]) + " |",
                  "|---|" + "---|" * len(lm["68_vs_image"])]
        for key, label in (("68_vs_image", "68-point vs the 140k crop"),
                           ("five_vs_image", "5-point + fitted mouth vs the 140k crop"),
                           ("five_vs_68", "5-point vs 68-point (% of the quad)")):
            lines.append(f"| {label} | " + " | ".join(f"{v:.2%}" for v in lm[key].values())
                         + " |")
        lines += ["", "landmarks ms per face: " + ", ".join(
            f"{k}-point {v:.2f}" for k, v in lm["ms_per_face"].items()), ""]
    if "cost" in result:
        cost = result["cost"]
        lines += ["| input | find faces ms/img, wall (1 core) | CPU |", "|---|---|---|"]
        lines += [f"| {s} | {cost[f'find_{s}']:.2f} | {cost[f'find_{s}_cpu']:.2f} |"
                  for s in (*map(str, _data.SIZES), "unsplash") if f"find_{s}" in cost]
        lines += [f"| default features on the 256 px frame | {cost['features_256']:.2f} | |", ""]
    if "align_cost" in result:
        cost = result["align_cost"]
        lines += ["| input | faces='align' ms/img, wall (1 core) | CPU |", "|---|---|---|"]
        lines += [f"| {k[6:]} | {v:.2f} | {cost[k + '_cpu']:.2f} |" for k, v in cost.items()
                  if not k.endswith("_cpu")]
        lines += [""]
    if "reframed" in result:
        re = result["reframed"]
        lines += [f"Re-framed 140k ({re['features']}, logistic; {re['n_train']} train, "
                  f"{re['n_test']} test images)", "",
                  "| test images | faces | ROC AUC | mean score real / fake | no face found | "
                  "padded |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['test']} | {r['faces']} | {r['auc']:.3f} | {r['mean_real']:.3f} / "
                  f"{r['mean_fake']:.3f} | {r['missed']} | {r['padded']} |"
                  for r in re["rows"] if r["train"] in ("whole", TRAININGS[0])]
        if "padding" in re:
            lines += ["", "Padding as a cue: cheap families tell a padded crop from an "
                      f"unpadded one with ROC AUC {re['padding']['auc_padded_vs_not']:.3f} "
                      f"({re['padding']['n']} images, 5-fold)"]
        lines += ["", "| pasted faces cut from their true square, error sd: shift | side | "
                  "ROC AUC |", "|---|---|---|"]
        lines += [f"| {t['shift']:.0%} | {t['scale']:.0%} | {t['auc']:.3f} |"
                  for t in re["tolerance"]]
        extra = [r for r in re["rows"] if r["train"] not in ("whole", TRAININGS[0])]
        if extra:
            lines += ["", "| test images | crop model trained on | ROC AUC |", "|---|---|---|"]
            lines += [f"| {r['test']} | {r['train']} | {r['auc']:.3f} |" for r in extra]
    if "detector" in result:
        det = result["detector"]
        lines += ["", f"Detector {det['model']} (reading {det['reading']}) on the 140k test "
                  "halves", "", "| test images | scored | no score | ROC AUC |",
                  "|---|---|---|---|"]
        lines += [f"| {r['variant']} | {r['n']} | {r['no_score']} | {r['auc']:.3f} |"
                  for r in det["rows"]]
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    """Found rate per source and re-framed AUC per policy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    rows = result["found"]["rows"]
    x = np.arange(len(rows))
    a.bar(x - 0.2, [r["found"] for r in rows], width=0.4, label="faces")
    a.bar(x + 0.2, [r["found_scrambled"] for r in rows], width=0.4,
          label="faces destroyed (blocks shuffled)")
    a.axhline(0.98, color="k", lw=0.8, ls="--", label="target 0.98")
    a.set_xticks(range(len(rows)), [r["source"] for r in rows], rotation=45, ha="right")
    a.set_ylim(0.0, 1.0)
    a.set_ylabel("face found")
    a.legend()
    re = result["reframed"]["rows"]
    b.bar(range(len(re)), [r["auc"] for r in re])
    b.set_xticks(range(len(re)), [f"{r['test']}\n{r['faces']}\n{r['train']}" for r in re],
                 fontsize=7)
    b.axhline(0.5, color="k", lw=0.8, ls=":")  # chance
    b.set_ylim(0.4, 1.0)
    b.set_ylabel("ROC AUC")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=None, help="at most N images per source and class")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--finder", nargs="+", default=FINDERS[:1], choices=FINDERS,
                   help="face finders measured (default: cascade)")
    p.add_argument("--train", nargs="*", default=(), choices=TRAININGS[1:],
                   help="also measure crop models trained on these frames (see above)")
    p.add_argument("--skip", nargs="*", default=(),
                   choices=("found", "cost", "reframed", "landmarks"))
    p.add_argument("--detector", nargs="?", const="", default=None, metavar="FILE",
                   help="also measure a trained detector on re-framed 140k test faces "
                        "(no FILE: the shipped one)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--plot", metavar="FILE", help="also plot them (needs matplotlib)")
    args = p.parse_args(argv)
    if _data.faces_missing("faces.py"):
        return 2
    cascade, aligner = "cascade" in args.finder, "align" in args.finder
    with _data.one_blas_thread():
        result = {}
        if "found" not in args.skip:
            if cascade:
                result["found"] = measure_found(args.n, args.seed)
            if aligner:
                result["align_found"] = measure_found(args.n, args.seed, "align")
        if "cost" not in args.skip:
            if cascade:
                result["cost"] = measure_cost(COST_IMAGES)
            if aligner:
                result["align_cost"] = measure_cost(COST_IMAGES, finder="align")
        if aligner and "landmarks" not in args.skip:
            result["landmarks"] = measure_landmarks(args.n, args.seed)
        if "reframed" not in args.skip:
            policies = ("off",) + ("crop",) * cascade + ("align",) * aligner
            result["reframed"] = measure_reframed(args.n, args.seed,
                                                  TRAININGS[:1] + tuple(args.train), policies)
        if args.detector is not None:
            result["detector"] = measure_detector(args.detector or None, args.n, args.seed)
    print(markdown(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    if args.plot and {"found", "reframed"} <= set(result):
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
