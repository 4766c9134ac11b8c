"""Content-addressed files under the station home: ``captures/ab/cdef....jpg``, named by their SHA-256.

A file's name is the hash of its bytes, so a file is either absent or complete and correct: writes go to a temporary
file in the target folder, are flushed to disk, then renamed into place with :func:`os.replace` (atomic on POSIX
and Windows). Writing the same bytes twice is a no-op; a file whose bytes do not hash to its name (a damaged
copy) is written again. Files whose database transaction failed are *orphans*:
harmless (nothing references them and their content matches their name) until :meth:`ContentStore.remove` is
called on them by the repository's garbage collection.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STORE_DIR = "captures"
_TMP_PREFIX = ".tmp-"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredBlob:
    """Where a blob lives in the store.

    Attributes:
        sha256: hex digest of the bytes (64 characters).
        ref: path relative to the store's home, ``captures/ab/cdef....ext`` (always ``/``-separated).
        size_bytes: length of the content.
    """

    sha256: str
    ref: str
    size_bytes: int


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def ref_for(sha256: str, ext: str) -> str:
    """Return the relative reference ``captures/<2 hex>/<62 hex>.<ext>`` for a digest and extension."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
    if not ext.isalnum():
        raise ValueError(f"bad extension {ext!r}")
    return f"{STORE_DIR}/{sha256[:2]}/{sha256[2:]}.{ext}"


class StoreUnreachable(OSError):
    """A shared image folder is not there (a share that is not mounted), or refuses writes as a share that is away or
    read-only does: a write waits, like a database outage."""


SHARE_AWAY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.ESTALE, errno.EIO, errno.ENOTCONN})
"""How a shared folder refuses a write while it is read-only, its permissions changed, its server gone or its handle
stale: a verdict then waits in the journal and is replayed, where on the station's own disk such an error (or a full
disk anywhere) stops the verdict being saved."""


class ContentStore:
    """Content-addressed blob files under ``home/captures``.

    Args:
        home: the station home, or a site's shared folder; files go under ``home/captures``.
        shared: ``home`` is a site's shared folder: its ``captures/`` must be there already (:meth:`create` makes
            it once), so that a share that is not mounted, whose mount point is an empty local folder, is never
            written into; the images would vanish under the share once it is mounted again.
    """

    def __init__(self, home: Path, *, shared: bool = False) -> None:
        self.home = Path(home)
        self.root = self.home / STORE_DIR
        self.shared = shared

    def create(self) -> Path:
        """Make the ``captures/`` folder (a site's shared store is set up once with it); returns it."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    def path(self, ref: str) -> Path:
        """Return the absolute path of a reference produced by :meth:`put`."""
        if not ref.startswith(f"{STORE_DIR}/") or ".." in ref.split("/"):
            raise ValueError(f"not a store reference: {ref!r}")
        return self.home / ref

    def put(self, data: bytes, ext: str) -> StoredBlob:
        """Write ``data`` atomically at its content address and return where it is.

        The bytes go to a temporary file beside the target, are fsync'd, and are renamed into place; the folder is
        fsync'd after the rename. A target that already holds these bytes (its SHA-256 is its name) is left alone,
        but its modification time is renewed, so a clean-up that spares young files does not remove it under a
        write in flight; a target holding other bytes (a damaged copy, a file put there by hand) is replaced the same
        atomic way, so a verdict never names a photograph other than its own.

        Args:
            data: the file's bytes.
            ext: file extension without the dot (``"jpg"``, ``"png"``, ``"npy"``).

        Returns:
            The blob's digest, relative reference and size.

        Raises:
            StoreUnreachable: a shared store's ``captures/`` is not there, or the share refuses the write as a share
                that is away or read-only does (:data:`SHARE_AWAY_ERRNOS`): the verdict waits in the journal.
            OSError: anything else (a full disk): the verdict cannot be saved.
        """
        if self.shared and not self.root.is_dir():
            raise StoreUnreachable(
                f"the shared image folder {self.root} is not there: is the share mounted? (a new site makes it "
                "with `cupcheck init-site`)"
            )
        digest = sha256_hex(data)
        ref = ref_for(digest, ext)
        target = self.home / ref
        try:
            held = _digest_of(target)
            if held == digest:
                with contextlib.suppress(OSError):  # another station's file on a share may not be ours to touch
                    os.utime(target)  # in use again: the clean-ups leave files touched within their grace period alone
                return StoredBlob(digest, ref, len(data))
            if held is not None:
                _log.warning("%s holds other bytes than its name says (a damaged copy?): written again", target)
            _write_atomic(target, data)
        except StoreUnreachable:
            raise
        except OSError as err:
            if self.shared and err.errno in SHARE_AWAY_ERRNOS:
                where = f": {err.filename}" if err.filename else ""
                raise StoreUnreachable(
                    f"the shared image folder {self.root} cannot be written ({err.strerror}{where}): is the share "
                    "mounted, and writable from this PC? The verdict waits in the journal until it is"
                ) from err
            raise
        return StoredBlob(digest, ref, len(data))

    def read(self, ref: str) -> bytes:
        """Return the bytes of a stored blob."""
        return self.path(ref).read_bytes()

    def exists(self, ref: str) -> bool:
        """Whether the blob is present."""
        return self.path(ref).is_file()

    def iter_refs(self) -> Iterator[tuple[str, float]]:
        """Yield ``(ref, mtime)`` for every complete blob in the store (temporary files excluded)."""
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if not sub.is_dir():
                continue
            for file in sorted(sub.iterdir()):
                if file.name.startswith(_TMP_PREFIX) or not file.is_file():
                    continue
                yield f"{STORE_DIR}/{sub.name}/{file.name}", file.stat().st_mtime

    def iter_temp_files(self) -> Iterator[tuple[Path, float]]:
        """Yield ``(path, mtime)`` of temporary files left by interrupted writes."""
        if not self.root.is_dir():
            return
        for file in self.root.glob(f"*/{_TMP_PREFIX}*"):
            yield file, file.stat().st_mtime

    def remove(self, ref: str) -> None:
        """Delete a blob if present."""
        with contextlib.suppress(FileNotFoundError):
            self.path(ref).unlink()


def _digest_of(path: Path) -> str | None:
    """The hex SHA-256 of the file at ``path``, or ``None`` when there is none."""
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target``, fsync it, rename it into place, fsync the folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entry table so a rename survives power loss (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
