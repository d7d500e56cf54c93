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
