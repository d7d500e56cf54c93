"""Stacked logistic regression: one model per feature family, then one over their scores.

Families differ by two orders of magnitude in length (64 spectrum bins, 9,216
gradient histograms), so one regularisation strength for all of them
over-fits the long ones or under-fits the short ones. Here every block of
columns gets its own standardised logistic regression, with ``C`` shrunk in
proportion to the block's width beyond ``WIDTH`` columns, and a second
logistic regression combines the blocks' out-of-fold log-odds (Wolpert's
stacked generalisation).
"""
from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ._sklearn_compat import Interval, fit_context

__all__ = ["StackedLogistic", "standardised_logistic", "grouped_folds"]

#: Blocks wider than this many columns get a proportionally smaller ``C``.
WIDTH = 1000


def grouped_folds(y: np.ndarray, groups: np.ndarray, n_folds: int, random_state) -> list:
    """Stratified, shuffled folds of the rows that keep each group (an image and its
    augmented copies) in one fold: ``(train, test)`` row indices per fold.

    Groups are split by the label of their first row, into ``n_folds`` folds, or
    fewer when a class has fewer groups. With every row its own group these are
    ``StratifiedKFold``'s folds of the rows.

    Raises
    ------
    ValueError
        When a class has fewer than 2 groups (no fold could hold one out).
    """
    # one row per group, groups in the order they first appear (not sorted by label), so
    # that the same rows give the same folds whatever the groups are called
    first = np.sort(np.unique(groups, return_index=True)[1])
    counts = np.bincount(y[first], minlength=2)
    if counts.min() < 2:
        raise ValueError(f"out-of-fold scores need at least 2 images of each class (an "
                         f"image and its augmented copies count as one), got {counts[0]} "
                         f"and {counts[1]}: train on more images")
    split = StratifiedKFold(min(n_folds, int(counts.min())), shuffle=True,
                            random_state=random_state)
    group_ids = groups[first]
    folds = []
    for _, test in split.split(group_ids, y[first]):
        held = np.isin(groups, group_ids[test])
        folds.append((np.flatnonzero(~held), np.flatnonzero(held)))
    return folds


def _check_groups(groups, n: int) -> np.ndarray:
    """``groups`` as a 1-D array of ``n`` labels, refused otherwise."""
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups has shape {groups.shape}; expected one group per row, "
                         f"({n},)")
    return groups


def standardised_logistic(C: float, random_state: int | None) -> Pipeline:
    """Standardisation followed by an L2 logistic regression."""
    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=C, max_iter=5000, random_state=random_state))


class StackedLogistic(ClassifierMixin, BaseEstimator):
    """Per-block logistic regressions combined by a logistic regression.

    A binary classifier over a numeric feature matrix (public as
    ``ffeat.StackedLogistic``); more than two classes are refused.

    Parameters
    ----------
    blocks : sequence of int
        Column counts of consecutive blocks (one per feature family); they must
        add up to the number of columns. Empty: all columns are one block.
    C : float
        Inverse regularisation strength of a block of up to ``WIDTH`` columns;
        a block of ``n`` columns uses ``C * min(1, WIDTH / n)``.
    n_folds : int
        Folds of the out-of-fold scores (fewer when a class has fewer rows).
    random_state : int, RandomState instance or None, optional
        Seed of the fold split and the logistic regressions.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels; log-odds are those of ``classes_[1]``.
    models_ : list of Pipeline
        Each block's scaler and logistic regression, refitted on all rows.
    C_ : list of float
        The ``C`` of each block.
    combiner_ : LogisticRegression
        Maps the blocks' log-odds to the final log-odds.
    oof_log_odds_ : ndarray of shape (n_samples,)
        Every training row's out-of-fold final log-odds: the combiner refitted
        without the row's fold, on the blocks' out-of-fold log-odds (the same
        folds). What a calibration is fitted on, in place of refitting the whole
        stack once per fold (``ffeat.models._calibration``).
    """

    _parameter_constraints: dict = {
        "blocks": ["array-like"],
        "C": [Interval(Real, 0, None, closed="neither")],
        "n_folds": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, blocks: Sequence[int] = (), C: float = 0.1, n_folds: int = 5,
                 random_state: int | None = 0) -> None:
        self.blocks = blocks
        self.C = C
        self.n_folds = n_folds
        self.random_state = random_state

    def _slices(self, n_columns: int) -> list[slice]:
        sizes = list(self.blocks) or [n_columns]
        if sum(sizes) != n_columns or min(sizes) < 1:
            raise ValueError(f"blocks {sizes} do not partition {n_columns} columns")
        edges = np.cumsum([0, *sizes])
        return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None) -> StackedLogistic:
        """Fit the blocks, then the combiner on their out-of-fold log-odds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Two classes.
        groups : array-like of shape (n_samples,), optional
            The group of each row (an image and its augmented copies): a group's rows
            share a fold, so no row is scored by a model that saw a copy of it.
            None: every row is its own group.

        Returns
        -------
        StackedLogistic
            ``self``, fitted; ``oof_log_odds_`` holds every row's out-of-fold log-odds.
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        if (kind := type_of_target(y, input_name="y")) != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the "
                             f"target is {kind}.")
        self.classes_, y, counts = np.unique(y, return_inverse=True, return_counts=True)
        if len(self.classes_) != 2 or counts.min() < 2:
            raise ValueError(f"stacking needs at least 2 rows of each of two classes, got "
                             f"{len(counts)} class{'es' * (len(counts) != 1)}: "
                             f"{dict(zip(self.classes_.tolist(), counts.tolist()))}")
        groups = np.arange(len(y)) if groups is None else _check_groups(groups, len(y))
        folds = grouped_folds(y, groups, self.n_folds, self.random_state)
        self.slices_ = self._slices(X.shape[1])
        self.C_ = [self.C * min(1.0, WIDTH / (s.stop - s.start)) for s in self.slices_]
        scores = np.column_stack([
            cross_val_predict(standardised_logistic(C, self.random_state), X[:, s], y,
                              cv=folds, method="decision_function")
            for s, C in zip(self.slices_, self.C_)])
        self.models_ = [standardised_logistic(C, self.random_state).fit(X[:, s], y)
                        for s, C in zip(self.slices_, self.C_)]
        self.combiner_ = LogisticRegression().fit(scores, y)
        self.oof_log_odds_ = cross_val_predict(LogisticRegression(), scores, y, cv=folds,
                                               method="decision_function")
        return self

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of the second class."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        z = np.column_stack([m.decision_function(X[:, s])
                             for m, s in zip(self.models_, self.slices_)])
        return self.combiner_.decision_function(z)

    def predict(self, X) -> np.ndarray:
        """The class on the positive side of the log-odds."""
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(int)]
