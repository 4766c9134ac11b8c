"""Find every coin (and foreign object) in a frame: an ultralytics YOLO box detector plus a small mask segmenter.

This is the only module that imports ultralytics. A detector is a folder with a sidecar ``detector.json``
(preprocessing, thresholds, class names, version, file hashes) beside the YOLO weights and the segmenter
checkpoint (:mod:`models.segmenter`). For each box the segmenter predicts the instance's visible mask at full
resolution (:mod:`models.masks` gives each pixel to one instance); an ellipse is fitted to the part of the mask
outline that is the coin's own rim (:mod:`models.outline`), so occluded coins keep a correct centre and diameter.
The pieces of a coin split by coins lying across it are joined (:mod:`models.fragments`), and doubtful boxes that
show a whole disc without a coin's rim edge (towel weave, carpet) or whose inside looks like the bare tray around
the coins (the gap between coins) are dropped (:mod:`models.box_checks`). YOLO runs in ultralytics' ONNX Runtime
predictor on a graph exported once into the cache folder (:func:`yolo_onnx`), or in its torch predictor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from models.box_checks import drop_bare_tray, drop_faint_rims
from models.files import read_torch_checkpoint, sha256_file
from models.fragments import Outline, merge_fragments
from models.masks import resolve_overlaps
from models.outline import EDGE_MARGIN_PX, CupRegion, fit_points, rim_points
from models.runtime import DEFAULT_BACKEND, Backend, check_backend
from models.segmenter import Segmenter, Window
from models.types import BoolArray, CoinInstance, FloatArray, Frame, UInt8Array

_log = logging.getLogger(__name__)
DEFAULT_DIR = Path(__file__).resolve().parent / "weights" / "detector"
"""The shipped default detector."""
SIDECAR = "detector.json"
FORMAT = "cupcheck-detector/1"
COIN_CLASS = "coin"
TARGET_COIN_PX = 50.0
"""Typical coin diameter in YOLO input pixels during training (640 px cups at 256 px input)."""
MAX_IMGSZ = 1024
FEW_COINS = 2
"""A first pass over a large frame that boxes at most this many coins may have missed coins too small for it."""
CUP_BOX_SHARE = 0.4
"""In a frame more than twice the input size, "coins" whose median box spans more than this share of the frame's
shorter side are whole cups boxed as one coin each (several cups side by side, their coins too small for the first
pass): three coins that large hardly fit one cup."""
RIM_TOLERANCE = 0.09
"""A coin whose fitted outline reaches past the cup's boundary by more than this fraction of its radius is cut by
the rim: about 1 % of its face hidden, the synthetic ground truth's definition."""
EDGE_TOLERANCE = RIM_TOLERANCE
"""A coin whose fitted outline reaches past the image's edge by more than this fraction of its radius is cut by the
edge, whether or not its mask touches it (a coin cut by the edge whose mask stops short of it)."""
CLOSE_UP_FACTOR = 3.0
"""A first pass whose largest coin box spans more than this many times :data:`TARGET_COIN_PX` input pixels shows a
coin far larger than the trained scale (a close-up): no cup frame's coins come near it."""
CLOSE_UP_SIDE_PX = 100
"""In the shrunk copy of a close-up the image's shorter side spans this many input pixels, so that a coin filling
half of it to all of it comes out at 50 to 100 px, about the trained scale."""
CLOSE_UP_PAD = 128
"""The grey the shrunk copy is padded with (as :func:`models.enroll.recut_coin` pads a crop)."""
CLOSE_UP_CONF = 0.6
"""The least confidence of a coin the shrunk copy shows for it to stand for a close-up's coin."""
CLOSE_UP_SHARE = 0.45
"""A coin of the shrunk copy spans at least this share of the image's shorter side to be a close-up's coin; a smaller
one the normal passes see at their own scale."""
CLOSE_UP_MARGIN = 0.02
"""A close-up's coin lies clear of the image's edges by this share of its shorter side (a box at 100 px input is
good to about 1 %): a round thing reaching the edge is as likely the cup or tray a cut coin lies in."""


class CupGeometry(Protocol):
    """What the detector needs from a camera calibration (``calibration.camera.CameraCalibration``)."""

    @property
    def px_per_mm(self) -> float:
        """Pixels per millimetre at the cup floor."""
        ...

    @property
    def roi(self) -> CupRegion | None:
        """The cup region, or ``None`` for the whole image."""
        ...


@dataclass(frozen=True)
class DetectorSettings:
    """Preprocessing and thresholds that travel with the weights (the sidecar ``detector.json``).

    Attributes:
        version: the model version recorded with every verdict.
        imgsz: YOLO input side in pixels.
        conf: minimum box confidence.
        iou: class-agnostic NMS IoU threshold applied to the YOLO boxes (duplicates of one coin).
        names: class index to name (``coin`` and ``object``).
        yolo_file: YOLO weights file name beside the sidecar.
        yolo_sha256: its SHA-256.
        segmenter_file: segmenter checkpoint beside the sidecar, or ``None`` for box-only masks.
        segmenter_sha256: its SHA-256.
        max_det: most instances per frame.
        flip_tta: average the segmenter's logits with those of the mirrored window.
        auto_scale: predict again at a larger size when the coins are much smaller than in training.
        faint_rim: drop a coin box under :data:`FAINT_RIM_CONF` that shows a whole disc and whose rim edge is
            weaker than this share of the frame's confident coins' (:func:`drop_faint_rims`); ``0`` keeps every box
            (a sidecar without the key).
        bare_tray: drop a coin box under :data:`RIM_REFERENCE_CONF` whose colour is closer to the bare tray's than
            this share of the frame's confident coins' distance to it (:func:`drop_bare_tray`); ``0`` keeps every
            box (a sidecar without the key).
        extra: training provenance (data, seed, epochs, metrics).
    """

    version: str
    imgsz: int
    conf: float
    iou: float
    names: dict[int, str]
    yolo_file: str
    yolo_sha256: str
    segmenter_file: str | None = None
    segmenter_sha256: str | None = None
    max_det: int = 100
    flip_tta: bool = True
    auto_scale: bool = True
    faint_rim: float = 0.0
    bare_tray: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the format tag."""
        data = asdict(self)
        data["names"] = {str(k): v for k, v in self.names.items()}
        return {"format": FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorSettings:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: wrong format tag or missing/invalid fields.
        """
        if data.get("format") != FORMAT:
            raise ValueError(f"not a detector sidecar (format {data.get('format')!r}, expected {FORMAT!r})")
        try:
            return cls(
                version=str(data["version"]),
                imgsz=int(data["imgsz"]),
                conf=float(data["conf"]),
                iou=float(data["iou"]),
                names={int(k): str(v) for k, v in dict(data["names"]).items()},
                yolo_file=str(data["yolo_file"]),
                yolo_sha256=str(data["yolo_sha256"]),
                segmenter_file=None if data.get("segmenter_file") is None else str(data["segmenter_file"]),
                segmenter_sha256=None if data.get("segmenter_sha256") is None else str(data["segmenter_sha256"]),
                max_det=int(data.get("max_det", 100)),
                flip_tta=bool(data.get("flip_tta", True)),
                auto_scale=bool(data.get("auto_scale", True)),
                faint_rim=float(data.get("faint_rim", 0.0)),
                bare_tray=float(data.get("bare_tray", 0.0)),
                extra=dict(data.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"invalid detector sidecar: {err}") from err


@dataclass(frozen=True)
class Boxes:
    """Raw YOLO output for one frame.

    Attributes:
        xyxy: ``(n, 4)`` float32 boxes in frame pixels.
        confidence: ``(n,)`` float32.
        cls: ``(n,)`` int64 class indices.
    """

    xyxy: FloatArray
    confidence: FloatArray
    cls: np.ndarray


ULTRALYTICS_FONT = "Arial.ttf"
"""The font ultralytics' data-set check looks for in its settings folder, and fetches from the web when absent."""


def offline_ultralytics() -> Path:
    """Keep ultralytics' settings in cupcheck's cache, with the font its data-set check wants already there.

    On its first import ultralytics writes ``settings.json`` into ``~/.config/Ultralytics``, and every training
    run's data-set check (``check_det_dataset`` → ``check_font``) asks ultralytics.com for ``Arial.ttf`` unless
    that folder holds one: a request even with ``YOLO_OFFLINE`` set. The font only labels plots, which cupcheck
    never draws (``plots=False``); matplotlib's DejaVu Sans, installed with it, stands in, so training makes no
    download attempt. ``YOLO_CONFIG_DIR`` is read once, when ultralytics is first imported:
    :func:`_import_ultralytics` calls this first; a folder the user set there is kept, and the font put into it.

    Returns:
        ultralytics' settings folder (``YOLO_CONFIG_DIR/Ultralytics``).
    """
    from models.files import default_cache_dir, write_bytes_atomic

    root = Path(os.environ.setdefault("YOLO_CONFIG_DIR", str(default_cache_dir() / "ultralytics")))
    folder = root.expanduser() / "Ultralytics"
    font = folder / ULTRALYTICS_FONT
    if not font.is_file():
        import matplotlib

        stand_in = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(font, stand_in.read_bytes())
    return folder


def _import_ultralytics() -> Any:
    """Import ultralytics offline (:func:`offline_ultralytics`), its first-run banner ("Creating new Ultralytics
    Settings...") sent to stderr.

    Commands print JSON on stdout, so nothing the library says while it sets itself up may land there.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    offline_ultralytics()
    with contextlib.redirect_stdout(sys.stderr):
        import ultralytics
        import ultralytics.utils.torch_utils
    return ultralytics


@contextlib.contextmanager
def _keep_torch_threads() -> Iterator[int]:
    """Give back torch's thread count as it was before the block, which is yielded.

    ultralytics' ``select_device`` sets it to ``min(8, cores - 1)`` whenever a predictor is set up or a model
    exported (1 on a 2-core station PC), which would change the thread count every other network of the process
    runs with, and what a benchmark asked for.
    """
    threads = torch.get_num_threads()
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)


def _load_yolo(
    path: Path, backend: Backend = "torch", imgsz: int = 320, sha256: str | None = None, threads: int | None = None
) -> tuple[Any, Backend]:
    """The YOLO model at ``path`` and what runs it: ultralytics' torch predictor, or with ``backend="onnx"`` its
    ONNX Runtime predictor on the graph exported once from ``path`` (:func:`yolo_onnx`), with the same pre- and
    post-processing. When the export or the ONNX session fails, the torch predictor runs instead (the same boxes,
    slower), with a warning.

    The predictor is set up here, on a blank image, and torch's thread count put back as it was before
    (:func:`_keep_torch_threads`); the ONNX session runs ``threads`` intra-op threads (``None``: that count).

    Raises:
        ValueError: the weights cannot be loaded at all.
    """
    ultralytics = _import_ultralytics()
    with _keep_torch_threads() as before:
        if backend == "onnx":
            try:
                file = yolo_onnx(path, imgsz, sha256)
                model = ultralytics.YOLO(str(file), task="detect")
                _pin_onnx_threads(model, file, before if threads is None else threads)
                return model, "onnx"
            except Exception as err:  # the export and ONNX Runtime raise many types
                _log.warning("YOLO runs in torch: its ONNX graph could not be made or opened (%s)", err)
        try:
            model = ultralytics.YOLO(str(path), task="detect")
        except Exception as err:  # ultralytics raises many types for a bad file
            raise ValueError(f"cannot load YOLO weights {path}: {err}") from err
        _set_up_predictor(model)
        return model, "torch"


def _set_up_predictor(model: Any) -> None:
    """Set up ultralytics' predictor with one prediction on a small blank image (its first ``predict`` calls
    ``select_device``: done while loading, its thread count can be put back)."""
    with _quiet_ultralytics():
        model.predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, device="cpu", verbose=False)


@contextlib.contextmanager
def _quiet_ultralytics() -> Any:
    """Keep ultralytics' export and loading messages off stdout (commands print JSON there)."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(40)  # errors only
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        LOGGER.setLevel(level)


def yolo_onnx(path: Path, imgsz: int, sha256: str | None = None, cache: Path | None = None) -> Path:
    """The ONNX graph of the YOLO weights at ``path``, exported by ultralytics once and kept in the cache folder.

    The graph takes any input size (``dynamic``), so the second pass at a larger size
    (:meth:`Detector.scaled_boxes`) runs on it too. It is keyed by the weights' SHA-256 and the ultralytics and
    ONNX Runtime versions; the export writes beside a copy of the weights in a temporary folder, never beside the
    weights themselves.

    Args:
        path: ``yolo.pt``.
        imgsz: the input size the export traces at.
        sha256: the weights' SHA-256 when known (else computed).
        cache: folder of graphs (default ``default_cache_dir() / "onnx"``).
    """
    import atexit
    import shutil
    import tempfile
    import warnings

    import onnxruntime
    import ultralytics

    from models.files import default_cache_dir, write_bytes_atomic

    digest = (sha256 or sha256_file(path))[:24]
    folder = default_cache_dir() / "onnx" if cache is None else cache
    file = folder / f"yolo-{digest}-u{ultralytics.__version__}-ort{onnxruntime.__version__}.onnx"
    if file.is_file():
        return file
    with tempfile.TemporaryDirectory(prefix="cupcheck-yolo-") as tmp:
        weights = Path(tmp) / "yolo.pt"
        shutil.copyfile(path, weights)
        with _quiet_ultralytics(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch's notes on its legacy exporter
            out = ultralytics.YOLO(str(weights), task="detect").export(
                format="onnx", imgsz=imgsz, dynamic=True, simplify=False, device="cpu"
            )
        graph = Path(str(out)).read_bytes()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(file, graph)
        return file
    except OSError:  # a cache that cannot be written: a temporary file, removed at exit, exported again next time
        fd, name = tempfile.mkstemp(prefix="cupcheck-yolo-", suffix=".onnx")
        with os.fdopen(fd, "wb") as f:
            f.write(graph)
        atexit.register(Path(name).unlink, missing_ok=True)
        return Path(name)


def _pin_onnx_threads(model: Any, file: Path, threads: int) -> None:
    """Run ultralytics' ONNX Runtime session with ``threads`` intra-op threads, as the other networks are run
    (:class:`models.runtime.OnnxRunner`): ultralytics opens it with ONNX Runtime's default of every core."""
    import onnxruntime as ort

    _set_up_predictor(model)  # builds the session
    backend: Any = _onnx_backend(model)
    if getattr(backend, "session", None) is None:
        raise ValueError(f"this ultralytics version ({_import_ultralytics().__version__}) hides its ONNX session")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    backend.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


def _onnx_backend(model: Any) -> Any:
    """ultralytics' ONNX Runtime backend of a set-up predictor (it holds the ``session``), or ``None``."""
    return getattr(getattr(getattr(model, "predictor", None), "model", None), "backend", None)


def yolo_train(model: str | Path, *, resume: bool = False, **train_args: Any) -> None:
    """Train an ultralytics YOLO model on CPU, from scratch and offline.

    Args:
        model: a model ``.yaml`` (built from scratch) or, with ``resume``, the run's ``last.pt``.
        resume: continue the run that wrote ``model`` (check :attr:`YoloCheckpoint.resumable` first: ultralytics
            starts a new run with its own defaults on a finished checkpoint).
        **train_args: ultralytics training arguments (``data``, ``epochs``, ``imgsz``, ``project``...); with
            ``resume``, only those ultralytics lets a resumed run change (``data``, ``save_dir``...).
    """
    ultralytics = _import_ultralytics()

    if resume:
        ultralytics.YOLO(str(model)).train(resume=True, **train_args)
        return
    args: dict[str, Any] = {"device": "cpu", "pretrained": False, "amp": False, "plots": False, "workers": 0}
    args.update(train_args)
    ultralytics.YOLO(str(model)).train(**args)


@dataclass(frozen=True)
class YoloCheckpoint:
    """What a YOLO training checkpoint (``last.pt``, ``best.pt``) says about its run.

    Attributes:
        resumable: it still holds the optimizer and its epoch, ultralytics' own test for ``resume``: the run was
            cut short. A finished run's checkpoints are stripped of both.
        epoch: the last finished epoch, counted from 0 (``-1`` once stripped).
        train_args: the run's training arguments (``imgsz``, ``epochs``, ``data``...; empty when the file does not
            keep them).
    """

    resumable: bool
    epoch: int
    train_args: dict[str, Any]


def yolo_checkpoint(path: Path) -> YoloCheckpoint:
    """Read a YOLO training checkpoint's run state and training arguments.

    Raises:
        ValueError: ``path`` is not a readable torch checkpoint, or not one of ultralytics.
    """
    _import_ultralytics()  # the checkpoint pickles ultralytics' classes
    ckpt = read_torch_checkpoint(path)
    if not isinstance(ckpt, dict) or (ckpt.get("model") is None and ckpt.get("ema") is None):
        raise ValueError(f"{path} is not an ultralytics checkpoint (no model in it)")
    epoch = -1 if ckpt.get("epoch") is None else int(ckpt["epoch"])
    return YoloCheckpoint(
        resumable=epoch >= 0 and ckpt.get("optimizer") is not None,
        epoch=epoch,
        train_args=dict(ckpt.get("train_args") or {}),
    )


def yolo_strip(path: Path) -> dict[int, str]:
    """Strip the optimizer from a YOLO checkpoint in place and store it as fp16; returns its class names.

    Raises:
        ValueError: ``path`` is not an ultralytics checkpoint.
    """
    ultralytics = _import_ultralytics()

    ckpt = ultralytics.utils.torch_utils.strip_optimizer(path)
    if not ckpt:
        raise ValueError(f"{path} is not an ultralytics checkpoint")
    names = getattr(ckpt["model"], "names", None) or {0: COIN_CLASS, 1: "object"}
    return {int(k): str(v) for k, v in dict(names).items()}


def load_segmenter(path: Path) -> Segmenter:
    """Read a segmenter checkpoint (``torch.save`` of :meth:`Segmenter.state`).

    Raises:
        ValueError: the file is not a segmenter checkpoint.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file
        raise ValueError(f"cannot read segmenter checkpoint {path}: {err}") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a segmenter checkpoint")
    state = state.get("segmenter", state)
    segmenter = Segmenter.from_state(state)
    segmenter.net.float()
    return segmenter


class Detector:
    """YOLO boxes, segmenter masks, fitted ellipses, calibrated diameters.

    Args:
        yolo: a loaded ``ultralytics.YOLO`` model.
        segmenter: the mask segmenter, or ``None`` to use the ellipse inscribed in each box.
        settings: preprocessing and thresholds.
        calibration: camera geometry for ``diameter_mm`` and rim cuts, or ``None``.
        yolo_path: the YOLO weights ``yolo`` was loaded from (lets :meth:`with_backend` load them again).
        backend: what runs ``yolo``: ``"torch"`` or ``"onnx"`` (ultralytics' ONNX Runtime predictor); the
            segmenter says what runs it.
        threads: the ONNX Runtime sessions' intra-op threads asked for at loading (``None``: torch's count).
    """

    def __init__(
        self,
        yolo: Any,
        segmenter: Segmenter | None,
        settings: DetectorSettings,
        calibration: CupGeometry | None = None,
        *,
        yolo_path: Path | None = None,
        backend: str = "torch",
        threads: int | None = None,
    ) -> None:
        self.yolo = yolo
        self.segmenter = segmenter
        self.settings = settings
        self.calibration = calibration
        self.yolo_path = yolo_path
        self.backend = check_backend(backend)
        self.threads = threads

    @property
    def version(self) -> str:
        """The model version string."""
        return self.settings.version

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        calibration: CupGeometry | None = None,
        backend: str = DEFAULT_BACKEND,
        threads: int | None = None,
    ) -> Detector:
        """Load a detector folder (or its ``detector.json``); ``None`` loads the shipped default.

        Loading leaves torch's thread count as it was (ultralytics would set its own).

        Args:
            path: folder holding ``detector.json``, the sidecar itself, or ``None``.
            calibration: camera geometry to attach.
            backend: what runs the mask segmenter: ``"onnx"`` (ONNX Runtime, the default) or ``"torch"``.
            threads: intra-op threads of the ONNX Runtime sessions (YOLO's and the segmenter's); ``None``: torch's
                thread count.

        Raises:
            FileNotFoundError: the folder, sidecar or a weights file it names is missing.
            ValueError: a file is corrupt or its hash does not match the sidecar, or ``backend`` is unknown.
        """
        check_backend(backend)
        path = DEFAULT_DIR if path is None else Path(path)
        sidecar = path / SIDECAR if path.is_dir() else path
        if not sidecar.is_file():
            raise FileNotFoundError(f"no detector at {path}: {sidecar} is missing")
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{sidecar}: not a JSON detector sidecar: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"{sidecar}: not a JSON detector sidecar")
        settings = DetectorSettings.from_dict(data)
        folder = sidecar.parent
        yolo_path = folder / settings.yolo_file
        _check_file(yolo_path, settings.yolo_sha256)
        segmenter = None
        if settings.segmenter_file is not None:
            seg_path = folder / settings.segmenter_file
            _check_file(seg_path, settings.segmenter_sha256)
            segmenter = load_segmenter(seg_path).with_flip_tta(settings.flip_tta).with_backend(backend, threads)
        yolo, runs = _load_yolo(yolo_path, check_backend(backend), settings.imgsz, settings.yolo_sha256, threads)
        return cls(yolo, segmenter, settings, calibration, yolo_path=yolo_path, backend=runs, threads=threads)

    def with_backend(self, backend: str) -> Detector:
        """The same models run by ``backend`` (``"onnx"`` or ``"torch"``): the segmenter, and YOLO when the
        detector knows the file it was loaded from; with the thread count it was loaded with."""
        segmenter = None if self.segmenter is None else self.segmenter.with_backend(backend, self.threads)
        yolo, runs = self.yolo, self.backend
        wanted = check_backend(backend)
        if wanted != self.backend and self.yolo_path is not None:
            yolo, runs = _load_yolo(
                self.yolo_path, wanted, self.settings.imgsz, self.settings.yolo_sha256, self.threads
            )
        return self._with(yolo=yolo, segmenter=segmenter, backend=runs)

    @property
    def yolo_threads(self) -> int:
        """The threads YOLO runs with: its ONNX Runtime session's intra-op threads, or torch's thread count."""
        session = getattr(_onnx_backend(self.yolo), "session", None) if self.backend == "onnx" else None
        if session is None:
            return torch.get_num_threads()
        return int(session.get_session_options().intra_op_num_threads)

    def with_calibration(self, calibration: CupGeometry | None) -> Detector:
        """The same models with another camera calibration."""
        return self._with(calibration=calibration)

    def with_settings(self, **changes: Any) -> Detector:
        """The same models with some settings changed (``conf``, ``imgsz``, ``flip_tta``...)."""
        settings = replace(self.settings, **changes)
        segmenter = self.segmenter
        if segmenter is not None and segmenter.flip_tta != settings.flip_tta:
            segmenter = segmenter.with_flip_tta(settings.flip_tta)
        return self._with(segmenter=segmenter, settings=settings)

    def _with(self, **changes: Any) -> Detector:
        parts: dict[str, Any] = {
            "yolo": self.yolo,
            "segmenter": self.segmenter,
            "settings": self.settings,
            "calibration": self.calibration,
            "yolo_path": self.yolo_path,
            "backend": self.backend,
            "threads": self.threads,
        }
        parts.update(changes)
        return Detector(**parts)

    def boxes(self, image: UInt8Array, imgsz: int | None = None) -> Boxes:
        """Run YOLO alone on a ``(H, W, 3)`` uint8 BGR image at ``imgsz`` (default: the stored size)."""
        s = self.settings
        result = self.yolo.predict(
            image, imgsz=imgsz or s.imgsz, conf=s.conf, iou=s.iou, max_det=s.max_det, device="cpu", verbose=False
        )[0]
        b = result.boxes
        return Boxes(
            xyxy=b.xyxy.cpu().numpy().astype(np.float32).reshape(-1, 4),
            confidence=b.conf.cpu().numpy().astype(np.float32).reshape(-1),
            cls=b.cls.cpu().numpy().astype(np.int64).reshape(-1),
        )

    def scaled_boxes(self, image: UInt8Array) -> Boxes:
        """YOLO boxes, run again at a larger input size when the coins came out small, or hardly at all, and on a
        shrunk copy when the photo is a close-up of a coin far larger than the trained scale.

        The detector is trained on coins of about :data:`TARGET_COIN_PX` input pixels; a photo whose median
        box is well below that (a wide shot, a large image) is predicted again at the size that brings the
        coins to the trained scale (at most :data:`MAX_IMGSZ`). In a frame more than twice the input size, coins
        shrunk under a few input pixels are not boxed at all, or a cluster of them as one: when the first pass
        finds at most :data:`FEW_COINS` coins, none of them large, or boxes far larger than coins among several
        (whole cups, :data:`CUP_BOX_SHARE`), the frame is predicted again at up to its own size and the pass that
        finds more coins is kept. A coin filling most of the photo is seen in pieces or not at all; without a
        camera calibration, a close-up (:meth:`_looks_close_up`) is predicted once more on a shrunk copy
        (:meth:`_close_up_boxes`). A station frame of a cup needs one pass.
        """
        found = self.boxes(image)
        if not self.settings.auto_scale:
            return found
        result = self._rescaled(image, found)
        if self.calibration is not None or not self._looks_close_up(image, found, result):
            return result
        return self._close_up_boxes(image, result)

    def _rescaled(self, image: UInt8Array, found: Boxes) -> Boxes:
        """The first pass ``found``, or a second pass at a larger size when its coins came out small or few
        (:meth:`scaled_boxes`)."""
        side = max(image.shape[:2])
        base = self.settings.imgsz
        coin_px = 0.0
        share = 0.0  # the median box's share of the frame's shorter side
        if len(found.confidence):
            sizes = np.maximum(found.xyxy[:, 2] - found.xyxy[:, 0], found.xyxy[:, 3] - found.xyxy[:, 1])
            coin_px = float(np.median(sizes)) * base / side
            share = float(np.median(sizes)) / min(image.shape[:2])
            if coin_px < 0.7 * TARGET_COIN_PX:
                imgsz = min(
                    MAX_IMGSZ,
                    32 * math.ceil(side / 32),
                    32 * math.ceil(base * TARGET_COIN_PX / max(coin_px, 1.0) / 32),
                )
                return self.boxes(image, imgsz) if imgsz > base else found
        if side <= 2 * base:  # a station frame: one pass
            return found
        n_coins = self._coins_in(found)
        few = n_coins <= FEW_COINS and (n_coins == 0 or coin_px < 2 * TARGET_COIN_PX)
        if few or (n_coins > FEW_COINS and share > CUP_BOX_SHARE):
            again = self.boxes(image, min(MAX_IMGSZ, 32 * math.ceil(side / 32)))
            return again if self._coins_in(again) > n_coins else found
        return found

    def _looks_close_up(self, image: UInt8Array, found: Boxes, result: Boxes) -> bool:
        """Whether the photo may be a close-up of a coin far larger than the trained scale: the first pass
        (``found``) boxes a coin over :data:`CLOSE_UP_FACTOR` times the trained size, or only coins cut by the
        image's edges (the neighbours of a coin too large to box), or nothing while the larger pass (``result``)
        boxes something (pieces of one coin's design).

        A frame in which nothing is found at all is not one: an empty cup filling the frame, shrunk, is boxed as a
        coin as confidently as a close-up's coin.
        """
        h, w = image.shape[:2]
        coins = found.xyxy[[self._is_coin(int(c)) for c in found.cls]]
        if len(coins) == 0:
            return self._coins_in(result) > 0
        sizes = np.maximum(coins[:, 2] - coins[:, 0], coins[:, 3] - coins[:, 1])
        if float(sizes.max()) * self.settings.imgsz / max(h, w) > CLOSE_UP_FACTOR * TARGET_COIN_PX:
            return True
        return not bool(np.any(_clear_of_edges(coins, w, h, CLOSE_UP_MARGIN * min(h, w))))

    def _close_up_boxes(self, image: UInt8Array, result: Boxes) -> Boxes:
        """The boxes of a close-up: ``result`` with the coins a shrunk copy of the photo shows far larger.

        The photo is shrunk so that its shorter side spans :data:`CLOSE_UP_SIDE_PX` input pixels, padded with grey
        to the input size and predicted at it; its boxes are mapped back to the photo. A coin of it that is
        confident (:data:`CLOSE_UP_CONF`), spans :data:`CLOSE_UP_SHARE` of the photo, lies clear of its edges
        (:data:`CLOSE_UP_MARGIN`) and holds no box of ``result`` as confident as itself (a coin lying in it: it is
        the cup) replaces the boxes of ``result`` whose centre lies in it (pieces of its design, or itself boxed
        again); the others, its neighbours, are kept. ``result`` as it is when no such coin is found.
        """
        h, w = image.shape[:2]
        shrunk = self._shrunk_boxes(image)
        big = np.asarray([self._is_coin(int(c)) for c in shrunk.cls], dtype=bool) & (shrunk.confidence >= CLOSE_UP_CONF)
        sizes = np.maximum(shrunk.xyxy[:, 2] - shrunk.xyxy[:, 0], shrunk.xyxy[:, 3] - shrunk.xyxy[:, 1])
        big &= sizes >= CLOSE_UP_SHARE * min(h, w)
        big &= _clear_of_edges(shrunk.xyxy, w, h, CLOSE_UP_MARGIN * min(h, w))
        centres = (result.xyxy[:, :2] + result.xyxy[:, 2:]) / 2.0
        inside = np.zeros(len(result.confidence), dtype=bool)
        keep: list[int] = []
        for i in np.flatnonzero(big):
            x1, y1, x2, y2 = shrunk.xyxy[i]
            holds = (centres[:, 0] > x1) & (centres[:, 0] < x2) & (centres[:, 1] > y1) & (centres[:, 1] < y2)
            if np.any(result.confidence[holds] >= shrunk.confidence[i]):
                continue  # a confident coin lies in it: a cup or tray, not a coin
            keep.append(int(i))
            inside |= holds
        if not keep:
            return result
        rest = np.flatnonzero(~inside)
        return Boxes(
            xyxy=np.concatenate([shrunk.xyxy[keep], result.xyxy[rest]]).astype(np.float32),
            confidence=np.concatenate([shrunk.confidence[keep], result.confidence[rest]]).astype(np.float32),
            cls=np.concatenate([shrunk.cls[keep], result.cls[rest]]).astype(np.int64),
        )

    def _shrunk_boxes(self, image: UInt8Array) -> Boxes:
        """YOLO boxes of ``image`` shrunk so that its shorter side spans :data:`CLOSE_UP_SIDE_PX` input pixels,
        centred on a grey square of the input size (larger for a very long image), in ``image``'s pixels (clipped
        to it)."""
        h, w = image.shape[:2]
        scale = CLOSE_UP_SIDE_PX / min(h, w)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        side = max(self.settings.imgsz, 32 * math.ceil(max(sw, sh) / 32))
        x0, y0 = (side - sw) // 2, (side - sh) // 2
        canvas = np.full((side, side, 3), CLOSE_UP_PAD, dtype=np.uint8)
        canvas[y0 : y0 + sh, x0 : x0 + sw] = small
        found = self.boxes(canvas, side)
        xyxy = (found.xyxy - np.array([x0, y0, x0, y0], np.float32)) / np.array([sw / w, sh / h] * 2, np.float32)
        xyxy = np.clip(xyxy, 0.0, np.array([w, h, w, h], np.float32))
        return replace(found, xyxy=xyxy.astype(np.float32))

    def _is_coin(self, cls: int) -> bool:
        """Whether YOLO class ``cls`` is the coin class (any other is an object)."""
        return self.settings.names.get(cls, COIN_CLASS) == COIN_CLASS

    def _coins_in(self, boxes: Boxes) -> int:
        """How many of ``boxes`` are of the coin class."""
        return sum(self._is_coin(int(c)) for c in boxes.cls)

    def detect(self, frame: Frame) -> list[CoinInstance]:
        """Find every instance in ``frame``, ordered by decreasing confidence.

        Returns:
            One :class:`CoinInstance` per coin or object; ``is_coin`` tells them apart.
        """
        image = frame.image
        h, w = image.shape[:2]
        found = self.scaled_boxes(image)
        n = len(found.confidence)
        if n == 0:
            return []
        order = nms(found.xyxy, found.confidence, self.settings.iou)
        boxes = [_box4(found.xyxy[i]) for i in order]
        logits = self._logits(image, boxes)
        masks = resolve_overlaps(logits, w, h)
        parts: list[tuple[CoinInstance, Outline, int]] = []
        for k, i in enumerate(order):
            made = self._instance(masks[k], float(found.confidence[i]), int(found.cls[i]), w, h)
            if made is not None:
                parts.append((*made, int(found.cls[i])))
        roi = None if self.calibration is None else self.calibration.roi
        merged = merge_fragments(parts, w, h, roi, self._instance)
        insts = [inst for inst, _ in merged]
        kept = drop_faint_rims(insts, image, self.settings.faint_rim, roi, rims=[o.rim for _, o in merged])
        return drop_bare_tray(kept, image, self.settings.bare_tray, roi)

    def _logits(
        self, image: UInt8Array, boxes: list[tuple[float, float, float, float]]
    ) -> list[tuple[FloatArray, Window]]:
        if self.segmenter is not None:
            return self.segmenter.predict(image, boxes)
        out: list[tuple[FloatArray, Window]] = []
        for box in boxes:
            window = Window.around(box)
            lg = np.full((window.side, window.side), -1.0, dtype=np.float32)
            cx, cy = (box[0] + box[2]) / 2 - window.x0, (box[1] + box[3]) / 2 - window.y0
            axes = (max(1, round((box[2] - box[0]) / 2)), max(1, round((box[3] - box[1]) / 2)))
            cv2.ellipse(lg, (round(cx), round(cy)), axes, 0, 0, 360, 1.0, -1)
            out.append((lg, window))
        return out

    def _instance(
        self,
        mask_box: tuple[BoolArray, tuple[int, int]] | None,
        confidence: float,
        cls: int,
        width: int,
        height: int,
    ) -> tuple[CoinInstance, Outline] | None:
        if mask_box is None:
            return None
        mask, (ox, oy) = mask_box
        roi = None if self.calibration is None else self.calibration.roi
        rim_pts, outline = rim_points(mask, (ox, oy), width, height, roi)
        fit = fit_points(rim_pts, outline)
        if fit is None:
            return None
        (cx, cy), (major, minor), angle = fit
        if roi is not None and float(roi.inset(cx, cy)) < 0.0:
            return None  # outside the cup: the table or the rim, not a coin in it
        is_coin = self._is_coin(cls)
        x2, y2 = ox + mask.shape[1], oy + mask.shape[0]
        edge = ox <= EDGE_MARGIN_PX or oy <= EDGE_MARGIN_PX or x2 >= width - EDGE_MARGIN_PX
        edge = edge or y2 >= height - EDGE_MARGIN_PX or _past_edge(fit, width, height, EDGE_TOLERANCE)
        rim = roi is not None and roi.cuts(cx, cy, major / 2.0, RIM_TOLERANCE)
        diameter_mm = None if self.calibration is None else major / float(self.calibration.px_per_mm)
        inst = CoinInstance(
            bbox=np.array([ox, oy, x2, y2], dtype=np.float32),
            mask=mask,
            mask_origin=(ox, oy),
            confidence=confidence,
            center=(cx, cy),
            axes=(major, minor),
            angle=angle,
            diameter_mm=diameter_mm,
            partial=bool(edge or rim),
            is_coin=is_coin,
        )
        return inst, Outline(rim_pts, outline, int(np.count_nonzero(mask)))


def nms(xyxy: FloatArray, confidence: FloatArray, iou: float) -> np.ndarray:
    """Class-agnostic greedy NMS: indices of the kept boxes by decreasing confidence."""
    order = np.argsort(-confidence, kind="stable")
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep: list[int] = []
    for i in order:
        if keep:
            k = np.asarray(keep)
            w = np.clip(np.minimum(xyxy[k, 2], xyxy[i, 2]) - np.maximum(xyxy[k, 0], xyxy[i, 0]), 0, None)
            h = np.clip(np.minimum(xyxy[k, 3], xyxy[i, 3]) - np.maximum(xyxy[k, 1], xyxy[i, 1]), 0, None)
            inter = w * h
            if (inter / np.maximum(area[k] + area[i] - inter, 1e-9)).max() > iou:
                continue
        keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)


def _clear_of_edges(xyxy: FloatArray, width: int, height: int, margin: float) -> BoolArray:
    """``(n,)`` whether each of the ``(n, 4)`` boxes lies more than ``margin`` pixels inside the image."""
    return (
        (xyxy[:, 0] > margin) & (xyxy[:, 1] > margin) & (xyxy[:, 2] < width - margin) & (xyxy[:, 3] < height - margin)
    )


def _past_edge(
    fit: tuple[tuple[float, float], tuple[float, float], float], width: int, height: int, tolerance: float
) -> bool:
    """Whether a fitted ellipse (centre, full axes, angle of the major axis in degrees) reaches past the image's
    edge by more than ``tolerance`` of its radius (half the major axis)."""
    (cx, cy), (major, minor), angle = fit
    a, b, t = major / 2.0, minor / 2.0, math.radians(angle)
    half_w = math.hypot(a * math.cos(t), b * math.sin(t))  # the ellipse's half extent along x
    half_h = math.hypot(a * math.sin(t), b * math.cos(t))
    slack = tolerance * a
    return cx - half_w < -slack or cy - half_h < -slack or cx + half_w > width + slack or cy + half_h > height + slack


def _box4(row: FloatArray) -> tuple[float, float, float, float]:
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _check_file(path: Path, sha256: str | None) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"detector weights file {path} is missing")
    if sha256 and sha256_file(path) != sha256:
        raise ValueError(f"{path} does not match the SHA-256 in its sidecar (corrupt or replaced)")
