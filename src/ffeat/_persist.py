"""Saving and loading detectors as NumPy arrays plus JSON, never pickle.

A model file is an ``.npz`` archive read with ``allow_pickle=False``: loading
one cannot run code. It holds ``meta`` (JSON: format, ffeat version, the full
feature configuration and column names, the classifier and its parameters,
training counts and where the training data came from), the model's arrays under
``model/...`` (for the CNN: its JSON configuration and every ``state_dict``
tensor as an array; the network is rebuilt from them, ``torch.load`` is never
used), and ``checksum``, a SHA-256 over all of it, so a file changed after saving is refused rather than
silently scoring differently. (The checksum guards against corruption and
accidental edits, not against someone who rewrites it on purpose.)
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from ._atomic import atomic_write
from ._models import model_class, uses_features
from ._version import __version__
from .features import FAMILIES, describe_features, resolve_features

__all__ = ["ModelFileError", "save", "load"]

FORMAT = "ffeat-detector"
FORMAT_VERSION = 1
#: Detector parameters kept in the metadata. Files written before ``augment`` or
#: the CNN parameters existed lack them and load with the defaults.
_PARAMS = ("classifier", "C", "max_iter", "learning_rate", "threshold", "random_state",
           "augment", "epochs", "batch_size", "input_size", "patience")


class ModelFileError(ValueError):
    """A file that cannot be loaded as a detector; the message says why."""


def _checksum(meta: str, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(meta.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _plain(value: object) -> object:
    """JSON encoder fallback: NumPy scalars (``np.int64(3)`` from a parameter grid) as
    Python numbers; anything else is refused with the usual ``TypeError``."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def save(detector, path) -> None:
    """Write a fitted detector atomically (see the module docstring)."""
    families = resolve_features(detector.features)
    meta = json.dumps({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ffeat_version": __version__,
        "features": describe_features(families),
        "feature_names": detector.feature_names_,
        "params": {k: getattr(detector, k) for k in _PARAMS},
        "training": detector.training_,
    }, default=_plain)
    arrays = {f"model/{k}": np.asarray(v) for k, v in detector.model_.to_arrays().items()}
    content = {"meta": np.array(meta), **arrays}
    content["checksum"] = np.array(_checksum(meta, arrays))
    atomic_write(path, lambda fh: np.savez(fh, **content))


def _families(described: list[dict], path) -> tuple:
    families = []
    for d in described:
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()
                  if k != "family"}
        if d.get("family") not in FAMILIES:
            raise ModelFileError(f"{path}: needs feature family {d.get('family')!r}, which "
                                 f"ffeat {__version__} does not have; upgrade ffeat")
        try:
            families.append(FAMILIES[d["family"]](**params))
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: feature family {d['family']!r} cannot be "
                                 f"configured as saved ({exc}); retrain with ffeat "
                                 f"{__version__}") from None
    return tuple(families)


def _read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Meta and model arrays of a model file, checked; ModelFileError otherwise."""
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a model file")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        try:
            with open(path, "rb") as fh:
                zip_start = fh.read(4) == b"PK\x03\x04"
        except OSError as exc:
            raise ModelFileError(f"{path}: cannot read the model file ({exc})") from None
        if zip_start:  # an archive whose end is missing
            raise ModelFileError(f"{path}: the model file is truncated or damaged (an "
                                 ".npz archive without its end); retrain or restore the "
                                 "original file")
        raise ModelFileError(f"{path}: not an ffeat model file (not an .npz archive); "
                             "write models with Detector.save or ffeat train")
    try:
        with np.load(path, allow_pickle=False) as z:
            content = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - zipfile and numpy raise many kinds on damage
        raise ModelFileError(f"{path}: the model file is damaged or was modified after it "
                             f"was saved ({type(exc).__name__}: {exc}); retrain or restore "
                             "the original file") from None
    if "meta" not in content or "checksum" not in content:
        raise ModelFileError(f"{path}: not an ffeat model file (no ffeat metadata); write "
                             "models with Detector.save or ffeat train")
    meta_text = str(content.pop("meta"))
    try:
        meta = json.loads(meta_text)
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: corrupt model metadata (not JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an ffeat detector file")
    saved_by = meta.get("ffeat_version", "?")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format {meta.get('format_version')} (written by "
                             f"ffeat {saved_by}); ffeat {__version__} reads format "
                             f"{FORMAT_VERSION}; retrain or use a matching ffeat")
    arrays = {k[len("model/"):]: v for k, v in content.items() if k.startswith("model/")}
    expected = str(content["checksum"])
    if _checksum(meta_text, {f"model/{k}": v for k, v in arrays.items()}) != expected:
        raise ModelFileError(f"{path}: the file was modified or damaged after it was saved "
                             "(checksum mismatch); retrain or restore the original file")
    if _minor(saved_by) != _minor(__version__):
        raise ModelFileError(f"{path}: trained with ffeat {saved_by}, whose features may "
                             f"differ from ffeat {__version__}'s; retrain the model with "
                             f"this version (ffeat train)")
    return meta, arrays


def load(cls, path):
    """Read a detector of class ``cls`` from ``path``; :class:`ModelFileError` if unfit."""
    path = Path(path)
    meta, arrays = _read(path)
    try:
        return _build(cls, meta, arrays, path)
    except (KeyError, TypeError, AttributeError) as exc:  # checksummed, but not our layout
        raise ModelFileError(f"{path}: malformed ffeat model metadata ({type(exc).__name__}: "
                             f"{exc}); write models with Detector.save or ffeat "
                             "train") from None


def _build(cls, meta: dict, arrays: dict[str, np.ndarray], path: Path):
    """The detector that checked metadata and arrays describe."""
    families = _families(meta["features"], path)
    params = meta["params"]
    classifier = params.get("classifier")
    names = [n for f in families for n in f.feature_names()] \
        if uses_features(classifier) else []
    if names != meta["feature_names"]:
        raise ModelFileError(f"{path}: the saved feature columns do not match what ffeat "
                             f"{__version__} computes for the same configuration; retrain")
    try:
        kind = model_class(classifier)
    except ImportError as exc:
        raise ModelFileError(f"{path}: a {classifier} model cannot be loaded here: "
                             f"{exc}") from None
    if kind is None:
        raise ModelFileError(f"{path}: unknown classifier {classifier!r}")
    try:
        model = kind.from_arrays(arrays)
    except KeyError as exc:
        raise ModelFileError(f"{path}: model array {exc} is missing") from None
    except ValueError as exc:  # a CNN configuration this version does not build
        raise ModelFileError(f"{path}: {exc}; retrain with ffeat {__version__}") from None
    detector = cls(features=families, **params)
    detector.model_ = model
    detector.classes_ = np.array([0, 1])
    detector.feature_names_ = names
    detector.training_ = meta.get("training", {})
    detector.errors_ = []
    return detector
