"""framepress: a video transcoding engine and service."""
from __future__ import annotations

__version__ = "0.1.0"

from framepress import errors
from framepress.engine import (AudioRendition, CancelToken, MediaInfo, Progress, Rendition, TranscodeResult,
                               hw_capabilities, probe, transcode)
from framepress.ladder import Ladder, Rung, load_ladder

__all__ = ["probe", "transcode", "hw_capabilities", "CancelToken", "Progress", "MediaInfo",
           "Rendition", "AudioRendition", "TranscodeResult", "Ladder", "Rung", "load_ladder", "errors", "__version__"]
