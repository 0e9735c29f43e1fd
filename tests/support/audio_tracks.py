"""What a test reads of outputs' audio tracks: each track's tone, languages and default flags in an
MP4, the audio adaptation sets of a DASH manifest. Sources give each language its own tone."""
from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

DASH_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
TONES = {"eng": 440, "fra": 660}


def two_language_args(seconds: float) -> list[str]:
    """FFmpeg input and mapping arguments after a video input: an English and a French AAC track."""
    return ["-f", "lavfi", "-i", f"sine=frequency={TONES['eng']}:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency={TONES['fra']}:duration={seconds}",
            "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:a", "aac",
            "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra"]


def tone(path: Path | str, stream: int = 0) -> float:
    """The loudest frequency of an audio stream, Hz."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:a:{stream}", "-ac", "1", "-ar", "8000",
                          "-f", "f32le", "-"], check=True, capture_output=True).stdout
    samples = np.frombuffer(raw, np.float32)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[spectrum.argmax()])


def audio_streams(path: Path | str) -> list[tuple[str, int]]:
    """Each audio stream's language tag and default flag."""
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-select_streams", "a", "-show_streams", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return [(s.get("tags", {}).get("language", ""), s["disposition"]["default"]) for s in json.loads(out)["streams"]]


def dash_audio_sets(mpd: Path | str) -> list[tuple[str, str, str]]:
    """Each audio adaptation set's language, role and representation id."""
    root = ET.parse(mpd).getroot()
    return [(a.get("lang"), a.find("d:Role", DASH_NS).get("value"), a.find("d:Representation", DASH_NS).get("id"))
            for a in root.iterfind("d:Period/d:AdaptationSet", DASH_NS) if a.get("contentType") == "audio"]
