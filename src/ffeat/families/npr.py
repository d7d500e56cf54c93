"""``npr``: neighbouring-pixel differences split by their 2x2 phase (NPR-style
up-sampling residuals).

For each channel plane (JPEG YCbCr by default, the integer weights of
``CHANNELS``, so planes are exact integers in units of 1/256 level), each
direction ``d`` of ``NPR_DIRECTIONS`` (right, down, down-right) and each anchor
phase ``(i % 2, j % 2)``: the differences ``D = x[i + dy, j + dx] - x[i, j]``
over the anchors ``(i, j)`` of that phase whose neighbour lies in the image.
Statistics per group (in 8-bit levels): mean ``|D|``, RMS, and the frequencies
of ``clip(floor(D + 1/2), -T, T)`` (``2T + 1`` bins).

Phase ``(0, 0)`` holds Tan et al.'s (CVPR 2024) neighbouring pixel
relationships, ``x - up_nearest(down_nearest(x))`` on the 2x2 grid: each
pixel of a block minus the block's top-left pixel. An image up-sampled by 2 (a
generator's last layers) has different statistics in the phases inside and
across the 2x2 blocks; one without such traces has the same in all four, so a
linear model can read the contrast. Groups without anchors (an image one pixel
high has no vertical pairs) give zeros.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import _npr
from ._common import CHANNELS, as_batch

__all__ = ["Npr", "NPR_DIRECTIONS"]

#: Neighbour offsets ``(dy, dx)`` of the differences, by name.
NPR_DIRECTIONS: dict[str, tuple[int, int]] = {"h": (0, 1), "v": (1, 0), "d": (1, 1)}

#: Anchor phases ``(i % 2, j % 2)``, in column order.
_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


@dataclass(frozen=True)
class Npr:
    """Statistics of neighbouring-pixel differences per 2x2 phase.

    Parameters
    ----------
    channels : tuple of str
        Channel planes, from ``CHANNELS`` (``"Y"``, ``"Cb"``, ``"Cr"``, ``"R"``,
        ``"G"``, ``"B"``).
    T : int
        Histogram range: differences rounded to whole levels and clipped to
        ``[-T, T]``. The feature length is ``len(channels) * 3 * 4 * (2T + 3)``.
    """

    channels: tuple[str, ...] = ("Y", "Cb", "Cr")
    T: int = 3
    name: ClassVar[str] = "npr"

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown or not self.channels or len(set(self.channels)) != len(self.channels):
            raise ValueError(f"npr channels must be distinct names from {sorted(CHANNELS)}; "
                             f"got {list(self.channels)}")
        if isinstance(self.T, bool) or not isinstance(self.T, (int, np.integer)) \
                or not 1 <= self.T <= 16:
            raise ValueError(f"npr T must be an integer in [1, 16], got {self.T!r}")

    def feature_names(self) -> list[str]:
        """Names of the output columns: channel, direction, phase, statistic."""
        stats = ["mean_abs", "rms"] + [f"hist({k})" for k in range(-self.T, self.T + 1)]
        return [f"npr_{c}_{d}_{py}{px}_{s}" for c in self.channels for d in NPR_DIRECTIONS
                for py, px in _PHASES for s in stats]

    def column_groups(self) -> list[tuple[str, int]]:
        """One group per channel and direction: ``[(label, number of columns)]``."""
        return [(f"npr {c} {d}", len(_PHASES) * (2 * self.T + 3))
                for c in self.channels for d in NPR_DIRECTIONS]

    def compute(self, rgb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Features of a batch with the compiled kernel; see the module docstring."""
        rgb = as_batch(rgb)
        cmat = np.array([CHANNELS[c] for c in self.channels], dtype=np.int32)
        offsets = np.array(list(NPR_DIRECTIONS.values()), dtype=np.int32)
        out = _npr.npr_features(rgb, cmat, offsets, self.T, n_threads)
        return out.reshape(len(out), -1)

    def compute_array(self, xp, rgb, raw_kernels: bool = True):
        """``(B, len(channels) * 3 * 4 * (2T + 3))`` float32 on ``xp``.

        Planes, differences, histogram counts and the sums of ``|D|`` and ``D**2``
        are exact integers (int64; as float64 below 2**53), as in the CPU kernel;
        means are taken in float64 (``raw_kernels`` is unused: there are none).
        """
        b, h, w = rgb.shape[:3]
        T, n_bins = self.T, 2 * self.T + 1
        out = xp.zeros((b, len(self.channels), len(NPR_DIRECTIONS), len(_PHASES), n_bins + 2),
                       dtype=xp.float64)
        batch = (xp.arange(b, dtype=xp.int64) * n_bins)[:, None]
        for c, name in enumerate(self.channels):
            plane = sum(rgb[..., k].astype(xp.int64) * weight
                        for k, weight in enumerate(CHANNELS[name]))
            for d, (dy, dx) in enumerate(NPR_DIRECTIONS.values()):
                diff = plane[:, dy:, dx:] - plane[:, :h - dy, :w - dx]
                for p, (py, px) in enumerate(_PHASES):
                    r = diff[:, py::2, px::2].reshape(b, -1)
                    n = r.shape[1]
                    if n == 0:
                        continue
                    # floor(D / 256 + 1/2), clipped: floor division rounds down.
                    level = xp.clip((r + 128) // 256, -T, T) + T
                    counts = xp.bincount((level + batch).ravel(), minlength=b * n_bins)
                    out[:, c, d, p, 2:] = counts.reshape(b, n_bins) / n
                    out[:, c, d, p, 0] = xp.abs(r).sum(axis=1) / (256.0 * n)
                    out[:, c, d, p, 1] = xp.sqrt((r * r).sum(axis=1) / n) / 256.0
        return out.reshape(b, -1).astype(xp.float32)
