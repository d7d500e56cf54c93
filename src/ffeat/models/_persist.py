"""Saving and loading detectors as NumPy arrays plus JSON, never pickle.

A model file is an ``.npz`` archive read with ``allow_pickle=False``: loading
one cannot run code. It holds ``meta`` (JSON: format, ffeat version, the full
feature configuration and column names, the classifier and its parameters,
training counts and where the training data came from), the model's arrays under
``model/...``, a feature classifier's calibration and inconclusive band under
``calibration/...`` (files without them score with the raw logistic output; for the CNN: its JSON configuration and every ``state_dict``
tensor as an array; the network is rebuilt from them, ``torch.load`` is never
used), and ``checksum``, a SHA-256 over all of it, so a file changed after saving is refused rather than
silently scoring differently. (The checksum guards against corruption and
accidental edits, not against someone who rewrites it on purpose.)

A file is not trusted while it is read: member names, declared sizes and
compression ratios are checked before any member is read; the metadata is read
first (at most ``MAX_META_BYTES``) and bounds what the model's arrays may take
(``max_bytes`` of its class, at most ``MAX_MODEL_BYTES``); each ``.npy`` header
must account for exactly its member's size; every array is checked by its model
class (``from_arrays``: dtype, shape, index ranges, tree acyclicity), and the
feature configuration's column count is checked before its names are built.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import re
import stat
import zipfile
from pathlib import Path

import numpy as np

from .._version import __version__
from ..features import (
    FAMILIES,
    column_names,
    describe_features,
    n_columns,
    resolve_features,
)
from ..reading import Reading
from ..reading._framing import check_frame
from ..reading.faces import FACE_POLICIES
from ..reading.loading import file_kind
from ._calibration import Calibration
from ._models import MODELS, model_class, saved_classifier, uses_features
from ._npz import write_npz

__all__ = ["ModelFileError", "ESTIMATORS", "save", "load", "load_detector", "families_from"]

FORMAT = "ffeat-detector"
FORMAT_VERSION = 1
#: Estimator parameters kept in the metadata, those of the estimator saved (a
#: ``CnnDetector``'s ``classifier`` is its class attribute ``"cnn"``). Files written
#: before ``faces`` existed lack it and load with the default, those written before
#: ``frame`` or ``augment`` with None (they read images at native size and were trained
#: without copies, whatever the defaults are now); files written before the CNN had its
#: own class hold every parameter, and each class takes its own.
_PARAMS = ("classifier", "C", "max_iter", "learning_rate", "threshold", "random_state",
           "augment", "epochs", "batch_size", "input_size", "patience", "faces", "frame",
           "calibration", "band")
#: The estimator class (``module.Class`` below ``ffeat``) that loads each saved
#: classifier: what :func:`load_detector` returns, and what ``Detector.load`` and
#: ``CnnDetector.load`` check a file against.
ESTIMATORS = {**dict.fromkeys(MODELS, "detector.Detector"), "cnn": "cnn_detector.CnnDetector"}
#: Largest metadata member read (JSON, stored as 4 bytes a character): room for the
#: names of about 800,000 feature columns.
MAX_META_BYTES = 64 << 20
#: Largest total of model arrays read, whatever the metadata says.
MAX_MODEL_BYTES = 256 << 20
#: Most bytes of one member's ``.npy`` header (ffeat writes 128).
_MAX_HEADER = 4096
#: Most members of a model file (a CNN has about 40 arrays).
_MAX_MEMBERS = 1024
#: Most a member may expand when read (ffeat stores members uncompressed: 1).
_MAX_RATIO = 100
_MEMBER = re.compile(r"(meta|checksum|(model|calibration)/[\w.]+(/[\w.]+)*)\.npy", re.ASCII)
_CALIBRATION = "calibration/"


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


def save(detector, target) -> None:
    """Write a fitted detector to ``target``: a path (atomically) or a binary file object
    (see the module docstring; the same detector always gives the same bytes)."""
    _check_target(target, "save")
    features = getattr(detector, "features", ())  # the CNN reads pixels: none
    meta = json.dumps({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ffeat_version": __version__,
        "features": describe_features(resolve_features(features)) if features else [],
        "feature_names": getattr(detector, "feature_names_", []),
        "params": _saved_params(detector),
        "training": detector.training_,
    }, default=_plain)
    arrays = {f"model/{k}": np.asarray(v) for k, v in detector.model_.to_arrays().items()}
    if (calibration := getattr(detector, "calibration_", None)) is not None:
        arrays.update({f"{_CALIBRATION}{k}": np.asarray(v, dtype=np.float64)
                       for k, v in calibration.to_arrays().items()})
    content = {"meta": np.array(meta), **arrays}
    content["checksum"] = np.array(_checksum(meta, arrays))
    write_npz(target, content)


def _saved_params(detector) -> dict:
    """The parameters a detector saves, in :data:`_PARAMS` order: its own, for one that
    reads features its reading's face policy and frame (``faces``, ``frame``), and for a
    classifier given as an estimator its kind's name and hyperparameters."""
    reading = getattr(detector, "reading", None)
    owners = {k: reading if reading is not None and k in ("faces", "frame") else detector
              for k in _PARAMS}
    params = {k: getattr(owners[k], k) for k in _PARAMS if hasattr(owners[k], k)}
    if not isinstance(params["classifier"], str):  # an estimator: its kind, its settings
        params.update(saved_classifier(params["classifier"]))
    return params


def _check_target(target, verb: str) -> None:
    """Refuse what is neither a path nor a binary file object, naming what was given."""
    if isinstance(target, (str, os.PathLike)):
        return
    attr = "write" if verb == "save" else "read"
    if target is None or not hasattr(target, attr) or isinstance(target, (bytes, bytearray)):
        given = "None" if target is None else f"a {type(target).__name__}"
        raise TypeError(f"{verb} needs a file path or a binary file object open for "
                        f"{'writing' if verb == 'save' else 'reading'}, got {given}"
                        + ("; for the detector shipped with ffeat use ffeat.Detector.default() "
                           "or ffeat.load_detector()" if verb == "load" and target is None
                           else ""))


def families_from(described: list[dict], path) -> tuple:
    """The families a saved configuration (:func:`~ffeat.features.describe_features`)
    describes; :class:`ModelFileError` naming ``path`` when this ffeat cannot build them."""
    families = []
    for d in described:
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()
                  if k != "family"}
        if d.get("family") not in FAMILIES:
            raise ModelFileError(f"{path}: needs feature family {d.get('family')!r}, which "
                                 f"ffeat {__version__} does not have; upgrade ffeat")
        family = FAMILIES[d["family"]]
        # A parameter added since the file was written takes the value it was trained with.
        params = {**getattr(family, "saved_defaults", {}), **params}
        try:
            families.append(family(**params))
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: feature family {d['family']!r} cannot be "
                                 f"configured as saved ({exc}); retrain with ffeat "
                                 f"{__version__}") from None
    return tuple(families)


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, path: Path) -> np.ndarray:
    """One ``.npy`` member, read only when its declared size is at most ``limit`` bytes
    and its header's shape and dtype account for exactly that size."""
    if info.file_size > limit:
        raise ModelFileError(f"{path}: member {info.filename} declares {info.file_size:,} "
                             f"bytes, more than the {limit:,} ffeat reads for it; not a "
                             "file ffeat wrote")
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"npy format version {version}")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = read_header(fh)
        size = math.prod(shape) * dtype.itemsize
        if dtype.hasobject:
            raise ModelFileError(f"{path}: member {info.filename} holds Python objects (a "
                                 "pickle), which ffeat never loads; not a file ffeat wrote")
        if fh.tell() > _MAX_HEADER or fh.tell() + size != info.file_size:
            raise ModelFileError(f"{path}: member {info.filename} holds {dtype} {shape} in "
                                 f"{info.file_size:,} bytes; not an array ffeat wrote")
        data = bytearray(fh.read(size))
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C")


def _members(zf: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, refused unless each is one a model file may hold,
    named once, expanding at most ``_MAX_RATIO`` times (nothing is read yet)."""
    infos = zf.infolist()
    if len(infos) > _MAX_MEMBERS:
        raise ModelFileError(f"{path}: {len(infos):,} members in the archive; a model file "
                             f"has at most {_MAX_MEMBERS}")
    members = {}
    for info in infos:
        name = info.filename
        if not _MEMBER.fullmatch(name) or ".." in name.split("/") or name in members:
            raise ModelFileError(f"{path}: unknown or repeated member {name!r} in the "
                                 "archive; not an ffeat model file")
        if info.file_size > _MAX_RATIO * max(info.compress_size, 1):
            raise ModelFileError(f"{path}: member {name} expands {info.compress_size:,} "
                                 f"bytes to {info.file_size:,} (a zip bomb?); not a file "
                                 "ffeat wrote")
        members[name] = info
    if "meta.npy" not in members or "checksum.npy" not in members:
        raise ModelFileError(f"{path}: not an ffeat model file (no ffeat metadata); write "
                             "models with Detector.save or ffeat train")
    return members


def _estimator(classifier: str, cls, path: Path):
    """The class that loads a saved ``classifier``: ``cls``, or the one :data:`ESTIMATORS`
    names when ``cls`` is None. A registered class (or a subclass of one) that is not
    the one named is refused, naming the class to use."""
    name = ESTIMATORS[classifier]
    module, _, attr = name.partition(".")
    if cls is None:
        return getattr(importlib.import_module(f"ffeat.{module}"), attr)
    lineage = {f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__}
    if any(f"ffeat.{other}" in lineage for other in set(ESTIMATORS.values()) - {name}):
        raise ModelFileError(f"{path}: holds a {classifier} model, which ffeat.{attr} loads, "
                             f"not {cls.__name__}; use ffeat.{attr}.load or "
                             "ffeat.load_detector (either kind)")
    return cls


def _kind(meta: dict, path: Path, cls=None):
    """The model class a checked metadata names, the most bytes its arrays may take, and
    the estimator class that loads it (see :func:`_estimator`)."""
    params, names = meta.get("params"), meta.get("feature_names")
    if not isinstance(params, dict) or not isinstance(names, list) \
            or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{path}: malformed ffeat model metadata (params or "
                             "feature_names); write models with Detector.save or ffeat train")
    classifier = params.get("classifier")
    if not isinstance(classifier, str) or classifier not in ESTIMATORS:
        raise ModelFileError(f"{path}: unknown classifier {classifier!r}")
    estimator = _estimator(classifier, cls, path)  # before PyTorch is needed
    try:
        kind = model_class(classifier)
    except ImportError as exc:
        raise ModelFileError(f"{path}: a {classifier} model cannot be loaded here: "
                             f"{exc}") from None
    try:
        return kind, min(kind.max_bytes(len(names), params), MAX_MODEL_BYTES), estimator
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"{path}: malformed ffeat model parameters ({exc})") from None


def _read(source, path, cls=None) -> tuple[dict, dict[str, np.ndarray], type, type]:
    """Meta, model arrays, model class and estimator class (``cls``, or from the file when
    None; see :func:`_estimator`) of a model file (``source``: a path, or a binary file
    object named ``path`` in messages), checked; ModelFileError otherwise.

    Member names and declared sizes are checked before anything is read; the
    metadata is read first (at most ``MAX_META_BYTES``), and bounds the arrays.
    """
    if isinstance(source, Path):
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise ModelFileError(f"{path}: no such model file" + (
                " (a dangling symbolic link)" if os.path.islink(path) else "")) from None
        except (OSError, ValueError) as exc:  # a link loop, no permission, a NUL byte
            raise ModelFileError(f"{path}: cannot read the model file "
                                 f"({getattr(exc, 'strerror', None) or exc})") from None
        if not stat.S_ISREG(mode):
            raise ModelFileError(f"{path}: is {file_kind(mode)}, not a model file")
    if not zipfile.is_zipfile(source):
        try:
            if isinstance(source, Path):
                with open(path, "rb") as fh:
                    zip_start = fh.read(4) == b"PK\x03\x04"
            else:
                source.seek(0)
                zip_start = source.read(4) == b"PK\x03\x04"
        except OSError as exc:
            raise ModelFileError(f"{path}: cannot read the model file ({exc})") from None
        if zip_start:  # an archive whose end is missing
            raise ModelFileError(f"{path}: the model file is truncated or damaged (an "
                                 ".npz archive without its end); retrain or restore the "
                                 "original file")
        raise ModelFileError(f"{path}: not an ffeat model file (not an .npz archive); "
                             "write models with Detector.save or ffeat train")
    try:
        with zipfile.ZipFile(source) as zf:
            members = _members(zf, path)
            meta_text = str(_member(zf, members.pop("meta.npy"), MAX_META_BYTES, path))
            meta = _meta(meta_text, path)
            kind, budget, cls = _kind(meta, path, cls)
            budget += Calibration.max_bytes()
            declared = sum(info.file_size for info in members.values())
            if declared > budget + _MAX_HEADER * len(members):
                raise ModelFileError(f"{path}: the model arrays declare {declared:,} bytes, "
                                     f"more than the {budget:,} a {meta['params']['classifier']}"
                                     " model of this size needs; not a file ffeat wrote")
            expected = str(_member(zf, members.pop("checksum.npy"), _MAX_HEADER, path))
            arrays = {_array_name(name): _member(zf, info, budget + _MAX_HEADER, path)
                      for name, info in members.items()}
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile and numpy raise many kinds on damage
        raise ModelFileError(f"{path}: the model file is damaged or was modified after it "
                             f"was saved ({type(exc).__name__}: {exc}); retrain or restore "
                             "the original file") from None
    if _checksum(meta_text, {k if k.startswith(_CALIBRATION) else f"model/{k}": v
                             for k, v in arrays.items()}) != expected:
        raise ModelFileError(f"{path}: the file was modified or damaged after it was saved "
                             "(checksum mismatch); retrain or restore the original file")
    return meta, arrays, kind, cls


def _array_name(member: str) -> str:
    """An array's key from its member name: a model array's without ``model/`` (what
    the model class reads), a calibration array's with its ``calibration/`` prefix."""
    name = member[:-len(".npy")]
    return name if name.startswith(_CALIBRATION) else name[len("model/"):]


def _calibration(params: dict, arrays: dict[str, np.ndarray], path: Path):
    """The saved calibration (None in a file without one), its arrays popped from
    ``arrays``; :class:`ModelFileError` naming what is wrong."""
    saved = {k: arrays.pop(k) for k in [k for k in arrays if k.startswith(_CALIBRATION)]}
    kind = params.get("calibration")
    if not saved:
        if kind is not None:
            raise ModelFileError(f"{path}: the model names calibration {kind!r} but holds "
                                 "no calibration arrays; retrain or restore the original file")
        return None
    try:
        return Calibration.from_arrays(kind, saved)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}; retrain with ffeat {__version__} or restore "
                             "the original file") from None


def _meta(meta_text: str, path: Path) -> dict:
    """The metadata of a model file, refused unless ffeat of this version and format wrote it."""
    try:
        meta = json.loads(meta_text)
    except (json.JSONDecodeError, RecursionError):
        raise ModelFileError(f"{path}: corrupt model metadata (not JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an ffeat detector file")
    saved_by = str(meta.get("ffeat_version", "?"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format {meta.get('format_version')} (written by "
                             f"ffeat {saved_by}); ffeat {__version__} reads format "
                             f"{FORMAT_VERSION}; retrain or use a matching ffeat")
    if _minor(saved_by) != _minor(__version__):
        raise ModelFileError(f"{path}: trained with ffeat {saved_by}, whose features may "
                             f"differ from ffeat {__version__}'s; retrain the model with "
                             f"this version (ffeat train)")
    return meta


def load(cls, source):
    """Read a detector of class ``cls`` (None: the class the file's classifier names in
    :data:`ESTIMATORS`) from ``source``, a path or a binary file object open for reading
    (seekable); :class:`ModelFileError` if unfit."""
    _check_target(source, "load")
    if isinstance(source, (str, os.PathLike)):
        source = path = Path(source)
    else:
        path = Path(str(getattr(source, "name", "<model file object>")))
    meta, arrays, kind, cls = _read(source, path, cls)
    try:
        return _build(cls, meta, arrays, kind, path)
    except (KeyError, TypeError, AttributeError) as exc:  # checksummed, but not our layout
        raise ModelFileError(f"{path}: malformed ffeat model metadata ({type(exc).__name__}: "
                             f"{exc}); write models with Detector.save or ffeat "
                             "train") from None


def load_detector(source=None):
    """Read a model file of either kind: a :class:`~ffeat.Detector` (feature classifiers)
    or a :class:`~ffeat.CnnDetector`, as its metadata says.

    Parameters
    ----------
    source : path or binary file object, optional
        A file written by ``save`` or ``ffeat train``; None: the detector shipped
        with ffeat (as :meth:`ffeat.Detector.default`).

    Returns
    -------
    Detector or CnnDetector

    Raises
    ------
    ffeat.ModelFileError
        As for :meth:`ffeat.Detector.load`.
    """
    if source is None:
        from ._shipped import model_path

        source = model_path()
    return load(None, source)


def _build(cls, meta: dict, arrays: dict[str, np.ndarray], kind, path: Path):
    """The detector that checked metadata and arrays describe."""
    families = families_from(meta["features"], path)
    # no frame or augment saved: native size, no augmentation
    params = {"frame": None, "augment": None, **meta["params"]}
    saved_names = meta["feature_names"]
    if uses_features(params["classifier"]):
        # Counted before the names are built: a configuration of millions of columns
        # is refused without building them (the metadata's own list is bounded).
        if sum(n_columns(f) for f in families) != len(saved_names):
            raise ModelFileError(f"{path}: the saved feature columns do not match what "
                                 f"ffeat {__version__} computes for the same configuration "
                                 "(another count); retrain")
        names = column_names(families)
    else:
        names = []
    if names != saved_names:
        raise ModelFileError(f"{path}: the saved feature columns do not match what ffeat "
                             f"{__version__} computes for the same configuration; retrain")
    threshold = params.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0 <= threshold <= 1:
        raise ModelFileError(f"{path}: the saved threshold {threshold!r} is not a number in "
                             "[0, 1]; retrain or restore the original file")
    if params.get("faces", "off") not in FACE_POLICIES:
        raise ModelFileError(f"{path}: the saved face policy {params['faces']!r} is not one "
                             f"of {', '.join(FACE_POLICIES)}; retrain or restore the original "
                             "file")
    params = {"calibration": None, "band": None, **params}  # files from before calibration
    calibration = _calibration(params, arrays, path)
    try:
        check_frame(params["frame"], "the saved frame")
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: {exc}; retrain or restore the original file") from None
    try:
        model = kind.from_arrays(arrays, len(names))
    except KeyError as exc:
        raise ModelFileError(f"{path}: model array {exc} is missing") from None
    except ValueError as exc:  # arrays unlike what the model saves; a CNN this version lacks
        raise ModelFileError(f"{path}: {exc}; retrain with ffeat {__version__} or restore "
                             "the original file") from None
    kwargs = {"features": families, **params}
    if uses_features(params["classifier"]):
        kwargs["reading"] = Reading(faces=kwargs.pop("faces", "off"), frame=kwargs.pop("frame"))
    if hasattr(cls, "_parameter_constraints"):  # an estimator: of what ffeat saves, what
        # it takes (a file from before CnnDetector holds both kinds'); others are refused
        kwargs = {k: v for k, v in kwargs.items()
                  if k in cls._parameter_constraints or k not in {"features", *_PARAMS}}
    try:
        detector = cls(**kwargs)
    except ValueError as exc:
        raise ModelFileError(f"{path}: malformed ffeat model parameters ({exc})") from None
    detector.model_ = model
    detector.classes_ = np.array([0, 1])
    if uses_features(params["classifier"]):
        detector.feature_names_ = names
        detector.calibration_ = calibration
    detector.training_ = _training(meta.get("training", {}), path)
    detector.errors_ = []
    return detector


#: Keys of a saved training record and the type each must have when present (counts are
#: non-negative integers); other keys are kept as saved.
_TRAINING = {"n_real": "count", "n_fake": "count", "n_errors": "count", "n_rows": "count",
             "n_augment_errors": "count", "n_validation": "count", "epochs_run": "count",
             "best_epoch": "count", "augment": "names", "data": str, "seconds": "number",
             "history": list}


def _training(record: object, path: Path) -> dict:
    """A saved ``training_`` record, checked: what readers print (``ffeat model``, the
    report, the card) must have its type; :class:`ModelFileError` naming the key."""
    if not isinstance(record, dict):
        raise ModelFileError(f"{path}: malformed training record ({type(record).__name__}, "
                             "not an object); retrain or restore the original file")
    for key, kind in _TRAINING.items():
        if key not in record or (key == "augment" and record[key] is None):
            continue
        value = record[key]
        ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 0
              if kind == "count" else
              isinstance(value, list) and all(isinstance(v, str) for v in value)
              if kind == "names" else
              isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value) if kind == "number" else isinstance(value, kind))
        if not ok:
            raise ModelFileError(f"{path}: malformed training record: {key} is "
                                 f"{str(value)[:60]!r}; retrain or restore the original file")
    return record
