"""Sharded, resumable extraction and prediction (ffeat.extract_to, ffeat.predict_to and
``ffeat extract -o DIR/``, ``ffeat predict --output FILE.csv``) in one process."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ffeat
from ffeat.running import _lock, streaming
from ffeat.reading._sources import expand_inputs
from ffeat.cli import main
from conftest import WHOLE

SHARD = 5
FEATURES = ffeat.DEFAULT_FEATURES


def write_images(root: Path, n_per_class: int = 7, size: int = 48) -> None:
    """Small random images under root/real and root/fake, JPEG and PNG."""
    rng = np.random.default_rng(0)
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            pixels = rng.integers(0, 256, (size, size + i, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i:02d}.{'png' if i % 2 else 'jpg'}")


def make_data(folder: Path, bad_files) -> Path:
    """14 readable images and 4 unreadable files (in real/ and fake/ folders)."""
    root = folder / "data"
    write_images(root)
    bad_files(root / "fake" / "bad")
    return root


def make_model(folder: Path) -> Path:
    """A detector trained on small random images, saved in ``folder``."""
    write_images(folder, n_per_class=6)
    path = folder / "m.model"
    ffeat.Detector(cache=False, reading=WHOLE).fit(folder).save(path)
    return path


@pytest.fixture
def data(tmp_path, bad_files) -> Path:
    return make_data(tmp_path, bad_files)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return make_model(tmp_path_factory.mktemp("train"))


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file of an output folder by name, with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_same_extraction(a: ffeat.Extraction, b: ffeat.Extraction) -> None:
    assert a.X.dtype == b.X.dtype == np.float32
    np.testing.assert_array_equal(a.X, b.X)  # bitwise: no tolerance
    assert a.names == b.names and a.sources == b.sources and a.errors == b.errors
    np.testing.assert_array_equal(a.labels, b.labels)


class Interrupt(Exception):
    """Stands in for a crash or Ctrl-C in the middle of a run."""


def interrupt_after(monkeypatch, sink: type, n_shards: int) -> None:
    """Make ``sink.write`` raise once ``n_shards`` shards have been written."""
    write, calls = sink.write, []

    def failing(self, *args):
        if len(calls) == n_shards:
            raise Interrupt
        calls.append(1)
        return write(self, *args)

    monkeypatch.setattr(sink, "write", failing)


# -- features ---------------------------------------------------------------------------

def test_sharded_extraction_equals_in_memory(data, tmp_path):
    out = tmp_path / "shards"
    summary = ffeat.extract_to(data, out, FEATURES, shard_size=SHARD, jobs=2)
    in_memory = ffeat.extract(data, FEATURES, jobs=2)
    assert_same_extraction(ffeat.read_features(out), in_memory)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["totals"] == {"inputs": 18, "rows": 14,
                                                           "errors": 4}
    assert [s["file"] for s in manifest["shards"]] == [f"shard-0000{i}.npz" for i in range(4)]
    assert (summary.inputs, summary.done, sum(summary.failed.values())) == (18, 14, 4)
    # Every shard is a features file on its own, as ffeat extract -o FILE.npz writes them.
    first = ffeat.read_features(out / "shard-00000.npz")
    assert first.sources == in_memory.sources[:SHARD]


def test_bad_files_are_error_records_in_their_shards(data, tmp_path):
    out = tmp_path / "shards"
    summary = ffeat.extract_to(data, out, "gray", shard_size=SHARD)
    bad = [e for e in ffeat.read_features(out).errors]
    assert sorted(Path(e.source).name for e in bad) == ["empty.jpg", "text.png", "tiny.png",
                                                        "truncated.jpg"]
    assert all(e.reason for e in bad)
    # fake/00-06, then fake/bad/ (inputs 7-10), then real/: errors in shards 1 and 2.
    shards = [np.load(p) for p in sorted(out.glob("shard-*.npz"))]
    assert [len(z["error_paths"]) for z in shards] == [0, 3, 1, 0]
    assert "empty" in shards[1]["error_reasons"][0]
    assert summary.failed["file is empty"] == 1 and sum(summary.failed.values()) == 4
    assert "4 failed" in str(summary) and "img/s" in str(summary)


def test_resumed_run_equals_uninterrupted(data, tmp_path, monkeypatch):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    ffeat.extract_to(data, whole, FEATURES, shard_size=SHARD)
    with monkeypatch.context() as m:
        interrupt_after(m, streaming._ShardFiles, 2)
        with pytest.raises(Interrupt):
            ffeat.extract_to(data, resumed, FEATURES, shard_size=SHARD)
    assert not json.loads((resumed / "manifest.json").read_text())["complete"]
    summary = ffeat.extract_to(data, resumed, FEATURES, shard_size=SHARD)
    assert summary.skipped == 2 * SHARD and summary.inputs == 18 - 2 * SHARD
    assert files_of(resumed) == files_of(whole)  # byte for byte, manifest included


def test_deleted_shard_is_computed_again(data, tmp_path):
    out = tmp_path / "shards"
    ffeat.extract_to(data, out, FEATURES, shard_size=SHARD)
    before = files_of(out)
    (out / "shard-00001.npz").unlink()
    summary = ffeat.extract_to(data, out, FEATURES, shard_size=SHARD)
    assert summary.inputs == SHARD and summary.skipped == 18 - SHARD
    assert files_of(out) == before


@pytest.mark.parametrize("change, words", [
    ({"features": "gray"}, "another configuration"),
    ({"shard_size": SHARD + 1}, "shard_size"),
    ({"reading": ffeat.Reading(min_size=40)}, "min_size"),
])
def test_resume_with_another_configuration_is_refused(data, tmp_path, change, words):
    out = tmp_path / "shards"
    ffeat.extract_to(data, out, FEATURES, shard_size=SHARD)
    before = files_of(out)
    options = {"features": FEATURES, "shard_size": SHARD, **change}
    with pytest.raises(ffeat.running.streaming.ResumeError, match=words):
        ffeat.extract_to(data, out, **options)
    assert files_of(out) == before


def test_resume_with_other_inputs_is_refused(data, tmp_path):
    out = tmp_path / "shards"
    ffeat.extract_to(data, out, FEATURES, shard_size=SHARD)
    Image.new("RGB", (40, 40)).save(data / "fake" / "00-new.png")  # sorts into shard 0
    with pytest.raises(ffeat.running.streaming.ResumeError, match="inputs changed since shard 0"):
        ffeat.extract_to(data, out, FEATURES, shard_size=SHARD)


def test_fewer_inputs_than_recorded_is_refused(data, tmp_path):
    out = tmp_path / "shards"
    ffeat.extract_to(data, out, FEATURES, shard_size=SHARD)
    first_three_shards = [item.name for item in expand_inputs(data)][:3 * SHARD]
    with pytest.raises(ffeat.running.streaming.ResumeError, match=r"shards \[3\]"):
        ffeat.extract_to(first_three_shards, out, FEATURES, shard_size=SHARD)


def test_folder_of_other_files_is_not_used(data, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ffeat.running.streaming.ResumeError, match="not empty"):
        ffeat.extract_to(data, out, FEATURES)
    assert files_of(out) == {"notes.txt": b"mine"}


def test_inputs_are_consumed_shard_by_shard(data, tmp_path, monkeypatch):
    """A stream of paths is read as shards are needed, never all at once."""
    paths = sorted(str(p) for p in (data / "real").iterdir())
    consumed, seen_at_write = [], []

    def stream():
        for p in paths:
            consumed.append(p)
            yield p

    write = streaming._ShardFiles.write
    monkeypatch.setattr(streaming._ShardFiles, "write", lambda self, *a: (
        seen_at_write.append(len(consumed)), write(self, *a))[1])
    ffeat.extract_to(stream(), tmp_path / "out", "gray", shard_size=2)
    assert seen_at_write == [2, 4, 6, 7]


def test_cli_sharded_extract(data, tmp_path, capsys):
    library, cli = tmp_path / "library", tmp_path / "cli"
    ffeat.extract_to([str(data)], library, FEATURES, shard_size=SHARD)
    assert main(["extract", str(data), "-o", f"{cli}/", "--shard-size", str(SHARD),
                 "--no-cache"]) == 0
    assert files_of(cli) == files_of(library)
    err = capsys.readouterr().err
    assert "18 images" in err and "14 done, 4 failed" in err and "img/s" in err
    single = tmp_path / "one.npz"
    assert main(["extract", str(data), "-o", str(single), "-q"]) == 0
    assert_same_extraction(ffeat.read_features(cli), ffeat.read_features(single))
    # A rerun of a complete output changes nothing and reads no image.
    assert main(["extract", str(data), "-o", str(cli), "--shard-size", str(SHARD)]) == 0
    assert "0 images" in capsys.readouterr().err
    assert files_of(cli) == files_of(library)


@pytest.mark.parametrize("argv, words", [
    (["-o", "{tmp}/x.npz", "--shard-size", "4"], "folder of shards"),
    (["-o", "{tmp}/x.npz", "--scheduler", "local"], "folder of shards"),
    (["-o", "{tmp}/x", "--shard-size", "4"], "folder of shards"),
    (["-o", "{tmp}/x/", "--demo"], "--demo"),
])
def test_cli_extract_sharding_usage_errors(data, tmp_path, capsys, argv, words):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(["extract", str(data), *argv]) == 2
    assert words in capsys.readouterr().err


def test_cli_resume_refusal_exits_2(data, tmp_path, capsys):
    out = f"{tmp_path}/shards/"
    assert main(["extract", str(data), "-o", out, "-q", "--features", "gray"]) == 0
    assert main(["extract", str(data), "-o", out, "-q"]) == 2
    assert "another configuration" in capsys.readouterr().err


def test_scheduler_without_dask_names_the_extra(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    assert main(["extract", str(data), "-o", f"{tmp_path}/s/", "--scheduler", "local"]) == 2
    assert "ffeat[dask]" in capsys.readouterr().err


# -- predictions ------------------------------------------------------------------------

def test_predict_to_csv_equals_stdout_csv(data, tmp_path, model_file, capsys):
    out = tmp_path / "p.csv"
    assert main(["predict", "--model", str(model_file), str(data), "--format", "csv", "-q"]) == 0
    stdout = capsys.readouterr().out
    assert main(["predict", "--model", str(model_file), str(data), "--output", str(out),
                 "--shard-size", str(SHARD), "--no-cache"]) == 0
    assert out.read_text().splitlines() == stdout.splitlines()
    assert len(stdout.splitlines()) == 1 + 18
    err = capsys.readouterr().err
    assert "18 images" in err and "4 failed" in err
    manifest = json.loads((tmp_path / "p.csv.manifest.json").read_text())
    assert manifest["complete"] and len(manifest["shards"]) == 4


def test_predict_resumed_equals_uninterrupted(data, tmp_path, model_file, monkeypatch):
    whole, resumed = tmp_path / "whole.csv", tmp_path / "resumed.csv"
    ffeat.predict_to(model_file, data, whole, shard_size=SHARD)
    with monkeypatch.context() as m:
        interrupt_after(m, streaming._CsvRows, 2)
        with pytest.raises(Interrupt):
            ffeat.predict_to(model_file, data, resumed, shard_size=SHARD)
    with open(resumed, "ab") as fh:  # a row torn by the interruption
        fh.write(b"data/fake/half-writ")
    summary = ffeat.predict_to(model_file, data, resumed, shard_size=SHARD)
    assert summary.skipped == 2 * SHARD
    assert resumed.read_bytes() == whole.read_bytes()
    assert (tmp_path / "resumed.csv.manifest.json").read_bytes() == \
        (tmp_path / "whole.csv.manifest.json").read_bytes()


def test_predict_to_takes_a_detector_or_its_file(data, tmp_path, model_file):
    from_file, from_object = tmp_path / "a.csv", tmp_path / "b.csv"
    ffeat.predict_to(model_file, data, from_file, shard_size=SHARD)
    ffeat.predict_to(ffeat.Detector.load(model_file), data, from_object, shard_size=SHARD)
    assert from_file.read_bytes() == from_object.read_bytes()


def test_predict_refusals(data, tmp_path, model_file, capsys):
    out = tmp_path / "p.csv"
    out.write_text("someone's spreadsheet\n")
    with pytest.raises(ffeat.running.streaming.ResumeError, match="no p.csv.manifest.json"):
        ffeat.predict_to(model_file, data, out)
    assert out.read_text() == "someone's spreadsheet\n"
    out.unlink()
    ffeat.predict_to(model_file, data, out, shard_size=SHARD)
    with pytest.raises(ffeat.running.streaming.ResumeError, match="threshold"):
        ffeat.predict_to(model_file, data, out, shard_size=SHARD, threshold=0.9)
    for argv, words in [(["--output", str(tmp_path / "p.txt")], ".csv"),
                        (["--output", str(out), "--format", "json"], "--format"),
                        (["--shard-size", "3"], "--output")]:
        assert main(["predict", "--model", str(model_file), str(data), *argv]) == 2
        assert words in capsys.readouterr().err


# -- what a rerun finds is checked, not trusted (issue 16) ------------------------------

def test_a_flipped_byte_in_a_finished_shard_is_computed_again(data, tmp_path):
    out = tmp_path / "shards"
    ffeat.extract_to(data, out, "gray", shard_size=SHARD)
    before = files_of(out)
    raw = bytearray(before["shard-00001.npz"])
    raw[len(raw) // 2] ^= 0x01  # same size: only its SHA-256 tells
    (out / "shard-00001.npz").write_bytes(bytes(raw))
    summary = ffeat.extract_to(data, out, "gray", shard_size=SHARD)
    assert summary.inputs == SHARD and summary.skipped == 18 - SHARD
    assert files_of(out) == before


def test_a_flipped_byte_in_a_complete_shard_folder_is_not_read(data, tmp_path):
    out = tmp_path / "shards"
    ffeat.extract_to(data, out, "gray", shard_size=SHARD)
    raw = bytearray((out / "shard-00002.npz").read_bytes())
    raw[-30] ^= 0x01
    (out / "shard-00002.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="shard-00002.npz .*changed.*rerun"):
        ffeat.read_features(out)


def test_a_same_length_edit_in_a_finished_csv_region_is_written_again(
        data, tmp_path, model_file):
    out = tmp_path / "p.csv"
    ffeat.predict_to(model_file, data, out, shard_size=SHARD)
    whole = out.read_bytes()
    at = whole.index(b",fake,") if b",fake," in whole else whole.index(b",real,")
    edited = whole[:at] + (b",real," if whole[at:at + 6] == b",fake," else b",fake,") \
        + whole[at + 6:]
    out.write_bytes(edited)  # same length: only the region's SHA-256 tells
    summary = ffeat.predict_to(model_file, data, out, shard_size=SHARD)
    assert summary.inputs > 0 and out.read_bytes() == whole


def test_a_changed_file_under_the_same_name_is_not_skipped(data, tmp_path):
    out = tmp_path / "shards"
    ffeat.extract_to(data, out, "gray", shard_size=SHARD)
    victim = sorted((data / "real").iterdir())[0]
    stat = victim.stat()
    Image.new("RGB", (48, 48), (200, 10, 10)).save(victim, "JPEG" if victim.suffix == ".jpg"
                                                   else "PNG")
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(ffeat.running.streaming.ResumeError, match="changed since the shard was"):
        ffeat.extract_to(data, out, "gray", shard_size=SHARD)


def _edit_manifest(path: Path, edit, index: int = 1) -> None:
    record = json.loads(path.read_text())
    edit(record["shards"][index])
    path.write_text(json.dumps(record))


@pytest.mark.parametrize("edit, words", [
    (lambda s: s.pop("inputs"), r"lacks \['inputs'\]"),
    (lambda s: s.update(file="../elsewhere.npz"), "not a plain file name"),
    (lambda s: s.update(file="/etc/passwd"), "not a plain file name"),
    (lambda s: s.update(rows="7"), "rows is '7', not int"),
    (lambda s: s.update(bytes=-1), "bytes is -1, out of range"),
    (lambda s: s.update(sha256="x" * 64), "not a SHA-256"),
])
def test_a_malformed_manifest_is_refused_naming_what_is_wrong(data, tmp_path, edit, words):
    out = tmp_path / "shards"
    ffeat.extract_to(data, out, "gray", shard_size=SHARD)
    _edit_manifest(out / "manifest.json", edit)
    for run in (lambda: ffeat.extract_to(data, out, "gray", shard_size=SHARD),
                lambda: ffeat.read_features(out)):
        with pytest.raises(ffeat.running.streaming.ResumeError, match=words) as info:
            run()
        assert str(out / "manifest.json") in str(info.value)


def test_a_shortened_csv_end_leaves_no_malformed_row(data, tmp_path, model_file):
    out = tmp_path / "p.csv"
    ffeat.predict_to(model_file, data, out, shard_size=SHARD)
    whole = out.read_bytes()
    _edit_manifest(tmp_path / "p.csv.manifest.json", lambda s: s.update(end=s["end"] - 5),
                   index=-1)
    ffeat.predict_to(model_file, data, out, shard_size=SHARD)
    assert out.read_bytes() == whole


# -- locks --------------------------------------------------------------------------------

def test_a_second_run_on_a_locked_output_is_refused(data, tmp_path, model_file, capsys):
    out, shards = tmp_path / "p.csv", tmp_path / "shards"
    shards.mkdir()
    with _lock.locked(out), _lock.locked(shards):
        assert f"pid {os.getpid()} on " in (tmp_path / "p.csv.lock").read_text()
        with pytest.raises(_lock.OutputLockedError, match=f"pid {os.getpid()}"):
            ffeat.predict_to(model_file, data, out, shard_size=SHARD)
        with pytest.raises(_lock.OutputLockedError, match="another ffeat run"):
            ffeat.extract_to(data, shards, "gray", shard_size=SHARD)
        assert main(["predict", "--model", str(model_file), str(data), "--output", str(out)]) == 2
        assert "being written by another ffeat run" in capsys.readouterr().err
        assert not out.exists() and list(shards.iterdir()) == [shards / ".lock"]
    assert not (tmp_path / "p.csv.lock").exists()  # released and removed
    (tmp_path / "p.csv.lock").write_text("pid 1 on gone since long ago\n")  # a killed run's
    ffeat.predict_to(model_file, data, out, shard_size=SHARD)
    ffeat.extract_to(data, shards, "gray", shard_size=SHARD)
    assert not (tmp_path / "p.csv.lock").exists() and not (shards / ".lock").exists()


def test_a_link_at_the_lock_file_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "out.csv.lock").symlink_to(victim)
    with pytest.raises(OSError), _lock.locked(tmp_path / "out.csv"):
        pass
    assert victim.read_text() == "keep me"


def test_an_output_in_a_missing_folder_is_named(data, tmp_path, model_file):
    out = tmp_path / "nowhere" / "p.csv"
    with pytest.raises(FileNotFoundError, match=f"{out}: its folder .* does not exist"):
        ffeat.predict_to(model_file, data, out)
