"""A toy coin world for the pooling, voter and pipeline tests: type prototypes in a small embedding space.

Types come in families of two sharing one obverse prototype; every type has its own reverse prototype. A coin's
embedding is its side's prototype plus noise, normalised. The gallery holds a few noisy references per side.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from models.features import COIN_FEATURES, EMBEDDING_FEATURES, CupCoins, feature_vector, pair_evidence
from models.gallery import Gallery, GalleryEntry
from models.gallery_view import GalleryView
from models.pooling import SetPooler, train_pooler
from models.types import Side
from models.voter import Voter, train_voter

DIM = 16
NOISE = 0.35
REVERSE_SHARE = 0.9
"""Coins lie reverse up with this probability, as when the operator spreads them reverse up."""

torch.set_num_threads(1)  # tiny networks: extra threads only contend on a loaded CPU


@dataclass
class World:
    """Prototypes of ``n_types`` types (families of two share the obverse)."""

    obverse: np.ndarray  # (n_families, d)
    reverse: np.ndarray  # (n_types, d)
    rng: np.random.Generator

    @property
    def n_types(self) -> int:
        return int(self.reverse.shape[0])

    def type_id(self, t: int) -> str:
        return f"toy{t:03d}"

    def proto(self, t: int, side: Side) -> np.ndarray:
        return self.obverse[t // 2] if side == Side.OBVERSE else self.reverse[t]

    def sample(self, t: int, side: Side) -> np.ndarray:
        v = self.proto(t, side) + NOISE * self.rng.standard_normal(DIM) / np.sqrt(DIM)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def enrol(self, gallery: Gallery, types: range | list[int], per_side: int = 3) -> None:
        for t in types:
            for side in (Side.OBVERSE, Side.REVERSE):
                emb = np.stack([self.sample(t, side) for _ in range(per_side)])
                design = f"fam{t // 2}-obv" if side == Side.OBVERSE else f"{self.type_id(t)}-rev"
                gallery.add(emb, [GalleryEntry(self.type_id(t), side, design) for _ in range(per_side)])

    def cup(
        self,
        t: int,
        n: int,
        *,
        intruders: list[int] | None = None,
        obverse_only: bool = False,
        reverse_share: float = REVERSE_SHARE,
    ) -> CupCoins:
        sides = [Side.OBVERSE if obverse_only or self.rng.random() >= reverse_share else Side.REVERSE for _ in range(n)]
        emb = [self.sample(t, s) for s in sides]
        for k, other in enumerate(intruders or []):
            emb[k % n] = self.sample(other, Side.REVERSE)
        e = np.stack(emb)
        return CupCoins(
            embeddings=e,
            confidence=np.ones(n, np.float32),
            partial=np.zeros(n, bool),
            visible=np.ones(n, np.float32),
            diameter_mm=np.full(n, np.nan, np.float32),
            focus=np.full(n, 6.0, np.float32),
        )


def make_world(n_types: int = 40, seed: int = 0) -> World:
    rng = np.random.default_rng(seed)

    def unit(k: int) -> np.ndarray:
        v = rng.standard_normal((k, DIM))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    return World(unit((n_types + 1) // 2), unit(n_types), rng)


def labelled_cups(world: World, types: range | list[int], per_type: int = 6) -> list[tuple[CupCoins, int, bool]]:
    """(cup, candidate type, correct) triples: pure cups right and wrong, contaminated and obverse-only cups."""
    out: list[tuple[CupCoins, int, bool]] = []
    tl = list(types)
    for t in tl:
        for _ in range(per_type):
            n = int(world.rng.integers(3, 10))
            other = tl[int(world.rng.integers(len(tl)))]
            other = other if other != t else tl[(tl.index(t) + 1) % len(tl)]
            pure = world.cup(t, n)
            out.append((pure, t, True))
            out.append((pure, other, False))
            out.append((world.cup(t, n, intruders=[other]), t, False))
            out.append((world.cup(t, n, obverse_only=True), t, False))
    return out


def table(view: GalleryView, world: World, items: list[tuple[CupCoins, int, bool]], pooler: SetPooler | None):
    xs, bags, ys = [], [], []
    for coins, t, y in items:
        ev = pair_evidence(view, coins, view.type_index[world.type_id(t)], pooler)
        xs.append(feature_vector(ev.features, EMBEDDING_FEATURES))
        bags.append(ev.scores.features)
        ys.append(y)
    return np.stack(xs), bags, np.asarray(ys)


@lru_cache(maxsize=1)
def trained() -> tuple[World, Gallery, SetPooler, Voter]:
    """A pooler and voter trained on the toy world's first 20 types (types 20+ are kept for later enrolment)."""
    world = make_world()
    gallery = Gallery(DIM, "toy")
    world.enrol(gallery, range(20))
    view = GalleryView.from_gallery(gallery)
    items = labelled_cups(world, range(20), per_type=4)
    _, bags, y = table(view, world, items, None)
    pooler = train_pooler(bags, y, COIN_FEATURES, epochs=15, seed=0)
    x, _, y = table(view, world, items, pooler)
    voter = train_voter(x, y, EMBEDDING_FEATURES, rounds=120)
    return world, gallery, pooler, voter


# ----------------------------------------------------------------------------------------------- bundles


PIPE_MINT_SEED = 5
PIPE_TYPES = ("t0000", "t0001", "t0009", "t0010")  # two families of two (shared obverses)


def reference_image(type_id: str, side: Side) -> np.ndarray:
    """The plain render (``k = 0``) of a side of a test mint type, ``(128, 128, 3)`` uint8."""
    from models.synth.mint import generate_mint
    from models.train.galleries import reference_crops

    mint = generate_mint(12, PIPE_MINT_SEED)
    return reference_crops(mint.by_id(type_id), side, 1)[0]


def write_bundle(folder, *, embedder_file) -> tuple:
    """A bundle in ``folder``: the toy-trained pooler and voter, the given embedder, a certified threshold.

    Returns:
        ``(bundle_path, embedder)``.
    """
    from pathlib import Path

    from calibration.risk import choose_threshold
    from models.bundle import Bundle, Preprocess
    from models.embedder import Embedder
    from models.files import sha256_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _, _, pooler, voter = trained()
    rng = np.random.default_rng(0)
    correct = rng.random(1500) < 0.7
    scores = np.where(correct, rng.uniform(0.6, 1.0, 1500), rng.uniform(0.0, 0.55, 1500))
    choice = choose_threshold(scores, correct)
    embedder = Embedder.load(embedder_file)
    vp = voter.save(folder / "voter.txt")
    pp = pooler.save(folder / "pooler.pt")
    bundle = Bundle(
        root=folder,
        embedder_file=str(embedder_file),
        embedder_version=embedder.version,
        detector_dir=None,
        detector_version="",
        voter_file=vp.name,
        voter_sha256=sha256_file(vp),
        pooler_file=pp.name,
        pooler_sha256=sha256_file(pp),
        features=EMBEDDING_FEATURES,
        preprocess=Preprocess(crop_size=128),
        threshold=choice,
        cal_scores=scores,
        cal_correct=correct,
        train={"note": "test"},
    )
    return bundle.save(folder / "verdict.json"), embedder


def enrolled_gallery(embedder, *, templates: bool = False) -> Gallery:
    """A gallery of :data:`PIPE_TYPES` from two plain renders per side, with the mint's design ids (and their
    template signatures with ``templates``)."""
    from models.synth.mint import generate_mint
    from models.template import signatures
    from models.train.galleries import reference_crops

    mint = generate_mint(12, PIPE_MINT_SEED)
    gallery = Gallery(embedder.embed_dim, embedder.version)
    for tid in PIPE_TYPES:
        coin = mint.by_id(tid)
        for side in (Side.OBVERSE, Side.REVERSE):
            crops = reference_crops(coin, side, 2)
            entries = [GalleryEntry(tid, side, coin.design(side).id) for _ in crops]
            gallery.add(embedder.embed(crops), entries, signatures(crops) if templates else None)
    return gallery


def unit(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to unit length along its last axis, float32."""
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def prototype_gallery(
    dim: int, version: str, rng: np.random.Generator, types: tuple[str, ...] = PIPE_TYPES, noise: float = 0.15
) -> tuple[Gallery, dict[str, np.ndarray]]:
    """A gallery of four types in two families (``types[0:2]`` share the obverse ``f0-obv``, ``types[2:4]``
    ``f1-obv``; each type has its own reverse ``<type>-rev``), three references a side around random unit
    prototypes, and the prototypes by design name."""
    protos = {f"{t}-rev": unit(rng.normal(size=dim)) for t in types}
    protos |= {"f0-obv": unit(rng.normal(size=dim)), "f1-obv": unit(rng.normal(size=dim))}
    gallery = Gallery(dim, version)
    for k, t in enumerate(types):
        for side, design in ((Side.REVERSE, f"{t}-rev"), (Side.OBVERSE, f"f{k // 2}-obv")):
            gallery.add(unit(protos[design] + noise * rng.normal(size=(3, dim))), [GalleryEntry(t, side, design)] * 3)
    return gallery, protos


def plain_coins(embeddings: np.ndarray, focus: float = 5.0) -> CupCoins:
    """A cup's coins as the detector would hand them over in plain view: these embeddings, confidence 0.95, none
    partial, each wholly visible, no diameter, in focus."""
    n = int(embeddings.shape[0])
    return CupCoins(
        np.asarray(embeddings, np.float32),
        np.full(n, 0.95, np.float32),
        np.zeros(n, bool),
        np.ones(n, np.float32),
        np.full(n, np.nan, np.float32),
        np.full(n, focus, np.float32),
    )
