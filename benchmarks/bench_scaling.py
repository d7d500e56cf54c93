"""asv: how time grows with the number of images, the image size and the workers.

``TimeExtractCount`` runs ``ffeat.extract`` (default features) over 1, 100 and
10,000 in-memory images with 1 and 2 workers; the images are tiny (64 px, 16
distinct ones repeated) so 10,000 stays affordable, and ``FFEAT_BENCH_MAX_COUNT``
skips the larger counts at once. ``PixelScaling`` and ``WorkerScaling`` track, from one process: the time
per pixel of each family (ns, one core) at 256, 512 and 1024 px, its growth
from 256 to 1024 px (1 = linear in pixels; the FFT adds a log factor), and the
1 -> 2 worker speed-up of end-to-end extraction (target: near 2).
"""
from __future__ import annotations

import ffeat

try:
    from . import _data
except ImportError:
    import _data


class TimeExtractCount:
    """Seconds of ``ffeat.extract`` over ``count`` tiny in-memory images."""

    params = (list(_data.COUNTS), [1, 2])
    param_names = ["count", "jobs"]
    number = 1
    repeat = (1, 3, 30.0)
    timeout = 300

    def setup(self, count, jobs):
        if count > _data.max_count():
            raise NotImplementedError(f"count above FFEAT_BENCH_MAX_COUNT={_data.max_count()}")
        self.images = _data.tiny_images(count)

    def time_extract(self, count, jobs):
        ffeat.extract(self.images, jobs=jobs)


class PixelScaling:
    params = (list(_data.FAMILY_SETS),)
    param_names = ["family"]
    timeout = 120

    def setup_cache(self):
        return {"sizes": {size: _data.measure_size(size, n=8 if size < 1024 else 4,
                                                   repeats=5, n_reference=0)
                          for size in _data.sizes()}}

    setup_cache.timeout = 600

    def track_ns_per_pixel_256(self, cache, family):
        return 1e9 * cache["sizes"][256]["compiled"][family] / 256**2

    track_ns_per_pixel_256.unit = "ns/pixel"

    def track_ns_per_pixel_1024(self, cache, family):
        if 1024 not in cache["sizes"]:
            raise NotImplementedError("size left out in quick mode")
        return 1e9 * cache["sizes"][1024]["compiled"][family] / 1024**2

    track_ns_per_pixel_1024.unit = "ns/pixel"

    def track_pixel_growth_256_to_1024(self, cache, family):
        """Time per pixel at 1024 px over that at 256 px (1 = linear in pixels)."""
        if 1024 not in cache["sizes"]:
            raise NotImplementedError("size left out in quick mode")
        small, large = cache["sizes"][256], cache["sizes"][1024]
        return (large["compiled"][family] / 1024**2) / (small["compiled"][family] / 256**2)

    track_pixel_growth_256_to_1024.unit = "ratio"



class WorkerScaling:
    unit = "ratio"
    timeout = 120

    def setup_cache(self):
        return _data.measure_jobs(n=64, repeats=3)

    setup_cache.timeout = 300

    def track_jobs_speedup_1_to_2(self, cache):
        """End-to-end extraction (default features, 64 in-memory 256 px JPEGs):
        1-worker time over 2-worker time."""
        return cache[1] / cache[2]
