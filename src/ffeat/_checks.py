"""Checks of the arguments of public functions, with errors that name the argument."""
from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from PIL import Image

__all__ = ["check_int", "check_probability", "check_images"]

#: What counts as one image when a sequence of images is expected.
_SINGLE_IMAGE = (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray)


def _shown(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    text = repr(value)
    return f"{text[:60]}..." if len(text) > 63 else text


def check_int(value, name: str, *, minimum: int | None = None, none: bool = False,
              maximum: int | None = None) -> None:
    """Refuse a ``value`` that is not an integer (or None, if ``none``) from ``minimum``
    to ``maximum``; the error names the argument ``name``.

    Raises
    ------
    TypeError
        When ``value`` is not an integer.
    ValueError
        When it is below ``minimum`` or above ``maximum``.
    """
    if none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer{' or None' if none else ''}, got "
                        f"{_shown(value)} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {value}")


def check_probability(value, name: str) -> None:
    """Refuse a ``value`` that is not a number in [0, 1]; the error names ``name``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a probability in [0, 1], got {_shown(value)} "
                        f"({type(value).__name__})")
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")


def check_images(images, name: str) -> list:
    """``images``, a sequence of images, as a list; a 4-D array is a batch of images.

    A single image (a path, bytes, a PIL image, an array that is not 4-D or 1-D)
    or something that is not a sequence is refused rather than iterated (a path
    would be read character by character).

    Raises
    ------
    TypeError
        Naming the argument ``name``, what it got, and how to pass one image.
    """
    if isinstance(images, np.ndarray) and images.ndim in (1, 4):
        return list(images)
    single = isinstance(images, _SINGLE_IMAGE)
    if single or not hasattr(images, "__iter__"):
        hint = f"; to use one image, pass [{name}]" if single else ""
        raise TypeError(f"{name} must be a sequence of images (paths, bytes, PIL images or "
                        f"arrays), or a 4-D array batch; got {_shown(images)} "
                        f"({type(images).__name__}){hint}")
    return list(images)
