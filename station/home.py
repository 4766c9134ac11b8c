"""The station's data directory (gallery, database, models, captures)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_VAR = "CUPCHECK_HOME"
LOW_DISK_BYTES = 2_000_000_000
"""Below this much free room on the home's disk, the station asks for ``cupcheck prune`` (window and doctor)."""


def resolve_home(explicit: str | Path | None = None) -> Path:
    """Return the station home: ``explicit``, else ``$CUPCHECK_HOME``, else the user's data directory.

    The directory is created if it does not exist.

    Raises:
        NotADirectoryError: the home names a file.
        OSError: it cannot be made (a read-only disk, no permission).
    """
    if explicit is not None:
        home = Path(explicit)
    elif os.environ.get(ENV_VAR):
        home = Path(os.environ[ENV_VAR])
    else:
        home = Path(platformdirs.user_data_dir("cupcheck", appauthor=False))
    home = home.expanduser()
    if home.exists() and not home.is_dir():
        raise NotADirectoryError(20, "the station home is a file, not a folder", str(home))
    home.mkdir(parents=True, exist_ok=True)
    return home
