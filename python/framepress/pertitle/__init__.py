"""Per-title ladders: rung bitrates chosen from the content (a ladder with `per_title` set, such
as the built-in `auto`).

`choose_ladder(source, ladder)` analyses the source once and returns a `LadderChoice` whose
`.ladder` is an ordinary, concrete ladder: `transcode` encodes it, and a task split into chunks
calls this once for the whole source and hands every chunk the same concrete ladder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from framepress.errors import InputError
from framepress.ladder import LadderLike, load_ladder
from framepress.pertitle.decision import TARGET_CRF, LadderChoice, RungChoice, decide
from framepress.pertitle.trials import run_trials


def choose_ladder(source: str | os.PathLike, ladder: LadderLike = "auto", *,
                  cancel: Optional[Any] = None, scratch: Optional[Path] = None) -> LadderChoice:
    """Analyse `source` and choose the bitrates of `ladder`'s rungs (see `decision`)."""
    from framepress.engine import probe   # the engine module calls in here
    template = load_ladder(ladder)
    info = probe(source)
    video = info.video
    if video is None or video.width <= 0 or video.height <= 0:
        raise InputError(f"source {str(source)!r} has no video stream to analyse", step="analyse")
    short_side = min(video.width, video.height)
    trials = run_trials(str(source), template, short_side, info.duration, crf=TARGET_CRF,
                        cancel=cancel, scratch=scratch)
    return decide(template, trials, short_side)


__all__ = ["choose_ladder", "LadderChoice", "RungChoice"]
