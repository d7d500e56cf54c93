"""Running a job over an input stream shard by shard, resumably, in bounded memory.

A *job* maps one shard's items to a payload (it runs where the work is done:
this process, or a dask worker); a *sink* writes payloads (in this process)
and says what it wrote; an *executor* runs jobs and hands back finished shards;
the :class:`~ffeat.running._manifest.Manifest` remembers finished shards. Only the
shards in flight are held in memory.
"""
from __future__ import annotations

import itertools
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ..reading._sources import Item
from ._manifest import Manifest, shard_fingerprint
from ._progress import Progress

__all__ = ["RunSummary", "LocalExecutor", "run_shards"]


class Sink(Protocol):
    """Where finished shards go."""

    #: Whether shards must be written in index order (a single file) or may be
    #: written as they finish (a file per shard).
    in_order: bool

    def present(self, entry: dict) -> bool:
        """Whether the output of a shard the manifest lists as finished is still there."""

    def write(self, index: int, items: list[Item], payload) -> tuple[dict, list[str]]:
        """Write one shard; returns the manifest entry (with ``rows`` and ``errors``
        counts) and the reasons of the inputs that failed."""


class Executor(Protocol):
    """Runs the job on shards: at most ``slots`` in flight, on ``threads`` worker
    threads (each shard is one task)."""

    slots: int
    threads: int

    def submit(self, index: int, items: list[Item]) -> None:
        """Start computing a shard."""

    def next_done(self) -> tuple[int, list[Item], object]:
        """Wait for a shard to finish: ``(index, items, payload)``."""


def _reason_kind(reason: str) -> str:
    """The kind of a failure: its reason up to the first detail (``:`` or ``(``)."""
    return re.split(r"[:(]", reason, maxsplit=1)[0].strip() or reason


@dataclass
class RunSummary:
    """What a sharded run did.

    Attributes
    ----------
    output : str
        Where the results are.
    inputs : int
        Inputs processed by this run.
    done : int
        Of those, inputs that gave a result (a feature row, a probability).
    failed : Counter
        Inputs that could not be read, counted by kind of reason (the reason
        up to its details; each input's full reason is in the output).
    skipped : int
        Inputs of shards finished by an earlier run and left as they were.
    total_done : int
        Inputs with a result in the whole output, earlier runs included.
    seconds : float
        Wall time of this run.
    hint : str
        Advice for the next run, or empty.
    """

    output: str
    inputs: int = 0
    done: int = 0
    failed: Counter = field(default_factory=Counter)
    skipped: int = 0
    total_done: int = 0
    seconds: float = 0.0
    hint: str = ""

    @property
    def rate(self) -> float:
        """Inputs processed per second."""
        return self.inputs / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        n_failed = sum(self.failed.values())
        why = "; ".join(f"{n:,} {kind}" for kind, n in self.failed.most_common())
        text = (f"{self.output}: {self.inputs:,} images in {self.seconds:.1f} s "
                f"({self.rate:,.1f} img/s): {self.done:,} done, {n_failed:,} failed"
                + (f" ({why})" if why else ""))
        if self.skipped:
            text += f"; {self.skipped:,} done by an earlier run, left as they were"
        return text + (f"\n{self.hint}" if self.hint else "")


def chunked(items: Iterable[Item], size: int) -> Iterator[tuple[int, list[Item]]]:
    """``(index, items)`` of consecutive shards of ``size`` items (the last may be short)."""
    it = iter(items)
    for index in itertools.count():
        shard = list(itertools.islice(it, size))
        if not shard:
            return
        yield index, shard


class LocalExecutor:
    """Computes each shard in this process when it is submitted (the job itself
    runs its images on threads)."""

    slots = 1
    threads = 1

    def __init__(self, job: Callable[[list[Item]], object]) -> None:
        self._job = job
        self._done: deque = deque()

    def submit(self, index: int, items: list[Item]) -> None:
        self._done.append((index, items, self._job(items)))

    def next_done(self) -> tuple[int, list[Item], object]:
        return self._done.popleft()


def run_shards(items: Iterable[Item], *, shard_size: int, sink: Sink, manifest: Manifest,
               executor: Executor, progress: bool | None, label: str,
               output: str) -> RunSummary:
    """Compute every unfinished shard of ``items`` and write it, then mark the output complete.

    Parameters
    ----------
    items : iterable of Item
        The inputs, in their deterministic order (consumed lazily).
    shard_size : int
        Inputs per shard.
    sink, manifest, executor
        Where shards are written, the record of finished ones, what computes them.
    progress : bool or None
        Progress line on stderr (``None``: on a terminal).
    label, output : str
        Text before the progress line; the output named in the summary.
    """
    summary = RunSummary(output)
    start = time.perf_counter()
    bar = Progress(None, label, enabled=progress)
    fingerprints: dict[int, dict] = {}
    submitted: deque[int] = deque()  # in flight, in index order
    ready: dict[int, tuple[list[Item], object]] = {}

    def commit(index: int, shard: list[Item], payload) -> None:
        written, reasons = sink.write(index, shard, payload)
        manifest.record(index, fingerprints.pop(index), written)
        summary.inputs += len(shard)
        summary.done += len(shard) - len(reasons)
        summary.failed.update(map(_reason_kind, reasons))
        bar.add(len(shard), len(reasons))

    def collect() -> None:
        index, shard, payload = executor.next_done()
        ready[index] = (shard, payload)
        while submitted:
            head = submitted[0] if sink.in_order else index
            if head not in ready:
                return
            submitted.remove(head)
            commit(head, *ready.pop(head))

    n_shards = n_computed = 0
    try:
        for index, shard in chunked(items, shard_size):
            n_shards = index + 1
            fingerprint = shard_fingerprint(shard)
            if manifest.done(index, fingerprint, sink.present):
                summary.skipped += len(shard)
                continue
            fingerprints[index] = fingerprint
            n_computed += 1
            submitted.append(index)
            executor.submit(index, shard)
            while len(submitted) >= executor.slots:
                collect()
        while submitted:
            collect()
        totals = manifest.finish(n_shards)
    finally:
        bar.close()
    summary.total_done = totals["rows"]
    summary.seconds = time.perf_counter() - start
    summary.hint = _idle_hint(n_computed, executor.threads, summary.inputs)
    return summary


def _idle_hint(n_computed: int, threads: int, inputs: int) -> str:
    """Advice when too few shards kept the worker threads busy (one task per shard)."""
    if threads < 2 or n_computed >= 2 * threads:
        return ""
    size = max(1, -(-inputs // (4 * threads)))
    return (f"note: {n_computed} shard(s) for {threads} worker threads left workers idle "
            f"for part of the run; --shard-size {size} would spread a run of this size "
            "over all of them")
