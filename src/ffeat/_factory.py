"""An unfitted detector of either kind from one set of options (the command line's)."""
from __future__ import annotations

from ._base import ImageClassifier
from .cnn_detector import CnnDetector
from .detector import Detector

__all__ = ["make_detector"]


def make_detector(classifier: str, **params) -> ImageClassifier:
    """An unfitted detector for ``classifier``: a :class:`~ffeat.Detector` for a feature
    classifier, a :class:`~ffeat.CnnDetector` for ``"cnn"`` (PyTorch is not imported).

    ``params`` may hold the parameters of both kinds (one set of command-line
    options serves both); each gets those it takes, the others are not used.

    Raises
    ------
    ValueError
        For the CNN with a ``reading`` under a face policy (it reads whole images).
    """
    if classifier == "cnn":
        reading = params.get("reading")
        if reading is not None and reading.faces != "off":
            raise ValueError(f"faces={reading.faces!r} works with the feature classifiers; "
                             "the CNN reads whole images: use faces='off'")
        cls, params = CnnDetector, dict(params)
    else:
        cls, params = Detector, {"classifier": classifier, **params}
    return cls(**{k: v for k, v in params.items() if k in cls._parameter_constraints})
