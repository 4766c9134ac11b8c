"""The cups put aside at a station, and what to do with each once a supervisor has ruled on it.

A FLAG sends its cup to the bench for a person. The review window (often on another PC) rules on it; the operator
window lists the station's cups on the bench with what each ruling means for the cup in hand: ship it, take the
named coins out and check it again, or keep it off this order. :func:`advise` turns a ruling into that sentence;
:class:`BenchController` reads the bench from the verdict log off the GUI thread, every :data:`POLL_S` seconds
and after each verdict is stored, and shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem

from db.records import AsideCup, CoinRuling
from db.schema import LabelKind
from station.worker import BackgroundCall, BackgroundThread

POLL_S = 30.0
"""How often the bench is read again (a ruling made on another PC shows within this)."""
ASIDE_HOURS = 24.0
"""How far back the bench reaches: a shift and the next."""


class BenchState(StrEnum):
    """What the operator does with a cup on the bench."""

    WAITING = "waiting"
    SHIP = "ship"
    FIX = "fix"
    RETURN = "return"


COLOURS: dict[BenchState, str] = {
    BenchState.WAITING: "#aab0b8",
    BenchState.SHIP: "#4cc26a",
    BenchState.FIX: "#f0a020",
    BenchState.RETURN: "#e0524a",
}


@dataclass(frozen=True)
class BenchLine:
    """One cup on the bench as the operator reads it."""

    cup_id: int
    state: BenchState
    text: str


def _wrong(coin: CoinRuling, expected: str) -> str:
    """What a coin ruling says is wrong with the coin (``""``: nothing: confirmed, wrong side, or the right type)."""
    if coin.kind == LabelKind.NOT_A_COIN.value:
        return "not a coin"
    if coin.kind == LabelKind.DAMAGED.value:
        return "damaged"
    if coin.kind == LabelKind.CORRECTED.value and coin.corrected_type not in (None, expected):
        return str(coin.corrected_type)
    return ""


def advise(cup: AsideCup) -> BenchLine:
    """What the operator does with a cup on the bench, given what was ruled on it."""
    name = f"Order {cup.order}" if cup.order else cup.expected_type
    head = f"{name}, {cup.at.astimezone().strftime('%H:%M')}"
    by = f" ({cup.ruled_by})" if cup.ruled_by else ""
    if cup.cup_ruling == LabelKind.CORRECTED.value and cup.corrected_type != cup.expected_type:
        return BenchLine(
            cup.cup_id,
            BenchState.RETURN,
            f"{head}: it holds {cup.corrected_type}, not {cup.expected_type}; keep it off this order{by}",
        )
    wrong = [(c.index, what) for c in cup.coins if (what := _wrong(c, cup.expected_type))]
    if wrong:
        coins = ", ".join(f"coin {index + 1} ({what})" for index, what in wrong)
        return BenchLine(cup.cup_id, BenchState.FIX, f"{head}: take out {coins}, then check the cup again{by}")
    if cup.cup_ruling is not None:  # confirmed, or corrected to the type it should hold
        return BenchLine(cup.cup_id, BenchState.SHIP, f"{head}: every coin is {cup.expected_type}; ship it{by}")
    return BenchLine(cup.cup_id, BenchState.WAITING, f"{head}: waiting for a supervisor")


_ORDER = {BenchState.SHIP: 0, BenchState.FIX: 0, BenchState.RETURN: 0, BenchState.WAITING: 1}


def bench_lines(cups: Sequence[AsideCup]) -> list[BenchLine]:
    """The bench as listed: cups with something to do first (the newest ruling first), then those waiting (the
    newest first)."""
    ruled_at = {c.cup_id: c.ruled_at.timestamp() if c.ruled_at else 0.0 for c in cups}
    lines = [advise(c) for c in cups]  # cups come newest first
    keyed = sorted(enumerate(lines), key=lambda kv: (_ORDER[kv[1].state], -ruled_at[kv[1].cup_id], kv[0]))
    return [line for _, line in keyed]


def bench_title(lines: Sequence[BenchLine]) -> str:
    """``"Put aside: 2 waiting, 1 to act on"``."""
    waiting = sum(line.state is BenchState.WAITING for line in lines)
    act = len(lines) - waiting
    if not lines:
        return "Put aside: none"
    parts = [f"{waiting} waiting"] if waiting else []
    parts += [f"{act} to act on"] if act else []
    return "Put aside: " + ", ".join(parts)


class BenchController(QObject):
    """Reads the station's bench off the GUI thread and lists it.

    Args:
        title: the section's title (counts; says when the database is away).
        listing: the list of cups.
        fetch: reads the bench (``VerdictRepository.set_aside`` for this station and the last
            :data:`ASIDE_HOURS`); runs in a background thread.
        interval_s: how often to read it again (0: only when asked).

    Signals:
        shown(list): the bench was listed again (its :class:`BenchLine` s).
    """

    shown = Signal(list)
    _submit = Signal(object)

    def __init__(
        self,
        title: QLabel,
        listing: QListWidget,
        fetch: Callable[[], Sequence[AsideCup]],
        *,
        interval_s: float = POLL_S,
    ) -> None:
        super().__init__()
        self._title = title
        self._list = listing
        self._fetch = fetch
        self._busy = False
        self._again = False
        self.lines: list[BenchLine] = []
        self._thread = BackgroundThread()
        self._submit.connect(self._thread.worker.call)
        self._thread.worker.finished.connect(self._read)
        self._thread.worker.failed.connect(self._failed)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        if interval_s > 0:
            self._timer.start(int(interval_s * 1000))
        self.refresh()

    @Slot()
    @Slot(object)
    def refresh(self, _why: object = None) -> None:
        """Read the bench again (a read under way is followed by one more)."""
        if self._busy:
            self._again = True
            return
        self._busy = True
        self._submit.emit(BackgroundCall(self, self._fetch))

    def stop(self) -> None:
        """Stop reading and end the thread."""
        self._timer.stop()
        self._thread.stop()

    @Slot(object, object)
    def _read(self, _tag: object, cups: object) -> None:
        assert isinstance(cups, list)
        self.lines = bench_lines(cups)
        self._list.clear()
        for line in self.lines:
            item = QListWidgetItem(line.text)
            item.setForeground(QBrush(QColor(COLOURS[line.state])))
            item.setToolTip(line.text)
            self._list.addItem(item)
        self._title.setText(bench_title(self.lines).upper())
        self._done()
        self.shown.emit(self.lines)

    @Slot(object, object)
    def _failed(self, _tag: object, error: object) -> None:
        self._title.setText("PUT ASIDE: THE DATABASE IS AWAY (AS LAST READ)")
        self._done()

    def _done(self) -> None:
        self._busy = False
        if self._again:
            self._again = False
            self.refresh()
