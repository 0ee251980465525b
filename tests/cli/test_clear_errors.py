"""Bad inputs end in one clear line and a documented exit code, never a traceback; and what
can be checked before a virtual board starts is checked before it starts."""

import errno
import json
from pathlib import Path

import pytest

from spikeforge.cli import main
from spikeforge.firmware.errors import ConfigError
from spikeforge.host.errors import ExitCode, exit_code_of


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("spikeforge: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def no_board(monkeypatch):
    """A virtual board that must not be started."""
    from spikeforge.sim import virtual_board

    def refuse(*args, **kwargs):
        raise AssertionError("the virtual board was started before the check")

    monkeypatch.setattr(virtual_board.VirtualBoard, "start", classmethod(refuse))


def test_a_config_error_exits_with_the_usage_code():
    assert exit_code_of(ConfigError("x")) == ExitCode.USAGE == 2


def test_recording_into_a_folder_with_files_is_refused_before_the_board_starts(
        tmp_path, capsys, no_board):
    out = tmp_path / "r1"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["record", "--port", "sim://?channels=4", "--duration", "1",
                 "--out", str(out)]) == ExitCode.USAGE
    line = _one_line(capsys)
    assert str(out) in line and "already holds files" in line
    assert (out / "notes.txt").read_text() == "mine"


def test_recording_onto_a_read_only_disk_is_one_line_before_the_board_starts(
        tmp_path, capsys, no_board, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert main(["record", "--port", "sim://?channels=4", "--duration", "1",
                 "--out", str(tmp_path / "r1")]) == ExitCode.USAGE
    line = _one_line(capsys)
    assert "Read-only file system" in line and "r1" in line


def test_a_sim_url_naming_a_missing_configuration_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nonexistent.json"
    assert main(["record", "--port", f"sim://{missing}", "--duration", "1",
                 "--out", str(tmp_path / "r1")]) == ExitCode.USAGE
    assert str(missing) in _one_line(capsys)
    assert not (tmp_path / "r1").exists()


@pytest.mark.parametrize("content", [None, '{"channels": 8, "sample_r', "[1, 2]"])
def test_config_on_a_missing_or_broken_file_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content)
    assert main(["config", "--config", str(path)]) == ExitCode.USAGE
    assert str(path) in _one_line(capsys)


def test_a_sim_url_naming_a_truncated_configuration_is_one_line(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"channels": 4})[:-3])
    assert main(["status", "--port", f"sim://{path}"]) == ExitCode.USAGE
    assert str(path) in _one_line(capsys)


def test_decode_of_a_missing_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "capture.bin"
    assert main(["decode", str(missing)]) == ExitCode.USAGE
    assert str(missing) in _one_line(capsys)
