"""GPU (CuPy) against CPU speed of the feature families, all measured in this one run.

Features alone: images/s of each family and of the default set on a batch that
is already in the memory of the device computing it (CPU: the compiled kernels
on all cores; GPU: the batched array code with and without the raw kernels,
the device synchronised by copying the rows back), at 256x256 and 1024x1024.
End to end: ``ffeat.extract`` from JPEG files with ``backend="cpu"`` and
``backend="cuda"``, next to the rate of JPEG decoding alone on the same threads
(the bound for the GPU path). Every figure is the median of several repeats
after a warm-up (cuFFT plans, kernel compilation). Without CuPy or a CUDA
device the GPU columns are skipped with a message.

Images: the JPEGs of ``$FFEAT_FACES/140k`` (default ``../shared/faces`` beside
the repository) when present, else the embedded demo set; resized (bicubic) for
other sizes, re-encoded as JPEG q75 for the end-to-end runs.

Usage: ``python benchmarks/gpu.py [--sizes 256 1024] [--n 512] [--repeats 5]``
"""
from __future__ import annotations

import argparse
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import ffeat
from ffeat._gpu import _backend, _pipeline
from ffeat.families import compute_families

try:
    from . import _data
except ImportError:  # run as a script: this folder is on sys.path
    import _data

FAMILY_SETS = {label: _data.families(label) for label in _data.FAMILY_SETS}
_resized, _jpeg = _data.resized, _data.encode


def _source_images(n: int):
    images, origin = _data.source_images(n)
    return list(images), origin


def _median_rate(fn, n_images: int, repeats: int) -> float:
    """Images per second of ``fn`` (which processes ``n_images``): median of repeats."""
    return n_images / _data.median_time(fn, repeats)


# --- asv: GPU parameters skip without CuPy and a CUDA device --------------------------------


def _cupy_or_skip():
    if not _backend.cuda_available():
        raise NotImplementedError(f"no CUDA device: {_backend._probe()[1]}")
    return _backend.import_cupy()


class TimeGpuFeatures:
    """Seconds for the features of a device-resident batch of ``batch`` images of
    ``size`` px, with the raw CUDA kernels or the generic array code."""

    params = (list(_data.FAMILY_SETS), ["cuda", "cuda-generic"], list(_data.SIZES), [1, 64])
    param_names = ["family", "backend", "size", "batch"]
    number = 1
    repeat = (3, 10, 10.0)
    timeout = 180

    def setup(self, family, backend, size, batch):
        self.cp = _cupy_or_skip()
        if size not in _data.sizes():
            raise NotImplementedError("size left out in quick mode")
        self.batch = self.cp.asarray(_data.rgb_batch(min(batch, 16), size))
        if batch > len(self.batch):
            self.batch = self.cp.concatenate([self.batch] * (batch // len(self.batch)))
        self.families = _data.families(family)
        self.time_features(family, backend, size, batch)  # plans and kernel compilation

    def time_features(self, family, backend, size, batch):
        # compute_families copies the rows back: the device is synchronised.
        compute_families(self.cp, self.batch, self.families, raw_kernels=backend == "cuda")


class TimeExtractBackend:
    """Seconds of ``ffeat.extract`` (default features, 2 workers) on 64 in-memory
    256 px JPEGs with each backend."""

    params = (["cpu", "cuda"],)
    param_names = ["backend"]
    number = 1
    repeat = (1, 5, 20.0)
    timeout = 180

    def setup(self, backend):
        if backend == "cuda":
            _cupy_or_skip()
        self.blobs = list(_data.encoded(4 if _data.quick() else 64, 256)[0])
        ffeat.extract(self.blobs[:2], jobs=2, backend=backend)  # warm-up

    def time_extract(self, backend):
        ffeat.extract(self.blobs, jobs=2, backend=backend)


def _cell(rate: float | None) -> str:
    return f"{rate:>13,.0f}/s" if rate is not None else f"{'-':>15}"


def _features_alone(images, sizes, repeats, cores, cp) -> None:
    print(f"\nfeatures alone, batch already in device memory "
          f"(CPU: compiled kernels, {cores} threads)")
    print(f"{'size':<10}{'batch':>6}  {'families':<18}{'CPU':>15}{'GPU raw kern.':>15}"
          f"{'GPU generic':>15}{'GPU/CPU':>9}")
    for size in sizes:
        batch_size = max(1, min(256, _pipeline.PIXEL_BUDGET // (size * size)))
        base = np.stack([np.asarray(im) for im in _resized(images[:batch_size], size)])
        batch = np.resize(base, (batch_size,) + base.shape[1:])  # repeat to a full batch
        device = cp.asarray(batch) if cp is not None else None
        for label, families in FAMILY_SETS.items():
            cpu = _median_rate(lambda: [f.compute(batch, n_threads=cores) for f in families],
                               batch_size, max(1, repeats // 2) if size > 512 else repeats)
            raw = generic = None
            if cp is not None:
                raw, generic = (_median_rate(
                    lambda: compute_families(cp, device, families, raw_kernels=flag),
                    batch_size, repeats) for flag in (True, False))
            ratio = f"{raw / cpu:>8.1f}x" if raw else f"{'-':>9}"
            print(f"{size}x{size:<6}{batch_size:>6}  {label:<18}{_cell(cpu)}{_cell(raw)}"
                  f"{_cell(generic)}{ratio}")


def _end_to_end(images, n, repeats, cores, gpu) -> None:
    blobs = [_jpeg(im) for im in _resized(images, 256)]
    blobs = (blobs * -(-n // len(blobs)))[:n]
    label = "+".join(ffeat.DEFAULT_FEATURES)
    print(f"\nend to end from {n} JPEG files (256x256, q75), {cores} threads, "
          f"features {label}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp, f"{i:05d}.jpg") for i in range(n)]
        for path, blob in zip(paths, blobs):
            path.write_bytes(blob)
        with ThreadPoolExecutor(cores) as pool:
            decode = _median_rate(lambda: list(pool.map(ffeat.load_image, paths)), n,
                                  repeats)
        print(f"  {'JPEG decode alone':<28}{decode:>13,.0f}/s")
        for backend in ("cpu", "cuda"):
            if backend == "cuda" and not gpu:
                print(f"  {'extract(backend=cuda)':<28}{'-':>15}  (no GPU)")
                continue
            rate = _median_rate(lambda: ffeat.extract(paths, jobs=cores, backend=backend),
                                n, repeats)
            print(f"  {f'extract(backend={backend})':<28}{rate:>13,.0f}/s"
                  f"  ({rate / decode:.0%} of decode)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024],
                        help="image sides for the features-alone table (default 256 1024)")
    parser.add_argument("--n", type=int, default=512,
                        help="JPEG files for the end-to-end runs (default 512)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats (default 5)")
    parser.add_argument("--jobs", type=int, default=0,
                        help="CPU threads (default: all available cores)")
    args = parser.parse_args()

    cores = args.jobs if args.jobs > 0 else len(os.sched_getaffinity(0))
    gpu = _backend.cuda_available()
    cp = _backend.import_cupy() if gpu else None
    images, origin = _source_images(min(args.n, 256))
    print(f"images: {len(images)} from {origin}; median of {args.repeats} repeats")
    if gpu:
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else name
        print(f"GPU: {name}, CuPy {cp.__version__}")
    else:
        print(f"GPU columns skipped: {_backend._probe()[1]}")
    _features_alone(images, args.sizes, args.repeats, cores, cp)
    _end_to_end(images, args.n, args.repeats, cores, gpu)


if __name__ == "__main__":
    main()
