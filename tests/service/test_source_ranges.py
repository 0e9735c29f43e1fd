"""Reading only some bytes of a source: the MP4's boxes, ranged reads from S3 (moto) and files."""
from __future__ import annotations

import struct

import pytest

from framepress.service.errors import SourceMissing, StorageError
from framepress.service.split.source_ranges import fetch, header_ranges, merge, write_sparse
from framepress.service.storage.local import LocalStorage
from framepress.service.storage.s3 import S3Storage

from .conftest import BUCKET


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_header_ranges_are_every_box_but_the_media_data(tmp_path):
    mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + 1000) + bytes(1000)   # a 64-bit size
    data = box(b"ftyp", b"isom" * 4) + mdat + box(b"moov", b"x" * 50)
    path = tmp_path / "a.mp4"
    path.write_bytes(data)
    assert header_ranges(path) == [(0, 24 + 16), (24 + 1016, len(data))]


def test_a_box_smaller_than_its_header_is_refused(tmp_path):
    path = tmp_path / "bad.mp4"
    path.write_bytes(box(b"ftyp", b"isom") + struct.pack(">I4s", 4, b"moov") + bytes(8))
    with pytest.raises(ValueError, match="malformed box at byte 12"):
        header_ranges(path)


def test_merge_joins_touching_and_overlapping_ranges():
    assert merge([(10, 20), (0, 5), (5, 8), (15, 30), (40, 50)]) == [(0, 8), (10, 30), (40, 50)]


def test_a_sparse_copy_has_the_ranges_in_place(tmp_path):
    data = bytes(range(256)) * 4
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    dest = tmp_path / "sparse.bin"
    got = fetch(LocalStorage(), src.as_uri(), dest, len(data), [[0, 10], [500, 600]])
    copy = dest.read_bytes()
    assert got == 110 and len(copy) == len(data)
    assert copy[:10] == data[:10] and copy[500:600] == data[500:600] and copy[10:500] == bytes(490)


def test_a_short_read_fails_the_copy(tmp_path):
    with pytest.raises(OSError, match="read 3 bytes of the 10 at 0"):
        write_sparse(tmp_path / "x", 100, [(0, 10)], lambda start, end: b"abc")


def test_local_ranged_reads_fail_for_what_is_not_there(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(100))
    with pytest.raises(SourceMissing):
        LocalStorage().read_range((tmp_path / "gone.bin").as_uri(), 0, 10)
    with pytest.raises(StorageError, match="read 10 bytes of the 20 at 90"):
        LocalStorage().read_range(src.as_uri(), 90, 110)


def test_s3_ranged_reads(s3):
    key = "ranges/object.bin"
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(range(200)))
    storage = S3Storage()
    uri = f"s3://{BUCKET}/{key}"
    assert storage.read_range(uri, 10, 20) == bytes(range(10, 20))
    with pytest.raises(SourceMissing):
        storage.read_range(f"s3://{BUCKET}/ranges/gone.bin", 0, 10)
    with pytest.raises(StorageError, match="read 10 bytes of the 20 at 190"):
        storage.read_range(uri, 190, 210)          # S3 returns what there is
    with pytest.raises(StorageError, match="cannot read"):
        storage.read_range(uri, 300, 310)          # InvalidRange


def test_s3_away_is_a_storage_error():
    import boto3
    from botocore.config import Config

    from support.services import free_port
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    with pytest.raises(StorageError, match="cannot read"):
        S3Storage(client=client).read_range(f"s3://{BUCKET}/ranges/object.bin", 0, 10)
