"""`s3://bucket/key` through boto3.

Endpoint, region and credentials come from the standard AWS settings (`AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`, profiles, instance roles ...), never from framepress settings. Large objects
move in parallel multipart transfers; every transfer is checked against the object's size.
"""
from __future__ import annotations

import base64
import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from framepress.service.errors import ConfigError, SourceMissing, StorageError
from framepress.service.storage.base import Storage, Transfer

MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
# Objects below this go up in one PUT carrying Content-MD5, which S3 checks against the body it
# received (and refuses on mismatch) whatever the bucket's encryption; larger ones go multipart
# (boto3 checksums each part) and are then checked by size.
SINGLE_PUT_LIMIT = MULTIPART_THRESHOLD


def split_s3_uri(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"{uri!r} is not an s3://bucket/key URI")
    return parts.netloc, parts.path.lstrip("/")


def _missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


@contextmanager
def _reading(uri: str) -> Iterator[None]:
    """Errors of a read of `uri` as the service's, raised *from* the botocore error: its code
    (SlowDown, AccessDenied ...) is what the failure classifier reads."""
    try:
        yield
    except ClientError as exc:
        if _missing(exc):
            raise SourceMissing(f"source {uri} does not exist", step="pull") from exc
        raise StorageError(f"cannot read {uri}: {exc}", step="pull") from exc
    except (BotoCoreError, OSError) as exc:
        raise StorageError(f"cannot read {uri}: {exc}", step="pull") from exc


class S3Storage(Storage):
    scheme = "s3"

    def __init__(self, client=None, max_concurrency: int = 8):
        # Standard retry mode: throttling and 5xx are retried inside boto3 first.
        self.client = client or boto3.client(
            "s3", config=Config(retries={"mode": "standard", "max_attempts": 5},
                                max_pool_connections=max(10, max_concurrency * 2)))
        self.transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                                       multipart_chunksize=MULTIPART_CHUNK,
                                       max_concurrency=max_concurrency)

    def download(self, uri: str, dest: Path) -> Transfer:
        bucket, key = split_s3_uri(uri)
        with _reading(uri):
            # The size first, so that no GET is begun and abandoned: a small object comes in one
            # GET, a large one in parallel ranged GETs.
            expected = self.client.head_object(Bucket=bucket, Key=key)["ContentLength"]
            if expected < MULTIPART_THRESHOLD:
                resp = self.client.get_object(Bucket=bucket, Key=key)
                with open(dest, "wb") as out:
                    for chunk in resp["Body"].iter_chunks(1024 * 1024):
                        out.write(chunk)
            else:
                self.client.download_file(bucket, key, str(dest), Config=self.transfer)
        size = dest.stat().st_size
        if size != expected:
            raise StorageError(f"{uri}: downloaded {size} bytes, object has {expected}", step="pull")
        return Transfer(uri, size)

    def read_range(self, uri: str, start: int, end: int) -> bytes:
        bucket, key = split_s3_uri(uri)
        with _reading(uri):
            resp = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")
            data = resp["Body"].read()
        if len(data) != end - start:
            raise StorageError(f"{uri}: read {len(data)} bytes of the {end - start} at {start}", step="pull")
        return data

    def upload(self, src: Path, uri: str) -> Transfer:
        bucket, key = split_s3_uri(uri)
        size = src.stat().st_size
        try:
            if size < SINGLE_PUT_LIMIT:
                body = src.read_bytes()
                md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
                self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentMD5=md5,
                                       ContentType=_content_type(src.name))
                return Transfer(uri, size)
            self.client.upload_file(str(src), bucket, key, Config=self.transfer,
                                    ExtraArgs={"ContentType": _content_type(src.name)})
            stored = self.client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot write {uri}: {exc}", step="upload") from exc
        if stored != size:
            raise StorageError(f"{uri}: stored {stored} bytes, sent {size}", step="upload")
        return Transfer(uri, size)

    def list(self, prefix_uri: str) -> list[Transfer]:
        bucket, prefix = split_s3_uri(prefix_uri)
        out: list[Transfer] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [Transfer(f"s3://{bucket}/{o['Key']}", o["Size"]) for o in page.get("Contents", [])]
        return out

    def copy(self, src_uri: str, dst_uri: str) -> Transfer:
        """Server-side: the bytes never leave the store (multipart copy for large objects)."""
        src_bucket, src_key = split_s3_uri(src_uri)
        bucket, key = split_s3_uri(dst_uri)
        try:
            self.client.copy({"Bucket": src_bucket, "Key": src_key}, bucket, key,
                             Config=self.transfer)
            size = self.client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if _missing(exc):
                raise SourceMissing(f"{src_uri} does not exist", step="publish") from exc
            raise StorageError(f"cannot copy {src_uri} to {dst_uri}: {exc}", step="publish") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot copy {src_uri} to {dst_uri}: {exc}", step="publish") from exc
        return Transfer(dst_uri, size)

    def delete_prefix(self, prefix_uri: str) -> int:
        bucket, prefix = split_s3_uri(prefix_uri.rstrip("/") + "/")
        try:
            keys = [t.uri[len(f"s3://{bucket}/"):] for t in self.list(f"s3://{bucket}/{prefix}")]
            for i in range(0, len(keys), 1000):      # DeleteObjects takes 1000 keys at most
                resp = self.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                           "Quiet": True})
                if resp.get("Errors"):
                    raise StorageError(f"cannot delete under {prefix_uri}: {resp['Errors'][:3]}",
                                       step="cleanup")
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot delete under {prefix_uri}: {exc}", step="cleanup") from exc
        return len(keys)


_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".mp4": "video/mp4", ".m4s": "video/iso.segment"}


def _content_type(name: str) -> str:
    return _TYPES.get(Path(name).suffix, "application/octet-stream")
