"""Real players over outputs stitched from parts (time ranges encoded apart, the audio once): hls.js
plays and seeks across every part's edge without stalling, dash.js plays the manifest to the end;
both find each audio language."""
from __future__ import annotations

import subprocess

import pytest

import framepress
from conftest import FFMPEG
from framepress.parts import write_audio
from framepress.service.split.stitching import assemble
from pages import LADDER, players_beside
from support.audio_tracks import two_language_args
from support.browser import wait_js

SECONDS = 8
EDGES = [0.0, 2.0, 4.0, 6.0, None]


@pytest.fixture(scope="module")
def site(media_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("stitched_site")
    src = media_dir / "stitch_src.mp4"   # B-frames; two audio languages
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc2=size=426x240:rate=30:duration={SECONDS}", *two_language_args(SECONDS),
                    "-c:v", "libx264", "-preset", "ultrafast", "-x264-params", "bframes=3:keyint=48:scenecut=0",
                    str(src)], check=True)
    parts = [framepress.transcode(src, root / "parts" / str(i), LADDER, hls=True, start=a, end=b)
             for i, (a, b) in enumerate(zip(EDGES, EDGES[1:]))]
    audio = write_audio(src, root / "audio", bitrate=64_000, segment_seconds=2)
    rungs = {r.name: (r.width, r.height, r.codec, r.codec_string) for r in parts[0].renditions}
    result = assemble([root / "parts" / str(i) for i in range(len(parts))], root / "audio", root / "out", rungs,
                      audio.audio_renditions)
    with players_beside(root) as (url, browser):
        yield url, browser, result


def test_hlsjs_plays_and_seeks_across_every_edge_without_stalling(site):
    url, browser, result = site
    browser.get(f"{url}/hls.html?src=/out/hls/master.m3u8")
    wait_js(browser, "log.parsed && document.getElementById('video').currentTime > 0.3", "HLS playback")
    browser.execute_script("window.stalls = []; hls.on(Hls.Events.ERROR, (_, d) => { "
                           "if (d.details === 'bufferStalledError') stalls.push(video.currentTime); });")
    assert browser.execute_script("return hls.audioTracks.map(t => t.lang)") == ["en", "fr"]
    for edge in (2.0, 4.0, 6.0):   # just before each part's edge, then played across it
        browser.execute_script(f"document.getElementById('video').currentTime = {edge - 0.2};")
        wait_js(browser, f"document.getElementById('video').currentTime > {edge + 0.3}", f"playback across {edge} s")
    wait_js(browser, "document.getElementById('video').ended", "the end of the stream", timeout=SECONDS * 4)
    video = browser.execute_script("const v = document.getElementById('video'); "
                                   "return [v.currentTime, v.duration, v.videoHeight];")
    assert video[0] == pytest.approx(SECONDS, abs=0.1) and video[1] == pytest.approx(SECONDS, abs=0.1)
    assert browser.execute_script("return log.errors") == []
    assert browser.execute_script("return window.stalls") == []


def test_dashjs_plays_the_stitched_manifest_to_the_end(site):
    url, browser, result = site
    browser.get(f"{url}/dash.html?src=/out/dash/manifest.mpd")
    wait_js(browser, "log.initialized && document.getElementById('video').currentTime > 0.3", "DASH playback")
    assert sorted(browser.execute_script("return player.getTracksFor('audio').map(t => t.lang)")) == ["en", "fr"]
    wait_js(browser, "document.getElementById('video').ended", "the end of the stream", timeout=SECONDS * 4)
    assert browser.execute_script("return document.getElementById('video').currentTime") == pytest.approx(
        SECONDS, abs=0.1)
    assert browser.execute_script("return log.errors") == []
