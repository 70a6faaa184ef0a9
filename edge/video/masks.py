"""Privacy masks: polygons whose pixels are blanked before the encoder sees them.

Pure numpy. A mask is rasterised once per camera (pixel centres inside any
polygon, even-odd rule) and applied to every frame in place: luma to black,
chroma to neutral, so the area is one uniform colour in every clip, still,
recording and lores frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.bool_]
Polygon = Sequence[tuple[int, int]]
BLACK_Y = 16
NEUTRAL_UV = 128


def rasterise(polygons: Sequence[Polygon], width: int, height: int) -> Mask | None:
    """A boolean picture, True where a pixel is masked; None when nothing is."""
    if not polygons:
        return None
    ys, xs = np.mgrid[0:height, 0:width]
    px = xs + 0.5
    py = ys + 0.5
    mask = np.zeros((height, width), dtype=bool)
    for polygon in polygons:
        inside = np.zeros((height, width), dtype=bool)
        corners = list(polygon)
        for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1], strict=True):
            if y1 == y2:
                continue
            crosses = (py >= min(y1, y2)) & (py < max(y1, y2))
            x_at = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
            inside ^= crosses & (px < x_at)
        mask |= inside
    return mask if mask.any() else None


def chroma_mask(mask: Mask) -> Mask:
    """The mask at 4:2:0 chroma size: a chroma sample is masked if any of its 4 pixels is."""
    h, w = mask.shape
    quads = mask[: h - h % 2, : w - w % 2].reshape(h // 2, 2, w // 2, 2)
    return np.asarray(quads.any(axis=(1, 3)))


def apply(yuv: npt.NDArray[np.uint8], mask: Mask, chroma: Mask) -> None:
    """Blank the masked pixels of an I420 frame (``(h*3/2, w)`` array) in place."""
    h, w = mask.shape
    yuv[:h][mask] = BLACK_Y
    quarter = (h // 2) * (w // 2)
    flat = yuv[h:].reshape(-1)
    cm = chroma.reshape(-1)
    flat[:quarter][cm] = NEUTRAL_UV
    flat[quarter : 2 * quarter][cm] = NEUTRAL_UV
