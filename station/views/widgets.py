"""Small reusable widgets and the one conversion from OpenCV images to Qt pixmaps."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import (
    QFont,
    QFontMetrics,
    QGuiApplication,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from models.types import UInt8Array

PREVIEW_STYLE = "background: #15181d; color: #c8ccd2; font-size: 20px;"
BANNER_PX = 96
"""The verdict word's height in pixels: about 2.5 cm on a 24-inch full-HD screen, readable from two metres."""
COMPACT_BANNER_PX = 72
"""The verdict word on a small screen (:class:`~station.views.operator.OperatorView` ``compact``)."""
BANNER_PADDING_PX = 8
"""Room around the verdict word inside its band."""
LABEL_PX = 15
"""Plain text's size in the windows (their style sheet's)."""
SMALL_PX = 11
"""The smallest a long text is drawn to fit its room."""


def to_pixmap(image: UInt8Array) -> QPixmap:
    """A ``QPixmap`` of a ``(H, W, 3)`` uint8 BGR image (the pixels are copied)."""
    rgb = np.ascontiguousarray(image[..., ::-1])
    h, w = rgb.shape[:2]
    qimage = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimage.copy())


def pixel_font(widget: QWidget, px: int, *, bold: bool = False) -> QFont:
    """``widget``'s font at ``px`` pixels (as its style sheet sets it), to measure text before it is shown."""
    font = QFont(widget.font())
    font.setPixelSize(px)
    font.setBold(bold)
    return font


class ImageView(QLabel):
    """Shows an image scaled to fit, keeping its aspect ratio; a text while there is no image.

    Args:
        placeholder: the text shown without an image.
        hint: the size the view asks its layout for (``None``: the label's own, which follows its image); it is
            given less where the window has no room.
    """

    def __init__(self, placeholder: str = "", parent: QWidget | None = None, *, hint: QSize | None = None) -> None:
        super().__init__(placeholder, parent)
        self._placeholder = placeholder
        self._hint = hint
        self._pixmap: QPixmap | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet(PREVIEW_STYLE)

    def sizeHint(self) -> QSize:
        """The size asked for: :attr:`hint` when given."""
        return self._hint if self._hint is not None else super().sizeHint()

    def set_image(self, image: UInt8Array | None) -> None:
        """Show ``image`` (BGR), or the placeholder for ``None``."""
        self._pixmap = None if image is None else to_pixmap(image)
        if self._pixmap is None:  # the last image must not stay on show
            self.clear()
            self.setText(self._placeholder)
        self._rescale()

    def show_text(self, text: str) -> None:
        """Drop the image and show ``text``."""
        self._pixmap = None
        self.clear()
        self.setText(text)

    def has_image(self) -> bool:
        """Whether an image is on show."""
        return self._pixmap is not None

    def _rescale(self) -> None:
        if self._pixmap is None:
            return
        self.setPixmap(
            self._pixmap.scaled(
                self.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
            )
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Keep the image fitted to the label."""
        super().resizeEvent(event)
        self._rescale()


class Banner(QLabel):
    """The big verdict word, readable from two metres: white bold text on a coloured band."""

    def __init__(self, parent: QWidget | None = None, *, px: int = BANNER_PX) -> None:
        super().__init__(parent)
        self.px = px
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = pixel_font(self, px, bold=True)
        self.setMinimumHeight(QFontMetrics(font).height() + 2 * BANNER_PADDING_PX)  # the word, never cut
        self._colour = ""
        self.show_state("READY", "#5a6270")

    @property
    def colour(self) -> str:
        """The band's colour, ``#rrggbb``."""
        return self._colour

    def show_state(self, text: str, colour: str) -> None:
        """Show ``text`` on a band of ``colour``."""
        self._colour = colour
        self.setText(text)
        self.setStyleSheet(
            f"background: {colour}; color: white; border-radius: 10px; padding: {BANNER_PADDING_PX}px;"
            f" font-size: {self.px}px; font-weight: bold; letter-spacing: 6px;"
        )


class Thumbnail(QFrame):
    """A coin crop with a caption; a thick amber frame marks a suspicious coin."""

    def __init__(self, image: UInt8Array, caption: str, marked: bool, size: int = 96, parent: QWidget | None = None):
        super().__init__(parent)
        self.marked = marked
        colour = "#f0a000" if marked else "#2e9e3a"
        width = 5 if marked else 2
        self.setStyleSheet(
            f"Thumbnail {{ border: {width}px solid {colour}; border-radius: 6px; background: #20242b; }}"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        picture = QLabel()
        picture.setPixmap(
            to_pixmap(image).scaled(
                QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        )
        picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel(caption)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setWordWrap(True)
        text.setStyleSheet(f"color: {'#ffc24d' if marked else '#d8dce2'}; font-size: 12px; border: none;")
        self.caption = text
        layout.addWidget(picture)
        layout.addWidget(text)
        self.setFixedWidth(size + 24)


class ThumbnailStrip(QScrollArea):
    """A row of :class:`Thumbnail` widgets that scrolls sideways.

    Args:
        height: fixed height in pixels.
        margins: ``(left, top, right, bottom)`` around the row (``None``: Qt's default).
    """

    def __init__(
        self, height: int, margins: tuple[int, int, int, int] | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        row = QWidget()
        self._layout = QHBoxLayout(row)
        if margins is not None:
            self._layout.setContentsMargins(*margins)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self.setWidget(row)
        self.setWidgetResizable(True)
        self.setFixedHeight(height)
        self.setFrameShape(QFrame.Shape.NoFrame)

    def clear(self) -> None:
        """Remove every thumbnail."""
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()

    def add(self, thumb: Thumbnail) -> None:
        """Append a thumbnail."""
        self._layout.addWidget(thumb)

    def thumbnails(self) -> list[Thumbnail]:
        """The thumbnails on show, in order."""
        out = []
        for i in range(self._layout.count()):
            item = self._layout.itemAt(i)
            widget = item.widget() if item is not None else None
            if isinstance(widget, Thumbnail):
                out.append(widget)
        return out


class ElidedLabel(QLabel):
    """A one-line label that never widens its window: a text longer than the room it is given ends in "…", and
    the whole text is its tooltip (a status bar whose database error or model warning runs long stays on screen)."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *, min_width: int = 60) -> None:
        super().__init__(text, parent)
        self.min_width = min_width
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:
        """Show ``text`` on one line (elided where it does not fit) and keep all of it as the tooltip."""
        super().setText(" ".join(text.splitlines()))
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:
        """No wider than ``min_width`` (a shorter text: its own width): the layout shortens the text before it grows
        the window."""
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self.min_width), hint.height())

    def shown_text(self) -> str:
        """The text as drawn at the label's present width."""
        room = self.contentsRect().width()
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, room)

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the elided text with the label's style (colour, weight)."""
        painter = QPainter(self)
        self.style().drawItemText(
            painter,
            self.contentsRect(),
            int(self.alignment()),
            self.palette(),
            self.isEnabled(),
            self.shown_text(),
            QPalette.ColorRole.WindowText,
        )


class FittedLabel(QLabel):
    """A word-wrapped label of a fixed height, ``lines`` lines of ``max_px`` text: a text too long for it is drawn
    smaller, down to ``min_px``, so that it shows whole and the label never grows over the widgets below it.

    Args:
        lines: the lines the label holds at ``max_px``.
        max_px: the text's size when it fits.
        min_px: the smallest size a long text is drawn at.
        style: the rest of its style sheet (the font size is the label's).
    """

    def __init__(
        self, text: str = "", *, lines: int, max_px: int, min_px: int, style: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.max_px, self.min_px, self._style = max_px, min_px, style
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setFixedHeight(lines * QFontMetrics(pixel_font(self, max_px)).lineSpacing())
        self.text_px = max_px
        self.setText(text)

    def setText(self, text: str) -> None:
        """Show ``text`` at the largest size at which it fits."""
        super().setText(text)
        self._fit()

    def hasHeightForWidth(self) -> bool:
        """No: the height is fixed, the text is fitted to it (a word-wrapped label's height for its width would
        have layouts give it more than its fixed height, and squeeze its neighbours under theirs)."""
        return False

    def resizeEvent(self, event: QResizeEvent) -> None:
        """A narrower label may need a smaller size."""
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room = self.contentsRect()
        px = self.max_px
        while px > self.min_px and self.height_at(px, room.width()) > room.height():
            px -= 1
        if px != self.text_px or not self.styleSheet():
            self.text_px = px
            self.setStyleSheet(f"{self._style} font-size: {px}px;")

    def height_at(self, px: int, width: int) -> int:
        """The height of the text drawn at ``px`` pixels, wrapped at ``width``."""
        flags = int(Qt.TextFlag.TextWordWrap) | int(Qt.AlignmentFlag.AlignLeft)
        bounds = QFontMetrics(pixel_font(self, px)).boundingRect(0, 0, max(width, 1), 100_000, flags, self.text())
        return bounds.height()


class _TogglingLabel(FittedLabel):
    """Words that tick or untick their check box when clicked."""

    def __init__(self, text: str, box: QCheckBox, *, lines: int) -> None:
        super().__init__(text, lines=lines, max_px=LABEL_PX, min_px=SMALL_PX)
        self._box = box

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Toggle the box."""
        self._box.toggle()
        event.accept()


class WrappedCheckBox(QWidget):
    """A check box whose words wrap (a ``QCheckBox`` keeps its text on one line, which can widen its window past
    the screen), in ``lines`` lines (:class:`FittedLabel`); a click on the words ticks it too."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *, lines: int = 3) -> None:
        super().__init__(parent)
        self.box = QCheckBox()
        self.label = _TogglingLabel(text, self.box, lines=lines)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.box, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.label, 1)

    def text(self) -> str:
        """The words beside the box."""
        return self.label.text()

    def setText(self, text: str) -> None:
        """Set the words beside the box."""
        self.label.setText(text)

    def setToolTip(self, text: str) -> None:
        """Show ``text`` over the box and its words."""
        super().setToolTip(text)
        self.box.setToolTip(text)
        self.label.setToolTip(text)

    def isChecked(self) -> bool:
        """Whether the box is ticked."""
        return self.box.isChecked()

    def setChecked(self, checked: bool) -> None:
        """Tick or untick the box."""
        self.box.setChecked(checked)


WINDOW_SIZE = (1360, 860)
"""The windows' first size, where the screen has room for it."""
TITLE_BAR_PX = 40
"""Room left above a window for its frame and title bar, which its size does not count."""


COMPACT_BELOW_PX = 760
"""A screen whose free height (less a title bar) is under this gets the compact operator window: a 1280×720 or
1366×768 screen, task bar or not (at 1366×768 without one, 728 px, the full layout left the enrolled types one and
a half rows)."""


def wants_compact(free: QSize | None) -> bool:
    """Whether a screen with ``free`` room (:func:`free_area`; ``None``: no screen) gets the compact operator
    window."""
    return free is not None and free.height() < COMPACT_BELOW_PX


def free_area(widget: QWidget) -> QSize | None:
    """The size a window on ``widget``'s screen can have: the screen without its task bars, less a title bar
    (``None`` without a screen)."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        return None
    free = screen.availableGeometry()
    return QSize(free.width(), free.height() - TITLE_BAR_PX)


def fit_to_screen(window: QWidget, size: tuple[int, int]) -> None:
    """Give ``window`` the size ``(width, height)``, or the screen's free area (:func:`free_area`) where that is
    smaller: a station's 1366×768 screen shows the whole window, status bar included."""
    width, height = size
    free = free_area(window)
    if free is not None:
        width, height = min(width, free.width()), min(height, free.height())
    window.resize(width, height)
