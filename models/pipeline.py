"""From a cup photo to a verdict: detect → crop → embed → gallery → set pooling → voter → guaranteed threshold.

:class:`Pipeline` is the one entry point the command line, the station app, the benchmark and the tests call::

    pipeline = Pipeline.load(home)                      # bundle + detector + embedder + gallery + catalogue
    verdict = pipeline.run(frame, expected_type="t0042")
    verdict = pipeline.run_crops(crops, expected_type="t0042")

A cup PASSes only when the voter's ``p_correct`` reaches the bundle's threshold (chosen on calibration cups for
a guaranteed precision) and :data:`~calibration.risk.PASS_FLOOR` (0.5: a looser target's threshold never passes a
cup the voter scores more likely wrong than right), at least one coin was found and nothing in the cup is a foreign
object. When the station has an empty-tray photo (``cupcheck calibrate --empty-tray``), whatever differs from it
where no coin or object was found counts as a foreign object too (:mod:`models.foreground`): something nobody
checked. Every FLAG carries reasons a person can act on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from calibration.camera import CupRoi
from calibration.movement import CameraMove, SetupView
from calibration.risk import ThresholdChoice, highest_certified_target
from models.adapter import AdapterError, EmbeddingAdapter, adapted_gallery
from models.bundle import Bundle, BundleError, Preprocess, load_bundle
from models.embedder import Embedder, circle_mask
from models.enroll import CATALOG_FILE, TypeInfo, catalog_lookalikes, load_catalog
from models.features import (
    TEMPLATE_FEATURES,
    CoinScores,
    CupCoins,
    PairEvidence,
    TemplateScorer,
    feature_vector,
    focus_measure,
    pair_evidence,
    visible_share,
)
from models.foreground import ForegroundRegion, unexplained_regions
from models.gallery import RERANK_DEPTH, Gallery, reranked_score
from models.gallery_view import GalleryView
from models.pooling import SetPooler
from models.reasons import CoinFinding, FlagFindings, count_reason, flag_reasons, on_shared_face
from models.references import ReferencesError, StationReferences, with_references
from models.runtime import DEFAULT_BACKEND
from models.template import signatures
from models.types import (
    CoinCrop,
    CoinEvidence,
    CoinInstance,
    Decision,
    Frame,
    Match,
    Side,
    UInt8Array,
    Verdict,
)
from models.voter import RULE_FEATURES, Voter, passable

_log = logging.getLogger(__name__)

TURN_MARGIN = 0.25
"""A coin on a shared design of the candidate that another type beats through a design several types share is
named to turn over when it loses by less than this cosine (its own side settles it); by more, it is named as
looking like that type. On 120 cups of the test mint, the 59 coins beaten so were 58 of the expected type (51 lying
on the shared obverse, 7 on the reverse; margins -0.31 to 0) and one of another type, which lost by more than 0.33.
A FLAG that names coins to turn asks the operator to turn them and check again first only when no coin it names as
looking like another type loses by this much: on 300 cups of the test mint, the clean cups that passed after
turning had every such coin within -0.22, while 27 of the 34 contaminated cups that named coins to turn had one at
-0.38 or less."""


EMBEDDER_THREADS = 2
"""ONNX Runtime threads of the station's embedder: on the 2-core station PC, 10 crops embed in 76-88 ms on two
threads against 116-134 ms on one (`cupcheck bench verdict --threads 2 --detector-threads 1`)."""
DETECTOR_THREADS = 1
"""... and of YOLO and the mask segmenter, whose small inputs gain nothing from a second thread there: detection
with masks took 90-97 ms on one thread against 122-125 ms on two."""


class UnknownTypeError(ValueError):
    """The expected coin type is not enrolled in the gallery."""


@dataclass(frozen=True)
class Observation:
    """A cup's coins, observed once, ready to be judged against any expected type.

    Attributes:
        instances: every instance in detector order (coins and objects).
        coin_idx: positions of the coins in ``instances``.
        object_idx: positions of the foreign objects.
        coins: the coins' embeddings and measurements.
        type_best: ``(n, T)`` best similarity of each coin to each gallery type.
        type_arg: ``(n, T)`` which reference gave it.
        timings_ms: stage name to milliseconds so far.
        unexplained: parts of the cup that differ from the empty tray where nothing was found (counted in
            ``coins.n_objects``).
        setup_problem: why the frame is not a picture of the station's camera as it was set up (another size than
            its calibration, or a camera that has moved since); such a cup is judged without the station's geometry
            and always flagged. ``""``: none.
        camera_move: how the view differs from the set-up photo's (the empty tray, else the calibration photo:
            :mod:`calibration.movement`); ``None``: not compared (no such photo, another size) or nothing around the
            cup to tell by.
    """

    instances: list[CoinInstance]
    coin_idx: list[int]
    object_idx: list[int]
    coins: CupCoins
    type_best: np.ndarray
    type_arg: np.ndarray
    timings_ms: dict[str, float]
    unexplained: tuple[ForegroundRegion, ...] = ()
    setup_problem: str = ""
    camera_move: CameraMove | None = None

    @property
    def timings(self) -> dict[str, float]:
        """Alias of :attr:`timings_ms`."""
        return self.timings_ms


def detector_mismatch(bundle: Bundle, detector: InstanceSource | None) -> str:
    """Why ``bundle``'s guarantee may not hold with ``detector``: it is not the one that cut the calibration cups.

    The threshold is certified for the pipeline that cut the calibration cups; another detector (a new version, a
    user's own) cuts coins otherwise, and so does none: calibration cups cut from their true masks
    (``cupcheck train voter --instances gt``, never recalibrated on a detector's cuts) were cut perfectly, which no
    detector does. ``""`` when they agree or the version in use is unknown.
    """
    version = str(getattr(detector, "version", "") or "")
    certified = bundle.calibration_detector
    if version and _calibrated_on_true_masks(bundle):  # whatever detector the voter was trained with
        return (
            "the PASS threshold was certified on calibration cups cut from their true masks (ground truth), not "
            f"on the cuts of a detector, and the detector in use is {version}: the guarantee is not certified for "
            "its cuts; certify it on them (`cupcheck train recalibrate --instances detector`)"
        )
    if not version or not certified or version == certified:
        return ""
    return (
        f"the PASS threshold was certified on cups cut by detector {certified}, but the detector in use is "
        f"{version}; certify it again on its cuts (`cupcheck train recalibrate`)"
    )


def _calibrated_on_true_masks(bundle: Bundle) -> bool:
    """Whether the bundle's calibration cups were cut from their true masks: as its last recalibration says, else
    as its voter was trained (``train.instances``; a bundle that does not say is not taken for one)."""
    cut = bundle.train.get("calibration_instances") or bundle.train.get("instances")
    return cut == "gt"


class InstanceSource(Protocol):
    """Anything that finds coin instances in a frame (:class:`models.detector.Detector`)."""

    def detect(self, frame: Frame) -> list[CoinInstance]:
        """Instances in ``frame``, coins and foreign objects."""
        ...


@runtime_checkable
class CalibratedSource(Protocol):
    """An instance source that measures with the station's camera calibration (:class:`models.detector.Detector`)."""

    calibration: object | None

    def with_calibration(self, calibration: None) -> InstanceSource:
        """The same source without the station's geometry (no cup region, no millimetres)."""
        ...


def frame_size_problem(frame: UInt8Array, camera: tuple[int, int] | None) -> str:
    """Why ``frame`` is not a picture of the station's camera as it was set up (``camera``: ``(width, height)`` of
    its calibration image or empty-tray photo), ``""`` when it is or nothing says."""
    h, w = frame.shape[:2]
    if camera is None or (w, h) == tuple(camera):
        return ""
    return (
        f"the photo is {w}×{h} pixels, not the {camera[0]}×{camera[1]} the station's camera was set up at — set the "
        "camera back, or calibrate again (cupcheck calibrate); its cup region, millimetres and empty tray were not used"
    )


@dataclass
class Pipeline:
    """A loaded verdict model: every part needed to turn a frame into a :class:`~models.types.Verdict`.

    Attributes:
        embedder: crop embedder (with the bundle's fine-tuned output layer, when it has one).
        gallery: enrolled references, as the station's gallery holds them (made by the embedder without the layer).
        view: dense per-type view of ``gallery`` (mapped by ``adapter``) with catalogue diameters.
        pooler: trained set pooler.
        voter: trained voter.
        threshold: acceptance threshold with its guarantee; a cup is held to its
            :attr:`~calibration.risk.ThresholdChoice.applied` threshold, never under
            :data:`~calibration.risk.PASS_FLOOR`.
        preprocess: crop size, minimum coins, focus floor.
        model_version: the bundle version recorded in every verdict.
        detector: instance source for :meth:`run` (``None``: only :meth:`run_crops` works).
        empty_tray: the station's empty-tray photo; :meth:`run` then flags what differs from it unexplained. A frame
            of another size than the camera was set up at (:attr:`camera_size`) is flagged as such, and so is one
            whose surroundings of the cup show that the camera has moved since that photo (:attr:`setup_view`).
        cup_roi: the cup's interior (from the station's calibration); only differences inside it count.
        uncertified: why the bundle's PASS guarantee may not hold for this pipeline, ``""`` when nothing says so
            (a detector other than the one that cut the calibration cups).
        references: the bundle's station references, which ``view`` holds beside ``gallery``'s
            (:mod:`models.references`); ``None``: none.
        catalogue: the station's catalogue (diameters, declared lookalikes) ``view`` was built with.
        adapter: the bundle's fine-tuned output layer on the embedder (:mod:`models.adapter`); ``None``: none.
        enrol_per_side: the enrolment photos a side the voter was calibrated with (a type with fewer is matched less
            surely than the threshold assumes); 0: not known.
        setup_photo: the calibration photo (grey), the view a moved camera is told by while there is no empty-tray
            photo (:attr:`setup_view`); ``None``: not kept.
    """

    embedder: Embedder
    gallery: Gallery
    view: GalleryView
    pooler: SetPooler
    voter: Voter
    threshold: ThresholdChoice
    preprocess: Preprocess
    model_version: str
    detector: InstanceSource | None = None
    empty_tray: UInt8Array | None = None
    cup_roi: CupRoi | None = None
    uncertified: str = ""
    references: StationReferences | None = None
    catalogue: dict[str, TypeInfo] | None = None
    adapter: EmbeddingAdapter | None = None
    enrol_per_side: int = 0
    setup_photo: UInt8Array | None = None
    _setup: tuple[UInt8Array, SetupView] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def setup_view(self) -> SetupView | None:
        """The surroundings of the cup as the empty-tray photo shows them (else the calibration photo), to tell a
        moved camera by; ``None`` without either. Made again whenever :attr:`empty_tray` is replaced."""
        photo = self.empty_tray if self.empty_tray is not None else self.setup_photo
        if photo is None:
            return None
        if self._setup is None or self._setup[0] is not photo:
            self._setup = (photo, SetupView(photo, self.cup_roi))
        return self._setup[1]

    @classmethod
    def from_parts(
        cls,
        bundle: Bundle,
        gallery: Gallery,
        *,
        embedder: Embedder,
        catalogue: dict[str, TypeInfo] | None = None,
        detector: InstanceSource | None = None,
        allow_mismatch: bool = False,
        empty_tray: UInt8Array | None = None,
        cup_roi: CupRoi | None = None,
        setup_photo: UInt8Array | None = None,
    ) -> Pipeline:
        """Assemble a pipeline from a bundle and already loaded parts.

        Raises:
            BundleError: the embedder or the gallery is not the one the voter was calibrated with, the voter was
                trained on another feature set, or it needs template signatures the gallery lacks.
        """
        if not allow_mismatch and embedder.version != bundle.embedder_version:
            raise BundleError(
                f"the voter was trained and calibrated with embedder {bundle.embedder_version} but the embedder "
                f"in use is {embedder.version}; retrain the voter (`cupcheck train voter`)"
            )
        bundle.check_feature_set()
        if not allow_mismatch and gallery.embedder_version != embedder.version:
            raise BundleError(
                f"gallery built with embedder {gallery.embedder_version}, embedder in use is {embedder.version}; "
                "re-enrol the catalogue"
            )
        pooler = SetPooler.load(bundle.path(bundle.pooler_file))  # type: ignore[arg-type]
        voter = bundle.load_voter()
        if voter.feature_names != bundle.features:
            raise BundleError("the voter's features differ from the bundle's feature list")
        if set(TEMPLATE_FEATURES) & set(voter.feature_names) and not gallery.has_signatures:
            raise BundleError(
                "the voter compares coins with the references' template signatures, but this gallery was "
                "enrolled without them; re-enrol the catalogue (`cupcheck enroll CATALOG_DIR --rebuild`)"
            )
        adapter = None
        adapter_path = bundle.path(bundle.adapter_file)
        try:
            if adapter_path is not None:
                adapter = EmbeddingAdapter.load(adapter_path, None if allow_mismatch else embedder.version)
                # (the same versions unless allow_mismatch, which puts the layer on whatever is in use)
                embedder = embedder.with_adapter(replace(adapter, base_version=embedder.version))
                adapter = replace(adapter, base_version=gallery.embedder_version)
            refs = None
            refs_path = bundle.path(bundle.references_file)
            if refs_path is not None:
                refs = StationReferences.load(refs_path, None if allow_mismatch else embedder.version)
            view = station_view(gallery, refs, catalogue, adapter)
        except (AdapterError, ReferencesError) as err:
            raise BundleError(str(err)) from err
        return cls(
            embedder=embedder,
            gallery=gallery,
            view=view,
            pooler=pooler,
            voter=voter,
            threshold=bundle.threshold,
            preprocess=bundle.preprocess,
            model_version=bundle.version,
            detector=detector,
            empty_tray=empty_tray,
            cup_roi=cup_roi,
            uncertified=detector_mismatch(bundle, detector),
            references=refs,
            catalogue=catalogue,
            adapter=adapter,
            enrol_per_side=bundle.enrol_per_side,
            setup_photo=setup_photo,
        )

    @classmethod
    def load(
        cls,
        home: str | Path,
        bundle_path: str | Path | None = None,
        *,
        with_detector: bool = True,
        detector_path: str | Path | None = None,
        embedder_path: str | Path | None = None,
        target_precision: float | None = None,
        backend: str = DEFAULT_BACKEND,
        gallery_home: str | Path | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> Pipeline:
        """Load the bundle, its weights, and the station's gallery and catalogue from ``home``.

        Args:
            home: station home (``gallery/`` with ``catalog.json``; optional ``calibration.json``,
                ``empty_tray.png`` and ``setup_view.png``).
            bundle_path: bundle JSON (default: shipped).
            with_detector: load the detector (not needed for :meth:`run_crops`).
            detector_path: detector folder overriding the bundle's.
            embedder_path: embedder checkpoint overriding the bundle's.
            target_precision: re-choose the threshold for this precision from the bundle's calibration scores.
                Where the threshold it certifies lies under :data:`~calibration.risk.PASS_FLOOR`, the floor applies,
                and ``warn`` hears so; where none is certified, ``warn`` hears the highest precision that is.
            backend: what runs the embedder, the mask segmenter and YOLO (``"onnx"`` or ``"torch"``).
            gallery_home: the folder whose ``gallery/`` holds the enrolled types, when not the home (a site's
                shared folder); the camera's calibration and empty tray stay the home's.
            warn: hears why the threshold applied is not the one certified (``None``: a warning in the log).

        Raises:
            FileNotFoundError: a model file or the gallery is missing.
            BundleError, ValueError: damaged or mismatched files, or an unknown backend.
        """
        bundle = load_bundle(bundle_path)
        if target_precision is not None:
            bundle = bundle.with_threshold(bundle.rechoose(target_precision))
            note = bundle.threshold.floor_note() or uncertifiable_note(bundle)
            if note:
                (warn or _log.warning)(note)
        emb_file = embedder_path if embedder_path is not None else bundle.path(bundle.embedder_file)
        embedder = Embedder.load(emb_file, threads=EMBEDDER_THREADS, backend=backend)
        gallery_dir = Path(home if gallery_home is None else gallery_home) / "gallery"
        gallery = Gallery.load(gallery_dir, embedder_version=embedder.version)
        if len(gallery) == 0:
            raise FileNotFoundError(f"the gallery in {gallery_dir} is empty; enrol coin types first")
        catalogue = load_catalog(gallery_dir / CATALOG_FILE)
        detector = None
        empty_tray = setup_photo = None
        roi = None
        if with_detector:
            from calibration.camera import load_calibration, load_empty_tray, load_setup_view
            from models.detector import Detector

            calibration = load_calibration(home)
            roi = None if calibration is None else calibration.roi
            empty_tray = load_empty_tray(home)
            setup_photo = None if calibration is None else load_setup_view(home)
            det_path = detector_path if detector_path is not None else bundle.path(bundle.detector_dir)
            detector = Detector.load(det_path, calibration=calibration, backend=backend, threads=DETECTOR_THREADS)
        return cls.from_parts(
            bundle,
            gallery,
            embedder=embedder,
            catalogue=catalogue,
            detector=detector,
            empty_tray=empty_tray,
            cup_roi=roi,
            setup_photo=setup_photo,
        )

    def with_threshold(self, threshold: ThresholdChoice) -> Pipeline:
        """The same pipeline with another acceptance threshold."""
        return replace(self, threshold=threshold)

    def with_references(self, refs: StationReferences | None) -> Pipeline:
        """The same pipeline whose view holds the station's gallery plus ``refs`` instead of the bundle's own.

        Raises:
            ReferencesError: ``refs`` were made by another embedder.
        """
        view = station_view(self.gallery, refs, self.catalogue, self.adapter)
        return replace(self, view=view, references=refs)

    def with_adapter(self, adapter: EmbeddingAdapter | None, refs: StationReferences | None) -> Pipeline:
        """The same pipeline with another fine-tuned output layer on the embedder (``None``: none) and the station
        references ``refs`` (which must be in that layer's space).

        Raises:
            AdapterError: ``adapter`` fine-tunes another embedder.
            ReferencesError: ``refs`` were made by another embedding.
        """
        bare = self.embedder.without_adapter()
        try:
            embedder = bare if adapter is None else bare.with_adapter(adapter)
        except ValueError as err:
            raise AdapterError(str(err)) from err
        view = station_view(self.gallery, refs, self.catalogue, adapter)
        return replace(self, embedder=embedder, view=view, references=refs, adapter=adapter)

    # ------------------------------------------------------------------------------------------------ running

    @property
    def fewest_coins(self) -> int:
        """Fewest coins a cup may show and pass: under this, "too few coins visible". The voter's hard rule, which
        decides (:func:`models.voter.passable`): a cup it lets pass is never told it shows too few."""
        return self.voter.min_coins

    def check_type(self, expected_type: str) -> int:
        """The expected type's index in the gallery.

        Raises:
            UnknownTypeError: the type is not enrolled.
        """
        idx = self.view.type_index.get(expected_type)
        if idx is None:
            known = ", ".join(self.view.types[:8]) + (" ..." if self.view.n_types > 8 else "")
            raise UnknownTypeError(f"coin type {expected_type!r} is not enrolled (known: {known})")
        return idx

    def run(self, frame: Frame, expected_type: str, *, expected_count: int | None = None) -> Verdict:
        """Verify one cup photo: :meth:`observe` then :meth:`decide`.

        Args:
            frame: the camera frame.
            expected_type: the type the order asks for.
            expected_count: how many coins the order asks for (``None``: any number); a cup showing another number
                of coins is flagged, whatever their type.

        Raises:
            UnknownTypeError: ``expected_type`` is not enrolled (checked before any work).
            RuntimeError: the pipeline has no detector.
        """
        self.check_type(expected_type)
        return self.decide(self.observe(frame), expected_type, expected_count=expected_count)

    def run_crops(
        self,
        crops: Sequence[CoinCrop | UInt8Array],
        expected_type: str,
        *,
        n_objects: int = 0,
        expected_count: int | None = None,
    ) -> Verdict:
        """Verify a cup given as pre-cut single-coin crops: :meth:`observe_crops` then :meth:`decide`.

        Raises:
            UnknownTypeError: ``expected_type`` is not enrolled.
        """
        self.check_type(expected_type)
        return self.decide(self.observe_crops(crops, n_objects=n_objects), expected_type, expected_count=expected_count)

    def observe(self, frame: Frame) -> Observation:
        """Detect, crop and embed the coins of a frame (everything that does not depend on the expected type).

        Raises:
            RuntimeError: the pipeline has no detector.
        """
        if self.detector is None:
            raise RuntimeError("this pipeline was loaded without a detector; use run_crops")
        from models.crops import cut_crops

        t0 = time.perf_counter()
        problem = frame_size_problem(frame.image, self.camera_size)
        view, move = self.setup_view, None
        if not problem and view is not None:
            move = view.compare(frame.image)
            problem = "" if move is None else move.problem()
        t_setup = time.perf_counter()
        detector = self.detector
        if problem and isinstance(detector, CalibratedSource):  # its cup region and px/mm belong to another view
            detector = detector.with_calibration(None)
        instances = detector.detect(frame)
        t1 = time.perf_counter()
        coin_instances = [i for i in instances if i.is_coin]
        crops = cut_crops(frame, coin_instances, size=self.preprocess.crop_size)
        t2 = time.perf_counter()
        timings = {"detect": (t1 - t_setup) * 1000, "crop": (t2 - t1) * 1000}
        if view is not None:
            timings["setup"] = (t_setup - t0) * 1000
        unexplained: tuple[ForegroundRegion, ...] = ()
        if self.empty_tray is not None and not problem:
            unexplained = unexplained_regions(frame.image, self.empty_tray, instances, self.cup_roi)
            timings["foreground"] = (time.perf_counter() - t2) * 1000
        obs = self._observe(instances, [c.image for c in crops], [c.mask for c in crops], timings, unexplained)
        return replace(obs, setup_problem=problem, camera_move=move)

    @property
    def camera_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of the station camera's frames as it was set up: its calibration image's, else its
        empty-tray photo's; ``None`` when neither is known (any photo is judged as it is)."""
        calibration = self.detector.calibration if isinstance(self.detector, CalibratedSource) else None
        width, height = getattr(calibration, "image_width", 0), getattr(calibration, "image_height", 0)
        if width and height:
            return int(width), int(height)
        if self.empty_tray is not None:
            return int(self.empty_tray.shape[1]), int(self.empty_tray.shape[0])
        return None

    def observe_crops(self, crops: Sequence[CoinCrop | UInt8Array], *, n_objects: int = 0) -> Observation:
        """Embed pre-cut single-coin crops as one cup.

        Args:
            crops: :class:`~models.types.CoinCrop` (mask used) or ``(H, W, 3)`` uint8 BGR images (the coin fills
                the image; its inscribed disc is taken as the mask).
            n_objects: foreign objects known to be in the cup.
        """
        images: list[UInt8Array] = []
        masks: list[np.ndarray] = []
        instances: list[CoinInstance] = []
        for c in crops:
            img = c.image if isinstance(c, CoinCrop) else c
            h, w = img.shape[:2]
            images.append(img)
            masks.append(c.mask if isinstance(c, CoinCrop) else _disc_mask(h, w))
            d = float(min(h, w))
            instances.append(
                CoinInstance(
                    bbox=np.array([0, 0, w, h], np.float32),
                    mask=np.ones((h, w), bool),
                    mask_origin=(0, 0),
                    confidence=1.0,
                    center=(w / 2.0, h / 2.0),
                    axes=(d, d),
                    partial=bool(c.partial) if isinstance(c, CoinCrop) else False,
                )
            )
        objects = [
            CoinInstance(
                bbox=np.zeros(4, np.float32),
                mask=np.zeros((1, 1), bool),
                mask_origin=(0, 0),
                confidence=1.0,
                center=(0.0, 0.0),
                axes=(1.0, 1.0),
                is_coin=False,
            )
            for _ in range(n_objects)
        ]
        return self._observe(instances + objects, images, masks, {})

    def _observe(
        self,
        instances: list[CoinInstance],
        images: list[UInt8Array],
        masks: list[np.ndarray],
        timings: dict[str, float],
        unexplained: tuple[ForegroundRegion, ...] = (),
    ) -> Observation:
        t0 = time.perf_counter()
        coin_idx = [k for k, inst in enumerate(instances) if inst.is_coin]
        object_idx = [k for k, inst in enumerate(instances) if not inst.is_coin]
        coins = observe_coins(
            self.embedder,
            [instances[k] for k in coin_idx],
            images,
            masks,
            crop_size=self.preprocess.crop_size,
            n_objects=len(object_idx) + len(unexplained),
            with_signatures=self.view.has_templates,
        )
        t1 = time.perf_counter()
        type_best, type_arg = self.view.type_scores(coins.embeddings)
        t2 = time.perf_counter()
        timings = {**timings, "embed": (t1 - t0) * 1000, "search": (t2 - t1) * 1000}
        return Observation(instances, coin_idx, object_idx, coins, type_best, type_arg, timings, unexplained)

    def rescore(self, obs: Observation) -> Observation:
        """``obs`` with its coins scored against this pipeline's view (an observation made by a pipeline with the
        same embedder but other station references)."""
        type_best, type_arg = self.view.type_scores(obs.coins.embeddings)
        return replace(obs, type_best=type_best, type_arg=type_arg)

    def decide(self, obs: Observation, expected_type: str, *, expected_count: int | None = None) -> Verdict:
        """The verdict for an observed cup and an expected type (and the number of coins ordered, if known: a cup
        with another number of coins is flagged whatever their type, the count's reason first).

        Raises:
            UnknownTypeError: ``expected_type`` is not enrolled.
            ValueError: ``expected_count`` is below 1.
        """
        if expected_count is not None and expected_count < 1:
            raise ValueError(f"an order is for at least one coin, not {expected_count}")
        cand = self.check_type(expected_type)
        t0 = time.perf_counter()
        coins = obs.coins
        templates = TemplateScorer.for_cup(self.view, coins)
        ev = pair_evidence(
            self.view,
            coins,
            cand,
            self.pooler,
            gem_p=self.preprocess.gem_p,
            type_best=obs.type_best,
            type_arg=obs.type_arg,
            templates=templates,
        )
        t1 = time.perf_counter()
        x = feature_vector(ev.features, RULE_FEATURES)
        p = float(self.voter.predict(feature_vector(ev.features, self.voter.feature_names))[0]) if coins.n else 0.0
        t2 = time.perf_counter()
        # the hard rules (too few coins, a foreign object, a coin on a shared face, an inseparable lookalike), then
        # the threshold, never under the floor of 0.5 (ThresholdChoice.accepts)
        rules = bool(passable(x, RULE_FEATURES, self.voter.min_coins)[0])
        accepted = rules and self.threshold.accepts(p) and not obs.setup_problem
        count = count_reason(coins.n, expected_count)
        decision = Decision.PASS if accepted and not count else Decision.FLAG
        calls = [call_coin(self.view, ev.scores, obs.type_arg, cand, j, templates) for j in range(coins.n)]
        no_own_side = self.view.missing_own_side(cand)
        if no_own_side is not None:  # turned over, a coin shows nothing of the type's own either
            calls = [replace(c, to_turn=False) for c in calls]
        listed = listed_types(obs.type_best, templates)  # the one ranking the coins' matches and the reasons name
        names = [
            name_rival(self.view, obs.type_best, obs.type_arg, cand, j, listed.order[j], c) for j, c in enumerate(calls)
        ]
        found = (
            None if accepted else self._findings(coins, obs, p, cand, calls, names, ev.scores.side, no_own_side, rules)
        )
        reasons, turn_first = ([], False) if found is None else flag_reasons(found)
        if count:  # the operator corrects the count and checks the cup again, as a new cup
            reasons, turn_first = [count, *reasons], False
        # a coin the FLAG says shows a design several other types share is marked as on a shared side, save where the
        # operator turns first: the coins marked then are the coins to turn (the station turns the marked ones)
        faces = frozenset() if found is None or turn_first else on_shared_face(found)
        on_shared = [c.to_turn or obs.coin_idx[j] + 1 in faces for j, c in enumerate(calls)]
        evidence = self._evidence(
            obs.instances, obs.coin_idx, ev, obs.type_best, obs.type_arg, calls, listed, on_shared
        )
        timings = {**obs.timings, "pool": (t1 - t0) * 1000, "vote": (t2 - t1) * 1000}
        timings["total"] = sum(timings.values())
        return Verdict(
            decision=decision,
            expected_type=expected_type,
            p_correct=p,
            threshold=self.threshold.applied,
            reasons=tuple(reasons),
            coins=evidence,
            model_version=self.model_version,
            timings_ms=timings,
            unchecked=tuple(r.bbox for r in obs.unexplained),
            turn_first=turn_first,
            expected_count=expected_count,
        )

    def _evidence(
        self,
        instances: list[CoinInstance],
        coin_idx: list[int],
        ev: PairEvidence,
        type_best: np.ndarray,
        type_arg: np.ndarray,
        calls: list[CoinCall],
        listed: ListedTypes,
        on_shared: list[bool],
    ) -> tuple[CoinEvidence, ...]:
        """Each instance's evidence; a coin's matches are ``listed``'s, and ``on_shared`` says which coins lie on a
        shared side (:attr:`~models.types.CoinEvidence.shared`)."""
        pos = {k: j for j, k in enumerate(coin_idx)}
        tmpl = listed.template
        out = []
        for k, inst in enumerate(instances):
            bbox = tuple(float(v) for v in inst.bbox[:4])
            j = pos.get(k)
            if j is None:
                out.append(
                    CoinEvidence(
                        index=k,
                        bbox=bbox,  # type: ignore[arg-type]
                        matches=(),
                        diameter_mm=inst.diameter_mm,
                        confidence=float(inst.confidence),
                        partial=inst.partial,
                        suspicious=True,
                        is_coin=False,
                    )
                )
                continue
            order = listed.order[j]
            matches = tuple(
                Match(
                    self.view.types[int(t)],
                    Side.REVERSE if self.view.ref_side[type_arg[j, t]] == 1 else Side.OBVERSE,
                    float(type_best[j, t]),
                    None if tmpl is None else float(tmpl[j, t]),
                )
                for t in order
            )
            out.append(
                CoinEvidence(
                    index=k,
                    bbox=bbox,  # type: ignore[arg-type]
                    matches=matches,
                    diameter_mm=inst.diameter_mm,
                    confidence=float(inst.confidence),
                    partial=inst.partial,
                    attention=float(ev.attention[j]) if ev.attention.size else 0.0,
                    suspicious=calls[j].suspicious,
                    shared=on_shared[j],
                )
            )
        return tuple(out)

    def _findings(
        self,
        coins: CupCoins,
        obs: Observation,
        p: float,
        cand: int,
        calls: list[CoinCall],
        names: list[RivalName | None],
        sides: np.ndarray,
        no_own_side: str | None = None,
        rules_pass: bool = False,
    ) -> FlagFindings:
        """What a FLAG's reasons are written from (:func:`models.reasons.flag_reasons`); ``names``: the rival each
        coin is named with (:func:`name_rival`); ``sides``: the candidate's side each coin matched (``1``: reverse);
        ``no_own_side``: :meth:`GalleryView.missing_own_side`; ``rules_pass``: the hard rules let the cup pass."""
        found = tuple(
            CoinFinding(
                number=obs.coin_idx[j] + 1,
                margin=c.margin,
                rival=None if r is None else self.view.types[r.type],
                rival_score=0.0 if r is None else r.score,
                to_turn=c.to_turn,
                side=Side.REVERSE.value if sides[j] else Side.OBVERSE.value,
                plain=c.plain,
                partial=bool(coins.partial[j]),
                rival_shared_by=() if r is None else r.shared_by,
                rival_side=Side.OBVERSE.value if r is None else r.side.value,
                call_score=c.rival_score if r is not None else None,
                visible=float(coins.visible[j]),
            )
            for j, (c, r) in enumerate(zip(calls, names, strict=True))
        )
        return FlagFindings(
            expected=self.view.types[cand],
            coins=found,
            p_correct=p,
            threshold=self.threshold.applied,
            fewest_coins=self.fewest_coins,
            object_numbers=tuple(k + 1 for k in obs.object_idx),
            unchecked=tuple(r.centre for r in obs.unexplained),
            setup_problem=obs.setup_problem,
            lookalike=self.view.declared(cand),
            no_own_side=no_own_side,
            focus_median=float(np.median(coins.focus)) if coins.n else 1.0,
            focus_min=self.preprocess.focus_min,
            visible_mean=float(coins.visible.mean()) if coins.n else 1.0,
            target=self.threshold.target,
            rules_pass=rules_pass,
        )


def observe_coins(
    embedder: Embedder,
    instances: Sequence[CoinInstance],
    images: Sequence[UInt8Array],
    masks: Sequence[np.ndarray],
    *,
    crop_size: int,
    n_objects: int = 0,
    with_signatures: bool = True,
) -> CupCoins:
    """The embeddings and measurements of coins cut from a cup, as the voter's features read them.

    Args:
        embedder: the crop embedder.
        instances: one detected coin per crop (confidence, partial, diameter).
        images: the coins' crops, background removed.
        masks: each crop's coin pixels.
        crop_size: the crop size the focus floor was set at (:class:`~models.bundle.Preprocess`); crops of
            another size are resized before the focus is measured.
        n_objects: foreign objects found beside the coins.
        with_signatures: also take each crop's template signature (:mod:`models.template`).
    """

    def focus(image: UInt8Array, mask: np.ndarray) -> float:
        if image.shape[:2] != (crop_size, crop_size):
            image = np.asarray(cv2.resize(image, (crop_size, crop_size), interpolation=cv2.INTER_AREA), np.uint8)
            mask = cv2.resize(mask.astype(np.uint8), (crop_size, crop_size), interpolation=cv2.INTER_NEAREST) > 0
        return focus_measure(image, mask)

    return CupCoins(
        embeddings=embedder.embed(list(images)),
        confidence=np.array([inst.confidence for inst in instances], np.float32),
        partial=np.array([inst.partial for inst in instances], bool),
        visible=np.array([visible_share(m) for m in masks], np.float32),
        diameter_mm=np.array(
            [math.nan if inst.diameter_mm is None else inst.diameter_mm for inst in instances], np.float32
        ),
        focus=np.array([focus(im, m) for im, m in zip(images, masks, strict=True)], np.float32),
        n_objects=n_objects,
        signatures=signatures(list(images)) if with_signatures else None,
    )


def station_view(
    gallery: Gallery,
    refs: StationReferences | None,
    catalogue: dict[str, TypeInfo] | None,
    adapter: EmbeddingAdapter | None = None,
) -> GalleryView:
    """The view the voter scores against: ``gallery`` (mapped by ``adapter``, when given) plus the station
    references ``refs`` (of enrolled types), with the catalogue's diameters, declared lookalikes and declared shared
    designs (shared even while one enrolled type shows them: a family's obverse of which one member is enrolled so
    far proves nothing of the type). Each type's lookalike statistics come from ``gallery`` alone (``statistics``
    of :class:`~models.gallery_view.GalleryView`), measured once."""
    diameters = {t: i.diameter_mm for t, i in (catalogue or {}).items()}
    lookalikes = catalog_lookalikes(catalogue or {})
    declared = {d for i in (catalogue or {}).values() for d in (i.obverse_design, i.reverse_design) if d}
    if adapter is not None:
        gallery = adapted_gallery(gallery, adapter)
    base = GalleryView.from_gallery(gallery, diameters, lookalikes, declared_shared=declared)
    if refs is None or len(refs) == 0:
        return base
    return GalleryView.from_gallery(
        with_references(gallery, refs), diameters, lookalikes, statistics=base, declared_shared=declared
    )


@dataclass(frozen=True)
class CoinCall:
    """What the verdict says of one coin against the candidate.

    Attributes:
        rival: the type named against the candidate (``-1``: none), and ``rival_score`` its similarity.
        margin: the candidate's similarity minus the rival's.
        suspicious: the rival beats the candidate.
        to_turn: the coin lies on a design the candidate shares with other types and nothing says it is another
            type: turning it over settles it, a coin cut by the edge or the rim too (it is also said to be cut).
        plain: it loses to its rival by :data:`TURN_MARGIN` or more (a supervisor looks at the cup as it lies).
    """

    rival: int
    rival_score: float
    margin: float
    suspicious: bool
    to_turn: bool
    plain: bool


def call_coin(
    view: GalleryView,
    scores: CoinScores,
    type_arg: np.ndarray,
    candidate: int,
    j: int,
    templates: TemplateScorer | None = None,
) -> CoinCall:
    """What the verdict says of coin ``j`` against ``candidate``.

    The rival is the best type that does not share the design the candidate matched the coin through
    (:attr:`~models.features.CoinScores.rival_type`): a type that matches the coin no better than the candidate
    through that same design says nothing against it. But a type that shares that design and matches the coin
    through a design of its own, better than the candidate by :data:`TURN_MARGIN` or more, is named instead: the
    coin then shows that type's own side (a family member's reverse, which the candidate scored only through the
    family's obverse), and turning it proves nothing.

    A coin is to turn over when it matches the candidate on a design the candidate shares with other types, so the
    side it lies on proves nothing, and nothing says it is another type: no type beats the candidate, or the one
    that does wins through a design several types share too (the coin lies on some family's common side, and turned
    over it shows a design of its own) by less than :data:`TURN_MARGIN`. A coin beaten through a design only its
    rival shows, or by far, is named as looking like that type instead.

    With ``templates`` (the cup's template scores), a rival is named only where it also wins on the ranking the
    coin's matches are listed by, cosine and template together (:func:`~models.gallery.reranked_score`, as
    ``identify`` ranks them): a type that beats the candidate by cosine alone, while the coin's own matches put the
    candidate first, is not said to be what the coin looks like.
    """
    sim = float(scores.sim[j])
    rival, rival_score = int(scores.rival_type[j]), float(scores.rival_score[j])
    top, top_score = int(scores.top_type[j]), float(scores.top_score[j])
    if top not in (candidate, rival) and not view.ref_shared[type_arg[j, top]] and top_score - sim >= TURN_MARGIN:
        rival, rival_score = top, top_score
    margin = sim - rival_score
    suspicious = rival >= 0 and margin < 0
    if suspicious and templates is not None:
        tmpl = templates.best([candidate, rival])[0][j]
        suspicious = reranked_score(rival_score, float(tmpl[1])) > reranked_score(sim, float(tmpl[0]))
    plain = suspicious and margin <= -TURN_MARGIN
    to_turn = bool(scores.shared[j]) and (
        not suspicious or (bool(view.ref_shared[type_arg[j, rival]]) and margin > -TURN_MARGIN)
    )
    return CoinCall(rival, rival_score, margin, suspicious, to_turn, plain)


LISTED_MATCHES = 3
"""Matches listed for each coin (the JSON's and the coin strip's first is the one shown)."""


@dataclass(frozen=True)
class ListedTypes:
    """The types each coin's matches list, best first: the embedding's :data:`~models.gallery.RERANK_DEPTH` best
    types re-ranked by cosine and template together where the gallery keeps template signatures, as
    ``Gallery.search`` ranks them.

    Attributes:
        order: per coin, the indices of its :data:`LISTED_MATCHES` best types.
        template: ``(n, T)`` template scores of the types compared (NaN elsewhere); ``None``: no templates.
    """

    order: list[list[int]]
    template: np.ndarray | None


def listed_types(type_best: np.ndarray, templates: TemplateScorer | None) -> ListedTypes:
    """The one ranking a coin's listed matches and the type its reason names are taken from (:class:`ListedTypes`);
    ``type_best``: ``(n, T)`` best cosine of each coin to each type."""
    tmpl: np.ndarray | None = None
    short = np.argsort(-type_best, axis=1, kind="stable")[:, :RERANK_DEPTH]
    if templates is not None and type_best.shape[0]:
        cols = sorted(set(short.ravel().tolist()))
        best, _ = templates.best(cols)
        tmpl = np.full(type_best.shape, np.nan, np.float32)
        tmpl[:, cols] = best
    order: list[list[int]] = []
    for j in range(type_best.shape[0]):
        row = [int(t) for t in short[j]]
        if tmpl is not None:
            t_row = tmpl[j]
            row.sort(key=lambda t: -reranked_score(float(type_best[j, t]), float(t_row[t])))
        order.append(row[:LISTED_MATCHES])
    return ListedTypes(order, tmpl)


@dataclass(frozen=True)
class RivalName:
    """The type a FLAG's reason names for a coin another type beats.

    Attributes:
        type: its index in the view.
        score: its cosine to the coin (as the coin's matches list it).
        side: its side the coin matched.
        shared_by: the types showing the design it matched the coin through, where that design is shared (several
            enrolled types show it, or the catalogue declares it) and the candidate does not show it: the coin shows
            another family's common face, not one member's; ``()``: the type's own design.
    """

    type: int
    score: float
    side: Side
    shared_by: tuple[str, ...] = ()


def name_rival(
    view: GalleryView,
    type_best: np.ndarray,
    type_arg: np.ndarray,
    candidate: int,
    j: int,
    listed: list[int],
    call: CoinCall,
) -> RivalName | None:
    """The type a FLAG names for coin ``j`` (``None``: its call is not suspicious): the first of the coin's listed
    matches (``listed``, :func:`listed_types`) that does not match it through a design the candidate shows, so the
    reason names the type, and the score, the coin's evidence lists; the call's own rival where none of them
    qualifies (a type matching the coin through the candidate's own design says nothing against it)."""
    if not call.suspicious:
        return None
    shows = view.design_types[:, candidate]  # designs the candidate shows
    named = next(
        (t for t in listed if t != candidate and not shows[view.ref_design[type_arg[j, t]]]),
        call.rival,
    )
    ref = int(type_arg[j, named])
    design = int(view.ref_design[ref])
    shared_by: tuple[str, ...] = ()
    if view.ref_shared[ref] and not shows[design]:
        shared_by = tuple(view.types[int(t)] for t in np.flatnonzero(view.design_types[design]))
    side = Side.REVERSE if view.ref_side[ref] == 1 else Side.OBVERSE
    return RivalName(named, float(type_best[j, named]), side, shared_by)


CERTIFY_FLOOR = 0.5
"""The lowest precision :func:`certifiable_precision` looks down to: a PASS as often wrong as right certifies nothing
worth having."""


def certifiable_precision(bundle: Bundle, below: float = 1.0) -> float | None:
    """The highest PASS precision, at most ``below``, that the bundle's calibration pairs certify (at its ``delta``,
    shared among its candidates as :meth:`~models.bundle.Bundle.rechoose` shares it); ``None`` when none of
    :data:`CERTIFY_FLOOR` or more is.

    Found exactly (:func:`~calibration.risk.highest_certified_target`), not by bisection: with tied scores a looser
    target can certify nothing where a stricter one certifies, so "the highest under ``below``" is not where a
    bisection between a certified and an uncertified target ends."""
    return highest_certified_target(
        bundle.cal_scores,
        bundle.cal_correct,
        bundle.threshold.delta,
        candidates=bundle.threshold.candidates,
        below=below,
        lowest=CERTIFY_FLOOR,
    )


def _askable(bundle: Bundle, precision: float) -> float | None:
    """``precision`` cut to the fewest decimals (4, else 6 or 8) at which it still certifies, as the option takes
    it (never above what certifies); ``None`` when none does (a certified range narrower than that)."""
    for digits in (4, 6, 8):
        scale = 10**digits
        cut = math.floor(precision * scale) / scale
        if cut >= CERTIFY_FLOOR and bundle.rechoose(cut).can_pass:
            return cut
    return None


def uncertifiable_note(bundle: Bundle) -> str:
    """Why a bundle whose threshold was chosen for its target passes nothing, with the highest precision its
    calibration pairs do certify under the target and, where one does, a stricter one that certifies, for a warning
    (``""``: its threshold is certified)."""
    choice = bundle.threshold
    if choice.can_pass:
        return ""
    wanted = f"a PASS precision of {choice.target * 100:.4g} % cannot be certified by this model"
    found = certifiable_precision(bundle, choice.target)
    lower = None if found is None else _askable(bundle, found)
    found_above = certifiable_precision(bundle)
    upper = None if found_above is None or found_above <= choice.target else _askable(bundle, found_above)
    if upper is not None:
        under = "" if lower is None else f"{lower * 100:.8g} % below it and "
        ask = f"{upper:.8g}" if lower is None else f"{lower:.8g} or {upper:.8g}"
        return (
            f"{wanted}: its {choice.n_calibration} calibration pairs certify {under}{upper * 100:.8g} % above it (a "
            "stricter target's test starts at a looser threshold, past the pairs that stop this one), so every cup "
            f"goes to a person; ask for {ask}"
        )
    if lower is None:
        return (
            f"{wanted}: its {choice.n_calibration} calibration pairs certify none of {CERTIFY_FLOOR * 100:.4g} % "
            "or more, so every cup goes to a person"
        )
    return (
        f"{wanted}: its {choice.n_calibration} calibration pairs certify at most {lower * 100:.8g} %, so every cup "
        f"goes to a person; ask for {lower:.8g} or less"
    )


def _disc_mask(h: int, w: int) -> np.ndarray:
    if h == w:
        return np.array(circle_mask(h), copy=True)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.asarray(((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2 <= 1.0)
