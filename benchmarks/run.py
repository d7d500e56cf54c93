"""Speed of the compiled feature kernels against the plain-NumPy reference path, and
where one image's time goes through the shipped detector.

The key figures of the asv suite without asv, all measured in this one run on
the same images, medians of repeats after a warm-up. For each size (default
256, 512 and 1024 px): images/s of Pillow decoding (``load_image``) of JPEG
q75 and PNG, and of each feature family and the default set, compiled and
through the NumPy reference, both on one core, with the speed-up and the cost
as a multiple of decoding. Then end-to-end ``ffeat.extract`` (default
features) from in-memory JPEGs at 256 px with 1 and 2 workers.

Then, per size, the split of one image's time through the shipped detector's path
(``Detector.default()``: frame 256, faces aligned), JPEG files on disk, one core: read,
decode, face alignment (when the detector aligns), frame, each family, the model,
and the rest ("other": thread pool, rows, checks) as the end-to-end time less the
stages; each as a share of the end-to-end time and as a multiple of decoding; the
end-to-end ratio to decoding; images/s of ``Detector.score_images`` (what ``ffeat
predict`` runs) and of ``ffeat.extract`` (default families, native size) with 1 and
2 jobs. ``--json FILE`` writes every figure of the run.

``--scaling`` adds the time per pixel of each family across sizes (linear in
pixels when it stays flat) and ``ffeat.extract`` over 1, 100 and 10,000 tiny
(64 px) in-memory images with 1 and 2 workers.

Images: the JPEGs of ``$FFEAT_FACES/140k`` (default ``../shared/faces`` beside
the repository) when present, else the embedded demo set; resized and
re-encoded for other sizes and for PNG (see ``_data.py``).

Usage: ``python benchmarks/run.py [--sizes 256 512 1024] [--n 32] [--n-ref 4]
[--repeats 5] [--scaling] [--max-count 10000] [--no-kernels] [--json FILE]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

try:
    from . import _data
except ImportError:  # run as a script: this folder is on sys.path
    import _data

import ffeat  # noqa: E402


def _images_at(size: int, n: int) -> int:
    """Fewer images for larger sizes: about the same pixels per measurement."""
    return max(2, round(n * (256 / size) ** 2))


def _size_table(size: int, n: int, n_ref: int, repeats: int) -> dict:
    m = _data.measure_size(size, n=_images_at(size, n), repeats=repeats,
                           n_reference=min(_images_at(size, n_ref), _images_at(size, n)))
    jpeg, png = m["decode"]["jpeg"], m["decode"]["png"]
    print(f"\n{size} px: {m['origin']}; {m['n']} images, NumPy reference on "
          f"{m['n_reference']}")
    print(f"  {'Pillow decode (load_image)':<28}JPEG {1 / jpeg:>8,.0f} img/s   "
          f"PNG {1 / png:>8,.0f} img/s")
    print(f"  {'family':<20}{'compiled':>12}{'NumPy ref':>12}{'speed-up':>10}"
          f"{'vs JPEG':>10}{'vs PNG':>10}")
    for label in _data.FAMILY_SETS:
        print(f"  {label:<20}{1 / m['compiled'][label]:>10,.1f}/s"
              f"{1 / m['reference'][label]:>10,.1f}/s{_data.speedup(m, label):>9.1f}x"
              f"{_data.cost_vs_decode(m, label, 'jpeg'):>9.2f}x"
              f"{_data.cost_vs_decode(m, label, 'png'):>9.2f}x")
    return m


def _scaling(tables: dict, repeats: int) -> None:
    sizes = sorted(tables)
    print("\ntime per pixel, compiled, one core (ns/pixel; flat = linear in pixels)")
    print(f"  {'family':<20}" + "".join(f"{s:>9} px" for s in sizes)
          + (f"{'growth':>10}" if len(sizes) > 1 else ""))
    for label in _data.FAMILY_SETS:
        ns = [1e9 * tables[s]["compiled"][label] / s**2 for s in sizes]
        line = f"  {label:<20}" + "".join(f"{v:>12.2f}" for v in ns)
        if len(sizes) > 1:
            line += f"{ns[-1] / ns[0]:>9.2f}x"
        print(line)
    counts = _data.measure_counts(repeats=max(1, repeats // 2))
    print(f"\nffeat.extract({_data.DEFAULT}) over in-memory {_data.TINY} px images "
          "(16 distinct, repeated)")
    print(f"  {'images':>8}{'jobs=1':>12}{'jobs=2':>12}{'per image, 1':>15}"
          f"{'per image, 2':>15}{'1->2':>8}")
    for count in _data.COUNTS:
        if (count, 1) not in counts:
            print(f"  {count:>8,}  skipped (above --max-count)")
            continue
        one, two = counts[count, 1], counts[count, 2]
        print(f"  {count:>8,}{one:>11.3f}s{two:>11.3f}s{1e3 * one / count:>13.3f}ms"
              f"{1e3 * two / count:>13.3f}ms{one / two:>7.2f}x")


def _stage_table(size: int, n: int, repeats: int, clock: str) -> dict:
    m = _data.measure_stages(size, n=n, repeats=repeats,
                             clock=time.process_time if clock == "cpu" else time.perf_counter)
    d = _data.stage_summary(m)
    dec = m["stages"]["decode"]
    e2e = m.get("end_to_end_clock", m["end_to_end"][1])
    print(f"\n{size} px JPEG files through the shipped detector (frame {m['frame']}, faces "
          f"{m['faces']}): {m['origin']}; one core, ms per image ({clock} time)")
    print(f"  {'stage':<34}{'ms':>8}{'share':>8}{'x decode':>10}")
    for k, v in m["stages"].items():
        label = {"align": "face alignment", "frame": f"frame ({m['frame']} px)"}.get(k, k)
        if v is None:
            print(f"  {label:<34}{'-':>8}   (the detector reads whole images)")
            continue
        print(f"  {label:<34}{1e3 * v:>8.3f}{100 * v / e2e:>7.1f}%{v / dec:>10.2f}")
    print(f"  {'other (pool, rows, checks)':<34}{1e3 * d['other_s']:>8.3f}"
          f"{100 * d['shares']['other']:>7.1f}%{d['other_s'] / dec:>10.2f}")
    print(f"  {'features (all families)':<34}{1e3 * d['features_s']:>8.3f}"
          f"{100 * d['features_s'] / e2e:>7.1f}%{d['features_vs_decode']:>10.2f}")
    ips, xps = d["images_per_s"], d["extract_images_per_s"]
    print(f"  end to end, score_images (ffeat predict): {d['end_to_end_vs_decode']:.2f} "
          f"decodes ({d['images_per_s_one_job']:,.0f} img/s, {clock} time); wall: jobs=1 "
          f"{ips[1]:,.0f} img/s, jobs=2 {ips[2]:,.0f} img/s ({d['jobs_speedup']:.2f}x)")
    print(f"  ffeat.extract (default families, native size): {d['extract_vs_decode']:.2f} "
          f"decodes; wall: jobs=1 {xps[1]:,.0f} img/s, jobs=2 {xps[2]:,.0f} img/s "
          f"({d['extract_jobs_speedup']:.2f}x)")
    k, share = d["largest_other_than_decode"]
    print(f"  largest stage other than decoding and alignment: {k} {100 * share:.1f}%")
    return {"measured": m, "derived": d}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(_data.SIZES),
                        help="image sides (default 256 512 1024)")
    parser.add_argument("--n", type=int, default=32,
                        help="images at 256 px, fewer at larger sizes (default 32)")
    parser.add_argument("--n-ref", type=int, default=4,
                        help="images for the NumPy reference at 256 px (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats (default 5)")
    parser.add_argument("--scaling", action="store_true",
                        help="also time per pixel across sizes and image-count scaling")
    parser.add_argument("--max-count", type=int, default=max(_data.COUNTS),
                        help="largest image count of --scaling (default 10000)")
    parser.add_argument("--no-kernels", action="store_true",
                        help="leave out the per-family kernel tables (and the NumPy reference)")
    parser.add_argument("--stage-n", type=int, default=64,
                        help="JPEG files of the stage split at 256 px, a quarter of them "
                             "(at least 8) at larger sizes (default 64)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time the stage split and one-job runs by the wall (default) or "
                             "by this process's CPU time (steadier on a shared machine); "
                             "two-job runs are always wall time")
    parser.add_argument("--json", metavar="FILE", help="write every figure of the run here")
    args = parser.parse_args(argv)
    os.environ["FFEAT_BENCH_MAX_COUNT"] = str(args.max_count)

    print(f"ffeat {ffeat.__version__}, Python {sys.version.split()[0]}, "
          f"{len(os.sched_getaffinity(0))} cores; median of {args.repeats} repeats; "
          "one core unless noted")
    result = {"ffeat": ffeat.__version__, "python": sys.version.split()[0],
              "machine": platform.machine(), "processor": platform.processor(),
              "cores": len(os.sched_getaffinity(0)), "repeats": args.repeats,
              "load_average": os.getloadavg(), "clock": args.clock, "kernels": {}, "stages": {}}
    tables = {} if args.no_kernels else {
        size: _size_table(size, args.n, args.n_ref, args.repeats) for size in args.sizes}
    result["kernels"] = tables
    if 256 in tables:
        m = tables[256]
        print(f"\ntargets at 256 px: default set {_data.speedup(m, _data.DEFAULT):.1f}x the "
              f"NumPy reference (>= 10), {_data.cost_vs_decode(m, _data.DEFAULT):.2f}x a "
              "JPEG decode (<= 1)")

    if not args.no_kernels:
        jobs = _data.measure_jobs(n=2 * args.n, repeats=args.repeats)
        print(f"\nend-to-end ffeat.extract({_data.DEFAULT}), {2 * args.n} in-memory 256 px "
              f"JPEGs:  jobs=1 {1 / jobs[1]:,.0f} img/s   jobs=2 {1 / jobs[2]:,.0f} img/s   "
              f"speed-up {jobs[1] / jobs[2]:.2f}x")
        result["extract_in_memory"] = jobs
    for size in args.sizes:
        n = args.stage_n if size <= 256 else max(8, args.stage_n // 4)
        result["stages"][size] = _stage_table(size, n, args.repeats, args.clock)
    if args.scaling:
        _scaling(tables, args.repeats)
    result["load_average_after"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, default=float)
        print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
