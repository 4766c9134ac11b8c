"""Enrol coin types into the gallery from a catalogue folder, and turn images into coin crops.

A catalogue folder holds one sub-folder per coin type::

    CATALOG/<type_id>/coin.toml            optional: name = "...", diameter_mm = 23.25,
                                           lookalikes = ["<type_id>", ...] (types told apart only by a detail),
                                           obverse_design = "...", reverse_design = "..." (a side's design name:
                                           types naming the same design share that side, as every US state
                                           quarter shares Washington's obverse)
    CATALOG/<type_id>/obverse/*.jpg        photos or crops of the obverse
    CATALOG/<type_id>/reverse/*.jpg        ... of the reverse
    CATALOG/<type_id>/*.jpg                side taken from the file name (``obv``/``rev``), else obverse

A crop (the coin fills a small square-ish image) that still shows its background (a neighbour's edge, the table)
is cut again the way the station cuts a coin from a frame, when a detector is at hand (:func:`recut_crop`): the
gallery then holds what the station's queries look like. A crop already cut (black outside the coin) is embedded
as it is. A whole photo goes through the detector and its largest coin is used, or, for a tray photo of many
coins of one type lying on one side (``every_coin``), every whole coin: two photos of fifteen coins, one a side,
give a type the references the verdict model was calibrated with. Enrolling a type replaces its previous
references; nothing is retrained.

A side's references carry its design (the declared name, else ``<type_id>/<side>``: a design of its own). A coin
showing a design other types share proves nothing about its type, so a cup is passed only on the types' own
designs; the verdict model was calibrated on galleries that mark shared designs this way, and a shared design left
undeclared makes its coins look like every other type that shows it instead. A ``coin.toml`` that is not UTF-8 TOML,
or holds a value of the wrong kind, is refused rather than enrolling its type without what it declares; so is a
key other than those above (a misspelt ``lookalike`` would declare nothing), and a side declared a design other types
already show whose photos look like the type's other side instead (:func:`declared_design_problems`: sides swapped).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from tqdm import tqdm

from models.embedder import Embedder
from models.files import exclusive_lock, write_bytes_atomic
from models.gallery import MANIFEST, Gallery, GalleryEntry
from models.template import signatures
from models.types import CoinCrop, CoinInstance, Frame, Side, UInt8Array

if TYPE_CHECKING:
    from models.detector import Detector

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
OTHER_IMAGE_SUFFIXES = frozenset({".gif", ".heic", ".heif", ".avif", ".jp2", ".dng", ".cr2", ".nef", ".arw", ".psd"})
"""Pictures of other formats, named as such when skipped (a phone's HEIC, a camera's raw file)."""
MIN_REFERENCE_PX = 32
"""A photo or crop with a side shorter than this cannot show a coin well enough to be a reference."""
CROP_MAX_SIDE = 400
"""An image no larger than this (both sides) and square-ish is taken to be a crop of one coin."""
CROP_MAX_ASPECT = 1.25
RECUT_PAD = 1.0
"""A crop is re-cut on a mid-grey canvas this many crop sides wider on each side, so that its coin is about as
large in the detector's input as a coin in a cup photo (on the bare crop the detector finds no coin in about a
quarter of real euro crops)."""
RECUT_CENTRE = 0.25
"""Only a coin whose centre lies within this share of the crop's side from the crop's centre is the crop's coin."""
CUT_DARK_SHARE = 0.9
"""A crop whose four corners are at least this share black was already cut with its background removed."""
CATALOG_FILE = "catalog.json"
COIN_TOML_KEYS = ("name", "diameter_mm", "lookalikes", "obverse_design", "reverse_design")
"""The keys a type's ``coin.toml`` may hold; any other is refused (:func:`unknown_key_problems`)."""
REVERSE_WORDS = frozenset({"rev", "reverse", "back", "tail", "tails"})
"""A photo's file name holding one of these as a word (``t1_reverse``, ``coinRev``, ``2euroBack``) shows the reverse
(:func:`side_from_name`)."""
_CASE_CHANGE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[^\W\d_]+")
SKIPPED_FOLDERS = frozenset({"__MACOSX", "@eaDir"})
"""Folders a computer keeps beside photos (a zip's Mac metadata, a Synology NAS's thumbnails), never walked into, as
no folder whose name starts with ``.`` is (``.thumbnails``): their pictures are copies of the photos or not coins."""

DetectorFactory = Callable[[], "Detector"]


class CatalogError(ValueError):
    """A catalogue folder cannot be enrolled as it is (the message says which file and what to put right)."""


@dataclass(frozen=True)
class CatalogImage:
    """One reference image of a catalogue folder."""

    path: Path
    type_id: str
    side: Side
    side_from_folder: bool


@dataclass(frozen=True)
class TypeInfo:
    """Catalogue metadata of one type (from ``coin.toml``).

    Attributes:
        type_id: the type.
        name: its display name.
        diameter_mm: catalogue diameter, ``None`` when unknown.
        lookalikes: types the catalogue says differ from this one only by a detail the camera cannot be trusted
            to see (a date digit, a mint mark): a cup of either is never passed on the camera's word.
        obverse_design: the declared name of the obverse's design (``None``: a design of its own).
        reverse_design: the same for the reverse.
    """

    type_id: str
    name: str
    diameter_mm: float | None
    lookalikes: tuple[str, ...] = ()
    obverse_design: str | None = None
    reverse_design: str | None = None

    def design(self, side: Side) -> str:
        """The design id of ``side``'s references: the declared name, else ``<type_id>/<side>``."""
        declared = self.obverse_design if side == Side.OBVERSE else self.reverse_design
        return declared or f"{self.type_id}/{side.value}"


def side_from_name(stem: str) -> Side:
    """The side a photo's file name says, for a photo in no ``obverse``/``reverse`` folder: the reverse when a word
    of its name is one of :data:`REVERSE_WORDS`, else the obverse.

    The name is cut into words at every character that is not a letter and where a small letter or a digit is
    followed by a capital (``coinReverse`` → ``coin``, ``Reverse``), so a camelCase name is read as a person reads it
    and a word holding one of them (``backup``, ``revolution``) is not."""
    words = _WORD.findall(_CASE_CHANGE.sub(" ", stem))
    return Side.REVERSE if any(w.lower() in REVERSE_WORDS for w in words) else Side.OBVERSE


def skipped_folder(name: str) -> bool:
    """Whether a folder is one no photo is enrolled from: hidden (``.thumbnails``), or :data:`SKIPPED_FOLDERS`."""
    return name.startswith(".") or name in SKIPPED_FOLDERS


@dataclass
class EnrolReport:
    """What an enrolment did.

    Attributes:
        enrolled: ``type_id -> {side: references added}``.
        warnings: one readable line per skipped file or problem.
        duplicates: files skipped because an identical image was already enrolled.
        unreadable: files that could not be decoded.
        no_coin: photos in which the detector found no coin.
        several_coins: photos showing more than one whole coin, enrolled without ``every_coin``: which is the
            type's cannot be told, so none is used.
        recut: crops cut again by the detector (:func:`recut_crop`).
        uncut: crops showing their background in which the detector found no coin (enrolled as they are).
        catalogue: every type folder of the catalogue, enrolled or not (a type whose photos all failed is one of
            them, not a type the folder does not hold).
    """

    enrolled: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    duplicates: list[Path] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)
    no_coin: list[Path] = field(default_factory=list)
    several_coins: list[Path] = field(default_factory=list)
    recut: int = 0
    uncut: list[Path] = field(default_factory=list)
    catalogue: tuple[str, ...] = ()

    @property
    def skipped(self) -> int:
        """Files left out: duplicates, unreadable, without a coin, or with several (:attr:`several_coins`)."""
        return len(self.duplicates) + len(self.unreadable) + len(self.no_coin) + len(self.several_coins)


def load_detector(path: str | Path | None = None) -> Detector:
    """Load the coin detector (imported only when a whole photo needs it).

    Raises:
        FileNotFoundError, ValueError: missing or unusable detector weights.
        RuntimeError: the detector module is not available.
    """
    try:
        from models.detector import Detector
    except ImportError as err:  # pragma: no cover - only without the detector module
        raise RuntimeError(f"the coin detector is not available ({err}); use crops (--crop/--crops)") from err
    return Detector.load(path)


def read_image(path: Path) -> UInt8Array | None:
    """Read ``path`` as ``(H, W, 3)`` uint8 BGR, or ``None`` when it cannot be decoded."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    return np.asarray(img, np.uint8) if img is not None and img.size else None


def is_crop_image(image: UInt8Array) -> bool:
    """Whether an image is a crop of one coin: small (≤ 400 px) and square-ish (aspect ≤ 1.25)."""
    h, w = image.shape[:2]
    return max(h, w) <= CROP_MAX_SIDE and max(h, w) / max(1, min(h, w)) <= CROP_MAX_ASPECT


def is_cut_crop(image: UInt8Array) -> bool:
    """Whether a crop was already cut as the station cuts coins: black (background removed) in all four corners."""
    grey = image.max(axis=2) if image.ndim == 3 else image
    h, w = grey.shape[:2]
    k = max(2, min(h, w) // 12)
    corners = (grey[:k, :k], grey[:k, -k:], grey[-k:, :k], grey[-k:, -k:])
    return all(float((c <= 8).mean()) >= CUT_DARK_SHARE for c in corners)


def recut_coin(image: UInt8Array, detector: Detector, size: int = 128) -> tuple[CoinInstance, CoinCrop] | None:
    """Find a crop's coin the way the station finds a coin in a frame: the instance and its cut crop.

    The crop is padded with mid grey (:data:`RECUT_PAD`), the detector runs on it, and the largest coin whose centre
    is near the crop's centre is cut at ``size`` px (fitted circle, background black). ``None`` when there is no
    such coin.
    """
    h, w = image.shape[:2]
    pad = round(RECUT_PAD * max(h, w))
    canvas = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    cx, cy = canvas.shape[1] / 2.0, canvas.shape[0] / 2.0
    near = [
        c
        for c in detect_coins(np.asarray(canvas, np.uint8), detector, size)
        if math.hypot(c[0].center[0] - cx, c[0].center[1] - cy) <= RECUT_CENTRE * max(h, w)
    ]
    return max(near, key=lambda c: c[0].diameter_px) if near else None


def recut_crop(image: UInt8Array, detector: Detector, size: int = 128) -> UInt8Array | None:
    """Cut a crop's coin again the way the station cuts a coin from a frame (:func:`recut_coin`): the cut crop's
    image, ``None`` when no coin is found."""
    found = recut_coin(image, detector, size)
    return None if found is None else found[1].image


def whole_image_coin(image: UInt8Array) -> tuple[CoinInstance, CoinCrop]:
    """Treat the whole image as one coin: the instance covers the frame and the crop is the image itself."""
    h, w = image.shape[:2]
    d = float(min(h, w))
    inst = CoinInstance(
        bbox=np.array([0, 0, w, h], np.float32),
        mask=np.ones((h, w), bool),
        mask_origin=(0, 0),
        confidence=1.0,
        center=(w / 2.0, h / 2.0),
        axes=(d, d),
    )
    return inst, CoinCrop(image=image, mask=np.ones((h, w), bool), index=0)


def detect_coins(
    image: UInt8Array, detector: Detector, size: int = 128, source: str = ""
) -> list[tuple[CoinInstance, CoinCrop]]:
    """Detect the coins of a photo and cut one crop per coin, in the detector's order (foreign objects dropped)."""
    frame = Frame(image=image, source=source)
    return [(inst, crop) for _, inst, crop in numbered_coins(frame, detector.detect(frame), size)]


def numbered_coins(
    frame: Frame, instances: Sequence[CoinInstance], size: int = 128
) -> list[tuple[int, CoinInstance, CoinCrop]]:
    """The coins among a frame's ``instances`` with their numbers and crops: each numbered by its place among all
    the instances, objects counted, from 1 (as a verdict's reasons number them)."""
    from models.crops import cut_crops

    numbers = [k + 1 for k, inst in enumerate(instances) if inst.is_coin]
    coins = [instances[n - 1] for n in numbers]
    crops = cut_crops(frame, coins, size=size)
    return list(zip(numbers, coins, crops, strict=True))


TYPE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
"""A type id names a folder of the catalogue and of the gallery's references, a row of ``orders.csv`` and a
command's argument."""
SIDE_NAMES = ("obverse", "reverse")


def type_id_problem(type_id: str) -> str:
    """Why ``type_id`` cannot name a type (``""`` when it can)."""
    if not TYPE_ID.match(type_id):
        return (
            "the type id must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or a digit "
            f"(got {type_id!r})"
        )
    if type_id.lower() in SIDE_NAMES:
        return f"{type_id!r} names a side, not a type"
    return ""


def diameter_problem(diameter_mm: float) -> str:
    """Why a catalogue diameter is not a coin's (``""`` when it is)."""
    if not 5.0 <= diameter_mm <= 100.0:
        return f"a coin's diameter is between 5 and 100 mm (got {diameter_mm:g})"
    return ""


def scan_catalog(
    folder: str | Path, known: Mapping[str, TypeInfo] | None = None
) -> tuple[list[CatalogImage], dict[str, TypeInfo], list[str]]:
    """List a catalogue folder's reference images and ``coin.toml`` metadata.

    ``known``: the catalogue saved with the gallery. A type folder without ``coin.toml`` keeps its entry there
    (name, diameter, lookalikes and designs: photos added to a type declared a lookalike or sharing a design stay
    so), and a warning says so.

    Returns:
        Images (sorted), type id → metadata (every type folder has one), and warnings.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
        CatalogError: a ``coin.toml`` is not UTF-8 TOML, or holds a value of the wrong kind
            (:func:`coin_toml_problem`), or a key it does not know (:func:`unknown_key_problems`); one line each.
    """
    root = Path(folder)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise FileNotFoundError(f"catalogue folder {root} {what}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not skipped_folder(p.name))
    if any(p.name.lower() in SIDE_NAMES for p in folders):
        raise FileNotFoundError(
            f"{root} holds side folders: it is one type's folder; give the catalogue folder that holds it "
            f"({root.parent})"
        )
    images: list[CatalogImage] = []
    infos: dict[str, TypeInfo] = {}
    warnings: list[str] = []
    refused: list[str] = []
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if loose:
        warnings.append(
            f"{root}: {len(loose)} image(s) beside the type folders ({', '.join(loose[:3])}"
            f"{' ...' if len(loose) > 3 else ''}) skipped: a type's photos go in a folder named by its type id"
        )
    for type_dir in folders:
        tid = type_dir.name
        if bad_id := type_id_problem(tid):
            warnings.append(f"{type_dir}: skipped: {bad_id}")
            continue
        info = TypeInfo(tid, tid, None)
        toml = type_dir / "coin.toml"
        kept = (known or {}).get(tid)
        if not toml.is_file() and kept is not None and kept != info:
            info = kept
            warnings.append(
                f"{type_dir}: no coin.toml; {tid}'s name, diameter, lookalikes and designs enrolled before are kept"
            )
        if toml.is_file():
            try:
                doc = tomllib.loads(toml.read_bytes().decode("utf-8"))  # TOML is UTF-8 whatever the locale
                refused.extend(unknown_key_problems(toml, doc))
                info = _type_info(tid, doc)
            except (tomllib.TOMLDecodeError, ValueError, TypeError) as err:
                refused.append(coin_toml_problem(toml, tid, err))
        infos[tid] = info
        found = 0
        guessed: dict[Path, list[Side]] = {}  # folders that are not a side's: their photos' sides come from names
        for path in _files(type_dir):
            if path.name == "coin.toml" or path.name.startswith("."):
                continue
            if not path.is_file():
                warnings.append(f"{path}: a link to nothing, skipped")
                continue
            rel = path.relative_to(type_dir).parts
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                if path.suffix.lower() in OTHER_IMAGE_SUFFIXES:
                    warnings.append(
                        f"{path}: {path.suffix.lower()} photos are not read, skipped: save it as JPEG or PNG"
                    )
                else:
                    warnings.append(f"{path}: not an image file, skipped")
                continue
            if len(rel) > 1 and rel[0].lower() in SIDE_NAMES:
                side, from_folder = Side(rel[0].lower()), True
            else:
                side, from_folder = side_from_name(path.stem), False
                guessed.setdefault(type_dir / rel[0] if len(rel) > 1 else type_dir, []).append(side)
            images.append(CatalogImage(path, tid, side, from_folder))
            found += 1
        warnings.extend(_guessed_side_note(where, sides, where == type_dir) for where, sides in guessed.items())
        if not found:
            warnings.append(f"{type_dir}: no images, type not enrolled")
    if refused:
        raise CatalogError("\n".join(refused))
    return images, infos, warnings


def _guessed_side_note(folder: Path, sides: Sequence[Side], flat: bool) -> str:
    """The line saying that the sides of a folder's photos were taken from their file names, with how many of each
    (``flat``: the photos lie in the type's folder itself, else in a sub-folder not named for a side)."""
    n, n_rev = len(sides), sum(1 for s in sides if s == Side.REVERSE)
    where = "in no 'obverse' or 'reverse' folder" if flat else "not an 'obverse' or 'reverse' folder"
    what = "put its photos in obverse/ and reverse/ folders" if flat else "rename the folder if it holds one side"
    return (
        f"{folder}: {where}; the side of its {n} photo{'s' if n != 1 else ''} was taken from the file names "
        f"({n_rev} reverse, named rev, reverse, back or tails; {n - n_rev} obverse): {what} if a name does not say "
        "its side"
    )


def coin_toml_problem(path: Path, type_id: str, err: Exception) -> str:
    """The line refusing a ``coin.toml`` that cannot be read, naming the file and what is wrong.

    Enrolling the type without it would leave out its name, diameter, lookalikes and designs: a lookalike pair or a
    shared design the catalogue declares would declare nothing, and a cup could PASS as if it had never said so."""
    if isinstance(err, UnicodeDecodeError):
        what = f"is not UTF-8 text ({err.reason} at byte {err.start}): save it as UTF-8"
    elif isinstance(err, tomllib.TOMLDecodeError):
        what = f"is not valid TOML ({err}): put it right"
    else:
        what = f"holds a value it cannot use ({err}): put it right"
    return (
        f"{path}: {what} and enrol again; {type_id} is not enrolled without it (its name, diameter, lookalikes "
        "and designs would be left out)"
    )


def unknown_key_problems(path: Path, doc: Mapping[str, Any]) -> list[str]:
    """One line per key of a ``coin.toml`` that :func:`scan_catalog` does not read (:data:`COIN_TOML_KEYS`),
    naming the file, the key, the closest known key and every known key.

    A misspelt key (``lookalike``, ``obverse-design``) would otherwise declare nothing, and a cup of a lookalike or a
    shared design could PASS as if the catalogue had never said so."""
    lines = []
    for key in doc:
        if key in COIN_TOML_KEYS:
            continue
        near = difflib.get_close_matches(key.lower().replace("-", "_").replace(" ", "_"), COIN_TOML_KEYS, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        lines.append(
            f"{path}: unknown key {key!r}: {hint}a coin.toml knows only {', '.join(COIN_TOML_KEYS)}; put it right "
            "and enrol again"
        )
    return lines


def _type_info(type_id: str, doc: Mapping[str, Any]) -> TypeInfo:
    """A type's catalogue entry from its parsed ``coin.toml``.

    Raises:
        ValueError, TypeError: a value of the wrong kind, or a diameter no coin has.
    """
    diameter = float(doc["diameter_mm"]) if "diameter_mm" in doc else None
    if diameter is not None and (bad_diameter := diameter_problem(diameter)):
        raise ValueError(bad_diameter)
    return TypeInfo(
        type_id,
        str(doc.get("name", type_id)),
        diameter,
        _lookalike_list(doc.get("lookalikes", []), type_id),
        _design_name(doc, "obverse_design"),
        _design_name(doc, "reverse_design"),
    )


def _files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (and every broken link), sorted, following links to folders (a type's photos kept
    elsewhere and linked in), each real folder once, and none under a hidden or system folder
    (:func:`skipped_folder`: a viewer's ``.thumbnails`` would enrol every photo twice, at another size)."""
    out: list[Path] = []
    seen: set[str] = set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [name for name in dirs if not skipped_folder(name)]  # os.walk walks only what is left
        out.extend(Path(top) / name for name in files)
        out.extend(Path(top) / name for name in dirs if not os.path.exists(Path(top) / name))
    return sorted(out)


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def enroll_catalog(
    folder: str | Path,
    gallery: Gallery,
    embedder: Embedder,
    *,
    crops: bool | None = None,
    detector: DetectorFactory | None = None,
    recut: bool = True,
    progress: bool = True,
    every_coin: bool = False,
    crop_dir: Path | None = None,
    known: Mapping[str, TypeInfo] | None = None,
) -> tuple[EnrolReport, dict[str, TypeInfo]]:
    """Embed every reference image of a catalogue and put it in ``gallery`` (replacing those types).

    Args:
        folder: the catalogue folder.
        gallery: the gallery to update in place (the caller saves it).
        embedder: the embedder whose version the gallery records.
        crops: ``True``: every image is a crop; ``False``: every image is a photo; ``None``: decide per image
            with :func:`is_crop_image`.
        detector: returns the detector, called once, on the first whole photo (or crop to re-cut).
        recut: re-cut crops that still show their background with the detector (:func:`recut_crop`), so that the
            references look like the station's crops; needs ``detector``.
        progress: tqdm bar on stderr.
        every_coin: a whole photo shows several coins of its type, all on the side its folder names (a tray
            photographed with ``cupcheck snapshot``): every whole coin in it is a reference, not only the largest;
            coins cut by the image edge or the cup rim are left out.
        crop_dir: where the coins cut from such photos are kept as PNG files (named by their contents' hash), so
            each reference names a picture of its own coin; ``None``: they name the photo.
        known: the catalogue saved with the gallery (:func:`scan_catalog`: a type folder without ``coin.toml``
            keeps its entry).

    Returns:
        The report and the catalogue metadata of the types that were enrolled.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
        CatalogError: a ``coin.toml`` cannot be read or holds an unknown key (:func:`scan_catalog`), or a side's
            photos declared a shared design look like the type's other side's design instead
            (:func:`declared_design_problems`); the gallery is left as it was.
    """
    images, infos, warnings = scan_catalog(folder, known)
    report = EnrolReport(warnings=list(warnings), catalogue=tuple(sorted(infos)))
    det: Detector | None = None
    catalogue_types = {i.type_id for i in images}
    seen: dict[str, Path] = {
        e.sha1: Path(e.source) for e in gallery.entries.values() if e.sha1 and e.type_id not in catalogue_types
    }
    per_type: dict[str, tuple[list[UInt8Array], list[GalleryEntry]]] = {}
    for item in tqdm(images, desc="enrol", unit="image", disable=not progress):
        digest = _sha1(item.path)
        if digest in seen:
            report.duplicates.append(item.path)
            report.warnings.append(f"{item.path}: duplicate of {seen[digest]}, skipped")
            continue
        seen[digest] = item.path
        image = read_image(item.path)
        if image is None:
            report.unreadable.append(item.path)
            report.warnings.append(f"{item.path}: cannot read image, skipped")
            continue
        if min(image.shape[:2]) < MIN_REFERENCE_PX:
            report.no_coin.append(item.path)
            report.warnings.append(
                f"{item.path}: {image.shape[1]}×{image.shape[0]} pixels, too small to show a coin, skipped"
            )
            continue
        as_crop = crops if crops is not None else is_crop_image(image)
        if as_crop:
            crop = image
            if recut and detector is not None and not is_cut_crop(image):
                if det is None:
                    det = detector()
                cut = recut_crop(image, det, embedder.prep.input_size)
                if cut is None:
                    report.uncut.append(item.path)
                    report.warnings.append(f"{item.path}: no coin found in the crop, enrolled as it is")
                else:
                    crop, report.recut = cut, report.recut + 1
        else:
            if det is None:
                if detector is None:
                    report.warnings.append(f"{item.path}: a whole photo but no detector available, skipped")
                    continue
                det = detector()
            coins = detect_coins(image, det, embedder.prep.input_size, str(item.path))
            if not coins:
                report.no_coin.append(item.path)
                report.warnings.append(f"{item.path}: no coin found in the photo, skipped")
                continue
            if every_coin:
                whole = _tray_references(coins, embedder, item.path, report)
                if not whole:
                    report.no_coin.append(item.path)
                    report.warnings.append(f"{item.path}: every coin found is cut by the edge or the rim, skipped")
                    continue
                design = infos[item.type_id].design(item.side)
                imgs, entries = per_type.setdefault(item.type_id, ([], []))
                for crop in whole:
                    source = _keep_crop(crop, crop_dir) if crop_dir is not None else str(item.path)
                    imgs.append(crop)
                    entries.append(GalleryEntry(item.type_id, item.side, design, source, digest))
                continue
            chosen = _photo_coin(coins, item.path, report)
            if chosen is None:
                continue
            crop = chosen.image
        imgs, entries = per_type.setdefault(item.type_id, ([], []))
        imgs.append(crop)
        entries.append(
            GalleryEntry(item.type_id, item.side, infos[item.type_id].design(item.side), str(item.path), digest)
        )
    embedded = {tid: embedder.embed(imgs) for tid, (imgs, _) in per_type.items()}
    by_design = (
        design_references(gallery) if any(infos[t].obverse_design or infos[t].reverse_design for t in per_type) else {}
    )
    refused: list[str] = []
    for tid, (_, entries) in per_type.items():
        on = np.array([e.side for e in entries])
        sides = {s: embedded[tid][on == s] for s in (Side.OBVERSE, Side.REVERSE)}
        problems, notes = declared_design_problems(Path(folder) / tid, infos[tid], sides, by_design)
        refused.extend(problems)
        report.warnings.extend(notes)
    if refused:
        raise CatalogError("\n".join(refused))
    for tid, (imgs, entries) in per_type.items():
        gallery.remove_type(tid)
        gallery.add(embedded[tid], entries, signatures(imgs))
        counts: dict[str, int] = {}
        for e in entries:
            counts[e.side.value] = counts.get(e.side.value, 0) + 1
        report.enrolled[tid] = counts
    return report, {t: infos[t] for t in per_type}


def _photo_coin(coins: Sequence[tuple[CoinInstance, CoinCrop]], path: Path, report: EnrolReport) -> CoinCrop | None:
    """The coin of a catalogue photo of one coin: the one coin not cut by the photo's edge, else, when the detector
    found a single coin, that one (a close-up fills the photo to its edge).

    A photo showing several whole coins is left out and named (:attr:`EnrolReport.several_coins`): which of them is
    the type's cannot be told (the largest of a handful of coins is whichever coin is largest, and another type's
    coin enrolled as the type's would let a cup of that coin PASS as it); a tray of one type goes through
    ``every_coin``, a photo of several types is cropped to the type's coin. So is one whose coins are all cut by its
    edge."""
    whole = [crop for inst, crop in coins if not inst.partial]
    if len(whole) == 1 or len(coins) == 1:
        return whole[0] if whole else coins[0][1]
    report.several_coins.append(path)
    if whole:
        report.warnings.append(
            f"{path}: photo shows {len(whole)} coins: which is the type's cannot be told, skipped. Use --every-coin "
            '("Tray photos" in the review window) for a tray of one type\'s coins, or crop the photo to the coin'
        )
    else:
        report.warnings.append(
            f"{path}: all {len(coins)} coins found are cut by the photo's edge, skipped: photograph a coin whole"
        )
    return None


def design_alike(a: np.ndarray, b: np.ndarray) -> bool | None:
    """Whether two sets of references look like one design to the camera, by the rule the gallery's
    :meth:`~models.gallery_view.GalleryView.design_lookalikes` names two designs alike by (the warning "… look like
    one design to the camera"; :func:`~models.gallery_view.designs_alike`), in either direction.

    Args:
        a: ``(n, d)`` unit rows.
        b: ``(m, d)`` unit rows.

    Returns:
        ``None`` when neither set holds two references (nothing to measure a set's own spread by).
    """
    directions = [(x, y) for x, y in ((a, b), (b, a)) if len(x) >= 2 and len(y) >= 1]
    if not directions:
        return None
    return any(_mistaken_for(x, y) for x, y in directions)


def _mistaken_for(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether the references ``x`` (``(n, d)``, ``n >= 2``) look like the design of ``y`` (``(m, d)``): the one
    direction of :func:`design_alike`."""
    from models.gallery_view import SAME_DESIGN_FLOOR, designs_alike

    own = x.astype(np.float64) @ x.T.astype(np.float64)
    np.fill_diagonal(own, -np.inf)
    own_best = own.max(axis=1)
    to_y = (x.astype(np.float64) @ y.T.astype(np.float64)).max(axis=1)
    share = float(np.mean((to_y > own_best) & (to_y >= SAME_DESIGN_FLOOR)))
    return bool(designs_alike(share, float(np.median(to_y)), float(np.median(own_best))))


def design_references(gallery: Gallery) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The gallery's references by design: design → ``(m, d)`` vectors and the ``(m,)`` type of each."""
    entries = gallery.entries
    vectors, ids = gallery.vectors()
    rows: dict[str, list[int]] = {}
    for k, i in enumerate(ids):
        rows.setdefault(entries[i].design, []).append(k)
    return {design: (vectors[ks], np.array([entries[ids[k]].type_id for k in ks])) for design, ks in rows.items()}


def declared_design_problems(
    type_dir: Path,
    info: TypeInfo,
    sides: Mapping[Side, np.ndarray],
    by_design: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[list[str], list[str]]:
    """Check each side a type declares a shared design against that design's references in the gallery.

    A side declared a design other types already show (``obverse_design = "..."`` naming a family's obverse) is
    never evidence of the type; if its photos were in fact the type's other side (the obverse and reverse folders
    swapped, or the tray photographed the other side up), the type's own design would be declared shared and the
    family's design enrolled as the type's own: a cup of any family member lying that side up would then PASS as this
    type. Compared by :func:`design_alike` with the references other types enrolled under that design.

    Args:
        type_dir: the type's catalogue folder (named in the lines).
        info: its catalogue entry.
        sides: side → ``(n, d)`` embeddings of its new references on that side (as the gallery's embedder gives them).
        by_design: the gallery's references before this enrolment's types replace theirs
            (:func:`design_references`).

    Returns:
        Refusals (the declared side's photos do not look like the design, the other side's do: sides swapped?) and
        warnings (they do not look like it, nor does the other side).
    """
    refused: list[str] = []
    warned: list[str] = []
    declared = {Side.OBVERSE: info.obverse_design, Side.REVERSE: info.reverse_design}
    for side, design in declared.items():
        photos = sides.get(side)
        if design is None or photos is None or not len(photos):
            continue
        vectors, of_type = by_design.get(design, (np.zeros((0, 0), np.float32), np.array([], str)))
        others = of_type != info.type_id
        if not others.any():
            continue  # no other type shows it yet: nothing to compare with
        refs, types = vectors[others], sorted(set(of_type[others].tolist()))
        if design_alike(photos, refs) is not False:
            continue
        other = Side.REVERSE if side == Side.OBVERSE else Side.OBVERSE
        listed = ", ".join(types[:4]) + (f" and {len(types) - 4} more" if len(types) > 4 else "")
        said = (
            f"{type_dir}: {info.type_id}'s {side.value} photos do not look like the design {design!r} its coin.toml "
            f"declares for them ({side.value}_design), which {listed} show (median best cosine "
            f"{_median_best(photos, refs):.2f})"
        )
        turned = sides.get(other)
        if declared[other] != design and turned is not None and len(turned) and design_alike(turned, refs):
            refused.append(
                f"{said}, but its {other.value} photos do ({_median_best(turned, refs):.2f}): sides swapped? Each "
                f"side's photos go in its own folder ({side.value}/, {other.value}/; at the station, photograph the "
                f"{side.value} with every coin {side.value} up); then enrol again"
            )
        else:
            warned.append(
                f"{said}: if {info.type_id}'s {side.value} is another design, take {side.value}_design out of its "
                "coin.toml; if it is this one, look at the photos (another type's coins, or the other side up?); "
                "then enrol again"
            )
    return refused, warned


def _median_best(x: np.ndarray, y: np.ndarray) -> float:
    """The median over ``x``'s rows of their best cosine to ``y``'s."""
    return float(np.median((x.astype(np.float64) @ y.T.astype(np.float64)).max(axis=1)))


def _tray_references(
    coins: Sequence[tuple[CoinInstance, CoinCrop]], embedder: Embedder, path: Path, report: EnrolReport
) -> list[UInt8Array]:
    """The crops of a tray photo's coins that may serve as references (:func:`models.enroll_tray.choose_references`:
    whole, apart, of the tray's size and look); each coin left out is named in the report's warnings."""
    from models.enroll_tray import PARTIAL, choose_references
    from models.features import visible_share

    if all(inst.partial for inst, _ in coins):
        return []
    visible = [visible_share(crop.mask) for _, crop in coins]
    embeddings = embedder.embed([crop.image for _, crop in coins])
    kept, left_out = choose_references([inst for inst, _ in coins], visible, embeddings)
    for k, why in left_out.items():
        if why != PARTIAL:
            report.warnings.append(f"{path}: coin {k + 1} {why}, left out")
    return [coins[k][1].image for k in kept]


def _keep_crop(crop: UInt8Array, folder: Path) -> str:
    """Write ``crop`` as a PNG named by its contents' hash into ``folder``; return its path."""
    ok, buf = cv2.imencode(".png", crop)
    if not ok:
        raise ValueError("a coin crop could not be encoded as PNG")
    data = buf.tobytes()
    path = folder / f"{hashlib.sha1(data).hexdigest()}.png"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
    return str(path)


def _lookalike_list(value: Any, type_id: str) -> tuple[str, ...]:
    """``coin.toml``'s ``lookalikes``: a list of type ids (the type itself left out)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("lookalikes must be a list of type ids")
    return tuple(sorted({v for v in value if v and v != type_id}))


def _design_name(doc: Mapping[str, Any], key: str) -> str | None:
    """``coin.toml``'s ``obverse_design`` / ``reverse_design``: a non-blank string, or absent."""
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a design name (a non-empty string)")
    return value.strip()


def load_catalog(path: Path) -> dict[str, TypeInfo]:
    """Read ``catalog.json`` (empty when absent)."""
    if not path.is_file():
        return {}
    doc: dict[str, Any] = json.loads(path.read_text())
    return {
        t: TypeInfo(
            t,
            str(v.get("name", t)),
            None if v.get("diameter_mm") is None else float(v["diameter_mm"]),
            tuple(str(x) for x in v.get("lookalikes", [])),
            v.get("obverse_design"),
            v.get("reverse_design"),
        )
        for t, v in doc.get("types", {}).items()
    }


def catalog_lookalikes(infos: Mapping[str, TypeInfo]) -> dict[str, tuple[str, ...]]:
    """Each type's declared lookalikes, made symmetric (a pair named on either side counts for both)."""
    pairs: dict[str, set[str]] = {}
    for t, info in infos.items():
        for u in info.lookalikes:
            pairs.setdefault(t, set()).add(u)
            pairs.setdefault(u, set()).add(t)
    return {t: tuple(sorted(us)) for t, us in pairs.items()}


def save_catalog(path: Path, infos: Iterable[TypeInfo]) -> None:
    """Write ``catalog.json`` atomically: ``{"types": {type_id: {"name", "diameter_mm", "lookalikes"}}}``, plus
    ``obverse_design`` / ``reverse_design`` where declared."""

    def entry(i: TypeInfo) -> dict[str, Any]:
        out: dict[str, Any] = {"name": i.name, "diameter_mm": i.diameter_mm, "lookalikes": list(i.lookalikes)}
        for key, value in (("obverse_design", i.obverse_design), ("reverse_design", i.reverse_design)):
            if value is not None:
                out[key] = value
        return out

    doc = {"types": {i.type_id: entry(i) for i in sorted(infos, key=lambda i: i.type_id)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, json.dumps(doc, indent=1).encode())


def merge_catalog(old: dict[str, TypeInfo], new: dict[str, TypeInfo], gallery_types: Sequence[str]) -> list[TypeInfo]:
    """Old metadata updated with new, restricted to the types present in the gallery."""
    merged = {**old, **new}
    return [merged[t] for t in gallery_types if t in merged]


REFERENCE_CROPS = "references"
"""In the gallery folder: the coins cut from tray photos (``enroll --every-coin``), which their references name."""
GALLERY_LOCK = "gallery.lock"
"""In the gallery folder: held while an enrolment saves the gallery (:func:`save_enrolment`)."""
GALLERY_LOCK_WAIT_S = 120.0
GALLERY_LOCK_STALE_S = 900.0


def gallery_state(gallery_dir: Path) -> bytes | None:
    """The saved gallery's manifest (it names every file by digest), ``None`` when there is none: what an enrolment
    compares to learn whether another one saved the gallery meanwhile."""
    try:
        return (gallery_dir / MANIFEST).read_bytes()
    except FileNotFoundError:
        return None


def save_enrolment(
    gallery_dir: Path,
    gallery: Gallery,
    infos: Mapping[str, TypeInfo],
    enrolled: Iterable[str],
    loaded: bytes | None,
    *,
    replace_all: bool = False,
) -> tuple[Gallery, list[TypeInfo]]:
    """Save an enrolment into ``gallery_dir`` and merge its catalogue, under the folder's lock.

    An enrolment embeds its photos for minutes with the gallery it loaded; a site's shared gallery may have been
    saved by another PC's enrolment meanwhile. When the saved gallery is no longer the one loaded (``loaded``: its
    :func:`gallery_state` then), the types this enrolment enrolled replace theirs in the saved one instead, so
    neither enrolment loses the other's types.

    Args:
        gallery_dir: the gallery folder.
        gallery: the loaded gallery with this enrolment's types added.
        infos: the enrolled types' catalogue entries.
        enrolled: the type ids this enrolment enrolled.
        loaded: :func:`gallery_state` when the gallery was loaded.
        replace_all: a new gallery (``enroll --rebuild``) replaces whatever was saved.

    Returns:
        The gallery as saved and the catalogue as saved.

    Raises:
        models.files.LockTimeout: another enrolment held the folder too long.
        GalleryMismatchError: the saved gallery now belongs to another embedder.
    """
    types = set(enrolled)
    with exclusive_lock(
        gallery_dir / GALLERY_LOCK, GALLERY_LOCK_WAIT_S, GALLERY_LOCK_STALE_S, f"the gallery in {gallery_dir}"
    ):
        if not replace_all and gallery_state(gallery_dir) not in (None, loaded):
            latest = Gallery.load(gallery_dir, embedder_version=gallery.embedder_version)
            _move_types(gallery, latest, types)
            gallery = latest
        gallery.save(gallery_dir)
        catalog_path = gallery_dir / CATALOG_FILE
        merged = merge_catalog(load_catalog(catalog_path), dict(infos), list(gallery.types()))
        save_catalog(catalog_path, merged)
    return gallery, merged


def _move_types(src: Gallery, dst: Gallery, types: set[str]) -> None:
    """Replace the references of ``types`` in ``dst`` with ``src``'s (vectors, entries and template signatures)."""
    vecs, ids = src.vectors()
    chosen = [k for k, i in enumerate(ids) if src.entries[i].type_id in types]
    picked = [ids[k] for k in chosen]
    try:
        sigs: np.ndarray | None = src.signatures(picked)
    except KeyError:
        sigs = None
    for type_id in types:
        dst.remove_type(type_id)
    dst.add(vecs[chosen], [src.entries[i] for i in picked], sigs if picked else None)


def thin_enrolment_notes(enrolled: dict[str, dict[str, int]], per_side: int) -> list[str]:
    """One line per enrolled type with fewer references on a side than the verdict model was calibrated with.

    The precision guarantee holds for galleries like the calibration galleries (``per_side`` photos a side,
    :attr:`models.bundle.Bundle.enrol_per_side`); a type with fewer is matched less surely than the threshold assumes.

    Args:
        enrolled: ``type_id -> {side: references}`` (:attr:`EnrolReport.enrolled`).
        per_side: the verdict bundle's photos per side.
    """
    notes = []
    for tid, sides in sorted(enrolled.items()):
        short = [
            f"{sides.get(s.value, 0)} {s.value}"
            for s in (Side.OBVERSE, Side.REVERSE)
            if sides.get(s.value, 0) < per_side
        ]
        if short:
            notes.append(
                f"{tid} has {' and '.join(short)} reference(s); the verdict model was calibrated with {per_side} a "
                "side: enrol more photos of it for its precision guarantee to hold"
            )
    return notes


def shared_design_notes(gallery: Gallery) -> list[str]:
    """One line per design that more than one enrolled type shows: a coin showing it is never evidence of its type.

    Designs are read from the gallery's references (:attr:`~models.gallery.GalleryEntry.design`), so types enrolled
    earlier with the same declared name count too.
    """
    shown: dict[str, set[str]] = {}
    sides: dict[str, set[str]] = {}
    for e in gallery.entries.values():  # by design alone, as the verdict's gallery view counts them
        shown.setdefault(e.design, set()).add(e.type_id)
        sides.setdefault(e.design, set()).add(e.side.value)
    notes = []
    for design, types in sorted(shown.items()):
        if len(types) > 1:
            side = "/".join(sorted(sides[design]))
            listed = ", ".join(sorted(types)[:8]) + (f" and {len(types) - 8} more" if len(types) > 8 else "")
            notes.append(
                f"{side} design {design!r} is shared by {len(types)} types ({listed}): a coin showing it proves "
                "nothing about its type, so their cups pass only on coins showing their own side"
            )
    return notes


def lookalike_notes(gallery: Gallery, infos: Iterable[TypeInfo]) -> list[str]:
    """Declared lookalike pairs (``lookalikes`` in ``coin.toml``) whose both types are enrolled, one line each:
    they are never passed on the camera's word."""
    catalogue = {i.type_id: i for i in infos}
    declared = catalog_lookalikes(catalogue)
    enrolled = gallery.types()
    pairs = sorted({tuple(sorted((t, u))) for t in enrolled for u in declared.get(t, ()) if u in enrolled})
    return [f"lookalikes {t} and {u}: their cups are always checked by a person" for t, u in pairs]


def undeclared_lookalike_warnings(gallery: Gallery, infos: Iterable[TypeInfo]) -> list[str]:
    """One line per group of designs of their own the gallery cannot tell apart
    (:meth:`models.gallery_view.GalleryView.design_lookalikes`) that the catalogue neither declares one design nor
    lookalikes: a family's shared obverse enrolled as each type's own, or two coins told apart by a detail. Until
    the person says which, a cup of one type may PASS as another."""
    from models.gallery_view import GalleryView

    declared = catalog_lookalikes({i.type_id: i for i in infos})
    parent: dict[tuple[str, Side], tuple[str, Side]] = {}

    def root(k: tuple[str, Side]) -> tuple[str, Side]:
        while parent.setdefault(k, k) != k:
            k = parent[k]
        return k

    for t, side_t, u, side_u in GalleryView.from_gallery(gallery).design_lookalikes():
        if u not in declared.get(t, ()):
            parent[root((t, side_t))] = root((u, side_u))
    groups: dict[tuple[str, Side], list[tuple[str, Side]]] = {}
    for k in sorted(parent):
        groups.setdefault(root(k), []).append(k)
    lines = []
    for members in sorted(groups.values()):
        sides = {side for _, side in members}
        named = [t if len(sides) == 1 else f"{t} {side.value}" for t, side in members]
        listed = ", ".join(named[:-1]) + f" and {named[-1]}"
        what = f"the {members[0][1].value}s of {listed}" if len(sides) == 1 else listed
        key = f"{members[0][1].value}_design" if len(sides) == 1 else "obverse_design / reverse_design"
        lines.append(
            f"{what} look like one design to the camera, and nothing declares them: a cup of one may PASS as "
            f'another. If they show the same design, name it in their coin.toml files ({key} = "..."); if they are '
            "coins told apart only by a detail, declare them lookalikes; enrol them again after either. If they are "
            "different designs, nothing is needed"
        )
    return lines
