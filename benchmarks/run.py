"""Speed of the compiled feature kernels against the plain-NumPy reference path.

Prints images/s for JPEG decoding, each feature family (compiled and NumPy
reference, both on one core), and end-to-end ``ffeat.extract`` from files with
1 and 2 workers, all measured in this one run on the same images. Each figure is
the median of several repeats.

Images: the first N JPEGs of ``$FFEAT_FACES/140k`` (default ``../shared/faces``
beside the repository) when present, else the embedded demo set; for sizes
other than theirs, resized and re-encoded as JPEG q75.

Usage: ``python benchmarks/run.py [--n 64] [--size 256] [--repeats 5]``
"""
from __future__ import annotations

import os

# One core means one core: keep BLAS (used by the NumPy references) single-threaded.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import ffeat
from ffeat._reference import REFERENCES


def _faces_dir() -> Path | None:
    env = os.environ.get("FFEAT_FACES")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "faces"
    return path if (path / "140k").is_dir() else None


def _jpeg_bytes(n: int, size: int) -> tuple[list[bytes], str]:
    """``n`` JPEG files of ``size`` px: real faces if present, else demo images."""
    faces = _faces_dir()
    if faces is not None:
        files = sorted((faces / "140k" / "real").glob("*.jpg"))[: n // 2]
        files += sorted((faces / "140k" / "fake").glob("*.jpg"))[: n - len(files)]
        origin = f"{faces / '140k'} ({len(files)} JPEGs)"
        if size == 256:  # their own size: time the original files
            return [f.read_bytes() for f in files], origin
        images = [Image.open(f).convert("RGB") for f in files]
    else:
        arrays, _ = ffeat.make_demo_set(n_per_class=(n + 1) // 2, size=256)
        images = [Image.fromarray(a) for a in arrays[:n]]
        origin = f"demo set ({n} images)"
    if size != 256:
        images = [im.resize((size, size), Image.BICUBIC) for im in images]
        origin += f", resized to {size} px"
    return [_encode(im) for im in images], origin + ", encoded as JPEG q75"


def _encode(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=75)
    return buf.getvalue()


def _median_rate(fn, n_images: int, repeats: int) -> float:
    """Images per second of ``fn`` (which processes ``n_images``): median of repeats."""
    fn()  # warm-up: caches, thread pools, page faults
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n_images / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="images (default 64)")
    parser.add_argument("--size", type=int, default=256, help="image side (default 256)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats (default 5)")
    args = parser.parse_args()

    blobs, origin = _jpeg_bytes(args.n, args.size)
    rgb = np.stack([ffeat.load_image(b) for b in blobs])
    n = len(rgb)
    print(f"images: {origin}, {rgb.shape[2]}x{rgb.shape[1]}; median of {args.repeats} "
          "repeats; one core unless noted\n")

    decode = _median_rate(lambda: [ffeat.load_image(b) for b in blobs], n, args.repeats)
    print(f"{'JPEG decode (load_image)':<34}{decode:>10,.0f} img/s")
    print(f"\n{'family':<12}{'compiled':>12}{'NumPy ref':>12}{'speed-up':>10}"
          f"{'cost vs decode':>16}")
    totals = {"compiled": 0.0, "reference": 0.0}
    for family in (ffeat.Gray(), ffeat.Spectrum(), ffeat.Residual()):
        ref = REFERENCES[family.name]
        fast = _median_rate(lambda: family.compute(rgb, n_threads=1), n, args.repeats)
        slow = _median_rate(lambda: [ref(im, family) for im in rgb], n,
                            max(1, args.repeats // 2))
        if family.name in ffeat.DEFAULT_FEATURES:
            totals["compiled"] += 1 / fast
            totals["reference"] += 1 / slow
        print(f"{family.name:<12}{fast:>10,.0f}/s{slow:>10,.0f}/s{fast / slow:>9.1f}x"
              f"{decode / fast:>15.2f}x")
    fast, slow = 1 / totals["compiled"], 1 / totals["reference"]
    label = "+".join(ffeat.DEFAULT_FEATURES)
    print(f"{label:<12}{fast:>10,.0f}/s{slow:>10,.0f}/s{fast / slow:>9.1f}x"
          f"{decode / fast:>15.2f}x")

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, b in enumerate(blobs):
            paths.append(Path(tmp, f"{i:05d}.jpg"))
            paths[-1].write_bytes(b)
        print(f"\nend-to-end ffeat.extract({label}) from JPEG files:")
        for jobs in (1, 2):
            rate = _median_rate(lambda: ffeat.extract(paths, jobs=jobs), n, args.repeats)
            print(f"  jobs={jobs}{rate:>24,.0f} img/s")


if __name__ == "__main__":
    main()
