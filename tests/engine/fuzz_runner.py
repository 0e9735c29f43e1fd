"""Runs the engine over a list of files in one process, printing one outcome line per file.

The fuzz test runs this in a subprocess so a crash shows up as a signal, not a dead test run.
"""
import shutil
import sys
import tempfile

import framepress
from framepress.errors import FramepressError

LADDER = {"name": "fuzz", "gop_seconds": 1, "segment_seconds": 1,
          "rungs": [{"name": "90p", "height": 90, "bitrate": 100_000, "preset": "ultrafast"}]}

for index, path in enumerate(sys.argv[1:]):
    print(f"start {index}", flush=True)
    out = tempfile.mkdtemp()
    try:
        result = framepress.transcode(path, out, LADDER, hls=index % 2 == 0)
        r = result.renditions[0]
        outcome = "ok" if r.frames > 0 and r.bytes > 0 else "empty-output"
    except FramepressError as exc:
        outcome = type(exc).__name__
    except Exception as exc:  # anything else is a defect the test reports
        outcome = f"unexpected:{type(exc).__name__}:{exc}"
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"done {index} {outcome}", flush=True)
