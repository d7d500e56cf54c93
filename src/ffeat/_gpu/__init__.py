"""CUDA backend: the feature families on batches on an NVIDIA GPU, through CuPy.

Install with ``pip install "ffeat[cuda]"`` (CuPy for CUDA 12, ``cupy-cuda12x``);
CuPy is never imported by ``import ffeat``, only when a CUDA backend is asked
for or probed. Then ``ffeat.extract(paths, backend="cuda")`` (or ``"auto"``:
CUDA when a device is visible, else the CPU kernels) returns the same
``Extraction`` as the CPU backend, rows in input order, unreadable files as
error records.

How it works
------------
CPU threads decode the images (``jobs`` of them) while the device computes the
previous batch; images of one size are stacked into batches (up to
``batch_size``, fewer for large images, see :mod:`._pipeline`), copied through
pinned host memory and computed in float32: luma box-averaging as two matrix
products, the spectrum with ``cupy.fft.rfft2`` over the last two axes of the
``(B, H, W)`` luma (cuFFT plans are cached by CuPy per shape), the residual
filters as shifted array sums, the gradient histograms of hog as float64
``arctan2`` and one ``bincount`` over image, cell and bin, the LBP codes of lbp
as eight shifted integer comparisons and one ``bincount`` per radius. That
array code is each family's ``compute_array`` (:mod:`ffeat.families`); with
NumPy on the CPU it is the oracle the compiled kernels are tested against, so
it is tested on every machine; the residual filters and two scatter-adds have
raw CUDA kernels (:mod:`._kernels`).

Notes for CuPy users
--------------------
* Results agree with the CPU backend to float32 round-off (the tests allow a
  relative 1e-5), not bit for bit: cuFFT, ``logf`` and atomic float additions
  round differently. Hog's orientation bins are the CPU's wherever CUDA's
  double ``atan2`` (within 2 ulp) cannot cross a bin edge: always for the
  default 9 orientations (no integer gradient lies on an inner edge, the
  nearest are some 1e-10 rad off); with orientations divisible by 2 or 4, a
  gradient exactly at 90 or 45 degrees could in principle land one bin off.
  Lbp is bit for bit the CPU's: integer comparisons and counts, float64
  frequencies.
* Do not set ``CUPY_TF32=1``: TF32 matrix products would blur the gray grid.
* The first batch of each image size pays for cuFFT plan creation and, once
  per machine, NVRTC compilation of the raw kernels (cached under
  ``~/.cupy/kernel_cache``).
* The device used is CuPy's current device (``CUDA_VISIBLE_DEVICES`` or
  ``cupy.cuda.Device(n).use()``); memory comes from CuPy's memory pool.
"""
from ._backend import BACKENDS, cuda_available, resolve_backend

__all__ = ["BACKENDS", "cuda_available", "resolve_backend"]
