"""Feature extraction on the real labelled faces, when they are present.

The sets live outside the repository: ``$FFEAT_FACES`` or, by default,
``../shared/faces`` beside the repository root. Without them these tests skip.
"""
import os
from pathlib import Path

import numpy as np
import pytest

import ffeat

FACES = Path(os.environ.get("FFEAT_FACES",
                            Path(__file__).resolve().parents[2] / "shared" / "faces"))
pytestmark = pytest.mark.skipif(not (FACES / "140k").is_dir(),
                                reason=f"real face sets not found at {FACES} "
                                       "(set FFEAT_FACES to their folder)")


def test_140k_gives_one_finite_labelled_row_per_image():
    result = ffeat.extract(FACES / "140k")
    n_real = len(list((FACES / "140k" / "real").glob("*.jpg")))
    n_fake = len(list((FACES / "140k" / "fake").glob("*.jpg")))
    assert result.errors == []
    assert result.X.shape == (n_real + n_fake, len(result.names))
    assert np.isfinite(result.X).all()
    assert np.bincount(result.labels).tolist() == [n_real, n_fake]


def test_tpdne_reads_cleanly_at_its_own_size():
    result = ffeat.extract(FACES / "tpdne", features=("gray", "spectrum", "residual"))
    assert result.errors == []
    assert set(result.labels.tolist()) == {0, 1}
    assert np.isfinite(result.X).all()


def test_class_means_of_colour_residuals_differ_on_140k():
    """A weak sanity check that the features see the generator: the mean
    chroma-residual statistics of real and fake faces differ by more than
    their standard error."""
    result = ffeat.extract(FACES / "140k", features=ffeat.Residual(channels=("Cb", "Cr")))
    X, y = result.X, result.labels
    diff = np.abs(X[y == 0].mean(0) - X[y == 1].mean(0))
    se = np.sqrt(X[y == 0].var(0) / (y == 0).sum() + X[y == 1].var(0) / (y == 1).sum())
    assert (diff > 5 * se).sum() >= 10
