"""The split step: a task whose source is long enough becomes a parent of chunk tasks.

Run by the worker that took the task, after pulling the source: it plans the chunks, finds the
bytes each chunk's range reads (the MP4 header and the range's span, so a chunk worker pulls
only those), encodes the audio once for the whole source (every track the ladder's audio policy
keeps, as an unsplit task would; chunks are video only) into the parent's scratch prefix, and
commits the chunks with their messages (`chunks.create`).

A source without a sample index (MPEG-TS, Matroska) is first copied, packets as they are, into an
MP4 in the parent's scratch prefix, and everything after reads that copy: its chunks, the audio.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Optional

from framepress.service.split import chunks, stitching
from framepress.service.split.plan import SplitRule, chunk_ranges
from framepress.service.split.source_ranges import INDEXED_FORMATS, header_ranges, merge, total
from framepress.service.storage import join_uri
from framepress.service.tasks import EventKind

log = logging.getLogger("framepress.worker")


def split(run: Any, source: Path, scratch: Path, ladder: Any, rule: SplitRule) -> Optional[dict[str, Any]]:
    """Split `run`'s task if `rule` says so; the `split` event's data then, else None (the
    worker transcodes it whole)."""
    import framepress
    from framepress import parts
    rule = rule.for_task(run.spec.options)
    if rule.split_seconds <= 0:
        return None
    info = framepress.probe(source)
    ranges = chunk_ranges(info.duration, rule.chunk_seconds, ladder.segment_seconds, ladder.gop_seconds)
    if rule.why_not(info.duration) or len(ranges) < 2:
        return None
    run.stage = "split"
    t = time.monotonic()
    source_uri, source_bytes = run.spec.source_uri, source.stat().st_size
    if info.format not in INDEXED_FORMATS:
        source = _indexed_copy(run, source, scratch, ladder, info.format)
        if source is None:
            return None
        source_uri = chunks.source_copy_uri(run.spec)
    per_title: dict[str, Any] = {}
    if ladder.per_title:   # chosen once, from the whole source: every chunk encodes the same ladder
        from framepress.pertitle import choose_ladder
        choice = choose_ladder(source, ladder, cancel=run.cancel_token)
        ladder, per_title = choice.ladder, choice.to_dict()
    # What is pulled: the whole source once, by this step; then by each chunk, its range of the
    # MP4 it reads (the source, or the copy) and that MP4's header. Uploading the copy pulls nothing.
    size = source.stat().st_size
    header = header_ranges(source)
    planned = []
    for start, end in ranges:
        span = parts.range_span(source, start, end)
        reads = merge(header + [(span.first, span.end)])
        planned.append({"start": start, "end": end, "source_uri": source_uri,
                        "options": {"source_size": size, "source_ranges": [list(r) for r in reads]},
                        "ladder": ladder.to_dict(),
                        "plan": {"bytes": total(reads)}})
    audio = parts.write_audio(source, scratch / "audio", bitrate=ladder.audio.bitrate,
                              segment_seconds=ladder.segment_seconds, tracks=ladder.audio.tracks)
    run.store.check(run.lease)
    if source_uri != run.spec.source_uri:
        run.storage.for_uri(source_uri).upload(source, source_uri)
    prefix = chunks.audio_prefix(run.spec)
    storage = run.storage.for_uri(prefix)
    audio_files = sorted(p for p in (scratch / "audio").rglob("*") if p.is_file())
    for p in audio_files:
        storage.upload(p, join_uri(prefix, p.relative_to(scratch / "audio").as_posix()))
    run.seconds["split"] = time.monotonic() - t
    copied = {"source_copy": source_uri, "copy_bytes": size} if source_uri != run.spec.source_uri else {}
    data = {"duration": info.duration, "source_bytes": source_bytes, **copied, "chunk_seconds": rule.chunk_seconds,
            "split_seconds": rule.split_seconds, "audio": dataclasses.asdict(audio.audio),
            "audio_tracks": [stitching.track_data(a) for a in audio.audio_renditions],
            "audio_prefix": prefix if audio_files else None, "seconds": round(run.seconds["split"], 4),
            **({"per_title": per_title} if per_title else {})}
    ids = chunks.create(run.store, run.lease, run.spec, planned, rule.queue, data)
    for chunk_id in ids:
        run.publish_output(chunk_id)  # the chunks' messages, staged with them, go out now
    return {**data, "chunks": ids}


def _indexed_copy(run: Any, source: Path, scratch: Path, ladder: Any, container: str) -> Optional[Path]:
    """An MP4 copy of `source` (whose `container` has no sample index) in `scratch` for the chunks
    to read; None, with a `not_split` event saying why, when MP4 cannot hold its video or a kept
    audio track (the worker then transcodes it whole)."""
    from framepress import parts
    from framepress.errors import InputError
    copy = scratch / "indexed.mp4"
    try:
        made = parts.copy_to_mp4(source, copy, tracks=ladder.audio.tracks)
    except InputError as exc:
        copy.unlink(missing_ok=True)
        run._event(EventKind.NOT_SPLIT, f"transcoded whole: a {container} source is split through an MP4 "
                                        f"copy, and {exc}", container=container, reason=str(exc))
        return None
    for note in made.left_out:
        log.info("the MP4 copy leaves out %s", note, extra={"task_id": run.lease.task_id})
    return copy


__all__ = ["split"]
