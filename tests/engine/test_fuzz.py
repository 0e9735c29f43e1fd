"""Truncated and bit-flipped sources give InputError or a valid output, never a crash."""
from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import make_clip

VARIANTS = 220
RUNNER = Path(__file__).with_name("fuzz_runner.py")


def variants(source: bytes, where: Path) -> list[Path]:
    rng = random.Random(20261129)
    paths = []
    for i in range(VARIANTS):
        data = bytearray(source)
        if i % 3 == 0:
            data = data[: rng.randrange(0, len(data))]
        else:
            for _ in range(rng.choice((1, 4, 16, 64))):
                pos = rng.randrange(len(data))
                data[pos] ^= 1 << rng.randrange(8)
        path = where / f"v{i:03d}.mp4"
        path.write_bytes(bytes(data))
        paths.append(path)
    return paths


@pytest.mark.timeout(600)
def test_fuzzed_sources_never_crash(media_dir, tmp_path):
    src = make_clip(media_dir / "fuzz_src.mp4", seconds=1, size="160x90")
    pending = variants(src.read_bytes(), tmp_path)
    outcomes: Counter[str] = Counter()
    crashes = []
    while pending:
        proc = subprocess.run([sys.executable, str(RUNNER), *map(str, pending)], capture_output=True, text=True,
                              timeout=500)
        done = [line.split(" ", 2) for line in proc.stdout.splitlines() if line.startswith("done ")]
        for _, _, outcome in done:
            outcomes[outcome.split(":")[0]] += 1
            assert not outcome.startswith("unexpected"), outcome
        if proc.returncode == 0:
            assert len(done) == len(pending)
            break
        started = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("start ")]
        crashed = started[-1] if started else 0
        crashes.append((pending[crashed].name, proc.returncode, proc.stderr[-500:]))
        pending = pending[crashed + 1:]
    assert not crashes, crashes
    assert sum(outcomes.values()) == VARIANTS
    assert set(outcomes) <= {"ok", "InputError"}, outcomes
    assert outcomes["InputError"] > 0 and outcomes["ok"] > 0


FINDINGS = sorted(Path(__file__).with_name("fuzz_findings").iterdir())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("finding", FINDINGS, ids=[p.name for p in FINDINGS])
def test_what_the_fuzzer_found_stays_fixed(finding):
    """Inputs `make fuzz` once hung or overflowed on (`make sanitize` runs these under UBSan)."""
    proc = subprocess.run([sys.executable, str(RUNNER), str(finding)], capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr[-500:]
    outcome = proc.stdout.split("done 0 ", 1)[1].strip()
    assert outcome in ("ok", "InputError"), outcome
