"""The folder a command writes its pictures into (``detect --overlay``, ``verify --overlay``)."""

from __future__ import annotations

from pathlib import Path

import cv2

from models.types import UInt8Array
from station.errors import CliError


class OverlayFolder:
    """Writes one PNG per input photo into ``folder``, named by the photo: ``cup.jpg`` gives ``cup.png``, and a
    second photo of the same name in the same run (``a/cup.jpg``, ``b/cup.jpg``) ``cup-2.png``, so none is
    written over.

    Raises:
        CliError: the folder cannot be made.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[Path] = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CliError(f"cannot make the picture folder {folder}: {err}") from err

    def write(self, source: str | Path, image: UInt8Array) -> Path:
        """Write ``image`` as the picture of the photo ``source``; return its path.

        Raises:
            CliError: it could not be written.
        """
        stem = Path(source).stem or "photo"
        taken = {p.name for p in self.written}
        path, k = self.folder / f"{stem}.png", 1
        while path.name in taken:
            k += 1
            path = self.folder / f"{stem}-{k}.png"
        try:
            written = cv2.imwrite(str(path), image)
        except cv2.error as err:  # an image the encoder refuses
            raise CliError(f"cannot write {path}: {err}") from err
        if not written:
            raise CliError(f"cannot write {path}")
        self.written.append(path)
        return path
