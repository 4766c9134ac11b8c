"""``cupcheck eval verdict`` reports on the model a station runs: its fine-tuned output layer applied, no PASS
under the floor the station applies, no photo limit that judges every photo or none."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from calibration.risk import PASS_FLOOR, ThresholdChoice, choose_threshold
from models.adapter import ADAPTER_FILE, EmbeddingAdapter
from models.bundle import load_bundle
from models.eval_real import evaluate_real, real_cup_counts, real_cups_lines
from models.eval_verdict import EvalConfig, _at_threshold, breakdown_threshold, evaluate, threshold_text
from models.files import sha256_file
from models.references import REFERENCES_FILE, StationReferences
from models.synth.dataset import SynthConfig, write_dataset
from models.synth.scene import SceneOptions
from models.train.galleries import ENROL_DIR
from models.types import CupKind
from station.cli import main
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import write_bundle

SCENE = SceneOptions(image_size=256, max_coins=6, kind_weights={CupKind.PURE: 1.0, CupKind.CONTAMINATED: 1.0})
ENROL = SceneOptions(image_size=256, max_coins=6, kind_weights={CupKind.PURE: 1.0})


def _choice(threshold: float, target: float = 0.9) -> ThresholdChoice:
    """A threshold as certified at ``target`` (the evidence behind it does not matter here)."""
    return ThresholdChoice(threshold, target, 0.05, 100, 50, 2, 0.96, 0.9, 0.5, 0.01)


def test_a_threshold_certified_under_the_floor_counts_only_the_passes_the_station_gives() -> None:
    """A loose target certifies 0.08; the station still passes nothing under 0.5, so neither does the report."""
    scores = np.array([0.99, 0.9, 0.6, 0.4, 0.3, 0.1, 0.0])
    y = np.array([True, True, True, False, True, False, True])
    loose = _choice(0.08)
    prec, cov, n_acc, n_err = _at_threshold(scores, y, loose)
    assert (n_acc, n_err) == (3, 0) and prec == 1.0 and cov == pytest.approx(3 / 5)
    assert threshold_text(loose) == f"0.0800 ({PASS_FLOOR:g} applied)"
    assert threshold_text(_choice(0.97)) == "0.9700" and threshold_text(_choice(float("inf"))) == "never PASS"


def test_the_by_kind_breakdown_is_shown_at_the_floor_when_the_certified_threshold_lies_under_it() -> None:
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.uniform(0.0001, 0.4, 3000), rng.uniform(0.6, 1.0, 3000)])
    correct = np.concatenate([rng.random(3000) < 0.97, np.ones(3000, bool)])
    choice = choose_threshold(scores, correct, target=0.9, delta=0.05)
    assert choice.can_pass and choice.threshold < PASS_FLOOR  # the loose target certifies under the floor
    thr, label = breakdown_threshold(scores, correct, choice, 0.05)
    assert thr == PASS_FLOOR and "raised to the PASS floor 0.5" in label


def test_real_drawn_cups_are_counted_at_the_threshold_the_station_applies() -> None:
    scores = np.array([0.98, 0.7, 0.45, 0.3, 0.2, 0.0])
    y = np.array([True, True, False, False, True, True])
    groups = np.array(["pure", "pure", "contaminated", "wrong type", "pure", "pure"])
    r = real_cup_counts(scores, y, groups, {"bundle": _choice(0.97), "0.95": _choice(0.1, 0.95)})
    assert r["at"]["0.95"] == {
        "threshold": 0.1,
        "applied": PASS_FLOOR,
        "pass": 2,
        "wrong": 0,
        "pure_pass": 2,
        "pure": 4,
    }
    assert r["at"]["bundle"]["pass"] == 1 and r["groups"]["contaminated"]["pass"] == {"bundle": 0, "0.95": 0}
    lines = real_cups_lines({**r, "cups": 4, "pairs": 6, "currencies": ["euro"]})
    assert "| 0.95 | 0.1000 (0.5 applied) | 2 | 0 | 2/4 |" in lines and "| bundle | 0.9700 | 1 | 0 | 1/4 |" in lines


def test_a_real_photo_limit_under_one_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """0 used to judge every photo (``if limit:``) and a negative number none."""
    for limit in (0, -2):
        with pytest.raises(ValueError, match=f"real_limit must be at least 1 .*got {limit}"):
            evaluate_real(tmp_path, load_bundle(), limit=limit, progress=False)
        assert (
            main(["eval", "verdict", "--out", str(tmp_path / "r"), "--real", str(tmp_path), "--real-limit", str(limit)])
            == 2
        )
        assert f"--real-limit must be >= 1, got {limit}" in capsys.readouterr().err
    with pytest.raises(ValueError, match="real_limit must be at least 1"):
        evaluate(EvalConfig(data=tmp_path, out=tmp_path / "r", real=tmp_path, real_limit=0))


def _data_set(folder: Path, seed: int, cups: int, val: float = 0.0) -> Path:
    write_dataset(
        SynthConfig(n_types=4, n_cups=cups, seed=seed, scene=SCENE, crop_size=64, val_fraction=val),
        folder,
        progress=False,
    )
    enrol = SynthConfig(n_types=4, n_cups=8, seed=seed, scene=ENROL, crop_size=64, first_index=1000)
    write_dataset(enrol, folder / ENROL_DIR, progress=False)
    return folder


def test_a_bundle_with_a_fine_tuned_layer_is_evaluated_through_it_and_one_with_station_references_refused(
    tmp_path: Path,
) -> None:
    """The station maps every coin and the gallery by the bundle's layer (``Pipeline.from_parts``); the report
    used to score the bare embedder's pairs, the same with the layer as without it."""
    sets = {
        name: _data_set(tmp_path / name, seed, cups, val)
        for name, seed, cups, val in (("train", 7, 12, 0.25), ("cal", 8, 6, 0.0), ("test", 9, 6, 0.0))
    }
    bare_path, embedder = write_bundle(tmp_path / "b", embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    d = embedder.embed_dim
    layer = EmbeddingAdapter(np.random.default_rng(3).normal(size=(d, d)).astype(np.float32), embedder.version)
    layer.save(tmp_path / "b" / ADAPTER_FILE)
    bare = load_bundle(bare_path)
    adapted = replace(
        bare,
        adapter_file=ADAPTER_FILE,
        adapter_sha256=sha256_file(tmp_path / "b" / ADAPTER_FILE),
        adapter_version=layer.version,
        train={**bare.train, "retrained_from": bare.version},
        version="",
    )
    adapted_path = adapted.save(tmp_path / "b" / "adapted.json")

    def run(bundle: Path, out: str) -> dict[str, np.ndarray]:
        cfg = EvalConfig(
            data=sets["test"],
            out=tmp_path / out,
            bundle=bundle,
            data_train=sets["train"],
            data_cal=sets["cal"],
            cache=tmp_path / "cache",
            turn_cups=0,
        )
        return {r.name: r.scores for r in evaluate(cfg, progress=False).methods}

    plain, through = run(bare_path, "plain"), run(adapted_path, "adapted")
    # scored from the coins' and the gallery's embeddings alone: two runs without the layer differ by about 2e-5
    # (fresh embeddings against cached ones), the layer moves them by about 0.02 and 0.003
    assert plain["softmax"].shape == through["softmax"].shape
    assert np.abs(plain["softmax"] - through["softmax"]).max() > 5e-3
    assert np.abs(plain["mean_nn"] - through["mean_nn"]).max() > 1e-3
    report = (tmp_path / "adapted" / "report.md").read_text()
    assert f"with the bundle's fine-tuned output layer (`{ADAPTER_FILE}`, embeddings `{layer.version}`)" in report
    assert "fine-tuned" not in (tmp_path / "plain" / "report.md").read_text()
    # the bare embedder's cuts are cached once and mapped by the layer, never cached as another embedder's
    assert all(layer.version not in p.name for p in (tmp_path / "cache").glob("cups-*.npz"))

    # station references are coins of the station's own types: refused before any work, naming what to do
    refs_file = StationReferences.empty(d, layer.version).save(tmp_path / "b" / REFERENCES_FILE)
    refs = replace(
        load_bundle(adapted_path), references_file=REFERENCES_FILE, references_sha256=sha256_file(refs_file), version=""
    )
    refs_path = refs.save(tmp_path / "b" / "refs.json")
    with pytest.raises(ValueError, match=rf"carries station references \(references.npz\).*\({bare.version}\)"):
        run(refs_path, "refs")
    assert not (tmp_path / "refs").exists()
    assert json.loads((tmp_path / "adapted" / "results.json").read_text())["methods"]
