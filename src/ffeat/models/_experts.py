"""A detector made of experts: one linear model per generator family, combined.

Each expert is a linear model (:class:`~ffeat.models._models.LinearModel`, e.g. a
folded :class:`~ffeat.StackedLogistic`) trained on one family's fakes against the
reals, with its own Platt calibration ``p = sigmoid(a * z + b)`` fitted on its
out-of-fold log-odds. The experts' calibrated probabilities ``p_1 .. p_k`` are
combined into one log-odds of fake by a rule (:data:`RULES`):

- ``"max"``: ``logit(max_i p_i)``: an image is as fake as its most certain expert;
- ``"noisy-or"``: ``logit(1 - prod_i (1 - p_i))``: the experts as independent
  witnesses;
- ``"combiner"``: ``w . logit(p) + c`` with non-negative weights ``w``, fitted by
  logistic regression on the experts' out-of-fold log-odds.

The family an image resembles most (its *generator*) is the expert with the
highest probability. An expert can be added to a fitted set without refitting
the others (:meth:`ExpertSet.with_expert`): under ``max`` and ``noisy-or`` nothing
else changes; under ``combiner`` the new expert gets the mean weight of the others.

:class:`ExpertSet` is plain arrays (saved in a model file under ``model/...``,
checked by :meth:`ExpertSet.from_arrays` when read back); :class:`Experts` is the
scikit-learn estimator that fits one.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._sklearn_compat import HasMethods, StrOptions, fit_context

__all__ = ["RULES", "DEFAULT_RULE", "MAX_EXPERTS", "Expert", "ExpertSet", "Experts",
           "fit_expert", "combiner", "check_name", "logit"]

#: The combination rules (see the module docstring).
RULES = ("max", "noisy-or", "combiner")
#: The rule an expert detector uses unless told otherwise: measured best on the
#: shared sources (``benchmarks/experts.py``, ``docs/experts.md``).
DEFAULT_RULE = "max"
#: Most experts a model holds (bounds what a model file may declare).
MAX_EXPERTS = 32
#: What an expert's name may be: a word of letters, digits, ``-``, ``_``, ``.``.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", re.ASCII)
#: Most characters of an expert's sources text.
_MAX_SOURCES = 1024
#: Probabilities are kept inside ``[EPS, 1 - EPS]`` before a logit (finite log-odds).
_EPS = 1e-12


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of probabilities, clipped to ``[EPS, 1 - EPS]`` (NaN stays NaN)."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def check_name(name: str) -> str:
    """An expert's name, refused unless a short word (it becomes a column name)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"expert name {name!r}: use 1-64 letters, digits, '-', '_' or '.', "
                         "starting with a letter or digit (e.g. 'gan', 'sdxl')")
    return name


class Expert(NamedTuple):
    """One fitted expert.

    Attributes
    ----------
    name : str
        The family it detects (``"gan"``, ``"diffusion"``, an analyst's name).
    sources : str
        What it was trained on, as text (source names or a data description).
    model : LinearModel
        Its log-odds of fake.
    platt : ndarray of shape (2,)
        ``[a, b]``: its calibrated probability is ``sigmoid(a * z + b)``, ``a > 0``.
    """

    name: str
    sources: str
    model: LinearModel
    platt: np.ndarray

    def probability(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of this family's fake for feature rows ``X``."""
        return sigmoid(self.platt[0] * self.model.decision_function(X) + self.platt[1])


class ExpertSet:
    """Experts and the rule that combines them (see the module docstring).

    Parameters
    ----------
    experts : sequence of Expert
        At least one, at most :data:`MAX_EXPERTS`, names unique.
    rule : {"max", "noisy-or", "combiner"}
    weights : ndarray of shape (n_experts,), optional
        ``combiner`` only: non-negative weights on the experts' calibrated log-odds.
    bias : float, optional
        ``combiner`` only: the intercept.
    """

    kind = "experts"

    def __init__(self, experts, rule: str = DEFAULT_RULE, weights: np.ndarray | None = None,
                 bias: float = 0.0) -> None:
        self.experts = tuple(experts)
        if not 1 <= len(self.experts) <= MAX_EXPERTS:
            raise ValueError(f"an expert set holds 1 to {MAX_EXPERTS} experts, got "
                             f"{len(self.experts)}")
        names = [check_name(e.name) for e in self.experts]
        if len(set(names)) != len(names):
            raise ValueError(f"expert names must differ, got {names}")
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; choose from {', '.join(RULES)}")
        self.rule = rule
        self.weights = np.ones(len(self.experts)) if weights is None \
            else np.asarray(weights, dtype=np.float64)
        if self.weights.shape != (len(self.experts),) or (self.weights < 0).any():
            raise ValueError(f"weights must be {len(self.experts)} non-negative numbers")
        self.bias = float(bias)

    @classmethod
    def from_estimator(cls, estimator: Experts) -> ExpertSet:
        """The fitted set of an :class:`Experts` estimator."""
        return estimator.experts_

    @property
    def names(self) -> list[str]:
        """The experts' names, in order."""
        return [e.name for e in self.experts]

    def expert_probabilities(self, X: np.ndarray) -> np.ndarray:
        """Each expert's calibrated probability, shape ``(n_rows, n_experts)``."""
        X = np.asarray(X, dtype=np.float64)
        return np.column_stack([e.probability(X) for e in self.experts]) if len(X) \
            else np.empty((0, len(self.experts)))

    def combine(self, P: np.ndarray) -> np.ndarray:
        """The combined log-odds of fake from expert probabilities ``P`` (n, k)."""
        P = np.asarray(P, dtype=np.float64)
        if self.rule == "max":
            return logit(P.max(axis=1))
        if self.rule == "noisy-or":
            return logit(-np.expm1(np.log1p(-np.clip(P, 0, 1 - _EPS)).sum(axis=1)))
        return logit(P) @ self.weights + self.bias

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Combined log-odds of fake."""
        return self.combine(self.expert_probabilities(X))

    def generator(self, X: np.ndarray) -> np.ndarray:
        """The name of the expert with the highest probability, per row."""
        return np.array(self.names, dtype=object)[self.expert_probabilities(X).argmax(axis=1)]

    def with_expert(self, expert: Expert) -> ExpertSet:
        """A new set with ``expert`` added last; the others unchanged (under ``combiner``
        the new expert's weight is the mean of theirs)."""
        weights = np.r_[self.weights, self.weights.mean()]
        return ExpertSet([*self.experts, expert], self.rule, weights, self.bias)

    # -- arrays --------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"names": np.array(self.names), "rule": np.array(self.rule),
               "sources": np.array([e.sources for e in self.experts]),
               "weights": self.weights, "bias": np.array(self.bias)}
        for i, e in enumerate(self.experts):
            out.update({f"expert{i}/{k}": v for k, v in e.model.to_arrays().items()})
            out[f"expert{i}/platt"] = np.asarray(e.platt, dtype=np.float64)
        return out

    @staticmethod
    def max_bytes(n_features: int, params: dict) -> int:
        """Most bytes the arrays of a set of :data:`MAX_EXPERTS` experts take."""
        per_expert = LinearModel.max_bytes(n_features, params) + 8 * 3 + 4 * (64 + _MAX_SOURCES)
        return MAX_EXPERTS * per_expert + 4 * 16 + 16

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray], n_features: int) -> ExpertSet:
        """The set saved as arrays ``a`` (from :meth:`to_arrays`) over ``n_features`` columns.

        Raises
        ------
        ValueError
            Naming the array that is missing, unknown, or not what a set saves: names
            that are not short words or repeat, an unknown rule, negative weights, an
            expert's arrays of another shape, a calibration slope that is not positive.
        """
        names = _strings(a, "names", 64)
        k = len(names)
        if not 1 <= k <= MAX_EXPERTS:
            raise ValueError(f"model array 'names' holds {k} experts, not 1 to {MAX_EXPERTS}")
        expected = {"names", "rule", "sources", "weights", "bias",
                    *(f"expert{i}/{f}" for i in range(k)
                      for f in ("mean", "scale", "coef", "intercept", "platt"))}
        missing, unknown = sorted(expected - set(a)), sorted(set(a) - expected)
        if missing or unknown:
            raise ValueError(f"model arrays {missing} missing or {unknown} unknown for a set "
                             f"of {k} experts")
        rule = str(_strings(a, "rule", 16, scalar=True))
        sources = _strings(a, "sources", _MAX_SOURCES)
        if len(sources) != k:
            raise ValueError(f"model array 'sources' holds {len(sources)} entries for {k} experts")
        weights = _finite("weights", _array(a, "weights", "f", (k,)))
        bias = _finite("bias", _array(a, "bias", "f", ()))
        experts = []
        for i, (name, text) in enumerate(zip(names, sources)):
            part = {f: a[f"expert{i}/{f}"] for f in ("mean", "scale", "coef", "intercept")}
            try:
                model = LinearModel.from_arrays(part, n_features)
            except ValueError as exc:
                raise ValueError(f"expert {i}: {exc}") from None
            platt = _finite(f"expert{i}/platt", _array(a, f"expert{i}/platt", "f", (2,)))
            if platt[0] <= 0:
                raise ValueError(f"model array 'expert{i}/platt': the calibration slope "
                                 f"{platt[0]} is not positive")
            experts.append(Expert(str(name), str(text), model, platt))
        return cls(experts, rule, weights, float(bias))


def _strings(a: dict[str, np.ndarray], name: str, max_len: int, scalar: bool = False):
    """A saved unicode array (one-dimensional, or a scalar), refused otherwise."""
    x = np.asarray(a[name])
    if x.dtype.kind != "U" or x.ndim != (0 if scalar else 1) or x.dtype.itemsize > 4 * max_len:
        raise ValueError(f"model array {name!r} is {x.dtype} of shape {x.shape}; expected "
                         f"text of at most {max_len} characters"
                         f"{'' if scalar else ' per entry, shape (n,)'}")
    return x[()] if scalar else x


# --- fitting ----------------------------------------------------------------------------


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

    from ._calibration import _out_of_fold
    from ._stacking import StackedLogistic

    check_name(name)
    est = clone(estimator)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    est = est.fit(X, y, groups=groups) if isinstance(est, StackedLogistic) else est.fit(X, y)
    oof = _out_of_fold(est, X, y, groups, 0)
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
            Without ``generator``, or for a family with fewer than 2 fakes.
        """
        from ._stacking import StackedLogistic

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


# At the end: ``_models`` registers :class:`ExpertSet` when it loads, so either module may
# be imported first (see the end of ``_models``).
from ._models import LinearModel, _array, _finite, sigmoid  # noqa: E402
