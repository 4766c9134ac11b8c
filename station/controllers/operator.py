"""The operator window's logic: choose the expected type, check the cup on Space, show the verdict and states.

The controller owns no thread: frames arrive from the camera pump's signals, checks leave through
:attr:`OperatorController.check_requested` (connected to the inference worker in its thread), verdicts and
database states come back through the worker's signals.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QListWidgetItem

from calibration.movement import CameraMove
from db.spool import IMAGE_SHARE
from models.types import Decision, Frame, Side, Verdict
from station.camera import Clock, dark_picture
from station.controllers.catalog import ORDERS_FILE, OrderLookup, TypeCatalog, resolve_entry
from station.controllers.model_follow import Loaded
from station.controllers.order_history import DATABASE_AWAY, OrderAnswer
from station.controllers.overlay import (
    FLAG_HEX,
    IDLE_HEX,
    Summary,
    coin_ok,
    draw_camera_move,
    draw_cup_region,
    draw_evidence,
    summarise,
)
from station.controllers.sound import Silent, SoundCue
from station.controllers.stillness import StillnessGate, ViewWatch
from station.home import LOW_DISK_BYTES
from station.views.operator import OperatorView
from station.views.widgets import PREVIEW_STYLE, Thumbnail, to_pixmap
from station.worker import (
    CheckRequest,
    CheckResult,
    DbState,
    EmptyTrayRequest,
    Recheck,
    RecheckWhy,
    StoreResult,
    cut_thumbnail,
)

OVERLAY_HOLD_S = 8.0
"""How long the coin outlines of a check stay on the live preview."""
NOT_SAVED = "NOT SAVED"
CHECK_TEXT = "Check cup  [Space]"
RECHECK_TEXT = {
    RecheckWhy.TURNED: "Check the turned cup again  [Space]",
    RecheckWhy.CAMERA: "Check the cup again  [Space]",
}
"""The check button's words while the next check is the same cup's (:class:`~station.worker.Recheck`)."""
RECHECKING_TEXT = {RecheckWhy.TURNED: " Checking it again after turning.", RecheckWhy.CAMERA: " Checking it again."}
ALREADY_TEXT = "Already checked, and nothing in view has changed since: "
"""Put before a verdict shown again for the cup in view (a second Space on it, or a hand that passed over it)."""
DARK_PROBLEM = "black picture: uncover the lens or check the camera"
"""The status bar's words while the camera's picture is black (:func:`~station.camera.dark_picture`)."""
NOT_USED_YET = "Database: not used yet"
"""The status bar's database field before the first verdict is written or the database is found away."""
SIGN_OUT_TEXT = "Sign out  [F2]"
SIGN_IN_TEXT = "Sign in  [F2]"
TYPE_ROLE = Qt.ItemDataRole.UserRole
BRIEF_CHARS = 240
"""An error's message in the reason line is cut after this many characters (the status bar's tooltip has it all)."""
BREAK_EVERY = 24
"""An unbroken run of characters in such a message may wrap after this many."""

_log = logging.getLogger(__name__)


def whose(order: str | None, type_id: str) -> str:
    """What a cup was checked for, as the operator reads it: ``"order A-1001 (t0021)"``, or ``"t0021"`` for a type
    picked from the list."""
    return f"order {order} ({type_id})" if order else type_id


def brief(message: str, limit: int = BRIEF_CHARS, run: int = BREAK_EVERY) -> str:
    """An error's message as the operator's reason line shows it: its first line, at most ``limit`` characters
    (then "…"), with a break allowed every ``run`` characters of an unbroken run (a path, a bytes literal), so the
    word-wrapped line never widens the window. The status bar's tooltip keeps all of it."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    if len(first) > limit:
        first = first[: limit - 1] + "…"
    return re.sub(rf"(\S{{{run}}})(?=\S)", "\\1\u200b", first)


class OperatorController(QObject):
    """Drives an :class:`~station.views.operator.OperatorView`.

    Args:
        view: the window's widgets.
        catalog: the enrolled types.
        orders: order numbers → types.
        station: the station's name.
        operator: the signed-in operator's registered name.
        sound: the verdict's sound cue.
        clock: monotonic seconds (how long the outlines stay).
        model_version: shown in the status bar until the first verdict names one.
        cup_region: the cup's inner circle ``(cx, cy, radius)`` in frame pixels, drawn as a guide.
        auto_check: checks a cup by itself when this gate fires (``None``: only Space checks).
        home: the station home, where the empty-tray photo is kept (``None``: the button is hidden).
        camera_size: ``(width, height)`` the camera was calibrated at; live frames of another size are named in
            the status bar (every cup is then flagged for it).
        low_disk_bytes: below this much free room on the home's disk the status bar asks for ``cupcheck prune``.
        sign_out_after_s: :meth:`idle_tick` signs the operator out once this long has passed without a check or
            an order (0: never), so cups are not recorded under the name of someone who left.

    Signals:
        check_requested(CheckRequest): a cup to judge (connect to the inference worker).
        verdict_shown(CheckResult): the banner shows a verdict.
        store_shown(StoreResult): the status bar shows the database state after a write.
        camera_state_changed(bool): the window shows the camera as lost (``True``) or back (``False``).
        camera_look_requested(Frame): about once a second, a live frame to compare with the view the station was
            set up with (connect to the worker's ``look_at_camera``; answer with :meth:`show_camera_move`).
        empty_tray_requested(EmptyTrayRequest): a frame to keep as the empty tray (connect to the worker).
        empty_tray_shown(bool, str): the answer to it is on screen.
        sign_in_requested(): a check was asked for while nobody is signed in (show the sign-in dialog).
        order_chosen(str): an order number was entered and resolved (whether it was checked before is asked).
    """

    check_requested = Signal(object)
    verdict_shown = Signal(object)
    store_shown = Signal(object)
    camera_state_changed = Signal(bool)
    camera_look_requested = Signal(object)
    empty_tray_requested = Signal(object)
    empty_tray_shown = Signal(bool, str)
    sign_in_requested = Signal()
    order_chosen = Signal(str)

    def __init__(
        self,
        view: OperatorView,
        catalog: TypeCatalog,
        orders: OrderLookup,
        *,
        station: str,
        operator: str,
        sound: SoundCue | None = None,
        clock: Clock = time.monotonic,
        model_version: str = "",
        cup_region: tuple[float, float, float] | None = None,
        auto_check: StillnessGate | None = None,
        home: Path | None = None,
        camera_size: tuple[int, int] | None = None,
        low_disk_bytes: int = LOW_DISK_BYTES,
        sign_out_after_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.low_disk_bytes = low_disk_bytes
        self.view = view
        self.catalog = catalog
        self.orders = orders
        self.station = station
        self.operator: str | None = operator
        self._counted_for = operator  # whose cups the session count holds
        self.sign_out_after_s = sign_out_after_s
        self._active_at = clock()  # the last check or order: idle_tick signs out after sign_out_after_s of none
        self._sound = sound or Silent()
        self._clock = clock
        self.expected_type: str | None = None
        self.order: str | None = None
        self.order_count: int | None = None  # the coins the order asks for, when it says
        self.busy = False
        self._frame: Frame | None = None
        self._last: CheckResult | None = None
        # the check whose verdict stands for the view the ViewWatch marked, with its summary, while it is on record:
        # Space on that view, unchanged and for the same order, shows it again rather than log the cup twice
        self._standing: tuple[CheckResult, Summary] | None = None
        self._overlay_until = 0.0
        self._camera_lost = False
        self._lost_why = ""  # why the camera is lost, when its source said
        self._cup_region = cup_region
        self.camera_size = camera_size  # (width, height) the camera was calibrated at, when it was
        self._camera_move: CameraMove | None = None  # the view against the set-up photo's, last told
        self._camera_off = ""  # why checks are held: the camera is not as it was set up ("": they are not)
        self._dark = False  # the live picture is black: a covered lens or a dead camera
        self._fps = 0.0
        self._cups: dict[str, Decision] = {}  # each cup's standing decision, by the key of its newest check
        self._auto = auto_check
        self._watch = ViewWatch()  # whether the view has changed since the cup of the last verdict was photographed
        self._verdict_up = False  # the banner shows the last verdict (nothing has replaced it since)
        self._tray_asked = False  # an empty-tray photo is with the worker
        self._recheck: Recheck | None = None
        self._model_problem = ""
        self._model_detail = ""
        self._saving: str | None = None  # the key of the verdict shown whose write is awaited
        self._orders_error = ""  # why orders.csv cannot be read ("": it was read, or there is none)
        self._order_hint = view.order_edit.placeholderText()
        self._entry_done = False  # the order box holds a finished entry (Enter was pressed on it)

        view.station_label.setText(f"Station {station} · {operator}")
        view.session_label.setText("No cups checked yet")
        self._show_model_label(model_version or "—")
        view.db_label.setText(NOT_USED_YET)
        view.camera_label.setText("Camera: starting")
        view.order_edit.returnPressed.connect(self.enter_order)
        view.type_filter.textChanged.connect(self.filter_types)
        # a type is chosen by a click, or by Enter or a double click (then done: Space checks); moving through the
        # list (the focus Tabbed into it, the arrow keys) only highlights, so the order in hand stays
        view.type_list.itemClicked.connect(self._type_clicked)
        view.type_list.itemActivated.connect(self._type_activated)
        view.check_button.clicked.connect(self.check)
        view.new_cup_button.clicked.connect(self.new_cup)
        self._home = home
        view.empty_tray_button.setVisible(home is not None)
        view.empty_tray_button.clicked.connect(self.take_empty_tray)
        self.filter_types("")

    # -- choosing the expected type ---------------------------------------------------------------------------

    @Slot(str)
    def filter_types(self, text: str) -> None:
        """Show the enrolled types matching ``text`` (keeping the chosen one selected)."""
        lst = self.view.type_list
        lst.blockSignals(True)
        lst.clear()
        for t in self.catalog.search(text):
            item = QListWidgetItem(t.label)
            item.setData(TYPE_ROLE, t.type_id)
            picture = self.catalog.picture(t.type_id, Side.OBVERSE)
            if picture is not None:
                item.setIcon(QIcon(to_pixmap(picture)))
            lst.addItem(item)
            if t.type_id == self.expected_type:
                lst.setCurrentItem(item)
        lst.blockSignals(False)

    @Slot()
    def enter_order(self) -> None:
        """Resolve the order box (Enter, or a scanner's trailing newline) and choose its type."""
        res = resolve_entry(self.view.order_edit.text(), self.orders, self.catalog)
        self._entry_done = True  # the next scan replaces this entry (see type_ahead)
        if res.type_id is None:
            # no cup may be checked, and logged, under the order that was chosen before this entry
            self._clear_choice()
            message = f"{res.message} ({ORDERS_FILE} cannot be read)" if self._orders_error else res.message
            self.view.order_status.setText(message)
            self.view.order_status.setStyleSheet(f"color: {FLAG_HEX}; font-weight: bold;")
            self._refuse(f"{message} Scan the order again, or pick the type from the list.")
            self.view.order_edit.selectAll()  # the focus stays here: the next scan replaces the bad entry
            return
        self.view.order_status.setStyleSheet("color: #aab0b8;")
        self.choose_type(res.type_id, order=res.order, count=res.count)
        if res.order is None:
            self.view.order_status.setText(res.message)  # "Type t0018": typed, not picked from the list
        else:
            self.order_chosen.emit(res.order)
        self.view.order_edit.selectAll()
        self.view.preview.setFocus()

    def type_ahead(self, text: str) -> bool:
        """Send keys typed outside any text box to the order box (a barcode scanner types wherever the focus is).

        The previous entry, still selected after its Enter, is replaced. Space is not taken: it checks the cup.

        Returns:
            Whether the text was taken.
        """
        if not text or not text.isprintable() or text.isspace():
            return False
        edit = self.view.order_edit
        if self._entry_done:  # its selection went when the focus left the box: clear it by hand
            edit.clear()
            self._entry_done = False
        edit.setFocus()
        edit.insert(text)
        return True

    @Slot(QListWidgetItem)
    def _type_clicked(self, item: QListWidgetItem) -> None:
        """A type clicked in the list is chosen, with no order (the focus stays on the list); the type already in
        hand stays as it was chosen, its order with it."""
        type_id = str(item.data(TYPE_ROLE))
        if type_id != self.expected_type:
            self.choose_type(type_id, order=None)

    @Slot(QListWidgetItem)
    def _type_activated(self, item: QListWidgetItem) -> None:
        """Enter or a double click on a type chooses it as a click does, and hands the focus back to the preview,
        where Space checks the cup."""
        self._type_clicked(item)
        self.view.preview.setFocus()

    def _show_chosen_in_list(self) -> None:
        """Make the expected type's row the list's current one (none when the list does not show it), without
        choosing anything: the focus entering the list then finds the type in hand, not the first row."""
        lst = self.view.type_list
        row = next(
            (i for i in range(lst.count()) if lst.item(i).data(TYPE_ROLE) == self.expected_type),
            -1,
        )
        lst.blockSignals(True)
        lst.setCurrentRow(row)
        lst.blockSignals(False)

    def choose_type(self, type_id: str, *, order: str | None = None, count: int | None = None) -> None:
        """Make ``type_id`` the expected type (with the order number it came from, if any, and the number of coins
        it asks for, if it says: a cup of another number is flagged)."""
        info = self.catalog.get(type_id)
        self._active_at = self._clock()
        self.expected_type = type_id
        self.order = order
        self.order_count = count
        label = info.label if info else type_id
        self.view.expected_label.setText(label if count is None else f"{count} × {label}")
        self.view.reference_obverse.set_image(self.catalog.picture(type_id, Side.OBVERSE))
        self.view.reference_reverse.set_image(self.catalog.picture(type_id, Side.REVERSE))
        self.view.order_status.setText(self._order_words() if order else "Chosen from the list")
        self._show_chosen_in_list()
        self._overlay_until = 0.0
        self._arm_recheck(None)
        # the cup in view is checked for this order only if it is not the one just checked (for the order before,
        # which its slip was scanned after): an unchanged view waits for this order's cup, or for Space
        checked = self._checked_in_view()
        if self._auto is not None and checked is None:
            self._auto.rearm()
        if self._auto is not None and checked is not None:
            req = checked.request
            waits = (
                f"The cup in view was checked for {whose(req.order, req.expected_type)}: put the cup of "
                f"{whose(order, type_id)} under the camera; it is checked once it is still."
            )
        else:
            waits = "Put the cup under the camera and press Space."
        if self._show_ready(waits):  # (else the order is taken, and the cup waits for the camera)
            self.view.detail.setText("")

    def _order_words(self) -> str:
        """The order in hand as the order box's status says it: ``"Order A-1001: 20 coins"``."""
        count = self.order_count
        coins = "" if count is None else f": {count} coin{'s' if count != 1 else ''}"
        return f"Order {self.order}{coins}"

    def _checked_in_view(self) -> CheckResult | None:
        """The check whose photograph shows what is in view now (nothing has changed since, though a hand may have
        passed over it), ``None`` when the view differs or no verdict has been shown."""
        return self._last if self._last is not None and self._view_unchanged() else None

    def _view_unchanged(self) -> bool:
        """Whether what is in view is still what the last verdict's photograph shows (a hand that came and went
        changes nothing)."""
        return self._frame is not None and not self._watch.differs_now(self._frame.image)

    # -- camera -----------------------------------------------------------------------------------------------

    @Slot(object)
    def show_frame(self, frame: Frame) -> None:
        """Show a live frame, with the last check's outlines while they are fresh (ignored while the camera is lost)."""
        if self._camera_lost:
            return
        self._frame = frame
        dark = dark_picture(frame.image)
        if dark != self._dark:  # covered or uncovered: hold checks, or take them up again
            self._dark = dark
            self._show_camera_label()
        if self._watch.update(frame.image) and self._verdict_up:
            self._verdict_moved()
        verdict = self._last.verdict if self._last is not None and self._clock() < self._overlay_until else None
        shown = draw_evidence(frame.image, verdict)  # a copy, drawn on below
        move = self._camera_move
        if move is not None and move.moved and not self.camera_size_problem:  # where the cup was, where it is now
            shown = draw_camera_move(shown, move)
        else:
            shown = draw_cup_region(shown, self._cup_region if not self.camera_problem else None)
        self.view.preview.set_image(shown)
        if self._auto is not None and self._auto.update(frame.image, ready=self._gate_may_check):
            self.check(auto=True)
        elif self._auto is not None and self._auto.declined and not self._verdict_up and not self.busy:
            self._show_standing_again()  # a hand passed over the cup just checked: its verdict stands again

    @property
    def _gate_may_check(self) -> bool:
        """Whether the stillness gate may start a check now; while it may not (a check or its write under way, no
        order, nobody signed in, the camera not as set up) the gate stays armed, so a cup put down meanwhile is
        checked once it may be."""
        return not self.busy and self.operator is not None and self.expected_type is not None and self._can_check

    def _consume_gate(self) -> None:
        """The view in front was used: the stillness gate waits for the next movement before it checks again."""
        if self._auto is not None:
            self._auto.consume()

    def _show_banner(self, state: str, colour: str) -> None:
        """Put ``state`` on the banner in place of whatever it said (a verdict shown before is no longer up)."""
        self._verdict_up = False
        self.view.banner.show_state(state, colour)

    def _verdict_moved(self) -> None:
        """The view has changed since the cup of the verdict on the banner was photographed (taken away, another put
        down, a hand in view): its outlines go, and a PASS gives way, so it is never read as the verdict on what lies
        there now. A FLAG stays, since it says what to do with that cup, and so do the outlines of one that asks for
        coins to be turned over (they show which, while the operator turns them)."""
        self._verdict_up = False
        if self._recheck is None or self._recheck.why is not RecheckWhy.TURNED:
            self._overlay_until = 0.0
        if self._last is None or self._last.verdict.decision is not Decision.PASS:
            return
        if self._show_ready(  # (a camera knocked while the cup was checked: its hold, not READY)
            "The cup that passed was moved. Put the next cup under the camera"
            + (": it is checked once it is still." if self._auto is not None else " and press Space.")
        ):
            self.view.detail.setText("")

    @Slot(str)
    def camera_lost(self, name: str) -> None:
        """The camera stopped delivering (``name``: which camera, then after " — " why, when its source knows:
        ``"webcam 0 — the camera sends the same picture: frozen"``)."""
        name, _, self._lost_why = name.partition(" — ")
        self._camera_lost = True
        self._frame = None
        self.view.preview.show_text(f"CAMERA LOST\n\n{name}\nreconnecting…")
        self.view.preview.setStyleSheet(f"background: #15181d; color: {FLAG_HEX}; font-size: 40px; font-weight: bold;")
        why = f" ({self._lost_why})" if self._lost_why else ""
        self.view.camera_label.setText(f"Camera: LOST{why}, reconnecting")
        self.view.camera_label.setStyleSheet(f"color: {FLAG_HEX}; font-weight: bold;")
        self.view.check_button.setEnabled(False)
        self._enable_empty_tray()
        if not self.busy:  # the last verdict is for a cup that is no longer in view: do not leave it up
            self._show_no_camera()
        self.camera_state_changed.emit(True)

    def _show_no_camera(self) -> None:
        self._show_banner("NO CAM", FLAG_HEX)
        why = f" ({self._lost_why})" if self._lost_why else ""
        self.view.reason.setText(f"The camera stopped delivering{why}; cups can be checked again once it is back.")
        self.view.detail.setText("")

    @Slot()
    def camera_restored(self) -> None:
        """The camera delivers again."""
        self._camera_lost = False
        self.view.preview.setStyleSheet(PREVIEW_STYLE)
        self.view.camera_label.setText("Camera: back")
        self.view.camera_label.setStyleSheet("")
        self.view.check_button.setEnabled(not self.busy and not self._camera_off)
        self._enable_empty_tray()
        # (while busy, the verdict on its way says what it found)
        if not self.busy:  # (still not as it was set up, knocked then unplugged: its hold says so)
            self._show_ready("Camera back: put the cup under the camera and press Space.")
        self.camera_state_changed.emit(False)

    @Slot(float)
    def show_fps(self, fps: float) -> None:
        """Show the preview's measured frame rate (about once a second), and ask whether the camera has moved."""
        if self._camera_lost:
            return
        self._fps = fps
        self._show_camera_label()
        if self._frame is not None and not self.busy and not self.camera_size_problem and not self._dark:
            self.camera_look_requested.emit(self._frame)

    @Slot(object)
    def show_camera_move(self, move: CameraMove | None) -> None:
        """The live view against the set-up photo's (``None``: no photo to compare with)."""
        self._camera_move = move
        if not self._camera_lost:
            self._show_camera_label()

    def _show_camera_label(self) -> None:
        problem = self.camera_problem
        self.view.camera_label.setText(f"Camera {self._fps:.0f} fps" + (f" · {problem}" if problem else ""))
        self.view.camera_label.setStyleSheet(f"color: {FLAG_HEX}; font-weight: bold;" if problem else "")
        self._hold_for_camera(problem)

    def _hold_for_camera(self, problem: str) -> None:
        """Check no cup while the camera is not as it was set up (each would only be flagged for it, and logged
        for a supervisor to clear), and say so; take checks up again once it is."""
        was, self._camera_off = self._camera_off, problem
        self._enable_empty_tray()
        if was == problem or self._camera_lost:
            return  # (another problem, or the same measured anew while the camera is nudged back, is said below)
        if bool(was) != bool(problem):
            if problem:
                _log.warning("camera not as set up (%s): no cup is checked until it is", problem)
            else:
                _log.info("camera as set up again: checks resume")
        self.view.check_button.setEnabled(self._can_check and not self.busy)
        if self.busy:  # the verdict on its way says what it found
            return
        if problem:
            self._show_camera_hold()
        else:
            self._show_banner("READY", IDLE_HEX)
            self.view.reason.setText(
                "The camera is as it was set up again: "
                + (
                    "press Space to check the cup again."
                    if self._recheck is not None and self._recheck.why is RecheckWhy.CAMERA
                    else "put the cup under the camera and press Space."
                )
            )

    def _show_camera_hold(self) -> None:
        """The banner and words while no cup is checked for the camera (:meth:`_hold_for_camera`); the last check's
        outlines go with its verdict."""
        self._overlay_until = 0.0
        self._show_banner("CAMERA", FLAG_HEX)
        move = self._camera_move
        if self._dark:
            self.view.reason.setText(
                "The camera's picture is black (its lens covered, or the camera dead): uncover it, or check its "
                "cable and light. Cups are checked once it shows the tray."
            )
            self.view.detail.setText("")
            return
        if self.camera_size_problem or move is None or not move.moved:
            size = f"{self.camera_size[0]}×{self.camera_size[1]}" if self.camera_size else "another size"
            if self._frame is None:  # back from a loss, no frame yet: the size it delivered before
                said = f"The camera delivers frames of another size than the {size} it was set up at: set it back"
            else:
                h, w = self._frame.image.shape[:2]
                said = f"The camera delivers {w}×{h} pixels but was set up at {size}: set it back"
        else:
            said = f"The camera has moved since it was set up ({move.describe()}): put it back where it was"
        self.view.reason.setText(f"{said}, or have it calibrated again. Cups are checked once it is.")
        self.view.detail.setText("")

    @property
    def _can_check(self) -> bool:
        return not self._camera_lost and not self._camera_off

    @property
    def camera_problem(self) -> str:
        """Why the live frames cannot be judged as the station was set up (every cup would be flagged, or sent to a
        supervisor for coins nobody could see): a black picture (a covered lens, a dead camera), another size
        (:attr:`camera_size_problem`), or a camera moved since it was set up; ``""`` when none."""
        if self._dark:
            return DARK_PROBLEM
        size = self.camera_size_problem
        if size or self._camera_move is None or not self._camera_move.moved:
            return size
        return f"moved since set-up ({self._camera_move.describe()}): put it back or calibrate again"

    def low_disk_note(self) -> str:
        """``"disk: 1.2 GB free, run cupcheck prune"`` when the station home's disk has less than
        :attr:`low_disk_bytes` free, else ``""``."""
        if self._home is None:
            return ""
        try:
            free = shutil.disk_usage(self._home).free
        except OSError:
            return ""
        return f"disk: {free / 1e9:.1f} GB free, run cupcheck prune" if free < self.low_disk_bytes else ""

    @property
    def camera_size_problem(self) -> str:
        """``"640×480, set up at 1280×720: calibrate again"`` while the live frames are not of the size the camera was
        calibrated at (every cup is then flagged), else ``""``."""
        if self._frame is None or self.camera_size is None:
            return ""
        h, w = self._frame.image.shape[:2]
        cw, ch = self.camera_size
        return "" if (w, h) == (cw, ch) else f"{w}×{h}, set up at {cw}×{ch}: calibrate again"

    @property
    def frame(self) -> Frame | None:
        """The newest frame shown, ``None`` while the camera is lost."""
        return self._frame

    @property
    def camera_is_lost(self) -> bool:
        """Whether the camera is currently lost."""
        return self._camera_lost

    # -- checking ---------------------------------------------------------------------------------------------

    @Slot()
    def check(self, auto: bool = False) -> bool:
        """Check the cup in view (Space, or ``auto`` from the stillness gate); return whether a check started.

        While nobody is signed in, Space asks for a sign-in (:attr:`sign_in_requested`) and the stillness gate
        checks nothing."""
        if self.busy:
            return False
        if self.operator is None:
            if not auto:
                self.sign_in_requested.emit()
            return False
        if self.expected_type is None:
            self._refuse("Choose the order first (scan it or pick the type from the list).")
            return False
        if self._frame is None:
            self._refuse("No camera image: wait for the camera, then press Space again.")
            return False
        if self._camera_off:
            self._show_camera_hold()
            return False
        if self._recheck is not None and self._recheck.why is RecheckWhy.TURNED and not self._watch.changed:
            # a second press on the photograph just flagged would spend the cup's one turn on nothing turned
            self.view.reason.setText(
                "Nothing has moved since the cup was flagged: turn over the coins it names (↻ below), then press "
                "Space to check it again."
            )
            return False
        if self._recheck is None and self._standing_in_view():
            # the same cup for the same order, as it lay when checked: logging it again would count it twice
            if not auto:
                self._show_standing_again()
            return False
        self.busy = True
        self._consume_gate()  # this view is checked now: the gate waits for the next cup
        self._active_at = self._clock()
        self.view.check_button.setEnabled(False)
        self.view.new_cup_button.setEnabled(False)
        self._show_banner("CHECKING…", IDLE_HEX)
        self.view.reason.setText("Hold the cup still." + (RECHECKING_TEXT[self._recheck.why] if self._recheck else ""))
        self.check_requested.emit(
            CheckRequest(
                self._frame,
                self.expected_type,
                self.order,
                self.operator,
                self.station,
                auto,
                self._recheck,
                expected_count=self.order_count,
            )
        )
        return True

    def _standing_in_view(self) -> bool:
        """Whether the cup in view was checked already for the order in hand, and that verdict is on record (or on
        its way there): nothing has changed in view since its photograph, though a hand may have passed over it."""
        if self._standing is None:
            return False
        req = self._standing[0].request
        ours = (req.expected_type, req.order, req.expected_count) == (self.expected_type, self.order, self.order_count)
        return ours and self._view_unchanged()

    def _show_standing_again(self) -> None:
        """Show again the verdict of the cup in view, checked already for the order in hand, and its outlines (a
        second Space, or a hand that passed over it, changed nothing to check)."""
        if not self._standing_in_view() or self._standing is None:
            return
        result, summary = self._standing
        self._show_banner(summary.headline, summary.colour)
        self._verdict_up = True
        self._watch.mark(result.request.frame.image)  # a hand that passed made the view "changed": it is not
        self._overlay_until = self._clock() + OVERLAY_HOLD_S
        self.view.reason.setText(ALREADY_TEXT + summary.reason)
        self.view.detail.setText(summary.detail)

    # -- who is checking ---------------------------------------------------------------------------------------

    def _clear_choice(self) -> None:
        """No order or type is chosen: checks wait for one, and any pending re-check is dropped."""
        self.expected_type = None
        self.order = None
        self.order_count = None
        self._arm_recheck(None)
        lst = self.view.type_list
        lst.blockSignals(True)
        lst.setCurrentRow(-1)  # picking the same type again chooses it again
        lst.blockSignals(False)
        self.view.expected_label.setText("—")
        self.view.reference_obverse.set_image(None)
        self.view.reference_reverse.set_image(None)

    @property
    def signed_in(self) -> bool:
        """Whether someone is signed in (checks are recorded under :attr:`operator`)."""
        return self.operator is not None

    def sign_out(self, message: str = "Signed out.") -> None:
        """Nobody is checking now: the order and any pending re-check are dropped, and checks wait for a sign-in.

        A check already running is recorded under the name it was started with."""
        self.operator = None
        self._clear_choice()
        self.view.order_status.setText("")
        self.view.station_label.setText(f"Station {self.station} · signed out")
        self.view.sign_out_button.setText(SIGN_IN_TEXT)
        if not self.busy:
            self._show_banner("SIGN IN", IDLE_HEX)
            self.view.reason.setText(f"{message} Press F2 or Space to sign in.")
            self.view.detail.setText("")

    def sign_in_as(self, name: str) -> None:
        """``name`` checks the next cups; another person's session count starts from zero (the same person's,
        back from an idle sign-out, goes on)."""
        if name != self._counted_for:
            self._cups.clear()
            self._counted_for = name
            self.view.session_label.setText("No cups checked yet")
        self.operator = name
        self._active_at = self._clock()
        self.view.station_label.setText(f"Station {self.station} · {name}")
        self.view.sign_out_button.setText(SIGN_OUT_TEXT)
        if not self.busy and self._show_ready(f"Signed in as {name}: scan the order or pick the type."):
            self.view.detail.setText("")

    @Slot()
    def idle_tick(self) -> bool:
        """Sign out once :attr:`sign_out_after_s` has passed without a check or an order; return whether it did."""
        if self.operator is None or self.sign_out_after_s <= 0 or self.busy:
            return False
        idle = self._clock() - self._active_at
        if idle < self.sign_out_after_s:
            return False
        minutes = self.sign_out_after_s / 60
        self.sign_out(f"Signed out after {minutes:g} minute{'s' if minutes != 1 else ''} without a check.")
        return True

    @property
    def counts(self) -> dict[Decision, int]:
        """Cups checked this session by their standing decision: a re-check's verdict replaces its cup's first."""
        tally = dict.fromkeys(Decision, 0)
        for decision in self._cups.values():
            tally[decision] += 1
        return tally

    @property
    def recheck(self) -> Recheck | None:
        """The flagged check the next one follows up (its coins were to be turned over, or it was flagged for the
        camera alone), ``None`` for a new cup."""
        return self._recheck

    @Slot()
    def new_cup(self) -> None:
        """The flagged cup is not being checked again (Esc): the next check is a new cup's."""
        if self._recheck is None or self.busy:
            return
        self._arm_recheck(None)
        if self._show_ready(
            "Put the flagged cup aside for a supervisor. Put the next cup under the camera and press Space."
        ):
            self.view.detail.setText("")

    def _arm_recheck(self, recheck: Recheck | None) -> None:
        self._recheck = recheck
        self.view.check_button.setText(CHECK_TEXT if recheck is None else RECHECK_TEXT[recheck.why])
        self.view.new_cup_button.setVisible(recheck is not None)
        self.view.new_cup_button.setEnabled(True)

    @Slot()
    def take_empty_tray(self) -> bool:
        """Ask the worker to keep the frame in view as the empty tray; return whether it was asked."""
        if self._home is None or self.busy:
            return False
        if self._frame is None or self._camera_lost:
            self._refuse("No camera image: wait for the camera, then photograph the empty tray again.")
            return False
        if self._camera_off:  # a photo now would be refused, or would hide that the camera is not as set up
            self._show_camera_hold()
            return False
        self.busy = self._tray_asked = True
        self._consume_gate()  # the empty tray is in view: nothing to check until something is put down
        self.view.check_button.setEnabled(False)
        self.view.empty_tray_button.setEnabled(False)
        self._show_banner("EMPTY TRAY…", IDLE_HEX)
        self.view.reason.setText("Looking for anything left on the tray.")
        self.empty_tray_requested.emit(EmptyTrayRequest(self._frame, self._home))
        return True

    @Slot(bool, str, object)
    def show_empty_tray(self, ok: bool, message: str, camera_size: tuple[int, int] | None = None) -> None:
        """Show the answer to :meth:`take_empty_tray`; ``camera_size`` is the size the pipeline now says the camera
        was set up at (a station never calibrated takes it from the new photo: frames of another size are then told
        as they are at a calibrated one)."""
        self.busy = self._tray_asked = False
        if ok:  # the view is compared with the new photo from now on, and its size is the station's
            self.camera_size = camera_size
            self.show_camera_move(None)
        self.view.check_button.setEnabled(self._can_check)
        self._enable_empty_tray()
        said = brief(message)
        # READY, or a refusal's "—", only while nothing holds the checks: a camera lost or knocked meanwhile keeps
        # its hold on the banner, and the answer goes under it
        shown = self._show_ready(said) if ok else not self._show_hold()
        if not ok and shown:
            self._show_banner("—", IDLE_HEX)
            self.view.reason.setText(said)
        if not shown:
            self.view.detail.setText(said)
        self.empty_tray_shown.emit(ok, message)

    def _enable_empty_tray(self) -> None:
        """The empty tray can be photographed while the camera delivers as it was set up (else the photo would be
        refused, or would hide what is wrong with the camera) and no photo is with the worker."""
        self.view.empty_tray_button.setEnabled(self._can_check and not self._tray_asked)

    def hold(self, state: str, message: str) -> bool:
        """Check no cup while the station does something else (``state`` on the banner, ``message`` below it):
        Space and the stillness gate wait until :meth:`release`; return whether the hold was taken."""
        if self.busy:
            return False
        self.busy = True
        self.view.check_button.setEnabled(False)
        self._show_banner(state, IDLE_HEX)
        self.view.reason.setText(message)
        return True

    def release(self, message: str = "") -> None:
        """End a :meth:`hold`: cups are checked again (the time held counts as work, not as idle time)."""
        self.busy = False
        self._active_at = self._clock()
        self._consume_gate()  # what the hold left on the tray (an enrolment's coins) is not a cup to check
        self.view.check_button.setEnabled(self._can_check)
        if self.operator is None:
            self._show_banner("SIGN IN", IDLE_HEX)
            self.view.reason.setText(f"{message} Press F2 or Space to sign in.")
        elif not self._show_ready(brief(message)) and message:  # the camera's hold says what to do first
            self.view.detail.setText(brief(message))

    def _show_ready(self, reason: str) -> bool:
        """Show READY with ``reason`` under it, or, while the camera is lost or not as it was set up, what holds the
        checks instead (READY would invite a Space that does nothing); return whether READY was shown."""
        if self._show_hold():
            return False
        self._show_banner("READY", IDLE_HEX)
        self.view.reason.setText(reason)
        return True

    def _show_hold(self) -> bool:
        """Show what holds the checks while the camera is lost (NO CAM) or not as it was set up (CAMERA); return
        whether it did (``False``: nothing holds them)."""
        if self._camera_lost:
            self._show_no_camera()
            return True
        if self._camera_off:
            self._show_camera_hold()
            return True
        return False

    def _refuse(self, message: str) -> None:
        """Say why nothing was done (``message``, under the banner); the banner says "—", except while the camera
        is lost (NO CAM) or not as it was set up (CAMERA): that hold stays up until it ends."""
        self.view.reason.setText(message)
        if not self._camera_lost and not self._camera_off:
            self._show_banner("—", IDLE_HEX)

    @Slot(object)
    def show_verdict(self, result: CheckResult) -> None:
        """Show a verdict: banner, reason, numbers, outlines, coin thumbnails, sound. The next cup waits for this
        one's write (:meth:`show_store`): a verdict that could not be saved is said of this cup, not of the next."""
        self._saving = result.request.key
        self._last = result
        self._overlay_until = self._clock() + OVERLAY_HOLD_S
        verdict = result.verdict
        answered = result.answered
        summary = summarise(
            verdict, turned=result.turned, camera_back=answered is not None and answered.why is RecheckWhy.CAMERA
        )
        # one turn per cup: a turn-first FLAG makes the next check this cup's re-check; a FLAG after the turn goes
        # to a supervisor. A FLAG for the camera alone is answered by the check made once the camera is back. A
        # photograph with another coin count is a new cup (CheckResult.is_recheck). An order chosen, or another
        # person signed in, while the cup was checked: the next cup is theirs, a new one.
        req = result.request
        same_hands = (req.expected_type, req.order, req.operator) == (self.expected_type, self.order, self.operator)
        self._arm_recheck(result.follow_up() if same_hands else None)
        self._watch.mark(req.frame.image)  # the view this verdict is about
        self._standing = (result, summary) if same_hands else None
        if same_hands:
            self._show_banner(summary.headline, summary.colour)
            self._verdict_up = True
            self.view.reason.setText(summary.reason)
            self.view.detail.setText(summary.detail)
        else:  # never the answer for the order now in hand: said of its own order and type
            self._show_for_another_order(result, summary)
        self._show_model_label(verdict.model_version)
        self._show_thumbnails(result.request.frame, verdict, turned=result.turned)
        if self._camera_lost:  # the cup was photographed before: the preview keeps saying the camera is lost
            self.view.detail.setText("The camera has stopped since; cups are checked again once it is back.")
        else:
            self.view.preview.set_image(draw_evidence(result.request.frame.image, verdict))
        if req.operator == self._counted_for:  # a cup checked for the person signed in before is not this session's
            if result.answers is not None:  # the same cup checked again: its newest check stands for it
                self._cups.pop(result.answers, None)
            self._cups[req.key] = verdict.decision
            self._show_session()
        self._sound.play(verdict.decision)
        swapped = self._frame is not None and self._watch.update(self._frame.image)  # the cup was swapped meanwhile
        if swapped and self._verdict_up:
            self._verdict_moved()
        self.verdict_shown.emit(result)

    def _show_for_another_order(self, result: CheckResult, summary: Summary) -> None:
        """Show the verdict of a cup checked for another order or type than the one in hand now (scanned, picked
        or signed out while the cup was checked): the banner is the order in hand's, waiting for its own cup, and
        the reason says what the cup just checked, named by its order and type, came to and what to do with it.
        Its thumbnails and outlines still show, as the coins of the last check."""
        req, verdict = result.request, result.verdict
        checked = whose(req.order, req.expected_type)
        if verdict.decision is Decision.PASS:
            said = f"The cup checked for {checked} passed."
        else:
            # the finding without its advice (" — turn them over"): that advice was for the cup checked again
            first = verdict.reasons[0].partition(" — ")[0].rstrip(".") if verdict.reasons else "not sure enough"
            todo = (
                "Correct the count, then scan its order again and check it."
                if verdict.count_is_wrong
                else "Put it aside for a supervisor."
            )
            said = f"The cup checked for {checked} was flagged: {first}. {todo}"
        colour = IDLE_HEX
        if self.operator is None:
            state, now = "SIGN IN", "Press F2 or Space to sign in."
        elif self._camera_lost:
            state, colour, now = "NO CAM", FLAG_HEX, "Cups can be checked again once the camera is back."
        elif self._camera_off:
            state, colour = "CAMERA", FLAG_HEX
            now = "Cups are checked again once the camera is put right (the status bar says how)."
        elif self.expected_type is None:
            state, now = "—", "Scan the next order, or pick the type from the list."
        else:
            state = "READY"
            now = f"Now {whose(self.order, self.expected_type)}: put its cup under the camera and press Space."
        self._show_banner(state, colour)
        self.view.reason.setText(f"{said} {now}")
        self.view.detail.setText(f"{summary.headline} for {checked}: {summary.detail}")

    def _show_session(self) -> None:
        n, flagged = len(self._cups), self.counts[Decision.FLAG]
        self.view.session_label.setText(f"{n} cup{'s' if n != 1 else ''} checked · {flagged} flagged")

    @Slot(str)
    def show_model(self, version: str) -> None:
        """Another model was put in force (the registry's, loaded between cups): the next cups are judged by it."""
        self._model_problem = self._model_detail = ""
        self._show_model_label(version, "now in force")

    @Slot(object)
    def show_order_history(self, answer: OrderAnswer) -> None:
        """Say that the order in hand passed before (a second cup for a filled order?), or that nobody could tell
        (the verdict log could not be read, and the station's own journal holds no PASS of it); an answer about an
        order no longer in hand, or one that never passed, changes nothing. Said again, it replaces what was said."""
        order = answer.order
        if order != self.order:
            return
        said = answer.words()
        if said:
            told = f"Order {order} {said}. Another cup for it? If not, scan the right order."
        elif answer.unread:
            said = f"could not check whether it passed before: {answer.unread}"
            told = (
                f"Could not check whether order {order} passed before ({answer.unread}): make sure it has not been "
                "filled already."
            )
            if answer.unread == DATABASE_AWAY and self.view.db_label.text() == NOT_USED_YET:  # the first word of it
                self.view.db_label.setText("Database: away")
                self.view.db_label.setStyleSheet(f"color: {FLAG_HEX}; font-weight: bold;")
        else:
            return
        self.view.order_status.setText(f"{self._order_words()}, {said}")
        self.view.order_status.setStyleSheet(f"color: {FLAG_HEX}; font-weight: bold;")
        if not self.busy:
            self.view.reason.setText(told)

    @Slot(object)
    def use_setup(self, loaded: Loaded) -> None:
        """Use the catalogue, orders and camera size loaded again (a type enrolled, a new ``orders.csv``, the camera
        calibrated again) from the next choice on; the type chosen stays chosen while it is still enrolled."""
        if loaded.catalog is not None:
            self.catalog = loaded.catalog
            if self.expected_type is not None and self.expected_type not in loaded.catalog:
                self._drop_unenrolled()
            self.filter_types(self.view.type_filter.text())
        if loaded.orders is not None:
            self.orders = loaded.orders
        self.show_orders_problem(loaded.orders_error)
        if loaded.pipeline is not None:  # a pipeline built again: the camera may have been calibrated again
            self.camera_size = loaded.camera_size
            # the last comparison with the set-up photo stands (a knocked camera stays held) until the new
            # pipeline's set-up view answers the next look, about a second from now (show_camera_move)
            if not self._camera_lost:
                self._show_camera_label()

    def _drop_unenrolled(self) -> None:
        """The type in hand is no longer enrolled (the gallery was built again without it): no cup can be judged
        against it, so the choice goes and the operator is asked for another order."""
        type_id, order = self.expected_type, self.order
        _log.warning("%s is no longer enrolled: the order in hand (%s) is dropped", type_id, order or "none")
        self._clear_choice()
        said = (
            f"{type_id} is no longer enrolled" if order is None else f"Order {order}'s {type_id} is no longer enrolled"
        )
        self.view.order_status.setText(said)
        self.view.order_status.setStyleSheet(f"color: {FLAG_HEX}; font-weight: bold;")
        if not self.busy:  # (a check under way: its verdict is said of its own order)
            self._refuse(f"{said} (the gallery was changed): scan another order, or pick a type from the list.")
            self.view.detail.setText("")

    def show_orders_problem(self, error: str) -> None:
        """``orders.csv`` cannot be read (``error`` says why; ``""``: it can again): orders already read stay in use,
        and the order box says to pick the type from the list until it is put right."""
        if error == self._orders_error:
            return
        self._orders_error = error
        edit = self.view.order_edit
        if error:
            _log.warning("%s cannot be read (%s); the orders read before stay in use", ORDERS_FILE, error)
        unread = f"{ORDERS_FILE} cannot be read: pick the type from the list"
        edit.setPlaceholderText(unread if error else self._order_hint)
        edit.setToolTip(error)
        if self.expected_type is None:
            status = self.view.order_status
            status.setText(f"{ORDERS_FILE} cannot be read: {error}" if error else "No type chosen yet.")
            status.setStyleSheet(f"color: {FLAG_HEX}; font-weight: bold;" if error else "color: #aab0b8;")

    @Slot(str, str)
    def show_model_problem(self, message: str, detail: str = "") -> None:
        """The model put in force could not be loaded, or the registry read: say so (``detail``, the error, in the
        tooltip) until another model is, or until ``""`` says all is well again."""
        self._model_problem = message
        self._model_detail = detail
        self._show_model_label(self.model_version_shown or "—")

    @property
    def model_version_shown(self) -> str:
        """The model version the status bar names."""
        return str(self.view.model_label.property("version") or "")

    def _show_model_label(self, version: str, note: str = "") -> None:
        label = self.view.model_label
        label.setProperty("version", version)
        # a problem's sentence names the model that stays in force, and comes first where room is short
        text = self._model_problem or " · ".join(t for t in (f"Model {version}", note) if t)
        label.setText(text)
        if self._model_problem and self._model_detail:
            label.setToolTip(f"{text}\n{self._model_detail}")
        label.setStyleSheet(f"color: {FLAG_HEX}; font-weight: bold;" if self._model_problem else "")

    def _show_thumbnails(self, frame: Frame, verdict: Verdict, *, turned: bool = False) -> None:
        self.view.thumbs.clear()
        for coin in verdict.coins:
            crop = cut_thumbnail(frame.image, coin.bbox)
            top = coin.matches[0] if coin.matches else None
            marked = not coin_ok(coin, verdict.expected_type)
            caption = f"#{coin.index + 1} " + (f"{top.type_id} {top.score:.2f}" if top else "no match")
            if coin.shared and verdict.turn_first and not turned:  # a shared side: turning it settles the cup
                caption = f"↻ #{coin.index + 1} turn over"
            elif coin.shared:  # on a shared side, and the cup goes to a supervisor as it lies (or was turned)
                caption = f"⚠ #{coin.index + 1} shared side"
            elif coin.partial:  # what a sliver matches says little: the reasons call it cut
                caption = f"⚠ #{coin.index + 1} cut off"
            elif marked:
                caption = "⚠ " + caption
            self.view.thumbs.add(Thumbnail(crop, caption, marked, size=self.view.thumb_px))

    @Slot(object)
    def nothing_seen(self, _request: CheckRequest) -> None:
        """An automatic check found an empty table: back to waiting. A cup waiting to be checked again (after
        turning, or with the camera back) was taken away, so the next cup is a new one (its FLAG stays for a
        supervisor). A camera lost or knocked while the table was checked holds the next check: the window says
        so, as its hold waited for this answer to."""
        self.busy = False
        self.view.check_button.setEnabled(self._can_check)
        taken_away = "The flagged cup was taken away: put it aside for a supervisor." if self._recheck else ""
        self._arm_recheck(None)
        if self._show_ready(" ".join(t for t in (taken_away, "Put the cup under the camera and press Space.") if t)):
            return
        self.view.detail.setText(taken_away)  # under the camera's hold, which comes first

    @Slot(str)
    def show_failure(self, message: str) -> None:
        """The pipeline failed: say so and let the operator try again. A camera lost or knocked while the cup was
        checked holds the next check: its hold takes the banner, the failure the line under it (the hold waited
        for this answer to be said)."""
        self.busy = False
        self.view.check_button.setEnabled(self._can_check)
        self.view.new_cup_button.setEnabled(True)
        failed = f"The check failed: {brief(message)}."
        if self._show_hold():
            self.view.detail.setText(f"{failed} Check the cup again once the camera is back.")
            return
        self._show_banner("ERROR", FLAG_HEX)
        self.view.reason.setText(f"{failed} Press Space to try again; call a supervisor if it repeats.")

    @Slot(object)
    def show_store(self, result: StoreResult) -> None:
        """Show the database state after a write; the write of the verdict shown ends the check."""
        saved = self._saving
        if saved is not None:
            self._saving = None
            self.busy = False
            self.view.check_button.setEnabled(self._can_check)
            if result.state is DbState.ERROR:  # on no record: not checked, and nothing to check again
                if self._standing is not None and self._standing[0].request.key == saved:
                    self._standing = None  # Space checks it again: it is on no record
                self._cups.pop(saved, None)
                self._show_session()
                self._arm_recheck(None)
        if result.state is DbState.CONNECTED:
            text, style = "Database: connected", ""
        elif result.state is DbState.SPOOLING:
            n = result.pending
            waiting = f"{n} verdict{'s' if n != 1 else ''} waiting"
            away = result.message == IMAGE_SHARE  # the shared image folder is not mounted
            text = f"Image share away: {waiting}" if away else f"Database: spooling, {waiting}"
            style = f"color: {FLAG_HEX}; font-weight: bold;"
        else:
            text, style = f"Database: ERROR ({result.message})", f"color: {FLAG_HEX}; font-weight: bold;"
            # a cup whose verdict is on no record must not leave: its PASS or FLAG is replaced
            self._show_banner(NOT_SAVED, FLAG_HEX)
            self.view.reason.setText(
                f"This verdict could not be saved ({brief(result.message)}). Put the cup aside and call a supervisor."
            )
        low = self.low_disk_note()
        if low:
            text, style = f"{text} · {low}", f"color: {FLAG_HEX}; font-weight: bold;"
        self.view.db_label.setText(text)
        self.view.db_label.setStyleSheet(style)
        self.store_shown.emit(result)
