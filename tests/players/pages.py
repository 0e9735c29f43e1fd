"""The players' pages served beside a folder of outputs, in headless Chromium."""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from support.browser import chromium, http_server, player_script

HERE = Path(__file__).parent
# Rungs small enough for a browser test; the players pick between them.
LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
    {"name": "240p", "height": 240, "bitrate": 400_000, "preset": "ultrafast"},
    {"name": "144p", "height": 144, "bitrate": 120_000, "preset": "ultrafast"}]}


@contextmanager
def players_beside(root: Path) -> Iterator[tuple[str, object]]:
    """Serves `root` (outputs under out/) with dash.html and hls.html and their scripts; yields the
    server's URL and a browser."""
    for page in ("dash.html", "hls.html"):
        shutil.copy(HERE / page, root / page)
    modules = player_script("dashjs/dist/dash.all.min.js").parents[2]
    player_script("hls.js/dist/hls.min.js")
    (root / "node_modules").symlink_to(modules, target_is_directory=True)
    with http_server(root) as url, chromium() as browser:
        yield url, browser
