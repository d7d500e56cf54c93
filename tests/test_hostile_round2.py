"""Hostile inputs, second round (issue 29): every malformed file an error record naming
it, never the end of a batch; locks, manifests and cache rows that cannot be turned
against the analyst; names printed losslessly on any stdout; bounded options."""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ffeat
from ffeat import ImageReadError, load_image
from conftest import WHOLE

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types")

TIMEOUT = 120
FEATURES = ["gray", "spectrum"]


# ------------------------------------------------------------------ corpus helpers

def _encode(fmt: str, seed: int = 0, size=(48, 40), **kw) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kw)
    return buf.getvalue()


def _ifd_type_variants(tiff: bytes):
    """The TIFF ``tiff`` with the type field of each entry of its first IFD set to each
    of the 12 TIFF types in turn (a width stored as RATIONAL, offsets as DOUBLE, ...)."""
    order = "<" if tiff[:2] == b"II" else ">"
    start = struct.unpack(order + "I", tiff[4:8])[0]
    count = struct.unpack(order + "H", tiff[start:start + 2])[0]
    for i in range(count):
        at = start + 2 + 12 * i + 2
        for kind in range(1, 13):
            yield tiff[:at] + struct.pack(order + "H", kind) + tiff[at + 2:]


def _exif_jpeg() -> bytes:
    exif = Image.Exif()
    exif[274] = 6  # orientation: rotate
    exif[282] = 72.0
    exif[305] = "camera"
    return _encode("JPEG", exif=exif.tobytes())


#: (format, save options) of every accepted format, and a few variants.
_FORMATS = [("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("WEBP", {}),
            ("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {}),
            ("TIFF", {"compression": "tiff_deflate"}), ("GIF", {})]


def fuzz_corpus(per_format: int = 60, seed: int = 29) -> dict[str, bytes]:
    """Mutated headers of every accepted format, made from ``seed``: 1-4 bytes of the
    first 128 changed, the file cut short (sometimes), every 1-3 byte prefix, and every
    type of every TIFF tag (also in a JPEG's EXIF block)."""
    rng = np.random.default_rng(seed)
    corpus = {}
    for fmt, options in _FORMATS:
        data = _encode(fmt, **options)
        tag = f"{fmt}{'-' + '-'.join(map(str, options.values())) if options else ''}"
        for n in (1, 2, 3):
            corpus[f"{tag}-first{n}"] = data[:n]
        for k in range(per_format):
            mutated = bytearray(data[:int(rng.integers(1, len(data) + 1))]
                                if rng.random() < 0.3 else data)
            for _ in range(int(rng.integers(1, 5))):
                mutated[int(rng.integers(0, min(len(mutated), 128)))] = int(rng.integers(256))
            corpus[f"{tag}-mut{k}"] = bytes(mutated)
    for i, variant in enumerate(_ifd_type_variants(_encode("TIFF"))):
        corpus[f"tiff-type{i}"] = variant
    jpeg = _exif_jpeg()
    at = jpeg.index(b"Exif\0\0") + 6
    for i, variant in enumerate(_ifd_type_variants(jpeg[at:])):
        corpus[f"exif-type{i}"] = jpeg[:at] + variant
    return corpus


def _png(width: int, height: int, raw: bytes, interlace: int = 0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, interlace))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _rows(rgb: np.ndarray) -> bytes:
    return b"".join(b"\0" + row.tobytes() for row in rgb)


def _gray_bottom_jpeg(subsampling: int = 0) -> bytes:
    """A complete JPEG whose last 16 rows are mid-gray (128): letterbox bars."""
    rgb = np.random.default_rng(3).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    rgb[-16:] = 128
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=95, subsampling=subsampling)
    return buf.getvalue()


def _ffeat(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ffeat", *args], env=env,
                          capture_output=True, timeout=TIMEOUT, **kw)


# ------------------------------------------------------------------ N1: malformed files

def test_n1_fuzz_corpus_gives_only_image_read_errors():
    corpus = fuzz_corpus()
    assert len(corpus) > 500
    wrong = {}
    for name, data in corpus.items():
        try:
            load_image(data, name=name)
        except ImageReadError as exc:
            assert exc.source == name
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            wrong[name] = f"{type(exc).__name__}: {exc}"
    assert not wrong, wrong


@pytest.mark.parametrize("data", [b"x", b"\xff", b"\xff\xd8", b"xyz", b"BM", b"II*"])
def test_n1_one_to_three_byte_files_are_error_records(tmp_path, data):
    (tmp_path / "b.jpg").write_bytes(data)
    (tmp_path / "good.png").write_bytes(_encode("PNG"))
    result = ffeat.extract(tmp_path, features="gray", jobs=1)
    assert result.sources == [str(tmp_path / "good.png")]
    assert [e.source for e in result.errors] == [str(tmp_path / "b.jpg")]


def test_n1_fuzz_corpus_in_collect_mode_one_record_per_bad_file(tmp_path):
    corpus = fuzz_corpus(per_format=8)
    for name, data in corpus.items():
        (tmp_path / f"{name}.img").write_bytes(data)
    paths = sorted(str(p) for p in tmp_path.iterdir())
    result = ffeat.extract(paths, features="gray", jobs=2)
    assert len(result.sources) + len(result.errors) == len(paths)
    assert {e.source for e in result.errors} <= set(paths)


def _lying_ihdr_png() -> bytes:
    data = _encode("PNG")
    return data[:8] + (99).to_bytes(4, "big") + data[12:]


def _rational_width_tiff() -> bytes:
    for i, variant in enumerate(_ifd_type_variants(_encode("TIFF"))):
        if i // 12 == 0 and i % 12 + 1 == 5:  # first tag (ImageWidth) as RATIONAL
            return variant
    raise AssertionError


@pytest.fixture
def malformed_folder(tmp_path):
    """real/ and fake/ with 3 good PNGs each, and malformed files beside them."""
    data = tmp_path / "data"
    good = []
    for label in ("real", "fake"):
        (data / label).mkdir(parents=True)
        for i in range(3):
            path = data / label / f"{i}.png"
            path.write_bytes(_encode("PNG", seed=i + (10 if label == "fake" else 0)))
            good.append(str(path))
    bad = {"b.jpg": b"x", "ihdr.png": _lying_ihdr_png(), "width.tif": _rational_width_tiff(),
           "short.png": _png(64, 64, _rows(np.zeros((32, 64, 3), np.uint8)))}
    for name, content in bad.items():
        (data / "real" / name).write_bytes(content)
    return data, good, sorted(bad)


def test_n1_every_command_scores_around_malformed_files(malformed_folder, tmp_path):
    data, good, bad = malformed_folder
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    model = tmp_path / "m.model"
    run = _ffeat("train", str(data), "--faces", "off", "-o", str(model), "--features", *FEATURES,
                 "--classifier", "logistic", "-q", env=env)
    assert run.returncode == 0, run.stderr
    for name in bad:
        assert name in os.fsdecode(run.stderr)
    run = _ffeat("evaluate", str(data), "--model", str(model), "--json", "-q", env=env)
    assert run.returncode == 0, run.stderr
    assert sorted(Path(e["path"]).name for e in json.loads(run.stdout)["errors"]) == bad
    run = _ffeat("predict", str(data), "--model", str(model), "--format", "json", "-q",
                 env=env)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert sorted(Path(r["path"]).name for r in rows if r["error"]) == bad
    assert sum(r["error"] is None for r in rows) == len(good)
    out = tmp_path / "rows.csv"
    run = _ffeat("predict", str(data), "--model", str(model), "--output", str(out),
                 "--shard-size", "2", "-q", env=env)
    assert run.returncode == 0, run.stderr
    run = _ffeat("extract", str(data), "-o", f"{tmp_path / 'shards'}/", "--shard-size", "2",
                 "--features", *FEATURES, "-q", env=env)
    assert run.returncode == 0, run.stderr


# ------------------------------------------------------------------ N3: gray last row

@pytest.mark.parametrize("subsampling", [0, 2])
def test_n3_complete_jpeg_with_gray_last_row_is_read(subsampling):
    data = _gray_bottom_jpeg(subsampling)
    rgb = load_image(data)
    assert rgb.shape == (96, 80, 3) and (rgb[-8:] == 128).all()


@pytest.mark.parametrize("subsampling", [0, 2])
def test_n3_jpeg_cut_short_with_end_marker_is_still_refused(subsampling):
    data = _gray_bottom_jpeg(subsampling)
    with pytest.raises(ImageReadError, match="truncated JPEG"):
        load_image(data[:int(len(data) * 0.7)] + b"\xff\xd9")


# ------------------------------------------------------------------ N5: PNG rows missing

def test_n5_png_with_fewer_rows_than_declared_is_refused():
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert load_image(_png(64, 64, _rows(rgb))).shape == (64, 64, 3)
    with pytest.raises(ImageReadError, match="truncated or corrupt PNG"):
        load_image(_png(64, 64, _rows(rgb[:32])))


def test_n5_tiny_png_declaring_a_huge_image_is_refused_from_its_chunks():
    data = _png(9400, 9400, b"\0" * 10)
    assert len(data) < 120
    with pytest.raises(ImageReadError, match="truncated PNG") as info:
        load_image(data)
    assert "need at least" in info.value.reason


def test_n5_interlaced_png_complete_and_short():
    width, height, raw = 37, 45, b""
    rng = np.random.default_rng(1)
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                           (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        w, h = -(-(width - x0) // dx), -(-(height - y0) // dy)
        raw += b"".join(b"\0" + rng.integers(0, 256, w * 3, dtype=np.uint8).tobytes()
                        for _ in range(h))
    assert load_image(_png(width, height, raw, interlace=1)).shape == (45, 37, 3)
    with pytest.raises(ImageReadError, match="PNG"):
        load_image(_png(width, height, raw[:-5], interlace=1))


# ------------------------------------------------------------------ N18: format names

def test_n18_tga_and_xpm_are_named_as_such():
    with pytest.raises(ImageReadError, match="unsupported format: TGA"):
        load_image(_encode("TGA"))
    xpm = b'/* XPM */\nstatic char *x[] = {\n"2 2 1 1",\n"a c #000000",\n"aa",\n"aa"};\n'
    with pytest.raises(ImageReadError, match="unsupported format: XPM"):
        load_image(xpm)
    with pytest.raises(ImageReadError, match="unsupported format: XBM"):
        load_image(b"#define x_width 2\n#define x_height 2\nstatic char x_bits[] = {0,0};\n")


# ------------------------------------------------------------------ N2, N15: locks

def _image_folder(root: Path, n: int = 2) -> Path:
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / label / f"{i}.png").write_bytes(
                _encode("PNG", seed=i + (10 if label == "fake" else 0)))
    return root


@pytest.mark.parametrize("folder", [False, True], ids=["file.lock", "DIR/.lock"])
def test_n2_hard_link_at_the_lock_name_is_never_written(tmp_path, folder):
    from ffeat.running import _lock

    victim = tmp_path / "input.jpg"
    victim.write_bytes(_encode("JPEG"))
    before = victim.read_bytes()
    out = tmp_path / ("shards" if folder else "out.csv")
    if folder:
        out.mkdir()
    os.link(victim, _lock.lock_path(out))
    with pytest.raises(OSError, match="hard link"):
        with _lock.locked(out):
            pass
    assert victim.read_bytes() == before
    assert os.stat(victim).st_nlink == 2  # the link is left as it was, not removed


def test_n2_other_files_at_the_lock_name_are_left_alone(tmp_path):
    from ffeat.running import _lock

    out = tmp_path / "out.csv"
    lock = _lock.lock_path(out)
    lock.write_text("my notes, not a lock\n")
    with pytest.raises(OSError, match="other content"):
        with _lock.locked(out):
            pass
    assert lock.read_text() == "my notes, not a lock\n"
    lock.unlink()
    os.mkfifo(lock)
    done = threading.Event()
    caught = []

    def take():
        try:
            with _lock.locked(out):
                pass
        except OSError as exc:
            caught.append(exc)
        done.set()

    threading.Thread(target=take, daemon=True).start()
    assert done.wait(10), "locking blocked on a FIFO at the lock's name"
    assert caught and "not a regular file" in str(caught[0])
    lock.unlink()
    lock.write_text("pid 1 on gone since 2020-01-01T00:00:00+00:00\n")  # a killed run's
    with _lock.locked(out):
        assert f"pid {os.getpid()}" in lock.read_text()
    assert not lock.exists()


@pytest.mark.parametrize("command", ["extract", "train"])
def test_n15_single_file_outputs_are_locked(tmp_path, command, capsys):
    from ffeat.running import _lock
    from ffeat.cli import main

    data = _image_folder(tmp_path / "data")
    out = tmp_path / ("f.npz" if command == "extract" else "f.model")
    args = [command, str(data), "-o", str(out), "--features", "gray", "-q", "--no-cache"]
    if command == "train":
        args += ["--classifier", "logistic", "--calibration", "none", "--band", "none",
                 "--faces", "off"]
    with _lock.locked(out):
        assert main(args) == 2
        assert "being written by another ffeat run" in capsys.readouterr().err
        assert not out.exists()
    assert main(args) == 0 and out.is_file()
    assert not _lock.lock_path(out).exists()


# ------------------------------------------------------------------ N16, N11: the cache

def _rows_in(cache: Path) -> list[Path]:
    """The row files of a cache folder (whatever their format)."""
    return [p for p in cache.rglob("*") if p.is_file() and len(p.stem) >= 64]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_n16_a_planted_cache_row_is_not_trusted(tmp_path):
    data = _image_folder(tmp_path / "data")
    cache = tmp_path / "cache"
    first = ffeat.extract(data, features="gray", cache=cache, jobs=1)
    rows = _rows_in(cache)
    assert len(rows) == len(first.sources)
    n = first.X.shape[1]
    for row in rows:  # what an attacker with write access to the folder plants
        content = row.read_bytes()
        row.write_bytes(content[:-4 * n] + np.full(n, 7.0, dtype="<f4").tobytes())
    again = ffeat.extract(data, features="gray", cache=cache, jobs=1)
    np.testing.assert_array_equal(again.X, first.X)


def test_n16_cache_key_file_is_private_and_a_shared_one_is_not_used(tmp_path):
    from ffeat.running._cache import KEY_NAME

    data = _image_folder(tmp_path / "data", n=1)
    cache = tmp_path / "cache"
    ffeat.extract(data, features="gray", cache=cache, jobs=1)
    key = cache / KEY_NAME
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o077 == 0
    key.chmod(0o644)
    with pytest.warns(RuntimeWarning, match="not trusted"):
        result = ffeat.extract(data, features="gray", cache=cache, jobs=1)
    assert len(result.sources) == 2


def test_n16_files_over_the_size_bound_are_not_hashed(tmp_path):
    from ffeat.running._cache import FeatureCache

    big = tmp_path / "sparse.jpg"
    with open(big, "wb") as fh:
        fh.truncate((256 << 20) + 1)  # sparse: costs no disk
    assert FeatureCache.key(big) is None


def test_n11_temporary_rows_of_killed_runs_are_removed(tmp_path):
    data = _image_folder(tmp_path / "data", n=1)
    cache = tmp_path / "cache"
    ffeat.extract(data, features="gray", cache=cache, jobs=1)
    row = _rows_in(cache)[0]
    stale = row.parent / f".{row.name}.ffeat-{_dead_pid()}-abcd1234.tmp"
    stale.write_bytes(b"half a row")
    live = row.parent / f".{row.name}.ffeat-{os.getpid()}-abcd1234.tmp"
    live.write_bytes(b"a row being written now")
    ffeat.extract(data, features="gray", cache=cache, jobs=1)
    assert not stale.exists()
    assert live.exists()


# ------------------------------------------------------------------ N8: FIFOs never waited on

def _within(seconds: float, call):
    """``call()`` in a thread; its result or exception, failing the test when it blocks."""
    box = {}

    def run():
        try:
            box["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s (blocked on a FIFO?)"
    return box


def _release(fifo: Path) -> None:
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(8)]
    path = tmp_path_factory.mktemp("model") / "m.model"
    ffeat.Detector(["gray"], "logistic", cache=False, calibration=None, band=None,
                   reading=WHOLE).fit(images, [0, 1] * 4).save(path)
    return path


def test_n8_fifo_at_the_shard_manifest_is_refused_at_once(tmp_path):
    from ffeat.running._manifest import ResumeError

    data = _image_folder(tmp_path / "data", n=1)
    shards = tmp_path / "shards"
    shards.mkdir()
    os.mkfifo(shards / "manifest.json")
    try:
        box = _within(20, lambda: ffeat.extract_to(data, shards, "gray"))
    finally:
        _release(shards / "manifest.json")
    assert isinstance(box.get("error"), ResumeError)
    assert "named pipe (FIFO)" in str(box["error"])


def test_n8_fifo_at_the_csv_manifest_is_refused_at_once(tmp_path, small_model):
    from ffeat.running._manifest import ResumeError

    data = _image_folder(tmp_path / "data", n=1)
    out = tmp_path / "rows.csv"
    fifo = tmp_path / "rows.csv.manifest.json"
    os.mkfifo(fifo)
    try:
        box = _within(20, lambda: ffeat.predict_to(small_model, data, out))
    finally:
        _release(fifo)
    assert isinstance(box.get("error"), ResumeError), box
    assert "named pipe (FIFO)" in str(box["error"])


def test_n8_fifo_at_a_cache_row_is_a_miss(tmp_path):
    data = _image_folder(tmp_path / "data", n=1)
    cache = tmp_path / "cache"
    first = ffeat.extract(data, features="gray", cache=cache, jobs=1)
    fifos = _rows_in(cache)
    for row in fifos:
        row.unlink()
        os.mkfifo(row)
    try:
        box = _within(20, lambda: ffeat.extract(data, features="gray", cache=cache, jobs=1))
    finally:
        for row in fifos:
            _release(row)
    np.testing.assert_array_equal(box["result"].X, first.X)


# ------------------------------------------------------------------ N18: misleading messages

def test_n18_fifo_given_as_the_model_is_named_as_a_fifo(tmp_path, capsys):
    from ffeat.cli import main

    fifo = tmp_path / "m.model"
    os.mkfifo(fifo)
    try:
        box = _within(20, lambda: main(["model", "--model", str(fifo)]))
    finally:
        _release(fifo)
    assert box["result"] == 2
    err = capsys.readouterr().err
    assert "named pipe (FIFO), not a model file" in err and "no such" not in err


def test_n18_fifo_in_a_manifest_is_an_error_record_not_a_missing_manifest(tmp_path):
    data = _image_folder(tmp_path / "data", n=2)
    os.mkfifo(data / "real" / "pipe.png")
    manifest = data / "data.csv"
    rows = ["path,label", "real/0.png,real", "real/1.png,real", "fake/0.png,fake",
            "fake/1.png,fake", "real/pipe.png,real"]
    manifest.write_text("\n".join(rows) + "\n")
    dataset = ffeat.load_dataset(manifest)
    assert len(dataset.paths) == 5
    try:
        box = _within(20, lambda: ffeat.extract(dataset.paths, features="gray", jobs=1))
    finally:
        _release(data / "real" / "pipe.png")
    [error] = box["result"].errors
    assert error.source.endswith("pipe.png") and "named pipe (FIFO)" in error.reason
    with pytest.raises(ValueError, match="named pipe"):
        ffeat.load_dataset(data / "real" / "pipe.png")


# ------------------------------------------------------------------ N10: training metadata

def _model_with_training(path: Path, small_model: Path, training) -> Path:
    """A copy of ``small_model`` whose training record is ``training`` (checksum redone)."""
    from ffeat.models import _persist

    detector = ffeat.Detector.load(small_model)
    detector.training_ = training
    _persist.save(detector, path)
    return path


@pytest.mark.parametrize("training", [{"n_real": "many", "n_fake": 3},
                                      {"n_real": 2, "n_fake": [1]},
                                      {"augment": "jpeg", "n_real": 1},
                                      {"data": 7}, ["not", "a", "dict"]],
                         ids=["str-count", "list-count", "str-augment", "int-data", "list"])
def test_n10_model_command_refuses_training_metadata_of_wrong_types(tmp_path, small_model,
                                                                     training, capsys):
    from ffeat.cli import main

    path = _model_with_training(tmp_path / "bad.model", small_model, training)
    assert main(["model", "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert "malformed training record" in err and "Traceback" not in err


# ------------------------------------------------------------------ N14: API arguments

def test_n14_none_arguments_get_clear_type_errors(tmp_path, small_model):
    rgb = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(TypeError, match="features must be a family name"):
        ffeat.extract(rgb, features=None)
    with pytest.raises(TypeError, match="features must be a family name"):
        ffeat.Detector(features=None, reading=WHOLE).fit([rgb] * 4, [0, 1] * 2)
    with pytest.raises(TypeError, match="load needs a file path.*Detector.default"):
        ffeat.Detector.load(None)
    with pytest.raises(TypeError, match="save needs a file path"):
        ffeat.Detector.load(small_model).save(None)


def test_n14_nul_byte_in_a_path_is_an_error_record(tmp_path):
    good = _image_folder(tmp_path / "data", n=1) / "real" / "0.png"
    for cache in (False, tmp_path / "cache"):
        result = ffeat.extract([os.fspath(good) + "\0x.png", good], features="gray",
                               cache=cache)
        assert result.sources == [str(good)]
        assert "NUL byte" in result.errors[0].reason


def test_n14_one_d_array_of_paths_is_read_alike_by_extract_and_detector(tmp_path,
                                                                      small_model):
    data = _image_folder(tmp_path / "data", n=1)
    paths = np.array(sorted(str(p) for p in data.rglob("*.png")))
    result = ffeat.extract(paths, features="gray")
    assert result.sources == list(paths) and not result.errors
    np.testing.assert_array_equal(result.X, ffeat.extract(list(paths), features="gray").X)
    detector = ffeat.Detector.load(small_model)
    np.testing.assert_array_equal(detector.decision_function(paths),
                                  detector.decision_function(list(paths)))


# ------------------------------------------------------------------ N7: others' temp files

def _hour_old(path: Path, content: bytes = b"mine") -> Path:
    path.write_bytes(content)
    old = __import__("time").time() - 3600
    os.utime(path, (old, old))
    return path


def test_n7_folder_outputs_leave_temp_files_they_do_not_own(tmp_path, small_model, capsys):
    from ffeat.cli import main

    data = _image_folder(tmp_path / "data", n=1)
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "notes.txt").write_text("not a folder of shards")
    mine = _hour_old(shards / ".draft.abcdefgh.tmp")
    dead = _hour_old(shards / f".notes.txt.ffeat-{_dead_pid()}-abcd1234.tmp")
    assert main(["extract", str(data), "-o", f"{shards}/", "--features", "gray", "-q",
                 "--no-cache"]) == 2  # refused: not empty, no manifest
    assert mine.exists() and dead.exists()

    report = tmp_path / "report"
    report.mkdir()
    theirs = _hour_old(report / ".index.html.abcdefgh.tmp")
    main(["evaluate", str(data), "--model", str(small_model), "--report", str(report), "-q",
          "--no-cache"])
    capsys.readouterr()
    assert theirs.exists()


def test_n7_an_accepted_shard_folder_is_cleared_of_its_dead_writers_temps(tmp_path):
    from ffeat.cli import main

    data = _image_folder(tmp_path / "data", n=1)
    shards = tmp_path / "shards"
    assert main(["extract", str(data), "-o", f"{shards}/", "--features", "gray", "-q",
                 "--no-cache"]) == 0
    stale = _hour_old(shards / f".shard-00001.npz.ffeat-{_dead_pid()}-abcd1234.tmp")
    legacy = _hour_old(shards / ".shard-00001.npz.abcdefgh.tmp")
    foreign = _hour_old(shards / f".notes.txt.ffeat-{_dead_pid()}-abcd1234.tmp")
    assert main(["extract", str(data), "-o", f"{shards}/", "--features", "gray", "-q",
                 "--no-cache"]) == 0
    assert not stale.exists()
    assert legacy.exists() and foreign.exists()


# ------------------------------------------------------------------ N13: bounded options

@pytest.mark.parametrize("option", [["--shard-size", str(10 ** 20)], ["--shard-size", str(2 ** 31)],
                                    ["-j", "30000"], ["--workers", str(10 ** 12)]],
                         ids=["shard-size-huge", "shard-size-c-int", "jobs", "workers"])
def test_n13_out_of_range_counts_are_usage_errors(tmp_path, option, capsys):
    from ffeat.cli import main

    data = _image_folder(tmp_path / "data", n=1)
    with pytest.raises(SystemExit) as info:
        main(["extract", str(data), "-o", f"{tmp_path / 'shards'}/", "--features", "gray",
              "-q", "--no-cache", *option])
    assert info.value.code == 2
    assert "must be at most" in capsys.readouterr().err


def test_n13_api_bounds_jobs_and_shard_size(tmp_path):
    data = _image_folder(tmp_path / "data", n=1)
    with pytest.raises(ValueError, match="jobs must be at most"):
        ffeat.extract(data, features="gray", jobs=30000)
    with pytest.raises(ValueError, match="shard_size must be at most"):
        ffeat.extract_to(data, tmp_path / "shards", "gray", shard_size=10 ** 20)
    from ffeat.running._workers import MAX_JOBS, DaemonPool
    with DaemonPool(10 ** 6) as pool:  # other callers get at most MAX_JOBS threads
        assert pool._jobs == MAX_JOBS


# ------------------------------------------------------------------ N9, N17: names on stdout

_NAMES = ["café.jpg", "写真.png", "a\u200fb.png", "zero\u200bwidth.png", "lrm\u200e.png",
          "=cmd.png", "'quote.png", "back\\slash.png", "nb\u00a0sp.png"]
_RAW_NAMES = [b"bad\xff.png", b"new\nline.png"]


@pytest.fixture
def named_folder(tmp_path):
    """A folder of PNGs with names that need escaping; returns it and the exact names."""
    folder = tmp_path / "named"
    folder.mkdir()
    names = _NAMES + [os.fsdecode(n) for n in _RAW_NAMES]
    for i, name in enumerate(names):
        (folder / name).write_bytes(_encode("PNG", seed=i))
    return folder, names


@pytest.mark.parametrize("env", [{"LC_ALL": "C", "PYTHONIOENCODING": ""},
                                 {"PYTHONIOENCODING": "ascii"},
                                 {"PYTHONIOENCODING": "latin-1"}],
                         ids=["LC_ALL=C", "ascii", "latin-1"])
@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_n9_ascii_or_latin1_stdout_prints_every_name(named_folder, small_model, env, fmt):
    folder, names = named_folder
    environ = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_CTYPE")}
    environ.update(env)
    environ.pop("PYTHONUTF8", None)
    run = _ffeat("predict", str(folder), "--model", str(small_model), "--format", fmt,
                 "-q", "--no-cache", env=environ)
    assert run.returncode == 0, run.stderr
    assert b"Traceback" not in run.stderr
    text = run.stdout.decode(env["PYTHONIOENCODING"] or "utf-8")  # C: UTF-8 (PEP 538)
    assert len(text.splitlines()) == 1 + len(names)


def test_n17_invisible_and_bidi_characters_are_escaped():
    from ffeat._text import printable

    for ch in ("\u200e", "\u200f", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff",
               "\u061c", "\U000e0041"):
        assert ch not in printable(f"a{ch}b.png")
    assert printable("a\u200fb") == "a\\u200fb"


def test_n17_csv_path_column_maps_back_to_the_exact_name(named_folder, small_model,
                                                          tmp_path):
    import csv

    from ffeat._text import unescape

    folder, names = named_folder
    expected = {os.fspath(folder / n) for n in names}
    for encoding in ("utf-8", "ascii"):
        environ = dict(os.environ, PYTHONIOENCODING=encoding)
        run = _ffeat("predict", str(folder), "--model", str(small_model), "--format", "csv",
                     "-q", "--no-cache", env=environ)
        assert run.returncode == 0, run.stderr
        rows = list(csv.DictReader(io.StringIO(run.stdout.decode(encoding))))
        assert {unescape(r["path"], r["path_escaped"] == "1") for r in rows} == expected
        assert not any(c in run.stdout.decode(encoding) for c in "\u200e\u200f\u200b")
    out = tmp_path / "rows.csv"
    run = _ffeat("predict", str(folder), "--model", str(small_model), "--output", str(out),
                 "-q", "--no-cache")
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert {unescape(r["path"], r["path_escaped"] == "1") for r in rows} == expected
    run = _ffeat("predict", str(folder), "--model", str(small_model), "--format", "json",
                 "-q", "--no-cache")
    assert {r["path"] for r in json.loads(run.stdout)} == expected  # JSON: exact as is


# ------------------------------------------------------------------ N12: closed or full stdout

def test_n12_closed_stdout_is_refused_before_scoring(small_model, tmp_path):
    data = _image_folder(tmp_path / "data", n=1)
    run = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "ffeat",
                          "predict", str(data), "--model", str(small_model), "--no-cache"],
                         capture_output=False, stderr=subprocess.PIPE, timeout=TIMEOUT)
    err = run.stderr.decode()
    assert run.returncode == 2 and "Traceback" not in err
    assert "standard output is closed" in err


def test_n12_full_stdout_is_a_clean_error(small_model, tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    data = _image_folder(tmp_path / "data", n=1)
    with open("/dev/full", "w") as full:
        run = subprocess.run([sys.executable, "-m", "ffeat", "predict", str(data), "--model",
                              str(small_model), "--no-cache"], stdout=full,
                             stderr=subprocess.PIPE, timeout=TIMEOUT)
    err = run.stderr.decode()
    assert run.returncode == 1 and "Traceback" not in err
    assert "cannot write the results to standard output" in err


# ------------------------------------------------------------------ N6: report names

def test_n6_report_with_non_utf8_names(tmp_path, small_model):
    pytest.importorskip("matplotlib")
    data = tmp_path / os.fsdecode(b"data\xff")
    for label in ("real", "fake"):
        (data / label).mkdir(parents=True)
        for i in range(3):
            name = os.fsdecode(b"img\xfe\x1b%d.png" % i)
            (data / label / name).write_bytes(
                _encode("PNG", seed=i + (10 if label == "fake" else 0)))
    report = tmp_path / "report"
    run = _ffeat("evaluate", str(data), "--model", str(small_model), "--report", str(report),
                 "-q", "--no-cache")
    assert run.returncode == 0, run.stderr
    page = (report / "index.html").read_bytes()
    text = page.decode("utf-8")  # valid UTF-8
    assert "data\\xff" in text and "\x1b" not in text
