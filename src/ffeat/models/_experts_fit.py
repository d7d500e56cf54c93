"""Fitting an expert detector: the scikit-learn side of ``ffeat.models._experts``.

:class:`Experts` fits one expert per generator family (a clone of a linear base
classifier on that family's fakes and every real, calibrated on its out-of-fold
log-odds) and combines them by a rule into an
:class:`~ffeat.models._experts.ExpertSet`; :func:`fit_expert` fits one expert (also
what :func:`ffeat.add_expert` and the benchmark's few-shot runs use);
:func:`combiner` fits the constrained combiner.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _calibration
from ._experts import DEFAULT_RULE, RULES, Expert, ExpertSet, check_name
from ._models import LinearModel, sigmoid
from ._sklearn_compat import HasMethods, StrOptions, fit_context
from ._stacking import StackedLogistic

__all__ = ["Experts", "fit_expert", "combiner"]


def _platt(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[a, b]`` of a Platt calibration of log-odds ``z`` to labels ``y`` (``a > 0``)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6).fit(z[:, None], y)
    return np.array([max(float(lr.coef_[0, 0]), 1e-6), float(lr.intercept_[0])])


def fit_expert(estimator, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, name: str,
               sources: str = "") -> tuple[Expert, np.ndarray]:
    """One expert: a clone of ``estimator`` fitted on rows ``X, y`` (its family's fakes,
    label 1, and the reals, 0) and calibrated on its out-of-fold log-odds.

    Parameters
    ----------
    estimator : StackedLogistic or Pipeline
        Unfitted; a ``StackedLogistic`` (which computes out-of-fold log-odds while it
        fits, ``oof_log_odds_``) or a linear pipeline (refitted once per fold).
    X, y : ndarray
    groups : ndarray or None
        An image and its augmented copies share a fold.
    name, sources : str
        The expert's name and what it was trained on.

    Returns
    -------
    expert : Expert
    oof : ndarray
        The out-of-fold log-odds of every row (what the calibration was fitted on).
    """
    from sklearn.base import clone

    check_name(name)
    est = clone(estimator)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    est = est.fit(X, y, groups=groups) if isinstance(est, StackedLogistic) else est.fit(X, y)
    oof = _calibration._out_of_fold(est, X, y, groups, 0)  # as the detector's calibration
    return Expert(name, sources, LinearModel.from_estimator(est), _platt(oof, y)), oof


class Experts(ClassifierMixin, BaseEstimator):
    """The scikit-learn estimator of an :class:`ExpertSet`: one expert per generator
    family, fitted on that family's fake rows and every real row.

    Parameters
    ----------
    base : estimator, optional
        The unfitted linear classifier every expert clones (a
        :class:`~ffeat.StackedLogistic`, the shipped detector's, or a
        ``StandardScaler`` + ``LogisticRegression`` pipeline). None:
        ``StackedLogistic()``.
    rule : {"max", "noisy-or", "combiner"}
        How the experts' probabilities are combined (see the module docstring).

    Attributes
    ----------
    experts_ : ExpertSet
        The fitted experts and rule.
    oof_expert_log_odds_ : ndarray of shape (n_rows, n_experts)
        Each expert's calibrated out-of-fold log-odds of every training row: for the
        rows it trained on, from models that did not see their fold; for the other
        families' fakes, which it never saw, its plain log-odds.
    oof_log_odds_ : ndarray of shape (n_rows,)
        Their combination by the rule: what the detector's calibration and band are
        fitted on.
    classes_ : ndarray
        ``[0, 1]``.
    """

    _parameter_constraints: dict = {
        "base": [HasMethods(["fit", "decision_function"]), None],
        "rule": [StrOptions(set(RULES))],
    }

    def __init__(self, base=None, rule: str = DEFAULT_RULE) -> None:
        self.base = base
        self.rule = rule

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None, generator=None) -> Experts:
        """Fit one expert per family named in ``generator`` (the fakes' labels).

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
        y : array-like of {0, 1}
            1 = fake.
        groups : array-like, optional
            An image and its augmented copies (they share a fold).
        generator : array-like of str
            Per row, the generator family of a fake (ignored for reals); each family
            gets an expert, named after it, in order of first appearance.

        Returns
        -------
        Experts
            ``self``, fitted.

        Raises
        ------
        ValueError
            Without ``generator`` or without reals; from the base classifier, for a
            family too small for it (a ``StackedLogistic`` needs 2 fakes).
        """
        if generator is None:
            raise ValueError("an expert detector needs each fake's generator family: "
                             "fit(X, y, generator=[...]), e.g. 'gan' or 'diffusion' per fake")
        X, y = validate_data(self, X, y, dtype=np.float64)
        y = y.astype(int)
        generator = np.asarray(generator, dtype=object)
        if generator.shape != y.shape:
            raise ValueError(f"generator has shape {generator.shape}; expected one family per "
                             f"row, {y.shape}")
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        families = list(dict.fromkeys(str(g) for g in generator[y == 1]))
        if not families or not (y == 0).any():
            raise ValueError("an expert detector needs real rows and fake rows with their "
                             "generator family")
        base = StackedLogistic() if self.base is None else self.base
        experts, Z = [], np.empty((len(y), len(families)))
        for j, family in enumerate(families):
            own = (y == 0) | (generator == family)
            expert, oof = fit_expert(base, X[own], y[own], groups[own], family, family)
            experts.append(expert)
            Z[own, j] = expert.platt[0] * oof + expert.platt[1]
            Z[~own, j] = expert.platt[0] * expert.model.decision_function(X[~own]) \
                + expert.platt[1]
        weights, bias = combiner(Z, y) if self.rule == "combiner" else (None, 0.0)
        self.experts_ = ExpertSet(experts, self.rule, weights, bias)
        self.oof_expert_log_odds_ = Z
        self.oof_log_odds_ = self.experts_.combine(sigmoid(Z))
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X) -> np.ndarray:
        """Combined log-odds of fake."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.experts_.decision_function(X)

    def predict(self, X) -> np.ndarray:
        """1 where the combined log-odds are positive."""
        return (self.decision_function(X) > 0).astype(int)


def combiner(Z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative weights and an intercept of a logistic regression of ``y`` on the
    experts' calibrated log-odds ``Z`` (negative weights of an unconstrained fit are set
    to 0, then the scale and intercept of the combination refitted)."""
    from sklearn.linear_model import LogisticRegression

    w = np.clip(LogisticRegression(C=1.0, max_iter=1000).fit(Z, y).coef_[0], 0, None)
    if not w.any():
        w = np.ones(Z.shape[1])
    lr = LogisticRegression(C=1e6).fit((Z @ w)[:, None], y)
    return w * max(float(lr.coef_[0, 0]), 1e-6), float(lr.intercept_[0])
