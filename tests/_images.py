"""Test images shared by the kernel tests: random and natural-looking uint8 RGB arrays."""
from __future__ import annotations

import numpy as np


def random_image(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Uniformly random levels."""
    return rng.integers(0, 256, shape + (3,), dtype=np.uint8)


def smooth_image(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A natural-looking image: smooth gradients plus mild noise (small residuals)."""
    y, x = np.mgrid[:shape[0], :shape[1]]
    base = 120 + 60 * np.sin(x / 9.0)[..., None] * np.cos(y / 13.0)[..., None]
    noisy = base + np.array([0, 10, -10]) + rng.normal(0, 1.5, shape + (3,))
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
