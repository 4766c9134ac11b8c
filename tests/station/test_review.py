"""The supervisor window: PIN and role checks, the review queue, one-key rulings that leave audit rows."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox
from pytestqt.qtbot import QtBot

from calibration.risk import ThresholdChoice
from db.records import OperatorInfo, StoredCoin
from db.repository import WITHDRAWN, VerdictRepository
from db.schema import Role
from db.session import make_engine
from models.bundle import Bundle, Preprocess
from models.embedder import Embedder
from models.enroll import CATALOG_FILE, load_catalog
from models.gallery import Gallery
from models.registry import SuspectLabels
from models.synth.mint import generate_mint
from models.types import Decision, Frame, Side
from station.camera import list_images
from station.controllers.auth import FREE_ATTEMPTS, LoginController, SignInThrottle, sign_in
from station.controllers.auth import SUPERVISOR as SUPERVISOR_ROLE
from station.controllers.catalog import TypeCatalog
from station.controllers.enrol import Enrolment, enrol_folder
from station.controllers.model_info import describe_bundle, describe_model
from station.controllers.review import BEFORE_TEXT
from station.demo import write_mint_catalog
from station.review_window import ReviewWindow
from station.views.login import LoginDialog
from station.worker import CheckRequest, CheckResult, Recheck, make_record
from tests.station.conftest import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN, Database, settle
from tests.station.nearest_type_pipeline import NearestTypePipeline, tiny_embedder
from tests.station.sign_in_steps import refused_pin, reopened_locked, supervisor_sign_in

InForceLines = tuple[list[str], SuspectLabels | None]


@pytest.fixture
def logged(database: Database, pipeline: NearestTypePipeline, replay_dir: Path, catalog: TypeCatalog) -> dict[str, int]:
    """The two replayed cups judged by the pipeline and logged; file stem → verdict id."""
    ids = {}
    for path in list_images(replay_dir):
        image = np.asarray(cv2.imread(str(path)), np.uint8)
        frame, expected = Frame(image, source=str(path)), catalog.types[0].type_id
        request = CheckRequest(frame, expected, "A-9", OPERATOR, "bench-1", expected_count=4)  # each cup: 4 coins
        result = CheckResult(request, pipeline.run(frame, expected, expected_count=4), 0.0)
        ids[path.stem] = database.repository.log_verdict(make_record(result))
    return ids


@pytest.fixture
def supervisor(database: Database) -> OperatorInfo:
    signed = sign_in(database.repository, SUPERVISOR, SUPERVISOR_PIN, role=SUPERVISOR_ROLE)
    assert signed.operator is not None
    return signed.operator


@pytest.fixture
def review(
    qtbot: QtBot, database: Database, logged: dict[str, int], supervisor: OperatorInfo, catalog: TypeCatalog
) -> Iterator[ReviewWindow]:
    # every PASS drawn for a person to check: the tests rule on the passed cup too (a sure PASS is no close call)
    win = ReviewWindow(database.repository, supervisor=supervisor, catalog=catalog, audit_share=1.0)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    settle(qtbot, win.controller)
    yield win
    win.shutdown()


@pytest.mark.parametrize(
    ("name", "pin", "allowed", "says"),
    [
        (SUPERVISOR, SUPERVISOR_PIN, True, "Signed in as sam"),
        (OPERATOR, OPERATOR_PIN, False, "only a supervisor may review"),
        (SUPERVISOR, "000000", False, "not recognised"),
        ("nobody", "1234", False, "not recognised"),
        (SUPERVISOR, "", False, "Enter your name and PIN"),
    ],
)
def test_supervisor_role_is_required(database: Database, name: str, pin: str, allowed: bool, says: str) -> None:
    result = sign_in(database.repository, name, pin, role=SUPERVISOR_ROLE)
    assert result.allowed is allowed
    assert says in result.message


def test_login_dialog_refuses_an_operator_pin_then_admits_the_supervisor(qtbot: QtBot, database: Database) -> None:
    dialog = LoginDialog("Supervisor sign-in")
    qtbot.addWidget(dialog)
    login = LoginController(dialog, database.repository, throttle=SignInThrottle(), role=SUPERVISOR_ROLE)
    dialog.show()
    qtbot.keyClicks(dialog.name_edit, OPERATOR)
    qtbot.keyClicks(dialog.pin_edit, OPERATOR_PIN)
    with qtbot.waitSignal(login.refused) as refused:
        dialog.buttons.accepted.emit()
    assert "only a supervisor" in refused.args[0] and "only a supervisor" in dialog.message.text()
    assert dialog.result() != QDialog.DialogCode.Accepted and dialog.pin_edit.text() == ""
    assert login.operator is None

    dialog.name_edit.setText(SUPERVISOR)
    qtbot.keyClicks(dialog.pin_edit, SUPERVISOR_PIN)
    with qtbot.waitSignal(dialog.accepted):
        dialog.buttons.accepted.emit()
    assert login.operator is not None and login.operator.role == SUPERVISOR_ROLE


class HeldDirectory:
    """The verdict log's PIN check, held until :attr:`release` is set (a site database slow to answer), or raising
    ``error``."""

    def __init__(self, repository: VerdictRepository, error: Exception | None = None) -> None:
        self.repository = repository
        self.error = error
        self.release = threading.Event()
        self.calls = 0

    def verify_operator(self, name: str, pin: str) -> OperatorInfo | None:
        self.calls += 1
        assert self.release.wait(timeout=20), "the test never released the check"
        if self.error is not None:
            raise self.error
        return self.repository.verify_operator(name, pin)


def test_the_pin_is_checked_off_the_window_thread_and_the_dialog_says_so(qtbot: QtBot, database: Database) -> None:
    dialog = LoginDialog("Supervisor sign-in")
    qtbot.addWidget(dialog)
    held = HeldDirectory(database.repository)
    login = LoginController(dialog, held, throttle=SignInThrottle(), role=SUPERVISOR_ROLE)
    dialog.show()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    dialog.name_edit.setText(SUPERVISOR)
    dialog.pin_edit.setText(SUPERVISOR_PIN)
    dialog.buttons.accepted.emit()
    assert login.checking and dialog.message.text() == "Checking…" and not ok.isEnabled()
    dialog.buttons.accepted.emit()  # pressed again while it checks: no second check
    qtbot.wait(100)  # the window's event loop runs meanwhile
    assert login.checking and held.calls == 1 and dialog.result() != QDialog.DialogCode.Accepted
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        held.release.set()
    assert login.operator is not None and login.operator.name == SUPERVISOR and not login.checking

    broken = LoginDialog("Supervisor sign-in")
    qtbot.addWidget(broken)
    failing = HeldDirectory(database.repository, error=ValueError("the cache file is damaged"))
    failing.release.set()
    refusing = LoginController(broken, failing, throttle=SignInThrottle(), role=SUPERVISOR_ROLE)
    broken.name_edit.setText(SUPERVISOR)
    broken.pin_edit.setText(SUPERVISOR_PIN)
    with qtbot.waitSignal(refusing.refused, timeout=10_000) as refused:
        broken.buttons.accepted.emit()
    assert refused.args[0] == "The PIN could not be checked: ValueError: the cache file is damaged"
    assert broken.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled() and refusing.operator is None


def test_review_window_refuses_an_operator(database: Database, catalog: TypeCatalog) -> None:
    operator = database.repository.verify_operator(OPERATOR, OPERATOR_PIN)
    assert operator is not None
    with pytest.raises(PermissionError, match="not an active supervisor"):
        ReviewWindow(database.repository, supervisor=operator, catalog=catalog)


def select_cup(qtbot: QtBot, win: ReviewWindow, verdict_id: int) -> int:
    """Select the queue entry of a verdict and wait for its evidence to be drawn; return its cup id."""
    settle(qtbot, win.controller)
    item = next(it for it in win.controller.items.values() if it.verdict_id == verdict_id)
    for row in range(win.view.queue.count()):
        if win.view.queue.item(row).data(Qt.ItemDataRole.UserRole) == item.cup_id:
            win.view.queue.setCurrentRow(row)
    assert win.controller.current is not None and win.controller.current.cup_id == item.cup_id
    settle(qtbot, win.controller)
    return item.cup_id


def test_queue_shows_cups_with_photo_and_coin_matches(
    qtbot: QtBot, review: ReviewWindow, logged: dict[str, int]
) -> None:
    assert review.view.queue.count() == len(logged)
    select_cup(qtbot, review, logged["01_mixed"])
    assert review.view.photo.has_image()
    assert "Why: coin 2 looks like" in review.view.summary.text()  # the station's reasons, as the operator read them
    assert f" · order A-9 (4 coins) · {OPERATOR} at bench-1, " in review.view.summary.text()  # who to ask
    thumbs = review.view.thumbs.thumbnails()
    assert len(thumbs) == 4
    assert [t.marked for t in thumbs] == [False, True, False, False]
    assert "best: t0001" in thumbs[1].caption.text()
    assert review.view.coin_spin.maximum() == 4


def test_one_key_rulings_write_audit_rows(
    qtbot: QtBot, review: ReviewWindow, database: Database, logged: dict[str, int], catalog: TypeCatalog
) -> None:
    cup_id = select_cup(qtbot, review, logged["01_mixed"])

    review.view.coin_spin.setValue(2)
    qtbot.keyClicks(review.view.note_edit, "a washer")
    review.view.note_edit.clearFocus()
    with qtbot.waitSignal(review.controller.relabelled):
        qtbot.keyClick(review.view.queue, Qt.Key.Key_N)

    settle(qtbot, review.controller)
    assert review.controller.current is not None and review.controller.current.cup_id == cup_id  # a coin: it stays
    assert review.view.status.currentMessage().startswith(f"Cup {cup_id}, coin 2: not_a_coin (saved with an audit")
    assert "rule on the whole cup too (C or T)" in review.view.status.currentMessage()  # else the retrain skips it

    wrong = catalog.types[1]
    review.view.type_combo.setCurrentIndex(review.view.type_combo.findData(wrong.type_id))
    with qtbot.waitSignal(review.controller.relabelled):
        qtbot.keyClick(review.view.queue, Qt.Key.Key_T)

    settle(qtbot, review.controller)
    # a ruling on the whole cup: on to the next cup nobody has ruled on
    pure = database.repository.cup_of_verdict(logged["00_pure"])
    assert review.controller.current is not None and review.controller.current.cup_id == pure
    assert review.controller.shown_cup == pure and review.view.photo.has_image()
    said = review.view.status.currentMessage()
    assert said.startswith(f"Cup {cup_id}, cup: corrected → {wrong.type_id} (saved with an audit entry) · next: cup")
    assert select_cup(qtbot, review, logged["01_mixed"]) == cup_id  # back to it
    assert review.controller.current is not None and review.controller.current.labelled
    trail = database.repository.audit_trail(cup_id)
    assert [(a.operator, a.new_value, a.note) for a in trail] == [
        (SUPERVISOR, "not_a_coin", "a washer"),
        (SUPERVISOR, f"corrected:{wrong.type_id}", ""),
    ]
    assert trail[0].target.startswith("coin:") and trail[1].target == f"cup:{cup_id}"
    assert review.view.audit.count() == 2
    assert "not_a_coin — a washer" in review.view.audit.item(0).text()
    assert f"{SUPERVISOR}: coin 2 ∅ → not_a_coin" in review.view.audit.item(0).text()  # as the picture numbers it
    assert f"{SUPERVISOR}: cup ∅ → corrected:{wrong.type_id}" in review.view.audit.item(1).text()

    with qtbot.waitSignal(review.controller.relabelled):
        qtbot.keyClick(review.view.queue, Qt.Key.Key_C)  # change of mind: the cup is fine after all
    last = database.repository.audit_trail(cup_id)[-1]
    assert (last.old_value, last.new_value) == (f"corrected:{wrong.type_id}", "confirmed")
    labelled = {it.cup_id: it.labelled for it in database.repository.review_queue()}
    assert labelled[cup_id] is True


def test_ruling_without_a_type_is_refused(qtbot: QtBot, review: ReviewWindow, logged: dict[str, int]) -> None:
    select_cup(qtbot, review, logged["00_pure"])
    review.view.type_combo.setCurrentIndex(-1)
    review.view.type_combo.setEditText("")
    with qtbot.waitSignal(review.controller.refused) as refused:
        qtbot.keyClick(review.view.queue, Qt.Key.Key_T)
    assert "true type" in refused.args[0]
    review.view.type_combo.setEditText("t0001t")  # a letter too many: no enrolled type
    with qtbot.waitSignal(review.controller.refused) as refused:
        qtbot.keyClick(review.view.queue, Qt.Key.Key_T)
    assert refused.args[0] == "t0001t is not an enrolled type: choose the cup's true type from the type box."


def test_the_queue_has_the_focus_so_one_key_rules_and_enter_in_the_type_box_corrects(
    qtbot: QtBot, review: ReviewWindow, logged: dict[str, int], catalog: TypeCatalog
) -> None:
    review.show()
    review.activateWindow()
    qtbot.waitUntil(lambda: review.view.queue.hasFocus())  # not the find box: C would be typed into it
    select_cup(qtbot, review, logged["00_pure"])
    box = review.view.type_combo
    box.setFocus()
    box.setEditText(catalog.types[1].type_id)
    with qtbot.waitSignal(review.controller.relabelled):
        qtbot.keyClick(box, Qt.Key.Key_Return)
    assert review.view.queue.hasFocus()  # the next key rules again


def test_ruling_the_database_refuses_is_reported(qtbot: QtBot, review: ReviewWindow, logged: dict[str, int]) -> None:
    cup_id = select_cup(qtbot, review, logged["00_pure"])
    review.view.coin_spin.setMaximum(9)
    review.view.coin_spin.setValue(9)  # the cup has 4 coins
    with qtbot.waitSignal(review.controller.refused, timeout=10_000) as refused:
        qtbot.keyClick(review.view.queue, Qt.Key.Key_D)
    assert f"Cup {cup_id}, coin 9: not saved" in refused.args[0] and "no coin 8" in refused.args[0]
    settle(qtbot, review.controller)
    assert review.view.audit.count() == 0


def test_every_coin_ruling_is_offered_and_keyed_from_the_coin_box(
    qtbot: QtBot, review: ReviewWindow, database: Database, logged: dict[str, int], catalog: TypeCatalog
) -> None:
    """A coin's number typed in its box, then the ruling's letter, as a person types them: the box does not swallow
    the letter. A coin ruled 'not a coin' by mistake is put right with R, which withdraws that ruling; W and Y rule
    its side and its type."""
    cup_id = select_cup(qtbot, review, logged["01_mixed"])
    spin = review.view.coin_spin
    other = catalog.types[1].type_id
    review.view.type_combo.setCurrentIndex(review.view.type_combo.findData(other))

    def rule(coin: str, key: Qt.Key) -> None:
        spin.setFocus()
        spin.selectAll()
        qtbot.keyClicks(spin, coin)
        qtbot.waitUntil(lambda: not review.keys.holding)  # a digit typed alone is the box's, after a moment
        assert spin.value() == int(coin)
        with qtbot.waitSignal(review.controller.relabelled, timeout=10_000):
            qtbot.keyClick(spin, key)
        settle(qtbot, review.controller)

    rule("2", Qt.Key.Key_N)
    rule("2", Qt.Key.Key_R)
    assert review.view.audit.item(1).text().endswith(f"{SUPERVISOR}: coin 2 not_a_coin → ∅ (withdrawn)")
    rule("3", Qt.Key.Key_W)
    rule("4", Qt.Key.Key_Y)
    trail = database.repository.audit_trail(cup_id)
    assert [(a.old_value, a.new_value) for a in trail] == [
        (None, "not_a_coin"),
        ("not_a_coin", WITHDRAWN),
        (None, "wrong_side"),
        (None, f"corrected:{other}"),
    ]
    coins = {c.coin_id: c.index for c in database.repository.cup_coins(cup_id)}
    assert [coins[a.coin_id] for a in trail if a.coin_id is not None] == [1, 1, 2, 3]
    assert set(database.repository.rulings_in_force(cup_id)) == {2, 3}  # coin 2 has no ruling of its own again


def test_r_on_a_coin_with_no_ruling_of_its_own_is_refused(
    qtbot: QtBot, review: ReviewWindow, database: Database, logged: dict[str, int]
) -> None:
    cup_id = select_cup(qtbot, review, logged["01_mixed"])
    review.view.coin_spin.setValue(3)
    with qtbot.waitSignal(review.controller.refused) as refused:
        qtbot.keyClick(review.view.queue, Qt.Key.Key_R)
    assert refused.args[0].startswith(f"Cup {cup_id}, coin 3: no ruling of its own to withdraw")
    assert database.repository.audit_trail(cup_id) == []


def test_a_ruling_made_meanwhile_in_another_window_is_not_replaced_unseen(
    qtbot: QtBot, database: Database, logged: dict[str, int], supervisor: OperatorInfo, catalog: TypeCatalog
) -> None:
    """Sam and ana look at the same mixed cup; ana corrects it first. Sam's C, pressed on the cup as his window
    still shows it (unruled), would ship it as confirmed: it is refused with who ruled what, and his window reads
    the cup again, so that a second C replaces ana's ruling knowingly."""
    repo = database.repository
    repo.add_operator("ana", Role.SUPERVISOR, "1357")
    ana = sign_in(repo, "ana", "1357", role=SUPERVISOR_ROLE).operator
    assert ana is not None
    windows = [ReviewWindow(repo, supervisor=who, catalog=catalog, audit_share=1.0) for who in (supervisor, ana)]
    try:
        for w in windows:
            qtbot.addWidget(w)
            w.show()
        sams, anas = windows
        cup = select_cup(qtbot, sams, logged["01_mixed"])
        select_cup(qtbot, anas, logged["01_mixed"])
        other = catalog.types[1].type_id
        anas.view.type_combo.setCurrentIndex(anas.view.type_combo.findData(other))
        with qtbot.waitSignal(anas.controller.relabelled):
            anas.controller.correct()
        assert sams.controller.current is not None and not sams.controller.current.labelled
        assert sams.view.audit.count() == 0

        with qtbot.waitSignal(sams.controller.refused, timeout=10_000) as refused:
            qtbot.keyClick(sams.view.queue, Qt.Key.Key_C)
        said = f"Cup {cup}, cup: not saved, ruled meanwhile by ana: corrected:{other} — rule again to replace it"
        assert refused.args[0] == said
        assert [(a.operator, a.new_value) for a in repo.audit_trail(cup)] == [("ana", f"corrected:{other}")]
        settle(qtbot, sams.controller)
        assert sams.controller.current is not None and sams.controller.current.cup_id == cup  # the cup stays
        assert sams.controller.current.labelled and sams.view.audit.count() == 1
        assert f"ana: cup ∅ → corrected:{other}" in sams.view.audit.item(0).text()
        assert sams.view.status.currentMessage().startswith(said)

        with qtbot.waitSignal(sams.controller.relabelled):
            qtbot.keyClick(sams.view.queue, Qt.Key.Key_C)  # having seen ana's ruling
        assert [(a.operator, a.old_value, a.new_value) for a in repo.audit_trail(cup)] == [
            ("ana", None, f"corrected:{other}"),
            (SUPERVISOR, f"corrected:{other}", "confirmed"),
        ]
    finally:
        for w in windows:
            w.shutdown()


def test_an_order_number_scanned_into_the_window_is_found_not_ruled(
    qtbot: QtBot, review: ReviewWindow, database: Database, logged: dict[str, int]
) -> None:
    """A barcode scanner types an order number and Enter, a few milliseconds a key, into whatever has the focus:
    the queue, where C and D alone rule, or the coin box. The keys go to the find box, which lists the order's cups,
    and the focus comes back to the queue, where a letter pressed alone rules on the cup shown."""
    repo = database.repository
    qtbot.waitUntil(lambda: review.view.queue.hasFocus())
    now = [0.0]

    def clock() -> float:  # a scanner's 2 ms a key, however busy the machine running this
        now[0] += 0.002
        return now[0]

    review.keys.clock = clock

    def scan(code: str) -> None:
        now[0] += 1.0  # a second's pause before each scan, as a person reaches for the next label
        for char in code:  # each key to the widget that has the focus as it comes
            focused = QApplication.focusWidget()
            assert focused is not None
            qtbot.keyClicks(focused, char)
        focused = QApplication.focusWidget()
        assert focused is not None
        qtbot.keyClick(focused, Qt.Key.Key_Return)
        settle(qtbot, review.controller)

    scan("CD-1001")
    assert repo.audit_trail() == []
    assert review.controller.order == "CD-1001" and review.view.order_find.text() == "CD-1001"
    assert review.view.status.currentMessage().startswith("No cup of order CD-1001 was checked")
    assert review.view.queue.hasFocus()

    review.view.coin_spin.setFocus()
    scan("A-9")
    mixed, pure = repo.cup_of_verdict(logged["01_mixed"]), repo.cup_of_verdict(logged["00_pure"])
    assert review.controller.order == "A-9" and review.view.order_find.text() == "A-9"  # the last scan replaced
    assert set(review.controller.items) == {mixed, pure} and repo.audit_trail() == []
    assert review.view.queue.hasFocus() and review.view.coin_spin.value() == 1

    shown = review.controller.current
    assert shown is not None
    now[0] += 1.0  # a person's key, well after the scan
    with qtbot.waitSignal(review.controller.relabelled):
        qtbot.keyClick(review.view.queue, Qt.Key.Key_C)
    assert [(a.cup_id, a.new_value) for a in repo.audit_trail()] == [(shown.cup_id, "confirmed")]


def test_enrolment_from_the_window_adds_types(
    qtbot: QtBot, database: Database, supervisor: OperatorInfo, tmp_path: Path
) -> None:
    folder = write_mint_catalog(generate_mint(3, 9), tmp_path / "catalogue", size=96)
    (tmp_path / "empty").mkdir()
    gallery_dir = tmp_path / "home" / "gallery"
    enrolment = Enrolment(gallery_dir, tiny_embedder)
    win = ReviewWindow(
        database.repository, supervisor=supervisor, catalog=TypeCatalog([], lambda t, s: None), enrolment=enrolment
    )
    qtbot.addWidget(win)
    win.show()
    try:
        assert win.view.type_combo.count() == 0 and win.view.enrol_button.isEnabled()
        with qtbot.waitSignal(win.controller.enrolled, timeout=60_000) as done:
            assert win.controller.enrol(folder)
        result = done.args[0]
        assert sorted(result.enrolled) == [t.id for t in generate_mint(3, 9).types] and result.n_types == 3
        # the catalogue names the family's shared obverse, and the supervisor is told
        families = [t.family for t in generate_mint(3, 9).types]
        assert len(result.shared_designs) == sum(families.count(f) > 1 for f in set(families)) > 0
        assert "shared by several types" in result.summary()
        assert win.view.type_combo.count() == 3 and "3 types" in win.view.gallery_label.text()
        assert Gallery.exists(gallery_dir)

        other = write_mint_catalog(generate_mint(5, 11), tmp_path / "other-pc", size=96)
        enrol_folder(other, enrolment)  # enrolled on another PC of the site, into the same shared gallery
        assert win.view.type_combo.count() == 3
        qtbot.keyClick(win.view.queue, Qt.Key.Key_F5)  # F5 reloads the queue and the types
        settle(qtbot, win.controller)
        assert win.view.type_combo.count() == 5 and "5 types" in win.view.gallery_label.text()

        with qtbot.waitSignal(win.controller.refused, timeout=60_000) as refused:
            win.controller.enrol(tmp_path / "empty")
        assert "Enrolment from" in refused.args[0] and "nothing enrolled" in refused.args[0]
        assert win.view.enrol_button.isEnabled()
    finally:
        win.shutdown()


def test_more_photos_enrolled_from_the_window_keep_what_the_catalogue_declared(tmp_path: Path) -> None:
    """A folder of more photos without coin.toml: the type keeps its name, diameter and shared design, as with
    ``cupcheck enroll`` (else its cups could pass on a design it shares)."""
    mint = generate_mint(3, 9)
    enrolment = Enrolment(tmp_path / "home" / "gallery", tiny_embedder)
    enrol_folder(write_mint_catalog(mint, tmp_path / "catalogue", size=96), enrolment)
    before = load_catalog(enrolment.gallery_dir / CATALOG_FILE)
    coin = mint.types[0]
    again = write_mint_catalog(mint, tmp_path / "again", size=96, only=[0])
    (again / coin.id / "coin.toml").unlink()
    enrol_folder(again, enrolment)
    after = load_catalog(enrolment.gallery_dir / CATALOG_FILE)
    assert after[coin.id] == before[coin.id] and after[coin.id].name == coin.name


def test_a_supervisor_deactivated_while_signed_in_enrols_nothing(
    qtbot: QtBot, database: Database, supervisor: OperatorInfo, tmp_path: Path
) -> None:
    folder = write_mint_catalog(generate_mint(3, 9), tmp_path / "catalogue", size=96)
    gallery_dir = tmp_path / "home" / "gallery"
    win = ReviewWindow(
        database.repository,
        supervisor=supervisor,
        catalog=TypeCatalog([], lambda t, s: None),
        enrolment=Enrolment(gallery_dir, tiny_embedder),
    )
    qtbot.addWidget(win)
    try:
        database.repository.operators.add("rita", "supervisor", "9753")
        database.repository.operators.set_active(SUPERVISOR, False, by="rita")
        with qtbot.waitSignal(win.controller.refused, timeout=60_000) as refused:
            assert win.controller.enrol(folder)
        assert "is not an active supervisor and may not enrol types" in refused.args[0]
        assert not Gallery.exists(gallery_dir)
    finally:
        win.shutdown()


def test_an_enrolment_stands_when_its_gallery_cannot_be_read_back(
    qtbot: QtBot, database: Database, supervisor: OperatorInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_mint_catalog(generate_mint(3, 9), tmp_path / "catalogue", size=96)
    enrolment = Enrolment(tmp_path / "home" / "gallery", tiny_embedder)
    win = ReviewWindow(
        database.repository, supervisor=supervisor, catalog=TypeCatalog([], lambda t, s: None), enrolment=enrolment
    )
    qtbot.addWidget(win)

    def share_gone(gallery_dir: Path) -> TypeCatalog:
        raise OSError("the gallery share went away")

    monkeypatch.setattr(TypeCatalog, "from_gallery", staticmethod(share_gone))
    try:
        with qtbot.waitSignal(win.controller.enrolled, timeout=60_000) as done:
            assert win.controller.enrol(folder)
        assert done.args[0].n_types == 3 and Gallery.exists(enrolment.gallery_dir)  # enrolled, and said so
        said = win.view.status.currentMessage()
        assert said.startswith("Enrolled") and said.endswith("could not be read back for the type box: F5 tries again.")
        assert win.view.enrol_button.isEnabled() and win.controller.enrolling is None
    finally:
        win.shutdown()


def test_the_window_enrols_tray_photos_when_told(
    qtbot: QtBot, database: Database, supervisor: OperatorInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.station.nearest_type_pipeline import compose_cup

    coin = generate_mint(12, 0).types[0]
    trays = tmp_path / "trays"
    (trays / "t0" / "reverse").mkdir(parents=True)
    cv2.imwrite(str(trays / "t0" / "reverse" / "tray.png"), compose_cup([(coin, Side.REVERSE)] * 6, size=640))
    enrolment = Enrolment(tmp_path / "home" / "gallery", tiny_embedder)
    win = ReviewWindow(
        database.repository, supervisor=supervisor, catalog=TypeCatalog([], lambda t, s: None), enrolment=enrolment
    )
    qtbot.addWidget(win)
    monkeypatch.setattr(win.view, "ask_folder", lambda title: trays)
    answers: list[bool | None] = [None, True]  # Cancel, then Yes: each photo is a tray
    monkeypatch.setattr(win.view, "ask_trays", lambda: answers.pop(0))
    try:
        assert not win.controller.enrol()  # cancelled at the question: nothing enrolled
        with qtbot.waitSignal(win.controller.enrolled, timeout=60_000) as done:
            assert win.controller.enrol()
        assert done.args[0].enrolled == {"t0": {"reverse": 6}}
        assert len(list((tmp_path / "home" / "gallery" / "references").glob("*.png"))) >= 1
    finally:
        win.shutdown()


@pytest.mark.parametrize(
    ("threshold", "accepted", "says"),
    [
        (0.93, 180, "PASS when p ≥ 0.930: precision ≥ 99.5% with 95% confidence"),
        (math.inf, 0, "No threshold reaches 99.5% precision on 400 checks of calibration cups"),
    ],
)
def test_model_panel_states_the_guarantee(threshold: float, accepted: int, says: str) -> None:
    choice = ThresholdChoice(threshold, 0.995, 0.05, 400, accepted, 0, 1.0 if accepted else None, 0.9835, 0.6, 0.01)
    bundle = Bundle(
        Path("."),
        None,
        "emb-1",
        None,
        "det-2",
        "voter.txt",
        "",
        "pooler.pt",
        "",
        ("n_coins",),
        Preprocess(),
        choice,
        np.zeros(0),
        np.zeros(0, bool),
        version="verdict-abc",
    )
    lines = describe_bundle(bundle)
    assert lines[0] == "Model verdict-abc" and "emb-1" in lines[1] and "det-2" in lines[1]
    assert says in lines[2]
    # a bundle from before the rules were recorded: no fewest-coins rule, five photos a side
    assert (
        lines[3]
        == "Rules: the guarantee holds for coin types enrolled from 5 photos a side, as the calibration galleries were"
    )
    ruled = describe_bundle(replace(bundle, pass_min_coins=2, train={"enrol_per_side": 15}))
    assert (
        ruled[3].startswith("Rules: a cup of fewer than 2 coins never passes; ") and "from 15 photos a side" in ruled[3]
    )
    # certified again on another detector's cuts: the panel names the detector the guarantee holds for
    recut = describe_bundle(replace(bundle, train={"calibration_detector": "det-3"}))
    assert "det-3" in recut[1] and "det-2" not in recut[1]
    # a bundle whose embedder the nightly retrain fine-tuned says so
    tuned = describe_bundle(replace(bundle, adapter_file="adapter.npz", adapter_version="emb-1+head-12345678"))
    assert "emb-1 with an output layer fine-tuned at this station" in tuned[1]
    assert "fine-tuned" not in lines[1]


def test_model_panel_without_a_bundle(tmp_path: Path) -> None:
    assert describe_model(tmp_path / "none.json")[0].startswith("No verdict model:")


def test_the_queue_lists_passes_drawn_for_audit_after_the_flags_and_marks_them(
    qtbot: QtBot, database: Database, supervisor: OperatorInfo, catalog: TypeCatalog
) -> None:
    from db.records import audit_pick
    from tests.db.factories import make_record as make_logged_record

    repo = database.repository
    verdicts = [repo.log_verdict(make_logged_record(200 + k, p_correct=0.9999, threshold=0.5)) for k in range(12)]
    flag = repo.log_verdict(make_logged_record(199, decision=Decision.FLAG, p_correct=0.1, threshold=0.5))
    shown = {}
    for share in (0.0, 0.5):
        win = ReviewWindow(repo, supervisor=supervisor, catalog=catalog, audit_share=share)
        qtbot.addWidget(win)
        try:
            settle(qtbot, win.controller)
            shown[share] = [win.view.queue.item(row).text() for row in range(win.view.queue.count())]
            items = win.controller.items
        finally:
            win.shutdown()
    assert len(shown[0.0]) == 1 and "FLAG" in shown[0.0][0]  # confident PASSes wait for nobody
    drawn = [it for it in items.values() if it.audit]
    assert drawn and all(audit_pick(it.cup_id, 0.5) for it in drawn)
    assert {it.verdict_id for it in drawn} < set(verdicts) and flag not in {it.verdict_id for it in drawn}
    # the FLAG first; the audits take at most one row in four while FLAGs wait, and the rows left after them
    assert "FLAG" in shown[0.5][0] and len(shown[0.5]) == len(drawn) + 1
    assert all(text.startswith("AUDIT · cup") and "PASS" in text for text in shown[0.5][1:])


def test_a_recheck_stands_in_the_queue_for_the_check_it_answers(
    qtbot: QtBot,
    database: Database,
    pipeline: NearestTypePipeline,
    replay_dir: Path,
    catalog: TypeCatalog,
    supervisor: OperatorInfo,
) -> None:
    expected = catalog.types[0].type_id

    def check(name: str, recheck: Recheck | None = None) -> tuple[CheckRequest, int]:
        image = np.asarray(cv2.imread(str(replay_dir / name)), np.uint8)
        request = CheckRequest(Frame(image, source=name), expected, None, OPERATOR, "bench-1", recheck=recheck)
        verdict = replace(pipeline.run(request.frame, expected), decision=Decision.FLAG)
        return request, database.repository.log_verdict(make_record(CheckResult(request, verdict, 0.0)))

    first, first_id = check("00_pure.png")
    _, again_id = check("01_mixed.png", Recheck(first.key, 4))
    first_cup = database.repository.cup_of_verdict(first_id)
    win = ReviewWindow(database.repository, supervisor=supervisor, catalog=catalog)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win)  # the keys reach the window's shortcuts
    try:
        settle(qtbot, win.controller)
        assert win.view.queue.count() == 1  # the first check is answered by the second
        assert "RE-CHECK" in win.view.queue.item(0).text()
        cup = select_cup(qtbot, win, again_id)
        assert cup != first_cup and win.controller.shown_cup == cup
        assert f"Checked again after the coins cup {first_cup} named were turned over." in win.view.summary.text()
        # its last line is not cut off: the five-line box scrolls to it
        qtbot.waitUntil(lambda: win.view.summary.height() >= win.view.summary.heightForWidth(win.view.summary.width()))
        # B shows the cup before its coins were turned, and back
        assert win.view.before_button.isVisible() and not win.view.before_button.isChecked()
        qtbot.keyClick(win.view.queue, Qt.Key.Key_B)
        qtbot.waitUntil(lambda: not win.keys.holding)  # B pressed alone (no scanner typing)
        settle(qtbot, win.controller)
        assert win.controller.shown_cup == first_cup and win.view.photo.has_image()
        assert win.view.before_button.text().startswith(f"Showing cup {first_cup}, before its coins were turned")
        qtbot.keyClick(win.view.queue, Qt.Key.Key_B)
        qtbot.waitUntil(lambda: not win.keys.holding)  # B pressed alone (no scanner typing)
        settle(qtbot, win.controller)
        assert win.controller.shown_cup == cup and win.view.before_button.text() == BEFORE_TEXT
        assert len(win.view.thumbs.thumbnails()) == 4  # the re-check's coins, once: B changes the photograph alone
        win.view.before_button.setChecked(True)
        win.controller.show_cup(cup)  # choosing the cup again shows its own photograph
        assert win.controller.shown_cup == cup and not win.view.before_button.isChecked()
    finally:
        win.shutdown()


def test_a_recheck_after_a_flag_for_the_camera_alone_says_so(
    qtbot: QtBot,
    database: Database,
    pipeline: NearestTypePipeline,
    replay_dir: Path,
    catalog: TypeCatalog,
    supervisor: OperatorInfo,
) -> None:
    expected = catalog.types[0].type_id
    image = np.asarray(cv2.imread(str(replay_dir / "01_mixed.png")), np.uint8)
    moved = "the camera has moved since it was set up (the view: 12 px right) — put it back, or calibrate again"
    first = CheckRequest(Frame(image, source="first"), expected, None, OPERATOR, "bench-1")
    flagged = replace(pipeline.run(first.frame, expected), decision=Decision.FLAG, reasons=(moved,))
    first_cup = database.repository.cup_of_verdict(
        database.repository.log_verdict(make_record(CheckResult(first, flagged, 0.0)))
    )
    again = CheckRequest(first.frame, expected, None, OPERATOR, "bench-1", recheck=Recheck(first.key, 4))
    again_id = database.repository.log_verdict(
        make_record(CheckResult(again, pipeline.run(again.frame, expected), 0.0))
    )
    win = ReviewWindow(database.repository, supervisor=supervisor, catalog=catalog)
    qtbot.addWidget(win)
    try:
        settle(qtbot, win.controller)
        assert win.view.queue.count() == 1  # the camera's FLAG is answered by the check after it
        select_cup(qtbot, win, again_id)
        summary = win.view.summary.text()
        assert f"Checked again once the camera was back in place (cup {first_cup} was flagged for it alone)." in summary
        assert "turned" not in summary
        assert win.view.before_button.text() == "Show the first check, taken with the camera moved  [B]"
        win.view.before_button.setChecked(True)
        assert win.view.before_button.text().startswith(f"Showing cup {first_cup}, taken with the camera moved")
    finally:
        win.shutdown()


def test_a_ruling_cleanlab_suspects_comes_back_first_for_a_second_look(
    qtbot: QtBot, database: Database, logged: dict[str, int], supervisor: OperatorInfo, catalog: TypeCatalog
) -> None:
    pure = database.repository.cup_of_verdict(logged["00_pure"])
    database.repository.relabel(SUPERVISOR, pure, "corrected", corrected_type=catalog.types[1].type_id)
    suspects = SuspectLabels(frozenset({pure}), datetime.now(UTC), "verdict-0123abcd")
    win = ReviewWindow(database.repository, supervisor=supervisor, catalog=catalog, suspects=suspects)
    qtbot.addWidget(win)
    try:
        settle(qtbot, win.controller)
        first = win.view.queue.item(0).text()
        assert first.startswith(f"✓ SUSPECT · cup {pure}") and win.controller.items[pure].suspect
        win.controller.show_cup(pure)
        assert "Its ruling looks wrong</b> to the model of the last retrain (verdict-0123abcd)" in (
            win.view.summary.text()
        )
    finally:
        win.shutdown()


def _following(
    database: Database, supervisor: OperatorInfo, catalog: TypeCatalog, follow: Callable[[], InForceLines]
) -> ReviewWindow:
    """A review window whose F5 reads the model in force with ``follow``; it opened on ``verdict-aaaa1111``."""
    return ReviewWindow(
        database.repository, supervisor=supervisor, catalog=catalog, model=["Model verdict-aaaa1111"], follow=follow
    )


def test_f5_reads_the_model_in_force_off_the_window_and_ranks_the_queue_by_it(
    qtbot: QtBot, database: Database, logged: dict[str, int], supervisor: OperatorInfo, catalog: TypeCatalog
) -> None:
    """The registry may lie on a shared folder of a site: a slow one leaves the window live."""
    pure = database.repository.cup_of_verdict(logged["00_pure"])
    database.repository.relabel(SUPERVISOR, pure, "confirmed")
    release = threading.Event()
    promoted = (["Model verdict-bbbb2222"], SuspectLabels(frozenset({pure}), datetime.now(UTC), "verdict-bbbb2222"))

    def slow_share() -> InForceLines:
        release.wait(5.0)
        return promoted

    win = _following(database, supervisor, catalog, slow_share)
    qtbot.addWidget(win)
    try:
        settle(qtbot, win.controller)
        assert not win.view.queue.item(0).text().startswith("✓ SUSPECT")
        started = time.monotonic()
        win.reload()  # the nightly retrain has promoted a model that suspects the ruling on the pure cup
        assert time.monotonic() - started < 1.0  # not waiting for the share
        assert win.controller.reading and win.view.model_label.text() == "Model verdict-aaaa1111"
        release.set()
        settle(qtbot, win.controller)
        assert win.view.model_label.text() == "Model verdict-bbbb2222"
        # the queue is read after the suspects came, so the suspected ruling is first
        assert win.view.queue.item(0).text().startswith(f"✓ SUSPECT · cup {pure}")
    finally:
        release.set()
        win.shutdown()


def test_a_registry_that_cannot_be_read_is_said_and_the_queue_comes_all_the_same(
    qtbot: QtBot, database: Database, logged: dict[str, int], supervisor: OperatorInfo, catalog: TypeCatalog
) -> None:
    def share_gone() -> InForceLines:
        raise OSError("the models share is not mounted")

    win = _following(database, supervisor, catalog, share_gone)
    qtbot.addWidget(win)
    try:
        settle(qtbot, win.controller)
        win.reload()
        settle(qtbot, win.controller)
        said = win.view.status.currentMessage()
        assert said.startswith(
            "The model in force or the enrolled types could not be read: OSError: the models share is not mounted. "
            "F5 tries again · "
        )
        assert "cups in the queue" in said and win.view.queue.count() == len(logged) - 1
        assert win.view.model_label.text() == "Model verdict-aaaa1111"
    finally:
        win.shutdown()


def test_repeated_wrong_pins_lock_the_dialog_for_longer_each_time(qtbot: QtBot, database: Database) -> None:
    dialog = LoginDialog("Supervisor sign-in")
    qtbot.addWidget(dialog)
    login = LoginController(dialog, database.repository, throttle=SignInThrottle(), role=SUPERVISOR_ROLE)
    dialog.show()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    dialog.name_edit.setText(SUPERVISOR)

    def wrong() -> str:
        dialog.pin_edit.setText("0000")
        with qtbot.waitSignal(login.refused) as refused:
            dialog.buttons.accepted.emit()
        return str(refused.args[0])

    for _ in range(FREE_ATTEMPTS):
        assert wrong() == "Name or PIN not recognised." and ok.isEnabled() and not login.locked
    assert wrong() == "Name or PIN not recognised. Too many tries: wait 1 s."
    assert login.locked and not ok.isEnabled()
    dialog.pin_edit.setText(SUPERVISOR_PIN)
    dialog.buttons.accepted.emit()  # the right PIN while locked is not even checked
    assert login.operator is None and dialog.result() != QDialog.DialogCode.Accepted
    with qtbot.waitSignal(login.unlocked, timeout=3000):
        pass
    assert ok.isEnabled() and dialog.message.text() == "Try again."
    assert wrong().endswith("wait 2 s.")  # each refusal after the free ones doubles the wait
    with qtbot.waitSignal(login.unlocked, timeout=4000):
        pass
    dialog.pin_edit.setText(SUPERVISOR_PIN)
    with qtbot.waitSignal(dialog.accepted):
        dialog.buttons.accepted.emit()
    assert login.operator is not None and login.failures == 0


def test_a_new_sign_in_dialog_goes_on_where_a_cancelled_one_stopped(qtbot: QtBot, database: Database) -> None:
    throttle = SignInThrottle()
    second, second_login = reopened_locked(qtbot, lambda: supervisor_sign_in(qtbot, database.repository, throttle))
    with qtbot.waitSignal(second_login.unlocked, timeout=3000):
        pass
    # the count went on; a fresh dialog would say nothing
    assert refused_pin(qtbot, second, second_login).endswith("wait 2 s.")
    with qtbot.waitSignal(second_login.unlocked, timeout=4000):
        pass
    second.pin_edit.setText(SUPERVISOR_PIN)
    with qtbot.waitSignal(second.accepted):
        second.buttons.accepted.emit()
    assert throttle.failures == 0 and throttle.wait_s() == 0


def test_a_cup_whose_images_were_pruned_says_so(
    qtbot: QtBot, database: Database, logged: dict[str, int], supervisor: OperatorInfo, catalog: TypeCatalog
) -> None:
    report = database.repository.prune_images(datetime(2100, 1, 1, tzinfo=UTC), min_age_s=0)
    assert report.cups == 1  # the pure cup's PASS; the mixed cup's FLAG keeps its images
    win = ReviewWindow(database.repository, supervisor=supervisor, catalog=catalog, audit_share=1.0)
    qtbot.addWidget(win)
    win.show()
    try:
        cup = select_cup(qtbot, win, logged["00_pure"])  # drawn for audit after its images went
        assert not win.view.photo.has_image()
        assert win.view.photo.text() == f"The photo of cup {cup} was pruned (cupcheck prune); its verdict stays"
        assert win.view.thumbs.thumbnails() == []
        select_cup(qtbot, win, logged["01_mixed"])
        assert win.view.photo.has_image() and len(win.view.thumbs.thumbnails()) == 4
    finally:
        win.shutdown()


def test_a_database_away_is_said_in_the_status_bar_and_f5_tries_again(
    qtbot: QtBot, supervisor: OperatorInfo, catalog: TypeCatalog, tmp_path: Path
) -> None:
    engine = make_engine("postgresql+psycopg://cupcheck@127.0.0.1:9/cupcheck")  # nothing listens on port 9
    win = ReviewWindow(VerdictRepository(engine, tmp_path), supervisor=supervisor, catalog=catalog)
    qtbot.addWidget(win)
    try:
        settle(qtbot, win.controller)
        said = win.view.status.currentMessage()
        assert said.startswith("The database cannot be reached: ") and said.endswith("F5 tries again.")
        assert win.view.queue.count() == 0
        win.view.status.clearMessage()
        win.reload()
        settle(qtbot, win.controller)
        assert win.view.status.currentMessage() == said
    finally:
        win.shutdown()
        engine.dispose()


def test_a_ruling_the_database_cannot_take_says_so_in_words(
    qtbot: QtBot,
    database: Database,
    logged: dict[str, int],
    supervisor: OperatorInfo,
    catalog: TypeCatalog,
    tmp_path: Path,
) -> None:
    """The server goes down after a cup is shown: the status bar says the database cannot be reached, not SQL."""
    win = ReviewWindow(database.repository, supervisor=supervisor, catalog=catalog)
    qtbot.addWidget(win)
    engine = make_engine("postgresql+psycopg://cupcheck@127.0.0.1:9/cupcheck")  # nothing listens on port 9
    try:
        cup = select_cup(qtbot, win, logged["01_mixed"])
        win.controller.repository = VerdictRepository(engine, tmp_path)
        with qtbot.waitSignal(win.controller.refused, timeout=30_000) as refused:
            win.controller.confirm()
        said = refused.args[0]
        assert said.startswith(f"Cup {cup}, cup: not saved: the database cannot be reached (")
        assert said.endswith("rule again once it is back") and "[SQL" not in said and "sqlalche.me" not in said
    finally:
        win.shutdown()
        engine.dispose()


def test_a_slow_read_leaves_the_window_live_and_its_late_answer_is_not_drawn(
    qtbot: QtBot,
    database: Database,
    logged: dict[str, int],
    supervisor: OperatorInfo,
    catalog: TypeCatalog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = database.repository
    mixed, pure = repo.cup_of_verdict(logged["01_mixed"]), repo.cup_of_verdict(logged["00_pure"])
    release = threading.Event()
    read_coins = repo.cup_coins

    def held(cup_id: int) -> list[StoredCoin]:  # a slow site database: the pure cup's coins wait for the test
        if cup_id == pure:
            assert release.wait(timeout=20), "the test never released the read"
        return read_coins(cup_id)

    monkeypatch.setattr(repo, "cup_coins", held)
    win = ReviewWindow(repo, supervisor=supervisor, catalog=catalog, audit_share=1.0)
    qtbot.addWidget(win)
    win.show()
    try:
        settle(qtbot, win.controller)  # the mixed cup, the FLAG, heads the queue and is shown
        rows = {win.view.queue.item(r).data(Qt.ItemDataRole.UserRole): r for r in range(win.view.queue.count())}
        mixed_marks = [t.marked for t in win.view.thumbs.thumbnails()]
        assert win.controller.shown_cup == mixed and mixed_marks != [False] * 4
        win.view.queue.setCurrentRow(rows[pure])
        # the read waits on its own thread: the window answers, names the cup chosen, and says the photo is coming
        assert win.controller.reading and win.controller.current is not None
        assert win.controller.current.cup_id == pure and f"<b>Cup {pure}</b>" in win.view.summary.text()
        assert win.view.photo.text() == f"Reading the photo of cup {pure}…"
        qtbot.wait(100)
        assert win.controller.reading  # still held, and the event loop ran meanwhile
        win.view.queue.setCurrentRow(rows[mixed])  # the supervisor moves on before it answers
        assert f"<b>Cup {mixed}</b>" in win.view.summary.text()
        release.set()
        settle(qtbot, win.controller)
        # the late answer about the pure cup was dropped: what is drawn is the mixed cup's
        assert win.controller.shown_cup == mixed and win.view.photo.has_image()
        assert [t.marked for t in win.view.thumbs.thumbnails()] == mixed_marks
        assert f"<b>Cup {mixed}</b>" in win.view.summary.text()
    finally:
        release.set()
        win.shutdown()


def test_a_supervisor_finds_an_order_and_rules_on_a_cup_that_passed(
    qtbot: QtBot, database: Database, logged: dict[str, int], supervisor: OperatorInfo, catalog: TypeCatalog
) -> None:
    repo = database.repository
    mixed, pure = repo.cup_of_verdict(logged["01_mixed"]), repo.cup_of_verdict(logged["00_pure"])
    win = ReviewWindow(repo, supervisor=supervisor, catalog=catalog)  # no audit draw: a sure PASS waits for nobody
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win)
    try:
        settle(qtbot, win.controller)
        assert set(win.controller.items) == {mixed}
        # the customer of order A-9 says it held a wrong coin: the supervisor scans the order's slip
        win.view.order_find.setFocus()
        qtbot.keyClicks(win.view.order_find, "A-9")
        qtbot.keyClick(win.view.order_find, Qt.Key.Key_Return)
        settle(qtbot, win.controller)
        assert set(win.controller.items) == {mixed, pure}
        assert win.view.queue_title.text() == "ORDER A-9: 2 CUPS, NEWEST FIRST"
        assert win.view.status.currentMessage().startswith("Order A-9: 2 cups checked, PASSes too")
        rows = {win.view.queue.item(r).data(Qt.ItemDataRole.UserRole): r for r in range(win.view.queue.count())}
        assert "PASS" in win.view.queue.item(rows[pure]).text()
        win.view.queue.setCurrentRow(rows[pure])
        settle(qtbot, win.controller)
        assert win.view.photo.has_image() and len(win.view.thumbs.thumbnails()) == 4
        wrong = catalog.types[1]
        win.view.type_combo.setCurrentIndex(win.view.type_combo.findData(wrong.type_id))
        win.view.queue.setFocus()
        with qtbot.waitSignal(win.controller.relabelled):
            qtbot.keyClick(win.view.queue, Qt.Key.Key_T)
        settle(qtbot, win.controller)
        assert [a.new_value for a in repo.audit_trail(pure)] == [f"corrected:{wrong.type_id}"]
        assert win.controller.order == "A-9" and win.controller.items[pure].labelled  # the order stays listed
        assert win.controller.current is not None and win.controller.current.cup_id == mixed  # its next cup
        assert win.view.status.currentMessage().endswith(
            f"· next: cup {mixed} · signed in as {SUPERVISOR} (supervisor)"
        )

        # an order nobody checked: said, and typed letters are the box's, not the one-key rulings'
        win.view.order_find.clear()
        settle(qtbot, win.controller)
        win.view.order_find.setFocus()
        qtbot.keyClicks(win.view.order_find, "nd-404")
        qtbot.keyClick(win.view.order_find, Qt.Key.Key_Return)
        settle(qtbot, win.controller)
        assert win.view.order_find.text() == "nd-404" and win.view.queue.count() == 0
        assert win.view.status.currentMessage().startswith("No cup of order nd-404 was checked")
        assert len(repo.audit_trail(pure)) == 1

        win.view.order_find.clear()  # its clear button: the review queue again
        settle(qtbot, win.controller)
        assert win.controller.order is None and set(win.controller.items) == {mixed}
        assert win.view.queue_title.text() == "REVIEW QUEUE (MOST USEFUL FIRST)"
    finally:
        win.shutdown()


def test_closing_during_an_enrolment_waits_for_it_then_closes(
    qtbot: QtBot, database: Database, supervisor: OperatorInfo, tmp_path: Path
) -> None:
    folder = write_mint_catalog(generate_mint(3, 9), tmp_path / "catalogue", size=96)
    gallery_dir = tmp_path / "home" / "gallery"
    release = threading.Event()

    def held_embedder() -> Embedder:  # a large catalogue takes minutes to embed
        assert release.wait(timeout=20), "the test never released the enrolment"
        return tiny_embedder()

    win = ReviewWindow(
        database.repository,
        supervisor=supervisor,
        catalog=TypeCatalog([], lambda t, s: None),
        enrolment=Enrolment(gallery_dir, held_embedder),
    )
    qtbot.addWidget(win)
    win.show()
    try:
        assert win.controller.enrol(folder) and win.controller.enrolling == folder
        assert not win.close()  # not yet: the enrolment's thread cannot be stopped half-way
        assert win.isVisible()
        assert win.view.status.currentMessage() == (
            f"Enrolling the types of {folder}… the window closes once it is done."
        )
        with qtbot.waitSignal(win.controller.enrolled, timeout=60_000):
            release.set()
        qtbot.waitUntil(lambda: not win.isVisible())  # it closed by itself
        assert win.controller.enrolling is None and Gallery.exists(gallery_dir)
    finally:
        release.set()
        win.shutdown()
