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
