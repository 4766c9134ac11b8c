"""Enrol a new coin type at the station, from its own tray: a supervisor's job of two photographs.

The dialog (:class:`~station.views.enrol_tray.TrayEnrolView`) shows the tray live for each side until it is
photographed; each photograph is judged on a background thread (:func:`models.enroll_tray.look_at_tray`) and shown
with its coins outlined (green: references; orange: left out, the summary says why). A side that looks like a
design the gallery holds offers "the same design as …", ticked for a design several types already share (a
family's obverse). Enrol writes the photographs and the references under the station home's ``enrolments/``
(:func:`models.enroll_tray.write_tray_catalog`) and enrols them into the gallery the station checks with, the way
``cupcheck enroll`` does (:func:`station.controllers.enrol.enrol_folder`); the window's model follower then loads
the new gallery, and the type can be chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from models.embedder import Embedder
from models.enroll import CATALOG_FILE, load_catalog
from models.enroll_tray import TrayError, TrayLook, TrayType, write_tray_catalog
from models.types import Frame, Side
from station.controllers.enrol import Enrolment, EnrolResult, enrol_folder
from station.controllers.overlay import draw_tray
from station.views.enrol_tray import TrayEnrolView
from station.worker import BackgroundCall, BackgroundThread

ENROLMENTS = "enrolments"
"""The station home's folder of enrolments from the tray (photographs and references, one folder each)."""

LookAtTray = Callable[[Frame, Side], TrayLook]
EnrolTray = Callable[[TrayType, Mapping[Side, TrayLook]], EnrolResult]


@dataclass(frozen=True)
class _Look:
    side: Side


@dataclass(frozen=True)
class _Enrol:
    type_id: str


def enrolment_folder(home: Path, type_id: str, now: datetime | None = None) -> Path:
    """Where an enrolment from the tray is kept: ``HOME/enrolments/<YYYYmmdd-HHMMSS>-<type_id>``."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return home / ENROLMENTS / f"{stamp}-{type_id}"


@dataclass(frozen=True)
class TrayEnrolment:
    """What the operator window needs to enrol a new type from its tray.

    Attributes:
        home: the station home (the enrolments are kept under ``HOME/enrolments``).
        gallery_dir: the gallery the station checks with (the home's, or a site's shared one).
        authorise: asks for a supervisor's sign-in and returns who signed in, ``None`` when cancelled; ``None``:
            nobody is asked (the demo).
    """

    home: Path
    gallery_dir: Path
    authorise: Callable[[], object | None] | None = None

    def enrol(self, embedder: Callable[[], Embedder]) -> EnrolTray:
        """The enrolment step for the dialog: write the photographs and references into a new folder under
        ``HOME/enrolments`` and enrol them into the gallery with ``embedder`` (the model's, without a fine-tuned
        output layer, as the gallery holds it). A type enrolled again keeps its declared lookalikes, and its name
        and diameter where the dialog left them blank (:meth:`~models.enroll_tray.TrayType.over`)."""

        def enrol(coin: TrayType, looks: Mapping[Side, TrayLook]) -> EnrolResult:
            saved = load_catalog(self.gallery_dir / CATALOG_FILE).get(coin.type_id)  # a type enrolled again
            catalog = write_tray_catalog(enrolment_folder(self.home, coin.type_id), coin.over(saved), looks)
            return enrol_folder(catalog, Enrolment(self.gallery_dir, embedder))

        return enrol


class TrayEnrolController(QObject):
    """Drives the tray enrolment dialog.

    Args:
        view: the dialog.
        look: judges a photograph of one side (runs on the background thread).
        enrol: writes and enrols the type from the photographs kept (runs on the background thread).
        enrolled_types: the types the gallery holds now (enrolling one again replaces its photographs, once
            confirmed).
        per_side: the references a side the model was calibrated with (fewer are named in the summary).

    Signals:
        enrolled(EnrolResult): the type is in the gallery.
    """

    enrolled = Signal(object)

    def __init__(
        self,
        view: TrayEnrolView,
        *,
        look: LookAtTray,
        enrol: EnrolTray,
        enrolled_types: Collection[str] = (),
        per_side: int = 0,
    ) -> None:
        super().__init__()
        self.view = view
        self._look = look
        self._enrol = enrol
        self._enrolled_types = set(enrolled_types)
        self._per_side = per_side
        self.looks: dict[Side, TrayLook] = {}
        self._frame: Frame | None = None
        self._busy = False
        self._replace_confirmed = ""
        self.result: EnrolResult | None = None
        self._thread = BackgroundThread()
        self._thread.worker.finished.connect(self._finished)
        self._thread.worker.failed.connect(self._failed)
        for side, panel in view.sides.items():
            panel.shoot_button.clicked.connect(lambda _=False, s=side: self.shoot(s))
        view.enrol_button.clicked.connect(self.enrol)
        view.type_edit.textChanged.connect(self._details_changed)
        view.finished.connect(lambda _code: self.stop())

    # -- the tray ------------------------------------------------------------------------------------------------

    @Slot(object)
    def show_frame(self, frame: Frame) -> None:
        """A live frame: shown on each side not photographed yet."""
        self._frame = frame
        for side, panel in self.view.sides.items():
            if side not in self.looks:
                panel.picture.set_image(frame.image)

    @Slot(str)
    def camera_lost(self, name: str) -> None:
        """The camera stopped: nothing is photographed until its frames come back."""
        self._frame = None
        self._say(f"The camera {name} stopped delivering: wait for it, then photograph again.")

    def shoot(self, side: Side) -> bool:
        """Photograph the tray as it lies now for ``side`` and judge it; return whether it was started."""
        if self._busy:
            return False
        if self._frame is None:
            self._say("No camera image yet: wait for the camera, then photograph again.")
            return False
        self.looks.pop(side, None)
        self._set_busy(True)
        self._say(f"Looking at the {side.value}…")
        frame = self._frame
        self._thread.worker.call(BackgroundCall(_Look(side), lambda: self._look(frame, side)))
        return True

    def _looked(self, side: Side, look: TrayLook) -> None:
        self.looks[side] = look
        panel = self.view.sides[side]
        panel.picture.set_image(draw_tray(look))
        panel.summary.setText(look.summary(self._per_side))
        panel.shoot_button.setText(f"Photograph the {side.value} again")
        guess = look.guess
        panel.design_check.setVisible(guess is not None)
        if guess is not None:
            panel.design_check.setText(f"The same design as {guess.describe()}")
            panel.design_check.setToolTip(
                f"Ticked, the new type's {side.value} is declared the design {guess.design}: a coin showing it then "
                "proves nothing about which of these types it is, and cups pass on the types' own designs. Tick it "
                "only for one picture struck on several types (a family's obverse), not for two pictures alike."
            )
            panel.design_check.setChecked(guess.likely_same)
        if look.diameter_mm is not None and not self.view.diameter_edit.text().strip():
            self.view.diameter_edit.setText(f"{look.diameter_mm:.2f}")
        other = Side.REVERSE if side == Side.OBVERSE else Side.OBVERSE
        if other not in self.looks:
            self._say(f"Now turn every coin over and photograph the {other.value}.")
        else:
            self._say("Check the outlines and the details, then press Enrol.")
        self._update_enrol()

    # -- the details and the enrolment ---------------------------------------------------------------------------

    def details(self) -> TrayType:
        """The type as the dialog's fields and ticks give it.

        Raises:
            TrayError: the diameter is not a number.
        """
        text = self.view.diameter_edit.text().strip().replace(",", ".").removesuffix("mm").strip()
        try:
            diameter = float(text) if text else None
        except ValueError as err:
            raise TrayError(f"the diameter must be a number of millimetres (got {text!r})") from err
        designs = {
            side: look.guess.design
            for side, look in self.looks.items()
            if look.guess is not None and self.view.sides[side].design_check.isChecked()
        }
        return TrayType(self.view.type_edit.text().strip(), self.view.name_edit.text().strip(), diameter, designs)

    def enrol(self) -> bool:
        """Write and enrol the type on the background thread; return whether it was started."""
        if self._busy:
            return False
        try:
            coin = self.details()
            problem = coin.problem()
        except TrayError as err:
            problem = str(err)
        if problem:
            self._say(problem[0].upper() + problem[1:] + ".")
            return False
        if not any(look.references for look in self.looks.values()):
            self._say("No coin to enrol yet: photograph the tray first.")
            return False
        if coin.type_id in self._enrolled_types and self._replace_confirmed != coin.type_id:
            self._replace_confirmed = coin.type_id
            self._say(
                f"{coin.type_id} is enrolled already. Press Enrol again to replace its photographs with these (its "
                "lookalikes are kept, so is the shared design it declared for a side left unticked, and its name and "
                "diameter where left blank)."
            )
            return False
        self._set_busy(True)
        self._say(f"Enrolling {coin.type_id}…")
        looks = dict(self.looks)
        self._thread.worker.call(BackgroundCall(_Enrol(coin.type_id), lambda: self._enrol(coin, looks)))
        return True

    @Slot(object, object)
    def _finished(self, tag: object, result: object) -> None:
        self._set_busy(False)
        if isinstance(tag, _Look) and isinstance(result, TrayLook):
            self._looked(tag.side, result)
        elif isinstance(tag, _Enrol) and isinstance(result, EnrolResult):
            self.result = result
            self._enrolled_types.add(tag.type_id)
            self._say(result.summary())
            self.view.enrol_button.setEnabled(False)
            self.enrolled.emit(result)

    @Slot(object, object)
    def _failed(self, tag: object, error: object) -> None:
        self._set_busy(False)
        what = f"looking at the {tag.side.value}" if isinstance(tag, _Look) else "the enrolment"
        self._say(f"{what[0].upper()}{what[1:]} failed: {error}")

    # -- plumbing ------------------------------------------------------------------------------------------------

    def _details_changed(self, _text: str) -> None:
        self._replace_confirmed = ""
        self._update_enrol()

    def _update_enrol(self) -> None:
        ready = bool(self.view.type_edit.text().strip()) and any(look.references for look in self.looks.values())
        self.view.enrol_button.setEnabled(ready and not self._busy and self.result is None)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for panel in self.view.sides.values():
            panel.shoot_button.setEnabled(not busy)
        self._update_enrol()

    def _say(self, text: str) -> None:
        self.view.status.setText(text)

    @property
    def frame(self) -> Frame | None:
        """The latest live frame (what a photograph would take now)."""
        return self._frame

    @property
    def busy(self) -> bool:
        """Whether a photograph is being judged or the type enrolled."""
        return self._busy

    def stop(self) -> None:
        """End the background thread (after the call in progress)."""
        self._thread.stop()
