"""A task's output files served to the page's player: only what lies under
`<output_uri>/<task_id>/`, read from local files or S3."""
from __future__ import annotations

import mimetypes
import posixpath
from typing import Optional

from framepress.service.storage.local import file_path

TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".m4s": "video/iso.segment",
         ".mp4": "video/mp4", ".ts": "video/mp2t", ".mpd": "application/dash+xml",
         ".vtt": "text/vtt", ".jpg": "image/jpeg", ".png": "image/png"}


class OutputMissing(Exception):
    pass


def safe_relative(path: str) -> Optional[str]:
    """`path` normalised, or None when it would leave the task's folder."""
    norm = posixpath.normpath("/" + path).lstrip("/")
    if not norm or norm.startswith("..") or "\\" in path or "\x00" in path:
        return None
    return norm


def content_type(path: str) -> str:
    ext = posixpath.splitext(path)[1].lower()
    return TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def read(output_uri: str, task_id: str, relative: str, s3_client=None) -> bytes:
    """The bytes of `<output_uri>/<task_id>/<relative>`; OutputMissing if there are none.
    `s3_client`: a boto3 S3 client to reuse (one is made otherwise)."""
    uri = f"{output_uri.rstrip('/')}/{task_id}/{relative}"
    if uri.startswith("file://"):
        try:
            return file_path(uri).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise OutputMissing(relative) from None
    if uri.startswith("s3://"):
        from botocore.exceptions import ClientError
        from framepress.service.storage.s3 import S3Storage, split_s3_uri
        bucket, key = split_s3_uri(uri)
        client = s3_client or S3Storage().client
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
                raise OutputMissing(relative) from None
            raise
    raise OutputMissing(relative)


__all__ = ["read", "safe_relative", "content_type", "OutputMissing"]
