"""The versioned verdict bundle: which weights produce a verdict, how they were checked, and the threshold.

A bundle is one JSON file (``verdict.json``) beside the weights it names::

    format, version            "cupcheck-bundle/1", "verdict-<sha8>" (hash of everything below)
    embedder                   file, version (weights hash) — the gallery must be built with the same one
    detector                   folder (or null for the shipped default), version when known
    voter, pooler              file + sha256
    features, feature_set      the voter's input columns, and which version of their measurement
    preprocessing              crop size, GeM exponent, minimum coins, focus floor
    threshold                  the :class:`~calibration.risk.ThresholdChoice` (target, delta, counts, bound)
    calibration                the calibration pairs' scores (as computed) and truth ("0"/"1" string), so the
                               threshold can be re-chosen for another target precision without the data
    train                      how the voter was trained (data, counts, metrics; ``data_mints`` and
                               ``data_cal_mints``: each training and calibration data set's mint)
    references                 optional: file + sha256 of station references added to the gallery
                               (:mod:`models.references`, written by the nightly retrain)
    adapter                    optional: file + sha256 + version of the station's fine-tuned output layer on the
                               embedder (:mod:`models.adapter`, written by the nightly retrain)

Paths are relative to the bundle's folder. Every verdict records ``version``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.risk import ThresholdChoice, choose_threshold
from models.files import sha256_file, write_bytes_atomic

if TYPE_CHECKING:  # lightgbm stays out of the command line's start-up
    from models.voter import Voter

BUNDLE_FORMAT = "cupcheck-bundle/1"
FEATURE_SET = 2
"""Version of the pair features :mod:`models.features` measures. A voter learnt what its features meant when it
was trained, so a bundle trained on another set is refused until it is retrained. Set 2: the template features
compare each coin with the candidate's distinguishing designs only, and a coin without a rival has no margin
(set 1 gave it a favourable default). A bundle file without the key is set 1."""
MIN_COINS = 2
"""Fewest coins a cup must show for ``cupcheck train voter`` unless told otherwise: fewer is reported as "too few
coins visible", the voter is trained without such cups and never passes one (its bundle records the rule as
``voter.min_coins``). On the seed-102 calibration cups the three best-scored wrong pairs of an early voter without
the rule were single-coin cups judged against a family member. A bundle certified again under another rule
(``cupcheck train recalibrate --min-coins``) carries that one: the shipped bundle lets a single coin pass, its
threshold certified on the calibration cups with them. (Bundles from before the rule report three.)"""
ENROL_PER_SIDE = 5
"""Enrolment photo crops per (type, side) in a synthetic data set's gallery when a command or bundle names no other
number (``cupcheck train voter --enrol-per-side``); a bundle trained before the setting existed was enrolled so."""
REAL_CUPS = 4000
"""Training cups drawn per real set when the voter also learns from labelled real crops (``cupcheck train voter
--real``; :mod:`models.train.real_cups`), and a fifth as many for validation."""
REAL_WEIGHT = 0.5
"""Weight of a real cup's pair beside a synthetic one's when the voter also learns from real crops."""
DATA_MINTS = "data_mints"
"""Key of a bundle's training summary: the mint of each synthetic training data set, ``{"path", "seed", "n_types",
"sha256"}`` (its folder, ``mint.json``'s seed and number of types, and that file's sha256). Bundles from before the
key lack it."""
CAL_MINTS = "data_cal_mints"
"""Key of a bundle's training summary: the mint of each calibration data set, recorded as :data:`DATA_MINTS`'s."""
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_BUNDLE = WEIGHTS_DIR / "verdict.json"
"""The shipped default bundle."""


class BundleError(ValueError):
    """A bundle file is missing, damaged, or does not match the weights it names."""


@dataclass(frozen=True)
class Preprocess:
    """Settings that travel with the voter.

    Attributes:
        crop_size: crop side the embedder's crops are cut at.
        gem_p: GeM pooling exponent.
        min_coins: fewer coins than this is reported as "too few coins visible".
        focus_min: a cup whose median crop focus measure is below this is reported as out of focus.
    """

    crop_size: int = 128
    gem_p: float = 3.0
    min_coins: int = MIN_COINS
    focus_min: float = 2.0


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle description (weights are loaded by :mod:`models.pipeline`).

    Attributes:
        root: the folder relative paths are resolved against.
        embedder_file: embedder checkpoint (``None``: the shipped default).
        embedder_version: the embedder version the voter was trained and calibrated with.
        detector_dir: detector folder (``None``: the shipped default).
        detector_version: the detector version recorded at training time (may be empty).
        voter_file: LightGBM text model.
        voter_sha256: its hash.
        pooler_file: set pooler file.
        pooler_sha256: its hash.
        features: the voter's input columns.
        preprocess: settings.
        feature_set: the :data:`FEATURE_SET` the voter was trained and calibrated on.
        threshold: the chosen threshold with its evidence.
        cal_scores: ``(m,)`` calibration pair scores.
        cal_correct: ``(m,)`` bool truth of the calibration pairs.
        train: training summary.
        version: ``"verdict-<sha8>"``.
        pass_min_coins: the hard rules' fewest coins of a cup that may pass (:func:`models.voter.passable`); the
            threshold is certified under it. ``1`` (any cup with a coin) for a bundle from before the rule.
        references_file: station references the pipeline adds to the station's gallery
            (:class:`models.references.StationReferences`); ``None``: none.
        references_sha256: their hash.
        adapter_file: the embedder's fine-tuned output layer (:class:`models.adapter.EmbeddingAdapter`); ``None``:
            the embedder as shipped.
        adapter_sha256: its hash.
        adapter_version: its version (what the station references and logged embeddings of this bundle record).
    """

    root: Path
    embedder_file: str | None
    embedder_version: str
    detector_dir: str | None
    detector_version: str
    voter_file: str
    voter_sha256: str
    pooler_file: str
    pooler_sha256: str
    features: tuple[str, ...]
    preprocess: Preprocess
    threshold: ThresholdChoice
    cal_scores: np.ndarray
    cal_correct: np.ndarray
    train: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    feature_set: int = FEATURE_SET
    pass_min_coins: int = 1
    references_file: str | None = None
    references_sha256: str = ""
    adapter_file: str | None = None
    adapter_sha256: str = ""
    adapter_version: str = ""

    @property
    def embedding_version(self) -> str:
        """The version of the embeddings the bundle's pipeline makes: the adapter's when it has one, else the
        embedder's."""
        return self.adapter_version if self.adapter_file else self.embedder_version

    def check_feature_set(self) -> None:
        """Raise :class:`BundleError` when the voter was trained on other features than this version measures."""
        if self.feature_set != FEATURE_SET:
            raise BundleError(
                f"the voter of bundle {self.version or '(unversioned)'} was trained on pair features of set "
                f"{self.feature_set}, and this version of cupcheck measures set {FEATURE_SET}; use a bundle trained "
                "by this version (the shipped one is models/weights/verdict.json) or train the voter again "
                "(`cupcheck train voter`)"
            )

    @property
    def enrol_per_side(self) -> int:
        """Enrolment photo crops per (type, side) of the galleries the voter was trained and calibrated with; its
        recalibration and evaluation enrol the same way."""
        return int(self.train.get("enrol_per_side", ENROL_PER_SIDE))

    @property
    def calibration_detector(self) -> str:
        """The detector version that cut the calibration cups, the one the PASS guarantee holds for (after
        ``cupcheck train recalibrate``, the detector of that run; else the one the voter was trained with). ``""``
        when the last recalibration cut its cups from their true masks (``--instances gt``): no detector's."""
        if self.train.get("calibration_instances") == "gt":
            return ""
        return str(self.train.get("calibration_detector") or self.detector_version)

    @property
    def training_mints(self) -> list[dict[str, Any]]:
        """The mints of the synthetic data sets the voter learnt from (:data:`DATA_MINTS`; empty when not recorded)."""
        return [dict(m) for m in self.train.get(DATA_MINTS, []) if isinstance(m, dict)]

    @property
    def calibration_mints(self) -> list[dict[str, Any]]:
        """The mints of the synthetic data sets the threshold was certified on (:data:`CAL_MINTS`; empty when not
        recorded)."""
        return [dict(m) for m in self.train.get(CAL_MINTS, []) if isinstance(m, dict)]

    def load_voter(self) -> Voter:
        """The bundle's voter under the hard rules the bundle was calibrated with (its ``pass_min_coins``).

        Load the voter through here, never from its file alone: the threshold is certified for those rules.
        """
        from models.voter import Voter

        path = self.path(self.voter_file)
        assert path is not None
        return Voter.load(path, info=self.train, min_coins=self.pass_min_coins)

    def path(self, rel: str | None) -> Path | None:
        """Resolve a path stored in the bundle (``None`` stays ``None``)."""
        if rel is None:
            return None
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    def rechoose(self, target: float, delta: float | None = None) -> ThresholdChoice:
        """Choose the threshold again from the stored calibration pairs for another target precision (at the
        bundle's ``delta``, shared as its own was among the candidates it was kept from, unless ``delta`` is given)."""
        d = self.threshold.delta if delta is None else delta
        if self.cal_scores.size == 0:
            raise BundleError("the bundle holds no calibration scores")
        return choose_threshold(
            self.cal_scores, self.cal_correct, target=target, delta=d, candidates=self.threshold.candidates
        )

    def with_threshold(self, choice: ThresholdChoice) -> Bundle:
        """A copy using another threshold."""
        return replace(self, threshold=choice)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (without ``version``, which hashes it)."""
        return {
            "format": BUNDLE_FORMAT,
            "embedder": {"file": self.embedder_file, "version": self.embedder_version},
            "detector": {"dir": self.detector_dir, "version": self.detector_version},
            "voter": {
                "file": self.voter_file,
                "sha256": self.voter_sha256,
                # the rule is written only where it is on, so a bundle from before it keeps its document and version
                **({"min_coins": self.pass_min_coins} if self.pass_min_coins != 1 else {}),
            },
            "pooler": {"file": self.pooler_file, "sha256": self.pooler_sha256},
            "features": list(self.features),
            "feature_set": self.feature_set,
            "preprocessing": {
                "crop_size": self.preprocess.crop_size,
                "gem_p": self.preprocess.gem_p,
                "min_coins": self.preprocess.min_coins,
                "focus_min": self.preprocess.focus_min,
            },
            "threshold": self.threshold.to_dict(),
            "calibration": {
                "n": int(self.cal_scores.size),
                # whole: the threshold was chosen on them, and its counts must be found again from what is stored
                "scores": [float(s) for s in self.cal_scores],
                "correct": "".join("1" if c else "0" for c in self.cal_correct),
            },
            "train": self.train,
            # written only where there are some, so a bundle without them keeps its document and version
            **(
                {"references": {"file": self.references_file, "sha256": self.references_sha256}}
                if self.references_file
                else {}
            ),
            **(
                {
                    "adapter": {
                        "file": self.adapter_file,
                        "sha256": self.adapter_sha256,
                        "version": self.adapter_version,
                    }
                }
                if self.adapter_file
                else {}
            ),
        }

    def compute_version(self) -> str:
        """``"verdict-<sha8>"`` over the document."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return f"verdict-{hashlib.sha256(text.encode()).hexdigest()[:8]}"

    def save(self, path: str | Path) -> Path:
        """Write the bundle JSON atomically; returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": self.version or self.compute_version(), **self.to_dict()}
        return write_bytes_atomic(path, (json.dumps(doc, indent=1) + "\n").encode())

    def check_files(self) -> None:
        """Verify the hashes of the voter, the pooler, and the station references and the adapter (when the
        bundle has them).

        Raises:
            BundleError: a file is missing or changed.
        """
        files = [(self.voter_file, self.voter_sha256), (self.pooler_file, self.pooler_sha256)]
        if self.references_file:
            files.append((self.references_file, self.references_sha256))
        if self.adapter_file:
            files.append((self.adapter_file, self.adapter_sha256))
        for rel, sha in files:
            p = self.path(rel)
            assert p is not None
            if not p.is_file():
                raise BundleError(f"bundle file {p} is missing")
            if sha and sha256_file(p) != sha:
                raise BundleError(f"{p} does not match the bundle (sha256 differs); retrain or restore it")


def load_bundle(path: str | Path | None = None) -> Bundle:
    """Read a bundle JSON (default: the shipped ``models/weights/verdict.json``) and check its files.

    Raises:
        FileNotFoundError: no bundle file.
        BundleError: damaged or inconsistent bundle.
    """
    file = Path(path) if path is not None else DEFAULT_BUNDLE
    if not file.is_file():
        raise FileNotFoundError(f"verdict bundle {file} not found (train one with `cupcheck train voter`)")
    try:
        doc = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BundleError(f"{file} is not readable JSON: {err}") from err
    if doc.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{file}: not a verdict bundle (format {doc.get('format')!r})")
    try:
        pre = doc.get("preprocessing", {})
        cal = doc.get("calibration", {})
        bundle = Bundle(
            root=file.parent,
            embedder_file=doc["embedder"].get("file"),
            embedder_version=str(doc["embedder"]["version"]),
            detector_dir=doc["detector"].get("dir"),
            detector_version=str(doc["detector"].get("version", "")),
            voter_file=str(doc["voter"]["file"]),
            voter_sha256=str(doc["voter"].get("sha256", "")),
            pooler_file=str(doc["pooler"]["file"]),
            pooler_sha256=str(doc["pooler"].get("sha256", "")),
            features=tuple(doc["features"]),
            preprocess=Preprocess(
                crop_size=int(pre.get("crop_size", 128)),
                gem_p=float(pre.get("gem_p", 3.0)),
                min_coins=int(pre.get("min_coins", MIN_COINS)),
                focus_min=float(pre.get("focus_min", 2.0)),
            ),
            threshold=ThresholdChoice.from_dict(doc["threshold"]),
            cal_scores=np.asarray(cal.get("scores", []), np.float64),
            cal_correct=np.array([c == "1" for c in cal.get("correct", "")], bool),
            train=dict(doc.get("train", {})),
            version=str(doc.get("version", "")),
            feature_set=int(doc.get("feature_set", 1)),
            pass_min_coins=int(doc["voter"].get("min_coins", 1)),
            references_file=doc.get("references", {}).get("file"),
            references_sha256=str(doc.get("references", {}).get("sha256", "")),
            adapter_file=doc.get("adapter", {}).get("file"),
            adapter_sha256=str(doc.get("adapter", {}).get("sha256", "")),
            adapter_version=str(doc.get("adapter", {}).get("version", "")),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(f"{file}: invalid bundle ({err})") from err
    if bundle.pass_min_coins < 1:
        raise BundleError(f"{file}: voter.min_coins must be >= 1, got {bundle.pass_min_coins}")
    if bundle.cal_scores.size != bundle.cal_correct.size:
        raise BundleError(f"{file}: calibration scores and truth differ in length")
    bundle.check_files()
    return bundle
