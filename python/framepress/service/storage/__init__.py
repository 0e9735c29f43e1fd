"""Object storage by URI scheme: `s3://` (boto3) and `file://` (embedded mode only)."""
from __future__ import annotations

from urllib.parse import urlsplit

from framepress.service.errors import ConfigError
from framepress.service.storage.base import Storage, Transfer, join_uri

SCHEMES = ("s3", "file")


def check_uri(uri: str, *, allow_files: bool) -> str:
    scheme = urlsplit(uri).scheme
    if scheme not in SCHEMES:
        raise ConfigError(f"{uri!r}: only s3:// and file:// URIs are supported")
    if scheme == "file" and not allow_files:
        raise ConfigError(f"{uri!r}: file:// URIs work only in embedded mode (local broker); "
                          "use s3://")
    return uri


class StorageRouter:
    """Hands out one storage client per scheme, made on first use (boto3 clients are costly)."""

    def __init__(self, *, allow_files: bool, upload_concurrency: int = 8):
        self.allow_files = allow_files
        self.upload_concurrency = upload_concurrency
        self._by_scheme: dict[str, Storage] = {}

    def for_uri(self, uri: str) -> Storage:
        scheme = urlsplit(check_uri(uri, allow_files=self.allow_files)).scheme
        if scheme not in self._by_scheme:
            if scheme == "s3":
                from framepress.service.storage.s3 import S3Storage
                self._by_scheme[scheme] = S3Storage(max_concurrency=self.upload_concurrency)
            else:
                from framepress.service.storage.local import LocalStorage
                self._by_scheme[scheme] = LocalStorage()
        return self._by_scheme[scheme]


__all__ = ["Storage", "Transfer", "StorageRouter", "check_uri", "join_uri"]
