"""Which images to show, and their thumbnails."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["GALLERIES", "select", "write_thumbnail"]

#: Gallery id -> (title, explanation).
GALLERIES = {
    "false-positives": ("False positives: real images called fake",
                        "most confidently wrong first"),
    "false-negatives": ("False negatives: fake images called real",
                        "most confidently wrong first"),
    "confident-real": ("Most confident correct: real", "lowest probability of fake first"),
    "confident-fake": ("Most confident correct: fake", "highest probability of fake first"),
}


def select(labels: np.ndarray, scores: np.ndarray, called: np.ndarray,
           k: int) -> dict[str, np.ndarray]:
    """Row indices of up to ``k`` images per gallery, ordered as in :data:`GALLERIES`.

    ``scores`` are log-odds of fake, ``called`` whether each image was called
    fake; ties are broken by row order, so the choice is deterministic.
    """
    order_up = np.argsort(scores, kind="stable")  # most real-looking first
    order_down = order_up[::-1]

    def take(order, mask):
        return order[mask[order]][:k]

    return {"false-positives": take(order_down, (labels == 0) & called),
            "false-negatives": take(order_up, (labels == 1) & ~called),
            "confident-real": take(order_up, (labels == 0) & ~called),
            "confident-fake": take(order_down, (labels == 1) & called)}


def write_thumbnail(rgb: np.ndarray, path: Path, max_side: int = 128, boxes=(),
                    quads=()) -> None:
    """A JPEG thumbnail of at most ``max_side`` pixels on its longer side, with the
    face ``boxes`` ``(x, y, w, h)`` of ``rgb`` drawn on it in red and the ``quads``
    (four ``(x, y)`` corners each, the oriented squares aligned faces were cut from)
    in yellow, their top edge (the forehead's) thicker."""
    im = Image.fromarray(rgb)
    im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    scale = im.width / rgb.shape[1]
    draw = ImageDraw.Draw(im)
    for x, y, w, h in boxes:
        draw.rectangle([x * scale, y * scale, (x + w) * scale, (y + h) * scale],
                       outline=(255, 40, 40), width=2)
    for quad in quads:
        corners = [(x * scale, y * scale) for x, y in quad]
        draw.polygon(corners, outline=(255, 220, 0), width=1)
        draw.line([corners[3], corners[0]], fill=(255, 220, 0), width=3)
    im.save(path, "JPEG", quality=85)
