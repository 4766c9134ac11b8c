"""The review window's People dialog: a supervisor adds a person, sets a PIN, changes a role and deactivates someone,
on a real SQLite verdict log; the same rules as ``cupcheck operators`` refuse what would break the site."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pytestqt.qtbot import QtBot

from db.operators import OperatorRoster
from db.records import OperatorInfo
from db.session import make_engine
from station.controllers.catalog import TypeCatalog
from station.controllers.people import PeopleController
from station.review_window import ReviewWindow
from station.views.people import PeopleView
from tests.station.conftest import OPERATOR, SUPERVISOR, SUPERVISOR_PIN, Database, settle


@pytest.fixture
def dialog(qtbot: QtBot, database: Database, catalog: TypeCatalog) -> Iterator[tuple[PeopleView, PeopleController]]:
    supervisor = database.repository.verify_operator(SUPERVISOR, SUPERVISOR_PIN)
    assert isinstance(supervisor, OperatorInfo)
    win = ReviewWindow(
        database.repository, supervisor=supervisor, catalog=catalog, people=database.repository.operators
    )
    qtbot.addWidget(win)
    assert win.view.people_button.isVisibleTo(win)
    made = win.people_dialog()
    assert made is not None
    settle(qtbot, made[1])
    yield made
    win.shutdown()


def answer(qtbot: QtBot, controller: PeopleController, change: Callable[[], object]) -> str:
    """Make ``change`` and wait for the database thread's answer and the table read after it; return the dialog's
    words."""
    with qtbot.waitSignal(controller.answered, timeout=10_000) as said:
        change()
        # on its way: the dialog says so and takes no second change meanwhile
        assert controller.view.message.text() == "Saving…" and not controller.view.add_button.isEnabled()
    text = said.args[0]
    settle(qtbot, controller)
    assert isinstance(text, str) and controller.view.message.text() == text
    return text


def _rows(view: PeopleView) -> list[list[str]]:
    cells = [[view.table.item(r, c) for c in range(3)] for r in range(view.table.rowCount())]
    return [[cell.text() if cell is not None else "" for cell in row] for row in cells]


def test_a_supervisor_manages_people_from_the_review_window(
    qtbot: QtBot,
    dialog: tuple[PeopleView, PeopleController],
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view, controller = dialog
    assert _rows(view) == [[OPERATOR, "operator", "active"], [SUPERVISOR, "supervisor", "active"]]
    assert not view.pin_button.isEnabled()  # nobody selected

    monkeypatch.setattr(view, "ask_person", lambda: ("ana", "operator", "2468", "2468"))
    assert answer(qtbot, controller, controller.add) == "ana was added as operator; they can sign in now."
    assert view.add_button.isEnabled()
    assert controller.selected is not None and controller.selected.name == "ana"
    assert database.repository.verify_operator("ana", "2468") is not None

    monkeypatch.setattr(view, "ask_pin", lambda name: ("1357", "1357"))
    answer(qtbot, controller, controller.new_pin)
    assert database.repository.verify_operator("ana", "1357") is not None
    assert view.role_button.text() == "Make supervisor"
    assert answer(qtbot, controller, controller.toggle_role) == "ana is a supervisor now."
    assert view.role_button.text() == "Make operator"
    answer(qtbot, controller, controller.toggle_active)
    assert view.active_button.text() == "Activate" and database.repository.verify_operator("ana", "1357") is None
    history = [view.history.item(i).text() for i in range(view.history.count())]
    assert [h.split("  ")[1] for h in history] == [
        "added as operator",
        "new PIN",
        "role operator → supervisor",
        "deactivated",
    ]
    assert all(f"by {SUPERVISOR} (review window on " in h for h in history)


def test_what_would_break_the_site_is_refused_with_the_reason(
    qtbot: QtBot,
    dialog: tuple[PeopleView, PeopleController],
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view, controller = dialog
    controller.select(SUPERVISOR)
    assert "the only active supervisor" in answer(qtbot, controller, controller.toggle_active)
    assert "cannot be made an operator" in answer(qtbot, controller, controller.toggle_role)
    assert view.add_button.isEnabled() and view.role_button.isEnabled()  # refused: the buttons are back
    monkeypatch.setattr(view, "ask_person", lambda: (OPERATOR.upper(), "operator", "2468", "2468"))
    assert "names may not differ only in case" in answer(qtbot, controller, controller.add)
    monkeypatch.setattr(view, "ask_person", lambda: ("bo", "operator", "2468", "2469"))
    controller.add()
    assert view.message.text() == "The two PINs differ: nobody was added."
    monkeypatch.setattr(view, "ask_person", lambda: ("bo", "operator", "12", "12"))
    assert "a PIN needs at least 4 characters" in answer(qtbot, controller, controller.add)
    monkeypatch.setattr(view, "ask_person", lambda: None)  # cancelled
    controller.add()
    assert [r[0] for r in _rows(view)] == [OPERATOR, SUPERVISOR]
    assert database.repository.operators.count_active("supervisor") == 1


def test_a_supervisor_deactivated_while_signed_in_changes_nobody(
    qtbot: QtBot,
    dialog: tuple[PeopleView, PeopleController],
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another supervisor takes away this one's right to sign in: the open window may no longer add people, nor
    reactivate its own supervisor."""
    view, controller = dialog
    roster = database.repository.operators
    roster.add("rita", "supervisor", "9753")
    roster.set_active(SUPERVISOR, False, by="rita")
    monkeypatch.setattr(view, "ask_person", lambda: ("mallory", "supervisor", "2468", "2468"))
    said = answer(qtbot, controller, controller.add)
    assert f"{SUPERVISOR!r} is not an active supervisor and may not add people" in said
    assert database.repository.verify_operator("mallory", "2468") is None
    controller.select(SUPERVISOR)
    assert "may not deactivate or reactivate people" in answer(qtbot, controller, controller.toggle_active)
    assert database.repository.verify_operator(SUPERVISOR, SUPERVISOR_PIN) is None
    assert [e.action for e in roster.history(SUPERVISOR)][-1] == "deactivated"


AWAY = "postgresql+psycopg://cupcheck@127.0.0.1:9/cupcheck"
"""Nothing listens on port 9: every connection is refused, as when the database server is down."""


def test_a_database_that_is_away_is_said_and_the_dialog_stays_usable(
    qtbot: QtBot, database: Database, catalog: TypeCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor = database.repository.verify_operator(SUPERVISOR, SUPERVISOR_PIN)
    assert isinstance(supervisor, OperatorInfo)
    engine = make_engine(AWAY)
    win = ReviewWindow(database.repository, supervisor=supervisor, catalog=catalog, people=OperatorRoster(engine))
    qtbot.addWidget(win)
    try:
        made = win.people_dialog()
        assert made is not None
        view, controller = made
        settle(qtbot, controller)
        assert view.message.text().startswith("The database cannot be reached: ")
        monkeypatch.setattr(view, "ask_person", lambda: ("ana", "operator", "2468", "2468"))
        said = answer(qtbot, controller, controller.add)  # refused on the database thread, not the window's
        assert said.startswith("The database cannot be reached: ") and view.add_button.isEnabled()
    finally:
        win.shutdown()
        engine.dispose()
