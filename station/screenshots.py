"""Screenshots of the operator and supervisor windows, for the README and for checking the layout by eye.

Run it in a real (virtual) display with the shipped model; ``--home`` is made a demo home first (the simulator's
types enrolled, see :mod:`station.demo`)::

    xvfb-run -a -s "-screen 0 1400x900x24" python -m station.screenshots --home /tmp/demo-home --out docs/screenshots

(``make screenshots`` does this; on Debian it needs ``apt-get install xvfb xauth libxcb-cursor0``.)

It opens the operator window on simulator cups, checks a cup that passes, one that is flagged for a supervisor and
one whose FLAG asks for coins to be turned over first, the passing cup again for an order of one coin more, a camera
knocked 24 px since its empty-tray photo, a lost camera, logs a few more verdicts to a throw-away database, and opens
the review window on them. Each window is grabbed with ``QWidget.grab()`` into ``operator_pass.png``,
``operator_flag.png``, ``operator_turn.png``, ``operator_count.png``, ``operator_camera_moved.png``,
``operator_camera_lost.png`` and ``review.png``. Last, on the station of :mod:`station.tray_demo`, a supervisor
photographs a tray of a type its gallery lacks, both sides up, in "Enrol a coin type from the tray…"
(``enrol_tray.png``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer, SignalInstance
from PySide6.QtWidgets import QWidget

from db.repository import VerdictRepository
from db.schema import LabelKind, Role
from db.spool import SpoolingRepository
from models.types import Decision, Frame, Side, UInt8Array, Verdict
from station.app import aside_since, qt_application
from station.camera import FrameSource, SimulatorSource
from station.config import StationConfig, config_from_dict
from station.controllers.catalog import TypeCatalog
from station.controllers.enrol import Enrolment
from station.controllers.enrol_tray import TrayEnrolController
from station.main_window import MainWindow
from station.review_window import ReviewWindow
from station.views.enrol_tray import TrayEnrolView
from station.worker import CheckRequest, CheckResult, StoreResult, VerdictSource, make_record

OPERATOR, OPERATOR_PIN = "olga", "2468"
SUPERVISOR, SUPERVISOR_PIN = "sam", "975310"
WAIT_MS = 60_000


class ManualClock:
    """A clock the script moves by hand (one simulator cup per step)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wait_for(signal: SignalInstance, timeout_ms: int = WAIT_MS) -> list[object]:
    """Run the event loop until ``signal`` fires (returning its arguments) or the time runs out.

    Raises:
        TimeoutError: the signal did not fire in time.
    """
    loop = QEventLoop()
    got: list[list[object]] = []

    def fired(*args: object) -> None:
        got.append(list(args))
        loop.quit()

    signal.connect(fired)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(fired)
    if not got:
        raise TimeoutError(f"no signal within {timeout_ms} ms")
    return got[0]


def settle(ms: int = 300) -> None:
    """Let the event loop run for ``ms`` milliseconds (frames arrive, layouts settle)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(
    done: Callable[[], bool], what: str, *, poke: Callable[[], object] | None = None, timeout_ms: int = WAIT_MS
) -> None:
    """Let the event loop run until ``done()`` holds, calling ``poke()`` first each round when given.

    Raises:
        TimeoutError: ``done()`` did not hold in time (``what``: what was waited for).
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_ms} ms")
        if poke is not None:
            poke()
        settle(200)


def grab(widget: QWidget, path: Path, colours: int = 256) -> Path:
    """Save the widget as drawn on screen, as a PNG of ``colours`` palette colours (a third of the bytes)."""
    from PIL import Image

    settle(200)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw.png")
    if not widget.grab().save(str(raw)):
        raise OSError(f"could not write {raw}")
    with Image.open(raw) as image:
        image.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    raw.unlink()
    print(f"wrote {path}", file=sys.stderr)
    return path


SHOTS: tuple[tuple[str, str], ...] = (
    ("pass", "operator_pass.png"),
    ("flag", "operator_flag.png"),
    ("turn", "operator_turn.png"),
)
"""The operator window's kinds of check and their files: a PASS, a FLAG for a supervisor, a FLAG that asks for
coins to be turned over first."""


def shot_kind(verdict: Verdict) -> str:
    """``"pass"``, ``"turn"`` (a FLAG that asks for coins to be turned first) or ``"flag"``."""
    if verdict.decision is Decision.PASS:
        return "pass"
    return "turn" if verdict.turn_first else "flag"


def find_cups(pipeline: VerdictSource, frames: Callable[[int], tuple[Frame, str]], tries: int = 40) -> dict[str, int]:
    """Search the first ``tries`` cups for one of each :data:`SHOTS` kind (:func:`shot_kind`); ``kind → cup index``."""
    found: dict[str, int] = {}
    for i in range(tries):
        frame, expected = frames(i)
        found.setdefault(shot_kind(pipeline.run(frame, expected)), i)
        if len(found) == len(SHOTS):
            break
    return found


def capture(
    pipeline: VerdictSource,
    catalog: TypeCatalog,
    source: FrameSource,
    expected_of: Callable[[], str | None],
    clock: ManualClock,
    cups: dict[str, int],
    hold_s: float,
    out: Path,
    *,
    extra_cups: Sequence[int] = (),
    config: StationConfig | None = None,
    enrolment: Enrolment | None = None,
    model: Sequence[str] = (),
    set_up_view: tuple[int, UInt8Array] | None = None,
) -> list[Path]:
    """Take the screenshots (see the module docstring); return the files written.

    Args:
        pipeline: judges cups.
        catalog: the enrolled types.
        source: the frame source, showing cup ``i`` while ``clock.now`` is in ``[i * hold_s, (i + 1) * hold_s)``.
        expected_of: the expected type of the cup on show.
        clock: the source's clock.
        cups: cup indices to check, by the :data:`SHOTS` kind of check they get.
        hold_s: the source's hold time per cup.
        out: the output folder.
        extra_cups: more cups to log for the review window.
        config: the station configuration (a demo one by default).
        enrolment: offered in the review window.
        model: the review window's lines about the model.
        set_up_view: a cup whose surroundings can be recognised and an empty-tray photo of it taken before the
            camera moved (the pipeline compares with it for one screenshot).
    """
    written: list[Path] = []
    config = config or config_from_dict({"name": "packing-1", "sound": False, "camera": {"fps": 15}})
    with tempfile.TemporaryDirectory(prefix="cupcheck-shots-") as tmp:
        home = Path(tmp)
        repository = VerdictRepository.open(home)
        repository.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
        repository.add_operator(SUPERVISOR, Role.SUPERVISOR, SUPERVISOR_PIN)
        spooling = SpoolingRepository(repository)
        win = MainWindow(  # with a Sign out button and the bench of cups put aside, as at a station
            pipeline,
            spooling,
            source,
            config,
            operator=OPERATOR,
            catalog=catalog,
            home=home,
            sign_in=lambda: None,
            aside=partial(aside_since, repository, config.name),
            aside_photo=repository.read_blob,
        )
        win.resize(1380, 860)
        win.show()
        shown: list[CheckResult] = []
        win.controller.verdict_shown.connect(shown.append)
        checked: dict[str, tuple[CheckResult, StoreResult]] = {}
        for kind, name in SHOTS:
            if kind not in cups:
                print(f"no {kind} cup found; skipping {name}", file=sys.stderr)
                continue
            clock.now = cups[kind] * hold_s + 0.5
            settle(1200)
            expected = expected_of()
            assert expected is not None
            win.view.order_edit.setText(f"ORD-{4711 + cups[kind]}")
            win.controller.choose_type(expected, order=win.view.order_edit.text())
            win.controller.filter_types("")
            settle(200)
            if not win.controller.check():
                raise RuntimeError(f"the check did not start: {win.view.reason.text()}")
            (store,) = wait_for(win.controller.store_shown)
            assert isinstance(store, StoreResult)
            checked[kind] = (shown[-1], store)
            written.append(grab(win, out / name))
        if "flag" in checked and win.bench is not None:  # a supervisor finds the flagged cup's odd coin another type
            result, store = checked["flag"]
            odd = next((c for c in result.verdict.coins if c.suspicious and c.matches), None)
            if odd is not None and store.verdict_id is not None:
                cup = repository.cup_of_verdict(store.verdict_id)
                repository.relabel(
                    SUPERVISOR, cup, LabelKind.CORRECTED, coin_index=odd.index, corrected_type=odd.matches[0].type_id
                )
                win.bench.refresh()
                wait_for(win.bench.shown)
        passed = [r for r, _ in checked.values() if r.verdict.decision is Decision.PASS]
        if passed:  # the passing cup again, for an order of one coin more
            clock.now = cups["pass"] * hold_s + 0.5
            settle(300)
            win.view.order_edit.setText(f"ORD-{4711 + cups['pass']}")
            win.controller.choose_type(
                passed[0].verdict.expected_type, order=win.view.order_edit.text(), count=passed[0].verdict.n_coins + 1
            )
            if not win.controller.check():
                raise RuntimeError(f"the check did not start: {win.view.reason.text()}")
            wait_for(win.controller.store_shown)
            written.append(grab(win, out / "operator_count.png"))
        if set_up_view is not None and hasattr(pipeline, "empty_tray"):  # the camera was knocked since set-up
            index, empty = set_up_view
            pipeline.empty_tray = empty
            clock.now = index * hold_s + 0.5
            settle(1200)
            wait_until(  # the camera pump asks about once a second
                lambda: bool(win.controller.camera_problem),
                "the moved camera told",
                poke=lambda: win.controller.show_fps(15.0),
            )
            written.append(grab(win, out / "operator_camera_moved.png"))
            pipeline.empty_tray = None
        win.pump.stop()  # the camera goes away: no more frames, the window says so
        settle(300)
        win.controller.camera_lost(source.name)
        written.append(grab(win, out / "operator_camera_lost.png"))
        win.close()
        win.shutdown()

        for i in extra_cups:
            clock.now = i * hold_s + 0.5
            frame = source.read()
            expected = expected_of()
            if frame is None or expected is None:
                continue
            request = CheckRequest(frame, expected, f"ORD-{4711 + i}", OPERATOR, "packing-2")
            result = CheckResult(request, pipeline.run(frame, expected), 0.0)
            repository.log_verdict(make_record(result))
        supervisor = repository.verify_operator(SUPERVISOR, SUPERVISOR_PIN)
        assert supervisor is not None
        review = ReviewWindow(repository, supervisor=supervisor, catalog=catalog, enrolment=enrolment, model=model)
        review.resize(1380, 860)
        review.show()
        settle(300)
        wait_until(lambda: not review.controller.reading, "the review queue read")
        flagged = [i for i, it in enumerate(review.controller.items.values()) if it.decision is Decision.FLAG]
        review.view.queue.setCurrentRow(flagged[0] if flagged else 0)
        wait_until(lambda: not review.controller.reading, "the flagged cup's photo read")
        written.append(grab(review, out / "review.png"))
        review.close()
        review.shutdown()
        repository.engine.dispose()
    return written


def capture_tray_enrolment(out: Path) -> Path:
    """Photograph both sides of the tray of :data:`station.tray_demo.HELD_OUT` in the tray enrolment dialog, give
    the type its id, and grab the dialog into ``out / "enrol_tray.png"``."""
    import cv2

    from db.records import OperatorInfo
    from station.camera import FolderSource
    from station.controllers.enrol_tray import TrayEnrolment
    from station.tray_demo import HELD_OUT, make_tray_demo

    with tempfile.TemporaryDirectory(prefix="cupcheck-tray-") as tmp:
        folder = Path(tmp)
        demo = make_tray_demo(folder / "world")
        camera = folder / "camera"
        camera.mkdir()
        cv2.imwrite(str(camera / "a-obverse.png"), demo.obverse.image)
        cv2.imwrite(str(camera / "b-reverse.png"), demo.reverse.image)
        clock = ManualClock()
        source = FolderSource(camera, clock=clock, hold_s=60.0)
        config = config_from_dict({"name": "packing-1", "sound": False, "camera": {"fps": 15}})
        (folder / "home").mkdir()
        repository = VerdictRepository.open(folder / "home")
        supervisor = OperatorInfo(id=1, name=SUPERVISOR, role=Role.SUPERVISOR.value, active=True)
        offer = TrayEnrolment(folder / "home", demo.gallery_dir, lambda: supervisor)
        win = MainWindow(
            demo.pipeline,
            SpoolingRepository(repository),
            source,
            config,
            operator=OPERATOR,
            catalog=TypeCatalog.from_gallery(demo.gallery_dir),
            clock=clock,
            tray_enrolment=offer,
        )
        win.resize(1380, 860)
        win.show()
        settle(1200)
        opened = win.enrol_from_tray()
        if opened is None:
            raise RuntimeError("the tray enrolment did not open")
        view, controller = opened
        for side, at, photo in ((Side.OBVERSE, 0.5, "a-"), (Side.REVERSE, 60.5, "b-")):  # turned over in between
            clock.now = at
            _photograph_side(view, controller, side, photo)
        view.type_edit.setText(HELD_OUT)
        view.name_edit.setText(next(t.name for t in demo.mint.types if t.id == HELD_OUT))
        settle(300)
        path = grab(view, out / "enrol_tray.png")
        view.close()
        win.close()
        win.shutdown()
        repository.engine.dispose()
    return path


def _photograph_side(view: TrayEnrolView, controller: TrayEnrolController, side: Side, photo: str) -> None:
    """Wait until the camera shows the tray photograph whose file name starts with ``photo``, press the side's
    button, and wait until the side is judged."""
    wait_until(
        lambda: controller.frame is not None and Path(controller.frame.source).name.startswith(photo),
        f"the tray {side.value} up on the camera",
    )
    view.sides[side].shoot_button.click()
    wait_until(lambda: side in controller.looks and not controller.busy, f"the {side.value} judged")


def knocked_camera(source: SimulatorSource, start: int, tries: int = 60) -> tuple[int, UInt8Array] | None:
    """A simulator cup from ``start`` on, on a table whose surroundings can be recognised, and its empty-tray photo
    as it was taken before the camera moved 24 px to the right (the photo's view lies 24 px to the left); ``None``:
    none found."""
    import cv2
    import numpy as np

    from calibration.movement import SetupView

    for i in range(start, start + tries):
        empty = source.empty_tray(i)
        if SetupView(empty).features >= 300:
            h, w = empty.shape[:2]
            shift = np.array([[1.0, 0.0, -24.0], [0.0, 1.0, 0.0]])
            before = cv2.warpAffine(empty, shift, (w, h), borderMode=cv2.BORDER_REFLECT)
            return i, np.ascontiguousarray(before, np.uint8)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Take the screenshots with the real pipeline of ``--home`` on simulator cups."""
    parser = argparse.ArgumentParser(prog="python -m station.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="a folder for the demo station home (gallery, database)")
    parser.add_argument("--out", default="screenshots", help="output folder")
    parser.add_argument("--bundle", default=None, help="verdict bundle JSON (default: shipped)")
    parser.add_argument("--target-precision", type=float, default=None, help="re-choose the PASS threshold for this")
    parser.add_argument("--types", type=int, default=24, help="the simulator mint's number of types")
    parser.add_argument("--seed", type=int, default=0, help="the simulator mint's seed")
    args = parser.parse_args(argv)

    from models.pipeline import Pipeline
    from station.controllers.model_info import describe_model
    from station.demo import prepare_demo_home

    qt_application()
    bundle = None if args.bundle is None else Path(args.bundle)
    home = prepare_demo_home(Path(args.home), n_types=args.types, seed=args.seed, bundle_path=bundle)
    pipeline = Pipeline.load(home, bundle, target_precision=args.target_precision)
    catalog = TypeCatalog.from_gallery(home / "gallery")
    hold_s = 10.0
    clock = ManualClock()
    source = SimulatorSource(args.types, args.seed, clock=clock, hold_s=hold_s)

    def frame_of(i: int) -> tuple[Frame, str]:
        clock.now = i * hold_s + 0.5
        frame = source.read()
        assert source.expected_type is not None
        return frame, source.expected_type

    t0 = time.perf_counter()
    cups = find_cups(pipeline, frame_of)
    set_up_view = knocked_camera(source, max(cups.values(), default=0) + 1)  # after the others: time runs forward
    extra = [i for i in range(12) if i not in cups.values()][:6]
    out = Path(args.out)
    enrolment = Enrolment(home / "gallery", lambda: pipeline.embedder)
    capture(
        pipeline,
        catalog,
        source,
        lambda: source.expected_type,
        clock,
        cups,
        hold_s,
        out,
        extra_cups=extra,
        enrolment=enrolment,
        model=describe_model(bundle, args.target_precision),
        set_up_view=set_up_view,
    )
    capture_tray_enrolment(out)
    print(f"done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
