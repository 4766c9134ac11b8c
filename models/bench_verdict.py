"""Time one cup from frame to verdict against one bare detector forward pass, in each inference backend, in one run
(``cupcheck bench verdict``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.bundle import load_bundle
from models.embedder import Embedder
from models.runtime import BACKENDS

if TYPE_CHECKING:
    from models.detector import Detector


@dataclass(frozen=True)
class BackendRun:
    """One inference backend's median milliseconds on the benchmark cup, and the verdict it gave.

    Attributes:
        backend: ``"onnx"`` or ``"torch"`` (what runs the embedder, the mask segmenter and YOLO).
        detect_ms: the detector with masks.
        pipeline_ms: the whole :meth:`Pipeline.run`, frame to verdict.
        stages_ms: the pipeline's own stage timings of the last run.
        p_correct: the verdict's probability that the cup is the expected type.
        threads: the threads each network ran with, read back from it after the timing (``yolo``,
            ``segmenter``, ``embedder``): an ONNX Runtime session's intra-op threads, or torch's thread count.
    """

    backend: str
    detect_ms: float
    pipeline_ms: float
    stages_ms: dict[str, float]
    p_correct: float
    threads: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchResult:
    """Median milliseconds of one cup from frame to verdict against the detector alone.

    Attributes:
        n_coins: coins in the cup.
        detector_forward_ms: one bare YOLO predict call (boxes only), the reference of the ratio.
        runs: one per backend timed, the station's default (ONNX Runtime) first.
        torch_threads: torch's thread count after the timing (what the torch networks ran with).
    """

    n_coins: int
    detector_forward_ms: float
    runs: tuple[BackendRun, ...]
    torch_threads: int = 0

    @property
    def pipeline_ms(self) -> float:
        """Frame to verdict with the default backend."""
        return self.runs[0].pipeline_ms

    @property
    def ratio(self) -> float:
        """Whole pipeline (default backend) over one bare detector forward pass."""
        return self.pipeline_ms / max(self.detector_forward_ms, 1e-9)


def bench_verdict(
    bundle_path: Path | None = None,
    *,
    n_coins: int = 10,
    repeats: int = 5,
    threads: int = 1,
    seed: int = 0,
    backends: tuple[str, ...] = BACKENDS,
    detector_threads: int | None = None,
) -> BenchResult:
    """Time :meth:`Pipeline.run` on one synthetic pure cup of ``n_coins`` coins against the bare detector.

    The cup is rendered by the synthetic scene generator, with its empty-tray photo, which the pipeline compares
    it with (as a station with an empty-tray photo does); the gallery holds rendered references of its mint.
    Each of ``backends`` runs the same cup with the same gallery, interleaved run by run so that a change in the
    machine's load reaches each alike. Every timing is the median of ``repeats`` runs after one warm-up run.
    ``threads`` run the embedder (and torch), ``detector_threads`` (default: as many) YOLO and the mask segmenter,
    as :meth:`Pipeline.load` sets them apart (:data:`~models.pipeline.EMBEDDER_THREADS`).
    """
    import statistics
    import time

    import torch

    from models.detector import Detector
    from models.pipeline import Pipeline
    from models.synth.mint import generate_mint
    from models.synth.scene import SceneAssets, SceneOptions, render_cup
    from models.train.galleries import reference_gallery
    from models.types import CupKind, Frame

    if not backends:
        raise ValueError("no backend to time")
    torch.set_num_threads(threads)
    bundle = load_bundle(bundle_path)
    embedder = Embedder.load(bundle.path(bundle.embedder_file), threads=threads, backend=backends[0])
    det_threads = threads if detector_threads is None else detector_threads
    detector = Detector.load(bundle.path(bundle.detector_dir), backend=backends[0], threads=det_threads)
    mint = generate_mint(30, seed)
    assets = SceneAssets(mint)
    opts = SceneOptions(kind_weights={CupKind.PURE: 1.0}, max_coins=n_coins, empty_reference=True)
    scene = None
    for index in range(500):
        cand = render_cup(assets, seed, index, opts)
        if sum(1 for i in cand.instances if i.is_coin) == n_coins:
            scene = cand
            break
    if scene is None:
        raise RuntimeError(f"no synthetic cup with {n_coins} coins found")
    gallery = reference_gallery(mint, embedder, per_side=3, progress=False)
    torch.set_num_threads(threads)  # a gallery sets faiss's OpenMP threads to 1, which torch's OpenMP count follows
    catalogue = {t.id: _type_info(t.id, t.diameter_mm) for t in mint.types}
    frame = Frame(image=scene.image, source="bench")
    expected = str(scene.expected_type)
    parts = {
        b: (embedder.with_backend(b, threads), detector.with_backend(b)) if b != backends[0] else (embedder, detector)
        for b in backends
    }
    pipes = {
        b: Pipeline.from_parts(
            bundle, gallery, embedder=e, catalogue=catalogue, detector=d, empty_tray=scene.empty, cup_roi=scene.tray
        )
        for b, (e, d) in parts.items()
    }
    jobs: dict[str, Any] = {"forward": lambda: detector.boxes(scene.image)}
    verdicts: dict[str, Any] = {}
    for b in backends:
        jobs[f"detect {b}"] = lambda d=parts[b][1]: d.detect(frame)
        jobs[f"pipeline {b}"] = lambda b=b: verdicts.__setitem__(b, pipes[b].run(frame, expected))
    runs: dict[str, list[float]] = {name: [] for name in jobs}
    for k in range(repeats + 1):  # the first round warms up
        for name, fn in jobs.items():
            t = time.perf_counter()
            fn()
            if k:
                runs[name].append((time.perf_counter() - t) * 1000)
    med = {name: statistics.median(r) for name, r in runs.items()}
    return BenchResult(
        n_coins,
        med["forward"],
        tuple(
            BackendRun(
                b,
                med[f"detect {b}"],
                med[f"pipeline {b}"],
                verdicts[b].timings_ms,
                float(verdicts[b].p_correct),
                threads_in_use(*parts[b]),
            )
            for b in backends
        ),
        torch_threads=torch.get_num_threads(),
    )


def threads_in_use(embedder: Embedder, detector: Detector) -> dict[str, int]:
    """The threads each network of one backend runs with, read back from the networks themselves: an ONNX
    Runtime session's intra-op threads, or torch's thread count for a network torch runs."""
    import torch

    def runner_threads(runner: Any) -> int:
        return torch.get_num_threads() if runner is None else int(runner.threads)

    out = {"yolo": int(detector.yolo_threads)}
    if detector.segmenter is not None:
        out["segmenter"] = runner_threads(detector.segmenter.runner)
    out["embedder"] = runner_threads(embedder.runner)
    return out


def _type_info(type_id: str, diameter: float) -> Any:
    from models.enroll import TypeInfo

    return TypeInfo(type_id, type_id, float(diameter))
