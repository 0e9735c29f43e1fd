"""A projection on paper of a split task's wall time on many workers, from one measured run.

    wall(N) = pickup + pull and split + ceil(C / N) × (engine per chunk + fixed per chunk)
              + requeue and pickup + stitch and upload + commit

with C = ceil(D / chunk length) chunks of a D-second source. What the measurement gives and how
each term is carried to another source length:
- engine per chunk: the engine seconds per second of source (all chunks of the measured run) ×
  the chunk length: the same for every chunk, so only the number of rounds ceil(C / N) grows;
- fixed per chunk: a chunk's wall in its worker less its engine time (lease, pull of its byte
  ranges, upload, database), plus the gap before its worker takes it (the message's hop, the
  take): the same for every chunk, paid once per round;
- pull and split (the whole source pulled by one worker, the audio encoded once, the chunk
  plan) and stitch and upload (every chunk's outputs pulled, remuxed, uploaded again): one
  worker each, scaled in proportion to the source's length;
- pickup, requeue and pickup, commit: constant.
A whole task on one worker scales with the length as a whole. Nothing is modelled of what many
workers share: S3's and the database's throughput, the broker, other tasks.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Measured:
    source_s: float                # the measured source's length
    chunk_s: float                 # chunk length asked for
    whole_wall_s: float            # the whole task's wall on one worker
    pickup_s: float
    pull_and_split_s: float
    engine_per_source_s: float     # engine seconds per second of source, in chunks
    fixed_per_chunk_s: float       # overhead + gap
    requeue_s: float
    stitch_and_upload_s: float
    commit_s: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def chunk_count(source_s: float, chunk_s: float) -> int:
    return max(1, math.ceil(source_s / chunk_s - 1e-9))


def split_wall(m: Measured, source_s: float, workers: int) -> dict[str, Any]:
    """The projected wall of a `source_s`-second source split over `workers` workers, by term."""
    scale = source_s / m.source_s
    chunks = chunk_count(source_s, m.chunk_s)
    rounds = math.ceil(chunks / workers)
    per_chunk = m.engine_per_source_s * m.chunk_s + m.fixed_per_chunk_s
    terms = {"serial before": m.pickup_s + m.pull_and_split_s * scale,
             "chunks": rounds * per_chunk,
             "serial after": m.requeue_s + m.stitch_and_upload_s * scale + m.commit_s}
    return {"workers": workers, "chunks": chunks, "rounds": rounds, "terms": terms,
            "wall_s": sum(terms.values())}


def whole_wall(m: Measured, source_s: float) -> float:
    return m.whole_wall_s * source_s / m.source_s


def projection(m: Measured, source_s: float, workers: tuple[int, ...]) -> dict[str, Any]:
    """Rows for `workers`, each with its speed-up over one worker transcoding the source whole,
    and the floor: a worker for every chunk, the wall no more workers shorten."""
    whole = whole_wall(m, source_s)
    rows = [split_wall(m, source_s, n) for n in workers]
    floor = split_wall(m, source_s, chunk_count(source_s, m.chunk_s))   # a worker for every chunk
    for r in rows + [floor]:
        r["speedup"] = whole / r["wall_s"]
    return {"source_s": source_s, "whole_wall_s": whole, "rows": rows, "floor": floor}


__all__ = ["Measured", "chunk_count", "split_wall", "whole_wall", "projection"]
