"""The dialog that enrols a new coin type from the station's tray: its details, and a photograph of each side."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from models.types import Side
from station.views.operator import STYLE, _section
from station.views.widgets import LABEL_PX, SMALL_PX, FittedLabel, ImageView, WrappedCheckBox, fit_to_screen


class SidePanel(QWidget):
    """One side of the new type: the tray live or as photographed, the button, what the photograph gives.

    Attributes:
        picture: the live tray until photographed, then the photograph with its coins outlined and numbered.
        shoot_button: photographs the tray as it lies now.
        summary: what the photograph gives (references kept, coins left out and why).
        design_check: "the same design as …": shown when the side looks like a design the gallery holds.
    """

    def __init__(self, side: Side, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = _section(side.value)
        self.picture = ImageView(f"Lay the coins {side.value} up, apart")
        self.picture.setMinimumSize(300, 170)  # grows with the dialog; small enough for a 1280×720 screen
        self.shoot_button = QPushButton(f"Photograph the {side.value}")
        self.shoot_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.summary = FittedLabel("", lines=3, max_px=LABEL_PX, min_px=SMALL_PX)
        self.design_check = WrappedCheckBox("")
        self.design_check.setVisible(False)
        box = QVBoxLayout(self)
        box.addWidget(title)
        box.addWidget(self.picture, 1)
        box.addWidget(self.shoot_button)
        box.addWidget(self.summary)
        box.addWidget(self.design_check)


class TrayEnrolView(QDialog):
    """Enrol a coin type from the tray (see :mod:`station.controllers.enrol_tray`).

    Attributes:
        type_edit: the new type's id.
        name_edit: its name.
        diameter_edit: its diameter in mm (filled from the photographs when the camera is calibrated).
        sides: one :class:`SidePanel` per side.
        status: what to do next, or what went wrong.
        enrol_button: enrols the type.
        close_button: closes the dialog.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Enrol a coin type from the tray")
        self.setStyleSheet(STYLE)
        self.type_edit = QLineEdit()
        self.type_edit.setPlaceholderText("type id, e.g. us_de_1999")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name (optional), e.g. Delaware quarter 1999")
        self.diameter_edit = QLineEdit()
        self.diameter_edit.setPlaceholderText("mm (measured when the camera is calibrated)")
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        form.addRow("Type id", self.type_edit)
        form.addRow("Name", self.name_edit)
        form.addRow("Diameter", self.diameter_edit)
        self.sides = {side: SidePanel(side) for side in (Side.OBVERSE, Side.REVERSE)}
        grid = QGridLayout()
        for col, panel in enumerate(self.sides.values()):
            grid.addWidget(panel, 0, col)
        self.status = FittedLabel(
            "Lay 15 coins of the new type on the tray, apart and obverse up, and photograph them; turn every coin "
            "over and photograph the reverse.",
            lines=2,
            max_px=LABEL_PX,
            min_px=SMALL_PX,
        )
        self.enrol_button = QPushButton("Enrol")
        self.enrol_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        self.close_button.setObjectName("secondary")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.enrol_button)
        buttons.addWidget(self.close_button)
        box = QVBoxLayout(self)
        box.addLayout(form)
        box.addLayout(grid, 1)
        box.addWidget(self.status)
        box.addLayout(buttons)
        fit_to_screen(self, (1100, 720))
