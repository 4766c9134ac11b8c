"""Find every coin (and foreign object) in a frame: an ultralytics YOLO box detector plus a small mask segmenter.

This is the only module that imports ultralytics. A detector is a folder with a sidecar ``detector.json``
(preprocessing, thresholds, class names, version, file hashes) beside the YOLO weights and the segmenter
checkpoint (:mod:`models.segmenter`). For each box the segmenter predicts the instance's visible mask at full
resolution; an ellipse is fitted to the part of the mask outline that is the coin's own rim (points on the
mask's convex hull, away from the image edge and the cup rim), so occluded coins keep a correct centre and
diameter. The pieces of a coin split by coins lying across it are joined (:meth:`Detector._merge_fragments`), and
doubtful boxes that show a whole disc without a coin's rim edge (towel weave, carpet) are dropped
(:func:`drop_faint_rims`), and so are doubtful boxes whose inside looks like the bare tray around the coins (the
gap between coins, :func:`drop_bare_tray`). YOLO runs in ultralytics' ONNX Runtime predictor on a graph exported
once into the cache folder (:func:`yolo_onnx`), or in its torch predictor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt
import torch

from models.files import sha256_file
from models.runtime import DEFAULT_BACKEND, Backend, check_backend
from models.segmenter import Segmenter, Window
from models.types import BoolArray, CoinInstance, FloatArray, Frame, UInt8Array

_log = logging.getLogger(__name__)
DEFAULT_DIR = Path(__file__).resolve().parent / "weights" / "detector"
"""The shipped default detector."""
SIDECAR = "detector.json"
FORMAT = "cupcheck-detector/1"
COIN_CLASS = "coin"
EDGE_MARGIN_PX = 1.0
"""A mask reaching this close to the image border is cut by the edge."""
RUN_TRIM = 40
"""Rim runs lose ``1 / RUN_TRIM`` of the outline's points at each end, where an occluder's edge meets the rim."""
PIXEL_CENTRE_BIAS = 1.0
"""Outline points are pixel centres, half a pixel inside the true edge on each side: added to fitted axes."""
ELLIPSE_COVERAGE = 0.4
"""An ellipse is fitted when the rim points cover this fraction of the circumference; a circle otherwise."""
TARGET_COIN_PX = 50.0
"""Typical coin diameter in YOLO input pixels during training (640 px cups at 256 px input)."""
MAX_IMGSZ = 1024
RIM_TOLERANCE = 0.09
"""A coin whose fitted outline reaches past the cup's boundary by more than this fraction of its radius is cut by
the rim: about 1 % of its face hidden, the synthetic ground truth's definition."""


class CupRegion(Protocol):
    """The cup's region in the image (``calibration.camera.CupRoi``: a circle or a rounded-square tray)."""

    def inset(self, x: npt.ArrayLike, y: npt.ArrayLike) -> npt.NDArray[Any]:
        """Distance in pixels from each point to the boundary: positive inside."""
        ...

    def cuts(self, x: float, y: float, radius: float, tolerance: float = 0.0) -> bool:
        """Whether a disc reaches past the boundary by more than ``tolerance * radius``."""
        ...


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


def _import_ultralytics() -> Any:
    """Import ultralytics offline, its first-run banner ("Creating new Ultralytics Settings...") sent to stderr.

    Commands print JSON on stdout, so nothing the library says while it sets itself up may land there.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    with contextlib.redirect_stdout(sys.stderr):
        import ultralytics
        import ultralytics.utils.torch_utils
    return ultralytics


def _load_yolo(
    path: Path, backend: Backend = "torch", imgsz: int = 320, sha256: str | None = None
) -> tuple[Any, Backend]:
    """The YOLO model at ``path`` and what runs it: ultralytics' torch predictor, or with ``backend="onnx"`` its
    ONNX Runtime predictor on the graph exported once from ``path`` (:func:`yolo_onnx`), with the same pre- and
    post-processing. When the export or the ONNX session fails, the torch predictor runs instead (the same boxes,
    slower), with a warning.

    Raises:
        ValueError: the weights cannot be loaded at all.
    """
    ultralytics = _import_ultralytics()
    if backend == "onnx":
        try:
            file = yolo_onnx(path, imgsz, sha256)
            model = ultralytics.YOLO(str(file), task="detect")
            _pin_onnx_threads(model, file)
            return model, "onnx"
        except Exception as err:  # the export and ONNX Runtime raise many types
            _log.warning("YOLO runs in torch: its ONNX graph could not be made or opened (%s)", err)
    try:
        return ultralytics.YOLO(str(path), task="detect"), "torch"
    except Exception as err:  # ultralytics raises many types for a bad file
        raise ValueError(f"cannot load YOLO weights {path}: {err}") from err


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


def _pin_onnx_threads(model: Any, file: Path) -> None:
    """Run ultralytics' ONNX Runtime session with torch's thread count, as the other networks are run
    (:class:`models.runtime.OnnxRunner`): ultralytics opens it with ONNX Runtime's default of every core."""
    import onnxruntime as ort

    with _quiet_ultralytics():
        model.predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, device="cpu", verbose=False)  # builds the session
    backend: Any = getattr(getattr(model.predictor, "model", None), "backend", None)
    if getattr(backend, "session", None) is None:
        raise ValueError(f"this ultralytics version ({_import_ultralytics().__version__}) hides its ONNX session")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    backend.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


def yolo_train(model: str | Path, *, resume: bool = False, **train_args: Any) -> None:
    """Train an ultralytics YOLO model on CPU, from scratch and offline.

    Args:
        model: a model ``.yaml`` (built from scratch) or, with ``resume``, the run's ``last.pt``.
        resume: continue the run that wrote ``model``.
        **train_args: ultralytics training arguments (``data``, ``epochs``, ``imgsz``, ``project``...).
    """
    ultralytics = _import_ultralytics()

    if resume:
        ultralytics.YOLO(str(model)).train(resume=True)
        return
    args: dict[str, Any] = {"device": "cpu", "pretrained": False, "amp": False, "plots": False, "workers": 0}
    args.update(train_args)
    ultralytics.YOLO(str(model)).train(**args)


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
    ) -> None:
        self.yolo = yolo
        self.segmenter = segmenter
        self.settings = settings
        self.calibration = calibration
        self.yolo_path = yolo_path
        self.backend = check_backend(backend)

    @property
    def version(self) -> str:
        """The model version string."""
        return self.settings.version

    @classmethod
    def load(
        cls, path: str | Path | None = None, *, calibration: CupGeometry | None = None, backend: str = DEFAULT_BACKEND
    ) -> Detector:
        """Load a detector folder (or its ``detector.json``); ``None`` loads the shipped default.

        Args:
            path: folder holding ``detector.json``, the sidecar itself, or ``None``.
            calibration: camera geometry to attach.
            backend: what runs the mask segmenter: ``"onnx"`` (ONNX Runtime, the default) or ``"torch"``.

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
            segmenter = load_segmenter(seg_path).with_flip_tta(settings.flip_tta).with_backend(backend)
        yolo, runs = _load_yolo(yolo_path, check_backend(backend), settings.imgsz, settings.yolo_sha256)
        return cls(yolo, segmenter, settings, calibration, yolo_path=yolo_path, backend=runs)

    def with_backend(self, backend: str) -> Detector:
        """The same models run by ``backend`` (``"onnx"`` or ``"torch"``): the segmenter, and YOLO when the
        detector knows the file it was loaded from."""
        segmenter = None if self.segmenter is None else self.segmenter.with_backend(backend)
        yolo, runs = self.yolo, self.backend
        wanted = check_backend(backend)
        if wanted != self.backend and self.yolo_path is not None:
            yolo, runs = _load_yolo(self.yolo_path, wanted, self.settings.imgsz, self.settings.yolo_sha256)
        return self._with(yolo=yolo, segmenter=segmenter, backend=runs)

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
        """YOLO boxes, run a second time at a larger input size when the coins came out small.

        The detector is trained on coins of about :data:`TARGET_COIN_PX` input pixels; a photo whose median
        box is well below that (a wide shot, a large image) is predicted again at the size that brings the
        coins to the trained scale (at most :data:`MAX_IMGSZ`). A station frame of a cup needs one pass.
        """
        found = self.boxes(image)
        if not self.settings.auto_scale or len(found.confidence) == 0:
            return found
        side = max(image.shape[:2])
        base = self.settings.imgsz
        sizes = np.maximum(found.xyxy[:, 2] - found.xyxy[:, 0], found.xyxy[:, 3] - found.xyxy[:, 1])
        coin_px = float(np.median(sizes)) * base / side
        if coin_px >= 0.7 * TARGET_COIN_PX:
            return found
        imgsz = min(
            MAX_IMGSZ, 32 * math.ceil(side / 32), 32 * math.ceil(base * TARGET_COIN_PX / max(coin_px, 1.0) / 32)
        )
        return self.boxes(image, imgsz) if imgsz > base else found

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
        masks = _resolve_overlaps(logits, w, h)
        parts: list[tuple[CoinInstance, _Outline, int]] = []
        for k, i in enumerate(order):
            made = self._instance(masks[k], float(found.confidence[i]), int(found.cls[i]), w, h)
            if made is not None:
                parts.append((*made, int(found.cls[i])))
        merged = self._merge_fragments(parts, w, h)
        insts = [inst for inst, _ in merged]
        roi = None if self.calibration is None else self.calibration.roi
        kept = drop_faint_rims(insts, image, self.settings.faint_rim, roi, rims=[o.rim for _, o in merged])
        return drop_bare_tray(kept, image, self.settings.bare_tray, roi)

    def _merge_fragments(
        self, parts: list[tuple[CoinInstance, _Outline, int]], width: int, height: int
    ) -> list[tuple[CoinInstance, _Outline]]:
        """Join the pieces of one coin that coins lying across it split apart; every instance comes with its
        outline, by decreasing confidence.

        Two nearby pieces are one coin when a circle runs along the rim of each and holds both
        (:func:`_joining_circle`), and what of that circle is not visible lies under other instances
        (:func:`_hidden_by_others`): they become one instance (outline refitted, the higher confidence kept). The
        circle is fitted to the rim of their union, or, where the pieces show too little rim to size it, drawn at
        the size of a whole coin in the same frame. A small coin lying on a larger one has its rim on its own
        circle, two coins side by side share no circle, and a circle through two coins' rims that shows the tray
        between them, or is far larger than any whole coin of the frame, is no coin; none of them is joined.
        """
        insts = [p[0] for p in parts]
        outlines = [p[1] for p in parts]
        classes = [p[2] for p in parts]
        covered = np.zeros((height, width), dtype=bool)
        for inst in insts:
            paste_mask(covered, inst)
        roi = None if self.calibration is None else self.calibration.roi
        sizes = _whole_radii(insts, outlines)
        alive = sorted(range(len(insts)), key=lambda k: -outlines[k].area)
        i = 0
        while i < len(alive):
            a = alive[i]
            for b in alive[i + 1 :]:
                circle = _joining_circle(insts[a], outlines[a], insts[b], outlines[b], sizes)
                if circle is None or not _hidden_by_others(circle, covered, roi):
                    continue
                conf = max(insts[a].confidence, insts[b].confidence)
                joined = self._instance(_union_mask(insts[a], insts[b]), conf, classes[a], width, height)
                if joined is not None:
                    insts[a], outlines[a] = joined
                    alive.remove(b)
                    break  # try the grown piece against the others again
            else:
                i += 1
        return sorted(((insts[k], outlines[k]) for k in alive), key=lambda pair: -pair[0].confidence)

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
    ) -> tuple[CoinInstance, _Outline] | None:
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
        is_coin = self.settings.names.get(cls, COIN_CLASS) == COIN_CLASS
        x2, y2 = ox + mask.shape[1], oy + mask.shape[0]
        edge = ox <= EDGE_MARGIN_PX or oy <= EDGE_MARGIN_PX or x2 >= width - EDGE_MARGIN_PX
        edge = edge or y2 >= height - EDGE_MARGIN_PX
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
        return inst, _Outline(rim_pts, outline, int(np.count_nonzero(mask)))


FRAGMENT_RIM_SHARE = 0.5
"""Two pieces are one coin when this share of each one's rim points lies on the circle fitted to their union ..."""
FRAGMENT_RIM_TOLERANCE = 0.04
"""... within this fraction of the circle's radius ..."""
FRAGMENT_INSIDE_SHARE = 0.9
"""... and this share of each one's outline lies inside it (grown by the same tolerance) ..."""
FRAGMENT_UNEXPLAINED = 0.1
"""... and at most this share of its disc is bare (neither piece nor any other instance lies there)."""
FRAGMENT_SIZE_MARGIN = 0.15
"""A joined coin may be at most this much larger than the largest whole coin of its frame."""
WHOLE_COVERAGE = 0.8
"""A coin whose rim shows in this share of the ten-degree sectors around its centre gives the frame's coin size."""


@dataclass(frozen=True)
class _Outline:
    """An instance's outline points, the part of them on its own rim, and its visible area in pixels."""

    rim: FloatArray
    outline: FloatArray
    area: int


def _whole_radii(insts: list[CoinInstance], outlines: list[_Outline]) -> list[float]:
    """The radii of the coins in a frame whose rim shows nearly all round, one per size (within 4 %)."""
    radii: list[float] = []
    for inst, o in zip(insts, outlines, strict=True):
        if not inst.is_coin or len(o.rim) < 20 or _arc_coverage(o.rim, *inst.center) < WHOLE_COVERAGE:
            continue
        r = max(inst.axes) / 2.0
        if all(abs(r - q) > FRAGMENT_RIM_TOLERANCE * q for q in radii):
            radii.append(r)
    return radii


def _joining_circle(
    a: CoinInstance, oa: _Outline, b: CoinInstance, ob: _Outline, sizes: Sequence[float] = ()
) -> tuple[float, float, float] | None:
    """The circle ``(cx, cy, r)`` of one coin whose visible parts are ``a`` and ``b``, or ``None``.

    A circle joins them when it runs along the rim of each part, holds both outlines, is no smaller than the
    smaller part's own circle and, in a frame with whole coins, not much larger than the largest of them (the rims
    of coins along the edge of a dense pile can line up on one large circle). The first tried is the one fitted to
    the rim of their union (the parts' rim points on the union's convex hull); then, for pieces whose arcs are too
    short to size a circle, one of each size in ``sizes`` (the frame's whole coins) fitted to the same points.
    """
    if not (a.is_coin and b.is_coin) or len(oa.rim) < 8 or len(ob.rim) < 8:
        return None
    # a coin lying across the split leaves a gap up to its size
    gap = max(max(a.axes) / 2.0, max(b.axes) / 2.0, 2.0 * max(sizes, default=0.0))
    ax0, ay0, ax1, ay1 = (float(v) for v in a.bbox)
    bx0, by0, bx1, by1 = (float(v) for v in b.bbox)
    if ax0 > bx1 + gap or bx0 > ax1 + gap or ay0 > by1 + gap or by0 > ay1 + gap:
        return None
    # a circle of radius r holds both only if they span at most its diameter (most pairs of a pile fail here)
    span = max(max(ax1, bx1) - min(ax0, bx0), max(ay1, by1) - min(ay0, by0)) / 2.0 / (1.0 + FRAGMENT_RIM_TOLERANCE)
    largest = max(sizes, default=math.inf) * (1.0 + FRAGMENT_SIZE_MARGIN)
    if span > largest + 1.0:
        return None
    pts = np.concatenate([oa.rim, ob.rim]).astype(np.float32)
    r_part = min(max(a.axes), max(b.axes)) / 2.0
    # where the two parts touch, their facing edges are not the coin's rim
    rim = pts[_hull_distance(pts, cv2.convexHull(pts)) <= 1.5]
    cx, cy, r = _circle_fit(rim)
    if not math.isfinite(r):
        return None
    if span <= r + 1.0 and r <= largest and _holds((cx, cy, r), r_part, oa, ob):
        return cx, cy, r
    for size in sizes:
        if span > size + 1.0 or size < r_part * (1.0 - FRAGMENT_RIM_TOLERANCE):
            continue
        centre = _circle_fit_radius(rim, size, (cx, cy, r))
        if centre is not None and _holds((*centre, size), r_part, oa, ob):
            return (*centre, size)
    return None


def _holds(circle: tuple[float, float, float], r_part: float, oa: _Outline, ob: _Outline) -> bool:
    """Whether ``circle`` is no smaller than the smaller part's own, holds both outlines and runs along both rims."""
    cx, cy, r = circle
    if r < r_part * (1.0 - FRAGMENT_RIM_TOLERANCE):
        return False  # smaller than the smaller part's own circle: no circle of both
    for o in (oa, ob):
        d_out = np.hypot(o.outline[:, 0] - cx, o.outline[:, 1] - cy)
        if float(np.mean(d_out <= r * (1.0 + FRAGMENT_RIM_TOLERANCE))) < FRAGMENT_INSIDE_SHARE:
            return False
        on = np.abs(np.hypot(o.rim[:, 0] - cx, o.rim[:, 1] - cy) - r) <= FRAGMENT_RIM_TOLERANCE * r
        if float(np.mean(on)) < FRAGMENT_RIM_SHARE:
            return False
    return True


def _circle_fit_radius(
    pts: FloatArray, radius: float, start: tuple[float, float, float], iterations: int = 20
) -> tuple[float, float] | None:
    """Centre of the circle of radius ``radius`` nearest ``pts`` in least squares (Gauss-Newton).

    It starts from the free fit ``start`` moved away from the points by the difference in radius, so the
    circle grows on the side where the arc opens.
    """
    if len(pts) < 3:
        return None
    sx, sy, sr = start
    mx, my = float(pts[:, 0].mean()), float(pts[:, 1].mean())
    ux, uy = sx - mx, sy - my
    norm = math.hypot(ux, uy)
    if norm > 1e-6:
        sx, sy = sx + ux / norm * (radius - sr), sy + uy / norm * (radius - sr)
    c = np.array([sx, sy], dtype=np.float64)
    p = pts.astype(np.float64)
    for _ in range(iterations):
        d = c[None, :] - p
        dist = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6)
        jac = d / dist[:, None]
        step, *_ = np.linalg.lstsq(jac, radius - dist, rcond=None)
        c += step
        if float(np.hypot(*step)) < 1e-3:
            break
    return (float(c[0]), float(c[1])) if np.isfinite(c).all() else None


def _hidden_by_others(circle: tuple[float, float, float], covered: BoolArray, roi: CupRegion | None = None) -> bool:
    """Whether what the circle's disc does not show of the joined pieces lies under other instances.

    A coin split by coins lying across it is hidden only where they (or the cup rim, or the image edge) are:
    at most :data:`FRAGMENT_UNEXPLAINED` of its disc may be bare tray.
    """
    cx, cy, r = circle
    h, w = covered.shape
    inner = r * (1.0 - FRAGMENT_RIM_TOLERANCE)
    x0, y0 = max(0, math.floor(cx - inner)), max(0, math.floor(cy - inner))
    x1, y1 = min(w, math.ceil(cx + inner) + 1), min(h, math.ceil(cy + inner) + 1)
    if x1 <= x0 or y1 <= y0:
        return False
    yy, xx = np.mgrid[y0:y1, x0:x1]
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= inner * inner
    if roi is not None:
        disc &= np.asarray(roi.inset(xx, yy)) > 0.0  # under the cup's rim: hidden by it
    n = int(np.count_nonzero(disc))
    if n == 0:
        return False
    bare = int(np.count_nonzero(disc & ~covered[y0:y1, x0:x1]))
    return bare <= FRAGMENT_UNEXPLAINED * n


def _union_mask(a: CoinInstance, b: CoinInstance) -> tuple[BoolArray, tuple[int, int]]:
    """The union of two instances' masks, cropped to its extent, with its origin."""
    x0, y0 = min(a.mask_origin[0], b.mask_origin[0]), min(a.mask_origin[1], b.mask_origin[1])
    x1 = max(a.mask_origin[0] + a.mask.shape[1], b.mask_origin[0] + b.mask.shape[1])
    y1 = max(a.mask_origin[1] + a.mask.shape[0], b.mask_origin[1] + b.mask.shape[0])
    out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for inst in (a, b):
        ox, oy = inst.mask_origin[0] - x0, inst.mask_origin[1] - y0
        out[oy : oy + inst.mask.shape[0], ox : ox + inst.mask.shape[1]] |= inst.mask
    return out, (int(x0), int(y0))


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


def _box4(row: FloatArray) -> tuple[float, float, float, float]:
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _check_file(path: Path, sha256: str | None) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"detector weights file {path} is missing")
    if sha256 and sha256_file(path) != sha256:
        raise ValueError(f"{path} does not match the SHA-256 in its sidecar (corrupt or replaced)")


def _resolve_overlaps(
    logits: list[tuple[FloatArray, Window]], width: int, height: int, floor: float = 0.0
) -> list[tuple[BoolArray, tuple[int, int]] | None]:
    """Give each pixel above ``floor`` to the instance with the highest logit; crop masks to their extent."""
    best = np.full((height, width), floor, dtype=np.float32)
    owner = np.full((height, width), -1, dtype=np.int32)
    for k, (lg, win) in enumerate(logits):
        x0, y0 = max(0, win.x0), max(0, win.y0)
        x1, y1 = min(width, win.x0 + win.side), min(height, win.y0 + win.side)
        if x1 <= x0 or y1 <= y0:
            continue
        part = lg[y0 - win.y0 : y1 - win.y0, x0 - win.x0 : x1 - win.x0]
        view_best, view_owner = best[y0:y1, x0:x1], owner[y0:y1, x0:x1]
        take = part > view_best
        view_best[take] = part[take]
        view_owner[take] = k
    out: list[tuple[BoolArray, tuple[int, int]] | None] = []
    for k, (_, win) in enumerate(logits):
        x0, y0 = max(0, win.x0), max(0, win.y0)
        x1, y1 = min(width, win.x0 + win.side), min(height, win.y0 + win.side)
        if x1 <= x0 or y1 <= y0:
            out.append(None)
            continue
        m = owner[y0:y1, x0:x1] == k
        m = _largest_components(m)
        ys, xs = np.nonzero(m)
        if len(xs) < 16:
            out.append(None)
            continue
        bx0, by0, bx1, by1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        out.append((np.ascontiguousarray(m[by0:by1, bx0:bx1]), (int(x0 + bx0), int(y0 + by0))))
    return out


def _largest_components(mask: BoolArray, keep: float = 0.1) -> BoolArray:
    """Drop connected components smaller than ``keep`` times the largest one."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    good = np.flatnonzero(areas >= keep * areas.max()) + 1
    return np.isin(labels, good)


def rim_points(
    mask: BoolArray, origin: tuple[int, int], width: int, height: int, roi: CupRegion | None = None
) -> tuple[FloatArray, FloatArray]:
    """Outline points of ``mask`` that lie on the coin's own rim.

    Args:
        mask: ``(h, w)`` bool visible mask.
        origin: ``(x, y)`` of ``mask[0, 0]`` in the frame.
        width: frame width.
        height: frame height.
        roi: cup region whose boundary is not the coin's rim, or ``None``.

    Returns:
        ``(k, 2)`` float32 rim points and ``(m, 2)`` float32 all outline points, frame pixels.
    """
    padded = np.pad(mask.astype(np.uint8), 1)
    contours, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        empty = np.zeros((0, 2), dtype=np.float32)
        return empty, empty
    shift = np.array([origin[0] - 1, origin[1] - 1], dtype=np.float32)
    loops = [c.reshape(-1, 2).astype(np.float32) + shift for c in contours]
    pts = np.concatenate(loops)
    hull = cv2.convexHull(pts)
    rims: list[FloatArray] = []
    for loop in loops:
        keep = _hull_distance(loop, hull) <= 1.5
        keep &= (loop[:, 0] > EDGE_MARGIN_PX) & (loop[:, 1] > EDGE_MARGIN_PX)
        keep &= (loop[:, 0] < width - 1 - EDGE_MARGIN_PX) & (loop[:, 1] < height - 1 - EDGE_MARGIN_PX)
        if roi is not None:
            keep &= roi.inset(loop[:, 0], loop[:, 1]) > 2.0
        rims.append(loop[_erode_runs(keep, max(2, len(loop) // RUN_TRIM))])
    return np.concatenate(rims), pts


FAINT_RIM_CONF = 0.75
"""Only coin boxes below this confidence are checked for a rim (:func:`drop_faint_rims`)."""
RIM_REFERENCE_CONF = 0.8
"""The frame's coin boxes at or above this confidence set the rim edge a coin of that frame shows."""
RIM_EDGE_REACH = 5
"""Side in pixels of the neighbourhood in which a rim point takes its strongest gradient (the outline of a mask
lies within a pixel or two of the edge it follows)."""


def edge_strength(image: UInt8Array) -> FloatArray:
    """``(H, W)`` float32 grey-level gradient magnitude (Sobel after a 1 px Gaussian), each pixel the strongest
    within :data:`RIM_EDGE_REACH` of it."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    g = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 1.0)
    mag = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))
    return np.asarray(cv2.dilate(mag, np.ones((RIM_EDGE_REACH, RIM_EDGE_REACH), np.uint8)), np.float32)


WHOLE_SHARE = 0.7
"""A box counts as showing a whole disc when its mask covers this share of its fitted ellipse (coins half hidden
under others, whose rims may be faint where they border them, cover far less)."""
MIN_RIM_POINTS = 8
"""Fewest rim points that measure a rim; with fewer the box is kept."""


def rim_edge(edges: FloatArray, rim: FloatArray) -> float:
    """Median edge strength at an instance's own rim points (:func:`rim_points`; ``nan`` under
    :data:`MIN_RIM_POINTS` of them).

    Args:
        edges: :func:`edge_strength` of the frame.
        rim: ``(k, 2)`` the instance's rim points in frame pixels.
    """
    if len(rim) < MIN_RIM_POINTS:
        return math.nan
    h, w = edges.shape
    xs = np.clip(np.round(rim[:, 0]).astype(np.int64), 0, w - 1)
    ys = np.clip(np.round(rim[:, 1]).astype(np.int64), 0, h - 1)
    return float(np.median(edges[ys, xs]))


def shows_whole(inst: CoinInstance) -> bool:
    """Whether the instance's mask covers at least :data:`WHOLE_SHARE` of its fitted ellipse (nothing lies on it)."""
    ellipse = math.pi * inst.axes[0] * inst.axes[1] / 4.0
    return ellipse > 0 and float(np.count_nonzero(inst.mask)) >= WHOLE_SHARE * ellipse


def drop_faint_rims(
    insts: list[CoinInstance],
    image: UInt8Array,
    share: float,
    roi: CupRegion | None = None,
    *,
    rims: Sequence[FloatArray] | None = None,
) -> list[CoinInstance]:
    """Drop the doubtful coin boxes that show a whole disc but no coin's rim around it.

    A coin's rim is an edge between metal and whatever lies around it, about as strong as the rims of the other
    coins in the same frame. A patch of towel weave, carpet or a reflection that YOLO boxes as a coin has no such
    edge along its outline: the outline runs through the texture, and nothing lies on the patch, so its mask is
    a whole disc. A coin box under :data:`FAINT_RIM_CONF` whose mask is a whole disc (:func:`shows_whole`) is
    dropped when the median edge strength along its own rim (:func:`rim_edge`) is under ``share`` times the median
    of the frame's coins at or above :data:`RIM_REFERENCE_CONF`. A coin partly hidden under others is never
    dropped: where its rim borders coins of the same metal the edge can be faint. Objects, confident boxes, and
    every box of a frame without a confident coin are kept too.

    Args:
        insts: the frame's instances.
        image: the frame, ``(H, W, 3)`` uint8 BGR.
        share: the fraction of the frame's typical rim edge a doubtful box must show (``0``: keep every box).
        roi: cup region whose boundary is not a coin's rim, or ``None``.
        rims: each instance's rim points when the caller has them (the detector does); else found here
            (:func:`rim_points`).
    """
    doubtful = [k for k, i in enumerate(insts) if i.is_coin and i.confidence < FAINT_RIM_CONF and shows_whole(i)]
    sure = [k for k, i in enumerate(insts) if i.is_coin and i.confidence >= RIM_REFERENCE_CONF]
    if share <= 0.0 or not doubtful or not sure:
        return insts
    h, w = image.shape[:2]

    def rim(k: int) -> FloatArray:
        return rims[k] if rims is not None else rim_points(insts[k].mask, insts[k].mask_origin, w, h, roi)[0]

    edges = edge_strength(image)
    ref = np.array([rim_edge(edges, rim(k)) for k in sure])
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        return insts
    floor = share * float(np.median(ref))
    drop = {k for k in doubtful if rim_edge(edges, rim(k)) < floor}
    return [i for k, i in enumerate(insts) if k not in drop]


TRAY_MARGIN_PX = 7
"""Pixels every instance's mask is grown by before the rest of the frame counts as bare tray (the mask's soft edge,
a coin's shadow)."""
MIN_TRAY_SHARE = 0.05
"""The bare tray must show over this share of the frame (of the cup region, when known) to give its colour."""
MIN_TRAY_CONTRAST = 10.0
"""Below this median Lab distance between the frame's confident coins and the tray, coins and tray look alike and
no box is judged by its colour."""
TRAY_STEP = 4
"""The bare tray's colour is taken from every this-many-th pixel of each row and column (a median needs no more)."""


def tray_colour(image: UInt8Array, insts: Sequence[CoinInstance], roi: CupRegion | None = None) -> FloatArray | None:
    """Median Lab colour (OpenCV's 8-bit scale) of the bare tray: the frame's pixels farther than
    :data:`TRAY_MARGIN_PX` from every instance's mask, inside ``roi`` when given, on a grid of :data:`TRAY_STEP`;
    ``None`` when they cover under :data:`MIN_TRAY_SHARE` of it."""
    h, w = image.shape[:2]
    covered = np.zeros((h, w), bool)
    for inst in insts:
        paste_mask(covered, inst)
    grid = covered[::TRAY_STEP, ::TRAY_STEP].astype(np.uint8)
    side = 2 * math.ceil(TRAY_MARGIN_PX / TRAY_STEP) + 1
    bare = cv2.dilate(grid, np.ones((side, side), np.uint8)) == 0
    area = bare.size
    if roi is not None:
        yy, xx = np.mgrid[0:h:TRAY_STEP, 0:w:TRAY_STEP]
        inside = roi.inset(xx, yy) > 0.0
        bare &= inside
        area = int(np.count_nonzero(inside))
    if np.count_nonzero(bare) < max(1.0, MIN_TRAY_SHARE * area):
        return None
    return _median_lab(image[::TRAY_STEP, ::TRAY_STEP][bare])


def _median_lab(pixels: UInt8Array) -> FloatArray:
    """Median Lab colour of ``(n, 3)`` BGR (or ``(n,)`` grey) pixels."""
    rows = np.ascontiguousarray(pixels, np.uint8).reshape(-1, 1, pixels.shape[-1] if pixels.ndim == 2 else 1)
    bgr = cv2.cvtColor(rows, cv2.COLOR_GRAY2BGR) if rows.shape[2] == 1 else rows
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB).reshape(-1, 3)
    return np.asarray(np.median(lab, axis=0), np.float32)


def _mask_colour(image: UInt8Array, inst: CoinInstance) -> FloatArray | None:
    """Median Lab colour under the instance's mask (the part inside the frame, every other pixel of each row and
    column); ``None`` for an empty one."""
    window = mask_window(inst, image.shape[1], image.shape[0])
    if window is None:
        return None
    (rows, cols), mask = window
    pixels = image[rows, cols][::2, ::2][mask[::2, ::2]]
    return None if len(pixels) == 0 else _median_lab(pixels)


def drop_bare_tray(
    insts: list[CoinInstance], image: UInt8Array, share: float, roi: CupRegion | None = None
) -> list[CoinInstance]:
    """Drop the doubtful coin boxes whose inside is the colour of the bare tray.

    YOLO boxes the gap between three coins, or a patch of towel beside them, as a small coin: its mask then holds
    what lies around the coins, whole or cut by the coins next to it, so the rim test of :func:`drop_faint_rims`
    (whole discs only) does not see it. A coin shows metal: its colour differs from the tray's about as much as the
    other coins' do, even when it lies mostly hidden in a heap (on the synthetic test mints, no coin box came within
    0.3 of the frame's typical distance). A coin box under :data:`RIM_REFERENCE_CONF` is dropped when the median
    Lab distance between its pixels and the bare tray (:func:`tray_colour`) is under ``share`` times the median of
    the frame's coins at or above that confidence. Objects, confident boxes, and every box of a frame without a
    confident coin, without enough bare tray, or whose coins look like the tray (:data:`MIN_TRAY_CONTRAST`) are
    kept.

    Args:
        insts: the frame's instances.
        image: the frame, ``(H, W, 3)`` uint8 BGR.
        share: the fraction of the frame's typical coin-to-tray distance a doubtful box must show (``0``: keep
            every box).
        roi: the cup region, whose inside alone is the tray; ``None``: the whole frame.
    """
    doubtful = [k for k, i in enumerate(insts) if i.is_coin and i.confidence < RIM_REFERENCE_CONF]
    sure = [i for i in insts if i.is_coin and i.confidence >= RIM_REFERENCE_CONF]
    if share <= 0.0 or not doubtful or not sure:
        return insts
    tray = tray_colour(image, insts, roi)
    if tray is None:
        return insts

    def distance(inst: CoinInstance) -> float:
        colour = _mask_colour(image, inst)
        return math.nan if colour is None else float(np.linalg.norm(colour - tray))

    typical = float(np.nanmedian([distance(i) for i in sure]))
    if not typical >= MIN_TRAY_CONTRAST:
        return insts
    drop = {k for k in doubtful if distance(insts[k]) < share * typical}
    return [i for k, i in enumerate(insts) if k not in drop]


def _hull_distance(pts: FloatArray, hull: np.ndarray) -> FloatArray:
    """Distance of each of ``(n, 2)`` points inside the convex polygon ``hull`` (``(k, 1, 2)``, from
    ``cv2.convexHull`` of a set holding them) to its boundary: ``(n,)`` float32.

    Inside a convex polygon the distance to the boundary is the smallest distance to the lines of its edges,
    one matrix product instead of a clipped distance to every segment.
    """
    a = hull.reshape(-1, 2).astype(np.float64)
    ab = np.roll(a, -1, axis=0) - a
    length = np.hypot(ab[:, 0], ab[:, 1])
    edge = length > 1e-9
    if np.count_nonzero(edge) < 3:  # a point or a segment: the distance to its vertices and edge
        return _segment_distance(pts, a)
    a, ab, length = a[edge], ab[edge], length[edge]
    p = pts.astype(np.float64)
    cross = p[:, :1] * ab[None, :, 1] - p[:, 1:] * ab[None, :, 0] - (a[:, 0] * ab[:, 1] - a[:, 1] * ab[:, 0])
    return np.asarray((np.abs(cross) / length).min(axis=1), dtype=np.float32)


def _segment_distance(pts: FloatArray, a: np.ndarray) -> FloatArray:
    """Distance of each of ``(n, 2)`` points to the closed polyline through the ``(k, 2)`` vertices ``a``."""
    if len(a) < 2:
        return np.asarray(np.hypot(pts[:, 0] - a[0, 0], pts[:, 1] - a[0, 1]), dtype=np.float32)
    ab = np.roll(a, -1, axis=0) - a
    ap = pts[:, None, :] - a[None, :, :]
    t = np.clip((ap * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9)[None], 0.0, 1.0)
    d = ap - t[..., None] * ab[None]
    return np.asarray(np.sqrt((d * d).sum(-1)).min(axis=1), dtype=np.float32)


def _erode_runs(keep: BoolArray, k: int) -> BoolArray:
    """Drop ``k`` points at each end of every run of kept points along a closed outline (junction points)."""
    if keep.all() or not keep.any():
        return keep
    out = keep.copy()
    for step in range(1, k + 1):
        out &= np.roll(keep, step) & np.roll(keep, -step)
    return out


def _circle_fit(pts: FloatArray) -> tuple[float, float, float]:
    """Algebraic (Kasa) least-squares circle ``cx, cy, r``."""
    x, y = pts[:, 0].astype(np.float64), pts[:, 1].astype(np.float64)
    a = np.stack([x, y, np.ones_like(x)], axis=1)
    b = x * x + y * y
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = sol[0] / 2.0, sol[1] / 2.0
    r = math.sqrt(max(sol[2] + cx * cx + cy * cy, 0.0))
    return float(cx), float(cy), float(r)


def _arc_coverage(pts: FloatArray, cx: float, cy: float) -> float:
    """Fraction of the 36 ten-degree sectors around ``(cx, cy)`` that hold a point."""
    ang = np.degrees(np.arctan2(pts[:, 1] - cy, pts[:, 0] - cx)) % 360.0
    return len(np.unique((ang // 10).astype(int))) / 36.0


def fit_outline(
    mask: BoolArray, origin: tuple[int, int], width: int, height: int, roi: CupRegion | None = None
) -> tuple[tuple[float, float], tuple[float, float], float] | None:
    """Fit the coin's outline to the rim part of its visible mask.

    An ellipse (``cv2.fitEllipse``) when the rim covers most of the circumference and the fit is nearly round,
    else a least-squares circle; falls back to the mask's enclosing circle when too little rim is visible.

    Args:
        mask: ``(h, w)`` bool visible mask.
        origin: ``(x, y)`` of ``mask[0, 0]`` in the frame.
        width: frame width.
        height: frame height.
        roi: cup region whose boundary is not the coin's rim, or ``None``.

    Returns:
        ``((cx, cy), (major, minor), angle)`` in frame pixels and degrees, or ``None`` for an empty mask.
    """
    return fit_points(*rim_points(mask, origin, width, height, roi))


def fit_points(rim: FloatArray, outline: FloatArray) -> tuple[tuple[float, float], tuple[float, float], float] | None:
    """:func:`fit_outline` on the points :func:`rim_points` gave: the coin's rim part and the whole outline."""
    if len(outline) == 0:
        return None
    (ex, ey), er = cv2.minEnclosingCircle(outline)
    d_enc = 2.0 * float(er) + PIXEL_CENTRE_BIAS
    fallback = ((float(ex), float(ey)), (d_enc, d_enc), 0.0)
    if len(rim) < 12:
        return fallback
    cx, cy, r = _circle_fit(rim)
    if not (math.isfinite(r) and 0.3 * er < r < 3.0 * er):
        return fallback
    if _arc_coverage(rim, cx, cy) >= ELLIPSE_COVERAGE and len(rim) >= 20:
        (ex2, ey2), (a, b), angle = cv2.fitEllipse(rim)
        major, minor = max(a, b), min(a, b)
        if minor > 0.8 * major and abs(major - 2 * r) < 0.1 * r:
            if a < b:
                angle = (angle + 90.0) % 180.0
            axes = (float(major) + PIXEL_CENTRE_BIAS, float(minor) + PIXEL_CENTRE_BIAS)
            return (float(ex2), float(ey2)), axes, float(angle)
    d = 2.0 * r + PIXEL_CENTRE_BIAS
    return (cx, cy), (d, d), 0.0


def instance_full_mask(inst: CoinInstance, width: int, height: int) -> BoolArray:
    """The instance's mask pasted into a ``(height, width)`` bool frame."""
    full = np.zeros((height, width), dtype=bool)
    paste_mask(full, inst)
    return full


def mask_window(inst: CoinInstance, width: int, height: int) -> tuple[tuple[slice, slice], BoolArray] | None:
    """The part of the instance's mask inside a ``(height, width)`` frame: the frame's ``(rows, columns)`` slices
    and the mask cut to them; ``None`` when none of it is inside."""
    ox, oy = inst.mask_origin
    mh, mw = inst.mask.shape
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(width, ox + mw), min(height, oy + mh)
    if x1 <= x0 or y1 <= y0:
        return None
    return (slice(y0, y1), slice(x0, x1)), inst.mask[y0 - oy : y1 - oy, x0 - ox : x1 - ox]


def paste_mask(frame: BoolArray, inst: CoinInstance) -> None:
    """Add the instance's mask to the frame-sized bool ``frame`` in place (the part inside the frame)."""
    window = mask_window(inst, frame.shape[1], frame.shape[0])
    if window is not None:
        frame[window[0]] |= window[1]


def read_frame(path: str | Path) -> Frame:
    """Read an image file into a :class:`Frame`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty, unreadable or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return Frame(image=np.ascontiguousarray(image, dtype=np.uint8), source=str(path))


def instance_record(inst: CoinInstance) -> dict[str, Any]:
    """A JSON-safe summary of one instance (the ``cupcheck detect --json`` coin schema)."""
    x1, y1, x2, y2 = (round(float(v), 2) for v in inst.bbox)
    return {
        "bbox": [x1, y1, x2, y2],
        "confidence": round(float(inst.confidence), 4),
        "center": [round(inst.center[0], 2), round(inst.center[1], 2)],
        "diameter_px": round(inst.diameter_px, 2),
        "diameter_mm": None if inst.diameter_mm is None else round(float(inst.diameter_mm), 3),
        "partial": bool(inst.partial),
    }


def draw_overlay(image: UInt8Array, instances: list[CoinInstance], label: str = "") -> UInt8Array:
    """Draw masks (tinted), fitted ellipses, centres and diameters on a copy of a BGR image.

    Args:
        image: ``(H, W, 3)`` uint8 BGR.
        instances: what to draw; coins green (partial ones yellow), foreign objects red.
        label: text for the top-left corner.

    Returns:
        ``(H, W, 3)`` uint8 BGR.
    """
    out = image.copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 640))
    tint = out.copy()
    for inst in instances:
        color = (0, 200, 0) if inst.is_coin else (0, 0, 230)
        if inst.is_coin and inst.partial:
            color = (0, 210, 230)
        full = instance_full_mask(inst, w, h)
        tint[full] = color
    out = np.asarray(cv2.addWeighted(tint, 0.35, out, 0.65, 0.0), dtype=np.uint8)
    for inst in instances:
        color = (0, 255, 0) if inst.is_coin else (0, 0, 255)
        if inst.is_coin and inst.partial:
            color = (0, 230, 255)
        center = (round(inst.center[0]), round(inst.center[1]))
        axes = (max(1, round(inst.axes[0] / 2)), max(1, round(inst.axes[1] / 2)))
        cv2.ellipse(out, center, axes, inst.angle, 0, 360, color, thick, cv2.LINE_AA)
        cv2.circle(out, center, thick + 1, color, -1, cv2.LINE_AA)
        text = f"{inst.diameter_mm:.1f}mm" if inst.diameter_mm is not None else f"{inst.diameter_px:.0f}px"
        if not inst.is_coin:
            text = "object"
        cv2.putText(
            out,
            text,
            (center[0] - 20 * thick, center[1] - 6 * thick),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thick,
            (255, 255, 255),
            thick,
            cv2.LINE_AA,
        )
    if label:
        cv2.putText(
            out, label, (8, 20 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * thick, (255, 255, 255), thick, cv2.LINE_AA
        )
    return np.asarray(out, dtype=np.uint8)
