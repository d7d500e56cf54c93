"""How an image becomes the pixels the feature families see: one frozen, checked value.

A :class:`Reading` says everything about *what* is read (the face policy, the
analysis frame, the size limits); how a run is carried out (worker threads, the
feature cache, the backend, a progress bar) travels apart from it, as keyword
arguments. It is made and checked in one place, here, and passed as one object
from :class:`~ffeat.Detector`, :class:`~ffeat.FeatureExtractor`,
:func:`~ffeat.extract`, the streamed runs and the command line down to the reader
(``ffeat.reading._rows``). A fitted detector saves its reading and scores with it.

The names are the reading's own: ``frame`` is the analysis frame (the side every
image, or face crop, is brought to), ``faces`` the face policy.
"""
from __future__ import annotations

import dataclasses

from .._checks import check_int
from ._framing import check_frame
from .faces import check_faces
from .loading import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE, check_min_size

__all__ = ["Reading", "NATIVE", "DETECTOR_READING", "as_reading"]


@dataclasses.dataclass(frozen=True)
class Reading:
    """How an image becomes pixels: face policy, analysis frame, size limits.

    Parameters
    ----------
    faces : {"off", "crop", "auto", "align"}, optional
        Face policy (:mod:`ffeat.reading.faces`): ``"off"`` reads the whole image;
        ``"crop"`` finds the frontal faces and gives each the framing of the
        aligned ``140k`` training faces (an image without a face is an error, "no
        face found"); ``"auto"`` does the same but reads the whole image when no
        face is found; ``"align"`` finds each face's landmarks and cuts it as FFHQ's
        faces were cut (:mod:`ffeat.reading.align`; no face is an error).
    frame : int or None, optional
        The analysis frame: after decoding (and after the face policy's crop) the
        centre square is resized to ``frame x frame`` px (32 to 4096), so images
        of every source size are read at one scale; None (default): native size,
        uncropped.
    max_pixels : int, optional
        Largest decoded image, in pixels (larger ones are refused before decoding).
    min_size : int, optional
        Smallest side, in pixels (smaller images are refused).

    Raises
    ------
    TypeError, ValueError
        When a field is of the wrong type or out of range; the message names it.

    Examples
    --------
    >>> import ffeat
    >>> ffeat.Reading(frame=256)
    Reading(faces='off', frame=256, max_pixels=89478485, min_size=32)
    >>> ffeat.Reading(frame=256).replace(faces="auto").faces
    'auto'
    """

    faces: str = "off"
    frame: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_size: int = DEFAULT_MIN_SIZE

    def __post_init__(self) -> None:
        check_faces(self.faces)
        check_frame(self.frame)
        check_int(self.max_pixels, "max_pixels", minimum=1)
        check_min_size(self.min_size)
        if self.frame is not None:  # np.int64 from a parameter grid: a plain int
            object.__setattr__(self, "frame", int(self.frame))

    def replace(self, **changes) -> Reading:
        """A copy with ``changes`` (checked as a new value is)."""
        return dataclasses.replace(self, **changes)

    def cache_config(self) -> dict:
        """What of the reading a cached feature row depends on (a frame only when set
        and a face policy only when not ``"off"``, so rows cached before either existed
        stay valid); under ``"align"`` the aligner's settings too."""
        out = {"max_pixels": self.max_pixels, "min_size": self.min_size,
               **({"frame": self.frame} if self.frame is not None else {})}
        if self.faces != "off":
            from .align import settings
            out["faces"] = self.faces
            if self.faces == "align":
                out["align"] = settings()
        return out


#: Every image as decoded: native size, no face policy (``extract`` and
#: ``FeatureExtractor`` describe an image as given).
NATIVE = Reading()
#: The Detector's reading by default (``ffeat train``'s too): the shipped detector's.
#: Every face aligned as FFHQ's were (:mod:`ffeat.reading.align`), so that framing cannot
#: separate the sources, in a 256 px frame, chosen by the multi-source protocol
#: (``benchmarks/sources.py``) so that source size cannot separate them either.
DETECTOR_READING = Reading(faces="align", frame=256)


def as_reading(reading, name: str = "reading") -> Reading:
    """``reading`` when it is a :class:`Reading` (None: :data:`NATIVE`).

    Raises
    ------
    TypeError
        Naming the argument ``name`` when it is something else.
    """
    if reading is None:
        return NATIVE
    if not isinstance(reading, Reading):
        raise TypeError(f"{name} must be an ffeat.Reading (e.g. ffeat.Reading(frame=256, "
                        f"faces='auto')), got {type(reading).__name__}")
    return reading
