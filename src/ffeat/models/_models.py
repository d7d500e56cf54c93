"""Fitted classifiers as plain arrays: trained with scikit-learn, scored with NumPy.

Each model keeps only what its decision function needs, so it can be saved as
arrays (no pickle) and scored identically after loading, whatever scikit-learn
version is installed then. ``decision_function`` returns the log-odds of fake.
Arrays read back from a file are not trusted: ``from_arrays`` checks each one's
dtype, shape and values (index ranges; for trees, that every child comes after
its parent, so no walk can loop) and ``max_bytes`` bounds what a model file may
hold before any of it is read.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # scikit-learn is imported to train a model, never to score one
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    from ._stacking import StackedLogistic

__all__ = ["LinearModel", "TreeEnsemble", "ClassifierKind", "KINDS", "MODELS", "CLASSIFIERS",
           "DEFAULT_CLASSIFIER", "kind_name", "saved_classifier", "make_estimator",
           "model_class", "uses_features", "sigmoid"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Probability from log-odds (NaN stays NaN)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


class LinearModel:
    """Standardisation followed by a linear decision function.

    Also the form of a trained :class:`~ffeat.models._stacking.StackedLogistic`: each
    block is linear in its standardised columns and the combiner is linear in
    the blocks' log-odds, so the stack folds into one coefficient vector.
    """

    kind = "logistic"

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                 intercept: float) -> None:
        self.mean, self.scale, self.coef = mean, scale, coef
        self.intercept = float(intercept)

    @classmethod
    def from_estimator(cls, estimator: Pipeline | StackedLogistic) -> LinearModel:
        from ._stacking import StackedLogistic

        if isinstance(estimator, StackedLogistic):
            blocks = [cls.from_estimator(m) for m in estimator.models_]
            weights = estimator.combiner_.coef_[0]
            return cls(np.concatenate([m.mean for m in blocks]),
                       np.concatenate([m.scale for m in blocks]),
                       np.concatenate([w * m.coef for w, m in zip(weights, blocks)]),
                       weights @ [m.intercept for m in blocks]
                       + estimator.combiner_.intercept_[0])
        scaler, clf = estimator[0], estimator[-1]
        return cls(scaler.mean_, scaler.scale_, clf.coef_[0].copy(), clf.intercept_[0])

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.scale) @ self.coef + self.intercept

    def contributions(self, X: np.ndarray, blocks: tuple[int, ...]) -> np.ndarray:
        """Each block's share of the log-odds, shape (n_rows, n_blocks): the sum of
        ``coef * (x - mean) / scale`` over the block's columns. ``decision_function``
        is ``intercept`` plus their sum (for a stack: each block's combiner weight
        times its log-odds, less that block's share of the intercept)."""
        terms = ((X - self.mean) / self.scale) * self.coef
        return np.add.reduceat(terms, np.cumsum([0, *blocks[:-1]]), axis=1)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef,
                "intercept": np.array(self.intercept)}

    @staticmethod
    def max_bytes(n_features: int, params: dict) -> int:
        """Most bytes the arrays of a model over ``n_features`` columns take."""
        return 8 * (3 * n_features + 1)

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray], n_features: int) -> LinearModel:
        """The model saved as arrays ``a`` (from :meth:`to_arrays`) over ``n_features`` columns.

        Raises
        ------
        ValueError
            Naming the array that is missing, unknown, or of another dtype, shape or
            range than this model saves.
        """
        _check_names(a, ("mean", "scale", "coef", "intercept"))
        mean, scale, coef = (_finite(k, _array(a, k, "f", (n_features,)))
                             for k in ("mean", "scale", "coef"))
        if not scale.all():
            raise ValueError("model array 'scale' holds zeros (it divides the features)")
        return cls(mean, scale, coef, _finite("intercept", _array(a, "intercept", "f", ())))


_TREE_FIELDS = ("feature", "threshold", "missing_left", "is_leaf", "left", "right", "value")
#: The dtype kind of each node field, as :meth:`TreeEnsemble.from_estimator` stores it.
_TREE_KINDS = {"feature": "iu", "threshold": "f", "missing_left": "b", "is_leaf": "b",
               "left": "iu", "right": "iu", "value": "f"}
#: Leaves per boosted tree (scikit-learn's default, stated so that a model file's size
#: can be bounded from its number of trees).
MAX_LEAF_NODES = 31
_NODE_BYTES = 8 * 5 + 2  # five 8-byte and two 1-byte fields
#: Name and loaded dtype of each dtype kind a model array may have.
_KINDS = {"f": ("float", np.float64), "i": ("integer", np.int64), "b": ("bool", bool)}


def _check_names(a: dict[str, np.ndarray], names: tuple[str, ...]) -> None:
    missing, unknown = sorted(set(names) - set(a)), sorted(set(a) - set(names))
    if missing or unknown:
        raise ValueError(f"model arrays {missing} missing or {unknown} unknown; the model "
                         f"holds {list(names)}")


def _array(a: dict[str, np.ndarray], name: str, kinds: str,
           shape: tuple[int, ...] | None) -> np.ndarray:
    """``a[name]`` as float64, int64 or bool by its dtype kind, which must be one of
    ``kinds``, with ``shape`` (None: any one-dimensional shape)."""
    x = np.asarray(a[name])
    if x.dtype.kind not in kinds or (x.ndim != 1 if shape is None else x.shape != shape):
        raise ValueError(f"model array {name!r} is {x.dtype} of shape {x.shape}; expected "
                         f"{_KINDS[kinds[0]][0]} of shape {'(n,)' if shape is None else shape}")
    return x.astype(_KINDS[kinds[0]][1], copy=False)


def _finite(name: str, x: np.ndarray) -> np.ndarray:
    if not np.isfinite(x).all():
        raise ValueError(f"model array {name!r} holds NaN or infinite values")
    return x


class TreeEnsemble:
    """Boosted binary trees: a baseline plus the leaf value each tree reaches.

    Nodes of all trees sit in flat arrays; tree ``t`` owns nodes
    ``offsets[t]:offsets[t+1]`` with child indices local to the tree. A sample
    goes left when its value is at most the threshold, or is NaN and the node
    sends missing values left (scikit-learn's rule).
    """

    kind = "hgb"

    def __init__(self, baseline: float, offsets: np.ndarray, **nodes: np.ndarray) -> None:
        self.baseline = float(baseline)
        self.offsets = offsets
        self.nodes = nodes

    @classmethod
    def from_estimator(cls, hgb: HistGradientBoostingClassifier) -> TreeEnsemble:
        trees = [predictors[0].nodes for predictors in hgb._predictors]
        offsets = np.cumsum([0] + [len(t) for t in trees]).astype(np.int64)
        allnodes = np.concatenate(trees)
        if allnodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported")
        nodes = {
            "feature": allnodes["feature_idx"].astype(np.int64),
            "threshold": allnodes["num_threshold"].astype(np.float64),
            "missing_left": allnodes["missing_go_to_left"].astype(bool),
            "is_leaf": allnodes["is_leaf"].astype(bool),
            "left": allnodes["left"].astype(np.int64),
            "right": allnodes["right"].astype(np.int64),
            "value": allnodes["value"].astype(np.float64),
        }
        return cls(float(np.ravel(hgb._baseline_prediction)[0]), offsets, **nodes)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        raw = np.full(len(X), self.baseline)
        rows = np.arange(len(X))
        n = self.nodes
        for start, stop in zip(self.offsets[:-1], self.offsets[1:]):
            node = np.zeros(len(X), dtype=np.int64)
            while True:
                g = node + start
                inner = ~n["is_leaf"][g]
                if not inner.any():
                    break
                gi, ri = g[inner], rows[inner]
                x = X[ri, n["feature"][gi]]
                go_left = np.where(np.isnan(x), n["missing_left"][gi], x <= n["threshold"][gi])
                node[inner] = np.where(go_left, n["left"][gi], n["right"][gi])
            raw += n["value"][node + start]
        return raw

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"baseline": np.array(self.baseline), "offsets": self.offsets, **self.nodes}

    @staticmethod
    def max_bytes(n_features: int, params: dict) -> int:
        """Most bytes the arrays of a model of ``params["max_iter"]`` trees take."""
        n_trees = params["max_iter"]
        if not isinstance(n_trees, int) or isinstance(n_trees, bool) or n_trees < 1:
            raise ValueError(f"max_iter is {n_trees!r}, not a positive integer")
        return n_trees * (2 * MAX_LEAF_NODES - 1) * _NODE_BYTES + 8 * (n_trees + 2)

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray], n_features: int) -> TreeEnsemble:
        """The model saved as arrays ``a`` (from :meth:`to_arrays`) over ``n_features`` columns.

        Raises
        ------
        ValueError
            Naming the array that is missing, unknown, or of another dtype, shape or
            range than this model saves: offsets that do not cut the nodes into
            trees, a feature index out of range, a child that does not come after its
            parent within its tree (which could make scoring loop), a NaN value.
        """
        _check_names(a, ("baseline", "offsets", *_TREE_FIELDS))
        baseline = _finite("baseline", _array(a, "baseline", "f", ()))
        offsets = _array(a, "offsets", "iu", None)
        n = len(np.asarray(a["feature"]))
        nodes = {k: _array(a, k, kinds, (n,)) for k, kinds in _TREE_KINDS.items()}
        sizes = np.diff(offsets)
        if len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != n or (sizes < 1).any():
            raise ValueError(f"model array 'offsets' does not cut the {n} nodes into trees")
        local = np.arange(n) - offsets[:-1].repeat(sizes)  # index within its tree
        size = sizes.repeat(sizes)  # of its tree
        inner = ~nodes["is_leaf"]
        for side in ("left", "right"):
            child = nodes[side][inner]
            if ((child <= local[inner]) | (child >= size[inner])).any():
                raise ValueError(f"model array {side!r}: a tree node's child does not come "
                                 "after it within its tree (a cycle or out of range)")
        feature = nodes["feature"][inner]
        if ((feature < 0) | (feature >= n_features)).any():
            raise ValueError(f"model array 'feature' holds indices outside [0, {n_features})")
        if np.isnan(nodes["threshold"][inner]).any():
            raise ValueError("model array 'threshold' holds NaN")
        _finite("value", nodes["value"][~inner])
        return cls(baseline, offsets, **nodes)


class ClassifierKind(NamedTuple):
    """One kind of feature classifier a Detector trains: everything about it is here.

    Attributes
    ----------
    model : type
        The array model (:class:`LinearModel`, :class:`TreeEnsemble`) a fitted
        estimator of this kind becomes, is saved as and scored with.
    make : callable
        ``make(C, max_iter, learning_rate, random_state, blocks)``: the estimator of
        the string shortcut (``Detector(classifier="stacked")``).
    matches : callable
        Whether an unfitted estimator given as ``Detector(classifier=...)`` is of
        this kind.
    saved : callable
        The hyperparameters of such an estimator a model file records (``C``,
        ``max_iter``, ``learning_rate``), so that it loads as the shortcut that
        trains it again.
    grouped : bool
        Whether ``fit`` takes ``groups`` (an image and its augmented copies).
    """

    model: type
    make: Callable
    matches: Callable
    saved: Callable
    grouped: bool = False


def _make_logistic(C, max_iter, learning_rate, random_state, blocks):
    from ._stacking import standardised_logistic
    return standardised_logistic(C, random_state)


def _is_logistic(estimator) -> bool:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    return isinstance(estimator, Pipeline) and len(estimator.steps) == 2 \
        and isinstance(estimator[0], StandardScaler) \
        and isinstance(estimator[-1], LogisticRegression)


def _make_stacked(C, max_iter, learning_rate, random_state, blocks):
    from ._stacking import StackedLogistic
    return StackedLogistic(blocks=blocks, C=C, random_state=random_state)


def _is_stacked(estimator) -> bool:
    from ._stacking import StackedLogistic
    return isinstance(estimator, StackedLogistic)


def _make_hgb(C, max_iter, learning_rate, random_state, blocks):
    from sklearn.ensemble import HistGradientBoostingClassifier
    return HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=learning_rate,
                                          max_leaf_nodes=MAX_LEAF_NODES, early_stopping=False,
                                          random_state=random_state)


def _is_hgb(estimator) -> bool:
    from sklearn.ensemble import HistGradientBoostingClassifier
    return isinstance(estimator, HistGradientBoostingClassifier) \
        and estimator.max_leaf_nodes is not None \
        and estimator.max_leaf_nodes <= MAX_LEAF_NODES


def _make_experts(C, max_iter, learning_rate, random_state, blocks):
    from ._experts_fit import Experts
    from ._stacking import StackedLogistic
    return Experts(StackedLogistic(blocks=blocks, C=C, random_state=random_state))


def _is_experts(estimator) -> bool:
    from ._experts_fit import Experts
    return isinstance(estimator, Experts)


#: Every feature classifier, by the name a model file records and ``Detector(classifier=)``
#: and ``ffeat train --classifier`` take as a shortcut. Adding a classifier is one entry.
KINDS = {
    "logistic": ClassifierKind(LinearModel, _make_logistic, _is_logistic,
                               lambda e: {"C": e[-1].C}),
    "stacked": ClassifierKind(LinearModel, _make_stacked, _is_stacked,
                              lambda e: {"C": e.C}, grouped=True),
    "hgb": ClassifierKind(TreeEnsemble, _make_hgb, _is_hgb,
                          lambda e: {"max_iter": e.max_iter, "learning_rate": e.learning_rate}),
}
# One expert per generator family (``ffeat.models._experts``), each a stack folded into a
# linear model; ``fit`` takes each fake's family (``generator=``). That module imports this
# one's classes where it uses them, so importing it here makes no cycle.
from ._experts import ExpertSet  # noqa: E402

KINDS["experts"] = ClassifierKind(ExpertSet, _make_experts, _is_experts,
                                  lambda e: {"C": getattr(e.base, "C", 0.1)}, grouped=True)
#: Model class of each feature classifier (a stack of linear models is linear).
MODELS = {name: kind.model for name, kind in KINDS.items()}
#: Every ``Detector(classifier=...)``: the feature models, then the CNN over pixels
#: (``ffeat.models._cnn``, optional: it needs PyTorch).
CLASSIFIERS = (*MODELS, "cnn")
#: The classifier a Detector trains unless told otherwise: the most accurate on
#: the real face sets (docs, "Accuracy on real faces").
DEFAULT_CLASSIFIER = "stacked"


def kind_name(classifier) -> str:
    """The :data:`KINDS` name of a ``Detector(classifier=...)``: a shortcut, or the kind
    an estimator is of.

    Raises
    ------
    ValueError
        For an unknown name, or an estimator of no kind ffeat can save and score
        without scikit-learn (the message lists those it can).
    """
    if isinstance(classifier, str):
        if classifier not in KINDS:
            raise ValueError(f"unknown classifier {classifier!r}; choose from "
                             f"{', '.join(CLASSIFIERS)}")
        return classifier
    for name, kind in KINDS.items():
        if kind.matches(classifier):
            return name
    raise ValueError(
        f"classifier {type(classifier).__name__} is not one ffeat can save and score: give "
        "ffeat.StackedLogistic(...), a Pipeline of StandardScaler and LogisticRegression, "
        f"or HistGradientBoostingClassifier(max_leaf_nodes<={MAX_LEAF_NODES}), or one of "
        f"the names {', '.join(KINDS)}")


def saved_classifier(classifier) -> dict:
    """What a model file records of a ``Detector(classifier=...)`` given as an estimator:
    its kind's name and hyperparameters (a shortcut name records itself)."""
    name = kind_name(classifier)
    if isinstance(classifier, str):
        return {"classifier": name}
    return {"classifier": name, **KINDS[name].saved(classifier)}


def uses_features(classifier: str) -> bool:
    """Whether ``classifier`` learns from feature rows (the CNN reads pixels)."""
    return classifier != "cnn"


def model_class(classifier: str):
    """The model class that restores a saved ``classifier`` (None if unknown).

    Raises
    ------
    ImportError
        For the CNN when PyTorch is missing (the message says what to install).
    """
    if classifier == "cnn":
        from ._cnn import CnnModel, import_torch
        import_torch()
        return CnnModel
    return MODELS.get(classifier)


def make_estimator(classifier, *, C: float, max_iter: int, learning_rate: float,
                   random_state: int | None, blocks: tuple[int, ...] = ()):
    """The unfitted scikit-learn estimator that trains a ``classifier`` model: a shortcut's
    (:data:`KINDS`), or a fresh clone of an estimator given (a
    :class:`~ffeat.StackedLogistic` without blocks gets ``blocks``; an
    :class:`~ffeat.Experts` without a base, a ``StackedLogistic`` over them).

    ``blocks`` are the column counts of the feature families, in order (``stacked``
    fits one model per family).
    """
    name = kind_name(classifier)
    if isinstance(classifier, str):
        return KINDS[name].make(C, max_iter, learning_rate, random_state, blocks)
    from sklearn.base import clone

    estimator = clone(classifier)
    if name == "stacked" and not estimator.blocks:
        estimator.set_params(blocks=blocks)
    if name == "experts" and estimator.base is None:  # every expert a stack of the families
        from ._stacking import StackedLogistic
        estimator.set_params(base=StackedLogistic(blocks=blocks, random_state=random_state))
    return estimator
