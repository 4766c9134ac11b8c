"""``cupcheck init-site`` says where the database's schema stands: this software's, or a newer one used as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.session import make_engine
from station.cli import main
from tests.db.test_migrations import FUTURE, HEAD, migrate_with_newer_software


def test_init_site_names_a_schema_newer_than_this_software(
    empty_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(empty_db_url)
    try:
        migrate_with_newer_software(engine, tmp_path, oldest=HEAD)  # a newer station migrated it, compatibly
    finally:
        engine.dispose()
    site = ["--home", str(tmp_path / "home"), "--db", empty_db_url, "--store", str(tmp_path / "share")]
    assert main(["init-site", *site]) == 0
    out = capsys.readouterr().out
    assert f"at revision {FUTURE}, newer than this software's {HEAD} (used as it is)" in out
    assert "this software's schema" not in out  # before: "at this software's schema"
