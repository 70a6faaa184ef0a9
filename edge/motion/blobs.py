"""From changed pixels to moving blobs, and thin targets followed from frame to frame. Pure.

Two views of the same changed pixels on the working grid:

- **Bodies**: opening (3x3) removes speckles, closing joins the parts of one
  body; blobs of at least ``min_area_px`` are motion at once.
- **Thin targets**: a far person or cyclist is 3-10 px wide on the working
  grid and its changed pixels are patchy, so the opening erases it and what is
  left falls under ``min_area_px``. Closing alone keeps it; blobs of at least
  a quarter of ``min_area_px`` are followed from frame to frame (a *track*).
  A track counts as motion once it has travelled ``TRAVEL_PX`` from where it
  started, or when it is the continuation of a body (a person walking away
  shrinks under the minimum area), and stays motion while it travels
  ``TRAVEL_PX`` every ``RECHECK_FRAMES``. On-screen text, glare and shaking
  leaves change in place: their tracks never travel, and they stay out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np
from cv2.typing import MatLike

U8 = MatLike  # an 8-bit, one-channel picture as OpenCV returns it
Blob = tuple[int, int, int, int, int]  # x, y, w, h, area on the working grid
KERNEL = np.ones((3, 3), np.uint8)
FRINGE = np.ones((5, 5), np.uint8)  # changed pixels this close to a body are its fringe
TRAVEL_PX = 4.0  # working-grid pixels a small blob must travel to count as a moving target
MAX_MISSES = 3  # frames a track may go unseen (a body that fragments) before it is dropped
MAX_TRACKS = 32  # a busy frame keeps following the biggest blobs only
RECHECK_FRAMES = 30  # a moving track that has not travelled TRAVEL_PX in this long stops


class Track(NamedTuple):
    """A small blob followed across frames (working-grid pixels)."""

    x: float  # centroid now
    y: float
    x0: float  # centroid where the track started, or last travelled to
    y0: float
    size: float  # the larger side of its last blob
    hits: int = 1
    misses: int = 0
    moving: bool = False  # it travelled, or it continues a body: it is motion
    age: int = 0  # frames since (x0, y0)
    blob: Blob = (0, 0, 0, 0, 0)  # where it was last seen


def bodies(raw: U8, min_area_px: int) -> tuple[U8, list[Blob]]:
    """Opened then closed mask (0/255, a new array) and its blobs of at least ``min_area_px``."""
    # opening then closing, 3x3: erode, dilate twice (= once 5x5), erode
    clean = cv2.erode(cv2.dilate(cv2.erode(raw, KERNEL), FRINGE), KERNEL)
    x, y, w, h = cv2.boundingRect(clean)
    if w == 0:
        return clean, []
    # Labelled in the rectangle around the opened pixels only, for about half the work
    # (speckles widen the changed pixels' rectangle). It starts on an even row and column:
    # OpenCV labels 2x2 blocks, so the components come in the same order as on the whole.
    # 16-bit labels: blobs survive a 3x3 opening, so fewer than 65,536 of them fit any grid
    # up to 640 px wide, and this is three times faster than the default here.
    x, y = x & ~1, y & ~1
    box = clean[y : y + h + 1, x : x + w + 1]
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        box, connectivity=8, ltype=cv2.CV_16U
    )
    ids, blobs = _at_least(stats, min_area_px, x, y)
    if len(blobs) < count - 1:
        box[...] = _keep(labels, count, ids)
    return clean, blobs


def _at_least(
    stats: MatLike, smallest: int, x0: int = 0, y0: int = 0
) -> tuple[list[int], list[Blob]]:
    """Labels and boxes (moved by ``x0``, ``y0``) of the components of at least ``smallest``
    pixels (the background, label 0, left out). Plain lists: a frame has a handful, where
    numpy's calls cost more."""
    rows = stats.tolist()
    ids = [i for i in range(1, len(rows)) if rows[i][4] >= smallest]
    if x0 or y0:
        return ids, [(r[0] + x0, r[1] + y0, r[2], r[3], r[4]) for r in (rows[i] for i in ids)]
    return ids, [tuple(rows[i]) for i in ids]


def _keep(labels: U8, count: int, ids: list[int]) -> U8:
    """The mask (0/255) of the chosen labels: one comparison for one label, else a table
    lookup when labels fit 8 bits."""
    if len(ids) == 1:  # OpenCV takes the number as a scalar; its stubs want an array
        one: U8 = cv2.compare(labels, ids[0], cv2.CMP_EQ)  # type: ignore[call-overload]
        return one
    if count <= 256:
        table = np.zeros(256, np.uint8)
        table[ids] = 255
        return cv2.LUT(labels.astype(np.uint8), table)
    keep = np.zeros(count, np.uint8)
    keep[ids] = 255
    return np.asarray(keep[labels], np.uint8)


def least(min_area_px: int, following: bool) -> int:
    """The smallest thin blob: a quarter of ``min_area_px`` to start a track, an eighth
    to continue one."""
    return max(2, min_area_px // (8 if following else 4))


class Thin(NamedTuple):
    """Thin blobs: their boxes and areas, and what draws their mask on demand."""

    blobs: list[Blob]
    labels: U8 | None = None
    labelled: int = 0  # labels in use, the background included
    ids: tuple[int, ...] = ()

    def draw(self, chosen: list[int], mask: U8) -> None:
        """Add the chosen blobs (indexes into ``blobs``) to ``mask`` (0/255, in place)."""
        assert self.labels is not None
        x0, y0, x1, y1 = self.labels.shape[1], self.labels.shape[0], 0, 0
        for i in chosen:
            x, y, w, h, _ = self.blobs[i]
            x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x + w), max(y1, y + h)
        drawn = _keep(self.labels[y0:y1, x0:x1], self.labelled, [self.ids[i] for i in chosen])
        cv2.bitwise_or(mask[y0:y1, x0:x1], drawn, dst=mask[y0:y1, x0:x1])


def thin(raw: U8, body_mask: U8, has_bodies: bool, smallest: int) -> Thin:
    """Blobs among the changed pixels away from the bodies (2 px or more), closed, of at
    least ``smallest`` pixels. Empty when too few are left."""
    rest = cv2.subtract(raw, cv2.dilate(body_mask, FRINGE)) if has_bodies else raw
    if cv2.countNonZero(rest) < smallest:
        return Thin([])
    closed = cv2.morphologyEx(rest, cv2.MORPH_CLOSE, KERNEL)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        closed, connectivity=8, ltype=cv2.CV_16U
    )
    ids, blobs = _at_least(stats, smallest)
    if not ids:
        return Thin([])
    return Thin(blobs, labels, count, tuple(ids))


def near(blob: Blob, boxes: Sequence[Blob], margin: int = 2) -> bool:
    """``blob`` touches one of ``boxes``, or comes within ``margin`` of it."""
    x, y, w, h, _ = blob
    left, top, right, bottom = x - margin, y - margin, x + w + margin, y + h + margin
    for bx, by, bw, bh, _ in boxes:
        if left < bx + bw and bx < right and top < by + bh and by < bottom:
            return True
    return False


def _closest(free: list[Track], cx: float, cy: float, size: float) -> int:
    """Index of the nearest track within reach of (cx, cy) (see ``_reach``), or -1.
    (Tuple indexes, not names: this runs for every blob and track of a busy frame.)"""
    best, best_d = -1, 0.0
    for j, t in enumerate(free):
        dx, dy = t[0] - cx, t[1] - cy
        d2 = dx * dx + dy * dy
        reach = 0.75 * (t[4] if t[4] > size else size)
        if d2 <= (reach * reach if reach > 4.0 else 16.0) and (best < 0 or d2 < best_d):
            best, best_d = j, d2
    return best


def follow(
    tracks: tuple[Track, ...], blobs: list[Blob], bodies: Sequence[Blob], start_px: int
) -> tuple[tuple[Track, ...], list[int]]:
    """Match this frame's thin blobs to the tracks: (new tracks, indexes of the blobs that
    are moving targets). A blob where a body was (this frame or the last) continues it;
    a blob under ``start_px`` may continue a track, never start one."""
    if len(blobs) > 1:  # the largest first, ties in their order
        areas = [blob[4] for blob in blobs]
        order = sorted(range(len(blobs)), key=areas.__getitem__, reverse=True)[:MAX_TRACKS]
    else:
        order = list(range(len(blobs)))
    free = list(tracks)
    out: list[Track] = []
    moving: list[int] = []
    for i in order:
        blob = blobs[i]
        x, y, w, h, area = blob
        cx, cy, size = x + w / 2, y + h / 2, float(w if w > h else h)
        best = _closest(free, cx, cy, size) if free else -1
        body = near(blob, bodies)
        if best >= 0:
            track = _moved(free.pop(best), cx, cy, size, blob, body)
        else:  # a new blob where a moving target is (a body, a part of one) joins it
            joins = body or any(t[7] and _reach(t, cx, cy, size, 1.0) for t in tracks)
            if area < start_px and not joins:
                continue
            track = Track(cx, cy, cx, cy, size, 1, 0, joins, 0, blob)
        out.append(track)
        if track[7]:
            moving.append(i)
    for t in free:
        if t[6] < MAX_MISSES:
            tx, ty, x0, y0, tsize, hits, misses, moved, age, last = t
            out.append(Track(tx, ty, x0, y0, tsize, hits, misses + 1, moved, age + 1, last))
    return tuple(out), moving


def _reach(t: Track, cx: float, cy: float, size: float, sizes: float = 0.75) -> bool:
    """(cx, cy) is close enough to track ``t`` to be the same target (or a part of it,
    with ``sizes`` 1: within a target's length)."""
    reach = max(4.0, sizes * max(t.size, size))
    return (t.x - cx) ** 2 + (t.y - cy) ** 2 <= reach * reach


def _moved(t: Track, cx: float, cy: float, size: float, blob: Blob, body: bool) -> Track:
    """Track ``t`` seen again as ``blob`` (centre ``cx``, ``cy``, larger side ``size``)."""
    _, _, x0, y0, _, hits, _, moved, age, _ = t
    dx, dy = cx - x0, cy - y0
    if dx * dx + dy * dy >= TRAVEL_PX * TRAVEL_PX:  # travelled
        return Track(cx, cy, cx, cy, size, hits + 1, 0, True, 0, blob)
    if age + 1 >= RECHECK_FRAMES:  # in place for too long: moving only over a body
        return Track(cx, cy, cx, cy, size, hits + 1, 0, body, 0, blob)
    return Track(cx, cy, x0, y0, size, hits + 1, 0, moved or body, age + 1, blob)
