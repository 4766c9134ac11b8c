"""Training the detector: a resumed segmenter ends where a whole run ends, bad checkpoints are named, and YOLO
trains on the data folder it is given without reaching the network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from models.detector import DEFAULT_DIR
from models.train.detector import RUN_DATA_YAML, SegmenterTrainConfig, train_segmenter
from models.train.loop import peek_state
from tests.models.train.synth_sets import write_detector_set

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six small cups of four types (two in the val split)."""
    return write_detector_set(tmp_path_factory.mktemp("det_data") / "synth")


def _seg_config(data: Path, out: Path) -> SegmenterTrainConfig:
    return SegmenterTrainConfig(data=data, out=out, epochs=3, size=32, widths=(4, 8, 8, 8), batch=4)


def test_a_resumed_segmenter_run_ends_where_an_uninterrupted_one_ends(data: Path, tmp_path: Path) -> None:
    """Stopped after its first epoch and resumed, the run draws the same augmentations as one that ran through."""
    whole = _seg_config(data, tmp_path / "whole")
    train_segmenter(whole, progress=False)
    cut = replace(whole, out=tmp_path / "cut", max_minutes=0.0)  # stops after the first epoch, resumably
    train_segmenter(cut, progress=False)
    state = tmp_path / "cut" / "segmenter" / "state.pt"
    done, extra = peek_state(state)
    assert done.epoch == 1 and extra["epochs"] == 3
    train_segmenter(replace(cut, max_minutes=None), resume=True, progress=False)
    a = torch.load(tmp_path / "whole" / "segmenter" / "state.pt", map_location="cpu", weights_only=False)
    b = torch.load(state, map_location="cpu", weights_only=False)
    assert [h["loss"] for h in b["history"]] == [h["loss"] for h in a["history"]]
    for key, value in a["modules"]["net"].items():
        torch.testing.assert_close(b["modules"]["net"][key], value, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["truncated", "text", "list"])
def test_a_seg_init_that_is_no_segmenter_checkpoint_is_named(data: Path, tmp_path: Path, kind: str) -> None:
    """A cut-off segmenter file, a text file or a pickle of something else: a ValueError naming the file."""
    init = tmp_path / "init.pt"
    if kind == "truncated":
        shipped = (DEFAULT_DIR / "segmenter.pt").read_bytes()
        init.write_bytes(shipped[: len(shipped) // 2])
    elif kind == "text":
        init.write_text("hello\n")
    else:
        torch.save([1, 2, 3], init)
    with pytest.raises(ValueError, match=f"{init}") as err:
        train_segmenter(replace(_seg_config(data, tmp_path / "run"), init=init), progress=False)
    assert ("not a segmenter checkpoint" if kind == "list" else "is not a readable torch checkpoint") in str(err.value)


_TRAIN_YOLO = """
import json, sys
from pathlib import Path
reached = []
sys.addaudithook(lambda event, args: reached.append(event) if event.startswith("socket.") else None)
from models.train.detector import YoloTrainConfig, train_yolo
best = train_yolo(YoloTrainConfig(data=Path(sys.argv[1]), out=Path(sys.argv[2]), epochs=1, imgsz=64, batch=4))
print(json.dumps({"best": str(best), "reached": sorted(set(reached))}))
"""


@pytest.mark.slow
def test_yolo_trains_on_the_folder_it_is_given_and_reaches_no_network(data: Path, tmp_path: Path) -> None:
    """A set written with an absolute ``path`` (older ``cupcheck synth``) and then moved still trains, from where
    it lies now; ultralytics keeps its settings in cupcheck's cache and asks the web for no font."""
    original = tmp_path / "original"
    shutil.copytree(data, original)
    (original / "yolo" / "data.yaml").write_text(
        f"path: {(original / 'yolo').resolve()}\ntrain: images/train\nval: images/val\nnames:\n  0: coin\n  1: object\n"
    )
    moved = tmp_path / "moved"
    original.rename(moved)
    home, cache, out = tmp_path / "home", tmp_path / "cache", tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("YOLO_CONFIG_DIR", "XDG_CONFIG_HOME")}
    env.update(HOME=str(home), CUPCHECK_CACHE=str(cache), YOLO_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-c", _TRAIN_YOLO, str(moved), str(out)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(said["best"]).is_file() and said["reached"] == []
    run_yaml = out / RUN_DATA_YAML
    assert f"path: {(moved / 'yolo').resolve()}" in run_yaml.read_text()
    assert f"data: {run_yaml.resolve()}" in (out / "yolo" / "args.yaml").read_text()
    assert not (home / ".config" / "Ultralytics").exists() and not (tmp_path / "runs").exists()
    assert (cache / "ultralytics" / "Ultralytics" / "Arial.ttf").is_file()
