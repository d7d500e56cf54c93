"""Image perturbations made in memory: robustness tests and training augmentation.

One set of operations serves both ``ffeat evaluate --perturb`` (re-score a
dataset on degraded copies) and ``ffeat train --augment`` / ``Detector(augment=)``
(train on degraded copies as well). Every operation takes a decoded
``(H, W, 3)`` uint8 RGB array and returns a new one; inputs (files, arrays) are
never modified.

``jpeg=Q``
    Re-encode with Pillow at JPEG quality ``Q`` (1-100, lower is stronger).
``resize=F``
    Rescale both sides by ``F`` (0 < F <= 4) with Pillow's bicubic filter
    (antialiased when shrinking); lower is stronger.
``blur=S``
    Gaussian blur of standard deviation ``S`` pixels (``scipy.ndimage``).
``noise=S``
    Add Gaussian noise of standard deviation ``S`` 8-bit levels, seeded per image.
``recode=F``
    Rescale both sides by ``F`` (0 < F <= 4, bicubic) and re-encode as JPEG at a quality
    drawn from 70-95 (seeded per image): the copy another camera, site or generator
    pipeline would have made. Augmentation draws ``F`` log-uniformly from 1/3-3, so that
    size and codec (a 768 px q75 file, a 256 px q75 file) stop telling one class from the
    other.
``reframe=F``
    Frame the picture ``F`` times tighter (0.25 < F <= 4): ``F > 1`` keeps the centre
    ``1/F`` of each side, as a tight crop would (a face aligned like FFHQ then leaves the
    picture, and alignment pads it); ``F < 1`` centres the picture on a canvas ``1/F``
    times as large, filled with the median colour of its border, as a looser photo
    would frame it. No pixel of the picture is resampled. Augmentation draws ``F``
    log-uniformly from 0.5-1.6 (the framings of the shared real sources), so that the
    framing, and the padding or resampling that alignment gives it, stop telling one
    source from another.
``flip``
    Mirror left to right (no strength).
"""
from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .loading import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE, ImageReadError, load_image

__all__ = ["Perturbation", "Perturbed", "KINDS", "DETECTOR_AUGMENT", "parse_perturbations",
           "parse_augment", "augment_perturbation"]


def _jpeg(rgb: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=int(round(quality)))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _resize(rgb: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC),
                      dtype=np.uint8).copy()


def _blur(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage  # here, not at import: reading an image never blurs it

    out = ndimage.gaussian_filter(rgb.astype(np.float32), sigma=(sigma, sigma, 0),
                                  mode="reflect")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _noise(rgb: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    out = rgb.astype(np.float32) + rng.normal(0.0, std, rgb.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _recode(rgb: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    return _jpeg(_resize(rgb, factor, rng), rng.integers(70, 96), rng)


def _reframe(rgb: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    out_h, out_w = max(1, round(h / factor)), max(1, round(w / factor))
    if factor >= 1:
        top, left = (h - out_h) // 2, (w - out_w) // 2
        return np.ascontiguousarray(rgb[top:top + out_h, left:left + out_w])
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    out = np.empty((out_h, out_w, 3), dtype=np.uint8)
    out[...] = np.median(border, axis=0).astype(np.uint8)
    top, left = (out_h - h) // 2, (out_w - w) // 2
    out[top:top + h, left:left + w] = rgb
    return out


def _flip(rgb: np.ndarray, strength, rng: np.random.Generator) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, ::-1])


@dataclass(frozen=True)
class _Kind:
    """One kind of perturbation: the operation, its valid strengths, and how
    augmentation draws a strength (uniform on ``augment_range``)."""

    apply: Callable
    low: float | None  # valid strengths: low < s <= high (low None: no strength)
    high: float | None
    augment_range: tuple[float, float] | None
    stronger: str  # "higher" or "lower" values degrade more
    unit: str
    integer: bool = False
    log_uniform: bool = False  # augmentation draws log(strength) uniformly


#: The perturbations by name.
KINDS: dict[str, _Kind] = {
    "jpeg": _Kind(_jpeg, 0, 100, (60, 95), "lower", "JPEG quality", integer=True),
    "resize": _Kind(_resize, 0, 4, (0.5, 1.0), "lower", "scale factor"),
    "blur": _Kind(_blur, 0, 20, (0.0, 2.0), "higher", "Gaussian sigma (px)"),
    "noise": _Kind(_noise, 0, 100, (1.0, 5.0), "higher", "noise std (8-bit levels)"),
    "recode": _Kind(_recode, 0, 4, (1 / 3, 3.0), "lower", "scale factor, then JPEG 70-95",
                    log_uniform=True),
    "reframe": _Kind(_reframe, 0.25, 4, (0.5, 1.6), "higher", "framing factor (>1 tighter)",
                     log_uniform=True),
    "flip": _Kind(_flip, None, None, None, "higher", ""),
}
#: The Detector's training augmentation by default (``ffeat train``'s too, for the feature
#: classifiers): the shipped detector's, chosen by the multi-source protocol: ``recode`` so
#: that size and codec, ``reframe`` so that framing (and the padding or resampling it gives
#: an aligned face) stop telling the classes apart.
DETECTOR_AUGMENT = "recode,reframe"


@dataclass(frozen=True)
class Perturbation:
    """One operation at one strength, e.g. ``Perturbation("jpeg", 70)``.

    Parameters
    ----------
    kind : str
        One of ``jpeg``, ``resize``, ``blur``, ``noise``, ``flip``.
    strength : float, optional
        The operation's parameter (see the module docstring); None for ``flip``.
    """

    kind: str
    strength: float | None = None

    def __post_init__(self) -> None:
        spec = KINDS.get(self.kind)
        if spec is None:
            raise ValueError(f"unknown perturbation {self.kind!r}; choose from "
                             f"{', '.join(KINDS)}")
        if spec.low is None:
            if self.strength is not None:
                raise ValueError(f"{self.kind} takes no strength, got {self.strength!r}")
            return
        if self.strength is None:
            raise ValueError(f"{self.kind} needs a strength, e.g. {self.kind}="
                             f"{_example(self.kind)}")
        s = float(self.strength)
        if not (np.isfinite(s) and spec.low < s <= spec.high) and \
                not (self.kind in ("blur", "noise") and s == 0):
            raise ValueError(f"{self.kind} strength ({spec.unit}) must lie in "
                             f"({spec.low:g}, {spec.high:g}], got {self.strength!r}")
        if spec.integer and not s.is_integer():
            raise ValueError(f"{self.kind} strength ({spec.unit}) must be a whole number, "
                             f"got {self.strength!r}")
        object.__setattr__(self, "strength", int(s) if spec.integer else s)

    @property
    def label(self) -> str:
        """``kind=strength`` (or ``kind``), as written on the command line."""
        return self.kind if self.strength is None else f"{self.kind}={self.strength:g}"

    def apply(self, rgb: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """A perturbed copy of a ``(H, W, 3)`` uint8 image (``rgb`` is left untouched)."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"perturbations take (H, W, 3) uint8 RGB arrays, got "
                             f"{rgb.dtype} {rgb.shape}; use ffeat.load_image first")
        rng = np.random.default_rng(0) if rng is None else rng
        return KINDS[self.kind].apply(rgb, self.strength, rng)


def _example(kind: str) -> str:
    return {"jpeg": "90,70,50", "resize": "0.75,0.5", "recode": "3,0.5", "blur": "1,2",
            "noise": "2,5", "reframe": "0.5,1.5"}.get(kind, "")


@dataclass(frozen=True)
class Perturbed:
    """A deferred input: ``source`` read like any image, then ``perturbation``
    applied with a generator seeded by ``seed``. Feature extraction reads it in
    its worker threads, so perturbed copies are made in memory one at a time.

    Parameters
    ----------
    source : path, bytes, PIL image or array
        The original input (never modified).
    perturbation : Perturbation
    seed : int or tuple of int
        Seed of the noise (the same seed gives the same copy).
    name : str
        How the copy is named in error records.
    """

    source: object
    perturbation: Perturbation
    seed: int | tuple = 0
    name: str = "<perturbed>"

    def load(self, *, max_pixels: int = DEFAULT_MAX_PIXELS,
             min_size: int = DEFAULT_MIN_SIZE, name: str | None = None) -> np.ndarray:
        """Read the source and return the perturbed ``(H, W, 3)`` uint8 copy."""
        name = self.name if name is None else name
        rgb = load_image(self.source, max_pixels=max_pixels, min_size=min_size, name=name)
        seed = self.seed if isinstance(self.seed, tuple) else (self.seed,)
        try:
            out = self.perturbation.apply(rgb, np.random.default_rng(list(seed)))
        except (ValueError, OSError, MemoryError) as exc:
            raise ImageReadError(name, f"{self.perturbation.label} failed: {exc}") from exc
        h, w = out.shape[:2]
        if min(h, w) < min_size:
            raise ImageReadError(name, f"after {self.perturbation.label} the image is "
                                       f"{w}x{h} pixels, below the {min_size} px minimum")
        return out


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--perturb {spec!r}: {text!r} is not a number") from None


def parse_perturbations(specs: Iterable[str | Perturbation]) -> list[Perturbation]:
    """Perturbations from ``"kind=s1,s2,..."`` strings (or ready objects).

    Parameters
    ----------
    specs : iterable of str or Perturbation
        E.g. ``["jpeg=90,70,50", "resize=0.75,0.5", "blur=1,2", "noise=2,5"]``;
        ``"flip"`` takes no values.

    Returns
    -------
    list of Perturbation
        One per kind and strength, in the order given, duplicates dropped.

    Raises
    ------
    ValueError
        For an unknown kind, a missing or malformed value, or a strength out of
        range; the message names the valid choices.
    """
    out: list[Perturbation] = []
    for spec in specs:
        if isinstance(spec, Perturbation):
            items = [spec]
        else:
            kind, sep, values = str(spec).strip().partition("=")
            kind = kind.strip().lower()
            if kind not in KINDS:
                raise ValueError(f"--perturb {spec!r}: unknown perturbation {kind!r}; choose "
                                 f"from {', '.join(KINDS)} (e.g. jpeg=90,70,50)")
            if KINDS[kind].low is None:
                if sep and values.strip():
                    raise ValueError(f"--perturb {spec!r}: {kind} takes no values")
                items = [Perturbation(kind)]
            else:
                parts = [v.strip() for v in values.split(",")] if sep else []
                if not parts or any(not p for p in parts):
                    raise ValueError(f"--perturb {spec!r}: give {kind}=VALUE[,VALUE...], "
                                     f"e.g. {kind}={_example(kind)}")
                try:
                    items = [Perturbation(kind, _number(p, spec)) for p in parts]
                except ValueError as exc:
                    msg = str(exc)
                    raise ValueError(msg if msg.startswith("--perturb") else
                                     f"--perturb {spec!r}: {msg}") from None
        out += [p for p in items if p not in out]
    return out


def parse_augment(augment: str | Sequence[str] | None) -> tuple[str, ...]:
    """Augmentation kinds from ``"jpeg,blur,resize,flip"`` or a sequence of names.

    Raises
    ------
    ValueError
        For an unknown or repeated kind.
    """
    if augment is None:
        return ()
    if isinstance(augment, str):
        augment = augment.split(",")
    kinds = tuple(str(a).strip().lower() for a in augment if str(a).strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from "
                         f"{', '.join(KINDS)} (e.g. augment='jpeg,blur,resize,flip')")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"each augmentation may appear once, got {list(kinds)}")
    return kinds


def augment_perturbation(kind: str, rng: np.random.Generator) -> Perturbation:
    """A perturbation of ``kind`` at a strength drawn uniformly from its augmentation
    range (JPEG quality 60-95, resize 0.5-1, blur sigma 0-2, noise std 1-5; recode
    1/3-3, log-uniformly)."""
    spec = KINDS[kind]
    if spec.augment_range is None:
        return Perturbation(kind)
    lo, hi = spec.augment_range
    s = float(np.exp(rng.uniform(np.log(lo), np.log(hi))) if spec.log_uniform
              else rng.uniform(lo, hi))
    return Perturbation(kind, round(s) if spec.integer else round(s, 3))
