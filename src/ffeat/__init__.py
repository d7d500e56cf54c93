"""ffeat: fast forensic features that tell AI-generated face images from real photographs.

Public API
----------
extract
    Features of files, folders, bytes, PIL images or arrays, with per-file errors.
load_image
    One input to the ``(H, W, 3)`` uint8 RGB working representation.
Reading
    How an image becomes pixels (face policy, analysis frame, size limits): one
    frozen value passed to the estimators, ``extract`` and the streamed runs.
Gray, Spectrum, Residual, Hog, Lbp, Npr
    The feature families, configurable and usable on their own.
make_demo_set, write_demo_set
    The embedded labelled demo data.
Detector, FeatureExtractor
    The scikit-learn compatible detector, and the families as a transformer.
CnnDetector
    The CNN over pixels as its own scikit-learn estimator (``pip install "ffeat[cnn]"``).
load_detector
    A saved model of either kind, as its file says; without a path, the detector
    shipped with ffeat (also ``Detector.default()``).
StackedLogistic
    The stacked per-family logistic regression as a scikit-learn classifier
    over a feature matrix.
Experts, add_expert
    One expert per generator family (``Detector(classifier="experts")``), and a new
    generator's expert added to such a detector without refitting the others.
load_dataset, Dataset
    Labelled image lists from class folders or CSV manifests.
evaluate, Evaluation
    Metrics of a detector on labelled data.
robustness, Perturbation, parse_perturbations
    Metrics on perturbed copies (JPEG, resize, blur, noise, flip) made in memory.
extract_to, predict_to, read_features
    Large runs: features and predictions streamed to disk in resumable shards,
    in this process or on a dask cluster (``pip install "ffeat[dask]"``).
write_report, write_training_curves
    The HTML evaluation report and a CNN's training curves (need matplotlib:
    ``pip install "ffeat[report]"``).
compare, Comparison
    Feature detectors and the CNN (``pip install "ffeat[cnn]"``) trained and
    measured side by side on one split.
ModelFileError
    A model file that cannot be loaded, and why.

Every name is imported on first use, so that ``import ffeat`` (and the command
line) start without loading scikit-learn, matplotlib, dask or PyTorch.
"""
from __future__ import annotations

import importlib
import sys
import types

from ._version import __version__

#: Module (below ``ffeat``) that defines each public name, imported on first access.
_LAZY = {
    "extract": "extraction", "Extraction": "extraction", "ImageError": "extraction",
    "DEFAULT_FEATURES": "extraction", "Reading": "reading",
    "load_image": "reading.loading", "ImageReadError": "reading.loading",
    "Gray": "features", "Spectrum": "features", "Residual": "features", "Hog": "features",
    "Lbp": "features", "Npr": "features", "make_demo_set": "demo", "write_demo_set": "demo",
    "Detector": "detector", "FeatureExtractor": "detector", "CnnDetector": "cnn_detector",
    "load_detector": "models._persist", "StackedLogistic": "models._stacking",
    "load_dataset": "reading.dataset", "Dataset": "reading.dataset", "evaluate": "evaluation",
    "Evaluation": "evaluation", "ModelFileError": "models._persist", "robustness": "robustness",
    "Perturbation": "reading._perturb", "parse_perturbations": "reading._perturb",
    "write_report": "report", "write_training_curves": "report", "compare": "comparison",
    "Comparison": "comparison", "extract_to": "running.streaming",
    "predict_to": "running.streaming", "read_features": "running.streaming",
    "add_expert": "experts", "Experts": "models._experts_fit",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ffeat' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(types.ModuleType):
    """``ffeat`` itself. Importing a submodule binds it on its package, which would
    hide a public name it shares (the module ``ffeat.robustness`` and the function
    ``ffeat.robustness``); such a binding is skipped, so the name stays lazy."""

    def __setattr__(self, name: str, value) -> None:
        if not (isinstance(value, types.ModuleType) and _LAZY.get(name) == name):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
