"""Fenced outputs: an attempt writes only under its own prefix; the task's output is published
from there only by the attempt whose success was committed under a current lease.

    <output_uri>/<task_id>/.attempts/<lease token>/…   an attempt's uploads
    <output_uri>/<task_id>/…                           the task's output

The success transaction (guarded by the lease token, so at most one attempt ever commits it)
stages a *publish* job in the outbox: copy the attempt's objects to the final keys (server-side,
the manifests last, so a player that finds one finds everything), then delete every
attempt prefix of the task. The worker runs the job at once; if it dies first, any worker's
relay runs it (the job is idempotent). Attempts that fail, are fenced off or cancelled delete
their own prefix; a settled task's leftovers (of crashed attempts) go with a *cleanup* job.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from framepress.service.errors import SourceMissing
from framepress.service.storage import join_uri

ATTEMPTS_DIR = ".attempts"
# The HLS master playlist and the DASH manifest: what players open first.
MANIFESTS = ("master.m3u8", "manifest.mpd")


def task_prefix(output_uri: str, task_id: str) -> str:
    return join_uri(output_uri, task_id)


def attempts_root(prefix: str) -> str:
    return join_uri(prefix, ATTEMPTS_DIR)


def attempt_prefix(prefix: str, token: int) -> str:
    return join_uri(prefix, ATTEMPTS_DIR, str(token))


def publish(storage_router: Any, src_prefix: str, dst_prefix: str, *, concurrency: int = 8) -> int:
    """Copy the objects under `src_prefix` to the same names under `dst_prefix`, manifests
    last, then delete every attempt prefix under `dst_prefix`. Returns the number
    copied. Safe to run again, also concurrently: a rerun finds what is left."""
    storage = storage_router.for_uri(src_prefix)
    marker = src_prefix.rstrip("/") + "/"
    names = [t.uri.split(f"/{ATTEMPTS_DIR}/", 1)[1].split("/", 1)[1]
             for t in storage.list(marker)]
    names = sorted(names)
    rest = [n for n in names if n.rsplit("/", 1)[-1] not in MANIFESTS]
    masters = [n for n in names if n.rsplit("/", 1)[-1] in MANIFESTS]
    try:
        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            for batch in (rest, masters):
                list(pool.map(lambda n: storage.copy(join_uri(src_prefix, n),
                                                     join_uri(dst_prefix, n)), batch))
    except SourceMissing:
        # Another run of this job finished first and removed the attempt's objects.
        return 0
    storage.delete_prefix(attempts_root(dst_prefix))
    return len(names)


def cleanup(storage_router: Any, prefix: str) -> int:
    """Delete everything under `prefix` (an attempt's, or all attempts' of a task)."""
    return storage_router.for_uri(prefix).delete_prefix(prefix)


__all__ = ["ATTEMPTS_DIR", "task_prefix", "attempts_root", "attempt_prefix", "publish", "cleanup"]
