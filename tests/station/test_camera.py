"""Frame sources: folder replay, the simulator, and a real OpenCV capture that fails and comes back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from models.types import Frame
from station.camera import FROZEN, FolderSource, OpenCVSource, SimulatorSource, open_source
from station.config import CameraConfig
from station.controllers.preview import CameraPump, start_pump
from tests.station.conftest import SteppingClock


def write_video(path: Path, n_frames: int, size: tuple[int, int] = (96, 64)) -> Path:
    """A real MJPG video of ``n_frames`` distinct frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for i in range(n_frames):
        frame = np.full((size[1], size[0], 3), 40 * (i + 1), np.uint8)
        writer.write(frame)
    writer.release()
    return path


def write_pictures(path: Path, pictures: list[np.ndarray]) -> Path:
    """A real MJPG video of ``pictures``, one frame each (``(64, 96, 3)`` uint8)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15.0, (96, 64))
    assert writer.isOpened()
    for picture in pictures:
        writer.write(picture)
    writer.release()
    return path


def test_a_camera_that_sends_the_same_picture_is_lost_as_frozen(tmp_path: Path, clock: SteppingClock) -> None:
    rng = np.random.default_rng(5)
    picture = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    video = write_pictures(tmp_path / "still.avi", [picture] * 120)  # a driver handing out its last buffer again
    source = OpenCVSource(str(video), clock=clock, reconnect_s=1.0)
    pump = CameraPump(source, fps=15, clock=clock)
    lost: list[str] = []
    back: list[bool] = []
    pump.camera_lost.connect(lost.append)
    pump.camera_restored.connect(lambda: back.append(True))
    frames: list[Frame] = []
    pump.frame_ready.connect(frames.append)
    for _ in range(45):  # 3 s
        pump.tick()
        clock.advance(1 / 15)
    assert lost == [f"{video} — {FROZEN}"] and source.lost and source.lost_reason == FROZEN
    assert 29 <= len(frames) <= 32  # about 2 s of the same picture, then nothing
    for _ in range(60):  # reopened every second onto the same picture: still frozen, never back in between
        pump.tick()
        clock.advance(1 / 15)
    assert back == [] and source.lost and 29 <= len(frames) <= 32
    source.close()


def test_a_live_camera_of_a_still_scene_and_the_replayed_sources_are_never_frozen(
    tmp_path: Path, clock: SteppingClock, replay_dir: Path
) -> None:
    rng = np.random.default_rng(6)
    scene = rng.integers(20, 236, (64, 96, 3)).astype(np.int16)
    noisy = [np.clip(scene + rng.normal(0, 3, scene.shape), 0, 255).astype(np.uint8) for _ in range(75)]
    live = OpenCVSource(str(write_pictures(tmp_path / "live.avi", noisy)), clock=clock)  # a sensor's noise
    folder = FolderSource(replay_dir, clock=clock, hold_s=60.0)  # one picture on purpose, for a minute
    simulator = SimulatorSource(n_types=4, seed=3, size=96, clock=clock, hold_s=60.0, max_coins=2)
    for _ in range(70):  # more than 4 s
        assert live.read() is not None and folder.read() is not None and simulator.read() is not None
        clock.advance(1 / 15)
    assert not live.lost and not folder.lost and not simulator.lost
    live.close()


def test_folder_replay_holds_each_image_then_loops(replay_dir: Path, clock: SteppingClock) -> None:
    source = FolderSource(replay_dir, clock=clock, hold_s=2.0)
    first = source.read()
    assert first is not None and first.image.shape == (480, 480, 3) and first.source.endswith("00_pure.png")
    clock.advance(1.0)
    assert source.read() is first  # same image while it is held, decoded once
    clock.advance(1.5)
    second = source.read()
    assert second is not None and second.source.endswith("01_mixed.png")
    assert not np.array_equal(first.image, second.image)
    clock.advance(2.0)
    again = source.read()
    assert again is not None and again.source.endswith("00_pure.png")
    source.advance()
    nxt = source.read()
    assert nxt is not None and nxt.source.endswith("01_mixed.png")
    assert not source.lost


def test_folder_replay_refuses_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no image"):
        FolderSource(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_source(CameraConfig(kind="folder", folder=tmp_path / "missing"))


def test_simulator_draws_a_new_cup_per_hold(clock: SteppingClock) -> None:
    source = SimulatorSource(n_types=4, seed=3, size=192, clock=clock, hold_s=5.0, max_coins=4)
    a = source.read()
    assert a.image.shape == (192, 192, 3) and a.image.dtype == np.uint8
    assert source.expected_type in {t.id for t in source.mint.types}
    assert source.read() is a
    clock.advance(5.0)
    b = source.read()
    assert b is not a and not np.array_equal(a.image, b.image)
    assert not source.lost
    # the tray of the cup on show, photographed with nothing in it: the same view, without the coins
    empty = source.empty_tray(1)
    assert empty.shape == b.image.shape and empty.dtype == np.uint8
    diff = np.abs(empty.astype(int) - b.image.astype(int)).max(axis=2)
    assert np.median(diff) < 12 and (diff > 60).mean() > 0.05  # the tray alike, the coins gone


def test_capture_failure_marks_lost_then_reconnects(tmp_path: Path, clock: SteppingClock) -> None:
    video = write_video(tmp_path / "cam.avi", 3)
    source = OpenCVSource(str(video), clock=clock, reconnect_s=2.0)
    frames = [source.read() for _ in range(3)]
    assert all(f is not None for f in frames) and not source.lost
    assert source.read() is None  # the stream ended: the capture fails
    assert source.lost
    clock.advance(1.0)
    assert source.read() is None and source.lost  # too early to retry
    clock.advance(1.5)
    back = source.read()  # reopened
    assert back is not None and not source.lost
    assert back.image.shape == (64, 96, 3)
    source.close()


def test_unopenable_camera_starts_lost(tmp_path: Path, clock: SteppingClock) -> None:
    source = OpenCVSource(str(tmp_path / "no-such-stream.avi"), clock=clock, reconnect_s=1.0)
    assert source.lost and source.read() is None


def test_a_webcam_that_is_not_there_is_opened_without_opencvs_noise(tmp_path: Path) -> None:
    # OpenCV prints each capture backend's failure on the process's stderr, out of Python's reach: run a process
    code = (
        "import cv2\n"
        "from station.camera import OpenCVSource\n"
        "level = cv2.utils.logging.getLogLevel()\n"
        "source = OpenCVSource(7)\n"
        "assert source.lost and cv2.utils.logging.getLogLevel() == level\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["camera webcam 7 lost; retrying every 2.0 s"]  # the station's words alone


def test_pump_signals_camera_lost_and_restored(qtbot: QtBot, tmp_path: Path) -> None:
    video = write_video(tmp_path / "cam.avi", 2)
    source = OpenCVSource(str(video), reconnect_s=0.05)
    pump = CameraPump(source, fps=100)
    frames: list[object] = []
    pump.frame_ready.connect(frames.append)
    with qtbot.waitSignal(pump.camera_lost, timeout=5000) as lost:
        pump.start()
    assert lost.args == [str(video)]
    assert len(frames) == 2
    with qtbot.waitSignal(pump.camera_restored, timeout=5000):
        pass
    pump.stop()
    assert len(frames) >= 3


def test_threaded_pump_reports_frames_and_fps(qtbot: QtBot, replay_dir: Path) -> None:
    running = start_pump(FolderSource(replay_dir), fps=50)
    frames: list[Frame] = []
    rates: list[float] = []
    running.pump.frame_ready.connect(frames.append)  # called in the pump's thread
    running.pump.fps_measured.connect(rates.append)
    try:
        qtbot.waitUntil(lambda: len(rates) > 0, timeout=5000)
        assert frames[0].image.shape == (480, 480, 3)
        assert rates[0] >= 10.0
    finally:
        running.stop()
    assert not running.thread.isRunning()
