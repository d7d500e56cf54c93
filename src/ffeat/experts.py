"""Add a generator to an expert detector without retraining the others (issue 31).

An analyst with 50-200 images of a new generator and some real photographs fits
one new expert on them (the detector's own classifier, reading and augmentation)
and gets a new detector holding the old experts unchanged plus the new one
(:meth:`ffeat.models._experts.ExpertSet.with_expert`). The detector given is not
changed; ``ffeat add-expert`` writes the result to a new model file.
"""
from __future__ import annotations

import copy

import numpy as np

from ._base import check_fitted, image_items, warn_errors
from .features import resolve_features
from .models._experts import ExpertSet, check_name
from .models._experts_fit import fit_expert
from .reading._perturb import parse_augment
from .reading._rows import feature_rows
from .reading.dataset import describe_data, labelled_images

__all__ = ["add_expert"]


def add_expert(detector, X, y=None, *, name: str, progress: bool | None = False):
    """A copy of an expert ``detector`` with one more expert, fitted on ``X``.

    Parameters
    ----------
    detector : Detector
        Fitted with ``classifier="experts"`` (or loaded from such a file).
    X : sequence of images, a :class:`~ffeat.Dataset`, or a dataset path
        The new generator's fakes (label 1) and real photographs (label 0): 50-200
        fakes are enough (``docs/experts.md`` measures it); the reals should cover
        what the detector will meet (several sources, sizes and framings).
    y : array-like of {0, 1}, optional
        Labels of images given as a sequence.
    name : str
        The new expert's name (the ``generator`` predictions give), unlike the
        existing experts' names.
    progress : bool or None, optional
        Progress bar while reading the images.

    Returns
    -------
    Detector
        A new fitted detector: the old experts, rule and calibration unchanged, the
        new expert last; ``training_["generators"][name]`` counts its fakes.

    Raises
    ------
    ValueError
        For a detector without experts, a name already taken, or images without
        both classes.
    """
    check_fitted(detector)
    model = detector.model_
    if not isinstance(model, ExpertSet):
        raise ValueError("this detector has no experts (it was trained with classifier="
                         f"{model.kind!r}); train one with classifier='experts' first")
    check_name(name)
    if name in model.names:
        raise ValueError(f"the detector already has an expert named {name!r} (its experts: "
                         f"{', '.join(model.names)}); choose another name")
    from . import detector as detectors  # the detector's own copies (as sources.py makes)

    images, y = labelled_images(X, y, name="X")
    kinds = parse_augment(detector.augment)
    items = image_items(images)
    n = len(items)
    items += detectors._augmented_items(items, kinds, detector.random_state)
    F, errors = feature_rows(items, resolve_features(detector.features), detector.reading,
                             jobs=detector.jobs, cache=detector.cache,
                             backend=detector.backend, progress=progress)
    y_all = np.tile(y, 1 + len(kinds))
    ok = ~np.isnan(F).any(axis=1)
    warn_errors(errors[:int((~ok[:n]).sum())], n, "were left out of the new expert")
    if len(np.unique(y_all[ok])) < 2:
        raise ValueError("a new expert needs readable images of both classes: the new "
                         "generator's fakes (label 1) and real photographs (label 0)")
    groups = np.tile(np.arange(n), 1 + len(kinds))
    expert, _ = fit_expert(detector._estimator().base, F[ok], y_all[ok], groups[ok], name,
                           describe_data(X))
    new = copy.deepcopy(detector)
    new.model_ = model.with_expert(expert)
    new.training_ = {**detector.training_, "generators": {
        **detector.training_.get("generators", {}), name: int((y[ok[:n]] == 1).sum())}}
    return new
