"""Has this order been checked before? An order scanned again may be a second cup of coins about to be shipped for
an order already filled; the operator window says when the order passed before, where and by whom.

:class:`OrderHistory` reads an order's checks from the verdict log off the GUI thread (a database server away on a
site must not freeze the window), and the verdicts of this station still waiting in its local journal (a PASS made
while the database was away is not in the log yet), and hands back an :class:`OrderAnswer`; :func:`already_passed`
words what the log's checks mean.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import QObject, Signal, Slot

from db.records import OrderCheck, VerdictRecord
from db.spool import UNREACHABLE_ERRORS
from models.types import Decision
from station.worker import BackgroundCall, BackgroundThread

_log = logging.getLogger(__name__)

DATABASE_AWAY = "database away"
"""Why an order's checks could not be read: the database cannot be reached (its verdicts are journalled)."""
LOG_UNREADABLE = "verdict log unreadable"
"""Why an order's checks could not be read: the database answered with an error."""


@dataclass(frozen=True)
class PastPass:
    """A cup of an order that passed: when, where and by whom."""

    at: datetime
    station: str
    operator: str


def _words(passed: PastPass | None, now: datetime | None = None) -> str:
    """``"already passed at 10:32 on packing-2 (olga)"`` (on an earlier day: with its date); ``""`` for ``None``."""
    if passed is None:
        return ""
    at = passed.at.astimezone()
    today = (now or datetime.now(at.tzinfo)).astimezone().date()
    when = f"{at:%H:%M}" if at.date() == today else f"{at:%H:%M} on {at:%Y-%m-%d}"
    return f"already passed at {when} on {passed.station} ({passed.operator})"


def _newest_pass(checks: Sequence[OrderCheck]) -> PastPass | None:
    passes = [PastPass(c.at, c.station, c.operator) for c in checks if c.decision is Decision.PASS]
    return max(passes, key=lambda p: p.at, default=None)


def already_passed(checks: Sequence[OrderCheck], now: datetime | None = None) -> str:
    """``"already passed at 10:32 on packing-2 (olga)"`` for the newest PASS among an order's ``checks`` (on an
    earlier day: with its date); ``""`` when none passed."""
    return _words(_newest_pass(checks), now)


@dataclass(frozen=True)
class OrderAnswer:
    """What is known of an order's earlier cups.

    Attributes:
        order: the order number asked about.
        passed: its newest PASS, in the verdict log or in this station's journal (``None``: none found).
        unread: why the verdict log could not be read (:data:`DATABASE_AWAY`, :data:`LOG_UNREADABLE`); ``""``: it
            was, so a ``passed`` of ``None`` means the order never passed.
    """

    order: str
    passed: PastPass | None = None
    unread: str = ""

    def words(self, now: datetime | None = None) -> str:
        """``"already passed at 10:32 on packing-2 (olga)"``, ``""`` when no PASS was found."""
        return _words(self.passed, now)


def look_up(
    order: str,
    fetch: Callable[[str], Sequence[OrderCheck]],
    journal: Callable[[], Sequence[VerdictRecord]] | None = None,
) -> OrderAnswer:
    """Read ``order``'s checks from the verdict log (``fetch``) and its PASSes still waiting in this station's
    journal (``journal``: every verdict waiting there); a log that cannot be read, or a journal, is said in the
    answer or logged, never raised: the operator is told what could be found."""
    passes: list[PastPass] = []
    if journal is not None:
        try:
            waiting = journal()
        except Exception as err:  # a damaged journal line: the log's answer still counts
            _log.warning("the journalled verdicts cannot be read for order %s: %s", order, err)
            waiting = []
        passes.extend(
            PastPass(r.created_at, r.station, r.operator)
            for r in waiting
            if r.order == order and r.decision is Decision.PASS
        )
    unread = ""
    try:
        logged = _newest_pass(list(fetch(order)))
    except UNREACHABLE_ERRORS as err:
        _log.warning("the checks of order %s cannot be read, the database is away: %s", order, err)
        unread, logged = DATABASE_AWAY, None
    except Exception as err:
        _log.warning("the checks of order %s cannot be read: %s", order, err)
        unread, logged = LOG_UNREADABLE, None
    if logged is not None:
        passes.append(logged)
    return OrderAnswer(order, max(passes, key=lambda p: p.at, default=None), unread)


class OrderHistory(QObject):
    """Reads what is known of an order's earlier cups in a background thread (:func:`look_up`).

    Args:
        fetch: an order's newest checks (``VerdictRepository.order_checks``).
        journal: the verdicts of this station waiting in its local journal for the database
            (``VerdictSpool.records``); ``None``: none are looked at.

    Signals:
        answered(OrderAnswer): what was found, or that the log could not be read.
    """

    answered = Signal(object)
    _submit = Signal(object)

    def __init__(
        self,
        fetch: Callable[[str], Sequence[OrderCheck]],
        journal: Callable[[], Sequence[VerdictRecord]] | None = None,
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self._journal = journal
        self._thread = BackgroundThread()
        self._submit.connect(self._thread.worker.call)
        self._thread.worker.finished.connect(self._read)
        self._thread.worker.failed.connect(self._failed)

    @Slot(str)
    def ask(self, order: str) -> None:
        """Look up ``order`` (answered by :attr:`answered`)."""
        self._submit.emit(BackgroundCall(order, lambda: look_up(order, self._fetch, self._journal)))

    def stop(self) -> None:
        """End the thread."""
        self._thread.stop()

    @Slot(object, object)
    def _read(self, _order: object, answer: object) -> None:
        assert isinstance(answer, OrderAnswer)
        self.answered.emit(answer)

    @Slot(object, object)
    def _failed(self, order: object, error: object) -> None:  # look_up raises nothing it can foresee
        _log.warning("order %s cannot be looked up: %s", order, error)
        self.answered.emit(OrderAnswer(str(order), None, LOG_UNREADABLE))
