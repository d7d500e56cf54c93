"""Fixtures shared by the test modules."""
from __future__ import annotations

import io

import pytest
from threadpoolctl import threadpool_limits
from PIL import Image


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
