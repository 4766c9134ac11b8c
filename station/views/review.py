"""The supervisor window's layout: review queue, the cup's photo, coin thumbnails, one-key actions, audit trail."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from station.views.operator import STYLE, _section
from station.views.widgets import ImageView, ThumbnailStrip, pixel_font

QUEUE_TITLE = "Review queue (most useful first)"


class ReviewView(QWidget):
    """Every widget of the supervisor window, laid out; no behaviour.

    Attributes:
        order_find: an order number to show every cup of (scanned or typed, Enter); emptied: the queue again.
        queue_title: what :attr:`queue` lists (the review queue, or one order's cups).
        queue: the cups to review, most informative first, or the cups of the order found.
        photo: the selected cup's photograph with its coin outlines.
        summary: the cup's verdict in words.
        before_button: for a re-check, shows the photograph of the check it answers (the coins before turning).
        thumbs: per-coin thumbnails with their top matches.
        coin_spin: the coin the coin actions apply to (1-based).
        type_combo: the corrected type (editable, completes over the enrolled types).
        note_edit: a note kept in the audit log.
        confirm_button, correct_button, not_coin_button, damaged_button: the actions (keys C, T, N, D).
        coin_right_button, wrong_side_button, coin_type_button: the chosen coin's ruling withdrawn (R), its other
            side (W), the type in the box (Y).
        audit: the selected cup's relabel history.
        status: the last action's outcome (whole in its tooltip when longer than the bar).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet(STYLE + "QComboBox, QSpinBox { background: #2a2f37; padding: 4px; font-size: 16px; }")
        self.order_find = QLineEdit()
        self.order_find.setPlaceholderText("Find an order (scan, Enter)")
        self.order_find.setClearButtonEnabled(True)
        self.queue_title = _section(QUEUE_TITLE)
        self.queue = QListWidget()
        self.queue.setMinimumWidth(280)
        self.photo = ImageView("Choose a cup from the queue")
        self.photo.setMinimumSize(400, 240)  # grows with the window; small enough for a 1280×720 screen
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("font-size: 17px;")
        self.summary.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # five lines, whatever the text: a long one never pushes the photograph over the coins below it, and
        # scrolls rather than losing its last lines (a re-check's, a suspect ruling's)
        self.summary_box = QScrollArea()
        self.summary_box.setWidget(self.summary)
        self.summary_box.setWidgetResizable(True)
        self.summary_box.setFrameShape(QFrame.Shape.NoFrame)
        self.summary_box.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.summary_box.setFixedHeight(5 * QFontMetrics(pixel_font(self.summary, 17)).lineSpacing() + 4)

        self.thumbs = ThumbnailStrip(170)

        self.coin_spin = QSpinBox()
        self.coin_spin.setPrefix("coin ")
        self.coin_spin.setMinimum(1)
        self.type_combo = QComboBox()
        self.type_combo.setEditable(True)
        self.type_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.type_combo.setMinimumWidth(260)
        line = self.type_combo.lineEdit()
        if line is not None:
            line.setPlaceholderText("True type (search by id or name)")
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("Note for the audit log (optional)")
        self.before_button = QPushButton("")  # its text says which photograph is shown (the controller's)
        self.before_button.setCheckable(True)
        self.before_button.setObjectName("secondary")
        self.before_button.setVisible(False)
        self.confirm_button = QPushButton("Confirm cup  [C]")
        self.correct_button = QPushButton("Correct type  [T]")
        self.not_coin_button = QPushButton("Not a coin  [N]")
        self.damaged_button = QPushButton("Damaged  [D]")
        self.coin_right_button = QPushButton("Undo coin ruling  [R]")
        self.coin_right_button.setToolTip(
            "Withdraw the chosen coin's own ruling, made by mistake: the cup's ruling speaks for it again"
        )
        self.wrong_side_button = QPushButton("Wrong side  [W]")
        self.coin_type_button = QPushButton("Type in box  [Y]")
        for b in (
            self.confirm_button,
            self.correct_button,
            self.not_coin_button,
            self.damaged_button,
            self.coin_right_button,
            self.wrong_side_button,
            self.coin_type_button,
        ):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.confirm_button.setStyleSheet("background: #2e9e3a;")
        self.enrol_button = QPushButton("Enrol types from a folder…  [E]")
        self.enrol_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.people_button = QPushButton("People: add, new PIN, deactivate…  [P]")
        self.people_button.setObjectName("secondary")
        self.people_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.people_button.setVisible(False)
        self.gallery_label = QLabel("")
        self.gallery_label.setStyleSheet("color: #aab0b8;")
        self.model_label = QLabel("")
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: #aab0b8; font-size: 13px;")
        self.audit = QListWidget()
        self.audit.setMaximumHeight(130)
        self.audit.setMinimumHeight(60)  # three rulings on the smallest screen; more scroll
        self.status = QStatusBar()
        # a message longer than the bar (an enrolment's warnings) is read whole in its tooltip
        self.status.messageChanged.connect(self.status.setToolTip)

        actions = QGridLayout()
        actions.addWidget(_section("Whole cup"), 0, 0, 1, 2)
        actions.addWidget(self.confirm_button, 1, 0)
        actions.addWidget(self.type_combo, 2, 0)
        actions.addWidget(self.correct_button, 2, 1)
        actions.addWidget(_section("One coin"), 3, 0, 1, 2)
        actions.addWidget(self.coin_spin, 4, 0)
        actions.addWidget(self.coin_type_button, 4, 1)
        actions.addWidget(self.not_coin_button, 5, 0)
        actions.addWidget(self.damaged_button, 5, 1)
        actions.addWidget(self.coin_right_button, 6, 0)
        actions.addWidget(self.wrong_side_button, 6, 1)
        actions.addWidget(self.note_edit, 7, 0, 1, 2)  # its placeholder says what it is for

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.order_find)
        lv.addWidget(self.queue_title)
        lv.addWidget(self.queue)

        middle = QWidget()
        mv = QVBoxLayout(middle)
        mv.setContentsMargins(8, 0, 8, 0)
        mv.addWidget(self.summary_box)
        mv.addWidget(self.before_button)
        mv.addWidget(self.photo, 1)
        mv.addWidget(_section("Coins and their best matches"))
        mv.addWidget(self.thumbs)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addLayout(actions)
        rv.addWidget(_section("Audit trail of this cup"))
        rv.addWidget(self.audit)
        rv.addStretch(1)
        rv.addWidget(_section("Model"))
        rv.addWidget(self.model_label)
        rv.addWidget(_section("Coin types"))
        rv.addWidget(self.gallery_label)
        rv.addWidget(self.enrol_button)
        rv.addWidget(self.people_button)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        for w in (left, middle, right):
            splitter.addWidget(w)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([340, 540, 480])  # the queue's lines whole at the window's first size; shared out if less
        root = QVBoxLayout(self)
        root.setContentsMargins(10, 10, 10, 0)
        root.addWidget(splitter, 1)
        root.addWidget(self.status)

    def show_queue_title(self, order: str | None, n_cups: int) -> None:
        """Say what the list holds: the review queue, or the ``n_cups`` cups of ``order``."""
        text = (
            QUEUE_TITLE if order is None else f"Order {order}: {n_cups} cup{'s' if n_cups != 1 else ''}, newest first"
        )
        self.queue_title.setText(text.upper())

    def ask_folder(self, title: str) -> Path | None:
        """Ask for a folder; ``None`` when the dialog is cancelled."""
        chosen = QFileDialog.getExistingDirectory(self, title)
        return Path(chosen) if chosen else None

    def ask_trays(self) -> bool | None:
        """Ask whether the catalogue's photos are trays of many coins (``None``: cancelled)."""
        answer = QMessageBox.question(
            self,
            "Tray photos?",
            "Does each photo show many coins of its folder's type, all lying on the side its folder names (a tray "
            "photographed with cupcheck snapshot)?\n\nYes: every whole coin is a reference.\nNo: each photo shows "
            "one coin, its reference (a photo of several is skipped).",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Cancel:
            return None
        return answer == QMessageBox.StandardButton.Yes
