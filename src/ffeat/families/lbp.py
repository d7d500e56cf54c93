"""``lbp``: uniform local binary pattern histograms on a fixed cell grid, at one
or more radii.

The integer luma of hog; at radius ``r``, each pixel at least ``r`` from every
border gets an 8-bit code whose bit ``k`` is set when its neighbour
``r * LBP_NEIGHBOURS[k]`` (the corners and edge midpoints of the square of side
``2r + 1``, clockwise from the top left) is at least the centre. Codes with at
most two 0/1 transitions around the circle are labelled by their number of set
bits (0..8), all others 9 (rotation-invariant uniform, "riu2":
:func:`lbp_labels`). Pixel ``(i, j)`` falls in cell
``(i * cells // H, j * cells // W)`` as for hog; each cell's label counts are
divided by its number of coded pixels and square-rooted (Hellinger
normalisation: a linear model on the roots compares histograms like the
Bhattacharyya kernel). Images under ``2r + 1`` pixels a side and empty cells
give zeros.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import _lbp
from ._common import as_batch, cell_sums, luma_int

__all__ = ["Lbp", "LBP_NEIGHBOURS", "lbp_labels"]

#: Offsets (dy, dx) of the 8 neighbours whose comparisons with the centre are
#: bits 0..7 of a local binary pattern code: clockwise from the top left.
LBP_NEIGHBOURS: tuple[tuple[int, int], ...] = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1),
                                               (1, 0), (1, -1), (0, -1))


@functools.lru_cache(maxsize=1)
def lbp_labels() -> np.ndarray:
    """Read-only ``(256,)`` uint8 riu2 label of each 8-bit code: its number of set
    bits when the circular bit string has at most two 0/1 transitions, else 9."""
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1
    transitions = (bits != np.roll(bits, 1, axis=1)).sum(axis=1)
    labels = np.where(transitions <= 2, bits.sum(axis=1), 9).astype(np.uint8)
    labels.setflags(write=False)
    return labels


@dataclass(frozen=True)
class Lbp:
    """Uniform local binary pattern histograms of the luma on a fixed cell grid.

    Parameters
    ----------
    cells : int
        Side of the cell grid (32: 8-pixel cells on a 256-pixel image).
    radii : tuple of int
        Neighbour distances in pixels, one histogram grid each (1, 2, 3: texture
        at three scales). The feature length is ``len(radii) * cells**2 * 10``.
    """

    cells: int = 32
    radii: tuple[int, ...] = (1, 2, 3)
    name: ClassVar[str] = "lbp"
    n_labels: ClassVar[int] = 10

    def __post_init__(self) -> None:
        if not 1 <= self.cells <= 256:
            raise ValueError(f"lbp cells must lie in [1, 256], got {self.cells}")
        radii = tuple(self.radii)
        if not radii or len(set(radii)) != len(radii) or any(
                isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 1 <= r <= 32
                for r in radii):
            raise ValueError(f"lbp radii must be distinct integers in [1, 32], got {self.radii}")
        object.__setattr__(self, "radii", tuple(int(r) for r in radii))

    def feature_names(self) -> list[str]:
        """Names of the output columns: radius, cell row, cell column, label."""
        return [f"lbp_r{r}_{u}_{v}_{k}" for r in self.radii for u in range(self.cells)
                for v in range(self.cells) for k in range(self.n_labels)]

    def column_groups(self) -> list[tuple[str, int]]:
        """All radii and cells as one group: ``[(label, number of columns)]``."""
        return [("lbp texture histograms",
                 len(self.radii) * self.cells * self.cells * self.n_labels)]

    def compute(self, rgb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Features of a batch with the compiled kernel; see the module docstring."""
        return _lbp.lbp_cells(as_batch(rgb), self.cells, lbp_labels(), self.n_labels,
                              self.radii, n_threads)

    def compute_array(self, xp, rgb, raw_kernels: bool = True):
        """``(B, len(radii) * cells**2 * 10)`` float32 on ``xp``.

        Integer luma, comparisons and label counts (one ``bincount`` per radius over
        image, cell and label) are exact; each count is divided by its cell's total
        and square-rooted in float64, as in the CPU kernel (``raw_kernels`` is
        unused: there are none).
        """
        b, h, w = rgb.shape[:3]
        n, cells = self.n_labels, self.cells
        out = xp.zeros((b, len(self.radii), cells * cells, n), dtype=xp.float32)
        luma = luma_int(xp, rgb)
        labels = xp.asarray(lbp_labels()).astype(xp.int32)
        for q, r in enumerate(self.radii):
            if h < 2 * r + 1 or w < 2 * r + 1:  # no pixel has all its neighbours
                continue
            centre = luma[:, r:h - r, r:w - r]
            code = xp.zeros(centre.shape, dtype=xp.int32)
            for k, (dy, dx) in enumerate(LBP_NEIGHBOURS):
                neighbour = luma[:, r + r * dy:h - r + r * dy, r + r * dx:w - r + r * dx]
                code |= (neighbour >= centre).astype(xp.int32) << k
            counts = cell_sums(xp, labels[code], None, cells, n, margin=r)
            del code
            totals = counts.sum(axis=-1, keepdims=True)
            out[:, q] = xp.sqrt(counts / xp.maximum(totals, 1))
        return out.reshape(b, -1)
