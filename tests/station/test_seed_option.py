"""--seed on every command that takes one: a whole number NumPy's generators accept, else a clear argparse error."""

from __future__ import annotations

import pytest

from station.cli import main


@pytest.mark.parametrize("command", ["mat", "synth", "simulate-day", "demo", "bench camera", "train voter"])
@pytest.mark.parametrize(
    ("seed", "said"), [("-1", "a seed is from 0 to 4294967295, not -1"), ("7.5", "a seed is a whole number, not '7.5'")]
)
def test_a_seed_numpy_refuses_is_refused_first(
    command: str, seed: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*command.split(), "--seed", seed, "--help-never-reached"])
    assert stop.value.code == 2 and f"argument --seed: {said}" in capsys.readouterr().err
