"""The fixed face-finding protocol of docs/faces.md ("Faces in photos").

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

Usage: ``python benchmarks/faces.py [--n N] [--seed S] [--train VARIANT ...]
[--json FILE] [--plot FILE]`` (``--n``: at most N images per source and class,
all by default).
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
    from . import _data
except ImportError:  # run as a script: this folder is on sys.path
    import _data

import ffeat  # noqa: E402
from ffeat.reading.faces import FRAMED, face_crops, find_faces, frame, frame_overlap  # noqa: E402
from ffeat.features import resolve_features  # noqa: E402

SEED = 0
#: Sources and classes of the shared sets.
SOURCES = ("140k/real", "140k/fake", "tpdne/real", "tpdne/fake", "sdfd/fake",
           "utkface/real", "lfw/real", "unsplash/real")
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


def measure_found(n: int | None, seed: int) -> dict:
    """Found rate, misses and (140k) framing per source; found rate on the same images
    with their faces destroyed and on photographs without faces."""
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
    return {"rows": rows, "margin": float(np.median(g[:, 0])),
            "offset_x": float(np.median(g[:, 1])), "offset": float(np.median(g[:, 2])),
            "non_faces": len(photos),
            "non_faces_found": sum(bool(find_faces(p)) for p in photos)}


def _find_ms(arrays: list[np.ndarray], repeats: int) -> dict:
    """Median wall and CPU milliseconds per image of finding the faces of ``arrays``."""
    return {clock: 1000 * _data.median_time(lambda: [find_faces(a) for a in arrays], repeats,
                                            clock=getattr(time, clock)) / len(arrays)
            for clock in ("perf_counter", "process_time")}


def measure_cost(n: int, repeats: int = 3) -> dict:
    """Median ms per image (wall, and CPU: ``_cpu``) of finding faces at each size and in
    ``unsplash`` portraits (when there), and of the default features."""
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
    aligned = [(i, crop) for i, (_, crop) in enumerate(first)]
    if variant == "aligned":
        return aligned
    if variant == "boxcut":
        return [(i, crop if box is None else frame(im, box))
                for i, (im, (box, crop)) in enumerate(zip(images, first))]
    rng = np.random.default_rng(seed + 1)  # not the test sets' stream
    if variant == "jitter":
        return aligned + [(i, frame(im, _jittered(box, rng))) for i, (im, (box, _))
                          in enumerate(zip(images, first)) if box is not None
                          for _ in range(JITTERS)]
    reframed = [(i, face_crops(make(im), "auto")[0][1])
                for make in (lambda im: _pasted(im, rng, backgrounds)[0], _margin)
                for i, im in enumerate(images)]
    return aligned + reframed if variant == "mixed" else reframed


def _test_rows(images, policy: str) -> tuple[list[np.ndarray], int]:
    """Per image, the feature rows of its faces; and the count of images without one."""
    rows, missed = [], 0
    for im in images:
        crops = face_crops(im, "auto" if policy == "crop" else "off")
        missed += policy == "crop" and crops[0][0] is None
        rows.append(_rows([c for _, c in crops]))
    return rows, missed


def _scores(model, rows: list[np.ndarray]) -> np.ndarray:
    """Per image, the most-fake face's probability."""
    return np.array([model.predict_proba(r)[:, 1].max() for r in rows])


def measure_reframed(n: int | None, seed: int,
                     trainings: tuple[str, ...] = TRAININGS[:1]) -> dict:
    """AUCs of aligned, pasted and margin test images under each policy (and, with
    ``faces="crop"``, each training variant of :data:`TRAININGS` asked for)."""
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
    for variant in trainings:
        pairs = _training_frames([images[i] for i in train], variant, seed, backgrounds)
        framed[variant] = fit(_rows([c for _, c in pairs]), labels[train][[i for i, _ in pairs]])
    rng = np.random.default_rng(seed)
    pasted = [_pasted(images[i], rng, backgrounds) for i in test]
    tests = {"aligned": [images[i] for i in test], "pasted": [p for p, _ in pasted],
             "margin": [_margin(images[i]) for i in test]}
    rows = []
    for name, imgs in tests.items():
        for policy in ("off", "crop"):
            t = time.perf_counter()
            features, missed = _test_rows(imgs, policy)
            seconds = time.perf_counter() - t
            models = {"whole": whole} if policy == "off" else framed
            for variant, model in models.items():
                rows.append({"test": name, "faces": policy, "train": variant, "missed": missed,
                             "auc": float(roc_auc_score(labels[test], _scores(model, features))),
                             "s": seconds})
    tolerance = []
    for shift, scale in TOLERANCES:
        crops = [_misframed(p, square, shift, scale, rng) for p, square in pasted]
        tolerance.append({"shift": shift, "scale": scale, "auc": float(roc_auc_score(
            labels[test], whole.predict_proba(_rows(crops))[:, 1]))})
    return {"n_train": len(train), "n_test": len(test), "features": "+".join(FEATURES),
            "rows": rows, "tolerance": tolerance}


def markdown(result: dict) -> str:
    """The tables (docs/faces.md renders its own from the JSON: benchmarks/render_docs.py)."""
    found = result["found"]
    lines = ["| source | images | face found | faces destroyed: found | "
             "frame on the aligned image | misses (first) |", "|---|---|---|---|---|---|"]
    for r in found["rows"]:
        aligned = f"{r['aligned']:.3f}" if "aligned" in r else "-"
        lines.append(f"| {r['source']} | {r['images']} | {r['found']:.3f} | "
                     f"{r['found_scrambled']:.3f} | {aligned} | {', '.join(r['misses'][:3])} |")
    lines += ["", f"scikit-image photographs without a face: a face found in "
              f"{found['non_faces_found']} of {found['non_faces']}"]
    lines += ["", f"140k box geometry (medians): side/width {found['margin']:.3f}, "
              f"centre offset x {found['offset_x']:.3f}, y {found['offset']:.3f} widths", ""]
    cost = result["cost"]
    lines += ["| input | find faces ms/img, wall (1 core) | CPU |", "|---|---|---|"]
    lines += [f"| {s} | {cost[f'find_{s}']:.2f} | {cost[f'find_{s}_cpu']:.2f} |"
              for s in (*map(str, _data.SIZES), "unsplash") if f"find_{s}" in cost]
    lines += [f"| default features on the 256 px frame | {cost['features_256']:.2f} | |", ""]
    re = result["reframed"]
    lines += [f"Re-framed 140k ({re['features']}, logistic; {re['n_train']} train, "
              f"{re['n_test']} test images)", "",
              "| test images | faces | ROC AUC | no face found |", "|---|---|---|---|"]
    lines += [f"| {r['test']} | {r['faces']} | {r['auc']:.3f} | {r['missed']} |"
              for r in re["rows"] if r["train"] in ("whole", TRAININGS[0])]
    lines += ["", "| pasted faces cut from their true square, error sd: shift | side | "
              "ROC AUC |", "|---|---|---|"]
    lines += [f"| {t['shift']:.0%} | {t['scale']:.0%} | {t['auc']:.3f} |"
              for t in re["tolerance"]]
    extra = [r for r in re["rows"] if r["train"] not in ("whole", TRAININGS[0])]
    if extra:
        lines += ["", "| test images | crop model trained on | ROC AUC |", "|---|---|---|"]
        lines += [f"| {r['test']} | {r['train']} | {r['auc']:.3f} |" for r in extra]
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
    p.add_argument("--train", nargs="*", default=(), choices=TRAININGS[1:],
                   help="also measure crop models trained on these frames (see above)")
    p.add_argument("--skip", nargs="*", default=(), choices=("found", "cost", "reframed"))
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--plot", metavar="FILE", help="also plot them (needs matplotlib)")
    args = p.parse_args(argv)
    if _data.faces_missing("faces.py"):
        return 2
    with _data.one_blas_thread():
        result = {}
        if "found" not in args.skip:
            result["found"] = measure_found(args.n, args.seed)
        if "cost" not in args.skip:
            result["cost"] = measure_cost(16)
        if "reframed" not in args.skip:
            result["reframed"] = measure_reframed(args.n, args.seed,
                                                  TRAININGS[:1] + tuple(args.train))
    if len(result) == 3:
        print(markdown(result))
    else:
        print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    if args.plot and len(result) == 3:
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
