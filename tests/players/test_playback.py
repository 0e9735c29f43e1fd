"""Real players over the engine's outputs in headless Chromium: dash.js plays the DASH manifest and
switches representation, hls.js plays the HLS master playlist with its audio tracks selectable."""
from __future__ import annotations

import subprocess

import pytest

import framepress
from conftest import FFMPEG
from framepress.languages import bcp47
from pages import LADDER, players_beside
from support.audio_tracks import two_language_args
from support.browser import wait_js

SECONDS = 6


@pytest.fixture(scope="module")
def site(media_dir, tmp_path_factory):
    """A served folder: the task's outputs under out/, the players' pages and scripts."""
    root = tmp_path_factory.mktemp("site")
    src = media_dir / "playback_src.mp4"  # two audio languages: English 440 Hz, French 660 Hz
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc2=size=426x240:rate=30:duration={SECONDS}", *two_language_args(SECONDS),
                    "-c:v", "libx264", "-preset", "ultrafast", str(src)], check=True)
    result = framepress.transcode(src, root / "out", LADDER, dash=True)
    with players_beside(root) as (url, browser):
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
    assert sorted(audio) == ["en", "fr"]  # dash.js reports the tags as BCP 47
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
    tracks = browser.execute_script("return hls.audioTracks.map(t => [t.lang, t.default])")
    assert tracks == [[bcp47(a.language), a.default] for a in result.audio_renditions] and len(tracks) == 2
    current = browser.execute_script("return hls.audioTrack")
    assert tracks[current][1]  # the default track plays first
    other = 1 - current
    browser.execute_script(f"hls.audioTrack = {other}")
    wait_js(browser, f"log.audioSwitched.includes({other}) && hls.audioTrack == {other}",
            f"the switch to the {tracks[other][0]} track")
    time_then = browser.execute_script("return document.getElementById('video').currentTime")
    wait_js(browser, f"document.getElementById('video').currentTime > {time_then} + 0.5", "playback after the switch")
    wait_js(browser, "document.getElementById('video').ended", "the end of the stream", timeout=SECONDS * 4)
    assert browser.execute_script("return log.errors") == []
