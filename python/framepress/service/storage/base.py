"""The object-store interface the worker uses: pull one object, push a directory of outputs."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Transfer:
    uri: str
    bytes: int


class Storage(abc.ABC):
    scheme: str = ""

    @abc.abstractmethod
    def download(self, uri: str, dest: Path) -> Transfer:
        """Copy the object at `uri` to `dest`; `SourceMissing` when it does not exist, size verified."""

    @abc.abstractmethod
    def read_range(self, uri: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of the object at `uri` (a ranged GET for S3); `SourceMissing` when
        it does not exist, a `StorageError` when fewer come back."""

    @abc.abstractmethod
    def upload(self, src: Path, uri: str) -> Transfer:
        """Copy the file `src` to `uri` (overwriting), size verified."""

    @abc.abstractmethod
    def list(self, prefix_uri: str) -> list[Transfer]:
        """Objects under `prefix_uri` (for checks and tests)."""

    @abc.abstractmethod
    def copy(self, src_uri: str, dst_uri: str) -> Transfer:
        """Copy one object within the store (server-side for S3); `SourceMissing` if absent."""

    @abc.abstractmethod
    def delete_prefix(self, prefix_uri: str) -> int:
        """Delete every object under `prefix_uri/`; returns how many."""

    def close(self) -> None:
        pass


def join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])
