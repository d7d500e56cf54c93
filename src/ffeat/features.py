"""Feature families: configuration, names and the compiled CPU kernels behind them.

Every family takes a batch of RGB images as ``uint8`` arrays of shape
``(B, H, W, 3)`` (or one image of shape ``(H, W, 3)``) and returns a ``float32``
matrix with one row per image. Images of one batch share their size; different
batches may differ, and every family maps any size to the same feature length.

``gray``
    BT.601 luma (``0.299 R + 0.587 G + 0.114 B``) area-averaged onto a
    ``size x size`` grid (exact box weights, fractional at cell borders).
``spectrum``
    Azimuthal average of the log power spectrum of the luma (Durall et al.
    2020): mean luma removed, orthonormal 2-D FFT, ``log(|F|^2 + 0.01)``
    averaged without the DC coefficient over rings of
    normalised radius ``sqrt((ky/H)^2 + (kx/W)^2)`` in ``n_bins`` equal bins
    over ``[0, sqrt(1/2)]`` (the corners hold the diagonal Nyquist). Bins that
    no coefficient falls into (small images, low radii) are linearly
    interpolated from their neighbours (beyond the ends: the nearest filled bin). The 0.01 level^2 floor lies below the
    1/12 level^2 noise of 8-bit quantisation and far above float32 round-off.
``residual``
    For each channel (JPEG YCbCr by default) and each SRM-style high-pass
    filter: residuals quantised to ``clip(floor(r / q + 1/2), -T, T)``,
    the normalised co-occurrence matrix of neighbouring quantised values,
    then mean ``|r|``, RMS and kurtosis of the unquantised residual ``r`` (in
    8-bit levels). Directional filters are applied horizontally and
    vertically, each paired along its own direction; isotropic ones are paired
    both ways. A border of 2 pixels is left out.
``hog``
    Histograms of oriented gradients on a fixed cell grid. Integer luma in
    1/256 levels, ``Y = 77 R + 150 G + 29 B``; at interior pixels only
    (``1 <= i <= H-2``, ``1 <= j <= W-2``) the central differences
    ``gx = Y[i, j+1] - Y[i, j-1]``, ``gy = Y[i+1, j] - Y[i-1, j]``, magnitude
    ``sqrt(gx^2 + gy^2) / 256`` (8-bit levels) and unsigned orientation
    ``atan2(gy, gx)`` folded into ``[0, pi)``, binned as
    ``min(int(theta * n / pi), n - 1)`` in double precision. Pixel ``(i, j)``
    falls in cell ``(i * cells // H, j * cells // W)``; each cell sums the
    magnitudes per bin and is L2-Hys normalised (``v = h / sqrt(|h|^2 + eps^2)``,
    clipped at 0.2, normalised again; ``eps = 1e-3``). Images under 3x3 pixels,
    empty cells (``H`` or ``W`` below ``cells``) and flat cells give zeros.
``lbp``
    Uniform local binary pattern histograms on a fixed cell grid, at one or
    more radii. The same integer luma; at radius ``r``, each pixel at least
    ``r`` from every border gets an 8-bit code whose bit ``k`` is set when its
    neighbour ``r * LBP_NEIGHBOURS[k]`` (the corners and edge midpoints of the
    square of side ``2r + 1``, clockwise from the top left) is at least the
    centre. Codes with at most two 0/1 transitions around the circle are
    labelled by their number of set bits (0..8), all others 9
    (rotation-invariant uniform, "riu2": ``lbp_labels()``). Pixel ``(i, j)``
    falls in cell ``(i * cells // H, j * cells // W)`` as for hog; each cell's
    label counts are divided by its number of coded pixels and square-rooted
    (Hellinger normalisation: a linear model on the roots compares histograms
    like the Bhattacharyya kernel). Images under ``2r + 1`` pixels a side and
    empty cells give zeros.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import scipy.fft

from . import _gray, _hog, _lbp, _residual, _spectrum

__all__ = ["Gray", "Spectrum", "Residual", "Hog", "Lbp", "FAMILIES", "resolve_features",
           "RESIDUAL_FILTERS", "CHANNELS", "LBP_NEIGHBOURS", "radial_bins", "lbp_labels",
           "interior_cells"]

#: RGB weights of the channel planes in 1/256 of an 8-bit level (JPEG's BT.601
#: YCbCr without offsets, which the zero-sum filters cancel anyway).
CHANNELS: dict[str, tuple[int, int, int]] = {
    "Y": (77, 150, 29),
    "Cb": (-43, -85, 128),
    "Cr": (128, -107, -21),
    "R": (256, 0, 0),
    "G": (0, 256, 0),
    "B": (0, 0, 256),
}

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


#: Offsets (dy, dx) of the 8 neighbours whose comparisons with the centre are
#: bits 0..7 of a local binary pattern code: clockwise from the top left.
LBP_NEIGHBOURS: tuple[tuple[int, int], ...] = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1),
                                               (1, 0), (1, -1), (0, -1))


def interior_cells(h: int, w: int, cells: int, margin: int = 1) -> np.ndarray:
    """``(h - 2 margin, w - 2 margin)`` int32 cell of each pixel at least ``margin``
    from every border of an ``h x w`` image: ``(i * cells // h) * cells + j * cells // w``
    for ``margin <= i < h - margin``, ``margin <= j < w - margin`` (the cell grid
    of hog and lbp)."""
    rows = np.arange(margin, h - margin) * cells // h
    cols = np.arange(margin, w - margin) * cells // w
    return (rows[:, None] * cells + cols[None, :]).astype(np.int32)


def _as_batch(rgb: np.ndarray) -> np.ndarray:
    """View one image or a batch as a C-contiguous ``(B, H, W, 3)`` uint8 array."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 3:
        rgb = rgb[None]
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(
            "feature kernels take uint8 RGB images of shape (H, W, 3) or (B, H, W, 3); "
            f"got {rgb.dtype} {rgb.shape}. Use ffeat.load_image to convert other inputs.")
    return np.ascontiguousarray(rgb)


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

    def compute(self, rgb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Features of a batch; see the class docstring."""
        return _gray.gray_grid(_as_batch(rgb), self.size, n_threads)


def radial_bins(h: int, w: int, n_bins: int) -> np.ndarray:
    """Radial bin of every coefficient of an ``h x w`` 2-D FFT (NumPy order).

    The bin of normalised radius ``sqrt((ky/h)^2 + (kx/w)^2) / sqrt(1/2)`` among
    ``n_bins`` equal bins on ``[0, 1]``. The kernels and the reference both take
    their bins from here, so a coefficient on a bin edge lands on the same side.
    """
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    radius = np.sqrt(fy**2 + fx**2) / np.sqrt(0.5)
    return np.minimum((radius * n_bins).astype(np.int32), n_bins - 1)


@functools.lru_cache(maxsize=64)
def _radial_layout(h: int, w: int, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin and weight of each half-spectrum coefficient, and per-bin weight totals."""
    # Columns 0..w//2 of the full layout; |fftfreq| there equals rfftfreq.
    bins = np.ascontiguousarray(radial_bins(h, w, n_bins)[:, : w // 2 + 1])
    weight = np.full(bins.shape, 2.0, dtype=np.float32)  # each stands for itself and its twin
    weight[:, 0] = 1.0
    if w % 2 == 0:
        weight[:, -1] = 1.0  # the Nyquist column has no mirrored twin
    weight[0, 0] = 0.0  # DC: mean brightness is no forensic trace
    totals = np.bincount(bins.ravel(), weights=weight.ravel(), minlength=n_bins)
    for a in (bins, weight, totals):
        a.setflags(write=False)
    return bins, weight, totals


def _fill_empty_bins(means: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Fill bins no coefficient fell into (in place): linear interpolation
    between filled neighbours, the nearest filled value beyond the ends."""
    empty = totals == 0
    if empty.any():
        centres = np.arange(means.shape[-1])
        for row in means:
            row[empty] = np.interp(centres[empty], centres[~empty], row[~empty])
    return means


@dataclass(frozen=True)
class Spectrum:
    """Azimuthally averaged log power spectrum of the luma.

    Parameters
    ----------
    n_bins : int
        Number of radial bins; the feature length.
    """

    n_bins: int = 64
    name: ClassVar[str] = "spectrum"
    eps: ClassVar[float] = 0.01

    def __post_init__(self) -> None:
        if not 4 <= self.n_bins <= 1024:
            raise ValueError(f"spectrum n_bins must lie in [4, 1024], got {self.n_bins}")

    def feature_names(self) -> list[str]:
        """Names of the output columns, from the lowest radius outwards."""
        return [f"spectrum_{k:03d}" for k in range(self.n_bins)]

    def compute(self, rgb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Features of a batch; see the class docstring."""
        rgb = _as_batch(rgb)
        n_threads = max(n_threads, 1)
        luma = _spectrum.luma(rgb, centre=True, n_threads=n_threads)
        spec = scipy.fft.rfft2(luma, norm="ortho", workers=n_threads)
        bins, weight, totals = _radial_layout(rgb.shape[1], rgb.shape[2], self.n_bins)
        sums = _spectrum.radial_log_power(np.ascontiguousarray(spec, dtype=np.complex64),
                                          bins, weight, self.n_bins, self.eps, n_threads)
        means = np.divide(sums, totals, out=np.zeros_like(sums), where=totals > 0)
        return _fill_empty_bins(means, totals).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _filter_bank(channels: tuple[str, ...], T: int, q: float) -> dict[str, np.ndarray]:
    """Flatten the residual filters into the tap tables the kernel reads."""
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
    bank = {
        "cmat": np.array([CHANNELS[c] for c in channels], dtype=np.float32),
        "tap_start": np.array(starts, dtype=np.int32),
        "tap_dy": np.array(dy, dtype=np.int32),
        "tap_dx": np.array(dx, dtype=np.int32),
        "tap_w": np.array(w, dtype=np.float32),
        "map_div": np.array(div, dtype=np.float32),
        "map_scale": np.array(scale, dtype=np.float64),
        "map_group": np.array(group, dtype=np.int32),
        "map_pairs": np.array(pairs, dtype=np.int32),
    }
    for a in bank.values():
        a.setflags(write=False)
    return bank


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
    """

    channels: tuple[str, ...] = ("Y", "Cb", "Cr")
    T: int = 2
    q: float = 1.0
    name: ClassVar[str] = "residual"

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown or not self.channels:
            raise ValueError(f"residual channels must be a non-empty subset of "
                             f"{sorted(CHANNELS)}; got {list(self.channels)}")
        if not 1 <= self.T <= 8:
            raise ValueError(f"residual T must lie in [1, 8], got {self.T}")
        if not (0 < self.q <= 64 and float(self.q * 256).is_integer()):
            raise ValueError(f"residual q must lie in (0, 64] and be a multiple of 1/256, "
                             f"got {self.q}")

    def feature_names(self) -> list[str]:
        """Names of the output columns: channel, filter, then the statistic."""
        levels = range(-self.T, self.T + 1)
        stats = [f"cooc({a},{b})" for a in levels for b in levels]
        stats += ["mean_abs", "rms", "kurtosis"]
        return [f"residual_{c}_{f}_{s}" for c in self.channels
                for f in RESIDUAL_FILTERS for s in stats]

    def compute(self, rgb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Features of a batch; see the class docstring."""
        rgb = _as_batch(rgb)
        bank = _filter_bank(self.channels, self.T, self.q)
        out = _residual.residual_features(rgb, n_groups=len(RESIDUAL_FILTERS), T=self.T,
                                          margin=RESIDUAL_MARGIN, n_threads=n_threads,
                                          **bank)
        return out.reshape(len(out), -1)


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

    def compute(self, rgb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Features of a batch; see the class docstring."""
        return _hog.hog_cells(_as_batch(rgb), self.cells, self.orientations, n_threads,
                              self.eps, self.clip)


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

    def compute(self, rgb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Features of a batch; see the class docstring."""
        return _lbp.lbp_cells(_as_batch(rgb), self.cells, lbp_labels(), self.n_labels,
                              self.radii, n_threads)


FAMILIES: dict[str, type] = {"gray": Gray, "spectrum": Spectrum, "residual": Residual,
                             "hog": Hog, "lbp": Lbp}

Family = Gray | Spectrum | Residual | Hog | Lbp
_FAMILY_TYPES = tuple(FAMILIES.values())


def resolve_features(features) -> tuple[Family, ...]:
    """Turn family names and/or configured families into a tuple of families.

    Parameters
    ----------
    features : str, family object, or sequence of those
        E.g. ``"residual"``, ``("spectrum", "residual")`` or
        ``(Spectrum(n_bins=32), "gray")``. Comma-separated strings work too.

    Returns
    -------
    tuple of Gray, Spectrum, Residual, Hog, Lbp
    """
    if isinstance(features, (str, *_FAMILY_TYPES)):
        features = [features]
    resolved = []
    for f in features:
        if isinstance(f, str):
            for part in filter(None, (p.strip() for p in f.split(","))):
                if part not in FAMILIES:
                    raise ValueError(f"unknown feature family {part!r}; choose from "
                                     f"{', '.join(FAMILIES)}")
                resolved.append(FAMILIES[part]())
        elif isinstance(f, _FAMILY_TYPES):
            resolved.append(f)
        else:
            raise TypeError(f"features must be family names or family objects, got {f!r}")
    if not resolved:
        raise ValueError(f"no feature family given; choose from {', '.join(FAMILIES)}")
    names = [f.name for f in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"each feature family may appear once, got {names}")
    return tuple(resolved)


def describe_features(families: tuple[Family, ...]) -> list[dict]:
    """JSON-ready description of configured families (name plus parameters)."""
    return [{"family": f.name, **{k: list(v) if isinstance(v, tuple) else v
                                  for k, v in asdict(f).items()}} for f in families]


def n_columns(family: Family) -> int:
    """``len(family.feature_names())``, counted without building the names (a saved
    configuration is checked with it before anything that large is built)."""
    if isinstance(family, Gray):
        return family.size ** 2
    if isinstance(family, Spectrum):
        return family.n_bins
    if isinstance(family, Residual):
        return len(family.channels) * len(RESIDUAL_FILTERS) * ((2 * family.T + 1) ** 2 + 3)
    if isinstance(family, Hog):
        return family.cells ** 2 * family.orientations
    return len(family.radii) * family.cells ** 2 * family.n_labels
