"""The operator window's layout: preview, order entry, type list, verdict banner, coin thumbnails, status bar.

Layout only: :class:`station.controllers.operator.OperatorController` fills it and reacts to it.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSplitter,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from station.views.widgets import (
    BANNER_PX,
    COMPACT_BANNER_PX,
    Banner,
    ElidedLabel,
    FittedLabel,
    ImageView,
    ThumbnailStrip,
)

REFERENCE_MIN_PX = 76
"""The expected type's two pictures are at least this big (on a small screen)..."""
REFERENCE_HINT_PX = 110
"""...this big where the window has room..."""
REFERENCE_MAX_PX = 130
"""...and at most this big."""
CAMERA_LABEL_PX = 200
"""The status bar's camera field takes at most this much room before its text is shortened: "Camera: LOST (the
camera sends the same picture: frozen), reconnecting" in full widened the window to 1611 px, off a 1366×768 screen."""

ORDER_STATUS_PX = 200
"""The order box's status line takes at most this much room before its text is shortened: an 88-character parcel
URL scanned in full widened the window to 1473 px, off a 1366×768 screen."""

STYLE = """
QWidget { background: #1d2127; color: #e4e7eb; font-size: 15px; }
QLineEdit { background: #2a2f37; border: 1px solid #3c434e; border-radius: 5px; padding: 6px; font-size: 20px; }
QListWidget { background: #23272e; border: 1px solid #3c434e; border-radius: 5px; font-size: 15px; }
QListWidget::item:selected { background: #2f6db5; color: white; }
QPushButton { background: #2f6db5; color: white; border: none; border-radius: 6px; padding: 10px 18px;
              font-size: 20px; }
QPushButton:disabled { background: #3c434e; color: #8a919b; }
QPushButton#secondary { background: #3c434e; color: #c8ccd2; font-size: 14px; padding: 6px 12px; }
QPushButton#secondary:disabled { background: #262a31; color: #5c636d; }
QStatusBar { background: #14171b; color: #c8ccd2; font-size: 14px; }
QStatusBar QLabel { padding: 0 10px; border-left: 1px solid #3c434e; }
QPushButton#statusbar { background: #3c434e; color: #c8ccd2; font-size: 13px; padding: 1px 10px; margin: 0; }
QLabel#section { color: #8a919b; font-size: 13px; font-weight: bold; letter-spacing: 1px; }
QCheckBox::indicator { width: 16px; height: 16px; border: 1px solid #8a919b; border-radius: 3px; background: #2a2f37; }
QCheckBox::indicator:checked { background: #2f6db5; border-color: #2f6db5; }
"""


def _section(text: str) -> QLabel:
    label = QLabel(text.upper())
    label.setObjectName("section")
    return label


def _button(text: str, style: str, tip: str, *, visible: bool = False) -> QPushButton:
    """A button that never takes the keyboard focus (Space checks the cup), styled ``style``, hidden at first unless
    ``visible``."""
    button = QPushButton(text)
    button.setObjectName(style)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    button.setToolTip(tip)
    if not visible:  # (shown with the window otherwise: made visible before it has a parent, it would be a window)
        button.setVisible(False)
    return button


class OperatorView(QWidget):
    """Every widget of the operator window, laid out; no behaviour.

    Attributes:
        preview: the live camera image with the coin outlines.
        order_edit: order number or type id, Enter to choose (a barcode scanner types here too).
        order_status: what the entry resolved to.
        type_filter: filters :attr:`type_list`.
        type_list: the enrolled types (icon: obverse picture).
        expected_label: the chosen type, large.
        reference_obverse, reference_reverse: reference pictures of the chosen type.
        banner: PASS / FLAG.
        reason: the reason in plain words.
        detail: the verdict's numbers.
        check_button: checks the cup (as Space does).
        new_cup_button: shown while the next check would re-check a cup whose coins were to be turned; drops
            that link (as Esc does).
        empty_tray_button: keeps the frame in view as the station's empty-tray photo.
        enrol_tray_button: opens the enrolment of a new type from the tray (shown when the window offers it).
        sign_out_button: signs the operator out, or the next person in (as F2 does); hidden where nobody signs in.
        thumbs: the coin thumbnails of the last check.
        aside_title, aside_list: the cups put aside for a person, with what to do once ruled on (hidden where the
            window has no verdict log to read them from).
        session_label, station_label, model_label, db_label, camera_label: status bar fields.
        thumb_px: the coin thumbnails' size.

    Args:
        compact: for a screen under about 720 px high (1280×720): a smaller banner word, thumbnails, camera view
            and reason, so that the window fits.
    """

    def __init__(self, parent: QWidget | None = None, *, compact: bool = False) -> None:
        super().__init__(parent)
        self.setStyleSheet(STYLE)
        self.thumb_px = 72 if compact else 96

        self.preview = ImageView("Waiting for the camera…")
        # grows with the window; small enough for a 1366×768 screen (a 1280×720 one when compact)
        self.preview.setMinimumSize(*((360, 240) if compact else (400, 300)))
        self.preview.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.order_edit = QLineEdit()
        self.order_edit.setPlaceholderText("Scan or type the order number, then Enter")
        # one line, shortened to fit (all of it in the tooltip): a long scanned code, or what is known of the order,
        # never widens the window off a small screen (the reason line below says it in full)
        self.order_status = ElidedLabel("No type chosen yet.", min_width=ORDER_STATUS_PX)
        self.order_status.setStyleSheet("color: #aab0b8;")
        self.type_filter = QLineEdit()
        self.type_filter.setPlaceholderText("Search enrolled types…")
        self.type_filter.setStyleSheet("font-size: 15px;")
        self.type_list = QListWidget()
        self.type_list.setIconSize(QSize(40, 40))
        self.type_list.setMinimumWidth(300)
        self.type_list.setMinimumHeight(44)  # one type: it scrolls

        # three lines at 22 px beside the pictures, a longer name smaller: it never pushes the banner over them
        self.expected_label = FittedLabel("—", lines=3, max_px=22, min_px=14, style="font-weight: bold;")
        self.expected_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.reference_obverse = ImageView("", hint=QSize(REFERENCE_HINT_PX, REFERENCE_HINT_PX))
        self.reference_reverse = ImageView("", hint=QSize(REFERENCE_HINT_PX, REFERENCE_HINT_PX))
        for ref in (self.reference_obverse, self.reference_reverse):
            ref.setMinimumSize(REFERENCE_MIN_PX, REFERENCE_MIN_PX)
            ref.setMaximumSize(REFERENCE_MAX_PX, REFERENCE_MAX_PX)

        self.banner = Banner(px=COMPACT_BANNER_PX if compact else BANNER_PX)
        # four lines at 22 px, or more lines of smaller text: a long reason never covers the banner or the button
        self.reason = FittedLabel(
            "Choose the order, put the cup under the camera, press Space.",
            lines=3 if compact else 4,
            max_px=20 if compact else 22,
            min_px=14 if compact else 15,
        )
        self.detail = QLabel("")
        self.detail.setStyleSheet("color: #8a919b; font-size: 13px;")
        self.check_button = QPushButton("Check cup  [Space]")
        self.check_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.check_button.setMinimumHeight(56)
        self.new_cup_button = _button(
            "A new cup instead  [Esc]",
            "secondary",
            "The cup just flagged is not being checked again: put it aside for a supervisor and check another.",
        )
        self.empty_tray_button = _button(
            "Photograph the empty tray",
            "secondary",
            "Take everything off the tray first. Every cup is then compared with this photo, and whatever "
            "differs where no coin was found flags the cup.",
            visible=True,
        )
        self.enrol_tray_button = _button(
            "Enrol a coin type from the tray…",
            "secondary",
            "A supervisor photographs coins of a new type on the tray, one side up and then the other; the type "
            "is added to the enrolled types without retraining.",
        )
        self.sign_out_button = _button(
            "Sign out  [F2]",
            "statusbar",
            "Sign out before leaving the station: the cups checked next are recorded under the name of whoever "
            "signs in.",
        )

        self.thumbs = ThumbnailStrip(146 if compact else 170, margins=(4, 4, 4, 4))
        self.aside_title = _section("Put aside")
        self.aside_list = QListWidget()
        self.aside_list.setWordWrap(True)
        self.aside_list.setFixedHeight(64 if compact else 84)
        self.aside_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.aside_list.setStyleSheet("font-size: 14px;")

        # left: preview over the thumbnails and the bench
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.preview, 1)
        lv.addWidget(_section("Coins of the last check"))
        lv.addWidget(self.thumbs)
        lv.addWidget(self.aside_title)
        lv.addWidget(self.aside_list)
        self.show_aside(False)

        # right: order, expected type, banner, type list
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(8, 0, 0, 0)
        rv.setSpacing(4)
        rv.addWidget(_section("Order"))
        rv.addWidget(self.order_edit)
        rv.addWidget(self.order_status)
        expected = QHBoxLayout()
        expected.addWidget(self.reference_obverse)
        expected.addWidget(self.reference_reverse)
        expected.addWidget(self.expected_label, 1)
        rv.addWidget(_section("Expected type"))
        rv.addLayout(expected)
        rv.addWidget(self.banner)
        rv.addWidget(self.reason)
        rv.addWidget(self.detail)
        rv.addWidget(self.check_button)
        tray_buttons = QHBoxLayout()  # the smaller actions, on one row so the window fits a 1366×768 screen
        tray_buttons.addWidget(self.new_cup_button)
        tray_buttons.addWidget(self.empty_tray_button)
        tray_buttons.addWidget(self.enrol_tray_button)
        rv.addLayout(tray_buttons)
        rv.addWidget(_section("Enrolled types"))
        rv.addWidget(self.type_filter)
        rv.addWidget(self.type_list, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        self.status_bar = QStatusBar()
        self.station_label = QLabel()
        # the three whose text may run long (an error's message, why the camera is lost or where it moved to):
        # shortened, the whole of it in the tooltip, never widening the window off the screen (the banner and
        # the reason below it say the camera's problem in full)
        self.model_label = ElidedLabel(min_width=280)
        self.db_label = ElidedLabel(min_width=220)
        self.camera_label = ElidedLabel(min_width=CAMERA_LABEL_PX)
        self.session_label = QLabel()
        for w in (
            self.session_label,
            self.station_label,
            self.sign_out_button,  # beside the name it signs out
            self.model_label,
            self.db_label,
            self.camera_label,
        ):
            self.status_bar.addPermanentWidget(w)

        root = QVBoxLayout(self)
        root.setContentsMargins(10, 10, 10, 0)
        root.addWidget(splitter, 1)
        root.addWidget(self.status_bar)

    def show_aside(self, shown: bool) -> None:
        """Show or hide the bench of cups put aside."""
        self.aside_title.setVisible(shown)
        self.aside_list.setVisible(shown)
