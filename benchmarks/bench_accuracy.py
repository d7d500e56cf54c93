"""asv: detection accuracy (ROC AUC) tracked over commits.

``track_demo_auc``: 5-fold cross-validated ROC AUC of ``ffeat.Detector()``
(default features and classifier, read as ``ffeat demo`` reads the demo images:
``ffeat.demo.DEMO_READING``) on the embedded demo set, no cache. Always runs.

``FacesAccuracy`` (only when the real sets are present, ``$FFEAT_FACES`` or
``../shared/faces``; skipped otherwise): default features of ``140k`` and
``tpdne`` extracted once in ``setup_cache``, then the Detector's own default
estimator (``Detector()._estimator()``): 5-fold cross-validated AUC on
``140k``, and AUC on ``tpdne`` of a model trained on all of ``140k`` (the
cross-dataset test the sets' README recommends).
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score

import ffeat
from ffeat.demo import DEMO_AUGMENT, DEMO_READING

try:
    from . import _data
except ImportError:
    import _data


def _folds() -> StratifiedKFold:
    return StratifiedKFold(n_splits=5, shuffle=True, random_state=0)


def track_demo_auc():
    images, labels = ffeat.make_demo_set(n_per_class=10 if _data.quick() else 60)
    det = ffeat.Detector(cache=False, reading=DEMO_READING, augment=DEMO_AUGMENT)
    return float(np.mean(cross_val_score(det, images, labels, cv=_folds(),
                                         scoring="roc_auc")))


track_demo_auc.unit = "AUC"
track_demo_auc.timeout = 300


def _estimator():
    return ffeat.Detector()._estimator()  # what the default detector trains


class FacesAccuracy:
    unit = "AUC"
    timeout = 300

    def setup_cache(self):
        if _data.faces_dir("140k") is None:
            return None
        n = 20 if _data.quick() else None  # per class
        out = {}
        for name in ("140k", "tpdne"):
            if _data.faces_dir(name) is None:
                continue
            files, labels = _data.face_files(name, n)
            result = ffeat.extract(files, cache=False, on_error="raise")
            out[name] = (result.X, labels)
        return out

    setup_cache.timeout = 900

    def setup(self, cache):
        if cache is None:
            raise NotImplementedError(f"real face sets not found at {_data.faces_root()} "
                                      "(set FFEAT_FACES)")

    def track_140k_cv_auc(self, cache):
        X, y = cache["140k"]
        return float(np.mean(cross_val_score(_estimator(), X, y, cv=_folds(),
                                             scoring="roc_auc")))

    def track_140k_to_tpdne_auc(self, cache):
        if "tpdne" not in cache:
            raise NotImplementedError("no tpdne set")
        X, y = cache["140k"]
        X_test, y_test = cache["tpdne"]
        model = _estimator().fit(X, y)
        return float(roc_auc_score(y_test, model.decision_function(X_test)))
