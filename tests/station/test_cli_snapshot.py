"""``cupcheck snapshot``: one frame from the camera the station file names, at its size; bad input refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from station.cli import main


def test_a_snapshot_is_the_station_cameras_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "camera"
    folder.mkdir()
    frame = np.zeros((120, 160, 3), np.uint8)
    cv2.circle(frame, (80, 60), 30, (0, 200, 255), -1)
    cv2.imwrite(str(folder / "tray.png"), frame)
    config = tmp_path / "station.toml"
    config.write_text(f'[camera]\nkind = "folder"\nfolder = "{folder}"\n')
    out = tmp_path / "shots" / "coin.png"
    assert main(["snapshot", "--config", str(config), str(out), "--skip", "2"]) == 0
    assert capsys.readouterr().out == f"{out}: 160×120 from folder {folder}\n"
    saved = cv2.imread(str(out))
    assert saved is not None and np.array_equal(saved, frame)

    assert main(["snapshot", "--config", str(config), str(tmp_path / "coin.gif")]) == 2
    assert "write a .png or .jpg" in capsys.readouterr().err
    assert main(["snapshot", "--config", str(tmp_path / "missing.toml"), str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    config.write_text(f'[camera]\nkind = "folder"\nfolder = "{tmp_path / "nowhere"}"\n')
    assert main(["snapshot", "--config", str(config), str(out)]) == 2
    assert "the camera cannot be opened" in capsys.readouterr().err
