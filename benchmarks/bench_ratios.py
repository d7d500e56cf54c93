"""asv: speed-up over the NumPy reference and cost against decoding, as ratios.

asv compares benchmarks across commits, not with each other, so the ratios the
targets are stated in are measured here in one process (``setup_cache``, once
for all parameters; medians of repeats, one core, the same images) and
tracked: ``track_speedup_vs_numpy`` (reference time / compiled time; target
>= 10 for the default set) and ``track_cost_vs_jpeg_decode`` /
``track_cost_vs_png_decode`` (compiled feature time / Pillow decoding time of
the same image; target <= 1 for JPEG at 256 px).
"""
from __future__ import annotations

try:
    from . import _data
except ImportError:
    import _data


class Ratios:
    params = (list(_data.FAMILY_SETS), list(_data.SIZES))
    param_names = ["family", "size"]
    unit = "ratio"
    timeout = 120

    def setup_cache(self):
        return {size: _data.measure_size(size, n=16 if size < 1024 else 8, repeats=5)
                for size in _data.sizes()}

    setup_cache.timeout = 900

    def setup(self, cache, family, size):
        if size not in cache:
            raise NotImplementedError("size left out in quick mode")

    def track_speedup_vs_numpy(self, cache, family, size):
        return _data.speedup(cache[size], family)

    def track_cost_vs_jpeg_decode(self, cache, family, size):
        return _data.cost_vs_decode(cache[size], family, "jpeg")

    def track_cost_vs_png_decode(self, cache, family, size):
        return _data.cost_vs_decode(cache[size], family, "png")


class EndToEnd:
    """End-to-end cost of an image through the shipped detector (what ``ffeat predict``
    runs: read, decode, frame, families, model) as a multiple of decoding it, the
    features' share of that, and the two-job speed-up, for 256 and 1024 px JPEG files
    (``_data.measure_stages``; ``run.py`` prints the full per-stage split)."""

    params = [256, 1024]
    param_names = ["size"]
    unit = "ratio"
    timeout = 300

    def setup_cache(self):
        return {size: _data.stage_summary(_data.measure_stages(size, n=32 if size < 1024
                                                               else 12, repeats=5))
                for size in _data.sizes() if size in self.params}

    setup_cache.timeout = 1200

    def setup(self, cache, size):
        if size not in cache:
            raise NotImplementedError("size left out in quick mode")

    def track_end_to_end_vs_decode(self, cache, size):
        return cache[size]["end_to_end_vs_decode"]

    def track_features_vs_decode(self, cache, size):
        return cache[size]["features_vs_decode"]

    def track_extract_vs_decode(self, cache, size):
        return cache[size]["extract_vs_decode"]

    def track_two_jobs_speedup(self, cache, size):
        return cache[size]["jobs_speedup"]
