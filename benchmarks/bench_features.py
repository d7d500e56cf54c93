"""asv: time and peak memory of decoding and of every feature family.

``TimeDecode`` is the baseline every feature figure is read against (Pillow
through ``ffeat.load_image``, JPEG q75 and PNG, the same images);
``TimeFeatures`` times each family and the default set, compiled (``cpu``, one
core) or through the plain-NumPy reference (``numpy``, one image at a time, so
only batch 1), at 256, 512 and 1024 px. The ratios between them, measured in
one process, are the ``track_*`` benchmarks of ``bench_ratios``.
"""
from __future__ import annotations

import numpy as np

import ffeat

try:
    from . import _data
except ImportError:  # imported as a top-level module (run.py's folder on sys.path)
    import _data

BATCHES = [1, 16]


class TimeDecode:
    """Seconds to decode ``batch`` images of ``size`` px with Pillow (``load_image``)."""

    params = (["jpeg", "png"], list(_data.SIZES), BATCHES)
    param_names = ["format", "size", "batch"]
    number = 1
    repeat = (3, 10, 10.0)
    timeout = 120

    def setup(self, fmt, size, batch):
        if size not in _data.sizes():
            raise NotImplementedError("size left out in quick mode")
        self.blobs = _data.encoded(batch, size, fmt)[0]

    def time_decode(self, fmt, size, batch):
        for blob in self.blobs:
            ffeat.load_image(blob)


class TimeFeatures:
    """Seconds for the features of ``batch`` images of ``size`` px on one core."""

    params = (list(_data.FAMILY_SETS), ["cpu", "numpy"], list(_data.SIZES), BATCHES)
    param_names = ["family", "backend", "size", "batch"]
    number = 1
    repeat = (1, 5, 10.0)
    timeout = 180

    def setup(self, family, backend, size, batch):
        if size not in _data.sizes():
            raise NotImplementedError("size left out in quick mode")
        if backend == "numpy" and batch > 1:
            raise NotImplementedError("the reference runs one image at a time: see batch 1")
        self.rgb = _data.rgb_batch(batch, size)
        self.limit = _data.one_blas_thread() if backend == "numpy" else None

    def teardown(self, family, backend, size, batch):
        if getattr(self, "limit", None) is not None:
            self.limit.restore_original_limits()

    def time_features(self, family, backend, size, batch):
        if backend == "cpu":
            _data.compute_compiled(family, self.rgb, n_threads=1)
        else:
            _data.compute_reference(family, self.rgb)


class PeakMemExtract:
    """Peak resident memory of ``ffeat.extract`` (default features, 2 workers) on a
    batch of 16 in-memory JPEGs, and of the compiled default set on a ready
    ``(16, size, size, 3)`` array."""

    params = ([256, 1024],)
    param_names = ["size"]
    timeout = 120

    def setup(self, size):
        if size not in _data.sizes():
            raise NotImplementedError("size left out in quick mode")
        self.blobs = list(_data.encoded(16, size, "jpeg")[0])
        self.rgb = np.stack([ffeat.load_image(b) for b in self.blobs])

    def peakmem_extract_batch(self, size):
        ffeat.extract(self.blobs, jobs=2)

    def peakmem_compute_batch(self, size):
        _data.compute_compiled(_data.DEFAULT, self.rgb, n_threads=2)
