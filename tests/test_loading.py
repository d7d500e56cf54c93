"""Tests of ``ffeat.load_image`` (the rules in loading.py's docstring) and of
``ffeat.extract``'s handling of folders, labels and unreadable inputs."""
from __future__ import annotations

import io
import os
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

import ffeat
from ffeat import ImageReadError, load_image

H, W = 40, 48


def _rgb(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _patched_png(width: int, height: int) -> bytes:
    """A valid small PNG whose IHDR claims ``width`` x ``height`` (CRC fixed)."""
    png = bytearray(_encode(Image.fromarray(_rgb()), "PNG"))
    assert png[12:16] == b"IHDR"
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


def make_bad_files(folder) -> dict[str, str]:
    """One unreadable file per failure kind, in ``folder``; name -> expected reason word."""
    jpeg = _encode(Image.fromarray(_rgb(64, 64)), "JPEG", quality=90)
    files = {
        "empty.jpg": (b"", "empty"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "text.jpg": (b"this is not a picture\n" * 20, "not an image"),
        "one_pixel.png": (_encode(Image.new("RGB", (1, 1)), "PNG"), "too small"),
        "small.png": (_encode(Image.fromarray(_rgb(40, 31)), "PNG"), "too small"),
        "bomb.png": (_patched_png(100_000, 100_000), "too large"),
    }
    reasons = {}
    for name, (data, reason) in files.items():
        (folder / name).write_bytes(data)
        reasons[str(folder / name)] = reason
    return reasons


def _snapshot(folder) -> dict[str, tuple[bytes, int]]:
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- formats

@pytest.mark.parametrize("fmt,ext,lossless", [
    ("JPEG", "jpg", False), ("PNG", "png", True), ("WEBP", "webp", False),
    ("BMP", "bmp", True), ("TIFF", "tif", True)])
def test_formats_load_as_rgb_uint8(tmp_path, fmt, ext, lossless):
    src = _rgb()
    path = tmp_path / f"image.{ext}"
    Image.fromarray(src).save(path, fmt)
    out = load_image(path)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    if lossless:
        np.testing.assert_array_equal(out, src)
    else:
        assert np.abs(out.astype(int) - src).mean() < 60  # same picture, lossy


def test_animated_gif_gives_first_frame(tmp_path):
    colours = [(200, 10, 10), (10, 200, 10), (10, 10, 200)]
    frames = [Image.new("RGB", (W, H), c) for c in colours]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as im:
        assert im.n_frames == 3
    out = load_image(path)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert (out == np.array(colours[0], np.uint8)).all()


# --------------------------------------------------------------------------- modes

def _mode_image(mode: str) -> tuple[Image.Image, tuple[int, int, int]]:
    """An image of ``mode`` whose every pixel should load as the returned RGB."""
    if mode == "L":
        return Image.new("L", (W, H), 77), (77, 77, 77)
    if mode == "LA":  # alpha dropped, not composited
        return Image.new("LA", (W, H), (77, 0)), (77, 77, 77)
    if mode == "P":
        im = Image.new("P", (W, H), 3)
        im.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0, 0, 0] * 252)
        return im, (10, 20, 30)
    if mode == "RGB":
        return Image.new("RGB", (W, H), (1, 128, 254)), (1, 128, 254)
    if mode == "RGBA":  # a fully transparent pixel keeps its colour
        return Image.new("RGBA", (W, H), (1, 128, 254, 0)), (1, 128, 254)
    if mode == "CMYK":  # pure cyan
        return Image.new("CMYK", (W, H), (255, 0, 0, 0)), (0, 255, 255)
    if mode == "I;16":
        return Image.fromarray(np.full((H, W), 65535, np.uint16)), (255, 255, 255)
    if mode == "I":
        return Image.fromarray(np.full((H, W), 32768, np.int32)), (128, 128, 128)
    if mode == "F":  # 0-1 range
        return Image.fromarray(np.full((H, W), 0.5, np.float32)), (128, 128, 128)
    if mode == "1":
        return Image.new("1", (W, H), 1), (255, 255, 255)
    raise AssertionError(mode)


@pytest.mark.parametrize("via", ["pil", "tiff"])
@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I",
                                  "F", "1"])
def test_modes_convert_to_rgb(tmp_path, mode, via):
    im, expected = _mode_image(mode)
    assert im.mode == mode
    if via == "tiff":
        path = tmp_path / "m.tif"
        im.save(path)
        with Image.open(path) as check:
            assert check.mode == mode  # the file really holds that mode
        out = load_image(path)
    else:
        out = load_image(im)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert (out == np.array(expected, np.uint8)).all(), out[0, 0]


def test_gray_gives_three_equal_channels():
    gray = np.random.default_rng(1).integers(0, 256, (H, W), dtype=np.uint8)
    out = load_image(Image.fromarray(gray, "L"))
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_16_bit_png_is_scaled(tmp_path):
    a = np.array([[0, 257, 32768, 65535]] * 2, np.uint16).repeat(16, 0).repeat(8, 1)
    path = tmp_path / "deep.png"
    Image.fromarray(a).save(path)
    out = load_image(path)
    assert out[0, ::8, 0].tolist() == [0, 1, 128, 255]


def test_float_image_over_1_is_taken_as_0_255():
    out = load_image(Image.fromarray(np.full((H, W), 200.0, np.float32)))
    assert (out == 200).all()


@pytest.mark.parametrize("value", [-0.5, 300.0, np.nan])
def test_float_image_out_of_range_is_refused(tmp_path, value):
    path = tmp_path / "bad_float.tif"
    a = np.full((H, W), 0.25, np.float32)
    a[3, 4] = value
    Image.fromarray(a).save(path)
    with pytest.raises(ImageReadError) as info:
        load_image(path)
    assert str(path) in str(info.value)
    if np.isfinite(value):
        assert f"{value:g}" in info.value.reason  # says which values are wrong
        assert "0-255" in info.value.reason  # and what an F image may hold


@pytest.mark.parametrize("value", [-1, 70000])
def test_int32_image_out_of_range_is_refused(value):
    a = np.full((H, W), 100, np.int32)
    a[0, 0] = value
    with pytest.raises(ImageReadError, match="65535"):
        load_image(Image.fromarray(a))


# --------------------------------------------------------------------------- EXIF

@pytest.mark.parametrize("orientation,white_at", [(6, "bottom"), (8, "top")])
def test_exif_orientation_is_applied(tmp_path, orientation, white_at):
    a = np.zeros((H, 64, 3), np.uint8)  # stored 64 wide, 40 high
    a[:, 32:] = 255  # right half white
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"rot{orientation}.jpg"
    Image.fromarray(a).save(path, "JPEG", exif=exif, quality=95)

    for source in (path, path.read_bytes()):
        out = load_image(source)
        assert out.shape == (64, H, 3)  # displayed 40 wide, 64 high
        top, bottom = out[:24].mean(), out[40:].mean()
        assert (bottom > 200 and top < 50) if white_at == "bottom" else \
            (top > 200 and bottom < 50)
    with Image.open(path) as im:
        assert load_image(im).shape == (64, H, 3)


# --------------------------------------------------------------------------- arrays

def _array_cases():
    rgb = _rgb()
    gray = rgb[:, :, 0].copy()
    rgba = np.dstack([rgb, np.zeros((H, W), np.uint8)])
    u16 = (rgb.astype(np.uint16) * 257)
    boolean = gray > 127
    flt = rgb / 255.0
    return {
        "gray_2d": (gray, np.dstack([gray] * 3)),
        "gray_hw1": (gray[:, :, None], np.dstack([gray] * 3)),
        "rgb": (rgb, rgb),
        "rgba": (rgba, rgb),
        "uint16": (u16, rgb),
        "bool": (boolean, np.dstack([boolean.astype(np.uint8) * 255] * 3)),
        "float64": (flt, rgb),
        "float32": (flt.astype(np.float32), rgb),
    }


@pytest.mark.parametrize("case", list(_array_cases()))
def test_arrays(case):
    arr, expected = _array_cases()[case]
    before = arr.copy()
    out = load_image(arr)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(arr, before)  # input untouched
    assert arr.dtype == before.dtype
    assert not np.shares_memory(out, arr)  # a new array, never a view of the input


def test_float_array_outside_0_1_is_refused_with_advice():
    arr = _rgb().astype(np.float64)  # 0-255 floats: the classic mistake
    before = arr.copy()
    with pytest.raises(ImageReadError) as info:
        load_image(arr)
    msg = str(info.value)
    assert "<array>" in msg and "[0, 1]" in msg and "divide by 255" in msg
    np.testing.assert_array_equal(arr, before)


@pytest.mark.parametrize("arr,words", [
    (np.zeros((H, W, 2), np.uint8), "shape"),
    (np.zeros((H, W, 3, 1), np.uint8), "shape"),
    (np.zeros((H, W, 3), np.int64), "dtype"),
    (np.full((H, W), np.nan), "NaN"),
])
def test_bad_arrays_are_refused(arr, words):
    with pytest.raises(ImageReadError, match=words):
        load_image(arr)


def test_bytes_and_pil_inputs_match_the_file(tmp_path):
    src = _rgb()
    path = tmp_path / "x.png"
    Image.fromarray(src).save(path)
    data = path.read_bytes()
    for source in (data, bytearray(data), memoryview(data), Image.fromarray(src)):
        np.testing.assert_array_equal(load_image(source), src)


def test_unsupported_input_type():
    with pytest.raises(ImageReadError, match="give a path, bytes"):
        load_image(12345)


# --------------------------------------------------------------------------- bad files

def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(ImageReadError) as info:
        load_image(path)
    assert info.value.source == str(path) and "no such file" in str(info.value)


def test_bad_files_name_the_file_and_the_reason(tmp_path):
    for path, reason in make_bad_files(tmp_path).items():
        with pytest.raises(ImageReadError) as info:
            load_image(path)
        assert info.value.source == path
        assert str(info.value).startswith(path + ": ")
        assert reason in info.value.reason, (path, info.value.reason)


def test_min_size_boundary(tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(_rgb(40, 31)).save(path)  # 31 wide, 40 high
    with pytest.raises(ImageReadError, match="31x40"):
        load_image(path)
    assert load_image(path, min_size=31).shape == (40, 31, 3)
    with pytest.raises(ImageReadError, match="too small"):
        load_image(np.zeros((31, 40), np.uint8))  # arrays too


@pytest.fixture
def no_decoding(monkeypatch):
    """Make any pixel decoding fail loudly, to prove a refusal came from the header."""
    def load(self):
        raise AssertionError("pixel data was decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def test_decompression_bomb_is_refused_from_header(tmp_path, no_decoding):
    path = tmp_path / "bomb.png"
    path.write_bytes(_patched_png(100_000, 100_000))
    t0 = time.perf_counter()
    with pytest.raises(ImageReadError, match="too large") as info:
        load_image(path)
    assert time.perf_counter() - t0 < 1.0
    assert info.value.source == str(path)
    # Under Pillow's own limit but over ours: refused by max_pixels, not decoded.
    with pytest.raises(ImageReadError, match="max_pixels"):
        load_image(_patched_png(5000, 5000), max_pixels=10**6)


def test_no_decoding_fixture_really_blocks_decoding(tmp_path, no_decoding):
    # any exception a decoder raises is an ImageReadError naming the input (issue 29)
    with pytest.raises(ImageReadError, match="AssertionError: pixel data was decoded"):
        load_image(_encode(Image.fromarray(_rgb()), "PNG"))


def test_max_pixels_boundary(tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(_rgb(64, 64)).save(path)
    with pytest.raises(ImageReadError, match="64x64 = 4,096 pixels, over max_pixels=4,095"):
        load_image(path, max_pixels=4095)
    assert load_image(path, max_pixels=4096).shape == (64, 64, 3)


# --------------------------------------------------------------------------- extract

def _good_images(folder, names=("a.png", "b.jpg", "c.webp")) -> list[str]:
    paths = []
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_rgb(48, 40, seed=i)).save(path)
        paths.append(str(path))
    return paths


def test_extract_skips_bad_files_and_keeps_good_rows(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    good = _good_images(data)
    bad = make_bad_files(data)
    missing = str(tmp_path / "missing.png")
    before = _snapshot(tmp_path)

    result = ffeat.extract([data, missing], jobs=2)

    assert result.X.shape == (3, len(result.names)) and result.X.dtype == np.float32
    assert np.isfinite(result.X).all()
    assert result.sources == sorted(good)
    assert result.labels.tolist() == [-1, -1, -1]
    errors = {e.source: e.reason for e in result.errors}
    assert set(errors) == set(bad) | {missing}
    assert len(result.errors) == len(bad) + 1
    for path, reason in bad.items():
        assert reason in errors[path]
        assert str(ffeat.ImageError(path, errors[path])).startswith(path)
    assert "no such file" in errors[missing]
    assert _snapshot(tmp_path) == before  # nothing modified, touched or created


def test_extract_raise_mode(tmp_path):
    _good_images(tmp_path)
    bad = make_bad_files(tmp_path)
    with pytest.raises(ImageReadError) as info:
        ffeat.extract(tmp_path, on_error="raise", jobs=2)
    first_bad = next(p for p in sorted(map(str, tmp_path.rglob("*"))) if p in bad)
    assert info.value.source == first_bad
    with pytest.raises(ValueError, match="on_error"):
        ffeat.extract(tmp_path, on_error="ignore")


def test_folder_scan_skips_hidden_and_other_extensions(tmp_path):
    data = tmp_path / "data"
    good = _good_images(data, ("a.png", "sub/B.PNG"))
    _good_images(data, (".hidden.png", ".cache/c.png"))
    (data / "notes.txt").write_text("not an image")
    odd = tmp_path / "picture.dat"
    Image.fromarray(_rgb()).save(odd, "PNG")  # a PNG under an odd name

    result = ffeat.extract(data)
    assert result.sources == good and result.errors == []

    result = ffeat.extract([odd, data / "notes.txt"])  # named files are always read
    assert result.sources == [str(odd)]
    assert [e.source for e in result.errors] == [str(data / "notes.txt")]


def test_labels_from_real_fake_folders_at_any_depth(tmp_path):
    root = tmp_path / "set"
    paths = _good_images(root, ("train/real/x.png", "a/b/fake/y.png", "other/z.png",
                                "fake/sub/real/w.png", "Real/v.png"))
    expected = {paths[0]: 0, paths[1]: 1, paths[2]: -1, paths[3]: 0, paths[4]: 0}
    result = ffeat.extract(root, features="gray")
    assert result.labels.dtype == np.int8
    assert dict(zip(result.sources, result.labels.tolist())) == expected
    # A class folder given as the root labels everything below it.
    result = ffeat.extract(root / "a" / "b" / "fake", features="gray")
    assert result.labels.tolist() == [1]
    # Files named one by one (as a shell glob gives them) are labelled the same way.
    result = ffeat.extract(sorted(expected), features="gray")
    assert dict(zip(result.sources, result.labels.tolist())) == expected


def test_empty_folder_is_an_error_record(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    result = ffeat.extract(empty)
    assert result.X.shape == (0, len(result.names)) and result.labels.shape == (0,)
    assert len(result.errors) == 1
    assert result.errors[0].source.startswith(str(empty))
    assert "no image files" in result.errors[0].reason


def test_same_image_by_any_route_gives_the_same_row(tmp_path):
    src = _rgb(64, 64)
    path = tmp_path / "x.png"
    Image.fromarray(src).save(path)
    result = ffeat.extract([src, path.read_bytes(), Image.fromarray(src), path])
    assert result.sources == ["<array #0>", "<bytes #1>", "<PIL image #2>", str(path)]
    for row in result.X[1:]:
        np.testing.assert_array_equal(row, result.X[0])


def test_min_size_below_what_features_need_is_refused():
    with pytest.raises(ValueError, match="min_size must be at least 12"):
        ffeat.load_image(np.zeros((12, 12, 3), np.uint8), min_size=11)
    with pytest.raises(ValueError, match="min_size must be at least 12"):
        ffeat.Reading(min_size=0)
    assert ffeat.load_image(np.zeros((12, 13, 3), np.uint8), min_size=12).shape == (12, 13, 3)
    row = ffeat.extract(np.zeros((12, 13, 3), np.uint8), reading=ffeat.Reading(min_size=12))
    assert row.errors == [] and np.isfinite(row.X).all()


def test_unlistable_subfolder_is_an_error_record(tmp_path, monkeypatch):
    data = tmp_path / "data"
    good = _good_images(data, ("a.png", "locked/b.png"))
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = ffeat.extract(data, features="gray")
    assert result.sources == [good[0]]
    assert [e.source for e in result.errors] == [str(data / "locked")]
    assert "cannot list folder" in result.errors[0].reason
