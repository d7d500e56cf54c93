"""Tests of the canonical analysis frame (``frame=N``): the centre square resized to
N px before the features, on every path that reads images."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from sklearn.utils._param_validation import InvalidParameterError

import ffeat
from ffeat.models import _npz, _persist
from ffeat.reading._framing import FRAME_FILTER, frame_image
from ffeat.reading._perturb import Perturbation, Perturbed
from ffeat.reading._rows import read_views
from ffeat.models._scoring import SavedDetector, score_items
from ffeat.reading._sources import Item
from ffeat.cli import main

N, SIZE = 8, 48  # the demo set of the conftest fixtures
FEATURES = ("gray", "spectrum")  # cheap families that see every pixel


def _pillow_frame(rgb: np.ndarray, frame: int) -> np.ndarray:
    """The reference: Pillow crops the centre square, then resizes it."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(rgb).crop((left, top, left + side, top + side))
    return np.asarray(square.resize((frame, frame), FRAME_FILTER))


def _smooth(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random image (resampling changes it, but not beyond recognition)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(height // 8, 2), max(width // 8, 2), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))


# ------------------------------------------------------------------ the operation

@pytest.mark.parametrize("shape", [(120, 90), (91, 140), (97, 96)])
def test_framing_equals_a_direct_pillow_reference(shape):
    rgb = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    framed = frame_image(rgb, 64)
    assert framed.shape == (64, 64, 3) and framed.dtype == np.uint8
    np.testing.assert_array_equal(framed, _pillow_frame(rgb, 64))


def test_an_image_of_the_frame_size_is_not_resampled():
    rgb = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert frame_image(rgb, 64) is rgb
    tall = np.random.default_rng(3).integers(0, 256, (81, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(frame_image(tall, 64), tall[8:72])  # cut, not resampled
    assert frame_image(tall, None) is tall


def test_a_tiny_image_is_upscaled_to_the_frame():
    rgb = np.random.default_rng(4).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    framed = frame_image(rgb, 256)
    assert framed.shape == (256, 256, 3)
    np.testing.assert_array_equal(framed, _pillow_frame(rgb, 256))
    np.testing.assert_array_equal(ffeat.extract([rgb], FEATURES, reading=ffeat.Reading(frame=256)).X,
                                  ffeat.extract([framed], FEATURES).X)


# ------------------------------------------------------------------ reading paths

def test_a_large_image_and_its_framed_copy_give_the_same_row():
    big = _smooth(768, 700)
    copy = _pillow_frame(big, 128)
    framed = ffeat.extract([big, copy], FEATURES, reading=ffeat.Reading(frame=128))
    np.testing.assert_array_equal(framed.X[0], framed.X[1])
    native = ffeat.extract([big, copy], FEATURES)
    assert not np.array_equal(native.X[0], native.X[1])


def test_perturbed_copies_are_framed_after_the_perturbation():
    rgb = _smooth(96, 120)
    half = Perturbation("resize", 0.5)
    ((box, view, _),) = read_views(Item(Perturbed(rgb, half), "copy"), ffeat.Reading(frame=64))
    assert box is None and view.shape == (64, 64, 3)
    np.testing.assert_array_equal(view, _pillow_frame(half.apply(rgb), 64))


def test_face_crops_are_cut_at_the_frame_size():
    from skimage import data

    views = read_views(Item(data.astronaut(), "astronaut"), ffeat.Reading(faces="crop", frame=96))
    assert [v.crop.shape for v in views] == [(96, 96, 3)]


@pytest.mark.parametrize("step, faces", [("face_crops", "crop"), ("frame_image", "off")])
def test_a_crop_or_frame_that_fails_is_an_error_record(step, faces, monkeypatch):
    def fail(*args, **kwargs):
        raise MemoryError("no room")

    monkeypatch.setattr(ffeat.reading._rows, step, fail)
    result = ffeat.extract([_smooth(64, 64)], FEATURES, reading=ffeat.Reading(faces=faces, frame=32))
    assert [e.reason for e in result.errors] == ["features failed: no room"]


def test_the_cache_keeps_the_rows_of_each_frame_apart(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(_smooth(100, 80)).save(path)
    cache = tmp_path / "cache"
    native = ffeat.extract([path], FEATURES, cache=cache).X
    framed = ffeat.extract([path], FEATURES, cache=cache, reading=ffeat.Reading(frame=64)).X
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2  # one folder per frame
    assert not np.array_equal(native, framed)
    np.testing.assert_array_equal(ffeat.extract([path], FEATURES, cache=cache, reading=ffeat.Reading(frame=64)).X,
                                  framed)
    np.testing.assert_array_equal(ffeat.extract([path], FEATURES, reading=ffeat.Reading(frame=64)).X, framed)


def test_extract_to_frames_and_records_the_frame(tmp_path, demo_dir):
    out = tmp_path / "shards"
    ffeat.extract_to(demo_dir, out, FEATURES, reading=ffeat.Reading(frame=64), shard_size=7)
    want = ffeat.extract(demo_dir, FEATURES, reading=ffeat.Reading(frame=64))
    np.testing.assert_array_equal(ffeat.read_features(out).X, want.X)
    assert json.loads((out / "manifest.json").read_text())["config"]["frame"] == 64


# ------------------------------------------------------------------ the detector

@pytest.fixture(scope="module")
def framed_detector(demo):
    images, labels = demo
    return ffeat.Detector(FEATURES, "logistic", reading=ffeat.Reading(frame=64), cache=False,
                          jobs=2).fit(images, labels)


def test_a_saved_detector_keeps_its_frame_and_scores_with_it(framed_detector, demo,
                                                             tmp_path):
    images, _ = demo
    path = tmp_path / "framed.model"
    framed_detector.save(path)
    want = framed_detector.classifier_.decision_function(
        ffeat.extract(images, FEATURES, reading=ffeat.Reading(frame=64)).X)
    for loaded in (ffeat.Detector.load(path), _persist.load(SavedDetector, path)):
        assert loaded.reading.frame == 64
        records = score_items(loaded, [Item(im, str(i)) for i, im in enumerate(images)])
        np.testing.assert_allclose([r.log_odds for r in records], want, rtol=1e-6)
    native = ffeat.Detector.load(path).set_params(reading=ffeat.Reading()).decision_function(
        images)
    assert not np.allclose(native, want)


def _rewritten(path, out, **params):
    """The model file at ``path`` with its saved parameters changed (None: removed)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        arrays = {k: z[k] for k in z.files if k.startswith(("model/", "calibration/"))}
    for k, v in params.items():
        if v is None:
            meta["params"].pop(k)
        else:
            meta["params"][k] = v
    text = json.dumps(meta)
    _npz.write_npz(out, {"meta": np.array(text), **arrays,
                         "checksum": np.array(_persist._checksum(text, arrays))})
    return out


def test_a_model_file_without_a_frame_loads_as_native_size(framed_detector, tmp_path,
                                                           monkeypatch):
    path = tmp_path / "new.model"
    framed_detector.save(path)
    old = _rewritten(path, tmp_path / "old.model", frame=None)
    # Whatever the default frame is now, a file from before frame read native sizes.
    monkeypatch.setattr(ffeat.Detector.__init__, "__kwdefaults__",
                        {**ffeat.Detector.__init__.__kwdefaults__,
                         "reading": ffeat.Reading(frame=256)})
    assert ffeat.Detector.load(old).reading.frame is None
    assert _persist.load(SavedDetector, old).reading.frame is None


@pytest.mark.parametrize("bad", [8, 5000, "256", True, 64.0])
def test_a_model_file_with_a_bad_frame_is_refused(framed_detector, tmp_path, bad):
    path = tmp_path / "new.model"
    framed_detector.save(path)
    bad_file = _rewritten(path, tmp_path / "bad.model", frame=bad)
    with pytest.raises(ffeat.ModelFileError, match="bad.model: the saved frame must be"):
        ffeat.load_detector(bad_file)


@pytest.mark.parametrize("bad, error", [(16, ValueError), (4097, ValueError),
                                        (True, TypeError), (64.0, TypeError),
                                        ("256", TypeError)])
def test_invalid_frames_are_refused_naming_the_parameter(bad, error, tmp_path):
    rgb = np.zeros((1, 64, 64, 3), np.uint8)
    with pytest.raises(error, match="^frame must be None or a side in pixels"):
        ffeat.Reading(frame=bad)
    with pytest.raises(error, match="^frame must be"):
        ffeat.Reading(faces="auto").replace(frame=bad)
    with pytest.raises(InvalidParameterError, match="'reading' parameter"):
        ffeat.Detector(reading=bad).fit(list(rgb) * 2, [0, 1])
    with pytest.raises(InvalidParameterError, match="'reading' parameter"):
        ffeat.FeatureExtractor(reading=bad).transform(rgb)
    with pytest.raises(TypeError, match="reading must be an ffeat.Reading"):
        ffeat.extract(rgb, FEATURES, reading=bad)


# ------------------------------------------------------------------ command line

def test_cli_extract_and_train_take_a_frame(demo_dir, tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert main(["extract", str(demo_dir), "-o", str(out), "--features", *FEATURES,
                 "--frame", "64", "-q"]) == 0
    want = ffeat.extract(demo_dir, FEATURES, reading=ffeat.Reading(frame=64))
    np.testing.assert_array_equal(ffeat.read_features(out).X, want.X)
    out_native = tmp_path / "n.npz"
    assert main(["extract", str(demo_dir), "-o", str(out_native), "--features", *FEATURES,
                 "--frame", "none", "-q"]) == 0
    assert not np.array_equal(ffeat.read_features(out_native).X, want.X)
    model = tmp_path / "m.model"
    assert main(["train", str(demo_dir), "--faces", "off",
                 "-o", str(model), "--features", *FEATURES,
                 "--classifier", "logistic", "--frame", "64", "--no-cache"]) == 0
    assert "in a 64 px frame" in capsys.readouterr().err
    assert ffeat.Detector.load(model).reading.frame == 64


@pytest.mark.parametrize("value", ["8", "5000", "big", "64.5"])
def test_cli_refuses_a_bad_frame_as_a_usage_error(value, demo_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["extract", str(demo_dir), "-o", str(tmp_path / "f.npz"), "--frame", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"--frame: give a side in pixels from 32 to 4096, or none; got '{value}'" in err


@pytest.mark.parametrize("side,frame", [(1024, 256), (257, 256), (777, 224), (300, 32),
                                        (2048, 256), (1000, 97)])
def test_frame_reduction_is_pillows_bicubic_bit_for_bit(side, frame):
    """The compiled reduction of ``frame_image`` gives Pillow's bytes."""
    from PIL import Image

    from ffeat.reading._framing import frame_image
    rng = np.random.default_rng(side)
    rgb = rng.integers(0, 256, (side, side + 6, 3), dtype=np.uint8)
    rgb[: side // 3] = np.linspace(0, 255, side + 6).astype(np.uint8)[None, :, None]
    square = np.ascontiguousarray(rgb[:, 3:3 + side])
    want = np.asarray(Image.fromarray(square).resize((frame, frame), Image.BICUBIC))
    np.testing.assert_array_equal(frame_image(rgb, frame), want)
