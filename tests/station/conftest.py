"""Station fixtures: a stepping clock, replayed cup images, a small real pipeline, a real SQLite verdict log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import pytest

from db.repository import VerdictRepository
from db.schema import Role
from db.spool import SpoolingRepository
from models.synth.mint import Mint, generate_mint
from models.types import Side
from station.config import StationConfig, config_from_dict
from station.controllers.catalog import TypeCatalog
from tests.station.nearest_type_pipeline import NearestTypePipeline, build_gallery, compose_cup, tiny_embedder

if TYPE_CHECKING:
    from pytestqt.qtbot import QtBot

    from station.main_window import MainWindow
    from station.worker import VerdictSource

OpenWindow = Callable[..., AbstractContextManager["MainWindow"]]
"""The :func:`window_with` fixture: opens the operator window with extra arguments, as a ``with`` block."""

OPERATOR, OPERATOR_PIN = "olga", "2468"
SUPERVISOR, SUPERVISOR_PIN = "sam", "975310"


class SteppingClock:
    """A monotonic clock that moves only when told (replayed frames without sleeping)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture(scope="module")
def mint() -> Mint:
    return generate_mint(6, 0)


@pytest.fixture(scope="module")
def pipeline(mint: Mint) -> NearestTypePipeline:
    embedder = tiny_embedder()
    return NearestTypePipeline(embedder, build_gallery(mint, embedder))


@pytest.fixture(scope="module")
def catalog(mint: Mint) -> TypeCatalog:
    return TypeCatalog.from_mint(mint)


@pytest.fixture(scope="module")
def replay_dir(mint: Mint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``00_pure.png`` (four coins of the first type) and ``01_mixed.png`` (one coin of the second type among them)."""
    a, b = mint.types[0], mint.types[1]
    folder = tmp_path_factory.mktemp("replay")
    pure = [(a, Side.OBVERSE), (a, Side.REVERSE), (a, Side.OBVERSE), (a, Side.REVERSE)]
    mixed = [(a, Side.OBVERSE), (b, Side.REVERSE), (a, Side.OBVERSE), (a, Side.REVERSE)]
    cv2.imwrite(str(folder / "00_pure.png"), compose_cup(pure))
    cv2.imwrite(str(folder / "01_mixed.png"), compose_cup(mixed))
    return folder


@dataclass
class Database:
    """A migrated SQLite verdict log in ``folder`` (which a test may move away to cut the database off)."""

    folder: Path
    home: Path
    repository: VerdictRepository

    @property
    def url(self) -> str:
        return f"sqlite:///{self.folder / 'cupcheck.db'}"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    folder = tmp_path / "dbdir"
    folder.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    repository = VerdictRepository.open(home, f"sqlite:///{folder / 'cupcheck.db'}")
    repository.add_operator(OPERATOR, Role.OPERATOR, OPERATOR_PIN)
    repository.add_operator(SUPERVISOR, Role.SUPERVISOR, SUPERVISOR_PIN)
    yield Database(folder, home, repository)
    repository.engine.dispose()


@pytest.fixture
def spooling(database: Database) -> SpoolingRepository:
    return SpoolingRepository(database.repository)


@pytest.fixture
def station_config(replay_dir: Path) -> StationConfig:
    return config_from_dict(
        {"name": "test-bench", "sound": False, "camera": {"kind": "folder", "folder": str(replay_dir), "fps": 50}}
    )


@contextmanager
def shown_window(
    qtbot: QtBot,
    pipeline: VerdictSource,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    config: StationConfig,
    replay_dir: Path,
    clock: SteppingClock,
    **kwargs: Any,
) -> Iterator[MainWindow]:
    """The operator window on the replay folder, shown, with its first frame on screen; shut down afterwards."""
    from station.camera import FolderSource
    from station.main_window import MainWindow

    source = FolderSource(replay_dir, clock=clock, hold_s=60.0)
    win = MainWindow(pipeline, spooling, source, config, operator=OPERATOR, catalog=catalog, clock=clock, **kwargs)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(win.view.preview.has_image, timeout=30_000)  # the first frame is on screen
    try:
        yield win
    finally:
        win.shutdown()


@pytest.fixture
def window_with(
    qtbot: QtBot,
    pipeline: NearestTypePipeline,
    spooling: SpoolingRepository,
    catalog: TypeCatalog,
    station_config: StationConfig,
    replay_dir: Path,
    clock: SteppingClock,
    tmp_path: Path,
) -> OpenWindow:
    """Opens the operator window as :func:`shown_window` does, home in ``tmp_path``, with extra ``MainWindow``
    arguments (orders, a bench, ...) and, given ``config=``, another station configuration."""

    def open_window(config: StationConfig | None = None, **kwargs: Any) -> AbstractContextManager[MainWindow]:
        return shown_window(
            qtbot, pipeline, spooling, catalog, config or station_config, replay_dir, clock, home=tmp_path, **kwargs
        )

    return open_window


class Reading(Protocol):
    """A controller that reads the database off the GUI thread."""

    @property
    def reading(self) -> bool:
        """Whether a read is on its way."""
        ...


def settle(qtbot: QtBot, controller: Reading, timeout_ms: int = 10_000) -> None:
    """Wait until every read ``controller`` asked for has answered and been drawn."""
    qtbot.waitUntil(lambda: not controller.reading, timeout=timeout_ms)
