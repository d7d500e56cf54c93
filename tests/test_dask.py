"""Shards on a dask LocalCluster of two worker processes: the same bytes as one process."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import ffeat
from ffeat.running import _dask, streaming
from ffeat.cli import main
from test_streaming import (FEATURES, SHARD, Interrupt, files_of,  # noqa: F401 (fixtures)
                            interrupt_after, data, model_file)

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def test_extract_on_two_workers_equals_one_process(data, tmp_path, client):
    local, remote = tmp_path / "local", tmp_path / "dask"
    ffeat.extract_to(data, local, FEATURES, shard_size=SHARD)
    summary = ffeat.extract_to(data, remote, FEATURES, shard_size=SHARD, scheduler=client)
    assert files_of(remote) == files_of(local)
    assert (summary.inputs, summary.done) == (18, 14)
    assert summary.hint == ""  # 4 shards keep 2 workers busy


def test_too_few_shards_for_the_workers_gets_a_hint(data, tmp_path, client):
    summary = ffeat.extract_to(data, tmp_path / "one", "gray", shard_size=100,
                               scheduler=client)
    assert summary.hint.startswith("note: 1 shard(s) for 2 worker threads")
    assert "--shard-size 3 " in summary.hint  # 18 inputs, 4 shards per worker
    assert summary.hint in str(summary)


def test_predict_on_two_workers_equals_one_process(data, tmp_path, model_file, client):
    local, remote = tmp_path / "local.csv", tmp_path / "dask.csv"
    ffeat.predict_to(model_file, data, local, shard_size=SHARD)
    ffeat.predict_to(model_file, data, remote, shard_size=SHARD, scheduler=client)
    assert remote.read_bytes() == local.read_bytes()
    assert Path(f"{remote}.manifest.json").read_bytes() == \
        Path(f"{local}.manifest.json").read_bytes()


def test_interrupted_run_resumed_on_dask(data, tmp_path, client, monkeypatch):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    ffeat.extract_to(data, whole, FEATURES, shard_size=SHARD)
    with monkeypatch.context() as m:
        interrupt_after(m, streaming._ShardFiles, 1)
        with pytest.raises(Interrupt):
            ffeat.extract_to(data, resumed, FEATURES, shard_size=SHARD)
    summary = ffeat.extract_to(data, resumed, FEATURES, shard_size=SHARD, scheduler=client)
    assert summary.skipped == SHARD
    assert files_of(resumed) == files_of(whole)


def _failing_once(marker_dir: Path):
    """A shard task that fails on its first attempt (pickled by value to the workers)."""
    def run(job, items):
        marker = Path(marker_dir, hashlib.sha256(items[0].name.encode()).hexdigest())
        if not marker.exists():
            marker.touch()
            raise RuntimeError("simulated task failure")
        return job(items)
    return run


def test_failed_tasks_are_retried(data, tmp_path, client, monkeypatch):
    local, remote = tmp_path / "local", tmp_path / "dask"
    ffeat.extract_to(data, local, "gray", shard_size=SHARD)
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setattr(_dask, "_run", _failing_once(markers))
    ffeat.extract_to(data, remote, "gray", shard_size=SHARD, scheduler=client)
    assert files_of(remote) == files_of(local)
    assert len(list(markers.iterdir())) == 4  # every shard failed once, then succeeded


def test_cli_scheduler_address(data, tmp_path, model_file, client, capsys):
    local, remote = tmp_path / "local.csv", tmp_path / "dask.csv"
    common = ["--model", str(model_file), str(data), "--shard-size", str(SHARD), "-q"]
    assert main(["predict", *common, "--output", str(local)]) == 0
    assert main(["predict", *common, "--output", str(remote),
                 "--scheduler", client.scheduler.address]) == 0
    assert remote.read_bytes() == local.read_bytes()
