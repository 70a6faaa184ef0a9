"""A grey frame as PNG: enough for the camera page, with no imaging library."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt


def gray_png(gray: npt.NDArray[np.uint8]) -> bytes:
    """Encode a 2-D uint8 array as an 8-bit greyscale PNG (filter 0 on every row)."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("expected a 2-D uint8 array")
    height, width = gray.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)
    rows[:, 1:] = gray
    raw = zlib.compress(rows.tobytes(), 6)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", raw) + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
