"""The content-addressed image store: names are hashes, writes are atomic, interrupted writes leave nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from db import store as store_module
from db.repository import VerdictRepository
from db.store import ContentStore, ref_for, sha256_hex
from tests.db.factories import make_jpeg, make_record


def test_put_writes_at_the_content_address(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = make_jpeg(1)
    blob = store.put(data, "jpg")
    digest = sha256_hex(data)
    assert blob.sha256 == digest and blob.size_bytes == len(data)
    assert blob.ref == f"captures/{digest[:2]}/{digest[2:]}.jpg"
    assert (tmp_path / blob.ref).read_bytes() == data
    assert store.put(data, "jpg") == blob  # same bytes, same file
    assert [ref for ref, _ in store.iter_refs()] == [blob.ref]


def test_interrupted_write_leaves_neither_file_nor_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ContentStore(tmp_path)
    data = make_jpeg(2)

    def power_cut(src: object, dst: object) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(store_module.os, "replace", power_cut)
    with pytest.raises(OSError, match="disk went away"):
        store.put(data, "jpg")
    monkeypatch.setattr(store_module.os, "replace", os.replace)
    assert not (tmp_path / ref_for(sha256_hex(data), "jpg")).exists()
    assert list(store.iter_temp_files()) == [] and list(store.iter_refs()) == []


def test_refs_are_checked(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    for bad in ("../etc/passwd", "captures/../../x", "other/ab/cd.jpg"):
        with pytest.raises(ValueError):
            store.path(bad)
    with pytest.raises(ValueError):
        ref_for("ABC", "jpg")
    with pytest.raises(ValueError):
        ref_for("0" * 64, "j/g")


def test_reusing_a_file_renews_its_time_so_clean_ups_spare_it(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = make_jpeg(3)
    path = store.path(store.put(data, "jpg").ref)
    os.utime(path, (1_000_000, 1_000_000))  # written long ago
    assert store.put(data, "jpg").ref == ref_for(sha256_hex(data), "jpg")  # another cup with the same bytes
    assert path.stat().st_mtime > 1_000_000 + 3600


def test_a_file_at_the_address_with_other_bytes_is_written_again(tmp_path: Path) -> None:
    """Same size, other bytes (zero-filled blocks, a damaged copy put back): the name is a promise of the bytes."""
    store = ContentStore(tmp_path)
    data = make_jpeg(4)
    path = tmp_path / ref_for(sha256_hex(data), "jpg")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\0" * len(data))
    blob = store.put(data, "jpg")
    assert store.read(blob.ref) == data and sha256_hex(path.read_bytes()) == blob.sha256
    assert list(store.iter_temp_files()) == []


def test_a_verdict_never_names_a_photograph_other_than_its_own(repo: VerdictRepository) -> None:
    record = make_record(5)
    target = repo.store.path(ref_for(sha256_hex(record.image_jpeg), "jpg"))
    target.parent.mkdir(parents=True)
    target.write_bytes(bytes(reversed(record.image_jpeg)))  # as long as the photograph, not it
    verdict_id = repo.log_verdict(record)
    [item] = [i for i in repo.review_queue(limit=10, margin=1.0) if i.verdict_id == verdict_id]
    assert item.capture_ref is not None and repo.read_blob(item.capture_ref) == record.image_jpeg
