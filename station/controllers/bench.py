"""The cups put aside at a station, and what to do with each once a supervisor has ruled on it.

A FLAG sends its cup to the bench for a person. The review window (often on another PC) rules on it; the operator
window lists the station's cups on the bench with what each ruling means for the cup in hand: ship it, take the
named coins out and check it again, or keep it off this order. :func:`advise` turns a ruling into that sentence;
:class:`BenchController` reads the bench from the verdict log off the GUI thread, every :data:`POLL_S` seconds
and after each verdict is stored, and shows it. A cup the operator has dealt with (shipped, fixed, returned) is
cleared from the list by a double click; :class:`ClearedCups` remembers which in the station home.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QIcon
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem

from db.records import AsideCup, CoinRuling
from db.schema import LabelKind
from models.files import write_bytes_atomic
from models.types import UInt8Array
from station.views.widgets import to_pixmap
from station.worker import BackgroundCall, BackgroundThread, decode

_log = logging.getLogger(__name__)

POLL_S = 30.0
"""How often the bench is read again (a ruling made on another PC shows within this)."""
ASIDE_HOURS = 24.0
"""How far back the bench lists ruled cups: a shift and the next."""
WAITING_DAYS = 14.0
"""How far back it lists cups nobody has ruled on yet (so that a cup left waiting does not drop off with age)."""
CLEARED_FILE = "bench-cleared.json"
"""In the station home: the cups the operator cleared from the bench."""
KEEP_CLEARED = 1000
"""How many cleared cups are remembered (the newest; older ones have left the bench's window long since)."""
CUP_ROLE = Qt.ItemDataRole.UserRole + 1
"""A bench item's cup id."""
NEWS_S = 20.0
"""How long the bench's title stands out after a new ruling arrives."""
NEWS_STYLE = "background: #f0a020; color: #101214; padding: 0 4px;"
PHOTO_PX = 40
"""Side of a bench cup's photograph in the list (to tell the cups on the bench apart)."""


def photo_thumbnail(data: bytes, size: int = PHOTO_PX) -> UInt8Array | None:
    """A cup's photograph (JPEG bytes) shrunk to fit ``size`` pixels, ``(h, w, 3)`` uint8 BGR; ``None`` when the
    bytes are not an image."""
    image = decode(data)
    if image is None:
        return None
    h, w = image.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.uint8)


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


class ClearedCups:
    """The cups the operator cleared from the bench, kept in ``path`` (``None``: for this window only).

    A damaged or unreadable file is taken as empty (the cleared cups come back, nothing is lost).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._ids: list[int] = []
        if path is not None and path.is_file():
            try:
                self._ids = [int(i) for i in json.loads(path.read_text(encoding="utf-8"))]
            except (OSError, ValueError, TypeError) as err:
                _log.warning("%s cannot be read (%s); the bench lists every cup again", path, err)

    def __contains__(self, cup_id: object) -> bool:
        return cup_id in self._ids

    def add(self, cup_id: int) -> None:
        """Clear ``cup_id`` (saved at once)."""
        if cup_id in self._ids:
            return
        self._ids = [*self._ids, cup_id][-KEEP_CLEARED:]
        if self.path is not None:
            try:
                write_bytes_atomic(self.path, json.dumps(self._ids).encode())
            except OSError as err:  # the home is full or gone: cleared for this window all the same
                _log.error("%s cannot be written (%s)", self.path, err)


class BenchController(QObject):
    """Reads the station's bench off the GUI thread and lists it.

    Args:
        title: the section's title (counts; says when the database is away).
        listing: the list of cups.
        fetch: reads the bench (``VerdictRepository.set_aside`` for this station and the last
            :data:`ASIDE_HOURS`); runs in a background thread.
        interval_s: how often to read it again (0: only when asked).
        cleared: the cups the operator cleared (double click on a cup with something done to it).
        photo: reads a cup photograph's bytes by its store reference (``VerdictRepository.read_blob``), shown small
            beside the cup, read in the background thread once per cup; ``None``: no pictures.

    A ruling arriving (more cups to act on than at the last reading) makes the title stand out for
    :data:`NEWS_S` seconds, so that the operator looks up from the cup in hand.

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
        cleared: ClearedCups | None = None,
        photo: Callable[[str], bytes] | None = None,
    ) -> None:
        super().__init__()
        self._title = title
        self._list = listing
        self._fetch = fetch
        self.cleared = cleared if cleared is not None else ClearedCups(None)
        self._photo = photo
        self._pictures: dict[int, UInt8Array | None] = {}  # cup id -> its small photograph (GUI thread only)
        listing.setIconSize(QSize(PHOTO_PX, PHOTO_PX))
        listing.itemDoubleClicked.connect(self.clear_item)
        listing.setToolTip("Double-click a cup once you have dealt with it to clear it from the list.")
        self._busy = False
        self._again = False
        self.lines: list[BenchLine] = []
        self._cups: list[AsideCup] = []
        self._thread = BackgroundThread()
        self._submit.connect(self._thread.worker.call)
        self._thread.worker.finished.connect(self._read)
        self._thread.worker.failed.connect(self._failed)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        if interval_s > 0:
            self._timer.start(int(interval_s * 1000))
        self._to_act: set[int] | None = None  # the cups to act on at the last reading (None: not read yet)
        self._news = QTimer(self)
        self._news.setSingleShot(True)
        self._news.timeout.connect(lambda: self._title.setStyleSheet(""))
        self.refresh()

    @property
    def news(self) -> bool:
        """Whether the title stands out for a ruling that just arrived."""
        return self._news.isActive()

    @Slot()
    @Slot(object)
    def refresh(self, _why: object = None) -> None:
        """Read the bench again (a read under way is followed by one more)."""
        if self._busy:
            self._again = True
            return
        self._busy = True
        known = frozenset(self._pictures)
        self._submit.emit(BackgroundCall(self, lambda: self._fetch_with_pictures(known)))

    def _fetch_with_pictures(self, known: frozenset[int]) -> tuple[list[AsideCup], dict[int, UInt8Array | None]]:
        """The bench and the small photographs of the cups not pictured yet (runs in the background thread)."""
        cups = list(self._fetch())
        pictures: dict[int, UInt8Array | None] = {}
        for cup in cups:
            if self._photo is None or cup.cup_id in known or not cup.photo:
                continue
            try:
                pictures[cup.cup_id] = photo_thumbnail(self._photo(cup.photo))
            except OSError:  # the photograph went (pruned, or the share is away): listed without it
                pictures[cup.cup_id] = None
        return cups, pictures

    def stop(self) -> None:
        """Stop reading and end the thread."""
        self._timer.stop()
        self._news.stop()
        self._thread.stop()

    @Slot(object, object)
    def _read(self, _tag: object, answer: object) -> None:
        assert isinstance(answer, tuple)
        cups, pictures = answer
        self._pictures.update(pictures)
        self._cups = cups
        self._show()
        to_act = {line.cup_id for line in self.lines if line.state is not BenchState.WAITING}
        if self._to_act is not None and to_act - self._to_act:  # a ruling came in since the last reading
            self._title.setStyleSheet(NEWS_STYLE)
            self._news.start(int(NEWS_S * 1000))
        self._to_act = to_act
        self._done()
        self.shown.emit(self.lines)

    def _show(self) -> None:
        self.lines = [line for line in bench_lines(self._cups) if line.cup_id not in self.cleared]
        self._list.clear()
        for line in self.lines:
            item = QListWidgetItem(line.text)
            item.setForeground(QBrush(QColor(COLOURS[line.state])))
            item.setData(CUP_ROLE, line.cup_id)
            picture = self._pictures.get(line.cup_id)
            if picture is not None:
                item.setIcon(QIcon(to_pixmap(picture)))
            self._list.addItem(item)
        self._title.setText(bench_title(self.lines).upper())

    @Slot(QListWidgetItem)
    def clear_item(self, item: QListWidgetItem) -> bool:
        """Clear a cup the operator has dealt with from the list; a cup still waiting for a ruling stays. Returns
        whether it was cleared."""
        cup_id = item.data(CUP_ROLE)
        line = next((line for line in self.lines if line.cup_id == cup_id), None)
        if line is None or line.state is BenchState.WAITING:
            return False
        self.cleared.add(line.cup_id)
        self._show()
        return True

    @Slot(object, object)
    def _failed(self, _tag: object, error: object) -> None:
        self._title.setText("PUT ASIDE: THE DATABASE IS AWAY (AS LAST READ)")
        self._done()

    def _done(self) -> None:
        self._busy = False
        if self._again:
            self._again = False
            self.refresh()
