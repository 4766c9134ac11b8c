"""Embedder evaluation on real crops: a split whose test crops come from the photos of its train crops is named as not
held out, and a real folder holding no crops to judge is refused before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.embedder import Embedder
from models.eval_embed import real_currencies, real_eval, write_report
from tests.models.embed_helpers import tiny_checkpoint

WON = {
    "train/10won": ["20201011_153140.jpg-151.jpg", "20201011_153140.jpg-157.jpg"],
    "test/10won": ["20201011_153140.jpg-352.jpg", "20201011_153147.jpg-154.jpg"],
    "train/500won": ["20201011_153140.jpg-105.jpg", "20201011_153140.jpg-117.jpg"],
    "test/500won": ["20201011_153140.jpg-237.jpg"],
}
"""Won crops as the upstream set splits them: by crop, the test crops cut from the photos of train crops."""
EURO = {
    "train/1e": ["train_10_0.jpg", "train_10_14.jpg"],
    "test/1e": ["IMG_4197_0.jpg", "IMG_4197_1.jpg"],
    "train/2e": ["train_10_12.jpg", "train_11_19.jpg"],
    "test/2e": ["IMG_4193_0.jpg"],
}
"""Euro crops, split by photo."""


@pytest.fixture(scope="module")
def small_real(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real data root holding a few won and euro crops of each split (copied from the real set)."""
    root = tmp_path_factory.mktemp("real")
    for folder, files in (("won_cho0h5/crops", WON), ("euro_kaa/crops", EURO)):
        for sub, names in files.items():
            (root / folder / sub).mkdir(parents=True)
            for name in names:
                shutil.copy2(real_data / folder / sub / name, root / folder / sub / name)
    return root


def test_won_crops_cut_from_the_photos_of_their_references_are_not_held_out(small_real: Path) -> None:
    embedder = Embedder.from_checkpoint(tiny_checkpoint())
    won = real_eval(embedder, small_real, "won")
    euro = real_eval(embedder, small_real, "euro")
    assert won is not None and euro is not None
    assert not won.held_out and won.shared_photos == ("20201011_153140",) and won.n_query_photos == 2
    assert "1 of its 2 test photos also gave train crops" in won.split_text()
    assert euro.held_out and euro.split_text().startswith("split by source photo")


def test_the_report_says_the_won_figures_are_not_held_out(small_real: Path, tmp_path: Path) -> None:
    """The report said "split by source photo" of the won crops too, and its Recall@1 1.000 read as held out."""
    embedder = Embedder.from_checkpoint(tiny_checkpoint())
    path, summary = write_report(embedder, tmp_path / "rep", real_root=small_real, latency=False, progress=False)
    md = path.read_text(encoding="utf-8")
    won = md[md.index("## Real won crops") :]
    assert won.startswith("## Real won crops (not held out)")
    assert "not held out: its train and test crops come from the same photos" in won.split("\n\n")[1]
    euro = md[md.index("## Real euro crops") : md.index("## Real won crops")]
    assert "split by source photo" in euro and "not held out" not in euro
    assert any(line.startswith("real won (not held out:") for line in summary)
    assert any(line.startswith("real euro: R@1") for line in summary)


def test_a_real_folder_with_no_crops_to_judge_is_refused_before_any_work(small_real: Path, tmp_path: Path) -> None:
    """One level too high (``…/data`` for ``…/data/real``) silently left the real section out."""
    embedder = Embedder.from_checkpoint(tiny_checkpoint())
    assert real_currencies(small_real) == ("euro", "won")
    assert real_currencies(small_real.parent) == ()
    with pytest.raises(FileNotFoundError, match=r"holds neither euro_kaa/crops/.*nor won_cho0h5/crops/"):
        write_report(embedder, tmp_path / "rep", real_root=small_real.parent, latency=False, progress=False)
    assert not (tmp_path / "rep").exists()
