"""Refused sign-ins kept in the station home, so that a new process goes on where the last one stopped.

``cupcheck review`` asks for a supervisor's sign-in before its window opens, and Cancel ends the process. A count
kept in memory (:class:`~station.controllers.auth.SignInThrottle`) started again with each new process: closing the
dialog and starting the command again after every few wrong PINs side-stepped the doubling lock, and a four-digit
PIN could be found by trying them all at the keyboard. :class:`HomeSignInThrottle` keeps the refusals in a row and
the time the lock ends in ``HOME/sign-in-throttle.json``, read when a dialog is made, rewritten atomically
(temporary file, then :func:`os.replace`) with each refusal, and removed when a sign-in is let through.

The file is best-effort in both directions: one that cannot be read or parsed counts as no refusals (a warning is
logged, naming the file) rather than locking sign-in for good, a lock end further ahead than the longest wait (a
clock set back) is cut to that wait, and one that cannot be written leaves the count in memory for the dialog in
use (a warning is logged).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from models.files import write_bytes_atomic
from station.controllers.auth import MAX_LOCK_S, SignInThrottle

THROTTLE_FILENAME = "sign-in-throttle.json"
"""In the station home: the refused sign-ins in a row and when the lock ends."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThrottleState:
    """What the file holds: refused sign-ins in a row, and when the lock they earned ends (``None``: no lock)."""

    failures: int = 0
    locked_until: datetime | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def read_state(path: Path) -> ThrottleState:
    """The refusals kept in ``path``; none when the file is absent, and none (with a warning) when it cannot be read
    or does not hold a count and a time."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        failures = data["failures"]
        until = data["locked_until"]
        if not isinstance(failures, int) or isinstance(failures, bool) or failures < 0:
            raise ValueError(f"failures is {failures!r}, not a count")
        locked_until = None if until is None else datetime.fromisoformat(until)
        if locked_until is not None and locked_until.tzinfo is None:
            raise ValueError(f"locked_until {until!r} has no time zone")
    except FileNotFoundError:
        return ThrottleState()
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        _log.warning(
            "the sign-in lock file %s could not be read (%s: %s); counting refused sign-ins from none (delete the "
            "file if this warning stays)",
            path,
            err.__class__.__name__,
            err,
        )
        return ThrottleState()
    return ThrottleState(failures=failures, locked_until=locked_until)


def write_state(path: Path, state: ThrottleState) -> None:
    """Keep ``state`` in ``path`` atomically (temporary file in the same folder, then :func:`os.replace`)."""
    until = None if state.locked_until is None else state.locked_until.isoformat()
    data = json.dumps({"failures": state.failures, "locked_until": until}, indent=1) + "\n"
    write_bytes_atomic(path, data.encode("utf-8"))


class HomeSignInThrottle(SignInThrottle):
    """A :class:`~station.controllers.auth.SignInThrottle` whose count and lock outlive the process: kept in
    ``home``'s :data:`THROTTLE_FILENAME` (read here, so make one as each dialog is made).

    Args:
        home: the station home.
        clock: the time now, timezone-aware (tests pass their own).
    """

    def __init__(self, home: Path, *, clock: Callable[[], datetime] = _utc_now) -> None:
        super().__init__()
        self.path = Path(home) / THROTTLE_FILENAME
        self._clock = clock
        state = read_state(self.path)
        self.failures = state.failures
        self._locked_until = state.locked_until
        latest = clock() + timedelta(seconds=MAX_LOCK_S)
        if self._locked_until is not None and self._locked_until > latest:
            self._locked_until = latest  # a clock set back, or a file written by hand: never more than the longest

    def wait_s(self) -> float:
        """Seconds until the next attempt is checked (0: now), whichever process earned the lock."""
        if self._locked_until is None:
            return 0.0
        return max(0.0, (self._locked_until - self._clock()).total_seconds())

    def refused(self) -> int:
        """Count a refusal (on top of any another dialog of this home counted meanwhile) and keep it in the file;
        the whole seconds the next attempt must wait (0: none)."""
        self.failures = max(self.failures, read_state(self.path).failures)
        wait_s = super().refused()
        if wait_s:
            self._locked_until = self._clock() + timedelta(seconds=wait_s)
        self._keep(ThrottleState(self.failures, self._locked_until))
        return wait_s

    def admitted(self) -> None:
        """A sign-in was let through: the count starts again, and the file goes."""
        super().admitted()
        self._locked_until = None
        try:
            self.path.unlink(missing_ok=True)
        except OSError as err:
            _log.warning(
                "the sign-in lock file %s could not be removed (%s); writing a clear count instead", self.path, err
            )
            self._keep(ThrottleState())

    def _keep(self, state: ThrottleState) -> None:
        try:
            write_state(self.path, state)
        except OSError as err:
            _log.warning(
                "the sign-in lock file %s could not be written (%s); the refusals count only while this dialog is open",
                self.path,
                err,
            )
