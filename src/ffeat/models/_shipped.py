"""The detector shipped inside the package, and model cards.

``ffeat/models/default.model`` is installed with the package (package data,
found through :mod:`importlib.resources`; ffeat holds compiled modules, so it is
always installed as files). ``benchmarks/train_default.py`` writes it and its
card, ``default.card.json`` beside it: what the model file cannot say about
itself (the training sources and their counts, the protocol's figures,
calibration, the inconclusive band, known blind spots, the terms).

A card is a file ffeat trusts, so it is checked when read: at most
:data:`MAX_CARD_BYTES`, JSON of the layout :data:`_SCHEMA` describes (no other
keys, every value of its type, figures in [0, 1], strings and lists bounded),
its own ``checksum`` (a SHA-256 over the rest: a card edited after it was
written is refused; like the model's, it guards against accidents, not against
someone who rewrites it on purpose), the SHA-256 of the model file beside it, a
``detector`` section equal to what the model's own metadata says
(:func:`summary`), source counts that add up to the model's training counts, and
(for an expert detector) experts with the model's names and fakes each. Any model ``NAME.model``
may have a card ``NAME.card.json``; a model without one is described by its
metadata alone.
"""
from __future__ import annotations

import hashlib
import json
import math
from importlib.resources import files
from pathlib import Path

__all__ = ["MODEL_NAME", "CARD_SUFFIX", "MAX_CARD_BYTES", "CARD_FORMAT", "ModelCardError",
           "model_path", "card_path", "file_sha256", "summary", "seal_card", "read_card",
           "check_card"]

#: File name of the shipped model inside ``ffeat/models``.
MODEL_NAME = "default.model"
#: What replaces a model file's suffix to name its card.
CARD_SUFFIX = ".card.json"
#: Largest card read (a card is a few kilobytes).
MAX_CARD_BYTES = 256 << 10
CARD_FORMAT = "ffeat-model-card"
_CARD_VERSION = 1
#: Longest string and list a card may hold.
_MAX_TEXT = 4000
_MAX_ITEMS = 1000
#: Parameters a model summary leaves out: how a run reads images, not what the model is.
_RUN_OPTIONS = ("jobs", "cache", "backend", "features", "classifier", "threshold")


class ModelCardError(ValueError):
    """A model card that ffeat refuses to show; the message names the file and why."""


def model_path() -> Path:
    """The shipped model file (it may be missing from a damaged installation: loading it
    then raises :class:`~ffeat.ModelFileError` naming the path)."""
    return Path(files(__package__).joinpath(MODEL_NAME))


def card_path(model) -> Path:
    """Where the card of the model file ``model`` lies: ``NAME.model`` -> ``NAME.card.json``."""
    return Path(model).with_suffix(CARD_SUFFIX)


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def summary(detector) -> dict:
    """What a fitted or loaded detector's metadata says, as plain JSON values.

    Parameters
    ----------
    detector : Detector or CnnDetector

    Returns
    -------
    dict
        ``classifier``, ``features`` (each family's configuration), ``n_columns``,
        ``threshold``, ``params`` (the other saved parameters, run options left
        out) and ``training`` (the ``training_`` record: counts, augmentation,
        data).
    """
    from ..features import describe_features, resolve_features

    params = detector.get_params()
    if (reading := params.pop("reading", None)) is not None:  # as a model file records it
        params.update(faces=reading.faces, frame=reading.frame)
    features = params.get("features") or ()
    described = {
        "classifier": getattr(detector, "classifier", "cnn"),
        "features": describe_features(resolve_features(features)) if features else [],
        "n_columns": len(getattr(detector, "feature_names_", [])),
        "threshold": detector.threshold,
        "params": {k: v for k, v in sorted(params.items()) if k not in _RUN_OPTIONS},
        "training": detector.training_,
    }
    return json.loads(json.dumps(described))  # tuples as lists: as a card holds it


# -- the card's layout -----------------------------------------------------------------------

class _Map:
    """Spec of an object with any (short) keys, each value of ``spec``."""

    def __init__(self, spec) -> None:
        self.spec = spec


#: A figure: a number in [0, 1].
_FIGURE = "figure"
#: Any finite number.
_NUMBER = "number"
#: A non-negative integer count.
_COUNT = "count"
_LABEL = ("real", "fake")
#: The card's layout: a dict is an object (keys ending in ``?`` optional), a list an
#: array of its one element's spec, a tuple the allowed values, ``dict`` any object
#: (checked otherwise), ``str``, ``_FIGURE``, ``_NUMBER`` or ``_COUNT`` a value of that kind.
_SCHEMA = {
    "format": (CARD_FORMAT,),
    "format_version": (_CARD_VERSION,),
    "checksum": str,
    "model_sha256": str,
    "detector": dict,  # equal to the model's summary(), checked apart
    "sources": [{"name": str, "label": _LABEL, "family?": str, "count": _COUNT}],
    "experts?": [{"name": str, "sources": [str], "count": _COUNT}],
    "protocol?": {
        "per_source": [{"source": str, "label": _LABEL, "n?": _COUNT, "no_score?": _COUNT,
                        "recall?": _FIGURE, "fpr?": _FIGURE, "called_fake?": _FIGURE,
                        "auc?": _FIGURE, "attribution?": _FIGURE, "loso_recall?": _FIGURE,
                        "controls?": _Map(_FIGURE)}],
        "summary?": _Map(_NUMBER),
        "note?": str,
    },
    "calibration?": {"method?": str, "figures?": _Map(_FIGURE), "note?": str},
    "band?": {"low": _FIGURE, "high": _FIGURE, "rule?": str},
    "blind_spots": [str],
    "terms": str,
}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _check(value, spec, where: str) -> None:
    """Raise ValueError naming ``where`` unless ``value`` has the layout ``spec``."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{where} is not an object")
        keys = {k.rstrip("?"): k for k in spec}
        unknown = sorted(set(value) - set(keys))
        if unknown:
            raise ValueError(f"{where} holds the unknown key {unknown[0]!r}")
        for key, spec_key in keys.items():
            if key in value:
                _check(value[key], spec[spec_key], f"{where}.{key}")
            elif not spec_key.endswith("?"):
                raise ValueError(f"{where} lacks the key {key!r}")
    elif isinstance(spec, _Map):
        if not isinstance(value, dict) or len(value) > _MAX_ITEMS:
            raise ValueError(f"{where} is not an object of at most {_MAX_ITEMS} keys")
        for key, item in value.items():
            _check(key, str, f"{where} key")
            _check(item, spec.spec, f"{where}.{key}")
    elif isinstance(spec, list):
        if not isinstance(value, list) or len(value) > _MAX_ITEMS:
            raise ValueError(f"{where} is not a list of at most {_MAX_ITEMS} items")
        for i, item in enumerate(value):
            _check(item, spec[0], f"{where}[{i}]")
    elif isinstance(spec, tuple):
        if value not in spec or isinstance(value, bool):
            raise ValueError(f"{where} is {value!r}, not one of {', '.join(map(repr, spec))}")
    elif spec is str:
        if not isinstance(value, str) or len(value) > _MAX_TEXT:
            raise ValueError(f"{where} is not a string of at most {_MAX_TEXT} characters")
    elif spec is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where} is not an object")
    elif spec == _FIGURE:
        if not _is_number(value) or not 0 <= value <= 1:
            raise ValueError(f"{where} is {value!r}, not a number in [0, 1]")
    elif spec == _NUMBER:
        if not _is_number(value):
            raise ValueError(f"{where} is {value!r}, not a finite number")
    elif not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise ValueError(f"{where} is {value!r}, not a count (an integer >= 0)")


def _card_checksum(card: dict) -> str:
    content = {k: v for k, v in card.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def seal_card(card: dict) -> dict:
    """``card`` with its ``checksum`` (over everything else) set, as it is written."""
    return {**card, "checksum": _card_checksum(card)}


def check_card(card, detector, model_sha256: str) -> None:
    """Raise ValueError unless ``card`` has the card layout, its checksum, and describes
    the model whose loaded ``detector`` and file SHA-256 are given (what
    :func:`read_card` checks after parsing; ``benchmarks/train_default.py`` checks
    what it writes)."""
    _check(card, _SCHEMA, "the card")
    if card["checksum"] != _card_checksum(card):
        raise ValueError("it was modified after it was written (checksum mismatch)")
    if card["model_sha256"] != model_sha256:
        raise ValueError("it was written for another model file (model_sha256 differs)")
    if card["detector"] != summary(detector):
        raise ValueError("its detector section differs from what the model file says")
    training = card["detector"]["training"]
    for label in _LABEL:
        counted = sum(s["count"] for s in card["sources"] if s["label"] == label)
        if counted != training.get(f"n_{label}"):
            raise ValueError(f"its sources hold {counted} {label} images, the model was "
                             f"trained on {training.get(f'n_{label}')}")
    experts = {e["name"]: e["count"] for e in card.get("experts", [])}
    if experts != (training.get("generators") or {}):
        raise ValueError("its experts differ from the model's (names or fakes each)")


def read_card(model, detector) -> dict | None:
    """The checked card of the model file ``model`` (loaded as ``detector``), or None
    when it has none.

    Raises
    ------
    ModelCardError
        Naming the card and why it is refused (too large, not JSON, another
        layout, written for another model file), and what to do.
    """
    from ..reading.loading import open_regular

    path = card_path(model)
    if not path.is_file():
        return None
    try:
        with open_regular(path) as fh:  # never waits on a FIFO swapped in
            text = fh.read(MAX_CARD_BYTES + 1)
        if len(text) > MAX_CARD_BYTES:
            raise ValueError(f"it is larger than the {MAX_CARD_BYTES:,} bytes a card may take")
        try:
            card = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise ValueError("it is not JSON") from None
        check_card(card, detector, file_sha256(model))
    except (OSError, ValueError) as exc:
        raise ModelCardError(f"{path}: model card refused: {exc}; restore it (reinstall ffeat "
                             "for the shipped model) or regenerate it with "
                             "benchmarks/train_default.py") from None
    return card
