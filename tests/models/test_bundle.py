"""The bundle records the hard rule its threshold was certified under, and gives the voter that rule."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from models.bundle import BundleError, load_bundle
from tests.models.embed_helpers import write_tiny_checkpoint
from tests.models.verdict_world import write_bundle


def test_the_fewest_coins_rule_travels_with_the_bundle(tmp_path: Path) -> None:
    path, _ = write_bundle(tmp_path, embedder_file=write_tiny_checkpoint(tmp_path / "embedder.pt"))
    old = load_bundle(path)
    # a bundle from before the rule: no key, any cup with a coin may pass, and its document is unchanged
    assert "min_coins" not in json.loads(path.read_text())["voter"]
    assert old.pass_min_coins == 1 and old.load_voter().min_coins == 1
    assert old.compute_version() == old.version
    three = replace(old, pass_min_coins=3, version="")
    again = load_bundle(three.save(tmp_path / "three.json"))
    assert json.loads((tmp_path / "three.json").read_text())["voter"]["min_coins"] == 3
    assert again.pass_min_coins == 3 and again.load_voter().min_coins == 3
    assert again.version != old.version  # the rule is part of what the version hashes
    doc = json.loads(path.read_text())
    doc["voter"]["min_coins"] = 0
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="min_coins must be >= 1"):
        load_bundle(tmp_path / "bad.json")


def test_the_shipped_bundle_is_certified_on_the_shipped_detectors_cuts() -> None:
    """A detector change (weights or the way it joins and cuts coins) needs the threshold certified again."""
    from models.detector import Detector

    assert load_bundle().calibration_detector == Detector.load().version
