"""The optional CNN detector: a compact convolutional network over pixels (PyTorch).

:class:`ffeat.CnnDetector` (``ffeat train --classifier cnn``) lands here. PyTorch is
an optional extra (``pip install "ffeat[cnn]"``): this module imports it only inside the
functions that need it, so ``import ffeat`` and the feature detectors work
without it. The network uses a CUDA device when PyTorch sees one, the CPU
otherwise.

Images are read like every other input (:func:`ffeat.load_image`, unreadable
ones recorded, never fatal) and resized whole (no crop; non-square images are
stretched) to ``input_size x input_size`` with Pillow's bilinear filter
(antialiased when shrinking). The network is five conv(3x3)-batchnorm-ReLU-maxpool blocks of 16
to 256 channels, global average pooling, dropout and one logit (the sigmoid
of which is the probability of fake). Training: Adam on binary cross-entropy,
a seeded stratified validation split for early stopping, learning rate halved
when the validation loss stops improving, and the weights of the best
validation epoch restored at the end. Every training image is flipped left to
right with probability 1/2 and shifted by up to 1/16 of its side (reflected
border) at every epoch; augmentation kinds given to ``CnnDetector(augment=)``
(JPEG, blur, resize, noise) are applied on the fly, each with probability
``AUGMENT_P``.

A fitted network is kept as NumPy copies of its ``state_dict`` plus a JSON
configuration from which the network is rebuilt (``to_arrays`` /
``from_arrays``), so model files stay pickle-free.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from sklearn.model_selection import train_test_split

from ..reading._perturb import augment_perturbation
from ..reading._rows import ImageError, default_jobs, read_item
from ..reading._sources import Item
from ..reading.loading import ImageReadError
from ..running._progress import Progress, status

__all__ = ["CnnModel", "TORCH_MISSING", "TooFewImages", "import_torch", "train"]

TORCH_MISSING = ('the CNN needs PyTorch, which is not installed; install it with: '
                 'pip install "ffeat[cnn]" (or pip install "torch>=2.1")')
#: Channels of the conv blocks; each block halves the side.
CHANNELS = (16, 32, 64, 128, 256)
DROPOUT = 0.3
#: Share of the training images held out to pick the epoch (stratified, seeded).
VALIDATION_FRACTION = 0.15
#: Probability that each augmentation kind is applied to an image at an epoch
#: (Wang et al. 2020 found blur + JPEG at 0.1 keeps clean accuracy).
AUGMENT_P = 0.1
_LEARNING_RATE = 1e-3
_WEIGHT_DECAY = 1e-4
_MIN_DELTA = 1e-4
_ARCHITECTURE = "ffeat-cnn-1"
#: Largest input side a saved network may ask for (each image is resized to it).
MAX_INPUT_SIZE = 2048


def import_torch():
    """The ``torch`` module; ImportError saying what to install when it is missing."""
    try:
        import torch
    except ImportError:
        raise ImportError(TORCH_MISSING) from None
    return torch


def check_input_size(size: int) -> None:
    """Refuse input sizes the blocks cannot halve down to at least one pixel."""
    smallest = 2 ** len(CHANNELS)
    if not isinstance(size, (int, np.integer)) or size < smallest:
        raise ValueError(f"input_size must be a whole number of pixels, at least {smallest} "
                         f"(the CNN halves it {len(CHANNELS)} times); got {size!r}")


def _build_net(torch, config: dict):
    """The network a configuration describes (weights freshly initialised)."""
    nn = torch.nn
    layers, c_in = [], 3
    for c in config["channels"]:
        layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(config["dropout"]),
               nn.Linear(c_in, 1)]
    return nn.Sequential(*layers)


def _device(torch):
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def _threads(torch, jobs: int | None):
    """PyTorch's intra-op threads set to ``jobs`` (None or < 1: left as they are)."""
    before = torch.get_num_threads()
    if jobs is not None and jobs >= 1:
        torch.set_num_threads(jobs)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _to_size(rgb: np.ndarray, size: int) -> np.ndarray:
    """``rgb`` resized to ``size x size`` with Pillow's bilinear filter (if not already)."""
    if rgb.shape[:2] == (size, size):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR),
                      dtype=np.uint8)


def _read_resized(item: Item, size: int) -> np.ndarray:
    rgb = read_item(item)
    try:
        return _to_size(rgb, size)
    except (ValueError, OSError, MemoryError) as exc:
        raise ImageReadError(item.name, f"cannot resize for the CNN: {exc}") from exc


def _decode(items: list[Item], size: int, jobs: int | None,
            bar: Progress) -> tuple[np.ndarray, np.ndarray, list[ImageError]]:
    """``(n, size, size, 3)`` uint8 pixels of ``items`` (zeros where unreadable), read in
    ``jobs`` threads, whether each was read, and the records of those that could not be."""
    out = np.zeros((len(items), size, size, 3), dtype=np.uint8)
    ok = np.zeros(len(items), dtype=bool)
    errors: list[ImageError] = []

    def read(position: int) -> ImageError | None:
        try:
            out[position] = _read_resized(items[position], size)
        except ImageReadError as exc:
            return ImageError(exc.source, exc.reason)
        return None

    with ThreadPoolExecutor(max_workers=default_jobs(jobs)) as pool:
        for position, error in enumerate(pool.map(read, range(len(items)))):
            ok[position] = error is None
            if error is not None:
                errors.append(error)
            bar.update(error is None)
    return out, ok, errors


def _tensor(torch, pixels: np.ndarray, device):
    """uint8 ``(B, H, W, 3)`` to float ``(B, 3, H, W)`` in [-1, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(pixels)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def _shift(rgb: np.ndarray, dy: int, dx: int, margin: int) -> np.ndarray:
    """``rgb`` translated by ``(dy, dx)`` pixels, the border filled by reflection."""
    h, w = rgb.shape[:2]
    padded = np.pad(rgb, ((margin, margin), (margin, margin), (0, 0)), mode="reflect")
    return padded[margin + dy:margin + dy + h, margin + dx:margin + dx + w]


def _augment(batch: np.ndarray, kinds: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """A randomly flipped, shifted and (per ``kinds``) perturbed copy of a uint8 batch."""
    size = batch.shape[1]
    margin = max(1, size // 16)
    out = np.empty_like(batch)
    for i, rgb in enumerate(batch):
        for kind in kinds:
            if rng.random() < AUGMENT_P:
                rgb = _to_size(augment_perturbation(kind, rng).apply(rgb, rng), size)
        if rng.random() < 0.5:
            rgb = rgb[:, ::-1]
        dy, dx = rng.integers(-margin, margin + 1, size=2)
        out[i] = _shift(rgb, int(dy), int(dx), margin)
    return out


class TooFewImages(ValueError):
    """Too few images of a class could be read to train; ``errors`` says why each failed."""

    def __init__(self, errors: list[ImageError]) -> None:
        super().__init__("training the CNN needs at least two readable images of each "
                         "class (real and fake)")
        self.errors = errors


class CnnModel:
    """A fitted network and the configuration it was built from.

    Parameters
    ----------
    net : torch.nn.Module
        The network (put in evaluation mode).
    config : dict
        ``architecture``, ``input_size``, ``channels``, ``dropout``: enough to
        rebuild ``net`` before loading its weights.
    """

    kind = "cnn"

    def __init__(self, net, config: dict) -> None:
        self.net = net.eval()
        self.config = config

    @property
    def input_size(self) -> int:
        return int(self.config["input_size"])

    def logits(self, pixels: np.ndarray, batch_size: int) -> np.ndarray:
        """Log-odds of fake of uint8 ``(n, size, size, 3)`` pixels, float64."""
        torch = import_torch()
        device = next(self.net.parameters()).device
        out = np.empty(len(pixels))
        with torch.inference_mode():
            for start in range(0, len(pixels), batch_size):
                x = _tensor(torch, pixels[start:start + batch_size], device)
                out[start:start + len(x)] = self.net(x)[:, 0].double().cpu().numpy()
        return out

    def score_items(self, items: list[Item], *, jobs: int | None, batch_size: int,
                    progress: bool | None) -> tuple[np.ndarray, list[ImageError]]:
        """Log-odds of fake per item (NaN where unreadable) and the error records in
        input order.

        Images are read in chunks, so memory stays flat for any number of inputs.
        """
        torch = import_torch()
        scores = np.full(len(items), np.nan)
        errors: list[ImageError] = []
        bar = Progress(len(items), "cnn", progress)
        chunk = max(batch_size, 256)
        with _threads(torch, jobs):
            for start in range(0, len(items), chunk):
                pixels, ok, errs = _decode(items[start:start + chunk], self.input_size, jobs,
                                           bar)
                if ok.any():
                    scores[start + np.flatnonzero(ok)] = self.logits(pixels[ok], batch_size)
                errors += errs
        bar.close()
        return scores, errors

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The configuration (JSON) and every ``state_dict`` tensor as a NumPy array."""
        weights = {f"weights/{k}": v.detach().cpu().numpy()
                   for k, v in self.net.state_dict().items()}
        return {"config": np.array(json.dumps(self.config)), **weights}

    #: Most bytes a saved network may take (its weights are about 1.6 MB).
    MAX_BYTES = 64 << 20

    @staticmethod
    def max_bytes(n_features: int, params: dict) -> int:
        """Most bytes the arrays of a saved network take (it reads pixels: no columns)."""
        return CnnModel.MAX_BYTES

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray], n_features: int = 0) -> CnnModel:
        """Rebuild the network from its configuration and load the saved weights.

        The configuration is checked before anything is built (its channels are the
        fixed ones, its input size within bounds), and every weight is a numeric
        array; unknown arrays are refused.

        Raises
        ------
        ImportError
            When PyTorch is not installed (the message says what to install).
        KeyError, ValueError
            When a weight is missing, unknown or not numeric, or the configuration
            is not one this version builds.
        """
        config = json.loads(str(a["config"]))
        if not isinstance(config, dict):
            raise ValueError("the CNN configuration is not a JSON object")
        if config.get("architecture") != _ARCHITECTURE:
            raise ValueError(f"CNN architecture {config.get('architecture')!r} is not "
                             f"{_ARCHITECTURE!r}")
        if config.get("channels") != list(CHANNELS) or not isinstance(
                config.get("dropout"), float) or not 0 <= config["dropout"] < 1:
            raise ValueError(f"CNN channels {config.get('channels')!r} or dropout "
                             f"{config.get('dropout')!r} are not this version's")
        check_input_size(config.get("input_size"))
        if config["input_size"] > MAX_INPUT_SIZE:
            raise ValueError(f"CNN input_size {config['input_size']} is above "
                             f"{MAX_INPUT_SIZE}")
        torch = import_torch()
        net = _build_net(torch, config)
        names = {f"weights/{k}" for k in net.state_dict()} | {"config"}
        unknown = sorted(set(a) - names)
        bad = sorted(k for k in names - {"config"} if np.asarray(a[k]).dtype.kind not in "fiub")
        if unknown or bad:
            raise ValueError(f"CNN arrays {unknown} unknown or {bad} not numeric")
        state = {k: torch.from_numpy(np.array(a[f"weights/{k}"]))
                 for k in net.state_dict()}
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:  # shapes that do not fit the configuration
            raise ValueError(f"the CNN weights do not fit its configuration ({exc})") from None
        return cls(net.to(_device(torch)), config)


def _epoch_line(h: dict, epochs: int, seconds: float) -> str:
    return (f"cnn epoch {h['epoch']}/{epochs}: loss {h['loss']:.4f} accuracy "
            f"{h['accuracy']:.3f} | validation loss {h['val_loss']:.4f} accuracy "
            f"{h['val_accuracy']:.3f} | lr {h['lr']:.1e} | {seconds:.1f} s")


def train(items: list[Item], y: np.ndarray, *, input_size: int, epochs: int,
          batch_size: int, patience: int, augment: tuple[str, ...], jobs: int | None,
          seed: int, progress: bool | None) -> tuple[CnnModel, np.ndarray, list[ImageError], dict]:
    """Train the network on labelled items.

    Parameters
    ----------
    items : list of Item
        Training images.
    y : ndarray of {0, 1}
        Their labels (1 = fake).
    input_size : int
        Side the images are resized to.
    epochs : int
        Most passes over the training images.
    batch_size : int
        Images per gradient step.
    patience : int
        Epochs without a better validation loss before training stops; the
        learning rate is halved after more than ``max(1, patience // 2)`` such
        epochs in a row.
    augment : tuple of str
        Augmentation kinds applied on the fly (each with probability ``AUGMENT_P``).
    jobs : int, optional
        Threads for reading images and for PyTorch (None: all cores).
    seed : int
        Seed of the weights, the validation split, the batch order and the augmentation.
    progress : bool or None
        Reading progress bar and one line per epoch on stderr (None: on a terminal).

    Returns
    -------
    model : CnnModel
        The network at its best validation epoch.
    read : ndarray of bool
        Per item, whether it was read (the others are left out).
    errors : list of ImageError
        Records of the items that could not be read, in input order.
    record : dict
        ``n_rows`` (images trained on), ``n_validation``, ``epochs_run``,
        ``best_epoch``, ``seconds`` and ``history`` (per epoch: ``epoch``,
        ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``).

    Raises
    ------
    TooFewImages
        When fewer than two images of a class could be read.
    """
    torch = import_torch()
    check_input_size(input_size)
    if epochs < 1 or batch_size < 2 or patience < 1:
        raise ValueError(f"the CNN needs epochs >= 1, batch_size >= 2 and patience >= 1; "
                         f"got {epochs}, {batch_size}, {patience}")
    bar = Progress(len(items), "cnn: reading", progress)
    with _threads(torch, jobs):
        pixels, ok, errors = _decode(items, input_size, jobs, bar)
        bar.close()
        pixels, y = pixels[ok], np.asarray(y)[ok]
        if np.bincount(y, minlength=2).min() < 2:
            raise TooFewImages(errors)
        fit_idx, val_idx = train_test_split(
            np.arange(len(y)), test_size=max(VALIDATION_FRACTION, 2 / len(y)),
            stratify=y, random_state=seed)
        torch.manual_seed(seed)
        device = _device(torch)
        config = {"architecture": _ARCHITECTURE, "input_size": int(input_size),
                  "channels": list(CHANNELS), "dropout": DROPOUT}
        net = _build_net(torch, config).to(device)
        model = CnnModel(net, config)
        record = _fit(torch, model, pixels, y, fit_idx, val_idx, epochs=epochs,
                      batch_size=batch_size, patience=patience, augment=augment,
                      rng=np.random.default_rng(seed), progress=progress)
    return model, ok, errors, record


def _loss_and_accuracy(torch, logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(logits), torch.from_numpy(y.astype(np.float64)))
    return float(loss), float(((logits >= 0) == (y == 1)).mean())


def _fit(torch, model: CnnModel, pixels: np.ndarray, y: np.ndarray, fit_idx: np.ndarray,
         val_idx: np.ndarray, *, epochs: int, batch_size: int, patience: int,
         augment: tuple[str, ...], rng: np.random.Generator, progress: bool | None) -> dict:
    """The training loop: epochs of augmented mini-batches, validation, learning-rate
    reduction, early stopping and the best weights restored (in ``model.net``)."""
    net = model.net
    device = next(net.parameters()).device
    optimiser = torch.optim.Adam(net.parameters(), lr=_LEARNING_RATE,
                                 weight_decay=_WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, factor=0.5, patience=max(1, patience // 2), threshold=_MIN_DELTA,
        threshold_mode="abs")
    loss_fn = torch.nn.BCEWithLogitsLoss()
    history: list[dict] = []
    best_loss, best_state, best_epoch, waited = math.inf, None, 0, 0
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        began = time.perf_counter()
        net.train()
        order = rng.permutation(fit_idx)
        total, correct, seen = 0.0, 0, 0
        for first in range(0, len(order), batch_size):
            idx = order[first:first + batch_size]
            if len(idx) < 2:  # batch normalisation needs two images
                continue
            x = _tensor(torch, _augment(pixels[idx], augment, rng), device)
            target = torch.from_numpy(y[idx].astype(np.float32)).to(device)
            optimiser.zero_grad()
            logits = net(x)[:, 0]
            loss = loss_fn(logits, target)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            correct += int(((logits.detach() >= 0).cpu().numpy() == (y[idx] == 1)).sum())
        net.eval()
        val_loss, val_acc = _loss_and_accuracy(
            torch, model.logits(pixels[val_idx], batch_size), y[val_idx])
        history.append({"epoch": epoch, "loss": total / seen, "accuracy": correct / seen,
                        "val_loss": val_loss, "val_accuracy": val_acc,
                        "lr": optimiser.param_groups[0]["lr"]})
        status(_epoch_line(history[-1], epochs, time.perf_counter() - began), progress)
        scheduler.step(val_loss)
        if val_loss < best_loss - _MIN_DELTA:
            best_loss, best_epoch, waited = val_loss, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            waited += 1
            if waited >= patience:
                status(f"cnn: no better validation loss for {patience} epochs; stopping "
                       f"and restoring epoch {best_epoch}", progress)
                break
    if best_state is None:
        raise ValueError("CNN training diverged (the validation loss is not finite); "
                         "try a smaller batch_size or check the images")
    net.load_state_dict(best_state)
    net.eval()
    return {"n_rows": len(fit_idx), "n_validation": len(val_idx),
            "epochs_run": len(history), "best_epoch": best_epoch,
            "seconds": round(time.perf_counter() - start, 3), "history": history}
