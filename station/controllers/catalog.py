"""The enrolled coin types the operator chooses from, with their reference pictures, and order numbers.

:class:`TypeCatalog` lists the types of the station's gallery (``HOME/gallery``: the gallery's metadata gives the
types and the paths of their reference images, ``catalog.json`` their readable names). :class:`OrderBook` maps
order numbers (typed, or scanned by a barcode reader acting as a keyboard) to the type they ask for, and how many
coins when the order says; it reads ``HOME/orders.csv`` (``order,type[,count]`` per line). No Qt here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from db.schema import NAME_LEN
from models.types import Side, UInt8Array

PICTURE_PX = 96
ORDERS_FILE = "orders.csv"

PictureLoader = Callable[[str, Side], "UInt8Array | None"]


@dataclass(frozen=True)
class EnrolledType:
    """One choosable coin type.

    Attributes:
        type_id: the gallery's type id.
        name: a readable name (the id when the catalogue has none).
        diameter_mm: the catalogue's diameter, if known.
    """

    type_id: str
    name: str
    diameter_mm: float | None = None

    @property
    def label(self) -> str:
        """``type_id — name`` for lists."""
        return self.type_id if self.name == self.type_id else f"{self.type_id} — {self.name}"


def _square_thumb(image: UInt8Array, size: int) -> UInt8Array:
    h, w = image.shape[:2]
    side = max(h, w)
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = image[..., :3]
    return np.ascontiguousarray(cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA))


class TypeCatalog:
    """Searchable enrolled types with lazily loaded reference pictures.

    Args:
        types: the types, in display order.
        pictures: returns a reference picture ``(H, W, 3)`` uint8 BGR of a type's side, or ``None``.
        picture_px: side of the square thumbnails handed out.
    """

    def __init__(self, types: Iterable[EnrolledType], pictures: PictureLoader, *, picture_px: int = PICTURE_PX):
        self._types = {t.type_id: t for t in types}
        self._pictures = pictures
        self._px = picture_px
        self._cache: dict[tuple[str, Side], UInt8Array | None] = {}

    def __len__(self) -> int:
        return len(self._types)

    def __contains__(self, type_id: object) -> bool:
        return type_id in self._types

    @property
    def types(self) -> list[EnrolledType]:
        """All types in display order."""
        return list(self._types.values())

    def get(self, type_id: str) -> EnrolledType | None:
        """The type with this id, or ``None``."""
        return self._types.get(type_id)

    def search(self, text: str) -> list[EnrolledType]:
        """Types whose id or name contains every word of ``text`` (case-insensitive); all for empty text."""
        words = text.lower().split()
        return [t for t in self._types.values() if all(w in f"{t.type_id} {t.name}".lower() for w in words)]

    def picture(self, type_id: str, side: Side = Side.OBVERSE) -> UInt8Array | None:
        """A square ``(P, P, 3)`` uint8 BGR reference picture of one side, or ``None`` when there is none."""
        key = (type_id, side)
        if key not in self._cache:
            image = self._pictures(type_id, side)
            self._cache[key] = None if image is None else _square_thumb(image, self._px)
        return self._cache[key]

    @classmethod
    def from_gallery(cls, gallery_dir: Path) -> TypeCatalog:
        """The types of a saved gallery, named by its ``catalog.json``; pictures are the enrolled images.

        Raises:
            FileNotFoundError: no gallery in ``gallery_dir``.
        """
        from models.enroll import CATALOG_FILE, load_catalog
        from models.gallery import Gallery

        gallery = Gallery.load(gallery_dir)
        infos = load_catalog(gallery_dir / CATALOG_FILE)
        sources: dict[tuple[str, Side], str] = {}
        for entry in gallery.entries.values():
            sources.setdefault((entry.type_id, entry.side), entry.source)
        types = []
        for type_id in gallery.types():
            info = infos.get(type_id)
            types.append(EnrolledType(type_id, info.name if info else type_id, info.diameter_mm if info else None))

        def load(type_id: str, side: Side) -> UInt8Array | None:
            src = sources.get((type_id, side))
            if not src or not Path(src).is_file():
                return None
            image = cv2.imread(src, cv2.IMREAD_COLOR)
            return None if image is None else np.asarray(image, np.uint8)

        return cls(types, load)

    @classmethod
    def from_mint(cls, mint: object, size: int = PICTURE_PX) -> TypeCatalog:
        """The types of a procedural mint (the simulator's), pictured by :func:`models.synth.mint.render_face`."""
        from models.synth.mint import Mint, render_face

        assert isinstance(mint, Mint)
        by_id = {t.id: t for t in mint.types}

        def load(type_id: str, side: Side) -> UInt8Array | None:
            coin = by_id.get(type_id)
            if coin is None:
                return None
            bgra = render_face(coin, side, size)
            return np.ascontiguousarray(bgra[..., :3])

        return cls((EnrolledType(t.id, t.name, t.diameter_mm) for t in mint.types), load, picture_px=size)


class OrderLookup(Protocol):
    """Answers which coin type an order number asks for, and how many coins."""

    def lookup(self, order: str) -> str | None:
        """The type, or ``None`` for an unknown order."""
        ...

    def count(self, order: str) -> int | None:
        """How many coins the order asks for; ``None`` when it does not say (or the order is unknown)."""
        ...


HEADER_NAMES = frozenset({"order", "type", "count"})
"""Cells that make a first row of ``orders.csv`` a header."""
DEFAULT_COLUMNS = {"order": 0, "type": 1, "count": 2}
"""Where the columns of an ``orders.csv`` without a header stand."""


class OrderBook:
    """Order numbers and the coin type each asks for, with the number of coins where known (an
    :class:`OrderLookup`).

    Args:
        orders: order number → type id.
        counts: order number → how many coins it asks for (orders not named: any number).
        comment_lines: the file's line numbers read as comments (``#`` rows before the header), for a caller to say.

    Raises:
        ValueError: a count below 1.
    """

    def __init__(
        self,
        orders: Mapping[str, str] | None = None,
        counts: Mapping[str, int] | None = None,
        comment_lines: Iterable[int] = (),
    ) -> None:
        self._orders = {k.strip(): v.strip() for k, v in (orders or {}).items()}
        self._counts = {k.strip(): int(v) for k, v in (counts or {}).items()}
        self._comments = tuple(comment_lines)
        low = {k: v for k, v in self._counts.items() if v < 1}
        if low:
            raise ValueError(f"an order is for at least one coin: {low}")

    def __len__(self) -> int:
        return len(self._orders)

    def lookup(self, order: str) -> str | None:
        """The type the order asks for, or ``None`` for an unknown order."""
        return self._orders.get(order.strip())

    def count(self, order: str) -> int | None:
        """How many coins the order asks for; ``None`` when its row gave no count, or for an unknown order."""
        return self._counts.get(order.strip())

    def items(self) -> list[tuple[str, str]]:
        """Every ``(order, type)``, in the file's order."""
        return list(self._orders.items())

    @property
    def comment_lines(self) -> tuple[int, ...]:
        """The line numbers of ``orders.csv`` read as comments, not orders (``#`` rows above its header)."""
        return self._comments

    @classmethod
    def from_csv(cls, path: Path) -> OrderBook:
        """Read ``order,type[,count]`` rows; empty when the file is absent. The first row that is not blank and does
        not start with ``#`` is a header when it has a cell ``order``, ``type`` or ``count`` (any case): its
        ``order``, ``type`` and (optional) ``count`` columns are read wherever they stand, and other columns are
        ignored (an order system's export as it is, a spreadsheet's byte-order mark included). Rows starting with
        ``#`` before that header are comments (:attr:`comment_lines` names them); every other row that is not blank
        is an order, ``#`` and all (Shopify numbers its orders ``#1001``), so no order is ever passed over. An empty
        count: any number of coins. A later row of an order replaces the earlier one.

        Raises:
            ValueError: a row without an order and a type, a header without an ``order`` or a ``type`` column, an
                order number or a type longer than the verdict log keeps (:data:`db.schema.NAME_LEN` characters), or
                a count that is not a whole number of at least 1 (the line is named).
        """
        if not path.is_file():
            return cls()
        try:
            content = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{path}: not UTF-8 text (byte {err.start}): save it from the order system or spreadsheet as CSV UTF-8"
            ) from err
        rows = [
            (number, row)
            for number, row in enumerate(csv.reader(io.StringIO(content, newline="")), start=1)
            if any(cell.strip() for cell in row)
        ]
        columns, comments, data = _layout(path, rows)
        orders: dict[str, str] = {}
        counts: dict[str, int] = {}
        for number, row in data:
            order, type_id, text = (_cell(row, columns, name) for name in ("order", "type", "count"))
            if not order or not type_id:
                hint = " (a row starting with # is a comment only above the header row)" if _hashed(row) else ""
                raise ValueError(f"{path}:{number}: expected 'order,type[,count]', got {row!r}{hint}")
            _check_length(path, number, "order number", order)
            _check_length(path, number, "type", type_id)
            orders[order] = type_id
            counts.pop(order, None)
            if text:
                if not text.isdecimal() or int(text) < 1:
                    raise ValueError(
                        f"{path}:{number}: the count of order {order} must be a whole number ≥ 1, got {text!r}"
                    )
                counts[order] = int(text)
        return cls(orders, counts, comments)


def _check_length(path: Path, number: int, what: str, text: str) -> None:
    """Refuse an order number or type longer than the verdict log's column for it: SQLite would keep it, but
    PostgreSQL refuses every verdict of such an order, and each cup would be set aside unsaved.

    Raises:
        ValueError: ``text`` is longer than :data:`db.schema.NAME_LEN` characters (the line is named).
    """
    if len(text) > NAME_LEN:
        raise ValueError(
            f"{path}:{number}: the {what} {text[:24]}… is {len(text)} characters long, and the verdict log keeps at "
            f"most {NAME_LEN}: shorten it in the order system"
        )


Row = tuple[int, list[str]]
"""A CSV row that is not blank, with its line number."""


def _hashed(row: list[str]) -> bool:
    """Whether a row's first cell starts with ``#`` (a comment above the header, an order below it)."""
    return bool(row) and row[0].strip().startswith("#")


def _layout(path: Path, rows: list[Row]) -> tuple[dict[str, int], list[int], list[Row]]:
    """Where ``orders.csv`` keeps each column, the line numbers of its comments and its order rows.

    The header is the first row that does not start with ``#``, when it names a column; only the ``#`` rows above it
    are comments, since no order stands above a header. Without a header every row is an order, ``#`` or not (a
    file of Shopify orders: ``#1001,t0001,20``).

    Raises:
        ValueError: a header without an ``order`` or a ``type`` column.
    """
    at = next((k for k, (_, row) in enumerate(rows) if not _hashed(row)), None)
    if at is None:
        return dict(DEFAULT_COLUMNS), [], rows
    number, row = rows[at]
    names = [cell.strip().lower() for cell in row]
    if not HEADER_NAMES & set(names):
        return dict(DEFAULT_COLUMNS), [], rows
    lacking = [name for name in ("order", "type") if name not in names]
    if lacking:
        raise ValueError(f"{path}:{number}: the header names no {' or '.join(map(repr, lacking))} column: {row!r}")
    columns: dict[str, int] = {name: names.index(name) for name in ("order", "type", "count") if name in names}
    return columns, [n for n, _ in rows[:at]], rows[at + 1 :]


def read_orders(path: Path) -> tuple[OrderBook | None, str]:
    """The orders of ``path`` and ``""``; or ``None`` and why the file cannot be read. A station runs on without
    its orders (types are chosen from the list) rather than refuse to start or to load a new model for them."""
    try:
        return OrderBook.from_csv(path), ""
    except (ValueError, OSError) as err:  # a UnicodeDecodeError is a ValueError
        return None, str(err)


def _cell(row: list[str], columns: dict[str, int], name: str) -> str:
    """The ``name`` column of a CSV row, stripped (``""`` when the file has no such column or the row stops short)."""
    k = columns.get(name)
    return row[k].strip() if k is not None and k < len(row) else ""


@dataclass(frozen=True)
class Resolution:
    """What an entry in the order box resolved to: a type (with the order number, if it was one, and the number of
    coins it asks for, if it says) or an error."""

    type_id: str | None
    order: str | None
    message: str
    count: int | None = None


def resolve_entry(text: str, orders: OrderLookup, catalog: TypeCatalog) -> Resolution:
    """Resolve what the operator typed or scanned: an order number, else a type id.

    Returns:
        The type and order, or ``type_id=None`` with a message saying what is wrong.
    """
    entry = text.strip()
    if not entry:
        return Resolution(None, None, "Type or scan an order number.")
    type_id = orders.lookup(entry)
    if type_id is not None:
        if type_id not in catalog:
            return Resolution(None, entry, f"Order {entry} asks for {type_id}, which is not enrolled.")
        count = orders.count(entry)
        what = type_id if count is None else f"{count} × {type_id}"
        return Resolution(type_id, entry, f"Order {entry}: {what}", count)
    if entry in catalog:
        return Resolution(entry, None, f"Type {entry}")
    return Resolution(None, None, f"Unknown order or type: {entry}")
