"""Issue 16, the output side: outputs never over an input, names printed safely, stale
temporary files removed, atomic writes without umask races, clear failures."""
from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ffeat
from ffeat import Detector
from ffeat.running._atomic import atomic_write, remove_stale_temps
from ffeat.models._predictions import prediction_rows
from ffeat.models._scoring import NO_SCORE, Scored
from ffeat.reading._sources import Item
from ffeat._text import printable, spreadsheet_safe
from ffeat.cli import main
from ffeat.cli._output import claim_output, output_problem
from ffeat.cli.predict import _write
from ffeat.extraction import ImageError
from conftest import WHOLE, write_image


@pytest.fixture
def data(tmp_path):
    """A labelled folder of 2 real and 2 fake images; returns the folder."""
    folder = tmp_path / "data"
    for i in range(2):
        write_image(folder / "real" / f"{i}.png", i)
        write_image(folder / "fake" / f"{i}.png", 10 + i)
    return folder


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny model (gray features, logistic) saved to a file."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(8)]
    path = tmp_path_factory.mktemp("model") / "m.model"
    Detector(["gray"], "logistic", cache=False, reading=WHOLE).fit(images, [0, 1] * 4).save(path)
    return path


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


# ------------------------------------------------------------ the output is never an input

def test_extract_output_linked_to_an_input_is_refused(data, tmp_path, capsys):
    image = data / "real" / "0.png"
    before = image.read_bytes()
    link = tmp_path / "link.npz"
    link.symlink_to(image)
    assert main(["extract", str(data), "-o", str(link), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"output {link} is the input {image}" in err
    assert image.read_bytes() == before


def test_train_output_that_is_a_training_image_is_refused(data, capsys):
    image = data / "real" / "0.png"
    before = image.read_bytes()
    assert main(["train", str(data), "--faces", "off", "-o", str(image), "--no-cache", "-q"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert image.read_bytes() == before


@pytest.mark.parametrize("command", ["train", "extract"])
def test_output_that_is_a_link_loop_is_a_usage_error(command, data, tmp_path, capsys):
    out = tmp_path / ("self.model" if command == "train" else "self.npz")
    out.symlink_to(out.name)
    assert main([command, str(data), "-o", str(out), "--no-cache", "-q"]) == 2
    assert "broken symbolic link" in capsys.readouterr().err


def test_train_output_that_is_its_manifest_is_refused(data, tmp_path, capsys):
    manifest = tmp_path / "data.csv"
    manifest.write_text("path,label\nreal/0.png,real\nfake/0.png,fake\n")
    (tmp_path / "real").symlink_to(data / "real")
    (tmp_path / "fake").symlink_to(data / "fake")
    assert main(["train", str(manifest), "--faces", "off",
                 "-o", str(manifest), "--no-cache", "-q"]) == 2
    assert manifest.read_text().startswith("path,label")


def test_predict_output_hard_linked_to_an_input_is_refused(model, data, tmp_path, capsys):
    image = data / "fake" / "1.png"
    before = image.read_bytes()
    out = tmp_path / "rows.csv"
    os.link(image, out)
    assert main(["predict", "--model", str(model), str(data), "--output", str(out), "-q"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert image.read_bytes() == before


def test_report_folder_holding_the_inputs_is_refused(model, data, capsys):
    pytest.importorskip("matplotlib")
    assert main(["evaluate", "--model", str(model), str(data), "--report", str(data), "-q"]) == 2
    assert "holds the input" in capsys.readouterr().err
    assert not (data / "index.html").exists()


def test_output_rules(data, tmp_path):
    inputs = [str(p) for p in sorted(data.rglob("*.png"))]
    assert output_problem(data / "feats.npz", inputs) is None  # new file in an input folder
    (data / "feats.npz").write_bytes(b"old")  # existing, but not an input
    assert output_problem(data / "feats.npz", inputs) is None
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(data / "real" / "gone.png")
    assert "broken symbolic link" in output_problem(dangling, inputs)
    link_in = data / "real" / "linked.png"  # an input that is a link to the output
    link_in.symlink_to(tmp_path / "target.npz")
    (tmp_path / "target.npz").write_bytes(b"x")
    assert "is the input" in output_problem(tmp_path / "target.npz", [*inputs, str(link_in)])
    assert "holds the input" in output_problem(data, inputs, folder=True)
    assert output_problem(tmp_path / "shards", inputs, folder=True) is None
    (tmp_path / "shards").mkdir()
    assert output_problem(tmp_path / "shards", inputs, folder=True) is None


def test_new_output_does_not_list_the_inputs(tmp_path):
    def inputs():
        raise AssertionError("listed")
        yield  # pragma: no cover
    assert claim_output(tmp_path / "new.npz", inputs()) is None


# ------------------------------------------------------------ temporary files of killed writes

def test_stale_temporary_files_are_removed_on_the_next_run(data, tmp_path, capsys):
    out = tmp_path / "feats.npz"
    dead = tmp_path / f".feats.npz.ffeat-{_dead_pid()}-abcd1234.tmp"
    live = tmp_path / f".feats.npz.ffeat-{os.getpid()}-efgh5678.tmp"  # a concurrent writer
    old = tmp_path / f".feats.npz.ffeat-{os.getpid()}-old_5678.tmp"
    other = tmp_path / f".other.npz.ffeat-{_dead_pid()}-abcd1234.tmp"
    recent = tmp_path / ".feats.npz.abcd1234.tmp"  # an earlier ffeat's name, still written
    abandoned = tmp_path / ".feats.npz.wxyz9876.tmp"  # the same, untouched for an hour
    for path in (dead, live, old, other, recent, abandoned):
        path.write_bytes(b"partial")
    os.utime(old, (0, 0))
    hour_ago = time.time() - 3600
    os.utime(abandoned, (hour_ago, hour_ago))
    assert main(["extract", str(data), "-o", str(out), "-q", "--features", "gray",
                 "--no-cache"]) == 0
    assert out.exists() and not dead.exists() and not old.exists()
    assert not abandoned.exists()
    assert live.exists() and other.exists() and recent.exists()


def test_remove_stale_temps_of_a_whole_folder(tmp_path):
    shard = tmp_path / f".shard-00001.npz.ffeat-{_dead_pid()}-abcd1234.tmp"
    shard.write_bytes(b"partial")
    (tmp_path / "shard-00000.npz").write_bytes(b"done")
    assert remove_stale_temps(tmp_path) == [shard]
    assert remove_stale_temps(tmp_path / "missing") == []


# ------------------------------------------------------------ atomic_write

def test_atomic_write_never_changes_the_umask(tmp_path, monkeypatch):
    mask = os.umask(0o027)
    os.umask(mask)

    def forbidden(_):
        raise AssertionError("os.umask called: not thread-safe")
    monkeypatch.setattr(os, "umask", forbidden)
    threads = [threading.Thread(target=atomic_write,
                                args=(tmp_path / f"{i}.bin", lambda fh: fh.write(b"x")))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert stat.S_IMODE((tmp_path / f"{i}.bin").stat().st_mode) == 0o666 & ~mask


def test_atomic_write_syncs_before_the_rename(tmp_path, monkeypatch):
    calls = []
    for name in ("fsync", "replace"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _n=name, _r=real: calls.append(_n) or _r(*a))
    atomic_write(tmp_path / "f.bin", lambda fh: fh.write(b"x"))
    assert calls == ["fsync", "replace"]


def test_atomic_write_into_a_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "nope" / "m.model"
    with pytest.raises(FileNotFoundError) as info:
        atomic_write(target, lambda fh: fh.write(b"x"))
    message = str(info.value)
    assert str(target) in message and "does not exist" in message and ".tmp" not in message


# ------------------------------------------------------------ printed names

def test_printable_escapes_what_acts_on_a_terminal():
    assert printable("a\nb\x1b[31m\udcff\u202eé ok") == "a\\x0ab\\x1b[31m\\xff\\u202eé ok"
    assert [spreadsheet_safe(c) for c in ("=1+1", "+a", "-a", "@a", "a=b", "")] == \
        ["'=1+1", "'+a", "'-a", "'@a", "a=b", ""]


def _rows():
    names = ["ok.png", "bad\udcff.png", "=HYPERLINK(1).png", "new\nline.png", "\x1b]0;x\x07.png"]
    items = [Item(n, n) for n in names]
    return list(prediction_rows([Scored(it, 0.0, None) for it in items], 0.5)), names


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_every_row_reaches_a_strict_utf8_stdout(fmt, monkeypatch):
    rows, names = _rows()
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
    monkeypatch.setattr(sys, "stdout", stdout)
    _write(rows, fmt)
    stdout.flush()
    text = raw.getvalue().decode("utf-8")
    assert not any(c in text for c in "\x1b\x07")
    lines = text.splitlines()
    assert len(lines) == 1 + len(names)  # no row lost, none split
    assert "bad\\xff.png" in text and "new\\x0aline.png" in text
    if fmt == "csv":
        paths = [r[0] for r in csv.reader(io.StringIO(text))][1:]
        assert paths[2] == "'=HYPERLINK(1).png"


def test_skipped_files_are_escaped_on_stderr(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x\x1b[2J\ny.png").write_bytes(b"not an image")
    assert main(["extract", str(folder), "-o", str(tmp_path / "o.npz"), "-q",
                 "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "x\\x1b[2J\\x0ay.png" in err


def test_streamed_csv_defuses_formulas(model, tmp_path, monkeypatch):
    write_image(tmp_path / "=cmd.png")
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--model", str(model), "=cmd.png", "--output", "rows.csv", "-q",
                 "--no-cache"]) == 0
    rows = list(csv.reader((tmp_path / "rows.csv").open(newline="")))
    assert [r[0] for r in rows] == ["path", "'=cmd.png"]


# ------------------------------------------------------------ scores and failures

def test_an_error_record_is_an_error_row():
    items = [Item("a.png", "a.png"), Item("b.png", "b.png")]
    records = [Scored(items[0], float("nan"), ImageError("a.png", NO_SCORE)),
               Scored(items[1], 0.0, None)]
    rows = list(prediction_rows(records, 0.5))
    assert [r["label"] for r in rows] == [None, "fake"]
    assert "NaN" in rows[0]["error"] and rows[0]["prob_fake"] is None


def test_a_nan_score_is_an_error_record_that_evaluate_lists():
    class NanOnFirst:
        """A model giving no number for the first image's row."""

        kind = "logistic"

        def __init__(self, model):
            self.model = model

        def decision_function(self, X):
            out = self.model.decision_function(X)
            out[0] = np.nan
            return out

    detector = ffeat.Detector("gray", "logistic", cache=False, jobs=1, augment=None,
                              calibration=None, band=None, reading=WHOLE)
    images, labels = ffeat.make_demo_set(n_per_class=4, size=64)
    detector.fit(images, labels)
    detector.model_ = NanOnFirst(detector.model_)
    result = ffeat.evaluate(detector, images[:3], labels[:3])
    assert len(result.sources) == 2
    assert [("NaN" in e.reason) for e in result.errors] == [True]


@pytest.mark.parametrize("value", ["0", "-5", "x"])
def test_shard_size_below_one_is_a_usage_error(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["extract", str(tmp_path), "-o", str(tmp_path / "out/"), "--shard-size", value])
    assert info.value.code == 2
    assert "--shard-size" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _unreadable(folder):
    for cls in ("real", "fake"):
        (folder / cls).mkdir(parents=True)
        (folder / cls / "x.png").write_bytes(b"not an image")


@pytest.mark.parametrize("report", [False, True], ids=["text", "report"])
def test_evaluate_with_nothing_readable_lists_the_reasons(model, tmp_path, capsys, report):
    pytest.importorskip("matplotlib")
    _unreadable(tmp_path / "d")
    extra = ["--report", str(tmp_path / "report")] if report else []
    assert main(["evaluate", "--model", str(model), str(tmp_path / "d"), "--no-cache", "-q",
                 *extra]) == 1
    err = capsys.readouterr().err
    assert err.count("skipped ") == 2 and "could be read" in err


@pytest.mark.parametrize("classifier", ["logistic", "cnn"])
def test_train_with_nothing_readable_lists_the_reasons(tmp_path, capsys, classifier):
    if classifier == "cnn":
        pytest.importorskip("torch")
    _unreadable(tmp_path / "d")
    options = ["--features", "gray"] if classifier == "logistic" else ["--input-size", "32"]
    assert main(["train", str(tmp_path / "d"), "--faces", "off", "-o", str(tmp_path / "m.model"),
                 "--no-cache", "-q", "--classifier", classifier, *options]) == 1
    err = capsys.readouterr().err
    assert err.count("skipped ") == 2
