"""The audio tracks a split parent's `split` event lists, which its stitch puts in the manifests."""
from __future__ import annotations

from framepress.engine import AudioRendition
from framepress.service.split.stitching import track_data, tracks_of


def test_the_tracks_go_through_the_split_event_as_they_were_written():
    written = [AudioRendition(name="audio_0", playlist="/scratch/audio/hls/audio_0.m3u8", index=1, language="eng",
                              default=True, sample_rate=48000, channels=2),
               AudioRendition(name="audio_1", playlist="/scratch/audio/hls/audio_1.m3u8", index=2, language="fra",
                              sample_rate=44100, channels=1)]
    data = {"audio": {"index": 1}, "audio_tracks": [track_data(a) for a in written]}
    assert all("playlist" not in t for t in data["audio_tracks"])   # a path on the splitting worker
    assert tracks_of(data) == [AudioRendition(**{**vars(a), "playlist": ""}) for a in written]
    assert tracks_of({"audio": {"index": -1}, "audio_tracks": []}) == []


def test_a_parent_split_before_the_event_listed_its_tracks_has_the_one_its_split_wrote():
    """Its split encoded the source's best stream alone, as `audio_0`; none when it had no audio."""
    old = {"audio": {"index": 1, "codec": "aac", "language": "eng", "sample_rate": 44100, "channels": 2,
                     "channel_layout": "stereo", "warnings": []}}
    assert tracks_of(old) == [AudioRendition(name="audio_0", playlist="", index=1, language="eng", default=True,
                                             sample_rate=44100, channels=2)]
    assert tracks_of({"audio": {"index": -1}}) == []
