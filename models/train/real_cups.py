"""Cups of labelled real coins, for training and testing the voter on real photos' observations.

The synthetic cups the voter learns from are not real photos: real coins match their references less closely, a
real pile holds up to about 70 coins, and a real photo has no scale (no diameter in mm). The real crop folders
(euro and won under the real data root, :data:`~models.train.crops_data.REAL_FOLDERS`, as
``crops/{train,test}/<type>/<photo>_<i>.jpg``) label each coin's type but hold no cups, so cups are drawn from
their coins the way :func:`models.train.cup_cache.virtual_cups` draws them from synthetic coins:

* every crop is found again by the detector as the station finds a coin in a frame
  (:func:`models.enroll.recut_coin`) and observed as the pipeline observes a coin
  (:func:`models.pipeline.observe_coins`), with no diameter;
* a cup holds 2 to :data:`MAX_COINS` coins of one type (log-uniform). Half the cups are contaminated: one or two
  of their coins are swapped for a *lookalike* (one of the two types whose references the cup type's coins
  resemble most), an *other* type of the same currency, or a *stranger*: a coin of another currency, which
  matches nothing enrolled, as a washer or an unknown coin would;
* training (:func:`real_training_tables`): each currency's ``crops/train`` photos are put in *scenes*, the photos
  of one pile of coins (:func:`scene_groups`: re-shots of a pile show the same coins), and the scenes are split in
  two folds; the cups drawn from one fold's coins are judged against a gallery of the other fold's, so no coin is
  matched against its own crop, another crop of the same photo or a re-shot of itself. Each fold keeps one of its
  scenes apart for validation (:func:`val_scenes`): the val cups are drawn from its coins alone, and no training
  cup holds them or judges against them (the galleries hold the other fold's training scenes only). A scene whose
  coins another scene lays out anew (:func:`relaid_scenes`: the won photos) never validates;
* testing (:func:`real_test_table`): cups drawn from ``crops/test`` coins, judged against a gallery of every
  ``crops/train`` coin, as the real-photo evaluation enrols it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.embedder import Embedder
from models.enroll import TypeInfo, read_image, recut_coin
from models.features import CupCoins
from models.gallery import Gallery, GalleryEntry
from models.gallery_view import GalleryView
from models.pipeline import InstanceSource, observe_coins
from models.pooling import SetPooler
from models.synth.real_coins import crop_photo, shared_photos
from models.train.crops_data import IMAGE_SUFFIXES, REAL_FOLDERS, SPLIT_CURRENCIES, stable_fraction
from models.train.cup_cache import CupCache
from models.train.pairs import Pair, PairTable, pair_table
from models.types import CoinCrop, CoinInstance, Side, UInt8Array

MAX_COINS = 64
"""The most coins in one drawn cup (the real euro piles hold 6 to 68)."""

RELATIONS: tuple[tuple[str, float], ...] = (("lookalike", 0.5), ("other", 0.3), ("stranger", 0.2))
"""How a contaminated cup's intruder relates to the cup's type, with the chance of each."""

FOLD_SALT = "real-fold"
"""Salt of the hash that orders the scenes of equal size before they are dealt into folds (:meth:`RealCoins.fold`)."""

VAL_SALT = "real-val"
"""Salt of the hash that breaks ties when a fold's validation scene is chosen (:func:`val_scenes`)."""

RESHOT_SECONDS = 60
"""Photos named by their time (``20201011_153140``) taken at most this far apart are one scene."""

RESHOT_COUNT_CHANGE = 0.25
"""Consecutively numbered photos (``train_12``, ``train_13``) whose coins per type differ by at most this share of
the larger pile are one scene."""

VAL_COINS_SHARE = 0.2
"""About this share of a fold's coins is kept for validation (the one scene nearest it in size)."""

_TIMED = re.compile(r"^(\d{8})_(\d{2})(\d{2})(\d{2})$")
_NUMBERED = re.compile(r"^(train|test|IMG)_(\d+)$")


@dataclass(frozen=True)
class RealCoins:
    """The observed coins of one crop folder (``crops/train`` or ``crops/test``), one row per crop.

    Attributes:
        coins: their embeddings and measurements (no diameter: the photos have no scale).
        type_id: ``(n,)`` each coin's labelled type.
        photo: ``(n,)`` the photo each crop was cut from.
        source: each crop's path.
        missed: crops in which the detector found no coin (left out).
    """

    coins: CupCoins
    type_id: np.ndarray
    photo: np.ndarray
    source: tuple[str, ...]
    missed: int = 0

    @property
    def n(self) -> int:
        """Number of coins."""
        return self.coins.n

    @property
    def types(self) -> list[str]:
        """The labelled types, sorted."""
        return sorted(set(self.type_id.tolist()))

    def take(self, rows: np.ndarray) -> RealCoins:
        """The coins ``rows`` alone."""
        c = self.coins
        return RealCoins(
            coins=CupCoins(
                embeddings=c.embeddings[rows],
                confidence=c.confidence[rows],
                partial=c.partial[rows],
                visible=c.visible[rows],
                diameter_mm=c.diameter_mm[rows],
                focus=c.focus[rows],
                signatures=None if c.signatures is None else c.signatures[rows],
            ),
            type_id=self.type_id[rows],
            photo=self.photo[rows],
            source=tuple(self.source[int(i)] for i in rows),
        )

    @cached_property
    def scene(self) -> np.ndarray:
        """``(n,)`` each coin's scene: the pile of coins its photo shows (:func:`scene_groups`; found once: the folds
        and each fold's validation scene read it)."""
        return scene_groups(self.photo, self.type_id)

    def fold(self, folds: int = 2) -> np.ndarray:
        """``(n,)`` each coin's fold, by scene: every crop of a photo, and of every re-shot of the same pile, lands
        in the same fold. Scenes are dealt largest first to the fold with the fewest coins (equal sizes in the order
        of a hash of their name), so two scenes always make two folds."""
        scene = self.scene
        names, sizes = np.unique(scene, return_counts=True)
        order = sorted(range(names.size), key=lambda i: (-int(sizes[i]), stable_fraction(str(names[i]), FOLD_SALT)))
        load = [0] * folds
        of: dict[str, int] = {}
        for i in order:
            f = min(range(folds), key=lambda k: (load[k], k))
            of[str(names[i])] = f
            load[f] += int(sizes[i])
        return np.array([of[str(g)] for g in scene], np.int64)


def _clock_seconds(m: re.Match[str]) -> int:
    return int(m.group(2)) * 3600 + int(m.group(3)) * 60 + int(m.group(4))


def scene_groups(photo: np.ndarray, type_id: np.ndarray) -> np.ndarray:
    """``(n,)`` the scene of each coin: the photos that show one pile of coins, named by its first photo.

    The real sets hold re-shots of the same pile, a few seconds or one photo number apart, whose crops are the same
    coins; a fold or a validation split by photo would put a coin on both sides. Photos are grouped by their names:

    * won photos are named by the time they were taken (``20201011_153140``): photos of one day taken at most
      :data:`RESHOT_SECONDS` after the previous one are one scene (the 9 won photos are 3 piles shot 3 times);
    * euro photos are numbered in the order they were taken (``train_12``, ``test_3``, ``IMG_4187``): a photo is in
      the scene of the photo numbered just before it (one or two lower, the same prefix) when their coins per type,
      counted from the crops, differ by at most :data:`RESHOT_COUNT_CHANGE` of the larger pile (the euro
      ``train_1`` to ``train_14`` are one pile, a coin or two found or missed from shot to shot; the euro
      ``crops/train`` are 6 piles, the won 3);
    * any other name is a scene of its own.

    Args:
        photo: ``(n,)`` each coin's photo (:func:`crop_photo`).
        type_id: ``(n,)`` each coin's type.
    """
    names = sorted(set(photo.tolist()))
    types = sorted(set(type_id.tolist()))
    counts = {p: np.array([np.sum((photo == p) & (type_id == t)) for t in types], np.float64) for p in names}
    scene = {p: p for p in names}
    timed = sorted(
        ((m.group(1), _clock_seconds(m), p) for p in names if (m := _TIMED.match(p))), key=lambda x: (x[0], x[1])
    )
    for (day0, t0, p0), (day1, t1, p1) in itertools.pairwise(timed):
        if day0 == day1 and t1 - t0 <= RESHOT_SECONDS:
            scene[p1] = scene[p0]
    numbered = sorted((m.group(1), int(m.group(2)), p) for p in names if (m := _NUMBERED.match(p)))
    for (pre0, n0, p0), (pre1, n1, p1) in itertools.pairwise(numbered):
        a, b = counts[p0], counts[p1]
        near = pre0 == pre1 and n1 - n0 <= 2
        if near and np.abs(a - b).sum() <= RESHOT_COUNT_CHANGE * max(a.sum(), b.sum()):
            scene[p1] = scene[p0]
    return np.array([scene[p] for p in photo.tolist()], dtype=object).astype(str) if photo.size else photo.copy()


def relaid_scenes(coins: RealCoins) -> set[str]:
    """The scenes whose coins another scene shows again, laid out anew: the scenes of photos named by the time they
    were taken on one day, when that day has several (the 9 won photos are three layouts, hours apart, of one set of
    about 48 coins: 36/24/41/10, 36/24/41/9 and 36/24/40/10 coins of its four types)."""
    days: dict[str, set[str]] = {}
    for g in set(coins.scene.tolist()):
        if m := _TIMED.match(g):
            days.setdefault(m.group(1), set()).add(g)
    return {g for scenes in days.values() if len(scenes) > 1 for g in scenes}


def val_scenes(coins: RealCoins, rows: np.ndarray, share: float) -> np.ndarray:
    """Which of the coins ``rows`` (one fold's) are kept for validation: those of the one scene whose size is nearest
    ``share`` of the fold's coins (ties by a hash of its name), or none when the fold holds a single scene. A scene
    whose coins another scene shows again (:func:`relaid_scenes`) is never kept: its coins would be trained on.

    Returns:
        ``(rows.size,)`` bool.
    """
    scene = coins.scene[rows]
    names, sizes = np.unique(scene, return_counts=True)
    relaid = relaid_scenes(coins)
    eligible = [i for i in range(names.size) if str(names[i]) not in relaid]
    if names.size < 2 or not eligible:
        return np.zeros(rows.size, bool)
    target = share * rows.size
    best = min(eligible, key=lambda i: (abs(int(sizes[i]) - target), stable_fraction(str(names[i]), VAL_SALT)))
    return np.asarray(scene == names[best], bool)


def real_crop_folders(root: Path, split: str) -> dict[str, Path]:
    """Each currency's ``split`` crop folder under the real data root ``root`` (:data:`SPLIT_CURRENCIES`), those
    that exist.

    Raises:
        FileNotFoundError: none exists.
    """
    folders = {c: root / REAL_FOLDERS[c] / split for c in SPLIT_CURRENCIES}
    found = {c: f for c, f in folders.items() if f.is_dir()}
    if not found:
        raise FileNotFoundError(f"{root} holds none of {', '.join(str(f.relative_to(root)) for f in folders.values())}")
    return found


def crop_files(folder: Path) -> list[Path]:
    """The crop images of a crop folder (``<type>/<crop>``), sorted."""
    return sorted(p for p in folder.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)


def observe_real_crops(
    folder: Path,
    embedder: Embedder,
    detector: InstanceSource,
    crop_size: int,
    *,
    progress: bool = True,
) -> RealCoins:
    """Find and observe the coin of every crop in ``folder/<type>/*.jpg`` as the station would.

    Raises:
        FileNotFoundError: ``folder`` holds no crop.
    """
    files = crop_files(folder)
    if not files:
        raise FileNotFoundError(f"{folder} holds no <type>/ folder of crops")
    found: list[tuple[Path, CoinInstance, CoinCrop]] = []
    for path in tqdm(
        files, desc=f"real coins {folder.parent.parent.name}/{folder.name}", unit="crop", disable=not progress
    ):
        image = read_image(path)
        cut = None if image is None else recut_coin(image, detector, crop_size)  # type: ignore[arg-type]
        if cut is not None:
            found.append((path, *cut))
    images: list[UInt8Array] = [c.image for _, _, c in found]
    coins = observe_coins(
        embedder,
        [inst for _, inst, _ in found],
        images,
        [c.mask for _, _, c in found],
        crop_size=crop_size,
        with_signatures=True,
    )
    return RealCoins(
        coins=coins,
        type_id=np.array([p.parent.name for p, _, _ in found]),
        photo=np.array([crop_photo(p) for p, _, _ in found]),
        source=tuple(str(p) for p, _, _ in found),
        missed=len(files) - len(found),
    )


def real_gallery(coins: RealCoins, rows: np.ndarray, embedder_version: str) -> Gallery:
    """A gallery of the coins ``rows`` of ``coins``, each a reference of its type as enrolment makes one from a crop
    of unknown side (:func:`models.enroll.enroll_catalog`)."""
    gallery = Gallery(coins.coins.embeddings.shape[1], embedder_version)
    sigs = coins.coins.signatures
    for t in coins.types:
        r = rows[coins.type_id[rows] == t]
        if r.size == 0:
            continue
        design = TypeInfo(t, t, None).design(Side.OBVERSE)
        entries = [GalleryEntry(t, Side.OBVERSE, design, coins.source[int(i)]) for i in r]
        gallery.add(coins.coins.embeddings[r], entries, None if sigs is None else sigs[r])
    return gallery


def lookalike_types(coins: RealCoins, rows: np.ndarray, view: GalleryView, k: int = 2) -> dict[str, list[str]]:
    """For each type among ``rows``: the ``k`` other types of ``view`` its coins resemble most (mean best
    similarity to each type's references)."""
    best, _ = view.type_scores(coins.coins.embeddings[rows])
    out: dict[str, list[str]] = {}
    for t in sorted(set(coins.type_id[rows].tolist())):
        if t not in view.type_index:
            continue
        mean = best[coins.type_id[rows] == t].mean(axis=0)
        order = [int(u) for u in np.argsort(-mean) if int(u) != view.type_index[t]]
        out[t] = [view.types[u] for u in order[:k]]
    return out


def draw_cups(
    coins: RealCoins,
    rows: np.ndarray,
    lookalikes: dict[str, list[str]],
    n: int,
    *,
    strangers: RealCoins | None = None,
    seed: int = 0,
    split: str = "train",
    max_coins: int = MAX_COINS,
    prefix: str = "real",
) -> CupCache:
    """``n`` cups drawn from the coins ``rows`` of ``coins`` (see the module's description).

    Args:
        coins: the observed coins.
        rows: the coins cups are drawn from.
        lookalikes: each type's lookalikes (:func:`lookalike_types`).
        n: cups to draw.
        strangers: coins of another currency (the *stranger* intruders); ``None``: no stranger intruders.
        seed: seed of the draws.
        split: the cups' split.
        max_coins: the most coins in a cup.
        prefix: cup id prefix.

    Raises:
        ValueError: ``rows`` holds coins of fewer than two types.
    """
    rng = np.random.default_rng(seed)
    pools = {t: rows[coins.type_id[rows] == t] for t in sorted(set(coins.type_id[rows].tolist()))}
    types = list(pools)
    if len(types) < 2:
        raise ValueError("drawing real cups needs coins of at least two types")
    names = [r for r, _ in RELATIONS]
    weights = np.array(
        [w if (r != "stranger" or (strangers is not None and strangers.n)) else 0.0 for r, w in RELATIONS]
    )
    picks: list[tuple[np.ndarray, np.ndarray]] = []  # (coin rows, from strangers?)
    meta: list[tuple[str, str, str]] = []  # kind, expected, contaminant relation
    for _ in range(n):
        a = types[int(rng.integers(len(types)))]
        k = int(np.exp(rng.uniform(np.log(2), np.log(max_coins + 1))))
        chosen = rng.choice(pools[a], size=k)
        stranger = np.zeros(k, bool)
        kind, relation = "pure", ""
        if rng.random() < 0.5:
            relation = names[int(rng.choice(len(names), p=weights / weights.sum()))]
            near = [t for t in lookalikes.get(a, []) if t in pools]
            pool = near if relation == "lookalike" and near else [t for t in types if t != a and t not in near]
            if not pool:
                pool = [t for t in types if t != a]
            for _ in range(1 if k < 4 or rng.random() < 0.65 else 2):
                j = int(rng.integers(k))
                if relation == "stranger" and strangers is not None:
                    chosen[j], stranger[j] = int(rng.integers(strangers.n)), True
                else:
                    b = pool[int(rng.integers(len(pool)))]
                    chosen[j], stranger[j] = int(rng.choice(pools[b])), False
            kind = "contaminated"
        picks.append((chosen, stranger))
        meta.append((kind, a, relation))
    return _cache_of(coins, strangers, picks, meta, split, prefix)


def _gather(own: np.ndarray, other: np.ndarray | None, picks: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Rows of ``own`` for each cup's picks, those marked as strangers taken from ``other``."""
    text = own.dtype.kind == "U"
    parts = []
    for c, s in picks:
        rows = np.array(own[np.where(s, 0, c)], dtype=object if text else own.dtype)
        if other is not None and s.any():
            rows[s] = other[c[s]]
        parts.append(rows)
    out = np.concatenate(parts) if parts else own[:0]
    return out.astype(str) if text else out


def _cache_of(
    coins: RealCoins,
    strangers: RealCoins | None,
    picks: Sequence[tuple[np.ndarray, np.ndarray]],
    meta: Sequence[tuple[str, str, str]],
    split: str,
    prefix: str,
) -> CupCache:
    def column(name: str) -> np.ndarray:
        other = None if strangers is None else getattr(strangers.coins, name)
        return _gather(getattr(coins.coins, name), other, picks)

    sigs = coins.coins.signatures
    other_sigs = None if strangers is None else strangers.coins.signatures
    keep_sigs = sigs is not None and (strangers is None or other_sigs is not None)
    n_cups = len(meta)
    return CupCache(
        offsets=np.concatenate([[0], np.cumsum([c.size for c, _ in picks])]).astype(np.int64),
        embeddings=column("embeddings"),
        confidence=column("confidence"),
        partial=column("partial"),
        visible=column("visible"),
        diameter_mm=column("diameter_mm"),
        focus=column("focus"),
        true_type=_gather(coins.type_id, None if strangers is None else strangers.type_id, picks),
        cup_id=np.array([f"{prefix}{i:06d}" for i in range(n_cups)]),
        kind=np.array([m[0] for m in meta]),
        expected=np.array([m[1] for m in meta]),
        contaminant=np.array([m[2] for m in meta]),
        split=np.array([split] * n_cups),
        n_objects=np.zeros(n_cups, np.int64),
        source="real",
        signatures=_gather(sigs, other_sigs, picks) if keep_sigs and sigs is not None else None,
    )


def real_pairs(
    cache: CupCache, types: Sequence[str], lookalikes: dict[str, list[str]], *, seed: int = 0, negatives: int = 3
) -> list[Pair]:
    """Every cup with its expected type, and each pure cup with wrong candidates: one of its type's lookalikes
    (relation ``"lookalike"``) and ``negatives`` other types (``"random"``)."""
    rng = np.random.default_rng(seed)
    pairs: list[Pair] = []
    for i in range(cache.n_cups):
        kind, exp = str(cache.kind[i]), str(cache.expected[i])
        pairs.append(Pair(i, exp, kind == "pure", kind, "true", str(cache.contaminant[i])))
        if kind != "pure":
            continue
        near = [t for t in lookalikes.get(exp, []) if t != exp]
        wrong: dict[str, str] = {}
        if near:
            wrong[near[int(rng.integers(len(near)))]] = "lookalike"
        others = [t for t in types if t != exp and t not in wrong]
        for j in rng.permutation(len(others))[:negatives]:
            wrong[others[int(j)]] = "random"
        pairs.extend(Pair(i, t, False, kind, r) for t, r in wrong.items())
    return pairs


def concat_coins(parts: Sequence[RealCoins]) -> RealCoins:
    """The coins of several folders as one."""
    if not parts:
        raise ValueError("no coins to join")

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p.coins, name) for p in parts])

    sigs = [p.coins.signatures for p in parts]
    return RealCoins(
        coins=CupCoins(
            embeddings=cat("embeddings"),
            confidence=cat("confidence"),
            partial=cat("partial"),
            visible=cat("visible"),
            diameter_mm=cat("diameter_mm"),
            focus=cat("focus"),
            signatures=None if any(s is None for s in sigs) else np.concatenate(sigs),  # type: ignore[arg-type]
        ),
        type_id=np.concatenate([p.type_id for p in parts]),
        photo=np.concatenate([p.photo for p in parts]),
        source=tuple(s for p in parts for s in p.source),
        missed=sum(p.missed for p in parts),
    )


@dataclass(frozen=True)
class RealParts:
    """What the real cups are observed and judged with: the station's embedder and detector, the trained set
    pooler, the crop size and the pooled embedding's GeM exponent."""

    embedder: Embedder
    detector: InstanceSource
    pooler: SetPooler | None
    crop_size: int
    gem_p: float = 3.0


def _observe_all(root: Path, split: str, parts: RealParts, progress: bool) -> dict[str, RealCoins]:
    """The observed coins of each currency's ``split`` crop folder under ``root``."""
    return {c: _observe(f, parts, progress) for c, f in real_crop_folders(root, split).items()}


def _observe(folder: Path, parts: RealParts, progress: bool) -> RealCoins:
    return observe_real_crops(folder, parts.embedder, parts.detector, parts.crop_size, progress=progress)


def _strangers(pools: dict[str, RealCoins], name: str) -> RealCoins | None:
    """The coins of every currency but ``name`` (from ``pools``: one role's coins per currency), ``None`` if none."""
    others = [c for s, c in pools.items() if s != name and c.n]
    return concat_coins(others) if others else None


@dataclass(frozen=True)
class FoldRows:
    """One fold of a real set's ``crops/train`` coins (rows of its :class:`RealCoins`).

    Attributes:
        train: the fold's coins training cups are drawn from (its scenes but the validation one).
        val: the coins of its validation scene (empty when the fold holds one scene).
        refs: the gallery the fold's cups are judged against: the other fold's training coins.
    """

    train: np.ndarray
    val: np.ndarray
    refs: np.ndarray


def fold_rows(coins: RealCoins, val_share: float = VAL_COINS_SHARE) -> tuple[FoldRows, FoldRows]:
    """The two folds of ``coins`` by scene, each with its validation scene kept apart (:func:`val_scenes`)."""
    fold = coins.fold(2)
    split: list[tuple[np.ndarray, np.ndarray]] = []
    for f in (0, 1):
        rows = np.flatnonzero(fold == f)
        held = val_scenes(coins, rows, val_share)
        split.append((rows[~held], rows[held]))
    return (
        FoldRows(split[0][0], split[0][1], split[1][0]),
        FoldRows(split[1][0], split[1][1], split[0][0]),
    )


def _table(
    cache: CupCache, view: GalleryView, pairs: list[Pair], parts: RealParts, desc: str, progress: bool
) -> PairTable:
    return pair_table(cache, view, pairs, parts.pooler, gem_p=parts.gem_p, progress=progress, desc=desc)


def real_training_tables(
    root: Path,
    parts: RealParts,
    cups: int,
    *,
    seed: int = 0,
    val_share: float = 0.2,
    progress: bool = True,
) -> tuple[PairTable, PairTable, dict[str, int]]:
    """Train and val pairs of cups drawn from the ``crops/train`` coins of every real set (two folds by scene, each
    with a validation scene; see the module's description and :func:`fold_rows`).

    The val cups share no coin with the training cups: they are drawn from the validation scenes only, the
    training cups' galleries hold no validation coin, and the stranger intruders of each come from the other
    currency's coins of the same role.

    Args:
        root: the real data root.
        parts: what the cups are observed and judged with.
        cups: training cups per real set (``val_share`` as many again for validation).
        seed: seed of the draws.
        val_share: validation cups per training cup.
        progress: tqdm bars.

    Returns:
        The train table, the val table, and counts (coins observed, crops missed, cups, pairs, and the coins and
        photos of the validation scenes).

    Raises:
        FileNotFoundError: no real set under ``root``.
        ValueError: no real set holds coins of two types in both folds, or no fold has a validation scene whose
            coins are of two types.
    """
    observed = _observe_all(root, "train", parts, progress)
    folds = {name: fold_rows(coins) for name, coins in observed.items()}
    pools = {
        role: {name: concat_coins([observed[name].take(getattr(fr, role)) for fr in folds[name]]) for name in observed}
        for role in ("train", "val")
    }
    tables: dict[str, list[PairTable]] = {"train": [], "val": []}
    info = {"real_coins": 0, "real_missed": 0, "real_cups": 0, "real_val_coins": 0, "real_val_photos": 0}
    for k, (name, coins) in enumerate(observed.items()):
        info["real_coins"] += coins.n
        info["real_missed"] += coins.missed
        for f, fr in enumerate(folds[name]):
            view = GalleryView.from_gallery(real_gallery(coins, fr.refs, parts.embedder.version))
            if len(set(coins.type_id[fr.train].tolist()) & set(view.types)) < 2:
                continue
            look = lookalike_types(coins, fr.train, view)
            val_rows = fr.val[np.isin(coins.type_id[fr.val], view.types)]
            draws = [("train", fr.train[np.isin(coins.type_id[fr.train], view.types)], cups // 2)]
            if len(set(coins.type_id[val_rows].tolist())) >= 2:
                draws.append(("val", val_rows, round(cups * val_share) // 2))
                info["real_val_coins"] += int(val_rows.size)
                info["real_val_photos"] += len(set(coins.photo[val_rows].tolist()))
            for split, rows, n in draws:
                s = seed + 1000 * k + 10 * f + (0 if split == "train" else 1)
                strangers = _strangers(pools[split], name)
                cache = draw_cups(
                    coins, rows, look, n, strangers=strangers, seed=s, split=split, prefix=f"{name}{f}{split}"
                )
                pairs = real_pairs(cache, view.types, look, seed=s)
                tables[split].append(_table(cache, view, pairs, parts, f"real {name} {split} fold {f}", progress))
                info["real_cups"] += n
    if not tables["train"]:
        raise ValueError(f"no real set under {root} holds coins of two types in both folds")
    if not tables["val"]:
        raise ValueError(
            f"no real set under {root} has a validation scene with coins of two types: the val cups must come from "
            "photos of piles no training cup shows (each fold needs photos of at least two piles)"
        )
    train, val = PairTable.concat(tables["train"]), PairTable.concat(tables["val"])
    info.update(real_train_pairs=len(train.pairs), real_val_pairs=len(val.pairs))
    return train, val, info


@dataclass(frozen=True)
class RealTest:
    """The real test cups' pairs and what was left out.

    Attributes:
        table: the pairs of every currency tested.
        currencies: the currencies tested.
        skipped: currency -> why it was not tested.
    """

    table: PairTable
    currencies: tuple[str, ...]
    skipped: dict[str, str]


def real_test_table(root: Path, parts: RealParts, cups: int, *, seed: int = 0, progress: bool = True) -> RealTest:
    """Pairs of ``cups`` cups per currency drawn from its ``crops/test`` coins, judged against a gallery of all its
    ``crops/train`` coins (as the real-photo evaluation enrols it).

    A currency whose test crops were cut from the photos of its train crops is not tested (the won crops are
    split by crop, not by photo: a test coin would be matched against crops of its own photo); its test coins
    still serve as strangers in the other currency's cups.

    Raises:
        FileNotFoundError: no currency under ``root`` has both crop splits.
        ValueError: no currency's test crops come from photos of their own.
    """
    train_dirs = real_crop_folders(root, "train")
    test_dirs = {c: f for c, f in real_crop_folders(root, "test").items() if c in train_dirs}
    if not test_dirs:
        raise FileNotFoundError(f"no real set under {root} has both crops/train and crops/test")
    test = {c: _observe(f, parts, progress) for c, f in test_dirs.items()}
    out, done, skipped = [], [], {}
    for k, (name, coins) in enumerate(test.items()):
        shared = shared_photos(crop_files(test_dirs[name]), crop_files(train_dirs[name]))
        if shared:
            skipped[name] = f"{len(shared)} of its test photos also gave train crops"
            continue
        ref = _observe(train_dirs[name], parts, progress)  # only the train coins of a currency that is tested
        view = GalleryView.from_gallery(real_gallery(ref, np.arange(ref.n), parts.embedder.version))
        rows = np.flatnonzero(np.isin(coins.type_id, view.types))
        look = lookalike_types(coins, rows, view)
        strangers = _strangers(test, name)
        cache = draw_cups(coins, rows, look, cups, strangers=strangers, seed=seed + k, split="test", prefix=name)
        pairs = real_pairs(cache, view.types, look, seed=seed + k)
        out.append(_table(cache, view, pairs, parts, f"real {name} test", progress))
        done.append(name)
    if not out:
        raise ValueError(f"no currency under {root} has test crops from photos of their own ({skipped})")
    return RealTest(PairTable.concat(out), tuple(done), skipped)
