"""Control keys on the host (host.keys) and the Device signing writes with them, against the
keyed command decoder's golden model standing in for the device."""

import os
import stat

import pytest

from spikeforge.cli import main
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.control_protocol import AUTH_COMMAND, ReplyStatus
from spikeforge.firmware.registers import register
from spikeforge.host.device import Device
from spikeforge.host.errors import RegisterRefused
from spikeforge.host.keys import KeyFileError, load_key, new_key, rotate_key
from spikeforge.sim.models.control import CommandDecoderModel


@pytest.fixture(autouse=True)
def key_dir(tmp_path, monkeypatch):
    folder = tmp_path / "keys"
    monkeypatch.setenv("SPIKEFORGE_KEY_DIR", str(folder))
    return folder


class ModelPort:
    """A serial port whose far end is the command decoder's model (a keyed device)."""

    def __init__(self, config: SystemConfig, drop_first_replies: int = 0):
        self.model = CommandDecoderModel(config)
        self.out = bytearray()
        self.frames: list[bytes] = []
        self.drop = drop_first_replies

    @property
    def in_waiting(self) -> int:
        return len(self.out)

    def write(self, data: bytes) -> None:
        self.frames.append(bytes(data))
        for reply in self.model.feed(data):
            if self.drop:
                self.drop -= 1
                continue
            self.out += reply

    def flush(self) -> None:
        pass

    def read(self, size: int) -> bytes:
        data, self.out[:] = bytes(self.out[:size]), self.out[size:]
        return data

    def close(self) -> None:
        pass


def _device(key_name: str | None, **port_args):
    key = new_key("board") if key_name == "new" else (
        load_key(key_name) if key_name else None)
    config = SystemConfig(control_key=(key or new_key("other")).hex)
    port = ModelPort(config, **port_args)
    device = Device(port, "model://")
    device.key = key
    return device, port


def test_a_new_key_file_is_private_and_loads_back(key_dir):
    key = new_key("board")
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert load_key("board").key == key.key and len(key.key) == 16
    assert key.hex not in repr(key)
    with pytest.raises(KeyFileError, match="already has a key"):
        new_key("board")


def test_a_key_file_others_can_read_is_refused_with_the_chmod_fix():
    key = new_key("board")
    os.chmod(key.path, 0o644)
    with pytest.raises(KeyFileError, match=f"chmod 600 {key.path}"):
        load_key("board")


def test_missing_and_malformed_key_files_say_what_to_do(key_dir):
    with pytest.raises(KeyFileError, match="spikeforge key new nobody"):
        load_key("nobody")
    key = new_key("board")
    key.path.write_text("abc\n")
    with pytest.raises(KeyFileError, match="32 hex digits"):
        load_key("board")
    with pytest.raises(KeyFileError, match="device name"):
        new_key("../escape")


def test_the_counter_survives_a_restart_and_never_repeats():
    key = new_key("board")
    assert [key.next_counter() for _ in range(3)] == [1, 2, 3]
    assert load_key("board").next_counter() == 4
    key.raise_counter(100)
    assert load_key("board").next_counter() == 101


def test_rotate_keeps_the_old_key_aside():
    old = new_key("board")
    new = rotate_key("board")
    assert new.key != old.key
    assert old.path.with_suffix(".key.old").read_text().strip() == old.hex


def test_device_signs_writes_and_the_keyed_device_applies_them():
    device, port = _device("new")
    dead = register("DETECT_DEAD_SAMPLES")
    assert device.write_register(dead, 42) == 42
    assert port.model.bank.values["DETECT_DEAD_SAMPLES"] == 42
    assert len(port.frames[-1]) == 9 + AUTH_COMMAND.size + 4      # signed
    assert device.read_register("IDENTITY") == int.from_bytes(b"SPKF", "little")
    assert len(port.frames[-1]) == 9 + 6 + 4                       # reads stay plain
    assert port.model.counters["AUTH_COUNTER"] == device.key.last_counter()


def test_a_retry_resends_the_same_signed_frame_and_is_not_a_replay():
    device, port = _device("new", drop_first_replies=1)
    assert device.write_register("DETECT_DEAD_SAMPLES", 7, timeout_s=0.05) == 7
    assert port.frames[0] == port.frames[1]
    assert port.model.counters["REPLAYS_REFUSED"] == 0
    assert port.model.counters["COMMANDS_EXECUTED"] == 1


def test_a_host_behind_the_device_counter_catches_up_once():
    device, port = _device("new")
    port.model.counters["AUTH_COUNTER"] = 500            # another host wrote meanwhile
    assert device.write_register("DETECT_DEAD_SAMPLES", 9) == 9
    assert port.model.counters["REPLAYS_REFUSED"] == 1
    assert device.key.last_counter() == 501


def test_without_a_key_or_with_a_wrong_one_the_write_is_refused_and_said_so():
    device, port = _device(None)
    with pytest.raises(RegisterRefused, match="only takes signed writes"):
        device.write_register("DETECT_DEAD_SAMPLES", 3)
    assert port.model.counters["AUTH_REFUSED"] == 1
    device, port = _device("new")
    port.model.key = bytes(16)                            # built with another key
    with pytest.raises(RegisterRefused, match="wrong key"):
        device.write_register("DETECT_DEAD_SAMPLES", 3)
    assert port.model.bank.values["DETECT_DEAD_SAMPLES"] != 3
    assert port.model._last[2][9 + 1] == ReplyStatus.AUTH_FAILED


def test_cli_key_new_show_rotate_provision(tmp_path, capsys):
    assert main(["key", "new", "lab"]) == 0
    assert main(["key", "show", "lab"]) == 0
    out = capsys.readouterr().out
    key = load_key("lab")
    assert key.fingerprint in out and key.hex not in out
    assert main(["key", "show", "lab", "--reveal"]) == 0
    assert key.hex in capsys.readouterr().out
    board = tmp_path / "board.json"
    board.write_text('{"channels": 8}')
    keyed = tmp_path / "keyed.json"
    assert main(["key", "provision", "lab", "--config", str(board), "-o", str(keyed)]) == 0
    assert stat.S_IMODE(keyed.stat().st_mode) == 0o600
    from spikeforge.firmware.config import read_config_file
    assert SystemConfig.from_dict(read_config_file(keyed)).control_key == key.hex
    assert main(["key", "rotate", "lab"]) == 0
    assert load_key("lab").key != key.key
    os.chmod(load_key("lab").path, 0o640)
    assert main(["key", "show", "lab"]) == 2
    assert "chmod 600" in capsys.readouterr().err
