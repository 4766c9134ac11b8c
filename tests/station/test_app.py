"""The composition root's sign-in (station.app): a station's sign-in cache follows the database as each dialog opens,
on a real SQLite verdict log, with the real dialog shown offscreen."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThreadPool, QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from db.repository import VerdictRepository
from db.signin_cache import CACHE_FILENAME, SignInCache, SignInDirectory, database_identity
from station.app import sign_in_dialog
from station.views.login import LoginDialog


def _cancel_when_shown() -> None:
    """Press Cancel on the sign-in dialog once it is shown (``exec`` runs its own event loop)."""
    shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, LoginDialog) and w.isVisible()]
    if shown:
        shown[0].reject()
    else:
        QTimer.singleShot(10, _cancel_when_shown)


def test_a_sign_in_dialog_brings_the_cache_in_line_with_the_database(qtbot: QtBot, tmp_path: Path) -> None:
    """PINs changed, people deactivated or made operators on another PC while the window ran (nobody of them tried at
    this station since) count at the next outage once a sign-in dialog has opened with the database there."""
    repo = VerdictRepository.open(tmp_path, None)
    try:
        for name, role, pin in (
            ("ana", "supervisor", "1111"),
            ("bo", "operator", "2222"),
            ("cy", "supervisor", "3333"),
        ):
            repo.operators.add(name, role, pin)
        cache = SignInCache(tmp_path / CACHE_FILENAME, database=database_identity(repo.engine))
        directory = SignInDirectory(repo.operators, cache)
        for name, pin in (("ana", "1111"), ("bo", "2222"), ("cy", "3333")):
            assert directory.verify_operator(name, pin) is not None
        repo.operators.set_pin("ana", "9999")
        repo.operators.set_active("bo", False)
        repo.operators.set_role("cy", "operator")
        QTimer.singleShot(0, _cancel_when_shown)
        assert sign_in_dialog(directory, "packing-1: operator sign-in", None, home=tmp_path) is None
        assert QThreadPool.globalInstance().waitForDone(10_000)
        kept = cache.people()
        assert sorted(kept) == ["ana", "cy"] and kept["cy"].role == "operator"
        assert cache.verify("ana", "9999") is not None and cache.verify("ana", "1111") is None
    finally:
        repo.engine.dispose()
