"""Labelled datasets: class folders at any depth, other folder names, CSV manifests, and
the source (top-level subfolder or manifest column) of each image."""
from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import check_images
from ._sources import CLASS_FOLDERS, IMAGE_EXTENSIONS, scan_folder
from .loading import file_kind

__all__ = ["Dataset", "load_dataset", "describe_data", "labelled_images", "labelled_data"]

_LABEL_WORDS = {"real": 0, "fake": 1, "0": 0, "1": 1}
_PATH_COLUMNS = ("path", "filepath", "file", "filename", "image", "image_path", "images_id",
                 "image_id", "id")
_LABEL_COLUMNS = ("label", "class", "target", "is_fake", "fake")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Image paths, their labels (1 = fake, 0 = real) and, where the data holds several
    sources, the source of each.

    It unpacks as the pair it was before sources were recorded:
    ``paths, labels = dataset``.

    Attributes
    ----------
    paths : list of str
    labels : ndarray of int8
    sources : list of str or None
        Per image, where it comes from: its top-level subfolder of a dataset
        folder (``faces/sdfd/fake/1.jpg``: ``sdfd``), or a manifest's source
        column; None when the data holds a single source.
    """

    paths: list[str]
    labels: np.ndarray
    sources: list[str] | None = None

    def __post_init__(self) -> None:
        if self.sources is not None and len(self.sources) != len(self.paths):
            raise ValueError(f"sources holds {len(self.sources)} names for {len(self.paths)} "
                             "paths; give one source per path, or None")

    def __iter__(self) -> Iterator:
        """``paths`` then ``labels``, so ``paths, labels = dataset`` works."""
        return iter((self.paths, self.labels))

    def counts(self) -> tuple[int, int]:
        """``(n_real, n_fake)``."""
        return int((self.labels == 0).sum()), int((self.labels == 1).sum())


def _class_map(classes: Mapping | None) -> dict[str, int]:
    """Folder or label names (lower case) to 0/1, from ``{name: "real"|"fake"|0|1}``."""
    if classes is None:
        return dict(CLASS_FOLDERS)
    mapping = {}
    for name, value in classes.items():
        label = _LABEL_WORDS.get(str(value).strip().lower())
        if label is None:
            raise ValueError(f"class {name!r} maps to {value!r}; map every name to "
                             "'real' (0) or 'fake' (1)")
        mapping[str(name).lower()] = label
    if set(mapping.values()) != {0, 1}:
        raise ValueError(f"classes {dict(classes)} must name at least one real and one "
                         "fake class")
    return mapping


def _check_both_classes(labels: np.ndarray, where: str, names: Mapping[str, int]) -> None:
    for label, word in ((0, "real"), (1, "fake")):
        if not (labels == label).any():
            folders = ", ".join(repr(n) for n, v in names.items() if v == label)
            raise ValueError(f"{where} has no {word} images (looked for {folders}); give "
                             f"classes= (on the command line --classes NAME={word}) when "
                             "the folders or labels are named otherwise")


def _several(sources: list[str | None]) -> list[str] | None:
    """``sources`` when every image has one and there are at least two, else None."""
    if None in sources or len(set(sources)) < 2:
        return None
    return sources


def _from_folder(root: Path, names: dict[str, int]) -> Dataset:
    files, unreadable = scan_folder(root)
    if unreadable:
        raise ValueError(f"cannot list {unreadable[0].name}: {unreadable[0].error}")
    paths, labels, sources = [], [], []
    top = len(root.parts)  # where a file's top-level subfolder sits in its parts
    for f in files:
        for depth in range(len(f.parts) - 2, -1, -1):  # the deepest class folder wins
            label = names.get(f.parts[depth].lower())
            if label is not None:
                paths.append(os.fspath(f))
                labels.append(label)
                # A source is a top-level subfolder holding class folders, not one itself.
                sources.append(f.parts[top] if depth > top else None)
                break
    labels = np.array(labels, dtype=np.int8)
    if not files:
        raise ValueError(f"{root} holds no image files (looked for "
                         f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
    _check_both_classes(labels, str(root), names)
    return Dataset(paths, labels, _several(sources))


def _pick_column(header: list[str], wanted, given: str | None, what: str, source) -> str:
    if given is not None:
        if given not in header:
            raise ValueError(f"{source}: no column {given!r}; columns are {header}")
        return given
    lowered = {h.strip().lower(): h for h in header}
    for name in wanted:
        if name in lowered:
            return lowered[name]
    raise ValueError(f"{source}: no {what} column found among {header}; expected one of "
                     f"{', '.join(wanted)} (or name it with {what}_column=)")


def _resolve_row_path(base: Path, value: str, label_word: str, label: int) -> Path | None:
    """The file a manifest row names: relative to the manifest, or inside a folder
    named after its label (as written, in lower case, or the class word ``real``/``fake``
    for labels such as 0/1); without an extension, the first image extension that exists."""
    folders = dict.fromkeys([base, base / label_word, base / label_word.lower(),
                             base / ("fake" if label else "real")])
    for folder in folders:
        candidate = folder / value
        if _names_a_file(candidate):
            return candidate
        if not candidate.suffix:
            for ext in sorted(IMAGE_EXTENSIONS):
                if _names_a_file(candidate.with_suffix(ext)):
                    return candidate.with_suffix(ext)
    return None


def _names_a_file(path: Path) -> bool:
    """Anything but a folder: a file, a FIFO, socket or device, or a symbolic link even
    when broken or looping: reading it then gives an error record naming what it is,
    not a missing manifest row."""
    try:
        return os.path.lexists(path) and not path.is_dir()
    except (OSError, ValueError):  # a NUL byte in the name: an error record when read
        return False


def _source_column(header: list[str], given: str | None, source) -> str | None:
    """The manifest's source column: ``given``, else one named ``source`` (any case), else
    None."""
    if given is not None:
        return _pick_column(header, (), given, "source", source)
    return {h.strip().lower(): h for h in header}.get("source")


def _from_manifest(manifest: Path, names: dict[str, int], path_column: str | None,
                   label_column: str | None, source_column: str | None) -> Dataset:
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as fh:  # BOM of Excel
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read manifest {manifest}: {exc}") from None
    if not rows:
        raise ValueError(f"manifest {manifest} has no rows")
    pcol = _pick_column(header, _PATH_COLUMNS, path_column, "path", manifest)
    lcol = _pick_column(header, _LABEL_COLUMNS, label_column, "label", manifest)
    scol = _source_column(header, source_column, manifest)
    if scol is not None and (blank := [i for i, r in enumerate(rows, 2)
                                       if not (r[scol] or "").strip()]):
        raise ValueError(f"manifest {manifest}: {len(blank)} rows have no source in column "
                         f"{scol!r} (e.g. line {blank[0]}); name every row's source, or "
                         "leave the column out")
    words = {**_LABEL_WORDS, **names}
    unknown = sorted({r[lcol].strip() for r in rows if r[lcol].strip().lower() not in words})
    if unknown:
        raise ValueError(f"manifest {manifest}: unknown label values {unknown[:10]} in column "
                         f"{lcol!r}; labels must be real/fake or 0/1, or be mapped with "
                         "classes= (--classes NAME=real)")
    paths, labels, sources, missing = [], [], [], []
    for r in rows:
        label = words[r[lcol].strip().lower()]
        found = _resolve_row_path(manifest.parent, r[pcol].strip(), r[lcol].strip(),
                                  label)
        if found is None:
            missing.append(r[pcol])
            continue
        paths.append(os.fspath(found))
        labels.append(label)
        sources.append(r[scol].strip() if scol is not None else None)
    if missing:
        raise ValueError(f"manifest {manifest}: {len(missing)} of {len(rows)} files not found "
                         f"(e.g. {', '.join(missing[:3])}); paths are read relative to the "
                         "manifest's folder or a folder named after the label (or real/, "
                         "fake/)")
    labels = np.array(labels, dtype=np.int8)
    _check_both_classes(labels, f"manifest {manifest}", {"real": 0, "fake": 1})
    return Dataset(paths, labels, _several(sources))


def load_dataset(root, classes: Mapping | None = None, *, path_column: str | None = None,
                 label_column: str | None = None,
                 source_column: str | None = None) -> Dataset:
    """List the labelled images of a dataset without reading them.

    Parameters
    ----------
    root : path
        A folder whose images sit below class folders at any depth
        (``real/``, ``fake/``, ``train/real/``, ``valid/fake/``...; the deepest
        class folder on the path as given wins, so ``data/real`` itself is real;
        images outside class folders are left out),
        or a CSV manifest with a path and a label column.
    classes : mapping, optional
        Other class names: ``{"ffhq": "real", "stylegan2": "fake"}`` (values
        ``"real"``/``"fake"`` or 0/1). For folders they replace ``real``/``fake``;
        for a manifest they add label values.
    path_column, label_column : str, optional
        Manifest columns; by default the first of ``path, filepath, file,
        filename, image, image_path, images_id, image_id, id`` and of ``label,
        class, target, is_fake, fake`` present (any case). Paths are relative to
        the manifest's folder or to a folder named after the row's label (or
        ``real``/``fake`` for its class, so 0/1 labels find ``real/`` and
        ``fake/``); a path without an extension takes the first image extension
        that exists.
    source_column : str, optional
        Manifest column naming each row's source (generator, camera set...); by
        default a column named ``source`` (any case), if there is one.

    Returns
    -------
    Dataset
        ``paths`` and ``labels``, sorted by path for folders, in row order for
        manifests; ``sources`` when the data holds at least two: the top-level
        subfolders of a folder whose class folders all lie below one
        (``faces/140k/real``, ``faces/sdfd/fake``), or the source column's values.

    Raises
    ------
    ValueError
        When the root is missing, a class is empty, a label value is unknown,
        or manifest files are missing; the message says which and what to do.
    """
    root = Path(root)
    names = _class_map(classes)
    if root.is_dir():
        return _from_folder(root, names)
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise ValueError(f"{root} is a file but not a CSV manifest; give a folder with "
                             "real/ and fake/ images, or a .csv with path and label columns")
        return _from_manifest(root, names, path_column, label_column, source_column)
    try:
        mode = os.stat(root).st_mode
    except (OSError, ValueError):
        raise ValueError(f"{root}: no such folder or manifest") from None
    raise ValueError(f"{root} is {file_kind(mode)}, not a folder or a CSV manifest")


def describe_data(data) -> str:
    """Where labelled images come from, in one line, for model metadata and reports.

    A path gives its resolved form; a :class:`Dataset` the folder that holds all
    its files (a symbolic link loop or a dangling link is left as written: it
    fails later as an error record); anything else ``"N in-memory images"``. Two
    descriptions are equal when they name the same place.
    """
    if isinstance(data, (str, os.PathLike)):
        return os.path.realpath(data)  # never raises: a link loop stays as written
    if isinstance(data, Dataset) and data.paths:
        try:
            return os.path.commonpath([os.path.dirname(os.path.realpath(p))
                                       for p in data.paths])
        except ValueError:  # paths on different drives
            pass
    try:
        n = len(data.paths) if isinstance(data, Dataset) else len(data)
    except TypeError:
        return "in-memory images"
    return f"{n} in-memory images"


def labelled_images(data, labels=None, classes: Mapping | None = None, *, name: str = "data"):
    """Images and their 0/1 labels from a dataset path, a Dataset, or images + labels
    (:func:`labelled_data` without the sources)."""
    images, labels, _ = labelled_data(data, labels, classes, name=name)
    return images, labels


def labelled_data(data, labels=None, classes: Mapping | None = None, *, name: str = "data"):
    """Images, their 0/1 labels and their sources from a dataset path, a Dataset, or
    images + labels.

    Parameters
    ----------
    data : path, Dataset, or sequence of images
        A dataset folder or CSV manifest (see :func:`~ffeat.load_dataset`; a path
        is always a dataset, never one image), a :class:`~ffeat.Dataset`, or
        images (a sequence, or a 4-D array batch).
    labels : array-like of {0, 1}, optional
        One per image: needed for a sequence of images, replaces a dataset's own.
    classes : mapping, optional
        Class names for a dataset path, as for :func:`~ffeat.load_dataset`.
    name : str, optional
        The argument ``data`` is to the caller, for messages.

    Returns
    -------
    images : list
    labels : ndarray of int64
    sources : list of str or None
        The dataset's :attr:`~ffeat.Dataset.sources`; None for a single source
        or for images given in memory.

    Raises
    ------
    ValueError
        When the dataset cannot be listed, or labels are missing or do not match.
    TypeError
        When ``data`` is neither a path, a Dataset nor a sequence of images.
    """
    if isinstance(data, (str, os.PathLike)):
        data = load_dataset(data, classes)
    sources = None
    if isinstance(data, Dataset):
        images, labels = list(data.paths), data.labels if labels is None else labels
        sources = data.sources
    else:
        images = check_images(data, name)
    if labels is None:
        raise ValueError(f"labels are needed (1 = fake, 0 = real) when {name} is a sequence "
                         "of images; or give a dataset folder or ffeat.Dataset")
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"got {len(images)} images but labels of shape {labels.shape}; "
                         "give one label per image")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 (real) or 1 (fake); got values "
                         f"{sorted(set(labels.tolist()) - {0, 1})[:5]}")
    return images, labels.astype(np.int64), sources
