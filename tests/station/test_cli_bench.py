"""``cupcheck bench verdict|embed|detect``: both inference backends timed in one run, the same verdict."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.synth.mint import generate_mint
from models.synth.scene import SceneAssets, SceneOptions, render_cup
from station.cli import main


def test_both_backends_are_timed_and_agree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "verdict", "--coins", "3", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "cup of 3 coins" in out
    p = {b: float(v) for b, v in re.findall(r"\[(onnx|torch)\] p_correct ([0-9.]+)", out)}
    assert set(p) == {"onnx", "torch"} and abs(p["onnx"] - p["torch"]) < 1e-4
    speed = re.search(r"onnx is ([0-9.]+)x faster than torch frame to verdict", out)
    assert speed is not None and float(speed.group(1)) > 0
    ratio = re.search(r"ratio ([0-9.]+)x the detector forward pass \((within|above) the 1.3x target, onnx\)", out)
    assert ratio is not None and float(ratio.group(1)) > 1.0


def test_one_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "verdict", "--coins", "2", "--repeats", "1", "--backend", "torch"]) == 0
    out = capsys.readouterr().out
    assert "[torch] frame to verdict" in out and "[onnx]" not in out and "faster than" not in out


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "verdict", "--coins", "0"]) == 2
    assert "--coins, --repeats, --threads and --detector-threads must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["bench", "verdict", "--backend", "cuda"])
    assert exc.value.code == 2
    assert "invalid choice: 'cuda'" in capsys.readouterr().err


def test_bench_embed_times_each_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "embed", "--batches", "2", "--search-sizes", "100"]) == 0
    out = capsys.readouterr().out
    assert "4 rotation(s) a crop" in out
    ms = {b: float(v) for b, v in re.findall(r"\[(onnx|torch)\] embed batch +2: +([0-9.]+) ms/crop", out)}
    assert set(ms) == {"onnx", "torch"} and min(ms.values()) > 0
    assert re.search(r"search +100 refs: +[0-9.]+ ms/query", out)


def test_bench_detect_prints_one_line_per_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene = render_cup(SceneAssets(generate_mint(6, 31)), 31, 0, SceneOptions(image_size=640, max_coins=6))
    image = tmp_path / "cup.png"
    cv2.imwrite(str(image), np.ascontiguousarray(scene.image))
    assert main(["bench", "detect", str(image), "--backend", "both"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["backend"] for r in rows] == ["onnx", "torch"]
    assert all(r["detect_ms_median"] > 0 and r["yolo_predict_ms_median"] > 0 and r["frames"] == 1 for r in rows)


def test_bench_detect_refuses_no_pass_no_frame_and_sizes_yolo_would_round(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = render_cup(SceneAssets(generate_mint(4, 31)), 31, 0, SceneOptions(image_size=640, max_coins=4))
    image = tmp_path / "cup.png"
    cv2.imwrite(str(image), np.ascontiguousarray(scene.image))
    assert main(["bench", "detect", str(image), "--repeats", "0"]) == 2
    assert "--repeats must be >= 1, got 0" in capsys.readouterr().err
    assert main(["bench", "detect", "--data", str(tmp_path), "--n", "0"]) == 2
    assert "--n must be >= 1, got 0" in capsys.readouterr().err
    for size in ("300", "0"):
        assert main(["bench", "detect", str(image), "--imgsz", size]) == 2
        assert f"--imgsz: input size {size} is not a positive multiple of 32" in capsys.readouterr().err
    assert main(["bench", "detect", str(image), "--imgsz", "288", "--backend", "onnx"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["imgsz"] == 288 and row["yolo_threads"] == row["torch_threads"] >= 1


def test_bench_verdict_runs_and_names_the_threads_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["bench", "verdict", "--coins", "2", "--repeats", "1", "--threads", "2", "--backend", "onnx"]) == 0
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert "threads asked for 2, torch ran with 2" in out  # ultralytics' select_device no longer resets it
    assert "[onnx] threads in use: yolo 2, segmenter 2, embedder 2" in out
    # as the station runs them: the embedder on two threads, YOLO and the segmenter on one
    try:
        argv = ["bench", "verdict", "--coins", "2", "--repeats", "1", "--threads", "2", "--detector-threads", "1"]
        assert main([*argv, "--backend", "onnx"]) == 0
    finally:
        torch.set_num_threads(before)
    assert "[onnx] threads in use: yolo 1, segmenter 1, embedder 2" in capsys.readouterr().out
    assert main(["bench", "verdict", "--detector-threads", "0"]) == 2
