"""``cupcheck models`` on a site whose shared registry is not mounted: every action is refused (exit 2, "is the share
mounted?") and nothing is written under the mount point, where a promotion would vanish once the share is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import load_registry
from station.cli import main
from tests.station.test_cli_models import _register

ACTIONS = [["list"], ["list", "--json"], ["promote", "shipped"], ["promote", "verdict-0000"], ["rollback"]]
PRUNES = [["prune"], ["prune", "--dry-run"], ["prune", "--keep", "0"]]


@pytest.mark.parametrize("action", ACTIONS + PRUNES, ids=lambda a: " ".join(a))
def test_an_unmounted_shared_registry_is_refused_and_nothing_is_written(
    action: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    (name,) = _register(home, tmp_path, 1)  # the station's own registry: never listed in the site's place
    assert main(["models", "--home", str(home), "promote", name]) == 0
    before = (home / "models" / "registry.json").read_bytes()
    mount = tmp_path / "mnt"  # the share's mount point, an empty local folder while it is not mounted
    mount.mkdir()
    config = tmp_path / "site.toml"
    config.write_text(f'home = "{home}"\nmodels = "{mount}"\n')
    capsys.readouterr()
    assert main(["models", "--config", str(config), *action]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"no model registry at {mount / 'models' / 'registry.json'}: is the share mounted?" in err
    assert list(mount.iterdir()) == []  # no registry, lock or models/ folder made there
    assert (home / "models" / "registry.json").read_bytes() == before


def test_the_homes_own_registry_may_be_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"  # a station with no registry yet: the shipped bundle is in force
    assert main(["models", "--home", str(home), "list"]) == 0
    assert "* shipped" in capsys.readouterr().out
    assert main(["models", "--home", str(home), "--models", str(home), "prune"]) == 0
    assert load_registry(home).current is None
