"""Hostile inputs on the reading side (issue 16): files that are not regular files,
symbolic link loops and dangling links, formats that would start an external program,
and JPEGs whose data ends before their declared size."""
from __future__ import annotations

import io
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image, ImageFile

import ffeat
from ffeat import ImageReadError, load_image
from ffeat.running._cache import FeatureCache
from ffeat.reading.dataset import describe_data
from conftest import WHOLE

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types")


def _jpeg(size: int = 64, seed: int = 0, **kw) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _release_fifo(path) -> None:
    """Unblock any reader stuck opening the FIFO ``path`` (a test that failed)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # no reader waiting


def _extract_within(seconds: float, *args, **kwargs):
    """``ffeat.extract(*args, **kwargs)``, failing the test if it takes longer."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(r=ffeat.extract(*args, **kwargs)),
                              daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"extract still running after {seconds} s (blocked)"
    return result["r"]


# ------------------------------------------------------------------ non-regular files

@pytest.mark.parametrize("cache", [True, False])
def test_fifo_socket_and_folder_named_jpg_are_error_records_at_once(tmp_path, cache):
    data = tmp_path / "data"
    data.mkdir()
    (data / "good.jpg").write_bytes(_jpeg())
    os.mkfifo(data / "fifo.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fspath(data / "sock.jpg"))
    try:
        result = _extract_within(20, data, features="spectrum", jobs=2, cache=cache)
        # given by name, a folder named .jpg is read as a file and refused too
        folder = tmp_path / "folder.jpg"
        folder.mkdir()
        named = _extract_within(20, [folder / "..", os.fspath(data / "fifo.jpg")],
                                features="spectrum", jobs=1, cache=cache)
    finally:
        _release_fifo(data / "fifo.jpg")
        sock.close()
    assert result.sources == [str(data / "good.jpg")]
    reasons = {e.source: e.reason for e in result.errors}
    assert "named pipe (FIFO)" in reasons[str(data / "fifo.jpg")]
    assert "socket" in reasons[str(data / "sock.jpg")]
    assert [e.reason.split(",")[0] for e in named.errors][-1] == \
        "is a named pipe (FIFO)"


def test_folder_and_device_are_refused_by_name(tmp_path):
    folder = tmp_path / "x.jpg"
    folder.mkdir()
    with pytest.raises(ImageReadError, match="is a folder, not an image file"):
        load_image(folder)
    with pytest.raises(ImageReadError, match="is a device, not an image file"):
        load_image("/dev/zero")  # would never end if read


def test_cache_key_never_opens_a_fifo_for_reading(tmp_path):
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    done = threading.Event()
    keys = []
    thread = threading.Thread(target=lambda: (keys.append(FeatureCache.key(fifo)), done.set()),
                              daemon=True)
    thread.start()
    try:
        assert done.wait(10), "FeatureCache.key blocked on a FIFO"
    finally:
        _release_fifo(fifo)
    assert keys == [None]


_STUCK_WORKER = textwrap.dedent("""
    import sys, threading
    import ffeat.reading._rows
    from ffeat.cli import main
    started = threading.Event()
    def stuck(*args, **kwargs):  # a read that never returns (stalled file system)
        started.set()
        threading.Event().wait()
    ffeat.reading._rows.load_image = stuck
    threading.Thread(target=lambda: (started.wait(), print("stuck", flush=True)),
                     daemon=True).start()
    sys.exit(main(sys.argv[1:]))
""")


def test_ctrl_c_ends_the_process_when_a_worker_is_stuck(tmp_path):
    (tmp_path / "a.jpg").write_bytes(_jpeg())
    proc = subprocess.Popen(
        [sys.executable, "-c", _STUCK_WORKER, "extract", str(tmp_path / "a.jpg"),
         "-o", str(tmp_path / "out.npz"), "--no-cache", "-j", "2", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # started as from a terminal: a SIGINT that an earlier test left ignored in this
        # process would be inherited, and Python then installs no Ctrl-C handler
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "stuck"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the process stayed alive after Ctrl-C")
    assert proc.returncode == 130 and "interrupted" in err


# ------------------------------------------------------------------ symbolic links

def _tiny_dataset(root):
    for i, cls in enumerate(["real", "real", "fake", "fake"]):
        (root / cls).mkdir(parents=True, exist_ok=True)
        (root / cls / f"{i}.jpg").write_bytes(_jpeg(48, seed=i))
    os.symlink("loop_b.jpg", root / "real" / "loop_a.jpg")
    os.symlink("loop_a.jpg", root / "real" / "loop_b.jpg")
    os.symlink("missing.jpg", root / "fake" / "dangling.jpg")


def test_link_loop_and_dangling_link_are_error_records_and_training_goes_on(tmp_path):
    _tiny_dataset(tmp_path)
    data = ffeat.load_dataset(tmp_path)
    assert len(data.paths) == 7
    assert describe_data(data) == os.path.realpath(tmp_path)
    assert describe_data(tmp_path / "real" / "loop_a.jpg").endswith("loop_a.jpg")
    detector = ffeat.Detector(features="spectrum", classifier="logistic", jobs=1, reading=WHOLE)
    with pytest.warns(UserWarning, match="3 of 7 images could not be read"):
        detector.fit(data)
    assert detector.training_["n_errors"] == 3
    reasons = {e.source: e.reason for e in detector.errors_}
    assert reasons[str(tmp_path / "real" / "loop_a.jpg")] == "symbolic link loop"
    assert reasons[str(tmp_path / "fake" / "dangling.jpg")].startswith("dangling symbolic")


# ------------------------------------------------------------------ no external program

_EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nnewpath 0 0 moveto showpage\n"


@pytest.fixture
def fake_ghostscript(tmp_path, monkeypatch):
    """A ``gs`` first on PATH that leaves a marker file when it runs; the marker's path."""
    bindir, marker = tmp_path / "bin", tmp_path / "gs-ran"
    bindir.mkdir()
    gs = bindir / "gs"
    gs.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && echo 10.0 && exit 0\n"
                  f"echo \"$@\" >> '{marker}'\nexit 1\n")
    gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # look it up again
    assert EpsImagePlugin.has_ghostscript()  # Pillow would run the fake
    return marker


def test_postscript_named_jpg_never_runs_ghostscript(tmp_path, fake_ghostscript):
    eps = tmp_path / "eps.jpg"
    eps.write_bytes(_EPS)
    (tmp_path / "good.jpg").write_bytes(_jpeg())
    for source in (eps, _EPS):
        with pytest.raises(ImageReadError, match="unsupported format: EPS"):
            load_image(source)
    result = ffeat.extract(tmp_path, features="spectrum", jobs=1, cache=True)
    assert result.sources == [str(tmp_path / "good.jpg")]
    assert "unsupported format: EPS" in result.errors[0].reason
    assert not fake_ghostscript.exists(), "an external program ran on input data"


def test_other_pillow_formats_are_unsupported_but_a_pil_image_is_the_callers_choice(
        tmp_path):
    im = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), np.uint8))
    buf = io.BytesIO()
    im.save(buf, "PPM")
    with pytest.raises(ImageReadError, match=r"unsupported format: PPM \(ffeat reads JPEG, "):
        load_image(buf.getvalue())
    with pytest.raises(ImageReadError, match="not an image Pillow can read"):
        load_image(b"not an image at all")
    buf.seek(0)
    with Image.open(buf) as opened:  # opened by the caller: read as given
        np.testing.assert_array_equal(load_image(opened), np.asarray(im))


# ------------------------------------------------------------------ truncated JPEGs

def _claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its start-of-frame segment patched to declare ``width`` x ``height``."""
    data, pos = bytearray(jpeg), 2
    while data[pos + 1] not in (0xC0, 0xC1, 0xC2):
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    data[pos + 5:pos + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture
def no_decoding(monkeypatch):
    def load(self):
        raise AssertionError("pixel data was decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_cut_short_with_an_end_marker_appended_is_refused(progressive):
    jpeg = _jpeg(128, progressive=progressive)
    assert load_image(jpeg).shape == (128, 128, 3)
    with pytest.raises(ImageReadError, match="truncated JPEG"):
        load_image(jpeg[:len(jpeg) // 4] + b"\xff\xd9")


def test_small_jpeg_claiming_9000x9000_is_refused_before_decoding(no_decoding):
    t0 = time.perf_counter()
    with pytest.raises(ImageReadError, match=r"truncated JPEG: 1,899,563 blocks declared need "
                                             r"at least 237,446 bytes"):
        load_image(_claiming(_jpeg(64), 9000, 9000))
    assert time.perf_counter() - t0 < 1


def test_padding_after_the_end_does_not_hide_missing_data():
    # junk after the end marker makes the file big enough: caught after decoding
    claim = _claiming(_jpeg(64), 2000, 2000) + bytes(200_000)
    with pytest.raises(ImageReadError, match="uniform gray libjpeg puts where data is missing"):
        load_image(claim)


def test_truncated_jpeg_is_refused_even_when_pillow_is_told_to_load_truncated_images(
        monkeypatch):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # ffeat never changes it
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    jpeg = _jpeg(128)
    with pytest.raises(ImageReadError, match="truncated JPEG"):
        load_image(jpeg[:len(jpeg) // 3])


@pytest.mark.parametrize("kind", ["gray", "progressive gray", "restart intervals",
                                  "gray top", "4:4:4"])
def test_genuine_jpegs_are_not_taken_for_truncated(kind):
    rgb = np.random.default_rng(3).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    rgb[:40] = 128  # a flat mid-gray band: fine anywhere but as the whole last block row
    im = Image.fromarray(rgb).convert("L" if kind.endswith("gray") else "RGB")
    kw = {"progressive gray": {"progressive": True}, "4:4:4": {"subsampling": 0},
          "restart intervals": {"restart_marker_rows": 1}}.get(kind, {})
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, **kw)
    assert load_image(buf.getvalue()).shape == (96, 80, 3)


def test_report_image_statistics_never_block_on_a_fifo(tmp_path):
    from ffeat.report._imagestats import _format_of, _min_side
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    answers = []
    thread = threading.Thread(target=lambda: answers.extend([_min_side(fifo), _format_of(fifo)]),
                              daemon=True)
    thread.start()
    thread.join(10)
    _release_fifo(fifo)
    assert answers == [None, "unknown"]


def test_manifest_rows_naming_broken_links_become_error_records(tmp_path):
    _tiny_dataset(tmp_path)
    rows = ["path,label"] + [f"{p.relative_to(tmp_path)},{p.parent.name}"
                             for p in sorted(tmp_path.glob("*/*.jpg"))]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    data = ffeat.load_dataset(tmp_path / "list.csv")
    assert len(data.paths) == 7
    result = ffeat.extract(data.paths, features="spectrum", jobs=1)
    assert len(result.sources) == 4 and len(result.errors) == 3


@pytest.mark.parametrize("cut", [b"\xff\xd8\xff\xe0\x00\x00", b"\xff\xd8\xff\xe0\x00\x01junk",
                                 b"\xff\xd8\xff\xda\x00\x02", b"\xff\xd8\xff"])
def test_broken_jpeg_markers_give_a_reason_not_a_crash(cut):
    try:  # the marker walk gives up; Pillow decodes what it can or says why not
        assert load_image(cut + _jpeg(48)[2:]).shape == (48, 48, 3)
    except ImageReadError as exc:
        assert exc.reason
