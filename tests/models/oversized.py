"""A tiny PNG whose header claims a picture far larger than OpenCV will decode (a corrupt or oversized file)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_oversized_png(path: Path, side: int = 50_000) -> Path:
    """Write a valid PNG header for a ``side`` x ``side`` 8-bit RGB picture, with one row of data, to ``path``.

    Over 2^30 pixels, ``cv2.imdecode`` raises ``cv2.error`` instead of returning ``None``; the file is a few dozen
    bytes.
    """
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
    png += _chunk(b"IDAT", zlib.compress(b"\x00" * 4)) + _chunk(b"IEND", b"")
    path.write_bytes(png)
    return path
