"""The detector: feature families followed by a scikit-learn classifier."""
from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._base import (
    ImageClassifier,
    ImagesIn,
    check_fitted,
    image_items,
    seed_of,
    training_record,
    warn_errors,
)
from ._gpu import BACKENDS
from .extraction import DEFAULT_FEATURES
from .features import column_names, n_columns, resolve_features
from .models._calibration import (
    DEFAULT_BAND,
    DEFAULT_CALIBRATION,
    KINDS,
    calibrated,
    fit_calibration,
)
from .models._experts import check_name
from .models._models import DEFAULT_CLASSIFIER, ClassifierKind, kind_name, make_estimator
from .models._models import KINDS as CLASSIFIER_KINDS
from .models._sklearn_compat import HasMethods, Interval, StrOptions, fit_context
from .reading import DETECTOR_READING, NATIVE, Reading
from .reading._perturb import (
    DETECTOR_AUGMENT,
    Perturbed,
    augment_perturbation,
    parse_augment,
)
from .reading._rows import feature_rows
from .reading._sources import Item
from .reading.dataset import describe_data, labelled_images

__all__ = ["Detector", "FeatureExtractor", "FeatureClassifier", "DETECTOR_AUGMENT"]

#: Parameter constraints shared by the estimators that read images.
_READING_CONSTRAINTS = {
    "features": "no_validation",  # resolve_features names what is wrong
    "reading": [Reading],
    "jobs": [Integral, None],
    "cache": ["boolean", str, os.PathLike],
    "backend": [StrOptions(set(BACKENDS))],
}
#: The string shortcuts' hyperparameters and their defaults (unused, and refused when
#: changed, with a classifier given as an estimator: set them on the estimator).
_SHORTCUT_DEFAULTS = {"C": 0.1, "max_iter": 300, "learning_rate": 0.1}


class FeatureExtractor(ImagesIn, TransformerMixin, BaseEstimator):
    """Feature families as a scikit-learn transformer over images.

    ``transform`` maps a sequence of images (paths, bytes, PIL images or
    arrays) to a float64 feature matrix, so the families compose with
    :class:`~sklearn.pipeline.Pipeline`, ``GridSearchCV`` and
    ``cross_val_score``. Rows of unreadable images are NaN, with a warning.

    Parameters
    ----------
    features : str, family object, or sequence of those
        As for :func:`ffeat.extract`.
    reading : Reading, optional
        How images become pixels (:class:`~ffeat.Reading`; default: native size,
        no face policy). Under a face policy a row is the most certain face's.
    jobs : int, optional
        Worker threads (``None``: all cores).
    cache : bool or path, optional
        Feature cache for files on disk, as for :func:`ffeat.extract`.
    backend : {"cpu", "cuda", "auto"}, optional
        Where features are computed, as for :func:`ffeat.extract`.

    Nothing is learnt, so ``transform`` works without ``fit``. Parameters are
    checked by ``fit`` and ``transform`` (scikit-learn's
    ``InvalidParameterError`` names the parameter).
    """

    _parameter_constraints: dict = dict(_READING_CONSTRAINTS)

    def __init__(self, features=DEFAULT_FEATURES, *, reading: Reading = NATIVE,
                 jobs: int | None = None, cache=False, backend: str = "cpu") -> None:
        self.features = features
        self.reading = reading
        self.jobs = jobs
        self.cache = cache
        self.backend = backend

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None) -> FeatureExtractor:
        """Check the configuration; nothing is learnt (no image is read)."""
        self.feature_names_ = column_names(resolve_features(self.features))
        return self

    def transform(self, X) -> np.ndarray:
        """Features of every image in ``X``, one row each.

        Parameters
        ----------
        X : sequence of images, or a 4-D array batch
            Paths, bytes, PIL images or arrays. A single image is refused with a
            ``TypeError`` (a path would otherwise be read character by character):
            pass ``[image]``.

        Returns
        -------
        ndarray of float64, shape (n_images, n_features)
        """
        self._validate_params()
        F, errors = feature_rows(image_items(X), resolve_features(self.features), self.reading,
                                 jobs=self.jobs, cache=self.cache, backend=self.backend)
        warn_errors(errors, len(F), "have NaN rows")
        return F

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Column names."""
        return np.array(column_names(resolve_features(self.features)), dtype=object)


class FeatureClassifier(ClassifierMixin, BaseEstimator):
    """A fitted array model (``ffeat.models._models``) as a scikit-learn classifier over feature
    rows: the classifier step of a fitted :class:`Detector` (``Detector.classifier_``).

    Parameters
    ----------
    model : LinearModel or TreeEnsemble
        Fitted; what a detector trains (through scikit-learn) and saves.
    threshold : float
        Probability of fake at and above which :meth:`predict` says fake.
    calibration : Calibration, optional
        The detector's map from log-odds to probability (None: the logistic one).

    Fitting is the detector's job: :meth:`fit` refuses, naming what to fit.
    """

    def __init__(self, model=None, *, threshold: float = 0.5, calibration=None) -> None:
        self.model = model
        self.threshold = threshold
        self.calibration = calibration

    def __sklearn_is_fitted__(self) -> bool:
        return self.model is not None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    @property
    def classes_(self) -> np.ndarray:
        """``[0, 1]`` (real, fake)."""
        return np.array([0, 1])

    def fit(self, X, y=None):
        """Refused: this step is fitted by :meth:`Detector.fit`."""
        raise TypeError("FeatureClassifier holds an already fitted model and is not "
                        "refitted; fit an ffeat.Detector (or a scikit-learn classifier) "
                        "instead")

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of fake per feature row."""
        check_is_fitted(self)
        return self.model.decision_function(np.asarray(X, dtype=np.float64))

    def predict_proba(self, X) -> np.ndarray:
        """``[P(real), P(fake)]`` per feature row (calibrated as the detector's)."""
        z = self.decision_function(X)
        p = calibrated(self.calibration, z)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        """1 = fake (probability at or above ``threshold``), 0 = real."""
        return (self.predict_proba(X)[:, 1] >= self.threshold).astype(np.int64)


class Detector(ImageClassifier):
    """Tell AI-generated (fake) face images from real photographs.

    Images go through the feature families, then a scikit-learn classifier:
    standardisation plus logistic regression (one per family, stacked, or one
    over all features), or histogram gradient boosting. (The CNN over pixels is
    its own estimator, :class:`~ffeat.CnnDetector`.) Labels are 1 = fake and
    0 = real; probabilities are the probability of fake.

    Parameters
    ----------
    features : str, family object, or sequence of those
        Feature families, as for :func:`ffeat.extract`.
    classifier : {"stacked", "logistic", "hgb"} or estimator
        The classifier step, as an unfitted scikit-learn estimator (e.g.
        ``ffeat.StackedLogistic(C=0.05)``; a ``StackedLogistic`` without
        ``blocks`` gets one block per family) or a shortcut name:
        ``"stacked"`` (the default): one logistic regression on standardised
        features per feature family, combined by a logistic regression on their
        5-fold out-of-fold log-odds (the result is one linear model; see
        ``ffeat.models._stacking``); ``"logistic"``: one over all features
        (``StandardScaler`` then ``LogisticRegression``); ``"hgb"``:
        ``HistGradientBoostingClassifier``. Estimators of those kinds only: a
        fitted detector is saved and scored as arrays (``ffeat.models._models.KINDS``).
    C : float
        Shortcuts only: inverse regularisation strength of the logistic
        regression; stacked: of each family's, shrunk to ``C * 1000 / n`` for a
        family of ``n > 1000`` columns.
    max_iter : int
        Shortcuts only: boosting iterations (``hgb``).
    learning_rate : float
        Shortcuts only: boosting learning rate (``hgb``).
    threshold : float
        Probability of fake at and above which :meth:`predict` says fake.
    jobs : int, optional
        Worker threads for feature extraction (``None``: all cores).
    cache : bool or path
        Feature cache for files on disk (see :func:`ffeat.extract`); on by default
        so that a second classifier trained on the same files does not decode
        them again.
    backend : {"cpu", "cuda", "auto"}
        Where features are computed, as for :func:`ffeat.extract`.
    reading : Reading
        How images become pixels (:class:`~ffeat.Reading`): the face policy and
        the analysis frame. Default ``Reading(frame=256)`` (the shipped
        detector's: every image read as its centre square at 256 px, so that
        source size cannot separate the classes; ``ffeat.reading.DETECTOR_READING``).
        Under a face policy training uses each image's most certain face, and
        scoring scores every face: an image's score is its most fake face's.
        Augmented copies are made before framing (a ``resize`` copy is framed
        back, as a low-resolution source would be). Saved with the model and used
        when it scores (files saved before frames existed load at native size).
    augment : str or sequence of str, optional
        Training augmentation: ``"jpeg,blur,resize,flip"`` (any subset, or a
        list of those names) adds, for every training image and every named
        kind, one copy made in memory at a strength drawn from the kind's range
        (JPEG quality 60-95, blur sigma 0-2 px, resize factor 0.5-1, noise std
        1-5 levels; seeded by ``random_state``); also ``"recode"`` (rescaled by
        a factor drawn log-uniformly from 1/3-3, then re-encoded at JPEG quality
        70-95: the shipped detector's, so that size and codec stop telling the
        classes apart). Wang et al. (2020) found blur plus JPEG augmentation key
        to robustness. Default ``"recode"`` (each training image read twice);
        ``None``: no augmentation.
    random_state : int, optional
        Seed of the classifier and of the augmentation.
    calibration : {"sigmoid", "isotonic"} or None
        How ``prob_fake`` is calibrated (``ffeat.models._calibration``): a calibrator fitted
        on 5-fold out-of-fold log-odds of the training rows (fixed seed; an image's
        augmented copies stay in its fold), the classifier itself on all rows.
        ``"sigmoid"`` (the default, the shipped detector's): Platt scaling;
        ``"isotonic"``: isotonic regression; None: the raw logistic output. The
        stacked classifier computes the out-of-fold log-odds while it fits (no
        refit); ``"logistic"`` and ``"hgb"`` are refitted once per fold, so a
        calibrated fit of those takes about six times as long. Saved with the
        model.
    band : "auto", (lo, hi) or None
        The inconclusive band on the (calibrated) probability of fake, used by
        :meth:`label`: ``"auto"`` measures it at fit time from the same
        out-of-fold scores (the range around the threshold where the held-out
        error rate of the forced call is above 10%); ``(lo, hi)`` sets it by hand
        (a probability in ``[lo, hi)`` is inconclusive); None: no band. Default
        ``"auto"`` (the shipped detector's). Saved with the model.

    Attributes
    ----------
    classes_ : ndarray
        ``[0, 1]`` (real, fake).
    band_ : tuple of float
        The fitted inconclusive band ``(lo, hi)`` (``(threshold, threshold)``:
        none).
    feature_names_ : list of str
        Columns the classifier sees.
    training_ : dict
        ``n_real``, ``n_fake`` and ``n_errors`` of the training images,
        ``n_rows`` (feature rows the classifier saw, augmented copies included),
        ``augment`` (the kinds) and ``data`` (where the training images came
        from: a resolved path, or a description of in-memory images).
    errors_ : list of ImageError
        Training images that could not be read and were left out.
    features_ : FeatureExtractor
        The fitted feature step: the families under the detector's reading.
    classifier_ : FeatureClassifier
        The fitted classifier step over the feature rows, the same after ``fit``
        and after :meth:`load` (it scores with the saved arrays, calibrated).
    pipeline_ : sklearn.pipeline.Pipeline
        The detector as its two steps, ``"features"`` (``features_``) then
        ``"classifier"`` (``classifier_``); it scores readable images as the
        detector does.

    Examples
    --------
    >>> import ffeat
    >>> images, labels = ffeat.make_demo_set(n_per_class=20, size=64)
    >>> det = ffeat.Detector(cache=False).fit(images, labels)
    >>> det.predict_proba(images[:2]).shape
    (2, 2)

    Notes
    -----
    Parameters are checked when ``fit`` starts, before any image is read, and
    again before scoring: an invalid one raises scikit-learn's
    ``InvalidParameterError`` (a ``ValueError``) naming it. Methods that take
    images take a sequence of them (or a 4-D array batch); a single path or
    image is refused with a ``TypeError``: pass ``[image]``. Scoring before
    ``fit`` or :meth:`load` raises ``sklearn.exceptions.NotFittedError``.
    :meth:`load` refuses a CNN model file, naming :class:`~ffeat.CnnDetector`.
    """

    _parameter_constraints: dict = {
        **ImageClassifier._parameter_constraints,
        **_READING_CONSTRAINTS,
        "classifier": [StrOptions(set(CLASSIFIER_KINDS)), HasMethods(["fit", "get_params"])],
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "calibration": [StrOptions(set(KINDS)), None],
        "band": [StrOptions({"auto"}), tuple, list, None],
    }

    def __init__(self, features=DEFAULT_FEATURES, classifier=DEFAULT_CLASSIFIER, *,
                 C: float = 0.1, max_iter: int = 300, learning_rate: float = 0.1,
                 threshold: float = 0.5, jobs: int | None = None, cache=True,
                 backend: str = "cpu", reading: Reading = DETECTOR_READING,
                 augment=DETECTOR_AUGMENT,
                 random_state: int | None = 0, calibration: str | None = DEFAULT_CALIBRATION,
                 band=DEFAULT_BAND) -> None:
        self.features = features
        self.classifier = classifier
        self.C = C
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.threshold = threshold
        self.jobs = jobs
        self.cache = cache
        self.backend = backend
        self.reading = reading
        self.augment = augment
        self.random_state = random_state
        self.calibration = calibration
        self.band = band

    @classmethod
    def default(cls) -> Detector:
        """The detector shipped with ffeat (``ffeat/models/default.model``), checked as
        every model file is; ``ffeat model`` prints its card.

        Returns
        -------
        Detector
            Fitted, ready to score.

        Raises
        ------
        ffeat.ModelFileError
            When the shipped file is missing or damaged (reinstall ffeat).
        """
        from .models._shipped import model_path

        return cls.load(model_path())

    # -- training ---------------------------------------------------------------------

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, generator=None, progress: bool | None = False) -> Detector:
        """Train on labelled images.

        Parameters
        ----------
        X : sequence of images, a :class:`~ffeat.Dataset`, or a dataset path
            Images (paths, bytes, PIL images or arrays; a 4-D array is a batch)
            with labels ``y``; or a dataset (folder or CSV manifest, see
            :func:`~ffeat.load_dataset`) whose labels are used when ``y`` is
            None. A single path is a dataset, never one image.
        y : array-like of {0, 1}, optional
            1 = fake, 0 = real.
        generator : array-like of str, optional
            ``classifier="experts"`` only, and needed there: per image, the
            generator family of a fake (e.g. ``"gan"``, ``"diffusion"``; ignored for
            reals). One expert is trained per family (``ffeat.models._experts``).
        progress : bool or None, optional
            Progress bar on stderr while extracting (``None``: on a terminal).

        Returns
        -------
        Detector
            ``self``, fitted. Images that cannot be read are left out, with a
            warning, and listed in ``errors_``.
        """
        kinds = parse_augment(self.augment)
        _check_band(self.band)
        self._check_classifier()
        images, y = labelled_images(X, y, name="X")
        generator = self._check_generator(generator, y)
        families = resolve_features(self.features)
        items = image_items(images)
        n = len(items)
        items += _augmented_items(items, kinds, self.random_state)
        y_all = np.tile(y, 1 + len(kinds))
        F, errors = feature_rows(items, families, self.reading, jobs=self.jobs,
                                 cache=self.cache, backend=self.backend, progress=progress)
        ok = ~np.isnan(F).any(axis=1)  # exactly the rows with an error record
        n_bad = int((~ok[:n]).sum())
        errors, n_aug_errors = errors[:n_bad], len(errors) - n_bad
        warn_errors(errors, n, "were left out of training")
        self.errors_ = errors  # also when training fails for want of readable images
        if len(np.unique(y_all[ok])) < 2:
            raise ValueError("training needs readable images of both classes (real and fake)")
        groups = np.tile(np.arange(n), 1 + len(kinds))  # an image and its copies
        row_generator = None if generator is None else np.tile(generator, 1 + len(kinds))[ok]
        estimator = self._fit_rows(F[ok], y_all[ok], groups[ok], row_generator)
        self.calibration_ = fit_calibration(
            estimator, F[ok], y_all[ok], groups[ok], kind=self.calibration,
            band=self.band, threshold=self.threshold, random_state=seed_of(self.random_state))
        self.model_ = self._kind().model.from_estimator(estimator)
        self.classes_ = np.array([0, 1])
        self.feature_names_ = column_names(families)
        self.training_ = training_record(y[ok[:n]], errors, kinds, describe_data(X),
                                         n_rows=int(ok.sum()),
                                         n_augment_errors=int(n_aug_errors))
        if generator is not None:  # fakes read per family, in the experts' order
            read = generator[:n][ok[:n] & (y == 1)]
            self.training_["generators"] = {g: int((read == g).sum())
                                            for g in self.model_.names}
        return self

    def _check_generator(self, generator, y: np.ndarray) -> np.ndarray | None:
        """``generator`` as an array of family names, one per label of ``y``, for
        ``classifier="experts"``; refused when missing there, given to another
        classifier, or when a fake's family is no expert name (before any image is read)."""
        experts = kind_name(self.classifier) == "experts"
        if generator is None:
            if experts:
                raise ValueError("classifier='experts' trains one expert per generator "
                                 "family: give each image's family, fit(X, y, "
                                 "generator=[...]) (e.g. 'gan' or 'diffusion' for a fake; "
                                 "any value for a real)")
            return None
        if not experts:
            raise ValueError("generator= is for classifier='experts' (one expert per "
                             "family); this detector's classifier has no experts")
        generator = np.asarray(generator, dtype=object)
        if generator.shape != y.shape:
            raise ValueError(f"generator has shape {generator.shape}; expected one family "
                             f"per image, {y.shape}")
        generator = np.array([str(g) for g in generator], dtype=object)
        for family in dict.fromkeys(generator[y == 1]):
            check_name(family)
        return generator

    def _kind(self) -> ClassifierKind:
        """The registered kind of ``classifier`` (``ValueError`` for one ffeat cannot save)."""
        return CLASSIFIER_KINDS[kind_name(self.classifier)]

    def _check_classifier(self) -> None:
        """Refuse a classifier of no kind ffeat saves, and shortcut hyperparameters set
        beside an estimator (they would be silently unused)."""
        self._kind()
        changed = [k for k, v in _SHORTCUT_DEFAULTS.items() if getattr(self, k) != v]
        if not isinstance(self.classifier, str) and changed:
            raise ValueError(f"{', '.join(changed)} set the string shortcuts' classifiers; "
                             f"with classifier={type(self.classifier).__name__}(...) set them "
                             "on that estimator instead")

    def _estimator(self):
        """The unfitted scikit-learn estimator this detector trains on its feature rows
        (also what the accuracy benchmarks cross-validate)."""
        blocks = tuple(n_columns(f) for f in resolve_features(self.features))
        return make_estimator(self.classifier, C=self.C, max_iter=self.max_iter,
                              learning_rate=self.learning_rate, random_state=self.random_state,
                              blocks=blocks)

    def _fit_rows(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
                  generator: np.ndarray | None = None):
        """:meth:`_estimator` fitted on feature rows ``X, y``; ``groups`` (an image and its
        augmented copies) keep the stacked classifier's out-of-fold scores honest;
        ``generator`` (each row's family) trains the experts of ``classifier="experts"``."""
        estimator = self._estimator()
        if generator is not None:
            return estimator.fit(X, y, groups=groups, generator=generator)
        if self._kind().grouped:
            return estimator.fit(X, y, groups=groups)
        return estimator.fit(X, y)

    @property
    def features_(self) -> FeatureExtractor:
        """The fitted feature step: images to feature rows (see the class docstring)."""
        check_fitted(self)
        return FeatureExtractor(self.features, reading=self.reading, jobs=self.jobs,
                                cache=self.cache, backend=self.backend).fit()

    @property
    def classifier_(self) -> FeatureClassifier:
        """The fitted classifier step over the feature rows (see the class docstring)."""
        check_fitted(self)
        return FeatureClassifier(self.model_, threshold=self.threshold,
                                 calibration=self.calibration_)

    @property
    def band_(self) -> tuple[float, float]:
        """The fitted inconclusive band (see the class docstring)."""
        check_fitted(self)
        if self.calibration_ is None:
            return (float(self.threshold), float(self.threshold))
        return tuple(float(v) for v in self.calibration_.band)

    @property
    def pipeline_(self):
        """The detector as a fitted ``Pipeline`` of its two steps, ``features_`` then
        ``classifier_``.

        Under a face policy the features are each image's most certain face's (as
        in training), where the detector itself scores an image by its most fake
        face: the two agree on images with one face.
        """
        from sklearn.pipeline import Pipeline

        return Pipeline([("features", self.features_), ("classifier", self.classifier_)])


def _check_band(band) -> None:
    """Refuse a hand-set ``band`` that is not ``(lo, hi)`` with ``0 <= lo <= hi <= 1``."""
    if band is None or isinstance(band, str):
        return
    ok = len(band) == 2 and all(isinstance(v, Real) and not isinstance(v, bool) for v in band)
    if not ok or not 0 <= band[0] <= band[1] <= 1:
        raise ValueError(f"band must be 'auto', None or (lo, hi) with 0 <= lo <= hi <= 1, "
                         f"got {band!r}")


def _augmented_items(items: list[Item], kinds: tuple[str, ...],
                     random_state: int | None) -> list[Item]:
    """One deferred perturbed copy of every item per augmentation kind, strengths
    drawn from a generator seeded by ``random_state`` (kind-major order)."""
    if not kinds:
        return []
    seed = seed_of(random_state)
    rng = np.random.default_rng(seed)
    out = []
    for k, kind in enumerate(kinds):
        for i, item in enumerate(items):
            p = augment_perturbation(kind, rng)
            name = f"{item.name} [augment {p.label}]"
            out.append(Item(Perturbed(item.obj, p, seed=(seed, k, i), name=name), name,
                            item.label))
    return out

