"""Every CLI command that changes a device takes its control key the same way (``--key
NAME``, from the user's key folder), and ``stream`` uses it: a stream_cipher build streams
with the key and says what to do without it."""

import argparse

import pytest
from cipher_played_device import PlayedDevice

from spikeforge.cli import build_parser, main
from spikeforge.firmware.config import SystemConfig
from spikeforge.host.keys import new_key

pytest.importorskip("pylsl")

#: The commands that open a device and may write to it (start, stop, mode, mask, session).
DEVICE_COMMANDS = ("record", "status", "stream")


@pytest.fixture(autouse=True)
def key_dir(tmp_path, monkeypatch):
    folder = tmp_path / "keys"
    monkeypatch.setenv("SPIKEFORGE_KEY_DIR", str(folder))
    return folder


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


@pytest.mark.parametrize("command", DEVICE_COMMANDS)
def test_every_device_command_takes_the_key_by_name(command):
    parser = _subparsers(build_parser())[command]
    options = {option: action for action in parser._actions
               for option in action.option_strings}
    assert "--key" in options, f"`spikeforge {command}` has no --key"
    assert options["--key"].metavar == "NAME"


def test_stream_with_the_key_opens_a_sealed_stream_and_without_it_says_so(tmp_path, capsys):
    key = new_key("board")
    board = PlayedDevice(SystemConfig(channels=4, control_key=key.hex, stream_cipher=True))
    try:
        assert main(["stream", "--port", board.url, "--lsl", "--lsl-name", "sf-key-test",
                     "--duration", "0.02"]) == 3
        assert "--key NAME" in capsys.readouterr().err
        assert main(["stream", "--port", board.url, "--key", "board", "--lsl", "--lsl-name",
                     "sf-key-test", "--duration", "0.02"]) == 0
        out = capsys.readouterr().out
        assert "stream ended" in out
        assert key.last_counter() > 0, "stream wrote nothing signed with the key"
    finally:
        board.close()
