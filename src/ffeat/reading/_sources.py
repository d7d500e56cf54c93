"""Expanding user inputs (files, folders, in-memory images) into a flat stream of items."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._perturb import Perturbed
from .loading import describe_source

#: File name extensions picked up when a folder is scanned (any case).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".tif",
                              ".tiff", ".gif"})
#: Folder names that label the images below them: 0 = real, 1 = fake.
CLASS_FOLDERS = {"real": 0, "fake": 1}


@dataclass(frozen=True)
class Item:
    """One input: what to read, its display name, its label (-1 if unknown), and
    the reason it cannot be read when that is known before reading."""

    obj: object
    name: str
    label: int = -1
    error: str | None = None


def _label_of(folders: tuple[str, ...]) -> int:
    """Label from the deepest ``real``/``fake`` folder name, -1 if there is none."""
    for part in reversed(folders):
        label = CLASS_FOLDERS.get(part.lower())
        if label is not None:
            return label
    return -1


def _file_item(path) -> Item:
    """A file on disk, named as given and labelled by the folders on its path."""
    return Item(path, os.fspath(path), _label_of(Path(path).parts[:-1]))


def _walk_folder(root: Path) -> Iterator[Path | Item]:
    """Image files below ``root``, recursively, hidden entries skipped, in sorted walk
    order, one at a time; an error item for every folder that could not be listed."""
    unreadable: list[Item] = []

    def record(exc: OSError) -> None:
        unreadable.append(Item(exc.filename, os.fspath(exc.filename),
                               error=f"cannot list folder: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=record):
        yield from unreadable
        unreadable.clear()
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS:
                yield Path(dirpath, f)
    yield from unreadable


def scan_folder(root: Path) -> tuple[list[Path], list[Item]]:
    """Image files below ``root`` (see :func:`_walk_folder`), and the error items
    of folders that could not be listed."""
    found, unreadable = [], []
    for entry in _walk_folder(root):
        (unreadable if isinstance(entry, Item) else found).append(entry)
    return found, unreadable


def iter_inputs(images) -> Iterator[Item]:
    """Flatten paths, folders and in-memory images into :class:`Item` records, lazily.

    A folder contributes every image file below it (by extension, sorted, so
    the order is the same on every run); a file given by name is always read,
    whatever its extension. Files are labelled by the deepest ``real``/``fake``
    folder on their path as given. A bare 4-D array is a batch of images and a
    1-D array a sequence of inputs (paths, as :func:`ffeat._checks.check_images`
    reads them for the estimators); any other single object is one input.
    Folders are listed as the items are consumed, so a million files are never
    held as items at once.
    """
    if isinstance(images, np.ndarray) and images.ndim in (1, 4):
        images = list(images)  # a batch, or a 1-D array of paths: as the estimators read it
    elif isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray)) \
            or not hasattr(images, "__iter__"):
        images = [images]
    for position, obj in enumerate(images):
        if isinstance(obj, (str, os.PathLike)) and os.path.isdir(obj):
            found = False
            for entry in _walk_folder(Path(obj)):
                found = True
                yield entry if isinstance(entry, Item) else _file_item(entry)
            if not found:
                yield Item(obj, os.fspath(obj), error="folder holds no image files "
                           f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
        else:
            yield single_item(obj, position)


def expand_inputs(images) -> list[Item]:
    """All of :func:`iter_inputs` as a list."""
    return list(iter_inputs(images))


def single_item(obj, position: int) -> Item:
    """One input as an :class:`Item`; a folder is not expanded (it fails to read)."""
    if isinstance(obj, (str, os.PathLike)):
        return _file_item(obj)
    if isinstance(obj, Perturbed):
        return Item(obj, obj.name)
    return Item(obj, describe_source(obj, position))
