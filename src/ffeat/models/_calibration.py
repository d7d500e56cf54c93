"""Calibrated probabilities and the inconclusive band, fitted on out-of-fold scores.

A feature classifier's log-odds are mapped to a probability of fake by a
calibrator fitted on held-out scores of the training rows (as scikit-learn's
``CalibratedClassifierCV(ensemble=False)``): ``k``-fold cross-validation with a
fixed seed scores every row with a model that did not see its image (augmented
copies stay in their image's fold), the calibrator learns the map from those
scores to the labels, and the classifier itself is fitted on all rows. The
stacked classifier computes such scores while it fits (its combiner
cross-validated on its blocks' out-of-fold log-odds, ``oof_log_odds_``), so it
is not refitted; the other classifiers are refitted once per fold.

- ``"sigmoid"`` (Platt scaling): ``p = 1 / (1 + exp(-(a * z + b)))``, two numbers.
- ``"isotonic"``: a non-decreasing step map, its breakpoints ``x`` (log-odds) and
  ``y`` (probabilities), interpolated linearly and clipped at the ends.

The inconclusive band ``[lo, hi)`` on the (calibrated) probability is the range
around the threshold where the held-out error rate of the forced call is above
``MAX_ERROR``: measured with the same out-of-fold scores (an isotonic fit of the
label on the probability estimates the error rate at every probability).

Nothing here imports scikit-learn at scoring time: a fitted :class:`Calibration`
is plain arrays, saved with the model and checked when read back
(:meth:`Calibration.from_arrays`).
"""
from __future__ import annotations

import numpy as np

from ._models import sigmoid

__all__ = ["Calibration", "KINDS", "DEFAULT_CALIBRATION", "DEFAULT_BAND", "MAX_ERROR",
           "FOLDS", "MAX_POINTS", "fit_calibration", "calibrated", "probability", "labels_of",
           "band_of", "LABELS"]

#: Calibrators a Detector can fit (``calibration=None``: the raw logistic output).
KINDS = ("sigmoid", "isotonic")
#: The calibration a Detector fits unless told otherwise (the shipped detector's): Platt
#: scaling, on the stacked classifier's own out-of-fold log-odds (no refit).
DEFAULT_CALIBRATION = "sigmoid"
#: The band a Detector chooses unless told otherwise (the shipped detector's): measured at fit
#: time from the same out-of-fold scores.
DEFAULT_BAND = "auto"
#: Held-out error rate of the forced call above which an answer is inconclusive.
MAX_ERROR = 0.10
#: Folds of the out-of-fold scores (fewer when a class has fewer images).
FOLDS = 5
#: Most breakpoints an isotonic calibrator keeps (and a model file may hold).
MAX_POINTS = 512
#: What :func:`labels_of` answers, by code: 0 real, 1 fake, 2 inconclusive.
LABELS = np.array(["real", "fake", "inconclusive"], dtype=object)


class Calibration:
    """A fitted map from log-odds to probability of fake, and the inconclusive band.

    Parameters
    ----------
    kind : {"sigmoid", "isotonic"} or None
        None: the plain logistic ``sigmoid(z)`` (only a band).
    x, y : ndarray
        sigmoid: ``x = [a, b]``, ``y`` empty; isotonic: the breakpoints.
    band : ndarray of shape (2,)
        ``[lo, hi]``: a probability in ``[lo, hi)`` is inconclusive (``lo == hi``:
        never).
    """

    def __init__(self, kind: str | None, x: np.ndarray, y: np.ndarray,
                 band: np.ndarray) -> None:
        self.kind, self.x, self.y, self.band = kind, x, y, band

    def probability(self, z: np.ndarray) -> np.ndarray:
        """Calibrated probability of fake from log-odds ``z`` (NaN stays NaN)."""
        z = np.asarray(z, dtype=np.float64)
        if self.kind == "sigmoid":
            return sigmoid(self.x[0] * z + self.x[1])
        if self.kind == "isotonic":
            return np.where(np.isnan(z), np.nan, np.interp(z, self.x, self.y))
        return sigmoid(z)

    def log_odds_at(self, p: float) -> float:
        """The smallest log-odds whose probability is at least ``p`` (a threshold on the
        probability as a threshold on the model's log-odds; +-inf when none or all)."""
        if self.kind == "sigmoid":
            logit = np.log(p / (1 - p)) if 0 < p < 1 else np.copysign(np.inf, p - 0.5)
            return float((logit - self.x[1]) / self.x[0])
        if self.kind == "isotonic":
            i = int(np.searchsorted(self.y, p, side="left"))
            return -np.inf if i == 0 else float(self.x[i]) if i < len(self.x) else np.inf
        return float(np.log(p / (1 - p))) if 0 < p < 1 else float(np.copysign(np.inf, p - 0.5))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"x": self.x, "y": self.y, "band": self.band}

    @staticmethod
    def max_bytes() -> int:
        """Most bytes the arrays of a calibration take."""
        return 8 * (2 * MAX_POINTS + 2)

    @classmethod
    def from_arrays(cls, kind: str | None, a: dict[str, np.ndarray]) -> Calibration:
        """The calibration saved as arrays ``a`` (from :meth:`to_arrays`) of ``kind``.

        Raises
        ------
        ValueError
            Naming the array that is missing, unknown, or not what a calibration of
            ``kind`` saves: not finite, not increasing, outside [0, 1], of another
            size.
        """
        names = {k[len("calibration/"):]: v for k, v in a.items()}
        if sorted(names) != ["band", "x", "y"]:
            raise ValueError(f"model arrays {sorted(a)} are not a calibration's "
                             "(calibration/x, calibration/y, calibration/band: missing or "
                             "unknown)")
        x, y, band = (_floats(names[k], f"calibration/{k}") for k in ("x", "y", "band"))
        if band.shape != (2,):
            raise ValueError(f"model array 'calibration/band' has shape {band.shape}, not (2,)")
        if not 0 <= band[0] <= band[1] <= 1:
            raise ValueError(f"model array 'calibration/band' is {band.tolist()}, not "
                             "[lo, hi] with 0 <= lo <= hi <= 1")
        if kind == "sigmoid":
            if x.shape != (2,) or y.size or x[0] <= 0:
                raise ValueError("model arrays 'calibration/x' and 'calibration/y' are not a "
                                 "sigmoid calibration ([a, b] with a > 0, and no y)")
        elif kind == "isotonic":
            if not 2 <= len(x) <= MAX_POINTS or len(y) != len(x):
                raise ValueError(f"model arrays 'calibration/x' and 'calibration/y' hold "
                                 f"{len(x)} and {len(y)} breakpoints; an isotonic "
                                 f"calibration has the same number, 2 to {MAX_POINTS}")
            if (np.diff(x) <= 0).any() or (np.diff(y) < 0).any() or y[0] < 0 or y[-1] > 1:
                raise ValueError("model arrays 'calibration/x' and 'calibration/y' are not "
                                 "monotone breakpoints (x increasing, y non-decreasing in "
                                 "[0, 1])")
        elif kind is not None:
            raise ValueError(f"unknown calibration {kind!r}; ffeat knows {', '.join(KINDS)}")
        elif x.size or y.size:
            raise ValueError("model arrays 'calibration/x' and 'calibration/y' hold values "
                             "but the model has no calibration")
        return cls(kind, x, y, band)


def _floats(x: np.ndarray, name: str) -> np.ndarray:
    """A saved one-dimensional float array, refused unless finite."""
    x = np.asarray(x)
    if x.dtype.kind != "f" or x.ndim != 1:
        raise ValueError(f"model array {name!r} is {x.dtype} of shape {x.shape}; expected "
                         "float of shape (n,)")
    if not np.isfinite(x).all():
        raise ValueError(f"model array {name!r} holds NaN or infinite values")
    return x.astype(np.float64, copy=False)


def calibrated(calibration: Calibration | None, scores: np.ndarray) -> np.ndarray:
    """Probability of fake from log-odds under ``calibration``; the logistic
    ``sigmoid(scores)`` when it is None."""
    return sigmoid(scores) if calibration is None else calibration.probability(scores)


def probability(detector, scores: np.ndarray) -> np.ndarray:
    """Probability of fake from a detector's log-odds: calibrated when the detector has
    a calibration (``calibration_``), else the logistic ``sigmoid(scores)``."""
    return calibrated(getattr(detector, "calibration_", None), scores)


def band_of(detector) -> tuple[float, float] | None:
    """A detector's inconclusive band ``(lo, hi)``, None when it has none."""
    calibration = getattr(detector, "calibration_", None)
    if calibration is None or calibration.band[0] == calibration.band[1]:
        return None
    return float(calibration.band[0]), float(calibration.band[1])


def labels_of(detector, proba: np.ndarray, threshold: float) -> np.ndarray:
    """``"fake"``, ``"real"`` or ``"inconclusive"`` per probability of fake (None where
    NaN): fake at and above ``threshold``, inconclusive inside the detector's band."""
    proba = np.asarray(proba, dtype=np.float64)
    lo, hi = band_of(detector) or (threshold, threshold)
    code = np.where((proba >= lo) & (proba < hi), 2, (proba >= threshold).astype(int))
    out = LABELS[code]
    out[np.isnan(proba)] = None
    return out


def _folds(y: np.ndarray, groups: np.ndarray, random_state: int) -> list:
    """Stratified folds of the rows that keep each group (an image and its augmented
    copies) in one fold."""
    from ._stacking import grouped_folds

    try:
        return grouped_folds(y, groups, FOLDS, random_state)
    except ValueError as exc:  # a class with fewer than 2 images
        raise ValueError(f"calibration: {exc}; or use calibration=None and band=None") \
            from exc


def _out_of_fold(estimator, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
                 random_state: int) -> np.ndarray:
    """Log-odds of every row from a model that did not see its image: those the fitted
    ``estimator`` computed itself when it has them (``oof_log_odds_``: the stacked
    classifier's, from its own grouped folds), else :func:`_refitted_out_of_fold`."""
    z = getattr(estimator, "oof_log_odds_", None)
    if z is not None:
        return z
    return _refitted_out_of_fold(estimator, X, y, groups, random_state)


def _refitted_out_of_fold(estimator, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
                          random_state: int) -> np.ndarray:
    """Log-odds of every row from a clone of ``estimator`` fitted without its fold."""
    from sklearn.base import clone

    z = np.empty(len(y))
    for train, test in _folds(y, groups, random_state):
        z[test] = clone(estimator).fit(X[train], y[train]).decision_function(X[test])
    return z


def _fit_map(kind: str | None, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The arrays ``x, y`` of a calibrator of ``kind`` fitted on scores ``z``."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    if kind == "sigmoid":
        lr = LogisticRegression(C=1e6).fit(z[:, None], y)
        a = max(float(lr.coef_[0, 0]), 1e-6)  # a score that ranks backwards: flat, not inverted
        return np.array([a, float(lr.intercept_[0])]), np.empty(0)
    if kind == "isotonic":
        iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(z, y)
        bx, by = iso.X_thresholds_.astype(np.float64), iso.y_thresholds_.astype(np.float64)
        if len(bx) < 2:  # one distinct score: a flat map
            bx, by = np.array([bx[0] - 1, bx[0] + 1]), np.repeat(by[:1], 2)
        if len(bx) > MAX_POINTS:
            keep = np.unique(np.linspace(0, len(bx) - 1, MAX_POINTS).round().astype(int))
            bx, by = bx[keep], by[keep]
        return bx, by
    return np.empty(0), np.empty(0)


def _auto_band(p: np.ndarray, y: np.ndarray, threshold: float) -> np.ndarray:
    """``[lo, hi]``: the probabilities around ``threshold`` where the error rate of the
    forced call, estimated by an isotonic fit of the label on ``p``, exceeds
    ``MAX_ERROR``; edges halfway between neighbouring held-out probabilities."""
    from sklearn.isotonic import IsotonicRegression

    order = np.argsort(p, kind="stable")
    p, y = p[order], y[order]
    rate = IsotonicRegression(y_min=0, y_max=1).fit(p, y).predict(p)  # P(fake | p)
    error = np.where(p >= threshold, 1 - rate, rate)
    low = np.flatnonzero((p < threshold) & (error > MAX_ERROR))
    high = np.flatnonzero((p >= threshold) & (error > MAX_ERROR))
    lo = hi = threshold
    if len(low):
        i = low[0]
        lo = p[i] if i == 0 else (p[i - 1] + p[i]) / 2
    if len(high):
        j = high[-1]
        hi = np.nextafter(p[j], 1) if j == len(p) - 1 else (p[j] + p[j + 1]) / 2
    return np.array([min(lo, threshold), max(hi, threshold)], dtype=np.float64)


def fit_calibration(estimator, X: np.ndarray, y: np.ndarray, groups: np.ndarray, *,
                    kind: str | None, band, threshold: float,
                    random_state: int) -> Calibration | None:
    """The calibration and band of a detector, fitted on out-of-fold scores.

    Parameters
    ----------
    estimator : scikit-learn classifier
        Fitted on all rows ``X, y`` (with ``groups`` where it takes them); its own
        out-of-fold log-odds are used when it has them (``oof_log_odds_``), else it
        is cloned and refitted once per fold.
    X, y : ndarray
        The training rows (augmented copies included) and their labels.
    groups : ndarray of int
        The image of each row: an image's rows share a fold.
    kind : {"sigmoid", "isotonic"} or None
    band : "auto", (lo, hi) or None
        "auto": measured (see the module docstring); a pair: as given; None: no band.
    threshold : float
        The detector's threshold on the probability.
    random_state : int
        Seed of the fold split.

    Returns
    -------
    Calibration or None
        None when there is neither a calibration nor a band (nothing to fit).
    """
    if kind is None and band is None:
        return None
    fixed = None if band is None or isinstance(band, str) else np.asarray(band, np.float64)
    if kind is None and fixed is not None:
        return Calibration(None, np.empty(0), np.empty(0), fixed)
    z = _out_of_fold(estimator, X, y, groups, random_state)
    x_arr, y_arr = _fit_map(kind, z, y)
    calibration = Calibration(kind, x_arr, y_arr, np.array([threshold, threshold]))
    if fixed is not None:
        calibration.band = fixed
    elif band == "auto":
        calibration.band = _auto_band(calibration.probability(z), y, threshold)
    calibration.scores_ = z  # the out-of-fold log-odds (not saved), for measurements
    return calibration
