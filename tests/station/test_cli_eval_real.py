"""``cupcheck eval detect|embed --real``: a folder holding no real data to judge (one level too high) is refused with
exit status 2 before any work, as ``eval verdict`` refuses it, instead of a report without its real section."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.cli import main


def test_eval_detect_refuses_a_real_folder_one_level_too_high(
    real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    assert main(["eval", "detect", "--real", str(real_data.parent), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{real_data.parent} holds no euro_kaa/photos.json: give the real data folder" in err
    assert not out.exists()


def test_eval_embed_refuses_a_real_folder_one_level_too_high(
    real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    assert main(["eval", "embed", "--real", str(real_data.parent), "--no-latency", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{real_data.parent} holds neither euro_kaa/crops/{{train,test}}/ nor won_cho0h5/crops/{{train,test}}/" in err
    )
    assert not out.exists()
