"""The feature families under their historical import path.

Each family lives in its own module of :mod:`ffeat.families` (configuration,
column names and groups, compiled kernel call and array code); this module
re-exports the public names, so ``from ffeat.features import Hog`` keeps working.
"""
from __future__ import annotations

from .families import (
                       CHANNELS,
                       FAMILIES,
                       LBP_NEIGHBOURS,
                       RESIDUAL_FILTERS,
                       Family,
                       Gray,
                       Hog,
                       Lbp,
                       Npr,
                       Residual,
                       Spectrum,
                       column_names,
                       describe_features,
                       interior_cells,
                       lbp_labels,
                       n_columns,
                       radial_bins,
                       resolve_features,
)

__all__ = ["Gray", "Spectrum", "Residual", "Hog", "Lbp", "Npr", "Family", "FAMILIES",
           "resolve_features", "describe_features", "n_columns", "column_names",
           "RESIDUAL_FILTERS", "CHANNELS", "LBP_NEIGHBOURS", "radial_bins", "lbp_labels",
           "interior_cells"]
