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
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def write_bytes_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, ``os.replace``).

    The file gets ``mode`` (default 0644: readable by everyone); on any error the temporary file is removed and
    ``path`` is left as it was. Returns ``path``.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
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


class LockTimeout(RuntimeError):
    """Another process held a lock past the wait (the message names it)."""


def holder_is_gone(holder: str) -> bool:
    """Whether a lock's holder line (``"<host> pid <pid> since <time>"``, as :func:`exclusive_lock` writes it) names
    a process of this host that no longer runs, so its lock was left by a run that died (``kill -9``, a crash).

    A holder on another host, a line that cannot be read, or a process that runs (under any account) is not gone:
    only this host can tell whether one of its own processes is alive.
    """
    parts = holder.split()
    if os.name != "posix" or len(parts) < 3 or parts[1] != "pid" or parts[0] != socket.gethostname():
        return False
    try:
        pid = int(parts[2])
    except ValueError:
        return False
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: asks whether the process exists, sends nothing
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it runs under another account
        return False
    return False


@contextmanager
def exclusive_lock(path: Path, wait_s: float, stale_s: float, what: str) -> Iterator[None]:
    """Hold the lock file ``path`` (created exclusively, which network shares honour, naming its holder) while a
    shared file is read, changed and written again; another process waits for it.

    Args:
        path: the lock file.
        wait_s: how long to wait for another holder.
        stale_s: a lock older than this was left by a process that died; one waiter breaks it. A lock whose
            holder is a process of this host that no longer runs (killed, or the PC restarted) is broken at once.
        what: what is being changed, for the message.

    Raises:
        LockTimeout: another holder kept it past ``wait_s``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                age = time.time() - path.stat().st_mtime
                holder = path.read_text().strip()
            except FileNotFoundError:
                continue  # released meanwhile
            if age > stale_s or holder_is_gone(holder):
                broken = path.with_name(f".{path.name}.{os.getpid()}.stale")
                with suppress(FileNotFoundError):
                    os.replace(path, broken)  # one waiter breaks it; the others find it gone
                    broken.unlink()
                continue
            if time.monotonic() > deadline:
                raise LockTimeout(
                    f"{what} is in use by {holder or 'another process'} ({age:.0f} s); try again later, "
                    f"or remove {path} if no cupcheck runs there"
                ) from None
            time.sleep(0.05)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{socket.gethostname()} pid {os.getpid()} since {datetime.now(UTC).isoformat()}\n")
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def read_torch_checkpoint(path: Path, *, weights_only: bool = False) -> Any:
    """``torch.load`` of a checkpoint file, on the CPU (``weights_only``: tensors and plain containers only).

    Raises:
        ValueError: the file is not a readable torch checkpoint (truncated, text, another pickle): torch raises
            many types for a bad file, and a command reports this one in a line.
    """
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as err:  # torch raises many types for a bad file
        raise ValueError(f"{path} is not a readable torch checkpoint: {type(err).__name__}: {err}") from err
