"""The multi-source face corpus of ``../shared/faces`` and its fixed train/test split.

Twelve sources, each one class of one set's folder (``SOURCES``), each with its
generator family (``gan``, ``diffusion`` or ``real``) and its *pipeline* (the set
whose files it shares a size and codec with: the reals of a matched pair carry
their fakes' pipeline, the other reals are the common ``pool``): fakes
``stylegan1`` (``140k``), ``stylegan2`` (``tpdne``), ``hq-fake``, ``boredhumans``
and ``sd21`` (``sdfd``); reals ``ffhq`` (``140k``), ``tpdne-real``, ``hq-real``,
``utkface``, ``lfw``, ``unsplash`` and ``studio``. Each source's JPEGs, sorted by
path, are shuffled by a generator seeded with ``SEED`` (0) and cut into a
training half (the first ``n // 2``) and a test half (the rest), so anyone gets
the same split: 400/400 per class of ``140k``, 350/350 ``stylegan2``, 294/295
``tpdne-real``, 150/150 ``hq-fake``, 189/190 ``hq-real``, 325/326
``boredhumans``, 250/250 ``sd21``, 750/750 ``utkface``, 500/500 ``lfw``,
125/125 ``unsplash`` and 70/70 ``studio``. (``140k`` holds a few near-duplicate
fakes, which the split does not keep together.)

:func:`training_mix` and :func:`held_out` give the images of a set of sources
as a :class:`Sample` (paths, labels, source names). Importing this module reads
nothing; the folder is ``$FFEAT_FACES`` or ``../shared/faces`` beside the
repository (:func:`_data.faces_root`), and :func:`missing` names the source
folders that are absent, so a script can say so and stop.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

try:
    from . import _data
except ImportError:  # run as a script: this folder is on sys.path
    import _data

__all__ = ["SEED", "Source", "SOURCES", "NAMES", "FAKE", "REAL", "family_of", "Sample", "missing",
           "source_files", "split", "halves", "training_mix", "held_out", "parse_names"]

#: Seed of every source's train/test shuffle.
SEED = 0


class Source(NamedTuple):
    """One source: its name, its folder under the faces root, its generator family
    (``real`` for a real source) and its pipeline; its class follows from the family."""

    name: str
    folder: str
    family: str
    pipeline: str

    @property
    def label(self) -> int:
        """1 for a fake source, 0 for a real one."""
        return int(self.family != "real")


#: The sources: fakes first, then the reals matched to a fake source's pipeline, then
#: the common real pool.
SOURCES: tuple[Source, ...] = (
    Source("stylegan1", "140k/fake", "gan", "140k"),
    Source("stylegan2", "tpdne/fake", "gan", "tpdne"),
    Source("hq-fake", "hq/fake", "gan", "hq"),
    Source("boredhumans", "boredhumans/fake", "gan", "boredhumans"),
    Source("sd21", "sdfd/fake", "diffusion", "sdfd"),
    Source("ffhq", "140k/real", "real", "140k"),
    Source("tpdne-real", "tpdne/real", "real", "tpdne"),
    Source("hq-real", "hq/real", "real", "hq"),
    Source("utkface", "utkface/real", "real", "pool"),
    Source("lfw", "lfw/real", "real", "pool"),
    Source("unsplash", "unsplash/real", "real", "pool"),
    Source("studio", "studio/real", "real", "pool"),
)
#: Source names in order, and by class.
NAMES = tuple(s.name for s in SOURCES)
FAKE = tuple(s.name for s in SOURCES if s.label == 1)
REAL = tuple(s.name for s in SOURCES if s.label == 0)
_BY_NAME = {s.name: s for s in SOURCES}


class Sample(NamedTuple):
    """Images of several sources: paths, labels (1 = fake) and source names, aligned."""

    paths: list[Path]
    labels: np.ndarray
    sources: list[str]


def family_of(name: str) -> str:
    """The generator family of a source (``real`` for a real one)."""
    return _BY_NAME[name].family


def _root(root: str | Path | None) -> Path:
    return _data.faces_root() if root is None else Path(root)


def parse_names(names: str | Iterable[str]) -> tuple[str, ...]:
    """Source names from ``"a,b,c"`` or a sequence, checked, in the order of ``SOURCES``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the sources) or an empty selection.
    """
    if isinstance(names, str):
        names = names.split(",")
    chosen = {n.strip() for n in names if n.strip()}
    unknown = sorted(chosen - set(NAMES))
    if unknown:
        raise ValueError(f"unknown source {unknown[0]!r}; choose from {', '.join(NAMES)}")
    if not chosen:
        raise ValueError(f"no source named; choose from {', '.join(NAMES)}")
    return tuple(n for n in NAMES if n in chosen)


def missing(root: str | Path | None = None) -> list[str]:
    """The source folders (``set/class``) absent or without JPEGs under ``root``."""
    base = _root(root)
    return [s.folder for s in SOURCES
            if not (base / s.folder).is_dir() or next((base / s.folder).glob("*.jpg"), None)
            is None]


def source_files(name: str, root: str | Path | None = None) -> list[Path]:
    """The JPEGs of one source, sorted by path."""
    return sorted((_root(root) / _BY_NAME[name].folder).glob("*.jpg"))


def split(name: str, root: str | Path | None = None,
          n: int | None = None) -> tuple[list[Path], list[Path]]:
    """The training and test halves of one source (seed ``SEED``, sorted paths).

    Parameters
    ----------
    name : str
        A source name (see ``SOURCES``).
    root : path, optional
        The faces folder (default :func:`_data.faces_root`).
    n : int, optional
        Keep only the first ``n`` images of each half (a quick run).

    Returns
    -------
    train, test : list of Path
        The first ``len // 2`` images of the shuffled source, then the rest.
    """
    train, test = halves(source_files(name, root))
    return train[:n], test[:n]


def halves(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """``files`` shuffled by a generator seeded with ``SEED`` and cut in two: the first
    ``len // 2`` (the training half), then the rest (the test half)."""
    order = np.random.default_rng(SEED).permutation(len(files))
    cut = len(files) // 2
    return [files[i] for i in order[:cut]], [files[i] for i in order[cut:]]


def _sample(names: Iterable[str], half: int, root, n: int | None) -> Sample:
    paths, labels, sources = [], [], []
    for name in parse_names(names):
        files = split(name, root, n)[half]
        paths += files
        labels += [_BY_NAME[name].label] * len(files)
        sources += [name] * len(files)
    return Sample(paths, np.array(labels, dtype=np.int8), sources)


def training_mix(names: str | Iterable[str] = NAMES, root: str | Path | None = None,
                 n: int | None = None) -> Sample:
    """The training halves of the named sources (the training mix), in ``SOURCES`` order.

    Parameters
    ----------
    names : str or iterable of str, optional
        Source names (``"a,b,c"`` or a sequence); default all.
    root : path, optional
        The faces folder (default :func:`_data.faces_root`).
    n : int, optional
        At most ``n`` images per source (a quick run).

    Returns
    -------
    Sample
    """
    return _sample(names, 0, root, n)


def held_out(names: str | Iterable[str] = NAMES, root: str | Path | None = None,
             n: int | None = None) -> Sample:
    """The test halves of the named sources, in ``SOURCES`` order (parameters as for
    :func:`training_mix`)."""
    return _sample(names, 1, root, n)
