"""The detector as a composition: features, then a classifier step, after fit and after load."""
from __future__ import annotations

import io

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ffeat import Detector, Reading
from ffeat.detector import FeatureClassifier
from conftest import WHOLE

N, SIZE = 6, 48
pytestmark = pytest.mark.usefixtures("one_openmp_thread")


@pytest.fixture(scope="module")
def fitted(demo):
    images, labels = demo
    return Detector(features="gray", classifier="logistic", cache=False, jobs=1,
                    threshold=0.3, reading=WHOLE).fit(images, labels)


def _loaded(detector) -> Detector:
    buffer = io.BytesIO()
    detector.save(buffer)
    buffer.seek(0)
    return Detector.load(buffer)


@pytest.mark.parametrize("restored", [False, True], ids=["fitted", "loaded"])
def test_the_pipeline_scores_as_the_detector(fitted, demo, restored):
    images, _ = demo
    detector = _loaded(fitted) if restored else fitted
    pipeline = detector.pipeline_
    assert [name for name, _ in pipeline.steps] == ["features", "classifier"]
    assert isinstance(detector.classifier_, FeatureClassifier)
    np.testing.assert_array_equal(pipeline.decision_function(images),
                                  fitted.decision_function(images))
    np.testing.assert_array_equal(pipeline.predict(images), fitted.predict(images))
    assert clone(pipeline).steps[1][1].threshold == 0.3


def test_the_classifier_step_is_fitted_by_the_detector_only(fitted, demo):
    images, labels = demo
    with pytest.raises(TypeError, match="fit an ffeat.Detector"):
        fitted.pipeline_.fit(images, labels)
    with pytest.raises(NotFittedError, match="call fit"):
        Detector().classifier_  # noqa: B018


def test_the_pipeline_reads_faces_as_the_detector_does():
    from skimage import data

    face = data.astronaut()
    images = [face, face[::-1].copy(), face[:, ::-1].copy(), face[::2, ::2].copy()]
    detector = Detector(features="gray", classifier="logistic", cache=False, jobs=1,
                        reading=Reading(faces="auto", frame=256)).fit(images,
                                                                            [0, 1, 0, 1])
    np.testing.assert_allclose(detector.pipeline_.decision_function(images[:1]),
                               detector.decision_function(images[:1]), rtol=1e-6)
