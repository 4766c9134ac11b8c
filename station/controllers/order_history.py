"""Has this order been checked before? An order scanned again may be a second cup of coins about to be shipped for
an order already filled; the operator window says when the order passed before, where and by whom.

:class:`OrderHistory` reads an order's checks from the verdict log off the GUI thread (a database server away on a
site must not freeze the window) and hands them back; :func:`already_passed` words what they mean.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from PySide6.QtCore import QObject, Signal, Slot

from db.records import OrderCheck
from models.types import Decision
from station.worker import BackgroundCall, BackgroundThread

_log = logging.getLogger(__name__)


def already_passed(checks: Sequence[OrderCheck], now: datetime | None = None) -> str:
    """``"already passed at 10:32 on packing-2 (olga)"`` for the newest PASS among an order's ``checks`` (on an
    earlier day: with its date); ``""`` when none passed."""
    passed = next((c for c in checks if c.decision is Decision.PASS), None)
    if passed is None:
        return ""
    at = passed.at.astimezone()
    today = (now or datetime.now(at.tzinfo)).astimezone().date()
    when = f"{at:%H:%M}" if at.date() == today else f"{at:%H:%M} on {at:%Y-%m-%d}"
    return f"already passed at {when} on {passed.station} ({passed.operator})"


class OrderHistory(QObject):
    """Reads the checks of an order in a background thread.

    Args:
        fetch: an order's newest checks (``VerdictRepository.order_checks``).

    Signals:
        answered(str, list): the order and its checks (newest first); nothing is said when the log cannot be read.
    """

    answered = Signal(str, list)
    _submit = Signal(object)

    def __init__(self, fetch: Callable[[str], Sequence[OrderCheck]]) -> None:
        super().__init__()
        self._fetch = fetch
        self._thread = BackgroundThread()
        self._submit.connect(self._thread.worker.call)
        self._thread.worker.finished.connect(self._read)
        self._thread.worker.failed.connect(self._failed)

    @Slot(str)
    def ask(self, order: str) -> None:
        """Read the checks of ``order`` (answered by :attr:`answered`)."""
        self._submit.emit(BackgroundCall(order, lambda: list(self._fetch(order))))

    def stop(self) -> None:
        """End the thread."""
        self._thread.stop()

    @Slot(object, object)
    def _read(self, order: object, checks: object) -> None:
        assert isinstance(order, str) and isinstance(checks, list)
        self.answered.emit(order, checks)

    @Slot(object, object)
    def _failed(self, order: object, error: object) -> None:  # the check itself is logged either way
        _log.warning("the checks of order %s cannot be read: %s", order, error)
