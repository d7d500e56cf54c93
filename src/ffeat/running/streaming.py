"""Large runs: features and predictions streamed to disk shard by shard, resumably,
in this process or on a dask cluster.

Inputs are listed lazily in a fixed order (folders sorted) and cut into shards
of ``shard_size``; each shard is computed, written and recorded in a manifest
before the next is needed, so memory stays bounded whatever the number of
images, and a rerun after an interruption skips the shards already written. The
output is the same byte for byte whether the run was in one process, resumed,
or spread over dask workers.

A rerun trusts nothing it finds: every finished shard (a feature file, or a
shard's region of the CSV file) is checked against the SHA-256 its manifest
records before it is skipped, and a shard that fails the check is computed and
written again (for the CSV, the file is cut back to the end of the last intact
region). While a run writes an output it holds a lock on it (``DIR/.lock``,
``FILE.csv.lock``): a second run on the same output is refused at once.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import itertools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._version import __version__
from ..extraction import DEFAULT_FEATURES, Extraction, extract_items
from ..features import column_names, describe_features, resolve_features
from ..models._persist import families_from, load_detector
from ..models._predictions import csv_cells, csv_columns, expert_cells, expert_columns, \
    prediction_rows
from ..models._scoring import expert_names, score_items
from ..reading import NATIVE, Reading, as_reading
from ..reading._sources import Item, iter_inputs
from ._atomic import remove_stale_temps
from ._featurefile import load_extraction, save_extraction
from ._lock import locked
from ._manifest import Manifest, ResumeError, read_record
from ._shardrun import LocalExecutor, RunSummary, run_shards

if TYPE_CHECKING:  # imported where used: ffeat predict starts without scikit-learn
    from .._base import ImageClassifier

__all__ = ["extract_to", "predict_to", "read_features", "RunSummary", "ResumeError",
           "DEFAULT_SHARD_SIZE"]

#: Inputs per shard when none is given.
DEFAULT_SHARD_SIZE = 4096
#: Most inputs per shard (a shard's rows and records are held in memory at once).
MAX_SHARD_SIZE = 1 << 20
#: Name of the manifest in a folder of feature shards.
MANIFEST = "manifest.json"
#: The files ffeat writes in a folder of shards (their temporary files are swept).
_SHARD_TARGETS = re.compile(r"shard-\d{5,}\.npz|manifest\.json")


# -- jobs: one shard's items to its payload, wherever the work runs -------------------

class _FeatureJob:
    """Feature rows of a shard, as an :class:`~ffeat.Extraction`."""

    def __init__(self, families, reading: Reading, *, jobs, cache, backend) -> None:
        self.families = families
        self.reading = reading
        self.options = {"jobs": jobs, "cache": cache, "backend": backend}

    def __call__(self, items: list[Item]) -> Extraction:
        return extract_items(items, self.families, self.reading, **self.options)


class _PredictJob:
    """Prediction rows of a shard. Carries the model as its file's bytes (arrays and
    JSON, never a pickled estimator) and loads it once where it runs."""

    def __init__(self, model: bytes, threshold: float, reading: Reading | None, *, jobs,
                 cache, backend) -> None:
        self.model = model
        self.threshold = threshold
        self.options = {"jobs": jobs, "cache": cache, "backend": backend,
                        **({"reading": reading} if reading is not None else {})}

    @functools.cached_property
    def detector(self) -> ImageClassifier:
        return load_detector(io.BytesIO(self.model)).set_run_options(**self.options)

    def __call__(self, items: list[Item]) -> list[dict]:
        return list(prediction_rows(score_items(self.detector, items), self.threshold,
                                    detector=self.detector,
                                    experts=expert_names(self.detector)))


# -- sinks: payloads to files, in this process -----------------------------------------

class _ShardFiles:
    """Feature shards, ``shard-00000.npz`` ... in a folder, written as they finish."""

    in_order = False

    def __init__(self, folder: Path, families) -> None:
        self.folder = folder
        self.families = families

    def present(self, entry: dict) -> bool:
        """Whether the shard's file is there, regular, and has the recorded size and SHA-256
        (a shard failing this is written again)."""
        path = self.folder / entry["file"]
        return path.is_file() and path.stat().st_size == entry["bytes"] \
            and _sha256(path) == entry["sha256"]

    def write(self, index: int, items: list[Item], result: Extraction):
        path = self.folder / f"shard-{index:05d}.npz"
        save_extraction(path, result, self.families)
        written = {"file": path.name, "rows": len(result.sources),
                   "errors": len(result.errors), "bytes": path.stat().st_size,
                   "sha256": _sha256(path)}
        return written, [e.reason for e in result.errors]


class _CsvRows:
    """Prediction rows appended to one CSV file in input order, flushed to disk per
    shard (an expert model's rows with their ``generator`` and ``prob_<expert>`` cells).
    A resumed run keeps the regions of recorded shards whose bytes still have their
    recorded SHA-256 (each region and all before it), cuts the file back to the end of
    the last of them, and writes the shards after it again."""

    in_order = True

    def __init__(self, path: Path, manifest: Manifest, experts: list[str]) -> None:
        self.experts = experts
        self.digest = hashlib.sha256()  # of the bytes written since the last shard
        self.intact: set[int] = set()
        end = _intact_regions(path, manifest.shards, self.intact) if path.exists() else 0
        self.fh = open(path, "r+b" if end else "wb")  # noqa: SIM115 - closed by close()
        if end:
            self.fh.truncate(end)
            self.fh.seek(end)
        else:
            self._append([csv_columns(expert_columns(experts))])

    def _append(self, lines) -> None:
        text = io.StringIO()
        csv.writer(text).writerows(lines)
        data = text.getvalue().encode("utf-8", "surrogateescape")
        self.fh.write(data)
        self.digest.update(data)
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def present(self, entry: dict) -> bool:
        return entry["index"] in self.intact  # checked on opening

    def write(self, index: int, items: list[Item], rows: list[dict]):
        self._append(csv_cells(r, extra=expert_cells(r, self.experts)) for r in rows)
        reasons = [r["error"] for r in rows if r["error"] is not None]
        written = {"rows": len(rows) - len(reasons), "errors": len(reasons),
                   "end": self.fh.tell(), "sha256": self.digest.hexdigest()}
        self.digest = hashlib.sha256()
        return written, reasons

    def close(self) -> None:
        self.fh.close()


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _intact_regions(path: Path, shards: dict[int, dict], intact: set[int]) -> int:
    """Add to ``intact`` the shards ``0, 1, ...`` whose regions of the CSV file at ``path``
    (from the previous shard's end, or the start of the file, to theirs) still have the
    recorded SHA-256, up to the first that does not; returns the end of the last."""
    start = 0
    with open(path, "rb") as fh:
        for index in itertools.count():
            entry = shards.get(index)
            if entry is None or entry["end"] <= start:
                return start
            digest, left = hashlib.sha256(), entry["end"] - start
            while left > 0:
                block = fh.read(min(left, 1 << 20))
                if not block:
                    return start  # the file is shorter than recorded
                digest.update(block)
                left -= len(block)
            if digest.hexdigest() != entry["sha256"]:
                return start
            intact.add(index)
            start = entry["end"]


# -- running ----------------------------------------------------------------------------

def _executor(job, scheduler, workers: int):
    """In this process (``scheduler=None``), or on dask (see
    :class:`~ffeat.running._dask.DaskExecutor`)."""
    if scheduler is None:
        return contextlib.nullcontext(LocalExecutor(job))
    from ._dask import DaskExecutor
    return DaskExecutor(job, scheduler, workers)


def _check_shard_size(shard_size: int) -> None:
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer, got {shard_size!r}")
    if shard_size > MAX_SHARD_SIZE:
        raise ValueError(f"shard_size must be at most {MAX_SHARD_SIZE:,} (a shard's rows "
                         f"are held in memory), got {shard_size}")


def extract_to(images, output, features=DEFAULT_FEATURES, *,
               shard_size: int = DEFAULT_SHARD_SIZE, scheduler=None, workers: int = 2,
               reading: Reading | None = None, jobs: int | None = None,
               progress: bool | None = False, cache=False,
               backend: str = "cpu") -> RunSummary:
    """Compute features of any number of images into a folder of shards.

    Writes ``output/shard-00000.npz``, ... (each a features file as written by
    ``ffeat extract -o FILE.npz``, for ``shard_size`` consecutive inputs) and
    ``output/manifest.json``. Rerunning with the same inputs and features
    skips the shards already written and completes the rest.

    Parameters
    ----------
    images : path, folder, or an iterable of paths, folders or in-memory images
        As for :func:`ffeat.extract`; folders are listed lazily, in sorted order.
    output : path
        The folder of shards (created; an existing one must be empty or hold
        an earlier run of the same extraction).
    features : str, family object, or sequence of those, optional
        As for :func:`ffeat.extract`.
    shard_size : int, optional
        Inputs per shard; part of the configuration a resumed run must match.
    scheduler : None, "local", str or distributed.Client, optional
        ``None`` computes in this process on ``jobs`` threads; ``"local"``
        starts a dask LocalCluster of ``workers`` processes; an address
        (``"tcp://host:8786"``) or a ``Client`` uses that cluster. Needs
        ``pip install "ffeat[dask]"``.
    workers : int, optional
        Worker processes of ``scheduler="local"``.
    reading, jobs, progress, cache, backend
        As for :func:`ffeat.extract` (on dask, each task runs on one thread).

    Returns
    -------
    RunSummary
        Counts, failure reasons and rate; the rows and errors are in the shards
        (read them back with :func:`read_features`).

    Raises
    ------
    ResumeError
        When ``output`` holds another extraction or was made from other inputs.
    ffeat.running._lock.OutputLockedError
        When another run is writing ``output`` now.
    ImportError
        When ``scheduler`` is given and dask.distributed is not installed.
    """
    _check_shard_size(shard_size)
    reading = as_reading(reading)
    families = resolve_features(features)
    folder = Path(output)
    config = {"features": describe_features(families), "ffeat": __version__,
              "max_pixels": reading.max_pixels, "min_size": reading.min_size,
              "shard_size": shard_size,
              **({"faces": reading.faces} if reading.faces != "off" else {}),  # earlier
              **({"frame": reading.frame} if reading.frame is not None else {})}  # runs resume
    if folder.exists() and not folder.is_dir():
        raise ResumeError(f"{folder} exists and is not a folder; the shards need a folder")
    if folder.is_dir() and not (folder / MANIFEST).exists() \
            and any(p.name != ".lock" for p in folder.iterdir()):
        raise ResumeError(f"{folder} is not empty and holds no {MANIFEST}; give a new or "
                          "empty folder for the shards")
    folder.mkdir(exist_ok=True)
    job = _FeatureJob(families, reading, jobs=1 if scheduler is not None else jobs,
                      cache=cache, backend=backend)
    with locked(folder), _executor(job, scheduler, workers) as executor:
        manifest = Manifest.open(folder / MANIFEST, "features", config)
        # Accepted and locked: clear what killed writes of its shards left.
        remove_stale_temps(folder, targets=_SHARD_TARGETS)
        return run_shards(iter_inputs(images), shard_size=shard_size,
                          sink=_ShardFiles(folder, families), manifest=manifest,
                          executor=executor, progress=progress, label="ffeat extract",
                          output=str(folder))


def _model_file(model) -> tuple[ImageClassifier, bytes]:
    """A fitted detector (either kind) and its saved file's bytes, from either."""
    from .._base import ImageClassifier

    if not isinstance(model, ImageClassifier):
        return load_detector(model), Path(model).read_bytes()
    buffer = io.BytesIO()
    model.save(buffer)
    return model, buffer.getvalue()


def predict_to(model, images, output, *, threshold: float | None = None,
               shard_size: int = DEFAULT_SHARD_SIZE, scheduler=None, workers: int = 2,
               jobs: int | None = None, progress: bool | None = False, cache=False,
               backend: str = "cpu", reading: Reading | None = None) -> RunSummary:
    """Score any number of images into a CSV file, shard by shard.

    Writes ``output`` (columns ``path, prob_fake, label, x, y, w, h, faces, quad``,
    for an expert model ``generator`` and ``prob_<expert>`` per expert, then ``error,
    path_escaped``; one row per input in input order, as ``ffeat predict --format
    csv`` prints them) and
    ``output.manifest.json`` beside it. Rows are appended and flushed to disk
    shard by shard; rerunning with the same model and inputs continues after
    the last shard written.

    Parameters
    ----------
    model : Detector, CnnDetector or path
        A fitted detector or a model file written by its ``save``. It
        travels to dask workers as the saved file's bytes.
    images : path, folder, or an iterable of those or of in-memory images
        As for :func:`extract_to`.
    output : path
        The CSV file (its folder must exist).
    threshold : float, optional
        Probability of fake at and above which the label is ``fake`` (default:
        the model's).
    shard_size, scheduler, workers, jobs, progress, cache, backend
        As for :func:`extract_to`.
    reading : Reading, optional
        How images become pixels (default: the model's own; a feature detector
        only, the CNN reads whole images).

    Returns
    -------
    RunSummary

    Raises
    ------
    ResumeError
        When ``output`` exists without its manifest, or was made with another
        model, threshold or inputs.
    ffeat.running._lock.OutputLockedError
        When another run is writing ``output`` now.
    ffeat.ModelFileError
        When ``model`` is a path that cannot be loaded.
    ImportError
        When ``scheduler`` is given and dask.distributed is not installed.
    """
    _check_shard_size(shard_size)
    detector, model_bytes = _model_file(model)
    threshold = detector.threshold if threshold is None else float(threshold)
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    if reading is not None:
        as_reading(reading)
    faces = (reading or getattr(detector, "reading", NATIVE)).faces  # the CNN: "off"
    experts = expert_names(detector) or []
    path = Path(output)
    manifest_path = path.with_name(path.name + ".manifest.json")
    config = {"model_sha256": hashlib.sha256(model_bytes).hexdigest(), "threshold": threshold,
              "ffeat": __version__, "shard_size": shard_size, "faces": faces,
              "columns": csv_columns(expert_columns(experts))}  # others are not continued
    job = _PredictJob(model_bytes, threshold, reading,
                      jobs=1 if scheduler is not None else jobs, cache=cache, backend=backend)
    with locked(path):
        if path.exists() and not path.is_file():
            raise ResumeError(f"{path} exists and is not a regular file; choose another "
                              "output")
        if path.exists() and not manifest_path.exists():
            raise ResumeError(f"{path} exists and has no {manifest_path.name} beside it (it "
                              "was not written by a sharded ffeat predict); choose another "
                              "output")
        manifest = Manifest.open(manifest_path, "predictions", config)
        with _executor(job, scheduler, workers) as executor, \
                contextlib.closing(_CsvRows(path, manifest, experts)) as sink:
            return run_shards(iter_inputs(images), shard_size=shard_size, sink=sink,
                              manifest=manifest, executor=executor, progress=progress,
                              label="ffeat predict", output=str(path))


def read_features(path) -> Extraction:
    """The features of ``ffeat extract``: a ``.npz`` file, or a complete folder of shards.

    Shards are concatenated in input order: rows, paths, labels and errors
    come out as :func:`ffeat.extract` returns them for the same inputs. Every
    shard is read into memory: this is for outputs that fit.

    Raises
    ------
    ValueError
        When ``path`` is neither, or the folder's run is not complete (rerun
        the same command to finish it).
    """
    folder = Path(path)
    if not folder.is_dir():
        return load_extraction(folder)
    if not (folder / MANIFEST).is_file():
        raise ValueError(f"{folder}: not a folder of feature shards (no {MANIFEST})")
    record = read_record(folder / MANIFEST, "features")
    if not record["complete"]:
        raise ValueError(f"{folder}: the run that writes these shards has not finished; "
                         "rerun the same command to complete it")
    shards = [record["shards"][i] for i in sorted(record["shards"])]
    if [s["index"] for s in shards] != list(range(len(shards))):
        raise ValueError(f"{folder / MANIFEST}: the shards listed are not 0 to "
                         f"{len(shards) - 1}; rerun the same command to complete them")
    changed = [s["file"] for s in shards if not (folder / s["file"]).is_file()
               or _sha256(folder / s["file"]) != s["sha256"]]
    if changed:
        raise ValueError(f"{folder}: {', '.join(changed)} missing or changed since written "
                         f"(SHA-256 differs from {MANIFEST}); rerun the same command to compute "
                         "them again")
    names = column_names(families_from(record["config"].get("features") or [], folder))
    parts = [load_extraction(folder / s["file"]) for s in shards]
    return Extraction(np.concatenate([p.X for p in parts] or [np.empty((0, len(names)))])
                      .astype(np.float32, copy=False), names,
                      [s for p in parts for s in p.sources],
                      np.concatenate([p.labels for p in parts] or [[]]).astype(np.int8),
                      [e for p in parts for e in p.errors])
