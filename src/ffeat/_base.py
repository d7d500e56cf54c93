"""What the image-in estimators share (:class:`~ffeat.Detector`, :class:`~ffeat.CnnDetector`).

The base class and helpers of every estimator whose samples are images, in a module
of their own (as scikit-learn's ``base.py``), so that the estimators import it and
not each other.
"""
from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ._checks import check_images
from .models import _persist
from .models._calibration import labels_of, probability
from .models._scoring import Scored, score_items, scores_and_errors
from .models._sklearn_compat import Interval
from .reading._rows import ImageError
from .reading._sources import Item, single_item

__all__ = ["ImagesIn", "ImageClassifier", "image_items", "warn_errors", "check_fitted", "seed_of",
           "training_record"]


def image_items(images, name: str = "X") -> list[Item]:
    """The items of a sequence of images (argument ``name``; a single image is refused)."""
    return [single_item(obj, i) for i, obj in enumerate(check_images(images, name))]


def warn_errors(errors: list[ImageError], n: int, what: str) -> None:
    if errors:
        shown = "; ".join(map(str, errors[:3])) + ("; ..." if len(errors) > 3 else "")
        warnings.warn(f"{len(errors)} of {n} images could not be read and {what}: {shown}",
                      stacklevel=3)


class ImagesIn:
    """scikit-learn tags of an estimator whose samples are images (paths, bytes, PIL
    images or arrays, one per sample), not the rows of a 2-D array."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


class ImageClassifier(ImagesIn, ClassifierMixin, BaseEstimator):
    """What the image-in classifiers (:class:`Detector`, :class:`~ffeat.CnnDetector`) share:
    scoring images through ``score_items``, ``predict`` with -1 for an unreadable image,
    ``save`` and ``load``. A subclass fits ``model_``, ``classes_``, ``training_`` and
    ``errors_`` and has ``threshold`` and ``jobs``.
    """

    #: Parameters every image classifier takes (subclasses add theirs).
    _parameter_constraints: dict = {
        "threshold": [Interval(Real, 0, 1, closed="both")],
        "jobs": [Integral, None],
        "augment": [str, list, tuple, None],
        "random_state": [Interval(Integral, 0, 2**32 - 1, closed="both"), None],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def score_records(self, images, *, progress: bool | None = False) -> list[Scored]:
        """Every image through the detector: one :class:`~ffeat.models._scoring.Scored` record
        each, in order (the input, its log-odds or its error, the faces scored).

        Parameters
        ----------
        images : sequence of images, or a 4-D array batch
            Paths, bytes, PIL images or arrays (one image each). A single image
            is refused with a ``TypeError``: pass ``[image]``.
        progress : bool or None, optional
            Progress bar on stderr (``None``: on a terminal).

        Returns
        -------
        list of Scored
        """
        items = image_items(images, "images")
        check_fitted(self)
        return score_items(self, items, progress=progress)

    def score_images(self, images, *, progress: bool | None = False):
        """Log-odds of fake for every image, NaN where it could not be read.

        Parameters
        ----------
        images : sequence of images, or a 4-D array batch
            Paths, bytes, PIL images or arrays (one image each). A single image
            is refused with a ``TypeError``: pass ``[image]``.
        progress : bool or None, optional
            Progress bar on stderr (``None``: on a terminal).

        Returns
        -------
        scores : ndarray of float64, shape (n_images,)
        errors : list of ImageError
        """
        return scores_and_errors(self.score_records(images, progress=progress))

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of fake per image (NaN, with a warning, where unreadable)."""
        scores, errors = self.score_images(check_images(X, "X"))
        warn_errors(errors, len(scores), "have NaN scores")
        return scores

    def predict_proba(self, X) -> np.ndarray:
        """``[P(real), P(fake)]`` per image (NaN, with a warning, where unreadable);
        calibrated when the detector was fitted with a calibration."""
        p = probability(self, self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        """1 = fake, 0 = real, -1 where the image could not be read.

        -1 is outside ``classes_`` on purpose: an unreadable image has no verdict,
        and calling it real (or fake) would hide it among the answers. Accuracy
        (:meth:`score`) counts it as wrong; keep ``predict(X) >= 0`` for the
        images that were read, and see :meth:`score_images` for the reasons.
        """
        p = self.predict_proba(X)[:, 1]
        return np.where(np.isnan(p), -1, p >= self.threshold).astype(np.int64)

    def label(self, images) -> np.ndarray:
        """``"fake"``, ``"real"`` or ``"inconclusive"`` per image, None where unreadable.

        Fake at and above ``threshold``, as :meth:`predict`, except that a probability
        inside the detector's inconclusive band (``band_``; see :class:`Detector`) is
        ``"inconclusive"``; a detector without a band answers fake or real.

        Parameters
        ----------
        images : sequence of images, or a 4-D array batch
            As for :meth:`score_images`.

        Returns
        -------
        ndarray of object, shape (n_images,)
        """
        scores, errors = self.score_images(images)
        warn_errors(errors, len(scores), "have no label (None)")
        return labels_of(self, probability(self, scores), self.threshold)

    def set_run_options(self, **options) -> ImageClassifier:
        """Set those of ``jobs``, ``cache``, ``backend`` and ``reading`` this detector
        takes (the CNN has no feature cache, feature backend or reading), for code that
        runs a loaded model of either kind; returns ``self``."""
        return self.set_params(**{k: v for k, v in options.items() if k in self.get_params()})

    def save(self, path) -> None:
        """Write the fitted detector to ``path`` (arrays and JSON; loading runs no code)."""
        check_fitted(self)
        _persist.save(self, path)

    @classmethod
    def load(cls, path):
        """Read a detector of this class written by :meth:`save`.

        Raises
        ------
        ffeat.ModelFileError
            When the file is not an ffeat model, was modified, was written by an
            incompatible ffeat version, or holds the other kind of detector (the
            message names the class that loads it; :func:`ffeat.load_detector`
            loads either).
        """
        return _persist.load(cls, path)


def check_fitted(detector: ImageClassifier) -> None:
    """Refuse to score before ``fit`` or ``load``, or with invalid parameters.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        Before ``fit`` or ``load``.
    sklearn.utils._param_validation.InvalidParameterError
        When a parameter set since is invalid (the message names it).
    """
    check_is_fitted(detector, "model_", msg="this %(name)s is not fitted yet: call fit() "
                                            "or %(name)s.load() first")
    detector._validate_params()  # scikit-learn's, inherited by Detector


def seed_of(random_state: int | None) -> int:
    """``random_state`` as an int; a fresh random one for None."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % 2**32)
    return int(random_state)


def training_record(y_read: np.ndarray, errors: list[ImageError], kinds: tuple[str, ...],
                     data: str, **extra) -> dict:
    """``training_``: counts of the training images read, errors, augmentation, origin."""
    return {"n_real": int((y_read == 0).sum()), "n_fake": int((y_read == 1).sum()),
            "n_errors": len(errors), **extra, "augment": list(kinds), "data": data}
