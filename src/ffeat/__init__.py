"""ffeat: fast forensic features that tell AI-generated face images from real photographs.

Public API
----------
extract
    Features of files, folders, bytes, PIL images or arrays, with per-file errors.
load_image
    One input to the ``(H, W, 3)`` uint8 RGB working representation.
Gray, Spectrum, Residual, Hog, Lbp
    The feature families, configurable and usable on their own.
make_demo_set, write_demo_set
    The embedded labelled demo data.
Detector, FeatureExtractor
    The scikit-learn compatible detector, and the families as a transformer.
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
"""
from ._persist import ModelFileError
from ._perturb import Perturbation, parse_perturbations
from .comparison import Comparison, compare
from .dataset import Dataset, load_dataset
from .demo import make_demo_set, write_demo_set
from .detector import Detector, FeatureExtractor
from .evaluation import Evaluation, evaluate
from .extraction import DEFAULT_FEATURES, Extraction, ImageError, extract
from .features import Gray, Hog, Lbp, Residual, Spectrum
from .loading import ImageReadError, load_image
from .report import write_report, write_training_curves
from .robustness import robustness
from .streaming import extract_to, predict_to, read_features

from ._version import __version__

__all__ = ["extract", "Extraction", "ImageError", "DEFAULT_FEATURES", "load_image",
           "ImageReadError", "Gray", "Spectrum", "Residual", "Hog", "Lbp", "make_demo_set",
           "write_demo_set", "Detector", "FeatureExtractor", "load_dataset", "Dataset",
           "evaluate", "Evaluation", "ModelFileError", "robustness", "Perturbation",
           "parse_perturbations", "write_report", "write_training_curves", "compare",
           "Comparison", "extract_to", "predict_to", "read_features", "__version__"]
