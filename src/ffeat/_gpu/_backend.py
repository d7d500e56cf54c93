"""Which backend computes the features: CPU kernels, or CuPy on a CUDA device.

Nothing here imports CuPy until availability is asked for, so ``import ffeat``
stays free of it.
"""
from __future__ import annotations

import functools

__all__ = ["BACKENDS", "cuda_available", "resolve_backend", "import_cupy"]

#: Values accepted for ``backend``.
BACKENDS = ("cpu", "cuda", "auto")

_INSTALL_HINT = ('install CuPy for CUDA 12 with `pip install "ffeat[cuda]"` '
                 '(or `pip install cupy-cuda12x`), or use backend="cpu"')


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[bool, str]:
    """(usable, why not): CuPy importable and at least one CUDA device visible."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install failing at import
        return False, f"CuPy cannot be imported ({type(exc).__name__}: {exc})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device, CUDA_VISIBLE_DEVICES="" ...
        return False, f"CuPy found no CUDA device ({type(exc).__name__}: {exc})"
    return (True, "") if n > 0 else (False, "CuPy found no CUDA device (0 devices)")


def cuda_available() -> bool:
    """Whether the ``"cuda"`` backend can run here.

    Returns
    -------
    bool
        True when CuPy imports and reports at least one CUDA device. Never
        raises; the answer is cached for the life of the process.
    """
    return _probe()[0]


def resolve_backend(backend: str) -> str:
    """Turn a requested backend into the one that will run.

    Parameters
    ----------
    backend : {"cpu", "cuda", "auto"}
        ``"auto"`` means ``"cuda"`` when :func:`cuda_available`, else ``"cpu"``.

    Returns
    -------
    str
        ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        For an unknown backend name.
    RuntimeError
        For ``"cuda"`` when CuPy or a CUDA device is missing; the message says
        which and how to install.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; "
                         f"got {backend!r}")
    if backend == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if backend == "auto":
        return "cpu"
    raise RuntimeError(f"backend='cuda' needs CuPy and a CUDA device, but no usable device "
                       f"was found: {_probe()[1]}. To use a GPU, {_INSTALL_HINT}.")


def import_cupy():
    """The ``cupy`` module, after :func:`resolve_backend` has said it is usable."""
    import cupy
    return cupy
