"""Images and measurements shared by the asv suites, ``run.py`` and ``gpu.py``.

Images: the JPEGs of ``$FFEAT_FACES/140k`` (default ``../shared/faces`` beside
the repository) when present, else the embedded demo set; resized (bicubic) to
other sizes and re-encoded (JPEG q75, PNG) where a size or format differs from
the files'. Measurements are per-image seconds, medians of repeats after a
warm-up, one core unless noted (BLAS held to one thread for the NumPy
references).

``FFEAT_BENCH_QUICK=1`` shrinks every measurement to a token one (one image,
one repeat, the smallest size, at most 100 images for the count scaling): the
benchmarks' own test uses it, and it is a fast smoke run for developers.
``FFEAT_BENCH_MAX_COUNT`` caps the image counts of the scaling benchmarks
(default 10000; larger counts are skipped).
"""
from __future__ import annotations

import os

# One core means one core: keep BLAS (used by the NumPy references) single-threaded
# where this module is imported before NumPy; timed references also run under
# threadpoolctl's limit, which works either way.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import functools  # noqa: E402
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import ffeat
from ffeat.families import compute_families

#: Image sides every size-dependent benchmark covers.
SIZES = (256, 512, 1024)
#: Label of the default feature set (its family names joined by ``+``).
DEFAULT = "+".join(ffeat.DEFAULT_FEATURES)
#: Feature sets timed: each family and the default set.
FAMILY_SETS = {**{name: (name,) for name in ffeat.features.FAMILIES},
               DEFAULT: tuple(ffeat.DEFAULT_FEATURES)}
#: Side of the tiny images of the image-count scaling runs.
TINY = 64
#: Image counts of the scaling runs.
COUNTS = (1, 100, 10000)


def quick() -> bool:
    """Whether ``FFEAT_BENCH_QUICK`` asks for token measurements."""
    return os.environ.get("FFEAT_BENCH_QUICK", "") not in ("", "0")


def sizes() -> tuple[int, ...]:
    """The sizes measured in this run (only the smallest in quick mode)."""
    return SIZES[:1] if quick() else SIZES


def max_count() -> int:
    """Largest image count the scaling benchmarks run (larger ones are skipped)."""
    cap = int(os.environ.get("FFEAT_BENCH_MAX_COUNT", max(COUNTS)))
    return min(cap, 100) if quick() else cap


def families(label: str) -> tuple:
    """The configured families of a feature set label."""
    return ffeat.features.resolve_features(FAMILY_SETS[label])


# --- images -------------------------------------------------------------------------------


def faces_root() -> Path:
    """Where real labelled faces are looked for: ``$FFEAT_FACES`` or ``../shared/faces``."""
    env = os.environ.get("FFEAT_FACES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "faces"


def faces_dir(set_name: str = "140k") -> Path | None:
    """The folder of real face sets if it holds ``set_name``, else None."""
    root = faces_root()
    return root if (root / set_name / "real").is_dir() else None


def faces_missing(script: str, sets: str = "140k/") -> bool:
    """Whether the real face sets are absent (no ``140k``); if so, says on stderr that
    ``script`` needs ``FFEAT_FACES`` set to the folder holding ``sets``."""
    if faces_dir("140k") is not None:
        return False
    print(f"{script}: the real face sets are not at {faces_root()}; set FFEAT_FACES to the "
          f"folder that holds {sets}", file=sys.stderr)
    return True


def face_files(set_name: str, n_per_class: int | None = None) -> tuple[list[Path], np.ndarray]:
    """Sorted JPEGs of one set (real then fake) and their labels (1 = fake)."""
    root = faces_dir(set_name)
    if root is None:
        raise FileNotFoundError(f"no {set_name} set under {faces_root()}")
    files, labels = [], []
    for label, cls in enumerate(("real", "fake")):
        found = sorted((root / set_name / cls).glob("*.jpg"))[:n_per_class]
        files += found
        labels += [label] * len(found)
    return files, np.array(labels, dtype=np.int8)


@functools.lru_cache(maxsize=4)
def _source_files(n: int) -> tuple[tuple[Path, ...], str]:
    root = faces_dir()
    if root is None:
        return (), ""
    files = sorted((root / "140k" / "real").glob("*.jpg"))[: n // 2]
    files += sorted((root / "140k" / "fake").glob("*.jpg"))[: n - len(files)]
    return tuple(files), str(root / "140k")


@functools.lru_cache(maxsize=4)
def source_images(n: int) -> tuple[tuple[Image.Image, ...], str]:
    """``n`` RGB images (half real, half fake) and where they come from."""
    files, origin = _source_files(n)
    if files:
        return tuple(Image.open(f).convert("RGB") for f in files), origin
    arrays, _ = ffeat.make_demo_set(n_per_class=(n + 1) // 2, size=256)
    return tuple(Image.fromarray(a) for a in arrays[:n]), "the demo set"


def resized(images, size: int) -> list[Image.Image]:
    """The images at ``size x size`` (bicubic; unchanged at their own size)."""
    return [im if im.size == (size, size) else im.resize((size, size), Image.BICUBIC)
            for im in images]


def encode(image: Image.Image, fmt: str = "jpeg") -> bytes:
    """One image as JPEG q75 (the quality of the face sets) or PNG bytes."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        image.save(buf, format="JPEG", quality=75)
    else:
        image.save(buf, format="PNG")
    return buf.getvalue()


@functools.lru_cache(maxsize=16)
def encoded(n: int, size: int, fmt: str = "jpeg") -> tuple[tuple[bytes, ...], str]:
    """``n`` encoded images of ``size`` px: the face files themselves when they are
    JPEGs of that size, else resized and re-encoded."""
    files, origin = _source_files(n)
    if files and fmt == "jpeg" and size == 256:
        return tuple(f.read_bytes() for f in files), f"{origin} ({len(files)} JPEGs)"
    images, origin = source_images(n)
    note = f"{origin} ({len(images)} images)"
    if images[0].size != (size, size):
        note += f", resized to {size} px"
    return tuple(encode(im, fmt) for im in resized(images, size)), \
        note + (", encoded as JPEG q75" if fmt == "jpeg" else ", encoded as PNG")


def rgb_batch(n: int, size: int) -> np.ndarray:
    """``(n, size, size, 3)`` uint8: the decoded JPEGs of :func:`encoded`."""
    blobs, _ = encoded(n, size)
    return np.stack([ffeat.load_image(b) for b in blobs])


def tiny_images(count: int, size: int = TINY) -> list[np.ndarray]:
    """``count`` in-memory ``size`` px images (16 distinct ones, repeated)."""
    images, _ = source_images(16)
    arrays = [np.asarray(im) for im in resized(images, size)]
    return [arrays[i % len(arrays)] for i in range(count)]


# --- measurements -------------------------------------------------------------------------


def median_time(fn, repeats: int, warmup: bool = True, clock=time.perf_counter) -> float:
    """Median time (s) of ``fn()`` over ``repeats`` runs after an optional warm-up: wall
    time, or the CPU time of this process with ``clock=time.process_time`` (which other
    jobs on a shared machine do not inflate)."""
    if warmup and not quick():
        fn()  # caches, thread pools, FFT plans, page faults
    times = []
    for _ in range(1 if quick() else max(1, repeats)):
        t = clock()
        fn()
        times.append(clock() - t)
    return statistics.median(times)


def compute_compiled(label: str, rgb: np.ndarray, n_threads: int = 1) -> None:
    for family in families(label):
        family.compute(rgb, n_threads=n_threads)


def compute_reference(label: str, rgb: np.ndarray) -> None:
    for family in families(label):
        for image in rgb:  # the NumPy oracle: each family's array code
            compute_families(np, image[None], [family])


def write_results(result: dict, table: str, json_path: str | None = None,
                  plot_path: str | None = None, plot=None) -> None:
    """A protocol script's output: ``table`` on stdout, ``result`` as JSON to
    ``json_path`` and ``plot(result, plot_path)``, each when its path is given."""
    print(table)
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(result, fh, indent=1)
    if plot_path:
        plot(result, plot_path)


def one_blas_thread():
    """Context manager holding BLAS (and OpenMP pools) to one thread."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1)


def measure_size(size: int, n: int = 16, repeats: int = 5, n_reference: int = 2) -> dict:
    """Per-image seconds at ``size`` px, all on one core and the same images: Pillow
    decoding (``load_image``) of JPEG and PNG, every feature set compiled
    (``n``-image batch) and through the NumPy reference (its first ``n_reference``
    images, half the repeats)."""
    if quick():
        n, n_reference = 1, min(n_reference, 1)
    blobs, origin = encoded(n, size, "jpeg")
    pngs, _ = encoded(n, size, "png")
    rgb = np.stack([ffeat.load_image(b) for b in blobs])
    out = {"size": size, "n": len(rgb), "n_reference": min(n_reference, len(rgb)),
           "origin": origin, "decode": {}, "compiled": {}, "reference": {}}
    for fmt, data in (("jpeg", blobs), ("png", pngs)):
        out["decode"][fmt] = median_time(lambda: [ffeat.load_image(b) for b in data],
                                         repeats) / len(data)
    for label in ffeat.features.FAMILIES:
        out["compiled"][label] = median_time(lambda: compute_compiled(label, rgb),
                                             repeats) / len(rgb)
        if not n_reference:
            continue
        with one_blas_thread():
            sub = rgb[:n_reference]
            out["reference"][label] = median_time(lambda: compute_reference(label, sub),
                                                  max(1, repeats // 2)) / len(sub)
    for kind in ("compiled", "reference"):  # the default set: the sum of its families
        if out[kind]:
            out[kind][DEFAULT] = sum(out[kind][f] for f in ffeat.DEFAULT_FEATURES)
    return out


def speedup(m: dict, label: str) -> float:
    """NumPy reference time over compiled time."""
    return m["reference"][label] / m["compiled"][label]


def cost_vs_decode(m: dict, label: str, fmt: str = "jpeg") -> float:
    """Compiled feature time as a multiple of decoding the same image."""
    return m["compiled"][label] / m["decode"][fmt]


def measure_jobs(n: int = 64, size: int = 256, repeats: int = 3,
                 jobs: tuple[int, ...] = (1, 2)) -> dict[int, float]:
    """Per-image seconds of end-to-end ``ffeat.extract`` (default features) from
    in-memory JPEGs with each number of worker threads."""
    if quick():
        n = 4
    blobs, _ = encoded(n, size, "jpeg")
    blobs = list(blobs)
    return {j: median_time(lambda: ffeat.extract(blobs, jobs=j), repeats) / len(blobs)
            for j in jobs}


def measure_counts(counts=COUNTS, jobs: tuple[int, ...] = (1, 2), repeats: int = 3,
                   size: int = TINY) -> dict[tuple[int, int], float]:
    """Seconds of ``ffeat.extract`` (default features) on ``count`` tiny in-memory
    images, for each count (at most :func:`max_count`) and number of workers."""
    out = {}
    for count in counts:
        if count > max_count():
            continue
        images = tiny_images(count, size)
        for j in jobs:
            out[count, j] = median_time(lambda: ffeat.extract(images, jobs=j),
                                        repeats if count < 10000 else 1)
    return out


# --- per-stage split of one image's time through the shipped detector ---------------------

#: Stages of :func:`measure_stages` before the families, and after them.
PRE_STAGES = ("read", "decode", "align", "frame")
POST_STAGES = ("model",)


def measure_stages(size: int, n: int = 32, repeats: int = 5,
                   jobs: tuple[int, ...] = (1, 2), clock=time.perf_counter) -> dict:
    """Per-image seconds of each stage of scoring ``size`` px JPEG files with the shipped
    detector (``Detector.default()``), one core, medians of repeats, the stages timed in
    turn within each repeat so that a changing load falls on all alike:

    * ``read``: the file's bytes (``open().read()``, page cache);
    * ``decode``: ``load_image`` of those bytes (Pillow and ffeat's checks);
    * ``align``: the detector's face policy (``ffeat.reading.faces.face_crops``); None when the
      detector reads whole images (``faces="off"``; the shipped one aligns faces);
    * ``frame``: the analysis frame (``ffeat.reading._framing.frame_image``);
    * each family of the detector on the framed image (``compute``, one image a call);
    * ``model``: the fitted model's ``decision_function`` on the rows (per image).

    Then the end-to-end seconds per image of ``detector.score_images(paths)`` (what
    ``ffeat predict`` runs) with each number of worker threads in ``jobs``, and of
    ``ffeat.extract(paths)`` (default families, native size). ``other`` is the end
    to end at one job less the sum of the stages: the per-image work around them
    (the thread pool, feature rows, checks). ``clock=time.process_time`` times the
    stages and the one-job runs in CPU time of this process (what other jobs on a
    shared machine do not inflate); runs with more jobs are always timed by the wall.
    """
    import tempfile

    from ffeat.reading._framing import frame_image
    from ffeat.reading.faces import face_crops

    if quick():
        n, repeats = min(n, 2), 1
    detector = ffeat.Detector.default()
    families = ffeat.features.resolve_features(detector.features)
    frame, faces = detector.reading.frame, detector.reading.faces
    blobs, origin = encoded(n, size, "jpeg")
    out = {"size": size, "n": len(blobs), "origin": origin, "frame": frame, "faces": faces,
           "clock": "cpu" if clock is time.process_time else "wall",
           "families": [f.name for f in families], "stages": {}, "end_to_end": {},
           "extract": {}}
    with tempfile.TemporaryDirectory(prefix="ffeat-bench-") as tmp:
        paths = []
        for i, blob in enumerate(blobs):
            path = Path(tmp) / f"{i:04d}.jpg"
            path.write_bytes(blob)
            paths.append(str(path))

        def read():
            data = []
            for p in paths:
                with open(p, "rb") as fh:
                    data.append(fh.read())
            return data

        data = read()
        rgbs = [ffeat.load_image(b) for b in data]
        if faces != "off":
            crops = [[f.crop for f in face_crops(r, faces, size=frame or 256)] for r in rgbs]
        else:
            crops = [[r] for r in rgbs]
        views = [frame_image(c, frame) for cs in crops for c in cs]
        rows = np.vstack([np.concatenate([f.compute(v)[0] for f in families])
                          for v in views]).astype(np.float64)
        stages = {"read": read,
                  "decode": lambda: [ffeat.load_image(b) for b in data],
                  "align": None if faces == "off" else
                  (lambda: [face_crops(r, faces, size=frame or 256) for r in rgbs]),
                  "frame": lambda: [frame_image(c, frame) for cs in crops for c in cs]}
        for f in families:
            stages[f.name] = (lambda f=f: [f.compute(v) for v in views])
        stages["model"] = lambda: detector.model_.decision_function(rows)
        timed = {k: fn for k, fn in stages.items() if fn is not None}

        def scored(j):
            def run():
                detector.set_run_options(jobs=j, cache=False)
                detector.score_images(paths)
            return run

        def extracted(j):
            return lambda: ffeat.extract(paths, jobs=j)

        # The end-to-end runs in the same repeats as the stages, so that the ratios
        # compare times taken under the same load: one job by ``clock``, and by the wall
        # for every number of jobs (the speed-ups).
        runs = {**{("clock", "e2e"): scored(min(jobs)), ("clock", "extract"): extracted(min(jobs))},
                **{("wall", "e2e", j): scored(j) for j in jobs},
                **{("wall", "extract", j): extracted(j) for j in jobs}}
        if clock is time.perf_counter:  # the one-job wall runs are the clock runs
            runs = {k: v for k, v in runs.items() if k[0] == "wall"}
        for fn in [*timed.values(), *runs.values()]:
            fn()  # warm-up: caches, FFT plans, page faults, thread pools
        samples = {k: [] for k in [*timed, *runs]}
        for _ in range(max(1, repeats)):
            for k, fn in timed.items():
                t = clock()
                fn()
                samples[k].append(clock() - t)
            for k, fn in runs.items():
                c = time.perf_counter if k[0] == "wall" else clock
                t = c()
                fn()
                samples[k].append(c() - t)
        per_image = {k: statistics.median(v) / len(blobs) for k, v in samples.items()}
        out["stages"] = {k: per_image.get(k) for k in stages}
        out["end_to_end"] = {j: per_image["wall", "e2e", j] for j in jobs}
        out["extract"] = {j: per_image["wall", "extract", j] for j in jobs}
        if clock is not time.perf_counter:
            out["end_to_end_clock"] = per_image["clock", "e2e"]
            out["extract_clock"] = per_image["clock", "extract"]
    return out


def stage_summary(m: dict) -> dict:
    """Derived figures of a :func:`measure_stages` result: each stage's share of the
    one-job end-to-end time, costs as multiples of decoding, the two-job speed-ups
    (always of wall times). Shares and ratios are of the stages' clock (``clock``)."""
    jobs = sorted(m["end_to_end"])
    e2e = m.get("end_to_end_clock", m["end_to_end"][jobs[0]])
    x1 = m.get("extract_clock", m["extract"][jobs[0]])
    dec = m["stages"]["decode"]
    known = {k: v for k, v in m["stages"].items() if v is not None}
    other = max(e2e - sum(known.values()), 0.0)
    features = sum(m["stages"][f] for f in m["families"])
    shares = {k: v / e2e for k, v in known.items()}
    shares["other"] = other / e2e
    return {
        "shares": shares,
        "other_s": other,
        "features_s": features,
        "features_vs_decode": features / dec,
        "end_to_end_vs_decode": e2e / dec,
        "extract_vs_decode": x1 / dec,
        "images_per_s_one_job": 1 / e2e,
        "images_per_s": {j: 1 / m["end_to_end"][j] for j in jobs},
        "extract_images_per_s": {j: 1 / m["extract"][j] for j in jobs},
        "jobs_speedup": (m["end_to_end"][jobs[0]] / m["end_to_end"][jobs[-1]]
                         if len(jobs) > 1 else None),
        "extract_jobs_speedup": (m["extract"][jobs[0]] / m["extract"][jobs[-1]]
                                 if len(jobs) > 1 else None),
        "largest_other_than_decode": max(
            ((k, v) for k, v in shares.items() if k not in ("decode", "align")),
            key=lambda kv: kv[1]),
    }
