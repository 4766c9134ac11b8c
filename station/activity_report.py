"""The activity report (``cupcheck report``): what the stations did over a period, for whoever runs the floor.

A cup checked again after its coins were turned, or after a FLAG given for the camera alone once the camera was
back in place, counts once, with its last check's verdict. The report says how
many cups passed (as they lay, or after turning), what the FLAGs were for, what people found in the flagged cups
they ruled on, how right the PASSes drawn for a person to check were (the audit: the only field measure of PASS
precision; other PASSes ruled on are counted apart), per day, station, operator and model. Markdown with two PNG
plots, and every check as CSV.

Plots use matplotlib's object API on the Agg canvas (no pyplot, no GUI), like :mod:`calibration.reports`.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from calibration.risk import clopper_pearson_lower
from db.records import CupActivity, audit_pick, ruling_text
from models.reasons import LABELS, ReasonKind, only_the_camera, only_the_count, reason_kinds
from models.types import Decision
from station.config import DEFAULT_AUDIT_SHARE

AUDIT_DELTA = 0.05
"""One-sided miscoverage of the PASS audit's lower bound (95 % confidence)."""
TYPE_ROWS = 20
"""Coin types listed in the report (the most flagged; the CSV has every check)."""


@dataclass(frozen=True)
class CupOutcome:
    """One physical cup: its first check and the check that settled it (a re-check after turning, or with the
    camera back in place, or itself).

    Attributes:
        first: the cup's first check.
        last: the check that settled it.
        checks: how many times it was checked.
        turned: whether the operator turned coins and checked it again (a re-check that only answers a FLAG given
            for the camera alone is no turn).
    """

    first: CupActivity
    last: CupActivity
    checks: int
    turned: bool = False

    @property
    def passed(self) -> bool:
        """Whether the cup passed in the end."""
        return self.last.decision == Decision.PASS

    @property
    def recounted(self) -> bool:
        """Whether it was flagged only for its coin count: the operator put the count right and checked the cup
        again, logged as a new cup (which is counted in its place)."""
        return not self.passed and only_the_count(self.last.reasons)


def follow_rechecks(checks: Sequence[CupActivity]) -> list[CupOutcome]:
    """Group checks into cups: a re-check joins the cup it answers, when that check is in ``checks`` too."""
    by_id = {c.cup_id: c for c in checks}
    answered_by: dict[int, CupActivity] = {}
    for c in checks:  # oldest first: the newest re-check of a check wins
        if c.recheck_of is not None and c.recheck_of in by_id:
            answered_by[c.recheck_of] = c
    out = []
    for c in checks:
        if c.recheck_of is not None and c.recheck_of in by_id:
            continue
        last, n, seen, turned = c, 1, {c.cup_id}, False
        while last.cup_id in answered_by and answered_by[last.cup_id].cup_id not in seen:
            turned = turned or not only_the_camera(last.reasons)  # answered by turning the coins it named
            last = answered_by[last.cup_id]
            seen.add(last.cup_id)
            n += 1
        out.append(CupOutcome(c, last, n, turned))
    return out


@dataclass(frozen=True)
class Tally:
    """Cups and what became of them.

    Attributes:
        cups: physical cups (a turned cup once).
        checks: photographs judged (a turned cup twice or more).
        passed: cups that passed as they lay.
        passed_after_turning: cups that passed once the operator turned the coins a FLAG named.
        flagged: cups whose last check was a FLAG: a person's turn.
        recounted: checks flagged only for the coin count, whose cups the operator put right and checked again
            (not counted among the cups: the check after is the cup's).
    """

    cups: int
    checks: int
    passed: int
    passed_after_turning: int
    flagged: int
    recounted: int = 0

    @property
    def auto_pass(self) -> float:
        """Share of cups that passed without a person (``nan`` for none)."""
        return (self.passed + self.passed_after_turning) / self.cups if self.cups else math.nan


def tally(cups: Iterable[CupOutcome]) -> Tally:
    """Count ``cups``."""
    items = list(cups)
    passed = sum(1 for c in items if c.passed and not c.turned)
    after = sum(1 for c in items if c.passed and c.turned)
    recounted = sum(1 for c in items if c.recounted)
    n = len(items) - recounted
    return Tally(n, sum(c.checks for c in items), passed, after, n - passed - after, recounted)


@dataclass(frozen=True)
class Review:
    """What people found in the cups the stations handed them.

    Attributes:
        flagged: cups whose last check was a FLAG.
        wrong: flagged cups a person ruled to hold a wrong coin (or a damaged one): FLAGs that caught something.
        clean: flagged cups a person ruled all right: FLAGs that cost a look and found nothing.
        waiting: flagged cups nobody has ruled on yet.
        audited: passed cups drawn for the PASS audit that a person ruled on.
        audited_wrong: audited PASSes that held a wrong coin.
        waits_h: for each flagged cup ruled on, hours from its FLAG to a person's first ruling.
        ruled_undrawn: passed cups a person ruled on that the audit did not draw (a complaint, a close call): no
            random sample, so not in the audit's numbers, but ruled on all the same.
    """

    flagged: int
    wrong: int
    clean: int
    waiting: int
    audited: int
    audited_wrong: int
    waits_h: tuple[float, ...] = ()
    ruled_undrawn: int = 0

    def wait_h(self, q: float) -> float:
        """The ``q`` quantile (0.5: the median) of :attr:`waits_h` in hours (``nan`` for none)."""
        return float(np.quantile(self.waits_h, q)) if self.waits_h else math.nan

    @property
    def pass_precision_lower(self) -> float:
        """95 % lower confidence bound on PASS precision from the audit (0 for no audit)."""
        return clopper_pearson_lower(self.audited - self.audited_wrong, self.audited, AUDIT_DELTA)


def review(cups: Iterable[CupOutcome], audit_share: float) -> Review:
    """Tally people's rulings on ``cups`` (a cup's rulings are those on its last check); the PASS audit counts the
    PASSes the review window drew at ``audit_share`` (:func:`db.records.audit_pick`), a random sample, and no PASS
    a supervisor looked at for another reason (a complaint, a close call)."""
    flagged = wrong = clean = waiting = audited = audited_wrong = undrawn = 0
    waits: list[float] = []
    for c in cups:
        ruled, bad = c.last.ruled, c.last.wrong
        if c.passed:
            drawn = ruled and audit_pick(c.last.cup_id, audit_share)
            audited += drawn
            audited_wrong += drawn and bad
            undrawn += ruled and not drawn
            continue
        if c.recounted:  # the operator's to put right, not a person's to rule on
            continue
        flagged += 1
        if c.last.first_ruled_at is not None:
            waits.append(max(0.0, (c.last.first_ruled_at - c.last.at).total_seconds() / 3600))
        if not ruled:
            waiting += 1
        elif bad:
            wrong += 1
        else:
            clean += 1
    return Review(flagged, wrong, clean, waiting, audited, audited_wrong, tuple(waits), undrawn)


@dataclass(frozen=True)
class Group:
    """One row of a per-station, per-operator or per-day table."""

    name: str
    tally: Tally
    median_check_ms: float
    cups_per_hour: float


@dataclass(frozen=True)
class TypeRow:
    """One coin type's cups: what became of them and what most often stopped them.

    Attributes:
        type_id: the expected type.
        tally: its cups.
        top_reason: the kind of reason most of its flagged cups gave (``None``: none flagged).
        wrong: its flagged cups a person found a wrong coin in.
    """

    type_id: str
    tally: Tally
    top_reason: ReasonKind | None
    wrong: int


@dataclass(frozen=True)
class ActivitySummary:
    """Everything the report shows.

    Attributes:
        since: start of the period (local time).
        until: end of the period, excluded.
        station: the one station reported on (``None``: all).
        total: every cup of the period.
        days: one row per local calendar day with a check.
        stations: one row per station.
        operators: one row per operator.
        types: one row per expected type, the most flagged first (where enrolling more photos, declaring a
            lookalike or turning coins would help most).
        reasons: kinds of reason, with the flagged cups that gave each (a cup once per kind), most first.
        review: what people found.
        models: model versions with the checks each judged, most first.
        passed_again: orders with more than one cup passed in the period, with how many (a second cup shipped
            for a filled order, or an order of several cups), the most first.
    """

    since: datetime
    until: datetime
    station: str | None
    total: Tally
    days: tuple[tuple[date, Tally], ...]
    stations: tuple[Group, ...]
    operators: tuple[Group, ...]
    types: tuple[TypeRow, ...]
    reasons: tuple[tuple[ReasonKind, int], ...]
    review: Review
    models: tuple[tuple[str, int], ...]
    passed_again: tuple[tuple[str, int], ...] = ()


def _local(at: datetime) -> datetime:
    return at.astimezone()


def _groups(cups: Sequence[CupOutcome], key: Callable[[CupOutcome], str]) -> tuple[Group, ...]:
    grouped: dict[str, list[CupOutcome]] = defaultdict(list)
    for c in cups:
        grouped[key(c)].append(c)
    rows = []
    for name in sorted(grouped):
        items = grouped[name]
        times = [c.first.check_ms for c in items if c.first.check_ms is not None]
        hours = {_local(c.first.at).strftime("%Y-%m-%d %H") for c in items}
        counted = tally(items)
        rows.append(
            Group(
                name,
                counted,
                statistics.median(times) if times else math.nan,
                counted.cups / len(hours),  # a cup whose count was put right is one cup, checked twice
            )
        )
    return tuple(rows)


def _types(cups: Sequence[CupOutcome]) -> tuple[TypeRow, ...]:
    grouped: dict[str, list[CupOutcome]] = defaultdict(list)
    for c in cups:
        grouped[c.first.expected_type].append(c)
    rows = []
    for type_id, items in grouped.items():
        flagged = [c for c in items if not c.passed and not c.recounted]
        kinds: Counter[ReasonKind] = Counter()
        for c in flagged:
            kinds.update(reason_kinds(c.last.reasons))
        top = min(kinds, key=lambda k: (-kinds[k], k.value)) if kinds else None
        rows.append(TypeRow(type_id, tally(items), top, sum(1 for c in flagged if c.last.ruled and c.last.wrong)))
    return tuple(sorted(rows, key=lambda r: (-r.tally.flagged, -r.tally.cups, r.type_id)))


def summarise(
    checks: Sequence[CupActivity],
    since: datetime,
    until: datetime,
    station: str | None = None,
    audit_share: float = DEFAULT_AUDIT_SHARE,
) -> ActivitySummary:
    """Summarise the checks of a period (oldest first, as :func:`db.activity.read_activity` gives them);
    ``audit_share``: the share of PASSes drawn for a person to check (the station configuration's)."""
    cups = follow_rechecks(checks)
    by_day: dict[date, list[CupOutcome]] = defaultdict(list)
    for c in cups:
        by_day[_local(c.first.at).date()].append(c)
    reasons: Counter[ReasonKind] = Counter()
    for c in cups:
        if not c.passed and not c.recounted:  # a count put right by the operator went to no person
            reasons.update(reason_kinds(c.last.reasons))
    models = Counter(c.model_version for c in checks)
    passes = Counter(c.last.order for c in cups if c.passed and c.last.order)
    again = tuple(sorted(((o, n) for o, n in passes.items() if n > 1), key=lambda kv: (-kv[1], kv[0])))
    return ActivitySummary(
        since=since,
        until=until,
        station=station,
        total=tally(cups),
        days=tuple((d, tally(by_day[d])) for d in sorted(by_day)),
        stations=_groups(cups, lambda c: c.first.station),
        operators=_groups(cups, lambda c: c.first.operator),
        types=_types(cups),
        reasons=tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0].value))),
        review=review(cups, audit_share),
        models=tuple(models.most_common()),
        passed_again=again,
    )


def plot_days(summary: ActivitySummary, path: Path) -> Path:
    """Cups per day, stacked by what became of them, with the auto-pass share on a second axis."""
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    labels = [d.strftime("%a %d %b") for d, _ in summary.days]
    x = list(range(len(labels)))
    passed = [t.passed for _, t in summary.days]
    after = [t.passed_after_turning for _, t in summary.days]
    flagged = [t.flagged for _, t in summary.days]
    ax.bar(x, passed, color="tab:green", label="passed as they lay")
    ax.bar(x, after, bottom=passed, color="yellowgreen", label="passed after turning")
    ax.bar(
        x, flagged, bottom=[p + a for p, a in zip(passed, after, strict=True)], color="tab:orange", label="to a person"
    )
    ax.set_xticks(x, labels, rotation=30 if len(x) > 7 else 0, ha="right" if len(x) > 7 else "center")
    ax.set_ylabel("cups")
    ax.set_title("cups per day")
    share = ax.twinx()
    share.plot(x, [100 * t.auto_pass for _, t in summary.days], "o-", color="black", label="auto-pass %")
    share.set_ylim(0, 100)
    share.set_ylabel("auto-pass %")
    handles, names = ax.get_legend_handles_labels()
    h2, n2 = share.get_legend_handles_labels()
    ax.legend(handles + h2, names + n2, loc="upper left", fontsize=8)
    return _save(fig, ax, path, "" if x else "no cups in this period")


def plot_reasons(summary: ActivitySummary, path: Path) -> Path:
    """Flagged cups per kind of reason, most frequent on top."""
    fig = Figure(figsize=(10, 0.5 * max(len(summary.reasons), 2) + 1.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    rows = list(reversed(summary.reasons))
    ax.barh([LABELS[k] for k, _ in rows], [n for _, n in rows], color="tab:orange")
    for i, (_, n) in enumerate(rows):
        ax.text(n, i, f" {n}", va="center", fontsize=8)
    ax.set_xlabel("flagged cups (a cup once per kind of reason)")
    ax.set_title("what the FLAGs were for")
    return _save(fig, ax, path, "" if rows else "no flagged cups")


def _save(fig: Figure, ax: Any, path: Path, empty: str) -> Path:
    """Write ``fig`` as ``path`` (with ``empty`` across ``ax`` when there was nothing to draw)."""
    if empty:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(path))
    return path


CSV_FIELDS = (
    "cup_id",
    "checked_at",
    "station",
    "operator",
    "order",
    "expected_type",
    "verdict",
    "p_correct",
    "coins",
    "ordered_coins",
    "recheck_of",
    "reasons",
    "model_version",
    "check_ms",
    "ruling",
    "wrong_coins",
)


def write_csv(checks: Iterable[CupActivity], path: Path) -> Path:
    """Every check, one row each (times in ISO 8601 with their UTC offset; reasons joined by `` | ``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        for c in checks:
            ruling = ruling_text(c.cup_ruling, c.corrected_type) or ("coins ruled" if c.coin_rulings else "")
            writer.writerow(
                (
                    c.cup_id,
                    c.at.isoformat(),
                    c.station,
                    c.operator,
                    c.order or "",
                    c.expected_type,
                    c.decision.value,
                    f"{c.p_correct:.4f}",
                    c.n_coins,
                    "" if c.expected_count is None else c.expected_count,
                    "" if c.recheck_of is None else c.recheck_of,
                    " | ".join(c.reasons),
                    c.model_version,
                    "" if c.check_ms is None else f"{c.check_ms:.0f}",
                    ruling,
                    c.wrong_coins,
                )
            )
    return path


def _pct(x: float) -> str:
    return "—" if math.isnan(x) else f"{100 * x:.1f} %"


def _table(title: str, rows: Sequence[Group], *, pace: bool = True) -> list[str]:
    """A Markdown table of ``rows``; ``pace``: with the median check time and cups per hour."""
    head = f"| {title} | cups | passed | after turning | to a person | auto-pass |"
    rule = "| --- | ---: | ---: | ---: | ---: | ---: |"
    if pace:
        head, rule = head + " median check | cups per hour |", rule + " ---: | ---: |"
    lines = [head, rule]
    for g in rows:
        t = g.tally
        line = f"| {g.name} | {t.cups} | {t.passed} | {t.passed_after_turning} | {t.flagged} | {_pct(t.auto_pass)} |"
        if pace:
            ms = "—" if math.isnan(g.median_check_ms) else f"{g.median_check_ms:.0f} ms"
            line += f" {ms} | {g.cups_per_hour:.0f} |"
        lines.append(line)
    return lines


def _duration(hours: float) -> str:
    """``"14 min"``, ``"2.5 h"`` or ``"3.1 days"``."""
    if hours < 2:
        return f"{hours * 60:.0f} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def headline(summary: ActivitySummary) -> list[str]:
    """The few lines ``cupcheck report`` also prints."""
    t, r = summary.total, summary.review
    lines = [
        f"{t.cups} cups ({t.checks} checks): {t.passed} passed as they lay, {t.passed_after_turning} after turning, "
        f"{t.flagged} to a person; auto-pass {_pct(t.auto_pass)}",
        f"flagged cups ruled: {r.wrong} held a wrong coin, {r.clean} were all right; {r.waiting} wait for a ruling"
        + (
            f"; the first ruling came a median {_duration(r.wait_h(0.5))} after the FLAG, 90 % within "
            f"{_duration(r.wait_h(0.9))}"
            if r.waits_h
            else ""
        ),
    ]
    if t.recounted:
        n = t.recounted
        lines.append(
            f"{n} check{'s' if n != 1 else ''} flagged only for the coin count, put right by the operator and checked "
            "again"
        )
    if summary.passed_again:
        named = ", ".join(f"{o} ×{n}" for o, n in summary.passed_again[:5])
        more = f" and {len(summary.passed_again) - 5} more" if len(summary.passed_again) > 5 else ""
        lines.append(
            f"orders with more than one cup passed: {len(summary.passed_again)} ({named}{more}): a second cup shipped "
            "for a filled order, or an order of several cups (cupcheck order NUMBER shows each)"
        )
    lines.append(_audit_line(r))
    return lines


def _audit_line(r: Review) -> str:
    """The PASS audit's line: what the PASSes drawn for it showed, and the PASSes ruled on for another reason, said
    apart since they are no random sample (a supervisor looks at a PASS after a complaint)."""
    n = r.ruled_undrawn
    ruled = f"{_passes(n)}, not drawn for it, {'was' if n == 1 else 'were'} ruled on"
    if not r.audited:
        return "PASS audit: no PASS drawn for the audit was ruled on" + (f" (but {ruled})" if n else "")
    others = f" ({ruled})" if n else ""
    precision = (r.audited - r.audited_wrong) / r.audited
    return (
        f"PASS audit: {_passes(r.audited, '')} drawn for it {'was' if r.audited == 1 else 'were'} ruled on, "
        f"{r.audited_wrong} wrong: precision {_pct(precision)}, at least {_pct(r.pass_precision_lower)} with 95 % "
        f"confidence{others}"
    )


def _passes(n: int, other: str = "other ") -> str:
    """``"1 other PASS"``, ``"3 other PASSes"``."""
    return f"{n} {other}PASS{'' if n == 1 else 'es'}"


def write_activity_report(folder: Path, summary: ActivitySummary, checks: Sequence[CupActivity]) -> Path:
    """Write ``report.md``, ``days.png``, ``reasons.png`` and ``checks.csv`` into ``folder``; return the report."""
    folder.mkdir(parents=True, exist_ok=True)
    plot_days(summary, folder / "days.png")
    plot_reasons(summary, folder / "reasons.png")
    write_csv(checks, folder / "checks.csv")
    span = f"{summary.since:%Y-%m-%d %H:%M} to {summary.until:%Y-%m-%d %H:%M}"
    where = f"station {summary.station}" if summary.station else "every station"
    lines = [f"# Station activity, {span} ({where})", ""]
    lines += [f"- {line}" for line in headline(summary)]
    lines += ["", "![cups per day](days.png)", "", "![what the FLAGs were for](reasons.png)", ""]
    lines += ["## Per day", ""]
    days = [Group(f"{d:%a %Y-%m-%d}", t, math.nan, math.nan) for d, t in summary.days]
    lines += _table("day", days, pace=False)
    lines += ["", "## Per station", "", *_table("station", summary.stations)]
    lines += ["", "## Per operator", "", *_table("operator", summary.operators)]
    lines += [
        "",
        "Cups per hour: cups over the hours in which the station or person checked at least one (a quiet hour "
        "with one cup counts as an hour). Median check: frame to verdict on the station.",
    ]
    lines += [
        "",
        f"## Coin types, the most flagged first ({min(len(summary.types), TYPE_ROWS)} of {len(summary.types)})",
    ]
    lines += [
        "",
        "| type | cups | auto-pass | to a person | wrong coin found | what stopped it most |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        *[
            f"| {r.type_id} | {r.tally.cups} | {_pct(r.tally.auto_pass)} | {r.tally.flagged} | {r.wrong} "
            f"| {'—' if r.top_reason is None else LABELS[r.top_reason]} |"
            for r in summary.types[:TYPE_ROWS]
        ],
    ]
    lines += [
        "",
        "## What the FLAGs were for",
        "",
        "| reason | flagged cups |",
        "| --- | ---: |",
        *[f"| {LABELS[k]} | {n} |" for k, n in summary.reasons],
        "",
        "## Models",
        "",
        "| model version | checks |",
        "| --- | ---: |",
        *[f"| {v} | {n} |" for v, n in summary.models],
        "",
        "Every check of the period, with its ruling: `checks.csv`.",
        "",
    ]
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
