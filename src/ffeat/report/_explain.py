"""What drives the decision: coefficients and permutation importance per column group
(the groups the families tell, :func:`ffeat.families.column_groups`), and per-image
maps of where the evidence sits."""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from ..features import RESIDUAL_FILTERS
from ..models._models import LinearModel
from ._imagestats import luma

__all__ = ["coefficients", "permutation_importance", "patch_map", "residual_energy_map"]


def coefficients(model, names: list[str], groups) -> dict | None:
    """Standardised logistic coefficients: per group (sum of magnitudes), the
    spectrum profile, and the largest single ones. None for non-linear models."""
    if not isinstance(model, LinearModel):
        return None
    coef = np.asarray(model.coef, dtype=float)
    spec = [i for i, n in enumerate(names) if n.startswith("spectrum_")]
    order = np.argsort(-np.abs(coef))[:12]
    return {"groups": [(g, float(np.abs(coef[cols]).sum()), len(cols)) for g, cols in groups],
            "spectrum": coef[spec] if spec else None,
            "top": [(names[i], float(coef[i])) for i in order]}


def permutation_importance(model, F: np.ndarray, y: np.ndarray, groups, *,
                           n_repeats: int = 5, seed: int = 0) -> list[tuple[str, float, float]]:
    """ROC AUC lost when a group's columns are shuffled together across images.

    Returns
    -------
    list of (group, mean drop, std of drop)
        Empty when only one class is present.
    """
    if len(np.unique(y)) < 2:
        return []
    base = roc_auc_score(y, model.decision_function(F))
    rng = np.random.default_rng(seed)
    out = []
    for name, cols in groups:
        drops = []
        for _ in range(n_repeats):
            Fp = F.copy()
            Fp[:, cols] = F[rng.permutation(len(F))][:, cols]
            drops.append(base - roc_auc_score(y, model.decision_function(Fp)))
        out.append((name, float(np.mean(drops)), float(np.std(drops))))
    return out


def _patch_grid(h: int, w: int, min_patch: int = 32) -> tuple[int, int]:
    """Patch side (a quarter of the short side, at least ``min_patch``) and stride."""
    patch = max(min_patch, min(h, w) // 4)
    return patch, max(1, patch // 2)


def _starts(n: int, patch: int, stride: int) -> list[int]:
    """Patch offsets every ``stride`` pixels, plus one flush with the far edge."""
    starts = list(range(0, max(n - patch, 0) + 1, stride))
    if starts[-1] != max(n - patch, 0):
        starts.append(max(n - patch, 0))
    return starts


def patch_map(rgb: np.ndarray, families, model) -> np.ndarray:
    """Log-odds of fake of overlapping patches, averaged onto every pixel.

    Each patch (a quarter of the short side, half-overlapping) goes through
    the detector's families and classifier like a whole image; the map shows
    which regions push the score towards fake (positive) or real (negative).
    """
    h, w = rgb.shape[:2]
    patch, stride = _patch_grid(h, w)
    ys = _starts(h, patch, stride)
    xs = _starts(w, patch, stride)
    corners = [(y, x) for y in ys for x in xs]
    batch = np.stack([rgb[y:y + patch, x:x + patch] for y, x in corners])
    F = np.hstack([f.compute(batch) for f in families]).astype(np.float64)
    scores = model.decision_function(F)
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for (y, x), s in zip(corners, scores):
        total[y:y + patch, x:x + patch] += s
        count[y:y + patch, x:x + patch] += 1
    return np.divide(total, count, out=np.full((h, w), np.nan), where=count > 0)


def residual_energy_map(rgb: np.ndarray, block: int = 8) -> np.ndarray:
    """Local RMS (over ``block`` pixels) of the 3x3 high-pass residual of the luma."""
    kernel, denom, _ = RESIDUAL_FILTERS["kb"]
    r = ndimage.convolve(luma(rgb), (kernel / denom).astype(np.float32), mode="reflect")
    return np.sqrt(np.maximum(ndimage.uniform_filter(r * r, size=block), 0))
