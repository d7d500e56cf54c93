"""asv: the headline figures of the multi-source protocol (``sources.py``) over commits.

``SourcesProtocol`` (only when the source folders of ``_corpus.py`` are
present, ``$FFEAT_FACES`` or ``../shared/faces``; skipped otherwise) runs the
protocol once in ``setup_cache`` for ``ffeat.Detector()`` trained on the training
halves of all sources, and tracks the Stable Diffusion 2.1 recall and the worst
real source's false-positive rate at the default threshold, and the ``140k``
5-fold ROC AUC. Quick mode (``FFEAT_BENCH_QUICK=1``) runs a token protocol: 5
images per source half and the ``spectrum`` family only.
"""
from __future__ import annotations

try:
    from . import _corpus, _data, sources
except ImportError:
    import _corpus
    import _data
    import sources


class SourcesProtocol:
    unit = "rate"
    timeout = 300

    def setup_cache(self):
        if _corpus.missing():
            return None
        if _data.quick():
            return sources.measure({"features": "spectrum"}, n=5)
        return sources.measure()

    setup_cache.timeout = 3600

    def setup(self, result):
        if result is None:
            raise NotImplementedError(f"the face sources are not all at {_data.faces_root()} "
                                      "(set FFEAT_FACES)")

    def track_sd21_recall(self, result):
        return float(sources.figures(result)["sd21 recall"])

    def track_worst_real_fpr(self, result):
        return float(sources.figures(result)["worst real FPR"])

    def track_140k_cv_auc(self, result):
        return float(sources.figures(result)["140k 5-fold AUC"])
