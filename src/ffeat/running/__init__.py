"""Running: how work is carried out, whatever is computed.

``_workers`` (daemon thread pools), ``_progress`` (progress bars), ``_cache`` (the feature
cache), ``streaming`` (sharded, resumable runs to disk) with ``_shardrun``, ``_manifest``,
``_featurefile`` and ``_dask``, and the output safety of ``_lock`` and ``_atomic``.
"""
