"""``gray``: BT.601 luma (``0.299 R + 0.587 G + 0.114 B``) area-averaged onto a
``size x size`` grid (exact box weights, fractional at cell borders)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import _gray
from ._common import as_batch, luma

__all__ = ["Gray"]


@functools.lru_cache(maxsize=32)
def _box_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Read-only (n_out, n_in) float32 matrix that area-averages ``n_in`` pixels into
    ``n_out`` cells.

    Cell ``u`` covers ``[u s, (u + 1) s)`` with ``s = n_in / n_out``; pixel ``k``'s
    share is the coverage ``clip(x - k, 0, 1)`` of ``[k, k + 1)`` up to the cell's
    upper edge minus that up to its lower edge.
    """
    edges = np.arange(n_out + 1)[:, None] * (n_in / n_out)
    covered = np.clip(edges - np.arange(n_in)[None, :], 0.0, 1.0)
    m = ((covered[1:] - covered[:-1]) / (n_in / n_out)).astype(np.float32)
    m.setflags(write=False)
    return m


@dataclass(frozen=True)
class Gray:
    """Luma pixels on a fixed grid (the grayscale-pixels baseline).

    Parameters
    ----------
    size : int
        Side of the output grid; the feature length is ``size**2``.
    """

    size: int = 32
    name: ClassVar[str] = "gray"

    def __post_init__(self) -> None:
        if not 1 <= self.size <= 512:
            raise ValueError(f"gray size must lie in [1, 512], got {self.size}")

    def feature_names(self) -> list[str]:
        """Names of the output columns, row-major over the grid."""
        return [f"gray_{u}_{v}" for u in range(self.size) for v in range(self.size)]

    def column_groups(self) -> list[tuple[str, int]]:
        """The whole grid as one group: ``[(label, number of columns)]``."""
        return [("gray pixels", self.size * self.size)]

    def compute(self, rgb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Features of a batch with the compiled kernel; see the module docstring."""
        return _gray.gray_grid(as_batch(rgb), self.size, n_threads)

    def compute_array(self, xp, rgb, raw_kernels: bool = True):
        """``(B, size**2)`` float32 on ``xp``: luma area-averaged to the grid by two
        matrix products (``raw_kernels`` is unused: there are none)."""
        b, h, w = rgb.shape[:3]
        wy = xp.asarray(_box_matrix(h, self.size))
        wx = xp.asarray(_box_matrix(w, self.size))
        return (wy @ luma(xp, rgb) @ wx.T).reshape(b, -1)
