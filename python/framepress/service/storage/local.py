"""`file://` URIs: local files, for embedded mode only (a fleet shares no filesystem)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from framepress.service.errors import SourceMissing, StorageError
from framepress.service.storage.base import Storage, Transfer


def file_path(uri: str) -> Path:
    parts = urlsplit(uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise StorageError(f"{uri!r} is not a local file:///path URI")
    return Path(unquote(parts.path))


class LocalStorage(Storage):
    scheme = "file"

    def download(self, uri: str, dest: Path) -> Transfer:
        src = file_path(uri)
        if not src.is_file():
            raise SourceMissing(f"source {uri} does not exist", step="pull")
        try:
            shutil.copyfile(src, dest)
        except OSError as exc:
            raise StorageError(f"cannot read {uri}: {exc.strerror}", step="pull") from None
        return Transfer(uri, _verified_size(dest, src.stat().st_size, uri))

    def read_range(self, uri: str, start: int, end: int) -> bytes:
        src = file_path(uri)
        if not src.is_file():
            raise SourceMissing(f"source {uri} does not exist", step="pull")
        with open(src, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        if len(data) != end - start:
            raise StorageError(f"{uri}: read {len(data)} bytes of the {end - start} at {start}", step="pull")
        return data

    def upload(self, src: Path, uri: str) -> Transfer:
        dest = file_path(uri)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.part")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)  # readers never see a half-written file
        except OSError as exc:
            raise StorageError(f"cannot write {uri}: {exc.strerror}", step="upload") from None
        return Transfer(uri, _verified_size(dest, src.stat().st_size, uri))

    def list(self, prefix_uri: str) -> list[Transfer]:
        root = file_path(prefix_uri)
        if not root.exists():
            return []
        return [Transfer(p.as_uri(), p.stat().st_size) for p in sorted(root.rglob("*")) if p.is_file()]


    def copy(self, src_uri: str, dst_uri: str) -> Transfer:
        src = file_path(src_uri)
        if not src.is_file():
            raise SourceMissing(f"{src_uri} does not exist", step="publish")
        return self.upload(src, dst_uri)

    def delete_prefix(self, prefix_uri: str) -> int:
        root = file_path(prefix_uri)
        if not root.is_dir():
            return 0
        n = sum(1 for p in root.rglob("*") if p.is_file())
        shutil.rmtree(root, ignore_errors=True)
        return n


def _verified_size(path: Path, expected: int, uri: str) -> int:
    got = path.stat().st_size
    if got != expected:
        raise StorageError(f"{uri}: copied {got} bytes, expected {expected}")
    return got
