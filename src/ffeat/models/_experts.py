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
checked by :meth:`ExpertSet.from_arrays` when read back) and NumPy only: scoring a saved
expert model imports no scikit-learn. The estimator that fits one is
:class:`ffeat.models._experts_fit.Experts`. (``_models`` registers this module's
:class:`ExpertSet`, so the linear model it builds on is imported where it is used.)
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ._models import LinearModel


__all__ = ["RULES", "DEFAULT_RULE", "MAX_EXPERTS", "Expert", "ExpertSet", "check_name",
           "logit"]

#: The combination rules (see the module docstring).
RULES = ("max", "noisy-or", "combiner")
#: The rule an expert detector uses unless told otherwise: measured on the shared
#: sources (``benchmarks/experts.py``, ``docs/experts.md``), noisy-OR and the maximum
#: came out level (the same real FPR, noisy-OR a recall of 0.917 on StyleGAN2 against
#: 0.905, fewer inconclusive 140k answers: 0.50 against 0.53); the combiner far behind.
DEFAULT_RULE = "noisy-or"
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
        Its log-odds of fake (``ffeat.models._models.LinearModel``).
    platt : ndarray of shape (2,)
        ``[a, b]``: its calibrated probability is ``sigmoid(a * z + b)``, ``a > 0``.
    """

    name: str
    sources: str
    model: LinearModel
    platt: np.ndarray

    def probability(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of this family's fake for feature rows ``X``."""
        from ._models import sigmoid

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
    def from_estimator(cls, estimator) -> ExpertSet:
        """The fitted set of an :class:`~ffeat.models._experts_fit.Experts` estimator."""
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
        from ._models import LinearModel

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
        from ._models import LinearModel

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
        weights = _floats(a, "weights", (k,))
        bias = _floats(a, "bias", ())
        experts = []
        for i, (name, text) in enumerate(zip(names, sources)):
            part = {f: a[f"expert{i}/{f}"] for f in ("mean", "scale", "coef", "intercept")}
            try:
                model = LinearModel.from_arrays(part, n_features)
            except ValueError as exc:
                raise ValueError(f"expert {i}: {exc}") from None
            platt = _floats(a, f"expert{i}/platt", (2,))
            if platt[0] <= 0:
                raise ValueError(f"model array 'expert{i}/platt': the calibration slope "
                                 f"{platt[0]} is not positive")
            experts.append(Expert(str(name), str(text), model, platt))
        return cls(experts, rule, weights, float(bias))


def _floats(a: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A saved float array of ``shape``, as float64, refused unless finite."""
    x = np.asarray(a[name])
    if x.dtype.kind != "f" or x.shape != shape:
        raise ValueError(f"model array {name!r} is {x.dtype} of shape {x.shape}; expected "
                         f"float of shape {shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"model array {name!r} holds NaN or infinite values")
    return x.astype(np.float64)


def _strings(a: dict[str, np.ndarray], name: str, max_len: int, scalar: bool = False):
    """A saved unicode array (one-dimensional, or a scalar), refused otherwise."""
    x = np.asarray(a[name])
    if x.dtype.kind != "U" or x.ndim != (0 if scalar else 1) or x.dtype.itemsize > 4 * max_len:
        raise ValueError(f"model array {name!r} is {x.dtype} of shape {x.shape}; expected "
                         f"text of at most {max_len} characters"
                         f"{'' if scalar else ' per entry, shape (n,)'}")
    return x[()] if scalar else x
