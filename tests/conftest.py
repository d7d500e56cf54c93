"""Fixtures shared by the test modules."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from PIL import Image

import ffeat
from ffeat.models import _persist


def saved_bytes(detector) -> bytes:
    """The bytes of ``detector.save``."""
    buf = io.BytesIO()
    detector.save(buf)
    return buf.getvalue()


def resealed(data: bytes, *, meta=None, arrays=None) -> io.BytesIO:
    """A model file with its meta (a function of the dict) or arrays (a function of the
    dict of arrays) changed and the checksum recomputed, so that only the intended check
    can refuse it."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        content = {k: z[k] for k in z.files}
    text = str(content["meta"])
    if meta is not None:
        text = json.dumps(meta(json.loads(text)))
    kept = {k: v for k, v in content.items() if k not in ("meta", "checksum")}
    if arrays is not None:
        kept = arrays(kept)
    out = io.BytesIO()
    np.savez(out, meta=np.array(text), checksum=np.array(_persist._checksum(text, kept)),
             **kept)
    out.seek(0)
    return out


def write_bad_files(folder) -> list[str]:
    """Unreadable files in ``folder``: empty, truncated JPEG, text named .png, too small."""
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 99, 199)).save(buf, "JPEG")
    contents = {"empty.jpg": b"", "truncated.jpg": buf.getvalue()[:300],
                "text.png": b"hello, not an image\n", "tiny.png": None}
    paths = []
    for name, data in contents.items():
        path = folder / name
        if data is None:
            Image.new("RGB", (1, 1)).save(path)
        else:
            path.write_bytes(data)
        paths.append(str(path))
    return paths


def write_image(path, seed: int = 0) -> str:
    """A 48x40 PNG of random pixels at ``path`` (folders created); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return str(path)


@pytest.fixture
def bad_files():
    """``bad_files(folder)`` writes unreadable image files there and returns their paths."""
    return write_bad_files


@pytest.fixture(autouse=True)
def _private_feature_cache(tmp_path_factory, monkeypatch):
    """Point the feature cache at a fresh folder: no test reads or writes ~/.cache."""
    monkeypatch.setenv("FFEAT_CACHE_DIR", str(tmp_path_factory.mktemp("ffeat-cache")))


def counts(training: dict) -> dict:
    """The image counts of a detector's ``training_`` record."""
    return {k: training[k] for k in ("n_real", "n_fake", "n_errors")}


@pytest.fixture(scope="module")
def one_openmp_thread():
    """OpenMP and BLAS pools (scikit-learn, NumPy) on one thread: on a loaded 2-core machine
    gradient boosting on all cores makes 40-sample fits take seconds instead of tenths."""
    with threadpool_limits(1):
        yield


# -- the demo set at the size each test module declares (module globals N and SIZE) --------

@pytest.fixture(scope="module")
def demo(request):
    """The demo images in memory, ``N`` per class at ``SIZE`` px: (list of arrays, labels)."""
    return ffeat.make_demo_set(n_per_class=request.module.N, size=request.module.SIZE)


@pytest.fixture(scope="module")
def demo_files(request, tmp_path_factory):
    """The same demo set as PNG files under real/ and fake/: (folder, paths in order)."""
    root = tmp_path_factory.mktemp("demo")
    paths = ffeat.write_demo_set(root, n_per_class=request.module.N, size=request.module.SIZE)
    return root, [str(p) for p in paths]


@pytest.fixture(scope="module")
def demo_dir(demo_files):
    """The folder of :func:`demo_files`."""
    return demo_files[0]


#: The whole image in the Detector's 256 px frame, no face policy: the reading of the
#: detectors these tests train on images without faces (the Detector's default aligns
#: faces and refuses an image without one).
WHOLE = ffeat.Reading(frame=256)
