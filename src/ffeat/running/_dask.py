"""Shards on a dask.distributed cluster (optional: ``pip install "ffeat[dask]"``).

Every shard is one task: a worker runs the job (the compiled kernels, one
thread per task) and returns the shard's payload; this process writes the
payloads as the tasks finish. The job is sent to every worker once; a task that
fails (a worker lost, an exception) is retried twice before the run stops.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable

from ..reading._sources import Item

__all__ = ["DaskExecutor", "import_distributed"]

#: Times a failed shard task is run again before the run stops.
RETRIES = 2


def import_distributed():
    """The ``distributed`` module, or an ImportError naming the extra to install."""
    try:
        import distributed
    except ImportError:
        raise ImportError("running on a dask cluster (--scheduler, scheduler=) needs "
                           "dask.distributed, which is not installed: pip install "
                           "'ffeat[dask]'") from None
    return distributed


def _run(job: Callable[[list[Item]], object], items: list[Item]):
    """The task: one shard through the job, on a worker."""
    return job(items)


class DaskExecutor:
    """Runs shard jobs on a cluster; use as a context manager.

    Parameters
    ----------
    job : callable
        Maps a shard's items to its payload; pickled once and sent to every worker.
    scheduler : str or distributed.Client
        ``"local"`` starts a LocalCluster of ``workers`` processes with one
        thread each (closed afterwards); an address such as
        ``"tcp://host:8786"`` connects to a running scheduler; a ``Client`` is
        used as it is (and left open).
    workers : int
        Worker processes of a local cluster.
    """

    def __init__(self, job: Callable[[list[Item]], object], scheduler, workers: int) -> None:
        distributed = import_distributed()
        self._owned = []
        if isinstance(scheduler, distributed.Client):
            client = scheduler
        elif scheduler == "local":
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                               processes=True, dashboard_address=None)
            client = distributed.Client(cluster)
            self._owned = [client, cluster]
        else:
            client = distributed.Client(scheduler)
            self._owned = [client]
        self._client = client
        self.threads = max(1, sum(client.nthreads().values()))
        # Two tasks per worker thread keep every worker busy while this process writes.
        self.slots = 2 * self.threads
        self._job = client.scatter(job, broadcast=True, hash=False)
        self._finished = distributed.as_completed()
        self._shards: dict[str, tuple[int, list[Item]]] = {}
        self._run_id = uuid.uuid4().hex[:8]

    def submit(self, index: int, items: list[Item]) -> None:
        future = self._client.submit(_run, self._job, items, retries=RETRIES, pure=False,
                                     key=f"ffeat-shard-{index:05d}-{self._run_id}")
        self._shards[future.key] = (index, items)
        self._finished.add(future)

    def next_done(self) -> tuple[int, list[Item], object]:
        future = next(self._finished)
        index, items = self._shards.pop(future.key)
        return index, items, future.result()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc) -> None:
        for future in self._finished.futures:
            future.cancel()
        for resource in self._owned:
            resource.close()
