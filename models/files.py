"""Small file helpers shared by every module that writes weights, galleries, bundles or registries.

:func:`write_bytes_atomic` writes a temporary file in the target folder, flushes it to disk and renames it into
place, so a reader sees the old file or the new one, never a torn one; :func:`sha256_file` hashes a file in 1 MiB
chunks (weights are checked against the hashes their sidecars record); :func:`write_npz_atomic` and
:func:`read_npz` write and read the compressed ``.npz`` files that travel beside a bundle.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import platformdirs


def default_cache_dir() -> Path:
    """``$CUPCHECK_CACHE`` when set, else the user's cache directory for cupcheck (derived files only)."""
    env = os.environ.get("CUPCHECK_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("cupcheck", appauthor=False))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, ``os.replace``).

    The file is readable by everyone (mode 0644); on any error the temporary file is removed and ``path`` is
    left as it was. Returns ``path``.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_npz_atomic(path: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` as one compressed ``.npz`` atomically (:func:`write_bytes_atomic`); returns ``path``."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return write_bytes_atomic(path, buf.getvalue())


def read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (no pickles), ``what`` naming the file in errors.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable ``.npz``.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a {what} file ({err})") from err
