"""A disk that has just filled up, for the tests of what is written when it does: the process's file size limit.

``RLIMIT_FSIZE`` is the kernel's own limit on how large a file of this process may grow: a write past it writes what
fits and the next one fails (EFBIG, as ENOSPC does on a full disk), with no stand-in for the file system.
"""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def files_limited_to(n_bytes: int) -> Iterator[None]:
    """While inside, no file of this process grows past ``n_bytes`` (the signal the kernel sends then is ignored,
    so the write fails with an ``OSError`` instead of ending the process)."""
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
