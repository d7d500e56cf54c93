"""``hog``: histograms of oriented gradients on a fixed cell grid.

Integer luma in 1/256 levels, ``Y = 77 R + 150 G + 29 B``; at interior pixels
only (``1 <= i <= H-2``, ``1 <= j <= W-2``) the central differences
``gx = Y[i, j+1] - Y[i, j-1]``, ``gy = Y[i+1, j] - Y[i-1, j]``, magnitude
``sqrt(gx^2 + gy^2) / 256`` (8-bit levels) and unsigned orientation
``atan2(gy, gx)`` folded into ``[0, pi)``, binned as
``min(int(theta * n / pi), n - 1)`` in double precision. Pixel ``(i, j)``
falls in cell ``(i * cells // H, j * cells // W)``; each cell sums the
magnitudes per bin and is L2-Hys normalised (``v = h / sqrt(|h|^2 + eps^2)``,
clipped at 0.2, normalised again; ``eps = 1e-3``). Images under 3x3 pixels,
empty cells (``H`` or ``W`` below ``cells``) and flat cells give zeros.

The compiled kernel guesses each bin with a vectorised float arctangent and
redoes guesses near a bin edge with ``atan2``; the array code takes ``atan2``
everywhere, which makes it the oracle for the kernel's bins.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import _hog
from ._common import as_batch, cell_sums, luma_int

__all__ = ["Hog"]


def _l2hys(xp, hist, eps: float, clip: float):
    """L2-Hys over the last axis: normalise, clip at ``clip``, normalise again."""
    clipped = xp.minimum(hist / xp.sqrt((hist * hist).sum(axis=-1, keepdims=True) + eps**2),
                         clip)
    return clipped / xp.sqrt((clipped * clipped).sum(axis=-1, keepdims=True) + eps**2)


@dataclass(frozen=True)
class Hog:
    """Histograms of gradient orientations of the luma on a fixed cell grid.

    Parameters
    ----------
    cells : int
        Side of the cell grid (32: 8-pixel cells on a 256-pixel image).
    orientations : int
        Unsigned orientation bins over ``[0, pi)``. The feature length is
        ``cells**2 * orientations``.
    """

    cells: int = 32
    orientations: int = 9
    name: ClassVar[str] = "hog"
    eps: ClassVar[float] = 1e-3
    clip: ClassVar[float] = 0.2

    def __post_init__(self) -> None:
        if not 1 <= self.cells <= 256:
            raise ValueError(f"hog cells must lie in [1, 256], got {self.cells}")
        if not 2 <= self.orientations <= 36:
            raise ValueError(f"hog orientations must lie in [2, 36], got {self.orientations}")

    def feature_names(self) -> list[str]:
        """Names of the output columns: cell row, cell column, orientation bin."""
        return [f"hog_{u}_{v}_{k}" for u in range(self.cells) for v in range(self.cells)
                for k in range(self.orientations)]

    def column_groups(self) -> list[tuple[str, int]]:
        """The whole grid as one group: ``[(label, number of columns)]``."""
        return [("hog gradient histograms", self.cells * self.cells * self.orientations)]

    def compute(self, rgb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Features of a batch with the compiled kernel; see the module docstring."""
        return _hog.hog_cells(as_batch(rgb), self.cells, self.orientations, n_threads,
                              self.eps, self.clip)

    def compute_array(self, xp, rgb, raw_kernels: bool = True):
        """``(B, cells**2 * orientations)`` float32 on ``xp``.

        Luma and central differences are exact int32; magnitude, ``arctan2`` and the
        bin ``theta * n / pi`` are float64, as in the CPU kernel. The cell sums are
        one float64 ``bincount`` over image, cell and bin (``raw_kernels`` is
        unused: there are none).
        """
        b, h, w = rgb.shape[:3]
        n, cells = self.orientations, self.cells
        if h < 3 or w < 3:  # no interior pixels
            return xp.zeros((b, cells * cells * n), dtype=xp.float32)
        luma = luma_int(xp, rgb)
        gx = (luma[:, 1:-1, 2:] - luma[:, 1:-1, :-2]).astype(xp.float64)
        gy = (luma[:, 2:, 1:-1] - luma[:, :-2, 1:-1]).astype(xp.float64)
        del luma
        magnitude = xp.sqrt(gx * gx + gy * gy) / 256
        theta = xp.arctan2(gy, gx)
        del gx, gy
        theta += xp.where(theta < 0, np.pi, 0.0)  # unsigned: fold into [0, pi)
        theta -= xp.where(theta >= np.pi, np.pi, 0.0)
        index = xp.minimum((theta * n / np.pi).astype(xp.int32), n - 1)
        del theta
        sums = cell_sums(xp, index, magnitude, cells, n)
        return _l2hys(xp, sums, self.eps, self.clip).reshape(b, -1).astype(xp.float32)
