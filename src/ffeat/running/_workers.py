"""A pool of worker threads that never keeps the process alive.

:class:`concurrent.futures.ThreadPoolExecutor` joins its workers when the
interpreter exits, so one worker stuck in a read that never returns (a stalled
network file system, a device) keeps the process alive after Ctrl-C. These
workers are daemon threads: on Ctrl-C the caller stops waiting, and the process
ends whatever they are doing.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

__all__ = ["DaemonPool", "MAX_JOBS"]

#: Most worker threads a pool starts (``jobs`` above it is refused by the command line
#: and by :func:`ffeat.extract`; other callers get this many).
MAX_JOBS = 256


class DaemonPool:
    """``jobs`` daemon threads running submitted calls in order of submission.

    Use as a context manager; leaving it lets the workers finish the calls
    already started and end, without waiting for them.

    Parameters
    ----------
    jobs : int
        Number of worker threads, at least 1 and at most :data:`MAX_JOBS`.
    """

    def __init__(self, jobs: int) -> None:
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._jobs = max(1, min(jobs, MAX_JOBS))
        for _ in range(self._jobs):
            threading.Thread(target=self._work, name="ffeat-worker", daemon=True).start()

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, fn, args = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(exc)
            del task, future  # drop the result before waiting for the next call

    def submit(self, fn: Callable, *args) -> Future:
        """Schedule ``fn(*args)``; returns its :class:`~concurrent.futures.Future`."""
        future: Future = Future()
        self._tasks.put((future, fn, args))
        return future

    def __enter__(self) -> DaemonPool:
        return self

    def __exit__(self, *exc) -> None:
        for _ in range(self._jobs):
            self._tasks.put(None)
