"""The demo home: the simulator's types enrolled with a real embedder, the demo operator registered."""

from __future__ import annotations

from pathlib import Path

from db.repository import VerdictRepository
from models.embedder import checkpoint_dict, save_checkpoint
from models.gallery import Gallery
from models.synth.mint import generate_mint
from station.camera import SimulatorSource
from station.controllers.catalog import TypeCatalog
from station.demo import DEMO_OPERATOR, DEMO_ORDER, DEMO_PIN, SimulatorOrders, prepare_demo_home
from tests.station.conftest import SteppingClock
from tests.station.nearest_type_pipeline import tiny_embedder


def test_demo_home_enrols_the_simulator_mint_once(tmp_path: Path) -> None:
    emb = tiny_embedder()
    weights = save_checkpoint(
        checkpoint_dict(emb.network, emb.arch, emb.embed_dim, emb.prep, half=False), tmp_path / "emb.pt"
    )
    home = prepare_demo_home(tmp_path / "demo", n_types=4, seed=5, embedder_path=weights, progress=False)

    gallery = Gallery.load(home / "gallery", embedder_version=emb.version)
    mint = generate_mint(4, 5)
    assert list(gallery.types()) == [t.id for t in mint.types]
    assert all(sides == {"obverse": 1, "reverse": 1} for sides in gallery.types().values())
    catalog = TypeCatalog.from_gallery(home / "gallery")
    assert [t.name for t in catalog.types] == [t.name for t in mint.types]
    picture = catalog.picture(mint.types[0].id)
    assert picture is not None and picture.shape == (96, 96, 3)

    repository = VerdictRepository.open(home)
    assert repository.verify_operator(DEMO_OPERATOR, DEMO_PIN) is not None
    repository.engine.dispose()

    manifest = home / "gallery" / "manifest.json"
    before = manifest.stat().st_mtime_ns
    prepare_demo_home(home, n_types=4, seed=5, embedder_path=weights, progress=False)  # nothing to redo
    assert manifest.stat().st_mtime_ns == before


def test_demo_order_asks_for_the_cup_on_show(clock: SteppingClock) -> None:
    source = SimulatorSource(n_types=4, seed=5, size=160, clock=clock, hold_s=5.0, max_coins=3)
    orders = SimulatorOrders(source)
    source.read()
    first = source.expected_type
    assert first is not None and orders.lookup("demo") == first and orders.lookup("A-1") is None
    mint_ids = {t.id for t in source.mint.types}
    seen = {first}
    for _ in range(6):
        clock.advance(5.0)
        source.read()
        assert orders.lookup(DEMO_ORDER) == source.expected_type in mint_ids
        seen.add(str(source.expected_type))
    assert len(seen) > 1
