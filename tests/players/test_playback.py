"""Real players over the engine's outputs in headless Chromium: dash.js plays the DASH manifest and
switches representation, hls.js plays the HLS master playlist with its audio tracks selectable."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import framepress
from conftest import make_clip
from support.browser import chromium, http_server, player_script, wait_js

HERE = Path(__file__).parent
SECONDS = 6
LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
    {"name": "240p", "height": 240, "bitrate": 400_000, "preset": "ultrafast"},
    {"name": "144p", "height": 144, "bitrate": 120_000, "preset": "ultrafast"}]}


@pytest.fixture(scope="module")
def site(media_dir, tmp_path_factory):
    """A served folder: the task's outputs under out/, the players' pages and scripts."""
    root = tmp_path_factory.mktemp("site")
    src = make_clip(media_dir / "playback_src.mp4", seconds=SECONDS, size="426x240")
    result = framepress.transcode(src, root / "out", LADDER, dash=True)
    for page in ("dash.html", "hls.html"):
        shutil.copy(HERE / page, root / page)
    modules = player_script("dashjs/dist/dash.all.min.js").parents[2]
    player_script("hls.js/dist/hls.min.js")
    (root / "node_modules").symlink_to(modules, target_is_directory=True)
    with http_server(root) as url, chromium() as browser:
        yield url, browser, result


def test_dashjs_plays_the_manifest_and_switches_representation(site):
    url, browser, result = site
    browser.get(f"{url}/dash.html?src=/out/dash/manifest.mpd")
    wait_js(browser, "log.initialized && document.getElementById('video').currentTime > 0.3", "DASH playback")
    reps = browser.execute_script("return player.getBitrateInfoListFor('video')"
                                  ".map(b => [b.qualityIndex, b.width, b.height])")
    assert sorted((w, h) for _, w, h in reps) == sorted((r.width, r.height) for r in result.renditions)
    current = browser.execute_script("return player.getQualityFor('video')")
    target, _, height = next(rep for rep in reps if rep[0] != current)
    browser.execute_script(f"player.setQualityFor('video', {target}, true)")
    wait_js(browser, f"log.rendered.includes({target}) && document.getElementById('video').videoHeight == {height}",
            f"the switch to representation {target} ({height} lines)")
    audio = browser.execute_script("return player.getTracksFor('audio').map(t => t.lang)")
    assert len(audio) == len(result.audio_renditions) == 1
    wait_js(browser, "document.getElementById('video').ended", "the end of the stream", timeout=SECONDS * 4)
    assert browser.execute_script("return document.getElementById('video').currentTime") == pytest.approx(
        SECONDS, abs=0.1)
    assert browser.execute_script("return log.errors") == []


def test_hlsjs_plays_the_master_playlist_with_its_audio_tracks(site):
    url, browser, result = site
    browser.get(f"{url}/hls.html?src=/out/hls/master.m3u8")
    wait_js(browser, "log.parsed && document.getElementById('video').currentTime > 0.3", "HLS playback")
    levels = browser.execute_script("return hls.levels.map(l => [l.width, l.height])")
    assert sorted(map(tuple, levels)) == sorted((r.width, r.height) for r in result.renditions)
    tracks = browser.execute_script("return hls.audioTracks.map(t => [t.name, t.default])")
    assert tracks == [["audio 1", True]]
    assert browser.execute_script("return hls.audioTrack") == 0
    wait_js(browser, "document.getElementById('video').ended", "the end of the stream", timeout=SECONDS * 4)
    assert browser.execute_script("return log.errors") == []
