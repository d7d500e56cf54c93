"""The CNN over pixels as its own image-in estimator: :class:`CnnDetector`.

The network, its training loop and its model arrays live in ``ffeat.models._cnn``;
this module is the scikit-learn face of it. Parameters are checked before
PyTorch is imported, so an invalid one is named even where PyTorch is missing.
"""
from __future__ import annotations

from numbers import Integral

import numpy as np

from ._base import ImageClassifier, image_items, seed_of, training_record, warn_errors
from .models._sklearn_compat import Interval, fit_context
from .reading._perturb import parse_augment
from .reading.dataset import describe_data, labelled_images

__all__ = ["CnnDetector"]


class CnnDetector(ImageClassifier):
    """Tell fake face images from real ones with a compact CNN over the pixels.

    Needs PyTorch (``pip install "ffeat[cnn]"``), imported only when the network
    is trained or loaded; it runs on a CUDA device when PyTorch sees one. Every
    image is resized whole to ``input_size`` pixels square; the network and its
    training are described in ``ffeat.models._cnn``. Labels are 1 = fake and 0 = real;
    probabilities are the probability of fake.

    Parameters
    ----------
    input_size : int
        Side in pixels every image is resized to (at least 32).
    epochs : int
        Most passes over the training images (early stopping may end sooner).
    batch_size : int
        Images per gradient step and per scoring batch.
    patience : int
        Epochs without a better validation loss before training stops.
    augment : str or sequence of str, optional
        Augmentation kinds (``"jpeg,blur,resize,noise,flip"``, any subset),
        each applied on the fly to a training image with probability 0.1 per
        epoch, on top of the random flips and shifts always used. ``None``:
        flips and shifts only.
    threshold : float
        Probability of fake at and above which :meth:`predict` says fake.
    jobs : int, optional
        Threads for reading images and for PyTorch (``None``: all cores).
    random_state : int, optional
        Seed of the weights, the validation split, the batch order and the
        augmentation (``None``: a fresh one).

    Attributes
    ----------
    classes_ : ndarray
        ``[0, 1]`` (real, fake).
    training_ : dict
        ``n_real``, ``n_fake`` and ``n_errors`` of the training images,
        ``n_rows`` (images trained on, validation images excluded),
        ``n_validation``, ``epochs_run``, ``best_epoch``, ``seconds``,
        ``history`` (one dict per epoch with ``epoch``, ``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy`` and ``lr``), ``augment`` and ``data``.
    errors_ : list of ImageError
        Training images that could not be read and were left out.
    classifier : str
        ``"cnn"``, as ``Detector.classifier`` names a feature classifier (a class
        attribute, not a parameter).

    Notes
    -----
    As for :class:`~ffeat.Detector`: parameters are checked when ``fit`` starts
    (before any image is read, and before PyTorch is imported) and before
    scoring, ``InvalidParameterError`` naming the parameter; methods take a
    sequence of images; scoring before ``fit`` or :meth:`load` raises
    ``NotFittedError``; ``predict`` says -1 for an unreadable image. :meth:`load`
    refuses a feature model file, naming :class:`~ffeat.Detector`.
    """

    classifier = "cnn"

    _parameter_constraints: dict = {
        **ImageClassifier._parameter_constraints,
        "input_size": [Interval(Integral, 32, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, input_size: int = 128, epochs: int = 30, batch_size: int = 32,
                 patience: int = 5, augment=None, threshold: float = 0.5,
                 jobs: int | None = None, random_state: int | None = 0) -> None:
        self.input_size = input_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.augment = augment
        self.threshold = threshold
        self.jobs = jobs
        self.random_state = random_state

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, progress: bool | None = False) -> CnnDetector:
        """Train the network on labelled images.

        Parameters
        ----------
        X : sequence of images, a :class:`~ffeat.Dataset`, or a dataset path
            As for :meth:`ffeat.Detector.fit`.
        y : array-like of {0, 1}, optional
            1 = fake, 0 = real.
        progress : bool or None, optional
            Reading progress and one line per epoch on stderr (``None``: on a
            terminal).

        Returns
        -------
        CnnDetector
            ``self``, fitted. Images that cannot be read are left out, with a
            warning, and listed in ``errors_``.

        Raises
        ------
        ImportError
            When PyTorch is not installed (the message says what to install).
        ValueError
            When fewer than two images of a class could be read (``errors_``
            lists why each failed).
        """
        from .models import _cnn

        kinds = parse_augment(self.augment)
        images, y = labelled_images(X, y, name="X")
        items = image_items(images)
        try:
            model, ok, errors, record = _cnn.train(
                items, y, input_size=self.input_size, epochs=self.epochs,
                batch_size=self.batch_size, patience=self.patience, augment=kinds,
                jobs=self.jobs, seed=seed_of(self.random_state), progress=progress)
        except _cnn.TooFewImages as exc:
            self.errors_ = exc.errors  # the reasons, also when training cannot start
            raise
        warn_errors(errors, len(items), "were left out of training")
        self.model_ = model
        self.classes_ = np.array([0, 1])
        self.errors_ = errors
        self.training_ = training_record(y[ok], errors, kinds, describe_data(X),
                                         n_augment_errors=0, **record)
        return self
