"""Models: feature rows in, log-odds and probabilities out.

``_stacking`` (the stacked per-family logistic regression), ``_models`` (fitted classifiers
as plain arrays, and the registry of classifier kinds), ``_calibration`` (probabilities and
the inconclusive band), ``_scoring`` (the one scoring path) and ``_predictions`` (its rows),
``_persist`` and ``_npz`` (model files), ``_shipped`` (the detector installed with ffeat:
``default.model`` and its card lie in this folder), ``_cnn`` (the optional CNN),
``_sklearn_compat`` (scikit-learn's private names). Importing this package imports nothing
else: scoring a saved model needs no scikit-learn.
"""
