"""Tests of the ``ffeat extract`` command, run in-process through ``ffeat.cli.main``."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import ffeat
from ffeat.cli import main
from conftest import write_image

NPZ_KEYS = {"X", "names", "paths", "labels", "error_paths", "error_reasons", "features",
            "ffeat_version"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture
def mixed(tmp_path, bad_files):
    """A folder of 3 labelled good images and 4 bad files; returns (folder, good, bad)."""
    data = tmp_path / "data"
    good = [write_image(data / "real" / "r1.png", 1), write_image(data / "real" / "r2.png", 2),
            write_image(data / "x" / "fake" / "f1.png", 3)]
    bad = bad_files(data / "broken")
    return data, good, bad


def test_extract_mixed_folder(mixed, tmp_path, capsys):
    data, good, bad = mixed
    out = tmp_path / "out" / "feats.npz"
    out.parent.mkdir()
    assert main(["extract", str(data), "-o", str(out), "-j", "2"]) == 0
    err = capsys.readouterr().err

    assert sorted(p.name for p in out.parent.iterdir()) == ["feats.npz"]  # no temp left
    with np.load(out) as z:
        assert NPZ_KEYS <= set(z.files)
        X = z["X"]
        assert X.shape == (3, len(z["names"])) and X.dtype == np.float32
        assert np.isfinite(X).all()
        rows = dict(zip(z["paths"].tolist(), z["labels"].tolist()))
        assert rows == {good[0]: 0, good[1]: 0, good[2]: 1}
        assert sorted(z["error_paths"].tolist()) == sorted(bad)
        assert all(len(r) > 0 for r in z["error_reasons"].tolist())
        reference = ffeat.extract(good)
        np.testing.assert_allclose(X, reference.X)
        assert z["names"].tolist() == reference.names
        assert json.loads(str(z["features"])) == [
            {"family": "gray", "size": 32},
            {"family": "spectrum", "n_bins": 64},
            {"family": "residual", "channels": ["Y", "Cb", "Cr"], "T": 2, "q": 1.0,
             "half_res": ["Cb", "Cr"]},
            {"family": "hog", "cells": 32, "orientations": 9},
            {"family": "lbp", "cells": 32, "radii": [1, 2, 3]}]
        assert str(z["ffeat_version"]) == ffeat.__version__
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~_umask()
    for path in bad:
        assert f"skipped {path}: " in err
    assert "3 images" in err and "4 skipped" in err


def test_only_bad_files_fails_and_writes_nothing(tmp_path, capsys, bad_files):
    bad = bad_files(tmp_path / "bad")
    out = tmp_path / "out.npz"
    status = main(["extract", str(tmp_path / "bad"), "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert status != 0
    assert "no image could be read" in err and "nothing written" in err
    assert all(path in err for path in bad)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.npz")]


def test_output_must_end_in_npz(mixed, tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert main(["extract", str(mixed[0]), "-o", str(out)]) == 2
    assert ".npz" in capsys.readouterr().err
    assert not out.exists()


def test_unknown_feature_family_names_the_valid_ones(mixed, tmp_path, capsys):
    out = tmp_path / "out.npz"
    assert main(["extract", str(mixed[0]), "-o", str(out), "--features", "spectrum",
                 "colour"]) == 2
    err = capsys.readouterr().err
    assert "'colour'" in err
    assert all(name in err for name in ("gray", "spectrum", "residual", "hog", "lbp"))
    assert not out.exists()


@pytest.mark.parametrize("case", ["no_inputs", "missing_folder", "output_is_input"])
def test_usage_errors_exit_2(tmp_path, capsys, case):
    out = tmp_path / "out.npz"
    if case == "no_inputs":
        argv = ["extract", "-o", str(out)]
    elif case == "missing_folder":
        argv = ["extract", str(tmp_path), "-o", str(tmp_path / "nope" / "out.npz")]
    else:
        out.write_bytes(b"precious")
        argv = ["extract", str(out), "-o", str(out)]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("ffeat: error: ")
    if case == "output_is_input":
        assert out.read_bytes() == b"precious"


def test_features_option_selects_columns(mixed, tmp_path):
    out = tmp_path / "gray.npz"
    assert main(["extract", *mixed[1], "-o", str(out), "--features", "gray", "-q"]) == 0
    with np.load(out) as z:
        assert z["names"].tolist() == ffeat.Gray().feature_names()
        assert z["X"].shape == (3, len(ffeat.Gray().feature_names()))
        assert z["paths"].tolist() == mixed[1]  # named files keep their order


def test_demo_with_a_folder_keeps_rows_and_labels_aligned(mixed, tmp_path, capsys):
    data, good, bad = mixed
    out = tmp_path / "both.npz"
    assert main(["extract", str(data), "--demo", "-o", str(out), "-q"]) == 0
    with np.load(out) as z:
        paths, labels = z["paths"].tolist(), z["labels"]
        assert z["X"].shape[0] == len(paths) == len(labels) == 3 + 120
        assert dict(zip(paths[:3], labels[:3].tolist())) == {good[0]: 0, good[1]: 0,
                                                           good[2]: 1}
        demo_labels = labels[3:]
        assert all(p.startswith(f"demo/{'fake' if y else 'real'}/")
                   for p, y in zip(paths[3:], demo_labels))
        assert (demo_labels == 0).sum() == 60 and (demo_labels == 1).sum() == 60
        images, expected_labels = ffeat.make_demo_set()
        np.testing.assert_array_equal(demo_labels, expected_labels)
        np.testing.assert_array_equal(z["X"][3:], ffeat.extract(images).X)
        assert len(z["error_paths"]) == len(bad)


def test_module_entry_point_demo(tmp_path):
    out = tmp_path / "OUT.npz"
    proc = subprocess.run([sys.executable, "-m", "ffeat", "extract", "--demo", "-o",
                           str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "120 images" in proc.stderr
    with np.load(out) as z:
        assert NPZ_KEYS <= set(z.files)
        assert z["X"].shape[0] == 120 and np.isfinite(z["X"]).all()
        assert (z["labels"] == 0).sum() == 60 and (z["labels"] == 1).sum() == 60
        assert z["error_paths"].shape == (0,)


def test_a_closed_pipe_ends_a_command_quietly():
    """``ffeat model | head``: the reader is gone before ffeat writes; no traceback, the
    status of a Unix tool ended by SIGPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "ffeat", "model"], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


class _GoneReader:
    """A standard output whose reader has gone: every write raises BrokenPipeError."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass


@pytest.mark.parametrize("argv", [["model"], ["model", "--json"]])
def test_every_command_stops_quietly_on_a_broken_pipe(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", _GoneReader())
    assert main(argv) == 141
    assert capsys.readouterr().err == ""
