"""The folder ``detect --overlay`` and ``verify --overlay`` write into: one picture per photo, none written over."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from station.commands.pictures import OverlayFolder
from station.errors import CliError


def test_photos_of_the_same_name_get_pictures_of_their_own(tmp_path: Path) -> None:
    folder = OverlayFolder(tmp_path / "new" / "pics")  # made when missing
    image = np.zeros((8, 8, 3), np.uint8)
    paths = [folder.write(p, image + k) for k, p in enumerate(["a/cup.jpg", "b/cup.jpg", "cup.png", "c/top.tif"])]
    assert [p.name for p in paths] == ["cup.png", "cup-2.png", "cup-3.png", "top.png"]
    assert folder.written == paths
    assert [int(np.asarray(cv2.imread(str(p)))[0, 0, 0]) for p in paths] == [0, 1, 2, 3]


def test_a_folder_that_cannot_be_made_or_written_is_said(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CliError, match="cannot make the picture folder"):
        OverlayFolder(blocker / "pics")
    folder = OverlayFolder(tmp_path / "pics")
    with pytest.raises(CliError, match="cannot write"):
        folder.write("cup.jpg", np.zeros((0, 0, 3), np.uint8))  # nothing to encode
    folder.folder.rmdir()  # the folder taken away meanwhile (a disk unmounted)
    with pytest.raises(CliError, match="cannot write"):
        folder.write("cup.jpg", np.zeros((8, 8, 3), np.uint8))
    assert folder.written == []
