"""`framepress bench` refuses bad input with one line and exit code 2, before any work."""
from __future__ import annotations

from framepress.cli import main


def test_unknown_ladder_is_a_usage_error(tmp_path, capsys):
    assert main(["bench", "engine", "--ladder", "no-such-ladder", "--out", str(tmp_path)]) == 2
    assert "no-such-ladder" in capsys.readouterr().err
    assert not (tmp_path / "RESULTS.md").exists()


def test_unknown_system_is_a_usage_error(tmp_path, capsys):
    code = main(["bench", "engine", "--quick", "--systems", "engine,vlc", "--out", str(tmp_path)])
    assert code == 2
    assert "vlc" in capsys.readouterr().err


def test_unknown_mode_is_a_usage_error(capsys):
    assert main(["bench", "turbo"]) == 2
