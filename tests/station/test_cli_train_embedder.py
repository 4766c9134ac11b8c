"""``cupcheck train embedder``: settings no run could use are refused before any data is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.cli import main


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["--batches-per-epoch", "-1"], "--batches-per-epoch must be >= 1, got -1"),
        (["--batch-size", "1"], "--batch-size must be >= 2, got 1"),
        (["--lr", "-1"], "--lr must be >= 0, got -1.0"),
        (["--backbone-lr", "nan"], "--backbone-lr must be >= 0, got nan"),
    ],
)
def test_settings_no_run_could_use_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], said: str
) -> None:
    out = tmp_path / "embedder.pt"
    assert main(["train", "embedder", "--data", str(tmp_path / "none"), "--out", str(out), *extra]) == 2
    assert said in capsys.readouterr().err and not out.exists()
