"""The review window's People dialog: a supervisor adds a person, sets a PIN, changes a role and deactivates someone,
on a real SQLite verdict log; the same rules as ``cupcheck operators`` refuse what would break the site."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from db.records import OperatorInfo
from station.app import ReviewWindow
from station.controllers.catalog import TypeCatalog
from station.controllers.people import PeopleController
from station.views.people import PeopleView
from tests.station.conftest import OPERATOR, SUPERVISOR, SUPERVISOR_PIN, Database


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
    yield made
    win.shutdown()


def _rows(view: PeopleView) -> list[list[str]]:
    cells = [[view.table.item(r, c) for c in range(3)] for r in range(view.table.rowCount())]
    return [[cell.text() if cell is not None else "" for cell in row] for row in cells]


def test_a_supervisor_manages_people_from_the_review_window(
    dialog: tuple[PeopleView, PeopleController], database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, controller = dialog
    assert _rows(view) == [[OPERATOR, "operator", "active"], [SUPERVISOR, "supervisor", "active"]]
    assert not view.pin_button.isEnabled()  # nobody selected

    monkeypatch.setattr(view, "ask_person", lambda: ("ana", "operator", "2468", "2468"))
    controller.add()
    assert view.message.text() == "ana was added as operator; they can sign in now."
    assert controller.selected is not None and controller.selected.name == "ana"
    assert database.repository.verify_operator("ana", "2468") is not None

    monkeypatch.setattr(view, "ask_pin", lambda name: ("1357", "1357"))
    controller.new_pin()
    assert database.repository.verify_operator("ana", "1357") is not None
    assert view.role_button.text() == "Make supervisor"
    controller.toggle_role()
    assert view.role_button.text() == "Make operator" and view.message.text() == "ana is a supervisor now."
    controller.toggle_active()
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
    dialog: tuple[PeopleView, PeopleController], database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, controller = dialog
    controller.select(SUPERVISOR)
    controller.toggle_active()
    assert "the only active supervisor" in view.message.text()
    controller.toggle_role()
    assert "cannot be made an operator" in view.message.text()
    monkeypatch.setattr(view, "ask_person", lambda: (OPERATOR.upper(), "operator", "2468", "2468"))
    controller.add()
    assert "names may not differ only in case" in view.message.text()
    monkeypatch.setattr(view, "ask_person", lambda: ("bo", "operator", "2468", "2469"))
    controller.add()
    assert view.message.text() == "The two PINs differ: nobody was added."
    monkeypatch.setattr(view, "ask_person", lambda: ("bo", "operator", "12", "12"))
    controller.add()
    assert "a PIN needs at least 4 characters" in view.message.text()
    monkeypatch.setattr(view, "ask_person", lambda: None)  # cancelled
    controller.add()
    assert [r[0] for r in _rows(view)] == [OPERATOR, SUPERVISOR]
    assert database.repository.operators.count_active("supervisor") == 1
