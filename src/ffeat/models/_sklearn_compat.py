"""Every private scikit-learn name ffeat uses, imported here and nowhere else.

scikit-learn keeps these out of its public API, so they may move between releases:
``pyproject.toml`` bounds the versions ffeat supports (``scikit-learn>=1.6,<1.10``:
1.6 is the first with ``__sklearn_tags__`` and a public ``validate_data``), and CI
tests the newest release in that range. Moving the upper bound is a decision: check
these names against the new release, then move it.
"""
from __future__ import annotations

from sklearn.base import _fit_context as fit_context
from sklearn.utils._param_validation import (
                                             HasMethods,
                                             Interval,
                                             InvalidParameterError,
                                             StrOptions,
)

__all__ = ["fit_context", "HasMethods", "Interval", "InvalidParameterError", "StrOptions"]
