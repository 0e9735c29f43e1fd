"""The work of one taken task, step by step, each step an event (DESIGN §3):
`details_loaded` → `pulled` → `transcoded` → `uploaded` → `succeeded`.

Everything happens in a scratch directory that is removed whatever happens (and, should the
worker itself die, by the next worker to start: see `scratch`). `stage` always names
the step in progress, so a failure is reported against it.

Uploads are fenced (`attempt_output`): they go under the attempt's own prefix, and become the
task's output only through the publish job staged with the success commit, which the lease
guards. An attempt that fails or is fenced off deletes its prefix.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from framepress.service import attempt_output
from framepress.scaling import metrics
from framepress.ladder import load_ladder
from framepress.thumbnails import DEFAULT_INTERVAL_S
from framepress.service.failure.stage_writes import retry_stage_write
from framepress.service.outbox import Outgoing
from framepress.service.scratch import scratch_dir
from framepress.service.split import chunks, source_ranges, splitting, stitching
from framepress.service.split.plan import SplitRule
from framepress.service.db import TaskKind
from framepress.service.storage import StorageRouter, Transfer, join_uri
from framepress.service.tasks import EventKind, Lease, TaskSpec, TaskStore

log = logging.getLogger("framepress.worker")


class TaskRun:
    def __init__(self, store: TaskStore, storage: StorageRouter, lease: Lease, spec: TaskSpec, *,
                 scratch_root: str, hwaccel: str, upload_concurrency: int, cancel_token: Any,
                 on_progress: Callable[[float], None], received_at: float,
                 publish_output: Callable[[str], Any] = lambda task_id: None,
                 on_engine: Callable[[bool], None] = lambda running: None,
                 split_rule: SplitRule = SplitRule()):
        """`publish_output(task_id)` runs the publish job staged with the success (the
        worker's outbox relay); if it does not, a relay runs it later. `on_engine` is told when
        the engine stage starts and ends (liveness times only that stage)."""
        self.store, self.storage, self.lease, self.spec = store, storage, lease, spec
        self.publish_output = publish_output
        self.prefix = attempt_output.task_prefix(spec.output_uri, spec.id)
        self.attempt_prefix = attempt_output.attempt_prefix(self.prefix, lease.token)
        self._uploading = False
        self.scratch_root, self.hwaccel = scratch_root, hwaccel
        self.upload_concurrency = upload_concurrency
        self.cancel_token, self.on_progress = cancel_token, on_progress
        self.on_engine = on_engine    # told when the engine stage starts and ends (liveness)
        self.received_at = received_at
        self.stage = "details"
        self.seconds: dict[str, float] = {}
        self.split_rule = split_rule   # whether a long source is split into chunk tasks

    def _event(self, kind: str, message: str = "", **data: Any) -> None:
        # A finished stage's record survives a database blip (see `stage_writes`).
        retry_stage_write(lambda: self.store.event(self.lease, kind, stage=self.stage,
                                                   message=message, data=data))
        log.info(message or kind, extra={"task_id": self.lease.task_id,
                                         "worker_id": self.lease.worker_id, "kind": kind,
                                         "attempt": self.lease.attempt, "data": data})

    def run(self) -> dict[str, Any]:
        t = time.monotonic()
        ladder = load_ladder(self.spec.ladder)
        self._event(EventKind.DETAILS_LOADED, source_uri=self.spec.source_uri,
                    output_uri=self.spec.output_uri, ladder=ladder.name,
                    rungs=[r.name for r in ladder.rungs], priority=self.spec.priority,
                    max_attempts=self.spec.max_attempts, options=self.spec.options)
        self.seconds["details"] = time.monotonic() - t
        try:
            with scratch_dir(self.scratch_root, self.spec.id) as scratch:
                if self.spec.kind == TaskKind.PARENT:   # its chunks are done, or it was retried
                    if chunks.unfinished(self.store, self.spec.id):
                        return self._requeue_chunks()
                    out, result, stitched, copies = stitching.stitch(self, scratch)
                    self._event(EventKind.STITCHED, f"{stitched['chunks']} chunks in {stitched['seconds']} s",
                                **stitched)
                else:
                    copies = {}
                    source = self._pull(scratch)
                    if self.spec.kind == TaskKind.WHOLE:
                        split = splitting.split(self, source, scratch, ladder, self.split_rule)
                        if split is not None:
                            return split
                    out = scratch / "out"
                    result = self._transcode(source, out, ladder)
                uploaded = self._upload(out, copies)
            self.stage = "succeed"
            data = self._succeed(result, uploaded)
        except BaseException:
            self._discard_attempt()
            raise
        self.publish_output(self.spec.id)
        if self.spec.parent_id:
            self.publish_output(self.spec.parent_id)   # queued to stitch if this was the last chunk
        return data

    def _requeue_chunks(self) -> dict[str, Any]:
        """A retried parent: its chunks that did not succeed run again, and it waits for them."""
        self.stage = "chunks"
        ids = chunks.requeue_unfinished(self.store, self.lease, self.spec, self.split_rule.queue)
        for chunk_id in ids:
            self.publish_output(chunk_id)
        return {"requeued_chunks": ids}

    def _discard_attempt(self) -> None:
        """This attempt will not be the output: remove what it uploaded. Best effort: leftovers
        (S3 away, or a crash) go with the job staged when the task settles."""
        if not self._uploading:
            return
        try:
            attempt_output.cleanup(self.storage, self.attempt_prefix)
        except Exception as exc:  # noqa: BLE001  the failure being handled matters more
            log.warning("could not delete the attempt's objects under %s: %r",
                        self.attempt_prefix, exc, extra={"task_id": self.lease.task_id,
                                                         "worker_id": self.lease.worker_id})

    def _pull(self, scratch: Path) -> Path:
        self.stage = "pull"
        t = time.monotonic()
        suffix = PurePosixPath(self.spec.source_uri).suffix[:8]
        dest = scratch / f"source{suffix}"
        storage = self.storage.for_uri(self.spec.source_uri)
        reads = self.spec.options.get("source_ranges") if self.spec.kind == TaskKind.CHUNK else None
        if reads:   # only the bytes of this chunk's range, and the header
            got = source_ranges.fetch(storage, self.spec.source_uri, dest, int(self.spec.options["source_size"]),
                                      reads)
            transfer = Transfer(self.spec.source_uri, got)
        else:
            transfer = storage.download(self.spec.source_uri, dest)
        self.seconds["pull"] = time.monotonic() - t
        self._event(EventKind.PULLED, f"{transfer.bytes} bytes in {self.seconds['pull']:.3f} s",
                    uri=transfer.uri, bytes=transfer.bytes, seconds=round(self.seconds["pull"], 4))
        return dest

    def _transcode(self, source: Path, out_dir: Path, ladder):
        import framepress  # the native engine loads here, not when the CLI starts
        self.stage = "transcode"
        t = time.monotonic()
        self.on_engine(True)
        try:
            chunk = self.spec.kind == TaskKind.CHUNK   # video only, no manifest nor thumbnails of its own
            thumbnails = 0.0 if chunk else float(self.spec.options.get("thumbnail_seconds", DEFAULT_INTERVAL_S))
            result = framepress.transcode(source, out_dir, ladder, hls=True, dash=not chunk, thumbnails=thumbnails,
                                          quality=not chunk and bool(self.spec.options.get("quality", False)),
                                          hwaccel=self.spec.options.get("hwaccel", self.hwaccel),
                                          on_progress=lambda p: self.on_progress(p.fraction),
                                          cancel=self.cancel_token,
                                          start=self.spec.range_start if chunk else None,
                                          end=self.spec.range_end if chunk else None)
        finally:
            self.on_engine(False)
        self.seconds["transcode"] = time.monotonic() - t
        if self.seconds["transcode"] > 0:
            metrics.transcode_fps(result.decoded_frames / self.seconds["transcode"])
        rends = [{"name": r.name, "width": r.width, "height": r.height, "frames": r.frames,
                  "bytes": r.bytes, "bitrate": r.bitrate, "encode_fps": round(r.encode_fps, 2),
                  "codec": r.codec, "codec_string": r.codec_string, "has_audio": r.has_audio}
                 for r in result.renditions]
        self._event(EventKind.TRANSCODED,
                    f"{len(rends)} renditions on {result.hwaccel_used} in "
                    f"{self.seconds['transcode']:.3f} s",
                    renditions=rends, hwaccel_used=result.hwaccel_used,
                    hwaccel_reason=result.hwaccel_reason, decoded_frames=result.decoded_frames,
                    engine_seconds={k: round(v, 4) for k, v in result.seconds.items()},
                    seconds=round(self.seconds["transcode"], 4),
                    audio=dataclasses.asdict(result.audio), warnings=result.warnings,
                    **({"per_title": result.per_title} if result.per_title else {}))
        for warning in [*result.warnings, *result.audio.warnings]:
            log.warning(warning, extra={"task_id": self.lease.task_id,
                                        "worker_id": self.lease.worker_id, "kind": "media_warning"})
        return result

    def _upload(self, out_dir: Path, copies: dict[str, str]) -> dict[str, Any]:
        """Every file under `out_dir` to the attempt's prefix; those whose key is in `copies`
        are stand-ins, their objects copied within the store from the URI given."""
        self.stage = "upload"
        # Fencing before any object is written: a worker whose lease was taken over uploads nothing.
        self.store.check(self.lease)
        t = time.monotonic()
        prefix, staging = self.prefix, self.attempt_prefix
        files = sorted(p for p in out_dir.rglob("*") if p.is_file())
        storage = self.storage.for_uri(staging)
        keys = [p.relative_to(out_dir).as_posix() for p in files]
        self._uploading = True

        def put(path: Path, key: str) -> Transfer:
            target = join_uri(staging, key)
            return storage.copy(copies[key], target) if key in copies else storage.upload(path, target)
        with ThreadPoolExecutor(max(1, self.upload_concurrency)) as pool:
            transfers = list(pool.map(put, files, keys))
        self.seconds["upload"] = time.monotonic() - t
        total = sum(tr.bytes for tr in transfers)
        copied = sum(tr.bytes for tr, k in zip(transfers, keys) if k in copies)
        within = f" ({copied} copied within the store)" if copies else ""
        self._event(EventKind.UPLOADED, f"{len(keys)} objects, {total} bytes{within} in "
                    f"{self.seconds['upload']:.3f} s", prefix=prefix, attempt_prefix=staging,
                    keys=keys, objects=len(keys), bytes=total, copied_bytes=copied,
                    seconds=round(self.seconds["upload"], 4))
        return {"prefix": prefix, "keys": keys, "bytes": total}

    def _succeed(self, result, uploaded: dict[str, Any]) -> dict[str, Any]:
        # A chunk's outputs are scratch that only its parent's stitch reads: they stay where this
        # attempt wrote them (its renditions rows say where), with no copy to publish them, so its
        # worker takes the next chunk at once.
        in_place = self.spec.kind == TaskKind.CHUNK
        prefix = self.attempt_prefix if in_place else uploaded["prefix"]
        targets = _targets(result, load_ladder(self.spec.ladder))
        rows = [{"name": r.name, "uri": join_uri(prefix, f"{r.name}.mp4"),
                 "playlist_uri": join_uri(prefix, "hls", f"{r.name}.m3u8") if r.playlist else None,
                 "width": r.width, "height": r.height, "frames": r.frames, "bytes": r.bytes,
                 "bitrate": r.bitrate, "codec": r.codec or None, "codec_string": r.codec_string or None,
                 "psnr": round(r.psnr, 3) if r.psnr else None, "ssim": round(r.ssim, 5) if r.ssim else None,
                 **targets.get(r.name, {})}
                for r in result.renditions]
        wall = time.monotonic() - self.received_at
        engine = self.seconds.get("transcode", 0.0)
        data = {"wall_seconds": round(wall, 4), "engine_seconds": round(engine, 4),
                "overhead_seconds": round(wall - engine, 4),
                "stages": {k: round(v, 4) for k, v in self.seconds.items()},
                "master_playlist": join_uri(prefix, "hls", "master.m3u8") if result.hls_master else None,
                "dash_manifest": join_uri(prefix, "dash", "manifest.mpd") if result.dash_manifest else None,
                **_thumbnail_uris(prefix, result.thumbnails),
                "renditions": [r["uri"] for r in rows]}
        # The lease guard and the publish job in one transaction: only the attempt that commits
        # success ever writes the task's output keys.
        outgoing = [] if in_place else [Outgoing.publish_objects(self.attempt_prefix, prefix)]
        if self.spec.kind == TaskKind.PARENT:   # the chunks' outputs and the audio: scratch
            outgoing.append(Outgoing.delete_objects(chunks.chunks_root(self.spec)))
        then = (chunks.queue_parent_when_done(self.split_rule.queue, self.spec)
                if self.spec.kind == TaskKind.CHUNK else None)
        retry_stage_write(
            lambda: self.store.succeed(self.lease, rows, data, outgoing=outgoing, then=then),
            already_done=lambda: self.store.succeeded_under(self.lease))
        log.info("succeeded in %.3f s (engine %.3f s)", wall, engine,
                 extra={"task_id": self.lease.task_id, "worker_id": self.lease.worker_id,
                        "kind": EventKind.SUCCEEDED, "attempt": self.lease.attempt, "data": data})
        return data


def _thumbnail_uris(prefix: str, thumbs) -> dict[str, Any]:
    if thumbs is None:
        return {}
    return {"poster": join_uri(prefix, "thumbs", Path(thumbs.poster).name),
            "sprites": [join_uri(prefix, "thumbs", Path(p).name) for p in thumbs.sprites],
            "thumbnails_vtt": join_uri(prefix, "thumbs", Path(thumbs.vtt).name)}


def _targets(result, ladder) -> dict[str, dict[str, Any]]:
    """Per rung name: the bitrate the encoder was asked for and, for a per-title ladder, why."""
    if result.per_title:
        return {c["name"]: {"target_bitrate": c["bitrate"] or None, "choice": c["reason"]}
                for c in result.per_title["rungs"] if c["kept"]}
    return {r.name: {"target_bitrate": r.bitrate or None} for r in ladder.rungs}


__all__ = ["TaskRun"]
