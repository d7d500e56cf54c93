"""``residual``: co-occurrences and moments of quantised high-pass residuals.

For each channel (JPEG YCbCr by default) and each SRM-style high-pass filter:
residuals quantised to ``clip(floor(r / q + 1/2), -T, T)``, the normalised
co-occurrence matrix of neighbouring quantised values, then mean ``|r|``, RMS
and kurtosis of the unquantised residual ``r`` (in 8-bit levels). Directional
filters are applied horizontally and vertically, each paired along its own
direction; isotropic ones are paired both ways. A border of 2 pixels is left
out.

The channels named in ``half_res`` (by default the chroma planes Cb and Cr) are
filtered at half resolution, on the means of 2 x 2 pixel blocks (``floor((block sum
+ 2) / 4)`` of the integer plane; a last odd row or column is left out): the
resolution at which JPEG's usual 4:2:0 sampling and most cameras and generators'
pipelines keep colour. Full-resolution chroma of such an image is the decoder's
interpolation; at half resolution it costs a quarter and separates real from fake
as well or better (``benchmarks/residual_chroma.py``, docs/features.md).

The compiled kernel of the shipped filters (``_residual.residual_srm``, ``ext/_srm.h``)
computes them fused in int32 arithmetic, the same numbers as the generic tap-table
kernel (``_residual.residual_features``), which reads the tables of
:func:`_filter_bank` as the array code does and serves a changed ``RESIDUAL_FILTERS``;
the plain reference in ``tests/test_kernels.py``, which reads ``RESIDUAL_FILTERS``
directly, checks both.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import _residual
from .._gpu import _kernels
from ._common import CHANNELS, as_batch, is_cupy

__all__ = ["Residual", "RESIDUAL_FILTERS", "RESIDUAL_MARGIN"]

#: SRM-style high-pass filters: name -> (integer kernel centred on the pixel,
#: denominator, directional). Directional kernels are horizontal; their vertical
#: twins are the transposes.
RESIDUAL_FILTERS: dict[str, tuple[np.ndarray, int, bool]] = {
    "o1": (np.array([[0, -1, 1]]), 1, True),
    "o2": (np.array([[1, -2, 1]]), 2, True),
    "o3": (np.array([[0, -1, 3, -3, 1]]), 3, True),
    "kb": (np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]), 4, False),
    "kv": (np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
                     [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]]), 12, False),
}

#: Border (pixels) that no residual is computed in: the largest tap offset.
RESIDUAL_MARGIN = 2

_STATS = ("mean_abs", "rms", "kurtosis")

#: The bank the fused kernel (``_residual.residual_srm``) hard-codes: RESIDUAL_FILTERS as
#: shipped. A changed RESIDUAL_FILTERS goes through the generic tap-table kernel.
_SRM_BANK = tuple((k.tobytes(), k.shape, d, directional)
                  for k, d, directional in RESIDUAL_FILTERS.values())
_SRM_NAMES = ("o1", "o2", "o3", "kb", "kv")


@functools.lru_cache(maxsize=16)
def _filter_bank(channels: tuple[str, ...], half_res: tuple[str, ...], T: int,
                 q: float) -> dict[str, np.ndarray]:
    """Flatten the residual filters into the tap tables the kernel reads (``half``: a
    flag per channel, set where its plane is taken at half resolution)."""
    q256 = q * 256
    starts, dy, dx, w, div, scale, group, pairs = [0], [], [], [], [], [], [], []
    for g, (kernel, denom, directional) in enumerate(RESIDUAL_FILTERS.values()):
        # (kernel, pair bits): horizontal pairs = 1, vertical = 2, both = 3.
        maps = [(kernel, 1), (kernel.T, 2)] if directional else [(kernel, 3)]
        for k, pair_bits in maps:
            cy, cx = k.shape[0] // 2, k.shape[1] // 2
            for (i, j), v in np.ndenumerate(k):
                if v:
                    dy.append(i - cy)
                    dx.append(j - cx)
                    w.append(v)
            starts.append(len(w))
            div.append(denom * q256)
            scale.append(1.0 / (denom * 256))
            group.append(g)
            pairs.append(pair_bits)
    half = np.array([c in half_res for c in channels], dtype=np.int32)
    bank = {
        "cmat": np.array([CHANNELS[c] for c in channels], dtype=np.float32),
        "half": half,
        "tap_start": np.array(starts, dtype=np.int32),
        "tap_dy": np.array(dy, dtype=np.int32),
        "tap_dx": np.array(dx, dtype=np.int32),
        "tap_w": np.array(w, dtype=np.float32),
        "map_div": np.array(div, dtype=np.float32),
        "map_scale": np.array(scale, dtype=np.float64),
        "map_group": np.array(group, dtype=np.int32),
        "map_pairs": np.array(pairs, dtype=np.int32),
    }
    standard = (tuple(RESIDUAL_FILTERS) == _SRM_NAMES and RESIDUAL_MARGIN == 2
                and tuple((k.tobytes(), k.shape, d, directional) for k, d, directional
                          in RESIDUAL_FILTERS.values()) == _SRM_BANK)
    for a in bank.values():
        a.setflags(write=False)
    if standard:  # the fused kernel's arguments
        srm = {"cmat": np.array([CHANNELS[c] for c in channels], dtype=np.int32),
               "half": half,
               "group_div": np.array([d * round(q256) for _, d, _ in RESIDUAL_FILTERS.values()],
                                     dtype=np.int32),
               "map_scale": bank["map_scale"]}
        for a in srm.values():
            a.setflags(write=False)
        bank["srm"] = srm
    return bank


def _channel_plane(xp, rgb, weights, half: bool, margin: int):
    """The ``(B, h, w)`` float32 plane (exact integers, units of 1/256 level) of integer
    RGB ``weights`` of a ``(B, H, W, 3)`` uint8 batch; ``half``: of its 2 x 2 block means
    ``floor((block sum + 2) / 4)``, ``h, w = H // 2, W // 2``. ValueError when it leaves
    fewer than 2 x 2 residuals inside ``margin``."""
    b, height, width = rgb.shape[:3]
    h, w = (height // 2, width // 2) if half else (height, width)
    if h - 2 * margin < 2 or w - 2 * margin < 2:
        raise ValueError(f"images of {height}x{width} pixels are too small for a margin of "
                         f"{margin}" + (" at half resolution" if half else ""))
    if half:  # block sums of each colour, then the plane of the sums
        rgb = rgb[:, :2 * h, :2 * w].astype(xp.int32).reshape(b, h, 2, w, 2, 3).sum(axis=(2, 4))
    plane = sum(rgb[..., k].astype(xp.int32) * int(c) for k, c in enumerate(weights))
    return ((plane + 2) >> 2 if half else plane).astype(xp.float32)


def _residual_map_generic(xp, plane, taps, margin: int, div: float, T: int):
    """One filter's responses ``s`` (float32, exact integers) on the pixels at
    least ``margin`` from the border of a ``(B, H, W)`` plane, and their levels
    ``clip(floor(s / div + 1/2), -T, T) + T`` (int32). ``taps`` is a
    ``(dy, dx, w)`` int32/int32/float32 triple of host arrays."""
    b, h, w = plane.shape
    hv, wv = h - 2 * margin, w - 2 * margin
    s = xp.zeros((b, hv, wv), dtype=xp.float32)
    for dy, dx, weight in zip(*(a.tolist() for a in taps)):
        s += weight * plane[:, margin + dy:margin + dy + hv, margin + dx:margin + dx + wv]
    levels = xp.clip(xp.floor(s / div + 0.5), -T, T).astype(xp.int32) + T
    return s, levels


def _pair_counts_generic(xp, levels, counts, base: int, n_levels: int, pairs: int) -> None:
    """Add the co-occurrences of neighbouring ``levels`` (``(B, h, w)`` int32 in
    ``[0, n_levels)``) into ``counts[:, base:base + n_levels**2]`` (int64, in
    place): horizontal pairs if ``pairs & 1``, vertical ones if ``pairs & 2``."""
    b, n_hist = counts.shape
    offset = (xp.arange(b, dtype=xp.int64) * n_hist + base)[:, None, None]
    for bit, first, second in ((1, levels[:, :, :-1], levels[:, :, 1:]),
                               (2, levels[:, :-1, :], levels[:, 1:, :])):
        if pairs & bit:
            index = first * n_levels + second + offset
            counts += xp.bincount(index.ravel(), minlength=b * n_hist).reshape(b, n_hist)


@dataclass(frozen=True)
class Residual:
    """Co-occurrences and moments of quantised high-pass residuals per channel.

    Parameters
    ----------
    channels : tuple of str
        Channel planes, from ``CHANNELS`` (``"Y"``, ``"Cb"``, ``"Cr"``, ``"R"``,
        ``"G"``, ``"B"``). ``("Y",)`` gives luma-only residuals.
    T : int
        Truncation: quantised residuals lie in ``[-T, T]``; each co-occurrence
        matrix has ``(2T + 1)**2`` cells.
    q : float
        Quantisation step in 8-bit levels; ``q * 256`` must be an integer.
    half_res : tuple of str
        Channels (from ``CHANNELS``) whose planes are filtered at half resolution, on
        the means of 2 x 2 pixel blocks: by default the chroma planes. Those of
        ``channels`` need images of at least 12 pixels a side (others 6).
    """

    channels: tuple[str, ...] = ("Y", "Cb", "Cr")
    T: int = 2
    q: float = 1.0
    half_res: tuple[str, ...] = ("Cb", "Cr")
    name: ClassVar[str] = "residual"
    #: Parameters a model file written before they existed leaves out, and the value
    #: that reproduces what that file's detector was trained on.
    saved_defaults: ClassVar[dict] = {"half_res": ()}

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "half_res", tuple(self.half_res))
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown or not self.channels:
            raise ValueError(f"residual channels must be a non-empty subset of "
                             f"{sorted(CHANNELS)}; got {list(self.channels)}")
        if any(c not in CHANNELS for c in self.half_res):
            raise ValueError(f"residual half_res must be a subset of {sorted(CHANNELS)}; "
                             f"got {list(self.half_res)}")
        if not 1 <= self.T <= 8:
            raise ValueError(f"residual T must lie in [1, 8], got {self.T}")
        if not (0 < self.q <= 64 and float(self.q * 256).is_integer()):
            raise ValueError(f"residual q must lie in (0, 64] and be a multiple of 1/256, "
                             f"got {self.q}")

    def feature_names(self) -> list[str]:
        """Names of the output columns: channel, filter, then the statistic."""
        levels = range(-self.T, self.T + 1)
        stats = [f"cooc({a},{b})" for a in levels for b in levels] + list(_STATS)
        return [f"residual_{c}_{f}_{s}" for c in self.channels
                for f in RESIDUAL_FILTERS for s in stats]

    def column_groups(self) -> list[tuple[str, int]]:
        """One group per channel and filter: ``[(label, number of columns)]``."""
        width = (2 * self.T + 1) ** 2 + len(_STATS)
        return [(f"residual {c} {f}", width) for c in self.channels for f in RESIDUAL_FILTERS]

    def compute(self, rgb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Features of a batch with the compiled kernel; see the module docstring."""
        rgb = as_batch(rgb)
        bank = _filter_bank(self.channels, self.half_res, self.T, self.q)
        if "srm" in bank:  # the shipped filters: the fused integer kernel
            out = _residual.residual_srm(rgb, T=self.T, n_threads=n_threads, **bank["srm"])
        else:
            out = _residual.residual_features(rgb, n_groups=len(RESIDUAL_FILTERS), T=self.T,
                                              margin=RESIDUAL_MARGIN, n_threads=n_threads,
                                              **{k: v for k, v in bank.items() if k != "srm"})
        return out.reshape(len(out), -1)

    def compute_array(self, xp, rgb, raw_kernels: bool = True):
        """``(B, C * n_filters * ((2T + 1)**2 + 3))`` float32 on ``xp``.

        Channel planes and filter responses are exact integers in float32 (units of
        1/256 level, every partial sum below 2**24), as in the CPU kernel. The
        quantiser ``floor(s / D + 1/2)`` in float32 is exact too: ``s`` and ``D`` are
        integers below 2**24, so a non-tie ``s / D`` lies at least ``1 / (2 D) >=
        2.5e-6`` from a rounding edge, more than the two float32 roundings can move
        it below ``T + 1/2 <= 8.5``; beyond that the clip hides any difference.
        Moments are float64 sums of ``|s|``, ``s**2``, ``s**4``, scaled afterwards.
        On CuPy each filter map and the co-occurrence counts are raw kernels unless
        ``raw_kernels`` is false.
        """
        bank = _filter_bank(self.channels, self.half_res, self.T, self.q)
        b = rgb.shape[0]
        m = RESIDUAL_MARGIN
        n_levels, n_groups, T = 2 * self.T + 1, len(RESIDUAL_FILTERS), self.T
        n_cells = n_levels * n_levels
        fast = raw_kernels and is_cupy(xp)
        residual_map = _kernels.residual_map if fast else _residual_map_generic
        pair_counts = _kernels.pair_counts if fast else _pair_counts_generic
        starts = bank["tap_start"]
        planes = [_channel_plane(xp, rgb, weights, bool(half), m)
                  for weights, half in zip(bank["cmat"].tolist(), bank["half"].tolist())]
        per_channel = []
        for plane in planes:
            hv, wv = plane.shape[1] - 2 * m, plane.shape[2] - 2 * m
            counts = xp.zeros((b, n_groups * n_cells), dtype=xp.int64)
            moments = xp.zeros((b, n_groups, 3), dtype=xp.float64)
            n_values = np.zeros(n_groups)
            for k, g in enumerate(bank["map_group"].tolist()):
                taps = tuple(bank[key][starts[k]:starts[k + 1]]
                             for key in ("tap_dy", "tap_dx", "tap_w"))
                s, levels = residual_map(xp, plane, taps, m, float(bank["map_div"][k]), T)
                sc = float(bank["map_scale"][k])
                s2 = xp.square(s, dtype=xp.float64)
                moments[:, g, 0] += xp.abs(s).sum(axis=(1, 2), dtype=xp.float64) * sc
                moments[:, g, 1] += s2.sum(axis=(1, 2)) * sc**2
                moments[:, g, 2] += xp.square(s2).sum(axis=(1, 2)) * sc**4
                n_values[g] += hv * wv
                pair_counts(xp, levels, counts, g * n_cells, n_levels,
                            int(bank["map_pairs"][k]))
            counts = counts.reshape(b, n_groups, n_cells)
            frequencies = counts / xp.maximum(counts.sum(axis=2, keepdims=True), 1)
            moments /= xp.asarray(n_values)[:, None]
            a2 = moments[..., 1:2]
            kurtosis = xp.where(a2 > 0, moments[..., 2:3] / xp.where(a2 > 0, a2 * a2, 1.0), 0.0)
            per_channel.append(xp.concatenate(
                [frequencies, moments[..., 0:1], xp.sqrt(a2), kurtosis], axis=2))
        return xp.stack(per_channel, axis=1).reshape(b, -1).astype(xp.float32)
