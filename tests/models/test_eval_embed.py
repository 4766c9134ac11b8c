"""Embedder evaluation: open-set retrieval with and without the template re-ranking, on a small rendered set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.embedder import Embedder
from models.eval_embed import open_set_eval, record_signatures, retrieval
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import SceneOptions
from models.template import SIG_SHAPE
from models.train.crops_data import read_synth_crops
from models.train.embedder import ImageCache, enrol_query_split
from tests.models.embed_helpers import tiny_checkpoint


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("eval_embed") / "synth"
    scene = SceneOptions(max_coins=10, reverse_share=0.7, real_fraction=0.0)
    write_dataset(SynthConfig(n_types=4, n_cups=8, seed=41, scene=scene), data, progress=False)
    return data


def test_open_set_reports_embedding_and_template_recall(synth: Path) -> None:
    embedder = Embedder.from_checkpoint(tiny_checkpoint())
    rep = open_set_eval(embedder, synth, per_side=2)
    assert rep.n_queries > 0 and rep.n_refs > 0
    assert [r[0] for r in rep.rows] == [r[0] for r in rep.template_rows]
    assert rep.rows[0][1] == rep.template_rows[0][1] == rep.n_queries
    for _, n, r1, r5 in rep.rows + rep.template_rows:
        if n:
            assert 0.0 <= r1 <= r5 <= 1.0
    # an untrained embedder guesses; the template sees the designs
    assert rep.template_rows[0][2] > rep.rows[0][2]


def test_retrieval_memo_gives_the_same_result_and_signatures_match_records(synth: Path) -> None:
    embedder = Embedder.from_checkpoint(tiny_checkpoint())
    records = [r for r in read_synth_crops(synth) if r.side is not None]
    refs, queries = enrol_query_split(records, 2, 30)
    images = ImageCache(embedder.prep)
    memo: dict[Path, np.ndarray] = {}
    a = retrieval(embedder, refs, queries, 3, images, memo=memo)
    b = retrieval(embedder, refs, queries, 3, images, memo=memo)
    c = retrieval(embedder, refs, queries, 3, images)
    assert a.correct_at == b.correct_at == c.correct_at and len(memo) == len({r.path for r in refs + queries})
    assert record_signatures(queries[:3], images).shape == (3, *SIG_SHAPE)
    t = retrieval(embedder, refs, queries, 3, images, templates=True, memo=memo)
    assert all(m.template is not None for ms in t.matches for m in ms)
