"""ffeat: fast forensic features that tell AI-generated face images from real photographs.

Public API
----------
extract
    Features of files, folders, bytes, PIL images or arrays, with per-file errors.
load_image
    One input to the ``(H, W, 3)`` uint8 RGB working representation.
Gray, Spectrum, Residual
    The feature families, configurable and usable on their own.
make_demo_set, write_demo_set
    The embedded labelled demo data.
"""
from importlib import metadata as _metadata

from .demo import make_demo_set, write_demo_set
from .extraction import DEFAULT_FEATURES, Extraction, ImageError, extract
from .features import Gray, Residual, Spectrum
from .loading import ImageReadError, load_image

__version__ = _metadata.version("ffeat")

__all__ = ["extract", "Extraction", "ImageError", "DEFAULT_FEATURES", "load_image",
           "ImageReadError", "Gray", "Spectrum", "Residual", "make_demo_set",
           "write_demo_set", "__version__"]
