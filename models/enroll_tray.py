"""Enrol a coin type from two photographs of the station's own tray: its coins one side up, then turned over.

A person lays the new type's coins on the tray, one side up and apart, and the station photographs them; they turn
every coin over and it photographs them again. :func:`look_at_tray` judges each photograph before anything is
enrolled, so a bad reference never reaches the gallery:

- the coins it finds, and which of them may serve as references: whole (not cut by the rim or the image's edge),
  lying apart (a coin half under another shows little of its face), and like the rest of the tray in size and in
  look. A coin of another size, or one that looks unlike the others (another type, or lying the other way up), is
  named and left out, so one stray coin does not become a reference of the new type;
- its diameter, when the camera is calibrated (the median over the references), for the catalogue;
- whether the side looks like a design the gallery already holds (:class:`DesignGuess`): a new US state quarter's
  obverse is Washington's, which every state quarter shows. A shared design left undeclared makes the new type's
  coins look like every type that shows it, so the person is asked whether it is the same design.

:func:`write_tray_catalog` writes what was accepted as a catalogue folder (cut crops, ``coin.toml``) beside the two
photographs, which :func:`station.controllers.enrol.enrol_folder` enrols the way ``cupcheck enroll`` does; the
folder stays, so the enrolment can be repeated (``cupcheck enroll FOLDER``) after a new embedder.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from models.enroll import TypeInfo, diameter_problem, type_id_problem
from models.files import write_bytes_atomic
from models.types import CoinInstance, Frame, Side, UInt8Array

if TYPE_CHECKING:
    from models.pipeline import Pipeline

APART_VISIBLE = 0.9
"""A coin showing less of its disc than this (another lies on it) is not a reference."""
SIZE_TOLERANCE = 0.05
"""A coin this share larger or smaller than the tray's median coin is another type (1 c and 2 c differ by 15 %)."""
LOOK_GAP = 0.15
"""A coin whose cosine to the others' mean falls this far below the tray's median cosine looks unlike them."""
LOOK_MIN_COINS = 4
"""Fewer references than this: no coin is judged against the others' look (too few to say which is odd)."""
GUESS_SHARE = 0.5
"""A side is said to look like a gallery design when at least this share of its references match it best..."""
GUESS_COSINE = 0.6
"""... with a median cosine of at least this (unrelated designs of two synthetic mints: 0.07 to 0.3)."""
SAME_DESIGN_COSINE = 0.9
"""The median cosine from which a side is offered as a design several types already share, ticked. Measured with
the shipped embedder, each of 28 types of two synthetic mints held out of a gallery enrolled from photographs in
turn: its family's shared obverse 0.951 to 0.989 (about 0.8 against a gallery of clean renders); another type's own
reverse 0.32 to 0.97, a near-twin's 0.76 to 0.98. So a type's own design is never ticked, however close: two types
whose own sides look alike are told apart by the view's lookalike measure, while declaring them one design would
keep either from passing on it. Only the person knows whether two coins show one design."""
JPEG_QUALITY = 95
PARTIAL = "is cut by the rim or the edge"
OVERLAPPED = "lies partly under another coin"
LOOKS_UNLIKE = "looks unlike the others (another type, or the other side up?)"
"""Why a coin is left out of the references (a coin of another size says by how much: :func:`_size_note`)."""


class TrayError(ValueError):
    """The tray photographs or the type's details cannot be enrolled (the message says why)."""


@dataclass(frozen=True)
class DesignGuess:
    """The gallery design a tray side looks like.

    Attributes:
        design: the design's id in the gallery (a declared name, or ``type/side`` for a type's own design).
        types: the enrolled types that show it.
        share: the share of the side's references whose best match shows it.
        similarity: their median cosine to it.
    """

    design: str
    types: tuple[str, ...]
    share: float
    similarity: float

    @property
    def declared(self) -> bool:
        """Whether the design is a declared one (a name from ``coin.toml`` or an earlier tray enrolment), not a
        type's own ``type/side``: declared, it is shared however few of its types are enrolled yet."""
        return not any(self.design == f"{t}/{side.value}" for t in self.types for side in Side)

    @property
    def likely_same(self) -> bool:
        """Whether the side is offered as this design already ticked: one several types share (a family's
        obverse), or a declared design, with one member of its family enrolled (a type enrolled again from the
        tray is offered its own declared obverse so), matched closely by most of the coins. Another type's own
        design is never ticked."""
        shared = len(self.types) > 1 or self.declared
        return shared and self.share >= GUESS_SHARE and self.similarity >= SAME_DESIGN_COSINE

    def describe(self) -> str:
        """The design, who shows it and how closely, for the person enrolling."""
        shown = ", ".join(self.types[:4]) + (f" and {len(self.types) - 4} more" if len(self.types) > 4 else "")
        return f"{self.design}, shown by {shown} ({self.share:.0%} of the coins, cosine {self.similarity:.2f})"


@dataclass(frozen=True)
class TrayLook:
    """One photograph of the tray, judged for enrolment.

    Attributes:
        side: the side the coins show.
        image: the photograph (BGR).
        coins: every coin found, in the detector's order (objects left out).
        crops: each coin cut the way enrolment embeds it (black outside its mask).
        references: positions (into ``coins``) of the coins kept as references.
        left_out: position → why that coin is not a reference.
        diameter_mm: the references' median diameter when the camera is calibrated, else ``None``.
        guess: the gallery design the references look like, ``None`` when none does.
        n_objects: things found that are not coins.
    """

    side: Side
    image: UInt8Array
    coins: tuple[CoinInstance, ...]
    crops: tuple[UInt8Array, ...]
    references: tuple[int, ...]
    left_out: Mapping[int, str]
    diameter_mm: float | None
    guess: DesignGuess | None
    n_objects: int

    def summary(self, per_side: int = 0) -> str:
        """What the photograph gives, in a sentence or two (``per_side``: the references a side the model was
        calibrated with; fewer are named)."""
        if not self.coins:
            return "No coin found: lay the coins on the tray, apart and this side up, and photograph them again."
        n = len(self.references)
        parts = [f"{n} of {len(self.coins)} coins kept as references"]
        if self.diameter_mm is not None:
            parts.append(f"{self.diameter_mm:.2f} mm")
        text = ", ".join(parts) + "."
        if self.n_objects:
            text += f" {self.n_objects} thing{'s' if self.n_objects > 1 else ''} not a coin: take it off the tray."
        odd = [k for k, why in self.left_out.items() if why != PARTIAL]
        if odd:
            text += " Left out: " + "; ".join(f"coin {k + 1} {self.left_out[k]}" for k in odd[:4])
            text += " …" if len(odd) > 4 else ""
            text += "."
        if 0 < n < per_side:
            text += f" The model was calibrated with {per_side} a side: add coins and photograph again if you can."
        return text


def _size_note(ratio: float) -> str:
    return f"is {abs(ratio - 1):.0%} {'larger' if ratio > 1 else 'smaller'} than the others (another type?)"


def choose_references(
    coins: Sequence[CoinInstance], visible: Sequence[float] | np.ndarray, embeddings: np.ndarray
) -> tuple[list[int], dict[int, str]]:
    """Which coins of a tray photograph of one type, one side up, may serve as its references.

    Left out: a coin cut by the rim or the image's edge, one lying partly under another (less than
    :data:`APART_VISIBLE` of its disc visible), one of another size than the tray's median coin (by more than
    :data:`SIZE_TOLERANCE`; millimetres when calibrated, else pixels), and, with at least :data:`LOOK_MIN_COINS` left,
    one whose embedding is further from the others' mean than the rest (:data:`LOOK_GAP`).

    Args:
        coins: the coins found, in order.
        visible: each coin's visible share of its disc.
        embeddings: ``(n, d)`` unit rows, one per coin.

    Returns:
        The positions kept, and position → why each other coin was left out.
    """
    left_out: dict[int, str] = {}
    for k, inst in enumerate(coins):
        if inst.partial:
            left_out[k] = PARTIAL
        elif float(visible[k]) < APART_VISIBLE:
            left_out[k] = OVERLAPPED
    kept = [k for k in range(len(coins)) if k not in left_out]
    # size: millimetres when calibrated, else pixels (one camera, one tray: the same scale for every coin)
    sizes = np.array([coins[k].diameter_mm or coins[k].diameter_px for k in kept], np.float64)
    if len(kept) >= 3:
        ratios = sizes / float(np.median(sizes))
        for k, ratio in zip(kept, ratios, strict=True):
            if abs(ratio - 1.0) > SIZE_TOLERANCE:
                left_out[k] = _size_note(float(ratio))
        kept = [k for k in kept if k not in left_out]
    if len(kept) >= LOOK_MIN_COINS:
        sub = embeddings[kept].astype(np.float64)
        others = sub.sum(axis=0)[None, :] - sub
        others /= np.linalg.norm(others, axis=1, keepdims=True) + 1e-12
        cosine = (sub * others).sum(axis=1)
        floor = float(np.median(cosine)) - LOOK_GAP
        for k, c in zip(list(kept), cosine, strict=True):
            if c < floor:
                left_out[k] = LOOKS_UNLIKE
        kept = [k for k in kept if k not in left_out]
    return kept, dict(sorted(left_out.items()))


def look_at_tray(pipeline: Pipeline, frame: Frame, side: Side) -> TrayLook:
    """Find the coins of a tray photograph and judge which may serve as references of one side of a new type.

    Raises:
        RuntimeError: the pipeline has no detector.
    """
    from models.crops import cut_crops

    obs = pipeline.observe(frame)
    coins = tuple(obs.instances[k] for k in obs.coin_idx)
    size = pipeline.embedder.prep.input_size
    crops = tuple(c.image for c in cut_crops(frame, list(coins), size=size))
    kept, left_out = choose_references(coins, obs.coins.visible, obs.coins.embeddings)
    mm = [d for d in (coins[k].diameter_mm for k in kept) if d is not None]
    return TrayLook(
        side=side,
        image=frame.image,
        coins=coins,
        crops=crops,
        references=tuple(kept),
        left_out=left_out,
        diameter_mm=float(np.median(mm)) if mm else None,
        guess=_guess(pipeline, obs.type_best, obs.type_arg, kept),
        n_objects=len(obs.object_idx) + len(obs.unexplained),
    )


def _guess(pipeline: Pipeline, type_best: np.ndarray, type_arg: np.ndarray, kept: list[int]) -> DesignGuess | None:
    """The gallery design most of the references match best, ``None`` when the gallery is empty or none leads."""
    view = pipeline.view
    if not kept or view.n_types == 0:
        return None
    best_type = np.argmax(type_best[kept], axis=1)
    refs = type_arg[kept, best_type]
    designs = view.ref_design[refs]
    sims = type_best[kept, best_type]
    values, counts = np.unique(designs, return_counts=True)
    top = int(values[int(np.argmax(counts))])
    share = float(counts.max()) / len(kept)
    similarity = float(np.median(sims[designs == top]))
    if share < GUESS_SHARE or similarity < GUESS_COSINE:
        return None
    types = tuple(view.types[t] for t in np.flatnonzero(view.design_types[top]))
    return DesignGuess(view.designs[top], types, share, similarity)


@dataclass(frozen=True)
class TrayType:
    """The new type's catalogue details, as the person gave them.

    Attributes:
        type_id: the type's id (a folder name: letters, digits, ``_ . -``).
        name: its name (the id when blank).
        diameter_mm: its diameter, ``None`` when not known.
        designs: side → the design it shares with other types (:attr:`DesignGuess.design`); a side not named
            is the type's own (a type enrolled again keeps the design its entry declared for it: :meth:`over`).
        lookalikes: the types it is told apart from only by a detail (``lookalikes`` of ``coin.toml``); the dialog
            does not ask for them, a type enrolled again keeps its own (:meth:`over`).
    """

    type_id: str
    name: str = ""
    diameter_mm: float | None = None
    designs: Mapping[Side, str] | None = None
    lookalikes: tuple[str, ...] = ()

    def over(self, saved: TypeInfo | None) -> TrayType:
        """These details laid over the type's entry in the gallery's catalogue, for a type enrolled again from the
        tray: its declared lookalikes are kept (dropping them would let a cup of either type PASS on the camera's
        word), and so are its name and diameter where left blank, and the shared design it declared for a side the
        dialog named none for. A family's design declared with one member enrolled is offered as that member's own
        (nobody else shows it yet), so left unticked; dropping it would make the family's obverse the type's own,
        and a cup of a sibling not yet enrolled, obverse up, could PASS as this type. A side the person ticked takes
        the design ticked; a declared design is taken out through the type's ``coin.toml``, not the tray.

        Args:
            saved: the type's saved catalogue entry (:func:`models.enroll.load_catalog`), ``None`` for a new type.
        """
        if saved is None or saved.type_id != self.type_id:
            return self
        declared = {Side.OBVERSE: saved.obverse_design, Side.REVERSE: saved.reverse_design}
        designs = {side: d for side, d in declared.items() if d is not None} | dict(self.designs or {})
        return replace(
            self,
            name=self.name.strip() or saved.name,
            diameter_mm=saved.diameter_mm if self.diameter_mm is None else self.diameter_mm,
            designs=designs or self.designs,
            lookalikes=tuple(sorted({*self.lookalikes, *saved.lookalikes} - {self.type_id})),
        )

    def problem(self) -> str:
        """Why these details cannot be enrolled, ``""`` when they can."""
        bad_id = type_id_problem(self.type_id)
        if bad_id:
            return bad_id
        if any(unicodedata.category(ch) == "Cs" for ch in self.name):
            return f"the name {self.name!r} holds a character that is not text: type it again"
        return "" if self.diameter_mm is None else diameter_problem(self.diameter_mm)

    def toml(self) -> str:
        """``coin.toml`` for the catalogue folder (:func:`models.enroll.scan_catalog` reads it).

        Raises:
            TrayError: a value holds a lone surrogate, which no text file can hold (:func:`toml_string`).
        """
        lines = [f"name = {toml_string(self.name.strip() or self.type_id)}"]
        if self.diameter_mm is not None:
            lines.append(f"diameter_mm = {self.diameter_mm:.2f}")
        for side, design in sorted((self.designs or {}).items(), key=lambda kv: kv[0].value):
            lines.append(f"{side.value}_design = {toml_string(design)}")
        if self.lookalikes:
            lines.append(f"lookalikes = [{', '.join(toml_string(t) for t in sorted(self.lookalikes))}]")
        return "\n".join(lines) + "\n"


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string, quotes included.

    Quotes, backslashes and control characters are escaped; every other character is written as itself (the file is
    UTF-8), a coin emoji included. ``json.dumps`` is not TOML: it writes a character above U+FFFF as two
    ``\\uXXXX`` surrogate halves, which TOML refuses, and the type's whole ``coin.toml`` with it.

    Raises:
        TrayError: ``value`` holds a lone surrogate (U+D800 to U+DFFF), which no UTF-8 file can hold.
    """
    out = []
    for ch in value:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif unicodedata.category(ch) == "Cc":  # U+0000-U+001F, U+007F-U+009F
            out.append(f"\\u{ord(ch):04X}")
        elif unicodedata.category(ch) == "Cs":
            raise TrayError(f"{value!r} holds a character that is not text (U+{ord(ch):04X}): type it again")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def write_tray_catalog(folder: Path, coin: TrayType, looks: Mapping[Side, TrayLook]) -> Path:
    """Write an enrolment from the tray: the photographs, and a catalogue folder of the references' crops.

    Layout (``folder`` is new)::

        folder/tray-obverse.jpg, folder/tray-reverse.jpg      the photographs as taken
        folder/catalog/<type_id>/coin.toml                    name, diameter, shared designs, lookalikes
        folder/catalog/<type_id>/<side>/coinNN.png            the references, cut (NN: the coin's number)

    Returns:
        The catalogue folder (``folder/catalog``), ready for :func:`models.enroll.enroll_catalog`.

    Raises:
        TrayError: bad details, no side with a reference, or ``folder`` exists already.
    """
    problem = coin.problem()
    if problem:
        raise TrayError(problem)
    if not any(look.references for look in looks.values()):
        raise TrayError("no coin to enrol: photograph the tray with its coins apart and whole")
    if folder.exists():
        raise TrayError(f"{folder} exists already")
    toml = coin.toml()  # before anything is written: a value it cannot hold leaves no half-written folder
    type_dir = folder / "catalog" / coin.type_id
    type_dir.mkdir(parents=True)
    for side, look in looks.items():
        ok, buf = cv2.imencode(".jpg", look.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            write_bytes_atomic(folder / f"tray-{side.value}.jpg", buf.tobytes())
        side_dir = type_dir / side.value
        for k in look.references:
            ok, buf = cv2.imencode(".png", look.crops[k])
            if not ok:
                raise TrayError(f"coin {k + 1} of the {side.value} could not be encoded")
            side_dir.mkdir(exist_ok=True)
            write_bytes_atomic(side_dir / f"coin{k + 1:02d}.png", buf.tobytes())
    write_bytes_atomic(type_dir / "coin.toml", toml.encode("utf-8"))
    return folder / "catalog"
