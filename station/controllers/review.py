"""The supervisor window's logic: the review queue, one cup's evidence, and one-key rulings written with ``relabel``.

Every ruling goes through :meth:`db.repository.VerdictRepository.relabel`, which refuses anyone but an active
supervisor and writes the label and its audit row in one transaction. Nothing here touches the database on the GUI
thread: reads (the queue, a cup's coins, photographs and audit trail, and on F5 the model in force and the enrolled
types, which may lie on a site's shared folder) go to one background thread and writes (rulings, enrolments) to
another, so a site database or share that is slow or away never freezes the window, and a long enrolment never
holds up the queue. A read's answer that a later click has made stale is dropped.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QListWidgetItem

from db.records import AuditEntry, ReviewItem, StoredCoin
from db.repository import ANY_RULING, PRUNED_REF, WITHDRAWN, AnyRuling, RulingChanged
from db.spool import UNREACHABLE_ERRORS
from models.gallery import Gallery
from models.reasons import only_the_camera
from models.registry import SuspectLabels
from models.types import Decision, UInt8Array
from station.controllers.catalog import TypeCatalog
from station.controllers.enrol import Enrolment, EnrolResult, enrol_folder
from station.controllers.overlay import draw_coins, needs, score_of
from station.views.review import ReviewView
from station.views.widgets import Thumbnail
from station.worker import BackgroundCall, LatestReads, cut_thumbnail, decode

CUP_ROLE = Qt.ItemDataRole.UserRole
QUEUE_LIMIT = 100
BEFORE_TEXT = "Show the cup before its coins were turned  [B]"
BEFORE_SHOWN = "Showing cup {cup}, before its coins were turned: back to the re-check  [B]"
CAMERA_BEFORE_TEXT = "Show the first check, taken with the camera moved  [B]"
CAMERA_BEFORE_SHOWN = "Showing cup {cup}, taken with the camera moved: back to the re-check  [B]"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ruling:
    """What a ruling in flight was about, to report it when the database answers: the cup, the coin (``None``: the
    whole cup), in words (``target``, ``value``), and whether it withdraws the coin's own ruling (R)."""

    cup_id: int
    target: str
    value: str
    coin_index: int | None = None
    withdrawn: bool = False


@dataclass(frozen=True)
class Rulings:
    """The rulings in force on one cup as the window last read them: each label's id by coin index (``None``: the
    whole cup). A ruling passes the one it replaces back to the database, which refuses it when someone else has
    ruled since (:class:`db.repository.RulingChanged`)."""

    cup_id: int
    labels: Mapping[int | None, int]


@dataclass(frozen=True)
class EnrolJob:
    """An enrolment in flight."""

    folder: Path


@dataclass(frozen=True)
class QueueRead:
    """A read of the review queue (or of the cups of ``order``) in flight; ``ticket`` tells the newest one."""

    ticket: int
    order: str | None


@dataclass(frozen=True)
class CupRead:
    """A read of the selected cup ``shown``'s evidence in flight: the coins and photograph of ``cup_id`` (the cup
    itself, or the check a re-check answers: ``before``), with the coins' thumbnails and the audit trail when
    ``whole`` (the cup was just chosen; B changes the photograph alone); ``ticket`` tells the newest."""

    ticket: int
    shown: int
    cup_id: int
    before: bool
    whole: bool


@dataclass(frozen=True)
class AuditRead:
    """A read of one cup's audit trail and rulings in force in flight (after a ruling, or one refused as stale)."""

    ticket: int
    cup_id: int


@dataclass(frozen=True)
class Enrolled:
    """An enrolment's report, and the enrolled types read again after it (on the same background thread)."""

    result: EnrolResult
    catalog: TypeCatalog | None
    """``None``: the gallery could not be read back (the enrolment stands; F5 reads it again)."""


@dataclass(frozen=True)
class ReloadRead:
    """F5's read of what may have changed on another PC in flight: the model in force and the enrolled types."""

    ticket: int


@dataclass(frozen=True)
class Reloaded:
    """What F5 read: the model in force described in lines and its suspected rulings (``lines`` ``None``: the
    model is not followed), and the enrolled types (``None``: no gallery to read)."""

    lines: tuple[str, ...] | None
    suspects: SuspectLabels | None
    catalog: TypeCatalog | None


InForce = Callable[[], tuple[Sequence[str], SuspectLabels | None]]
"""Reads the model in force (described in lines) and the rulings its retrain suspects."""


@dataclass(frozen=True)
class CupEvidence:
    """What the window shows of one logged cup, read off the GUI thread: its coins, its photograph (``None``:
    none stored, pruned or unreadable), and for a whole read each coin's thumbnail (``None``: none to show), the
    audit trail and the rulings in force (else all empty)."""

    coins: tuple[StoredCoin, ...]
    photo: UInt8Array | None
    thumbs: tuple[UInt8Array | None, ...]
    trail: tuple[AuditEntry, ...]
    in_force: Mapping[int | None, int]


@dataclass(frozen=True)
class CupRulings:
    """One cup's audit trail and rulings in force, read again after a ruling (or a ruling refused as stale)."""

    trail: tuple[AuditEntry, ...]
    in_force: Mapping[int | None, int]


class ReviewRepository(Protocol):
    """The verdict log's review verbs (``db.repository.VerdictRepository`` fits)."""

    def review_queue(
        self,
        limit: int = 20,
        station: str | None = None,
        *,
        audit_share: float = 0.0,
        suspects: Collection[int] = (),
        suspects_since: datetime | None = None,
        order: str | None = None,
    ) -> list[ReviewItem]:
        """Cups worth a person's time, PASSes drawn for audit and the most informative first (or, given ``order``,
        every cup of that order, newest first)."""
        ...

    def cup_coins(self, cup_id: int) -> list[StoredCoin]:
        """A cup's logged coins in the detector's order."""
        ...

    def read_blob(self, ref: str) -> bytes:
        """A stored image's bytes."""
        ...

    def relabel(
        self,
        actor: str,
        cup_id: int,
        kind: str,
        *,
        coin_index: int | None = None,
        corrected_type: str | None = None,
        note: str = "",
        expected_label: int | AnyRuling | None = ANY_RULING,
    ) -> int:
        """Record a ruling; return the label id (refused when ``expected_label`` is no longer in force)."""
        ...

    def withdraw_ruling(
        self,
        actor: str,
        cup_id: int,
        *,
        coin_index: int | None = None,
        note: str = "",
        expected_label: int | AnyRuling | None = ANY_RULING,
    ) -> int:
        """Withdraw a coin's own ruling (its cup's ruling speaks for it again); return the withdrawn label's id."""
        ...

    def rulings_in_force(self, cup_id: int) -> dict[int | None, int]:
        """The id of each label in force on the cup, by coin index (``None``: the whole cup)."""
        ...

    def audit_trail(self, cup_id: int | None = None) -> list[AuditEntry]:
        """The relabel history."""
        ...

    def check_supervisor(self, name: str, doing: str) -> None:
        """Refuse ``doing`` (raise) unless ``name`` is an active supervisor now."""
        ...


class ReviewController(QObject):
    """Drives a :class:`~station.views.review.ReviewView` for one signed-in supervisor.

    Args:
        view: the window's widgets.
        repository: the verdict log.
        supervisor: the supervisor's registered name (``relabel`` checks the role again).
        catalog: the enrolled types, for the corrected-type box.
        station: only this station's cups, ``None`` for all.
        enrolment: where and with which embedder to enrol new types (``None``: no enrolment here).
        audit_share: the share of PASSes drawn for a person to check (shown first, marked ``AUDIT``).
        suspects: the rulings cleanlab suspects at the newest retrain (shown first, marked ``SUSPECT``), ``None``.

    After a ruling on a whole cup (C, T) the next cup nobody has ruled on is shown, so a queue is worked through one
    key a cup; after a ruling on one coin (N, D) the cup stays, for its other coins.

    Each ruling names the ruling it replaces, as the window read it with the cup (:class:`Rulings`): when another
    supervisor has ruled on the same cup or coin meanwhile, the database refuses it, the status bar says who ruled
    what, and the cup is read again, so that ruling once more replaces theirs knowingly.

    Rulings are written through :attr:`call_requested` (connect it to a :class:`~station.worker.BackgroundWorker` in its
    own thread, and its ``finished`` / ``failed`` to :meth:`background_done` / :meth:`background_failed`); without a
    connection nothing is written. Enrolments go the same way. Reads go through :attr:`read_requested` (connect it
    to a second worker, and its ``finished`` / ``failed`` to :meth:`read_done` / :meth:`read_failed`); nothing is
    read before the first :meth:`refresh`, which the window calls once they are connected.

    Signals:
        call_requested(BackgroundCall): a ruling to write off the GUI thread.
        read_requested(BackgroundCall): a read to make off the GUI thread.
        relabelled(int): a ruling was written (the new label's id) or withdrawn (the withdrawn label's id).
        refused(str): a ruling was refused; the reason.
        enrolled(EnrolResult): an enrolment finished.
        enrol_ended(): an enrolment finished or failed (:attr:`enrolling` is ``None`` again).
        shown(int): the queue (``0``) or a cup's evidence (its cup id) was read and drawn.
    """

    call_requested = Signal(object)
    read_requested = Signal(object)
    relabelled = Signal(int)
    refused = Signal(str)
    enrolled = Signal(object)
    enrol_ended = Signal()
    shown = Signal(int)

    def __init__(
        self,
        view: ReviewView,
        repository: ReviewRepository,
        *,
        supervisor: str,
        catalog: TypeCatalog,
        station: str | None = None,
        enrolment: Enrolment | None = None,
        audit_share: float = 0.0,
        suspects: SuspectLabels | None = None,
    ) -> None:
        super().__init__()
        self.view = view
        self.repository = repository
        self.supervisor = supervisor
        self._station = station
        self._audit_share = audit_share
        self._suspects = suspects
        self._enrolment = enrolment
        self.items: dict[int, ReviewItem] = {}
        self.current: ReviewItem | None = None
        self.set_catalog(catalog)
        view.enrol_button.setEnabled(enrolment is not None)
        view.enrol_button.clicked.connect(self.enrol)
        view.gallery_label.setText(f"Gallery: {len(catalog)} types")
        completer = view.type_combo.completer()
        if completer is not None:
            completer.setFilterMode(Qt.MatchFlag.MatchContains)
            completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        view.queue.currentItemChanged.connect(self._queue_clicked)
        view.confirm_button.clicked.connect(self.confirm)
        view.correct_button.clicked.connect(self.correct)
        view.not_coin_button.clicked.connect(self.not_a_coin)
        view.damaged_button.clicked.connect(self.damaged)
        view.coin_right_button.clicked.connect(self.coin_right)
        view.wrong_side_button.clicked.connect(self.wrong_side)
        view.coin_type_button.clicked.connect(self.coin_type)
        view.before_button.toggled.connect(self.show_before)
        view.order_find.returnPressed.connect(self.find_order)
        view.order_find.textChanged.connect(self._order_text_changed)
        self.order: str | None = None
        self._ruled: int | None = None  # a whole cup just ruled on: the queue then moves on to the next
        self._saved: str | None = None  # said first when the queue comes: a ruling just saved, a failed F5
        self.enrolling: Path | None = None  # the catalogue folder an enrolment in flight reads
        self.shown_cup: int | None = None
        self._rulings: Rulings | None = None  # the rulings in force on the selected cup, once read
        self._reads = LatestReads(self.read_requested.emit, (QueueRead, CupRead, AuditRead, ReloadRead))

    @property
    def reading(self) -> bool:
        """Whether a read is on its way (its answer not drawn yet)."""
        return self._reads.busy

    def set_catalog(self, catalog: TypeCatalog) -> None:
        """Offer ``catalog``'s types in the corrected-type box."""
        self.catalog = catalog
        combo = self.view.type_combo
        keep = combo.currentData()
        combo.clear()
        for t in catalog.types:
            combo.addItem(t.label, t.type_id)
        combo.setCurrentIndex(combo.findData(keep) if keep is not None else -1)

    # -- queue ------------------------------------------------------------------------------------------------

    @Slot()
    def set_suspects(self, suspects: SuspectLabels | None) -> None:
        """The rulings the newest retrain suspects (shown first from the next :meth:`refresh`)."""
        self._suspects = suspects

    def reload(self, follow: InForce | None = None) -> None:
        """F5: the model in force and its suspected rulings (when ``follow`` reads them), the types enrolled
        meanwhile (on another PC of a site, into a shared gallery), then the queue.

        The model registry and the gallery may lie on a shared folder: they are read off the GUI thread like the
        database, and the queue is read once their answer is drawn (it ranks the suspected rulings first).
        """
        gallery = None if self._enrolment is None else self._enrolment.gallery_dir

        def read() -> Reloaded:
            lines, suspects = follow() if follow is not None else (None, None)
            catalog = TypeCatalog.from_gallery(gallery) if gallery is not None and Gallery.exists(gallery) else None
            return Reloaded(None if lines is None else tuple(lines), suspects, catalog)

        self._reads.ask(ReloadRead(self._reads.ticket(ReloadRead)), read)

    def _reloaded(self, result: Reloaded) -> None:
        if result.lines is not None:
            self.view.model_label.setText("\n".join(result.lines))
            self.set_suspects(result.suspects)
        if result.catalog is not None:
            self.set_catalog(result.catalog)
            n = len(result.catalog)
            self.view.gallery_label.setText(f"Gallery: {n} type{'s' if n != 1 else ''}")
        self.refresh()

    @Slot()
    def find_order(self) -> None:
        """Enter in the find box: list every cup of the order in it, PASSes too (a customer says the order held a
        wrong coin), or the review queue again for an empty box; the focus goes back to the queue, where one key
        rules on the cup shown."""
        self._list_order()
        self.view.queue.setFocus()

    def _list_order(self) -> None:
        self.order = self.view.order_find.text().strip() or None
        self.refresh()

    def _order_text_changed(self, text: str) -> None:
        # emptied (its clear button, or erased): the review queue again; the focus stays, for an order typed next
        if not text.strip() and self.order is not None:
            self._list_order()

    @Slot()
    def refresh(self) -> None:
        """Reload the queue, keeping the selected cup when it is still there."""
        sus, repository = self._suspects, self.repository
        station, share, order = self._station, self._audit_share, self.order
        self._reads.ask(
            QueueRead(self._reads.ticket(QueueRead), order),
            lambda: repository.review_queue(
                QUEUE_LIMIT,
                station,
                audit_share=share,
                suspects=sus.cup_ids if sus else (),
                suspects_since=sus.since if sus else None,
                order=order,
            ),
        )

    def _show_queue(self, queue: list[ReviewItem], order: str | None) -> None:
        keep = self.current.cup_id if self.current is not None else None
        ruled, self._ruled = self._ruled, None
        saved, self._saved = self._saved, None
        self.items = {it.cup_id: it for it in queue}
        lst = self.view.queue
        lst.blockSignals(True)
        lst.clear()
        for it in queue:
            mark = "✓ " if it.labelled else ""
            why = "SUSPECT · " if it.suspect else ""  # a ruling cleanlab doubts: a second look
            why += "AUDIT · " if it.audit else ""  # a PASS drawn for a person to check
            why += "RE-CHECK · " if it.recheck_of is not None else ""  # checked again: coins turned, or camera back
            text = (
                f"{mark}{why}cup {it.cup_id} · {it.expected_type} · {it.decision.value.upper()}\n"
                f"   p {it.p_correct:.2f} · {it.n_coins} coins · score {it.score:.2f} · {it.station}"
            )
            item = QListWidgetItem(text)
            item.setData(CUP_ROLE, it.cup_id)
            if it.decision is Decision.FLAG and not it.labelled:
                item.setForeground(Qt.GlobalColor.yellow)
            lst.addItem(item)
            if it.cup_id == keep:
                lst.setCurrentItem(item)
        lst.blockSignals(False)
        self.view.show_queue_title(order, len(queue))
        where = "" if self._station is None else f" at {self._station}"
        if order is None:
            said = f"{len(queue)} cups in the queue"
        elif queue:
            said = f"Order {order}: {len(queue)} cup{'s' if len(queue) != 1 else ''} checked{where}, PASSes too"
        else:
            said = f"No cup of order {order} was checked{where}: empty the find box for the queue"
        # after a ruling on a whole cup, on to the next cup nobody has ruled on (the queue's order: the most useful)
        moving_on = ruled is not None and ruled == keep
        after = next((it for it in queue if not it.labelled and it.cup_id != ruled), None) if moving_on else None
        if saved is not None:
            said = saved + (f" · next: cup {after.cup_id}" if after is not None else f" · {said}")
        self.view.status.showMessage(f"{said} · signed in as {self.supervisor} (supervisor)")
        if after is not None:
            lst.setCurrentRow(queue.index(after))
        elif keep in self.items:
            self.current = self.items[keep]  # as read now (ruled on, say)
        else:
            self.current = None
            if queue:
                lst.setCurrentRow(0)
        self.shown.emit(0)

    def _queue_clicked(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.show_cup(int(current.data(CUP_ROLE)))

    def show_cup(self, cup_id: int) -> None:
        """Show one cup: its verdict and reasons at once (the queue holds them), then its photo, coins and audit
        trail once they are read. A ruling from now on is about this cup."""
        item = self.items[cup_id]
        self.current = item
        self._rulings = None  # read with its evidence: no ruling on it until then
        before = self.view.before_button
        before.blockSignals(True)
        before.setChecked(False)
        before.setText(_before_words(item)[0])
        before.blockSignals(False)
        before.setVisible(item.recheck_of is not None)
        self.view.summary.setText(
            f"<b>Cup {cup_id}</b>{_who(item)} — expected <b>{item.expected_type}</b>, station said "
            f"<b>{item.decision.value.upper()}</b> (p = {score_of(item.p_correct, item.threshold)}, "
            f"{needs(item.threshold, item.p_correct)}); "
            f"{item.mismatch_share:.0%} of {item.n_coins} coins matched another type best."
            + (f"<br>Why: {html.escape('; '.join(item.reasons))}" if item.reasons else "")
            + (
                f"<br><b>Its ruling looks wrong</b> to the model of the last retrain ({self._suspects.version}): "
                "rule on it again, or confirm it."
                if item.suspect and self._suspects is not None
                else ""
            )
            + (_recheck_words(item) if item.recheck_of is not None else "")
        )
        # the photograph numbers objects too: an object after the last coin must be reachable to be ruled on
        self.view.coin_spin.setMaximum(max(1, item.n_instances, item.n_coins))
        self.view.thumbs.clear()
        self.view.audit.clear()
        self._read_cup(item, before=False, whole=True)

    @Slot(bool)
    def show_before(self, checked: bool) -> None:
        """Show the photograph of the check the selected re-check answers (``checked``), or the re-check's own."""
        item = self.current
        if item is None or item.recheck_of is None:
            return
        self._read_cup(item, before=checked, whole=False)
        cup = _photo_of(item, checked)[0]
        text, shown = _before_words(item)
        self.view.before_button.setText(shown.format(cup=cup) if checked else text)

    def toggle_before(self) -> None:
        """Flip between a re-check's photograph and the one before its coins were turned (B)."""
        if self.view.before_button.isVisible():
            self.view.before_button.toggle()

    def _read_cup(self, item: ReviewItem, *, before: bool, whole: bool) -> None:
        """Read the selected ``item``'s evidence off the GUI thread (:class:`CupRead`); meanwhile the photo says so."""
        cup_id, ref = _photo_of(item, before)
        self.shown_cup = cup_id
        self.view.photo.show_text(f"Reading the photo of cup {cup_id}…")
        repository = self.repository

        def read() -> CupEvidence:
            coins = tuple(repository.cup_coins(cup_id))
            photo = _image(repository, ref)
            if not whole:
                return CupEvidence(coins, photo, (), (), {})
            thumbs = tuple(_thumb(repository, c, photo) for c in coins)
            trail = tuple(repository.audit_trail(cup_id))
            return CupEvidence(coins, photo, thumbs, trail, repository.rulings_in_force(cup_id))

        self._reads.ask(CupRead(self._reads.ticket(CupRead), item.cup_id, cup_id, before, whole), read)

    def _show_evidence(self, item: ReviewItem, tag: CupRead, evidence: CupEvidence) -> None:
        self._show_photo(item, evidence, before=tag.before)
        if tag.whole:
            for c, crop in zip(evidence.coins, evidence.thumbs, strict=True):
                if crop is None:
                    continue
                if c.top_type is None or c.top_score is None:
                    match = "no match"
                else:
                    side = f" {c.top_side.value[:3]}" if c.top_side is not None else ""
                    match = f"best: {c.top_type}{side} {c.top_score:.2f}"
                self.view.thumbs.add(Thumbnail(crop, f"#{c.index + 1} {match}", c.top_type != item.expected_type))
            self._show_trail(evidence.trail)
            self._rulings = Rulings(tag.shown, evidence.in_force)
        self.shown.emit(tag.shown)

    def _show_photo(self, item: ReviewItem, evidence: CupEvidence, *, before: bool) -> None:
        """Show the photograph read for ``item`` (:func:`_photo_of`) with its coins outlined, or say why there is
        none."""
        cup_id, ref = _photo_of(item, before)
        if ref == PRUNED_REF:
            self.view.photo.show_text(f"The photo of cup {cup_id} was pruned (cupcheck prune); its verdict stays")
        elif evidence.photo is None:
            self.view.photo.show_text(f"No photo stored for cup {cup_id}")
        else:
            self.view.photo.set_image(draw_coins(evidence.photo, list(evidence.coins), item.expected_type))

    def _show_trail(self, trail: Sequence[AuditEntry]) -> None:
        self.view.audit.clear()
        for a in trail:
            when = a.created_at.strftime("%Y-%m-%d %H:%M")
            note = f" — {a.note}" if a.note else ""
            new = "∅ (withdrawn)" if a.new_value == WITHDRAWN else a.new_value
            self.view.audit.addItem(f"{when} {a.operator}: {a.what} {a.old_value or '∅'} → {new}{note}")

    # -- actions ----------------------------------------------------------------------------------------------

    @Slot()
    def confirm(self) -> bool:
        """Key C: every coin of the cup is the expected type."""
        return self._relabel("confirmed")

    @Slot()
    def correct(self) -> bool:
        """Key T: the cup holds the type in the type box."""
        type_id = self._boxed_type("the cup's")
        return type_id is not None and self._relabel("corrected", corrected_type=type_id)

    @Slot()
    def coin_type(self) -> bool:
        """Key Y: the chosen coin is the type in the type box."""
        type_id = self._boxed_type("the coin's")
        return type_id is not None and self._relabel(
            "corrected", coin_index=self.view.coin_spin.value() - 1, corrected_type=type_id
        )

    def _boxed_type(self, whose: str) -> str | None:
        """The enrolled type chosen in the type box (``None``, said, when none is)."""
        combo = self.view.type_combo
        text = combo.currentText().strip()
        index = combo.findText(text)
        type_id = str(combo.itemData(index)) if index >= 0 else text.split(" ")[0]
        if not type_id:
            self._refuse(f"Choose {whose} true type in the type box first.")
            return None
        if type_id not in {str(combo.itemData(i)) for i in range(combo.count())}:
            self._refuse(f"{type_id} is not an enrolled type: choose {whose} true type from the type box.")
            return None
        return type_id

    @Slot()
    def coin_right(self) -> bool:
        """Key R: the chosen coin's own ruling was made by mistake: it is withdrawn (the audit log keeps both), and
        the cup's ruling speaks for the coin again."""
        coin_index = self.view.coin_spin.value() - 1
        repository, actor = self.repository, self.supervisor

        def write(cup_id: int, expected: int | None, note: str) -> int:
            return repository.withdraw_ruling(actor, cup_id, coin_index=coin_index, note=note, expected_label=expected)

        return self._rule(coin_index, "own ruling withdrawn", write, withdraw=True)

    @Slot()
    def wrong_side(self) -> bool:
        """Key W: the chosen coin is the type it was matched to, on its other side."""
        return self._relabel("wrong_side", coin_index=self.view.coin_spin.value() - 1)

    @Slot()
    def not_a_coin(self) -> bool:
        """Key N: the chosen coin is not a coin."""
        return self._relabel("not_a_coin", coin_index=self.view.coin_spin.value() - 1)

    @Slot()
    def damaged(self) -> bool:
        """Key D: the chosen coin is damaged."""
        return self._relabel("damaged", coin_index=self.view.coin_spin.value() - 1)

    def _relabel(self, kind: str, *, coin_index: int | None = None, corrected_type: str | None = None) -> bool:
        repository, actor = self.repository, self.supervisor

        def write(cup_id: int, expected: int | None, note: str) -> int:
            return repository.relabel(
                actor,
                cup_id,
                kind,
                coin_index=coin_index,
                corrected_type=corrected_type,
                note=note,
                expected_label=expected,
            )

        return self._rule(coin_index, f"{kind} → {corrected_type}" if corrected_type else kind, write)

    def _rule(
        self,
        coin_index: int | None,
        value: str,
        write: Callable[[int, int | None, str], int],
        *,
        withdraw: bool = False,
    ) -> bool:
        """Send ``write(cup_id, label_in_force, note)`` for the selected cup to the database thread, with the ruling
        in force on its cup or coin as the window shows it (refused while the cup's rulings are being read)."""
        self.view.queue.setFocus()  # the next one-key ruling goes to the window, not into a text box
        if self.current is None:
            self._refuse("Choose a cup from the queue first.")
            return False
        cup_id = self.current.cup_id
        target = f"coin {coin_index + 1}" if coin_index is not None else "cup"
        rulings = self._rulings
        if rulings is None or rulings.cup_id != cup_id:
            self._refuse(f"Cup {cup_id} is still being read: rule once its coins and audit trail are shown.")
            return False
        expected = rulings.labels.get(coin_index)
        if withdraw and expected is None:
            self._refuse(
                f"Cup {cup_id}, {target}: no ruling of its own to withdraw (R undoes one made by mistake; the cup's "
                "ruling already speaks for it)."
            )
            return False
        note = self.view.note_edit.text().strip()
        self.view.status.showMessage(f"Saving cup {cup_id}, {target}: {value}…")
        tag = Ruling(cup_id, target, value, coin_index, withdraw)
        self.call_requested.emit(BackgroundCall(tag, lambda: write(cup_id, expected, note)))
        return True

    @Slot(object, object)
    def background_done(self, tag: object, result: object) -> None:
        """A background call returned: a ruling was saved or an enrolment finished."""
        if isinstance(tag, Ruling):
            self._ruling_saved(tag, result)
        elif isinstance(tag, EnrolJob) and isinstance(result, Enrolled):
            self._enrolled(tag, result)

    @Slot(object, object)
    def background_failed(self, tag: object, error: object) -> None:
        """A background call raised: say what was not done and why."""
        if isinstance(tag, Ruling):
            if isinstance(error, RulingChanged):
                self._ruled_meanwhile(tag, error)
                return
            if isinstance(error, UNREACHABLE_ERRORS):
                _log.warning("a ruling could not be written: %s", error)
                first = str(error).splitlines()[0] if str(error) else error.__class__.__name__
                error = f"the database cannot be reached ({first}); rule again once it is back"
            self._refuse(f"Cup {tag.cup_id}, {tag.target}: not saved: {error}")
        elif isinstance(tag, EnrolJob):
            self.view.enrol_button.setEnabled(True)
            self._refuse(f"Enrolment from {tag.folder} failed: {error}")
            self.enrolling = None
            self.enrol_ended.emit()

    # -- enrolment --------------------------------------------------------------------------------------------

    @Slot()
    def enrol(self, folder: Path | None = None, *, every_coin: bool | None = None) -> bool:
        """Key E: enrol the types of a catalogue folder on the background thread; the folder, and whether its photos
        are trays of many coins (``every_coin``, see :func:`models.enroll.enroll_catalog`), are asked for when not
        given (a folder given without ``every_coin``: one coin a photo)."""
        if self._enrolment is None:
            self._refuse("Enrolment is not available in this window (no model).")
            return False
        if folder is None:
            folder = self.view.ask_folder("Catalogue folder (one sub-folder per type)")
            if folder is None:
                return False
            if every_coin is None:
                every_coin = self.view.ask_trays()
                if every_coin is None:
                    return False
        trays = bool(every_coin)
        enrolment, repository, supervisor = self._enrolment, self.repository, self.supervisor
        self.enrolling = folder
        self.view.enrol_button.setEnabled(False)
        self.view.status.showMessage(f"Enrolling the types of {folder}…")

        def job() -> Enrolled:
            repository.check_supervisor(supervisor, "enrol types")  # deactivated since signing in: refused
            result = enrol_folder(folder, enrolment, every_coin=trays)
            try:
                catalog: TypeCatalog | None = TypeCatalog.from_gallery(enrolment.gallery_dir)
            except (OSError, ValueError) as err:  # enrolled all the same: not to be reported as a failed enrolment
                _log.error("the gallery could not be read back after enrolling: %r", err)
                catalog = None
            return Enrolled(result, catalog)

        self.call_requested.emit(BackgroundCall(EnrolJob(folder), job))
        return True

    def _enrolled(self, job: EnrolJob, enrolled: Enrolled) -> None:
        result = enrolled.result
        # running stations read their gallery again within a minute (station.controllers.model_follow)
        said = f"{result.summary()} Running stations take them up within a minute."
        if enrolled.catalog is not None:
            self.set_catalog(enrolled.catalog)
        else:
            said += " The enrolled types could not be read back for the type box: F5 tries again."
        self.view.enrol_button.setEnabled(True)
        self.view.gallery_label.setText(f"Gallery: {result.n_types} types, {result.n_references} references")
        self.view.status.showMessage(said)
        self.enrolling = None
        self.enrolled.emit(result)
        self.enrol_ended.emit()

    def _ruling_saved(self, tag: Ruling, label_id: object) -> None:
        self.view.note_edit.clear()
        self._saved = f"Cup {tag.cup_id}, {tag.target}: {tag.value} (saved with an audit entry)"
        if tag.target != "cup":  # a coin ruled alone teaches the retrain nothing until its cup is ruled
            self._saved += ". The nightly retrain learns from ruled cups: rule on the whole cup too (C or T) if not yet"
        self._ruled = tag.cup_id if tag.target == "cup" else None  # a coin's ruling may be followed by another's
        rulings = self._rulings
        if rulings is not None and rulings.cup_id == tag.cup_id:  # in force now, before the trail is read again
            labels = dict(rulings.labels)
            if tag.withdrawn:
                labels.pop(tag.coin_index, None)
            else:
                labels[tag.coin_index] = int(label_id)  # type: ignore[call-overload]
            self._rulings = Rulings(tag.cup_id, labels)
        self.view.status.showMessage(self._saved)
        self.refresh()
        self._read_rulings(tag.cup_id)
        self.relabelled.emit(int(label_id))  # type: ignore[call-overload]

    def _ruled_meanwhile(self, tag: Ruling, error: RulingChanged) -> None:
        """Someone else ruled on the cup or coin since the window read it: say who ruled what, and read the cup's
        rulings and the queue again, so that ruling again replaces theirs knowingly."""
        self._saved = (
            f"Cup {tag.cup_id}, {tag.target}: not saved, ruled meanwhile by {error.operator}: "
            f"{'∅ (withdrawn)' if error.value == WITHDRAWN else error.value} — rule again to replace it"
        )
        self._refuse(self._saved)
        self.refresh()
        self._read_rulings(tag.cup_id)

    def _read_rulings(self, cup_id: int) -> None:
        """Read ``cup_id``'s audit trail and rulings in force again (:class:`AuditRead`)."""
        repository = self.repository

        def read() -> CupRulings:
            return CupRulings(tuple(repository.audit_trail(cup_id)), repository.rulings_in_force(cup_id))

        self._reads.ask(AuditRead(self._reads.ticket(AuditRead), cup_id), read)

    def _refuse(self, message: str) -> None:
        self.view.status.showMessage(message)
        self.refused.emit(message)

    # -- reads ------------------------------------------------------------------------------------------------

    @Slot(object, object)
    def read_done(self, tag: object, result: object) -> None:
        """A read returned: draw it, unless a later click has made it stale."""
        if not self._reads.fresh(tag):
            return
        if isinstance(tag, QueueRead):
            self._show_queue(result, tag.order)  # type: ignore[arg-type]
        elif isinstance(tag, CupRead) and isinstance(result, CupEvidence):
            if self.current is not None and self.current.cup_id == tag.shown:
                self._show_evidence(self.current, tag, result)
        elif isinstance(tag, AuditRead) and isinstance(result, CupRulings):
            if self.current is not None and self.current.cup_id == tag.cup_id:
                self._show_trail(result.trail)
                self._rulings = Rulings(tag.cup_id, result.in_force)
        elif isinstance(tag, ReloadRead) and isinstance(result, Reloaded):
            self._reloaded(result)

    @Slot(object, object)
    def read_failed(self, tag: object, error: object) -> None:
        """A read raised: the status bar says why (what is shown stays as it was)."""
        if not self._reads.fresh(tag):
            return
        if isinstance(tag, ReloadRead):  # the registry or the gallery: say so, and read the queue all the same
            _log.error("the model in force or the enrolled types could not be read: %r", error)
            self._saved = (
                f"The model in force or the enrolled types could not be read: {error.__class__.__name__}: {error}. "
                "F5 tries again"
            )
            self.view.status.showMessage(self._saved)
            self.refresh()
            return
        if isinstance(error, UNREACHABLE_ERRORS):
            _log.warning("the verdict log cannot be read: %s", error)
            first = str(error).splitlines()[0] if str(error) else error.__class__.__name__
            said = f"The database cannot be reached: {first}. F5 tries again."
        else:
            _log.error("a read of the verdict log failed: %r", error)
            said = f"The verdict log could not be read: {error.__class__.__name__}: {error}. F5 tries again."
        if isinstance(tag, CupRead):
            self.view.photo.show_text(f"The photo of cup {tag.cup_id} could not be read")
        self.view.status.showMessage(said)


def _image(repository: ReviewRepository, ref: str | None) -> UInt8Array | None:
    """The stored image ``ref``, decoded (``None``: none, pruned, or unreadable)."""
    if not ref or ref == PRUNED_REF:
        return None
    try:
        return decode(repository.read_blob(ref))
    except OSError as err:
        _log.warning("stored image %s cannot be read: %s", ref, err)
        return None


def _thumb(repository: ReviewRepository, coin: StoredCoin, photo: UInt8Array | None) -> UInt8Array | None:
    """A coin's stored crop, else its box cut from the photograph, else ``None``."""
    crop = _image(repository, coin.crop_ref)
    if crop is None and photo is not None:
        crop = cut_thumbnail(photo, coin.bbox)
    return crop


def _photo_of(item: ReviewItem, before: bool) -> tuple[int, str | None]:
    """The cup and photograph shown for ``item``: the check a re-check answers (``before``, B), else its own."""
    if before and item.recheck_of is not None:
        return item.recheck_of, item.recheck_capture_ref
    return item.cup_id, item.capture_ref


def _before_words(item: ReviewItem) -> tuple[str, str]:
    """The B button's words for a re-check: to show the check it answers, and while that one is shown."""
    if only_the_camera(item.recheck_reasons):
        return CAMERA_BEFORE_TEXT, CAMERA_BEFORE_SHOWN
    return BEFORE_TEXT, BEFORE_SHOWN


def _recheck_words(item: ReviewItem) -> str:
    """Why the cup was photographed again: its coins were turned, or the camera was put back."""
    if only_the_camera(item.recheck_reasons):
        return f"<br>Checked again once the camera was back in place (cup {item.recheck_of} was flagged for it alone)."
    return f"<br>Checked again after the coins cup {item.recheck_of} named were turned over."


def _who(item: ReviewItem) -> str:
    """`` · order A-1001 · olga at packing-2, 14:03 on 6 Dec``: what the supervisor asks the operator about."""
    when = item.created_at.astimezone().strftime("%H:%M on %d %b")
    count = "" if item.expected_count is None else f" ({item.expected_count} coins)"
    order = f" · order {html.escape(item.order)}{count}" if item.order else ""
    who = html.escape(item.operator) + " at " if item.operator else ""
    return f"{order} · {who}{html.escape(item.station)}, {when}"
