"""``cupcheck order``: an order's checks at every station with their photographs, on a real SQLite log."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.records import VerdictRecord
from db.repository import VerdictRepository
from db.schema import LabelKind, Role
from models.types import Decision
from station.cli import main
from tests.db.factories import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN, make_record


def _logged_home(tmp_path: Path, records: list[VerdictRecord]) -> Path:
    """A home whose log holds ``records``, logged by the test operator in that order."""
    home = tmp_path / "home"
    home.mkdir()
    repo = VerdictRepository.open(home)
    try:
        repo.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
        for record in records:
            repo.log_verdict(record)
    finally:
        repo.engine.dispose()
    return home


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home whose log holds two checks of order A-7 (a FLAG ruled on, then a PASS at another station)."""
    home = tmp_path / "home"
    home.mkdir()
    repo = VerdictRepository.open(home)
    try:
        repo.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
        repo.add_operator(SUPERVISOR, Role.SUPERVISOR, SUPERVISOR_PIN)
        at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        flag = make_record(1, decision=Decision.FLAG, p_correct=0.2, order="A-7", created_at=at)
        flag = replace(flag, reasons=("3 coins seen, the order is for 4: 1 short, or hidden under others — spread",))
        flagged = repo.cup_of_verdict(repo.log_verdict(replace(flag, expected_count=4)))
        repo.relabel(SUPERVISOR, flagged, LabelKind.CORRECTED, corrected_type="eur_2")
        passed = make_record(2, order="A-7", station="packing-2", created_at=at + timedelta(minutes=5))
        repo.log_verdict(replace(passed, expected_count=3))
        repo.log_verdict(make_record(3, order="B-1", created_at=at))
    finally:
        repo.engine.dispose()
    return home


def test_the_checks_of_an_order_with_their_photographs(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["order", "A-7", "--home", str(home)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(f" packing-2 {OPERATOR}: PASS eur_1, 3 coins of 3 ordered")
    assert out[1].startswith(f"  photo: {home / 'captures'}")
    assert out[2].endswith(": FLAG eur_1, 3 coins of 4 ordered; ruled: corrected to eur_2")
    assert out[3].startswith("  - 3 coins seen, the order is for 4")

    assert main(["order", "A-7", "--home", str(home), "--out", str(tmp_path / "complaint"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["order"] == "A-7" and [c["verdict"] for c in doc["checks"]] == ["pass", "flag"]
    copies = sorted(p.name for p in (tmp_path / "complaint").iterdir())
    assert len(copies) == 4 and all(name.startswith("A-7_") for name in copies)  # as taken, and outlined
    assert sum(name.endswith("_coins.jpg") for name in copies) == 2
    first = doc["checks"][0]
    assert Path(first["copied_to"]).read_bytes() == Path(first["photo"]).read_bytes()

    assert main(["order", "Z-9", "--home", str(home)]) == 1
    assert capsys.readouterr().out.strip() == "no cup of order Z-9 was ever checked"
    assert main(["order", "A-7", "--home", str(tmp_path / "nowhere")]) == 2


def test_a_photograph_missing_from_the_store_is_not_called_pruned(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["order", "A-7", "--home", str(home), "--json"]) == 0
    flagged = json.loads(capsys.readouterr().out)["checks"][1]
    lost = Path(flagged["photo"])
    lost.unlink()  # a FLAG's photograph is never pruned: this one is lost (or the image folder is another)
    assert main(["order", "A-7", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert f"  photo: {lost.name} is missing from {lost.parent} (is this the station's image folder?)" in out
    assert "pruned" not in out

    repo = VerdictRepository.open(home)  # the PASS, pruned on purpose: said so
    try:
        assert repo.prune_images(datetime(2026, 4, 1, tzinfo=UTC), min_age_s=0.0).cups == 2  # and B-1's
    finally:
        repo.engine.dispose()
    assert main(["order", "A-7", "--home", str(home)]) == 0
    assert "  photo: pruned (cupcheck prune)" in capsys.readouterr().out.splitlines()


def test_an_order_number_with_a_slash_is_copied_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = _logged_home(tmp_path, [make_record(1, order="SO/2026/0042")])
    assert main(["order", "SO/2026/0042", "--home", str(home), "--out", str(tmp_path / "complaint")]) == 0
    copies = sorted(p.name for p in (tmp_path / "complaint").iterdir())
    assert len(copies) == 2 and all(name.startswith("SO_2026_0042_") for name in copies)
    assert f"photo: {tmp_path / 'complaint' / copies[0]}" in capsys.readouterr().out


def test_the_checks_left_out_by_the_limit_are_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    at = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    flags = [make_record(i + 1, decision=Decision.FLAG, p_correct=0.2, order="Z-1") for i in range(5)]
    home = _logged_home(tmp_path, [replace(f, created_at=at + timedelta(minutes=i)) for i, f in enumerate(flags)])
    assert main(["order", "Z-1", "--home", str(home), "--limit", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum(": FLAG eur_1" in line for line in out) == 3
    assert out[-1] == "2 older checks not shown (--limit 5 shows them)"

    assert main(["order", "Z-1", "--home", str(home), "--limit", "4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (len(doc["checks"]), doc["truncated"], doc["older_not_shown"]) == (4, True, 1)
    assert main(["order", "Z-1", "--home", str(home), "--limit", "5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (len(doc["checks"]), doc["truncated"], doc["older_not_shown"]) == (5, False, 0)
    assert main(["order", "Z-1", "--home", str(home), "--limit", "5"]) == 0
    assert "not shown" not in capsys.readouterr().out


def test_two_checks_of_an_order_in_one_second_keep_a_photograph_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
    home = _logged_home(
        tmp_path,
        [
            make_record(1, order="Z-2", station="s1", created_at=at + timedelta(microseconds=100)),
            make_record(2, order="Z-2", station="s2", created_at=at + timedelta(microseconds=900_000)),
        ],
    )
    out = tmp_path / "complaint"
    assert main(["order", "Z-2", "--home", str(home), "--out", str(out), "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    copies = sorted(p.name for p in out.iterdir())
    assert len(copies) == 4  # each check's photograph, as taken and outlined
    for check in checks:
        copied = Path(check["copied_to"])
        assert copied.read_bytes() == Path(check["photo"]).read_bytes()
        assert f"_{check['station']}_cup{check['cup_id']}_pass" in copied.name
