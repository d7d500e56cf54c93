"""A folder of every hostile kind beside good images, run through every command.

Issue "Hostile inputs": with the feature cache on and off, ``extract``, ``predict``,
``train`` and ``evaluate`` end in bounded time, keep every good row, name each bad
file with its reason, never modify an input and never start another program.
Each command runs in a child process (a hang must not hang the suite).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FEATURES = ["gray", "spectrum"]
TIMEOUT = 120


def _png(path: Path, seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


def _jpeg(size: tuple[int, int], seed: int = 0) -> bytes:
    buf = io.BytesIO()
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _lying_header(data: bytes, side: int = 9000) -> bytes:
    """A JPEG whose SOF0 header claims ``side`` x ``side`` pixels."""
    at = data.index(b"\xff\xc0") + 5
    return data[:at] + side.to_bytes(2, "big") * 2 + data[at + 4:]


def _build(root: Path) -> tuple[list[str], dict[str, str]]:
    """Good images under real/ and fake/, hostile files beside them in both.

    Returns the good paths and, per hostile file, a word its reason must contain."""
    good, hostile = [], {}
    for cls in ("real", "fake"):
        folder = root / cls
        folder.mkdir(parents=True)
        for i in range(4):
            path = folder / f"{i}.png"
            _png(path, seed=i + (10 if cls == "fake" else 0))
            good.append(str(path))
    bad = root / "real"
    os.mkfifo(bad / "fifo.jpg")
    hostile["fifo.jpg"] = "regular"
    (bad / "folder.jpg").mkdir()
    # A folder named like an image below a scanned folder is walked like any other.
    os.symlink("loop_b.jpg", bad / "loop_a.jpg")
    os.symlink("loop_a.jpg", bad / "loop_b.jpg")
    hostile["loop_a.jpg"] = "link"
    hostile["loop_b.jpg"] = "link"
    os.symlink("nowhere.jpg", bad / "dangling.jpg")
    hostile["dangling.jpg"] = ""
    (bad / "eps.jpg").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n"
                                  b"0 0 moveto 64 64 lineto stroke\nshowpage\n")
    hostile["eps.jpg"] = "unsupported format"
    full = _jpeg((64, 64))
    (bad / "truncated.jpg").write_bytes(full[: len(full) // 4] + b"\xff\xd9")
    hostile["truncated.jpg"] = "truncated"
    (bad / "huge.jpg").write_bytes(_lying_header(full))
    hostile["huge.jpg"] = ""
    (bad / "empty.jpg").write_bytes(b"")
    hostile["empty.jpg"] = "empty"
    (bad / "text.png").write_bytes(b"not an image\n")
    hostile["text.png"] = ""
    weird = os.fsdecode(b"bad\xff\x1b[31mname\n=1+1.jpg")
    (bad / weird).write_bytes(b"also not an image")
    hostile[weird] = ""
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(os.fspath(bad / "sock.jpg"))
        hostile["sock.jpg"] = "regular"
    except OSError:  # path too long for a socket on this machine
        pass
    finally:
        sock.close()
    return good, hostile


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every entry below ``root`` (links not followed) with what could change."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = None
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(path)
            snap[path] = (stat.S_IFMT(st.st_mode), st.st_mtime_ns, digest)
    return snap


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """(data folder, good paths, hostile names, environment with a fake ``gs`` on PATH)."""
    base = tmp_path_factory.mktemp("hostile")
    good, hostile = _build(base / "data")
    bin_dir = base / "bin"
    bin_dir.mkdir()
    marker = base / "external-program-ran"
    for prog in ("gs", "gswin64c", "convert", "magick"):
        script = bin_dir / prog
        script.write_text(f"#!/bin/sh\necho \"$0 $@\" >> {marker}\nexit 1\n")
        script.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               FFEAT_CACHE_DIR=str(base / "cache"), PYTHONIOENCODING="utf-8")
    return base / "data", good, hostile, env, marker


def _ffeat(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ffeat", *args, "-j", "2", "-q"], env=env,
                          capture_output=True, timeout=TIMEOUT)


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_every_command_survives_the_hostile_folder(hostile, tmp_path, cache):
    data, good, names, env, marker = hostile
    before = _snapshot(data)
    flags = [] if cache else ["--no-cache"]

    out = tmp_path / "feats.npz"
    run = _ffeat(env, "extract", str(data), "-o", str(out), "--features", *FEATURES, *flags)
    assert run.returncode == 0, run.stderr
    with np.load(out) as z:
        assert sorted(z["paths"].tolist()) == sorted(good)
    skipped = [line for line in os.fsdecode(run.stderr).splitlines() if "skipped" in line]
    assert len(skipped) == len(names), skipped
    for name, word in names.items():  # each named, with its reason
        assert any(name[:3] in line and word in line.lower() for line in skipped), name

    model = tmp_path / "m.model"
    run = _ffeat(env, "train", str(data), "--faces", "off",
                 "-o", str(model), "--features", *FEATURES,
                 "--classifier", "logistic", *flags)
    assert run.returncode == 0, run.stderr
    assert model.is_file()

    run = _ffeat(env, "predict", "--model", str(model), str(data), "--format", "csv", *flags)
    assert run.returncode == 0, run.stderr
    text = os.fsdecode(run.stdout)
    for path in good:
        assert path in text
    assert "\x1b" not in text and "\x1b" not in os.fsdecode(run.stderr)

    shards = tmp_path / "shards"
    run = _ffeat(env, "extract", str(data), "-o", f"{shards}/", "--shard-size", "5",
                 "--features", *FEATURES, *flags)
    assert run.returncode == 0, run.stderr
    rows = tmp_path / "rows.csv"
    run = _ffeat(env, "predict", "--model", str(model), str(data), "--output", str(rows), *flags)
    assert run.returncode == 0, run.stderr
    text = os.fsdecode(rows.read_bytes())
    assert all(path in text for path in good) and "\x1b" not in text

    run = _ffeat(env, "evaluate", "--model", str(model), str(data), "--json", *flags)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["n_real"] + result["n_fake"] == len(good)
    assert len(result["errors"]) == len(names)

    assert _snapshot(data) == before
    assert not marker.exists(), marker.read_text()
