"""Feature families, one module each, and the registry that names them.

Every family takes a batch of RGB images as ``uint8`` arrays of shape
``(B, H, W, 3)`` (or one image of shape ``(H, W, 3)``) and returns a ``float32``
matrix with one row per image. Images of one batch share their size; different
batches may differ, and every family maps any size to the same feature length.

A family is a frozen dataclass in its own module (``gray``, ``spectrum``,
``residual``, ``hog``, ``lbp``, ``npr``; the definitions are in their docstrings) that
owns its configuration and

* ``name``: the string ``features=`` takes (a class attribute);
* ``feature_names()``: its column names (saved models and feature files
  depend on them);
* ``column_groups()``: ``(label, number of columns)`` of consecutive column
  groups, which the report explains one by one;
* ``compute(rgb, n_threads)``: the compiled CPU kernel (``ext/_<name>.pyx``);
* ``compute_array(xp, rgb, raw_kernels)``: the same features written once
  against an array module ``xp`` (``numpy`` or ``cupy``), the GPU backend and
  the oracle the tests hold the kernel to.

The registry below lists the family classes; everything else (names,
``resolve_features``, batches on a device, column groups) goes through it.
"""
from __future__ import annotations

import functools
from dataclasses import asdict

import numpy as np

from ._common import CHANNELS, interior_cells, to_host
from .gray import Gray
from .hog import Hog
from .lbp import LBP_NEIGHBOURS, Lbp, lbp_labels
from .npr import NPR_DIRECTIONS, Npr
from .residual import RESIDUAL_FILTERS, Residual
from .spectrum import Spectrum, radial_bins

__all__ = ["Gray", "Spectrum", "Residual", "Hog", "Lbp", "Npr", "Family", "FAMILIES",
           "resolve_features", "describe_features", "n_columns", "column_names",
           "column_groups", "compute_families", "RESIDUAL_FILTERS", "CHANNELS", "LBP_NEIGHBOURS",
           "radial_bins", "lbp_labels", "interior_cells", "NPR_DIRECTIONS"]

#: The families by name, in their usual column order.
FAMILIES: dict[str, type] = {cls.name: cls for cls in (Gray, Spectrum, Residual, Hog, Lbp,
                                                       Npr)}

Family = Gray | Spectrum | Residual | Hog | Lbp | Npr


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
    types = tuple(FAMILIES.values())
    if isinstance(features, (str, *types)):
        features = [features]
    if features is None or not hasattr(features, "__iter__") or isinstance(features, dict):
        raise TypeError(f"features must be a family name ({', '.join(FAMILIES)}), a family "
                        f"object or a sequence of those, got {features!r}")
    resolved = []
    for f in features:
        if isinstance(f, str):
            for part in filter(None, (p.strip() for p in f.split(","))):
                if part not in FAMILIES:
                    raise ValueError(f"unknown feature family {part!r}; choose from "
                                     f"{', '.join(FAMILIES)}")
                resolved.append(FAMILIES[part]())
        elif isinstance(f, types):
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
    """JSON-ready description of configured families (name plus parameters).

    Parameters
    ----------
    families : sequence of Gray, Spectrum, Residual, Hog, Lbp

    Returns
    -------
    list of dict
        ``{"family": name, parameter: value, ...}`` per family, tuples as lists.
    """
    return [{"family": f.name, **{k: list(v) if isinstance(v, tuple) else v
                                  for k, v in asdict(f).items()}} for f in families]


def n_columns(family: Family) -> int:
    """``len(family.feature_names())``, counted from the family's column groups
    without building the names (a saved configuration is checked with it before
    anything that large is built).

    Parameters
    ----------
    family : Gray, Spectrum, Residual, Hog or Lbp

    Returns
    -------
    int
    """
    return sum(width for _, width in family.column_groups())


def column_names(families) -> list[str]:
    """The column names of ``families``, concatenated in order.

    Parameters
    ----------
    families : sequence of Gray, Spectrum, Residual, Hog, Lbp

    Returns
    -------
    list of str
    """
    return [n for f in families for n in _feature_names(f)]


@functools.lru_cache(maxsize=64)
def _feature_names(family: Family) -> tuple[str, ...]:
    """A family's column names, built once per configuration (families are frozen and
    hashable): the default set has 41,444 and every scoring call counts them."""
    return tuple(family.feature_names())


def column_groups(families) -> list[tuple[str, np.ndarray]]:
    """The column groups the families tell, over their concatenated columns.

    Parameters
    ----------
    families : sequence of Gray, Spectrum, Residual, Hog, Lbp
        In column order.

    Returns
    -------
    list of (str, ndarray of int)
        Group label and its column indices, in feature order: spectrum radial
        bands (low to high frequency), residual channel x filter, and each grid
        family (gray, hog, lbp) as one group.
    """
    groups, start = [], 0
    for f in families:
        for label, width in f.column_groups():
            groups.append((label, np.arange(start, start + width)))
            start += width
    return groups


def compute_families(xp, rgb, families, raw_kernels: bool = True) -> np.ndarray:
    """Feature rows of a batch for several families through their array code.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    rgb : xp array of uint8, shape (B, H, W, 3)
        The batch, already on the device; all images share one size.
    families : sequence of Gray, Spectrum, Residual, Hog, Lbp
        In column order.
    raw_kernels : bool, optional
        Use the CuPy raw kernels where a family has some (ignored for NumPy).

    Returns
    -------
    ndarray of float32, shape (B, n_features)
        On the host, columns as ``np.concatenate([f.compute(rgb) for f in families], 1)``.
    """
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"device batches must be uint8 RGB of shape (B, H, W, 3); "
                         f"got {rgb.dtype} {rgb.shape}")
    parts = [f.compute_array(xp, rgb, raw_kernels=raw_kernels) for f in families]
    return to_host(xp, xp.concatenate(parts, axis=1).astype(xp.float32, copy=False))
