"""A small labelled demo set, made on the spot from photographs scikit-image ships.

Real images are random crops of those photographs, flipped at random and
area-downscaled by an integer factor (as FFHQ faces are downscaled to 256 px).
Fake images take other crops through a GAN-like path, after the AutoGAN
simulator of Zhang et al. (2019): area-downscale to half the output size, then
upsample by 2 with a fixed transposed convolution whose two polyphase
components have slightly different gains. That leaves the periodic
(checkerboard) spectral peaks real generators' up-convolutions leave, while
colours and content stay those of real photographs.

Everything is deterministic for a given seed, needs no network, and takes well
under a second.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from scipy.ndimage import convolve1d

from .reading import NATIVE

__all__ = ["make_demo_set", "write_demo_set", "DEMO_READING", "DEMO_AUGMENT"]

#: How ``ffeat demo`` and the demo benchmark read the demo images (at their own size)
#: and augment them (not at all). The images share one size and one pipeline, so the
#: Detector's 256 px frame and recoded copies (against size and codec shortcuts between
#: sources) have nothing to guard against here; with them the whole ``ffeat demo``
#: took 4 min 20 s instead of 30 s on 2 cores (96 px images framed up to 256 px, twice
#: the rows to fit). A frozen Reading, so that no caller changes what the demo measures.
DEMO_READING = NATIVE
DEMO_AUGMENT = None

_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
           "immunohistochemistry")
#: Transposed-convolution taps per RGB channel: even taps sum to 1.52, odd to 1.48.
_UPCONV = np.array([[0.46, 1.02, 1.06, 0.46],
                    [0.44, 1.00, 1.08, 0.48],
                    [0.47, 1.03, 1.05, 0.45]]) / 1.5


@functools.lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    import skimage.data

    return tuple(getattr(skimage.data, name)()[:, :, :3] for name in _PHOTOS)


def _crop_downscaled(rng: np.random.Generator, side: int) -> np.ndarray:
    """A random crop of a random photograph, flipped at random, area-downscaled to ``side``."""
    photos = [p for p in _photos() if min(p.shape[:2]) >= side]
    photo = photos[rng.integers(len(photos))]
    max_factor = min(photo.shape[0], photo.shape[1]) // side
    factor = int(rng.integers(1, min(max_factor, 4) + 1))
    crop = side * factor
    y = rng.integers(photo.shape[0] - crop + 1)
    x = rng.integers(photo.shape[1] - crop + 1)
    patch = photo[y:y + crop, x:x + crop].astype(np.float64)
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return patch.reshape(side, factor, side, factor, 3).mean(axis=(1, 3))


def _upconv2(img: np.ndarray) -> np.ndarray:
    """Upsample by 2 with zero insertion and the fixed transposed-convolution taps."""
    h, w, _ = img.shape
    up = np.zeros((2 * h, 2 * w, 3))
    up[::2, ::2] = img
    for c in range(3):
        up[:, :, c] = convolve1d(up[:, :, c], _UPCONV[c], axis=0, mode="mirror")
        up[:, :, c] = convolve1d(up[:, :, c], _UPCONV[c], axis=1, mode="mirror")
    return up


def make_demo_set(n_per_class: int = 60, size: int = 96,
                  seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Make the labelled demo images in memory.

    Parameters
    ----------
    n_per_class : int, optional
        Images of each class.
    size : int, optional
        Side of every (square) image; even, from 32 to 512.
    seed : int, optional
        Seed of the random crops; the same seed gives the same images.

    Returns
    -------
    images : list of ndarray of uint8, shape (size, size, 3)
        Real images first, then fakes.
    labels : ndarray of int8
        0 for real, 1 for fake.
    """
    if not 32 <= size <= 512 or size % 2:
        raise ValueError(f"size must be even and lie in [32, 512], got {size}")
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    rng = np.random.default_rng(seed)
    real = [_crop_downscaled(rng, size) for _ in range(n_per_class)]
    fake = [_upconv2(_crop_downscaled(rng, size // 2)) for _ in range(n_per_class)]
    images = [np.clip(np.rint(im), 0, 255).astype(np.uint8) for im in real + fake]
    labels = np.repeat(np.array([0, 1], dtype=np.int8), n_per_class)
    return images, labels


def write_demo_set(directory, n_per_class: int = 60, size: int = 96,
                   seed: int = 0) -> list[Path]:
    """Write the demo set as PNG files under ``directory/real`` and ``directory/fake``.

    Parameters
    ----------
    directory : str or os.PathLike
        Created if missing; existing files of the same names are replaced.
    n_per_class, size, seed : int, optional
        As for :func:`make_demo_set`.

    Returns
    -------
    list of Path
        The files written, reals first.
    """
    from PIL import Image

    images, labels = make_demo_set(n_per_class, size, seed)
    paths = []
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = Path(directory, "fake" if label else "real")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:04d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths
