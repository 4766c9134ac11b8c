"""The activity report (``cupcheck report``): cups counted once across re-checks, what became of them, FLAG reasons,
rulings and the PASS audit, per day, station and operator; the files it writes and the command's input checks."""

from __future__ import annotations

import argparse
import csv
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest

from calibration.risk import clopper_pearson_lower
from db.records import CupActivity, audit_pick
from db.repository import VerdictRepository
from db.schema import LabelKind, Role
from models.reasons import ReasonKind
from models.types import Decision
from station.activity_report import follow_rechecks, headline, summarise, write_activity_report
from station.cli import main
from station.commands.report import period
from station.errors import CliError
from tests.db.factories import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN, make_record

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TURN = "coin 2 shows the shared obverse — turn it over"
COUNT = "9 coins seen, the order is for 10: 1 short, or hidden under others — spread them out"
LOOKS = "coin 4 looks like t0085 (0.91)"


def check(cup_id: int, minutes: float, decision: Decision = Decision.PASS, **kw: object) -> CupActivity:
    base = CupActivity(
        cup_id=cup_id,
        at=T0 + timedelta(minutes=minutes),
        station="s1",
        operator="olga",
        order=None,
        expected_type="t1",
        decision=decision,
        p_correct=0.99 if decision == Decision.PASS else 0.1,
        reasons=() if decision == Decision.PASS else (LOOKS,),
        model_version="m1",
        check_ms=150.0,
        n_coins=10,
        recheck_of=None,
        cup_ruling=None,
        corrected_type=None,
        coin_rulings=0,
        wrong_coins=0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_a_turned_cup_counts_once_with_the_verdict_of_its_last_check() -> None:
    checks = [
        check(1, 0, Decision.FLAG, reasons=(TURN,)),
        check(2, 1, Decision.FLAG, reasons=(TURN,), recheck_of=1),
        check(3, 2, recheck_of=2),
        check(4, 3, recheck_of=99),  # answers a check outside the period: a cup of its own
    ]
    cups = follow_rechecks(checks)
    assert [(c.first.cup_id, c.last.cup_id, c.checks, c.passed, c.turned) for c in cups] == [
        (1, 3, 3, True, True),
        (4, 4, 1, True, False),
    ]


def test_a_cup_checked_again_once_the_camera_was_back_passed_as_it_lay() -> None:
    camera = "the camera has moved since it was set up (the view: 12 px right) — put it back, or calibrate again"
    checks = [
        check(1, 0, Decision.FLAG, reasons=(camera,)),
        check(2, 1, recheck_of=1),  # the same cup, not turned: it passed as it lay
        check(3, 2, Decision.FLAG, reasons=(TURN,)),
        check(4, 3, Decision.FLAG, reasons=(camera,), recheck_of=3),  # turned, then flagged for the camera
        check(5, 4, recheck_of=4),
    ]
    cups = follow_rechecks(checks)
    assert [(c.first.cup_id, c.last.cup_id, c.checks, c.turned) for c in cups] == [(1, 2, 2, False), (3, 5, 3, True)]
    s = summarise(checks, T0, T0 + timedelta(days=1))
    assert (s.total.cups, s.total.checks, s.total.passed, s.total.passed_after_turning) == (2, 5, 1, 1)


def test_summary_counts_cups_reasons_rulings_and_the_audit() -> None:
    day2 = 24 * 60
    checks = [
        check(1, 0),
        check(2, 1, cup_ruling="confirmed"),  # an audited PASS, right
        check(3, 2, cup_ruling="corrected", corrected_type="t9"),  # an audited PASS, wrong
        check(4, 3, Decision.FLAG, reasons=(TURN,)),
        check(5, 4, recheck_of=4),  # passed after turning
        check(
            6,
            5,
            Decision.FLAG,
            reasons=(LOOKS, TURN),
            wrong_coins=1,
            coin_rulings=1,
            first_ruled_at=T0 + timedelta(minutes=35),
        ),  # caught a wrong coin
        check(
            7, 70, Decision.FLAG, cup_ruling="confirmed", operator="ana", first_ruled_at=T0 + timedelta(minutes=250)
        ),  # a clean cup flagged
        check(8, day2, Decision.FLAG, reasons=("object 2 is not a coin",), station="s2", model_version="m2"),
        check(9, 6, Decision.FLAG, reasons=(COUNT,)),  # the operator put the count right: check 1 is that cup
    ]
    since, until = T0 - timedelta(hours=1), T0 + timedelta(days=2)
    s = summarise(checks, since, until, audit_share=1.0)  # every PASS drawn for the audit
    t = s.total
    assert (t.cups, t.checks, t.passed, t.passed_after_turning, t.flagged, t.recounted) == (7, 9, 3, 1, 3, 1)
    assert t.auto_pass == pytest.approx(4 / 7)
    assert [(d.isoformat(), x.cups) for d, x in s.days] == [
        ((T0).astimezone().date().isoformat(), 6),
        ((T0 + timedelta(days=1)).astimezone().date().isoformat(), 1),
    ]
    # the count put right by the operator went to no person: not among what the FLAGs were for
    assert dict(s.reasons) == {ReasonKind.LOOKS_LIKE: 2, ReasonKind.TURN: 1, ReasonKind.OBJECT: 1}
    r = s.review
    assert (r.flagged, r.wrong, r.clean, r.waiting, r.audited, r.audited_wrong) == (3, 1, 1, 1, 2, 1)
    # PASSes the audit did not draw (a complaint, a close call) are no random sample: not in its bound
    assert (summarise(checks, since, until, audit_share=0.0).review.audited, s.review.audited) == (0, 2)
    assert r.waits_h == pytest.approx((0.5, 3.0)) and r.wait_h(0.5) == pytest.approx(1.75)  # FLAG to first ruling
    assert headline(s)[1].endswith("; the first ruling came a median 105 min after the FLAG, 90 % within 2.8 h")
    assert headline(s)[2] == "1 check flagged only for the coin count, put right by the operator and checked again"
    assert r.pass_precision_lower == clopper_pearson_lower(1, 2, 0.05)
    assert [(g.name, g.tally.cups) for g in s.stations] == [("s1", 6), ("s2", 1)]
    ops = {g.name: g for g in s.operators}
    # olga checked 6 cups in two hours with a check (9:00 on both days)
    assert (ops["olga"].tally.cups, ops["olga"].cups_per_hour, ops["olga"].median_check_ms) == (6, 3.0, 150.0)
    assert ops["ana"].cups_per_hour == 1.0
    assert s.models == (("m1", 8), ("m2", 1))  # checks, the count one too
    assert [(r.type_id, r.tally.cups, r.tally.flagged, r.top_reason, r.wrong) for r in s.types] == [
        ("t1", 7, 3, ReasonKind.LOOKS_LIKE, 1)
    ]


def test_the_report_writes_markdown_plots_and_every_check(tmp_path: Path) -> None:
    checks = [check(1, 0), check(2, 1, Decision.FLAG, order="A-7", reasons=(LOOKS, TURN)), check(3, 2, recheck_of=2)]
    s = summarise(checks, T0, T0 + timedelta(days=1))
    path = write_activity_report(tmp_path / "rep", s, checks)
    text = path.read_text()
    assert "- 2 cups (3 checks): 1 passed as they lay, 1 after turning, 0 to a person; auto-pass 100.0 %" in text
    assert "PASS audit: no PASS drawn for the audit was ruled on\n" in text
    assert "| olga | 2 | 1 | 1 | 0 | 100.0 % | 150 ms | 2 |" in text
    assert "| t1 | 2 | 100.0 % | 0 | 0 | — |" in text
    for png in ("days.png", "reasons.png"):
        image = cv2.imread(str(tmp_path / "rep" / png))
        assert image is not None and image.shape[0] > 200 and image.shape[1] > 500
    with (tmp_path / "rep" / "checks.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["cup_id"] for r in rows] == ["1", "2", "3"]
    assert (rows[1]["order"], rows[1]["verdict"], rows[1]["reasons"]) == ("A-7", "flag", f"{LOOKS} | {TURN}")
    assert (rows[2]["recheck_of"], rows[2]["check_ms"]) == ("2", "150")

    empty = write_activity_report(tmp_path / "none", summarise([], T0, T0 + timedelta(days=1)), [])
    assert "- 0 cups (0 checks)" in empty.read_text() and (tmp_path / "none" / "days.png").is_file()


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"days": None, "since": None, "until": None, **kw})


def test_the_period_is_whole_local_days_up_to_now() -> None:
    now = datetime(2026, 3, 10, 15, 30).astimezone()
    since, until = period(_args(), now)
    assert (since.date().isoformat(), since.hour, until) == ("2026-03-04", 0, now)
    assert period(_args(days=1), now)[0].date().isoformat() == "2026-03-10"
    since, until = period(_args(since="2026-02-01", until="2026-02-28"), now)
    assert (since.isoformat()[:10], until.isoformat()[:10], until.hour) == ("2026-02-01", "2026-03-01", 0)


def test_a_period_across_the_change_to_summer_time_starts_at_local_midnight(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Europe/Berlin")  # summer time began on 29 March 2026
    time.tzset()
    try:
        now = datetime(2026, 3, 30, 12, 0).astimezone()
        since, until = period(_args(days=7), now)
        assert since.isoformat() == "2026-03-24T00:00:00+01:00" and until == now
        since, until = period(_args(since="2026-03-27", until="2026-03-27"), now)
        assert (since.isoformat(), until.isoformat()) == ("2026-03-27T00:00:00+01:00", "2026-03-28T00:00:00+01:00")
    finally:
        monkeypatch.undo()  # the zone the tests ran in, before the next test
        time.tzset()


def test_a_period_that_starts_after_now_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime(2026, 12, 7, 13, 24).astimezone()
    with pytest.raises(CliError, match=r"starts at 2027-01-01 00:00, not before now \(2026-12-07 13:24\).* --since"):
        period(_args(since="2027-01-01", until="2027-01-02"), now)
    with pytest.raises(CliError, match=r"starts at 2027-01-04 00:00, not before now .* give a --until in the past"):
        period(_args(days=2, until="2027-01-05"), now)  # --days counts back from --until
    since, until = period(_args(since="2026-12-01", until="9999-12-31"), now)  # a last day from today on ends now
    assert (since.date().isoformat(), until) == ("2026-12-01", now)
    out = ["--out", str(tmp_path / "rep")]
    assert main(["report", "--home", str(tmp_path), "--since", "2999-01-01", "--until", "2999-01-02", *out]) == 2
    assert "not before now" in capsys.readouterr().err and not (tmp_path / "rep").exists()


def test_a_first_day_past_the_calendar_names_its_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Europe/Berlin")  # ahead of UTC: 0001-01-01 00:00 here is in the year 0 in UTC
    time.tzset()
    try:
        now = datetime(2026, 3, 30, 12, 0).astimezone()
        with pytest.raises(CliError, match=r"--since 0001-01-01 is before the first day this clock can name"):
            period(_args(since="0001-01-01"), now)
        assert period(_args(since="0001-01-02"), now)[0].date().isoformat() == "0001-01-02"
        with pytest.raises(CliError, match=r"--days reaches back past the calendar's first day"):
            period(_args(days=1_000_000), now)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_audit_line_says_the_passes_ruled_on_that_it_did_not_draw() -> None:
    checks = [
        check(1, 0),
        check(2, 1, cup_ruling="confirmed"),  # a PASS ruled on: after a complaint, or drawn
        check(3, 2, cup_ruling="corrected", corrected_type="t9"),
    ]
    since, until = T0, T0 + timedelta(days=1)
    none = headline(summarise(checks, since, until, audit_share=0.0))[-1]
    assert (
        none
        == "PASS audit: no PASS drawn for the audit was ruled on (but 2 other PASSes, not drawn for it, were ruled on)"
    )
    assert headline(summarise(checks[:1], since, until, audit_share=1.0))[-1] == (
        "PASS audit: no PASS drawn for the audit was ruled on"
    )
    every = headline(summarise(checks, since, until, audit_share=1.0))[-1]
    assert every.startswith("PASS audit: 2 PASSes drawn for it were ruled on, 1 wrong: precision 50.0 %, at least ")
    assert every.endswith(" with 95 % confidence")
    share = next(x / 100 for x in range(1, 100) if audit_pick(2, x / 100) != audit_pick(3, x / 100))
    one = headline(summarise(checks, since, until, audit_share=share))[-1]  # one drawn, one ruled on apart
    assert one.startswith("PASS audit: 1 PASS drawn for it was ruled on, ")
    assert one.endswith(" with 95 % confidence (1 other PASS, not drawn for it, was ruled on)")


def test_days_and_a_first_day_together_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["report", "--home", str(tmp_path), "--days", "1", "--since", "2026-11-01", "--out", str(tmp_path / "r")])
    assert stop.value.code == 2 and "not allowed with argument --days" in capsys.readouterr().err


def test_the_command_reports_a_station_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    repo = VerdictRepository.open(home)
    try:
        repo.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
        repo.add_operator(SUPERVISOR, Role.SUPERVISOR, SUPERVISOR_PIN)
        now = datetime.now(UTC)
        first = make_record(1, decision=Decision.FLAG, p_correct=0.1, created_at=now - timedelta(minutes=3))
        repo.log_verdict(replace(first, reasons=(TURN,)))
        repo.log_verdict(make_record(2, created_at=now - timedelta(minutes=2), recheck_of=first.idempotency_key))
        flagged = repo.cup_of_verdict(
            repo.log_verdict(make_record(3, decision=Decision.FLAG, created_at=now - timedelta(minutes=1)))
        )
        repo.relabel(SUPERVISOR, flagged, LabelKind.CORRECTED, corrected_type="eur_2")
        repo.log_verdict(make_record(4, created_at=now - timedelta(days=30)))  # outside the last 7 days
    finally:
        repo.engine.dispose()
    flags = ["report", "--home", str(home)]
    assert main([*flags, "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 cups (3 checks): 0 passed as they lay, 1 after turning, 1 to a person; auto-pass 50.0 %"
    assert out[1].startswith("flagged cups ruled: 1 held a wrong coin, 0 were all right; 0 wait for a ruling; ")
    assert "the first ruling came a median 1 min after the FLAG" in out[1]  # flagged a minute before the ruling
    assert out[-1] == f"report: {tmp_path / 'rep' / 'report.md'}"
    assert main([*flags, "--days", "60", "--out", str(tmp_path / "rep60")]) == 0
    assert capsys.readouterr().out.startswith("3 cups (4 checks)")

    assert main([*flags, "--station", "nowhere", "--out", str(tmp_path / "x")]) == 2
    assert "no station named 'nowhere'; the database knows: station-1" in capsys.readouterr().err
    assert main([*flags, "--since", "March", "--out", str(tmp_path / "x")]) == 2
    assert "--since must be a date like 2026-11-30, got 'March'" in capsys.readouterr().err
    assert main([*flags, "--since", "2026-03-02", "--until", "2026-03-01", "--out", str(tmp_path / "x")]) == 2
    assert "is after --until" in capsys.readouterr().err
    assert main([*flags, "--days", "0", "--out", str(tmp_path / "x")]) == 2
    assert main(["report", "--home", str(tmp_path / "empty"), "--out", str(tmp_path / "x")]) == 2
    assert "no verdict log in" in capsys.readouterr().err


def test_orders_passed_more_than_once_are_named() -> None:
    checks = [
        check(1, 0, order="A-7"),
        check(2, 1, order="A-7"),  # a second cup passed for the same order
        check(3, 2, order="B-1"),
        check(4, 3, Decision.FLAG, order="B-1"),  # flagged: not shipped
        check(5, 4),  # no order: a type picked from the list
        check(6, 5),
    ]
    s = summarise(checks, T0, T0 + timedelta(days=1))
    assert s.passed_again == (("A-7", 2),)
    assert (
        "orders with more than one cup passed: 1 (A-7 ×2): a second cup shipped for a filled order, or an order of "
        "several cups (cupcheck order NUMBER shows each)"
    ) in headline(s)
    assert not any(line.startswith("orders with") for line in headline(summarise(checks[2:], T0, T0)))
