"""A newcomer's first recordings are whole: every README example that records from the
virtual board fits its link (and says its load), and `record` refuses, before the board
starts, a stream its link cannot carry — naming the load and the fix."""

import re
import wave
from pathlib import Path

import numpy as np
import pytest

from spikeforge.cli import main
from spikeforge.firmware.config import SystemConfig, parse_channels
from spikeforge.firmware.control_protocol import has_control_path
from spikeforge.host.errors import ExitCode
from spikeforge.host.recorder import LinkOverloaded, stream_load
from spikeforge.sim.virtual_board import board_from_sim_url

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_sim_records() -> list[tuple[str, str | None, str | None]]:
    """(URL, --channels-enabled, --mode) of every README `record` from a sim:// URL."""
    found = []
    for line in README.read_text().splitlines():
        match = re.search(r'spikeforge record --port "(sim://[^"]+)"(.*)', line)
        if match:
            rest = match.group(2)
            enabled = re.search(r"--channels-enabled (\S+)", rest)
            mode = re.search(r"--mode (\S+)", rest)
            found.append((match.group(1), enabled and enabled.group(1), mode and mode.group(1)))
    return found


@pytest.fixture
def session_wav(tmp_path, monkeypatch):
    """The README's session.wav: 4 channels at 30 kS/s."""
    monkeypatch.chdir(tmp_path)
    with wave.open("session.wav", "wb") as wav:
        wav.setnchannels(4)
        wav.setsampwidth(2)
        wav.setframerate(30_000)
        wav.writeframes(np.zeros((3000, 4), "<i2").tobytes())


def test_the_readme_records_from_the_virtual_board(session_wav):
    assert len(_readme_sim_records()) >= 3


@pytest.mark.parametrize("url, enabled, mode", _readme_sim_records())
def test_every_readme_virtual_board_example_fits_its_link(session_wav, url, enabled, mode):
    config, _ = board_from_sim_url(url)
    channels = parse_channels(enabled) if enabled else None
    load, _ = stream_load(config, mode, channels)
    assert load <= 0.9, f"{url}: {config.describe()}"
    assert has_control_path(config) or config.link == "ethernet"
    assert f"load={config.link_load:.0%}" in config.describe()   # printed when it starts


def test_the_first_example_no_longer_overloads_the_default_link():
    config, _ = board_from_sim_url("sim://?channels=8")
    assert SystemConfig(channels=8).link_load > 1.5     # 164 %: the default link
    assert config.link_load <= 0.9 and has_control_path(config)


@pytest.fixture
def no_board(monkeypatch):
    from spikeforge.sim import virtual_board

    def refuse(*args, **kwargs):
        raise AssertionError("the virtual board was started before the check")

    monkeypatch.setattr(virtual_board.VirtualBoard, "start", classmethod(refuse))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("spikeforge: ") and "Traceback" not in err, err
    return lines[-1]


@pytest.mark.parametrize("port, options, load", [
    ("sim://?channels=8&baud=3000000", [], "164%"),
    ("sim://?channels=4", ["--baud", "9600"], "26,2"),
    ("sim://?channels=24", [], "%"),
])
def test_record_refuses_a_stream_its_link_cannot_carry_before_the_board_starts(
        tmp_path, capsys, no_board, port, options, load):
    assert main(["record", "--port", port, *options, "--duration", "1",
                 "--out", str(tmp_path / "r")]) == ExitCode.USAGE
    line = _one_line(capsys)
    assert load in line and "--allow-loss" in line and "--channels-enabled" in line, line
    assert not (tmp_path / "r").exists()


def test_a_recorder_refuses_or_warns_about_an_overloaded_device(tmp_path, caplog):
    from spikeforge.host.frames import LinkStats
    from spikeforge.host.recorder import Recorder

    class StreamOnly:
        url = "scripted://"
        enabled_channels = None
        stats = LinkStats()

        def identify(self):
            return SystemConfig(channels=8)

        def supports_control(self):
            return False

        def items(self):
            return iter(())

    with pytest.raises(LinkOverloaded, match="164%"):
        Recorder(StreamOnly(), tmp_path / "a", overload="refuse").prepare()
    assert not (tmp_path / "a").exists()
    Recorder(StreamOnly(), tmp_path / "b").prepare()
    assert "164%" in caplog.text


def test_a_baud_without_the_control_path_is_said_up_front(capsys):
    assert main(["config", "--baud", "12000000"]) == 0
    out = capsys.readouterr()
    assert "control path" in (out.out + out.err) and "--mode" in (out.out + out.err)


def test_config_says_a_huge_overload_loudly(capsys):
    assert main(["config", "--baud", "9600"]) == 0
    text = "".join(capsys.readouterr())
    assert "26,2" in text and "lost" in text
