"""The encrypted stream end to end on the host: a Device opened with the key of a
stream_cipher build sets a random session with signed writes and hands the recorder
plaintext; without the key it says what to do. The device is played by the command
decoder's and the link cipher's golden models (cipher_played_device)."""

import json

import numpy as np
import pytest
from cipher_played_device import PlayedDevice, sweep_samples

from spikeforge.cli import main
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import register
from spikeforge.host.device import CipherKeyMissing, CipherSessionRefused, Device
from spikeforge.host.frames import DataBlock
from spikeforge.host.keys import new_key


@pytest.fixture(autouse=True)
def key_dir(tmp_path, monkeypatch):
    folder = tmp_path / "keys"
    monkeypatch.setenv("SPIKEFORGE_KEY_DIR", str(folder))
    return folder


@pytest.fixture
def played():
    devices = []

    def make(config: SystemConfig) -> PlayedDevice:
        devices.append(PlayedDevice(config))
        return devices[-1]

    yield make
    for device in devices:
        device.close()


def _cipher_build(key) -> SystemConfig:
    return SystemConfig(channels=4, control_key=key.hex, stream_cipher=True)


def _blocks(device: Device, count: int) -> list[DataBlock]:
    blocks = []
    for item in device.items():
        if isinstance(item, DataBlock):
            blocks.append(item)
            if len(blocks) == count:
                return blocks
    raise AssertionError("the stream ended")


def test_a_cipher_build_opened_with_its_key_gets_a_random_session_and_plaintext(played):
    key = new_key("board")
    board = played(_cipher_build(key))
    sessions = set()
    for _ in range(2):    # two boots: two sessions
        board = played(_cipher_build(key))
        with Device.open(board.url, key=key) as device:
            device.identify()
            assert device.stream_cipher and device.opener is not None
            assert device.session == board.session       # what the device was given
            sessions.add(device.session)
            device.start()
            blocks = _blocks(device, 5)
            spf = board.config.sweeps_per_frame
            for block in blocks:
                np.testing.assert_array_equal(
                    block.samples, sweep_samples(board.config, block.first_sample, spf))
            assert device.stats.cipher_failures == 0 and device.opener.opened >= 5
    assert len(sessions) == 2
    # The session registers were written with signed writes, LO before HI.
    addresses = [a for a, _ in board.model.writes]
    low, high = register("CIPHER_SESSION_LO").address, register("CIPHER_SESSION_HI").address
    assert addresses.index(low) < addresses.index(high)
    assert board.model.counters["AUTH_COUNTER"] > 0


def test_a_cipher_build_opened_without_a_key_names_the_option_and_the_command(played):
    board = played(_cipher_build(new_key("board")))
    with Device.open(board.url) as device:
        device.identify()           # identity is open: it says nothing of the cipher
        with pytest.raises(CipherKeyMissing) as info:
            device.start()
    assert "--key" in str(info.value) and "spikeforge key" in str(info.value)
    assert board.session is None        # nothing was set: the stream stays withheld


def test_a_second_open_in_the_same_boot_adopts_its_own_session(played):
    key = new_key("board")
    board = played(_cipher_build(key))
    with Device.open(board.url, key=key) as device:
        device.identify()
        first = device.session
    with Device.open(board.url, key=key) as device:
        device.identify()
        assert device.session == first == board.session
        device.start()
        assert len(_blocks(device, 3)) == 3 and device.stats.cipher_failures == 0


def test_a_session_this_host_did_not_choose_is_refused(played):
    key = new_key("board")
    board = played(_cipher_build(key))
    board.model.bank.write(register("CIPHER_SESSION_LO").address, 0x1234)
    board.model.bank.write(register("CIPHER_SESSION_HI").address, 0x56)   # another host
    with Device.open(board.url, key=key) as device, \
            pytest.raises(CipherSessionRefused) as info:
        device.identify()
    assert "reset the device" in str(info.value)


def test_a_keyed_build_without_the_cipher_streams_in_the_clear_as_before(played):
    key = new_key("board")
    board = played(SystemConfig(channels=4, control_key=key.hex))
    with Device.open(board.url, key=key) as device:
        device.identify()
        assert device.stream_cipher is False and device.opener is None
        device.start()
        assert len(_blocks(device, 3)) == 3


def test_record_and_status_with_key_record_plaintext_and_show_the_cipher(played, tmp_path,
                                                                          capsys):
    key = new_key("board")
    board = played(_cipher_build(key))
    out = tmp_path / "rec"
    assert main(["record", "--port", board.url, "--key", "board", "--duration", "0.05",
                 "--out", str(out)]) == 0
    stream = out / "Record Node 101/experiment1/recording1"
    data = np.fromfile(stream / "continuous/spikeforge-100.acquisition/continuous.dat", "<i2")
    samples = data.reshape(-1, 4)
    first = int(np.load(stream / "continuous/spikeforge-100.acquisition/"
                        "sample_numbers.npy")[0])
    np.testing.assert_array_equal(samples, sweep_samples(board.config, first, len(samples)))
    assert len(samples) == 1500
    facts = json.loads((stream / "spikeforge.json").read_text())
    assert facts["link"]["cipher_failures"] == 0
    capsys.readouterr()
    assert main(["status", "--port", board.url, "--key", "board"]) == 0
    assert "cipher_frames_sealed" in capsys.readouterr().out


def test_record_without_key_from_a_cipher_build_fails_clearly(played, tmp_path, capsys):
    board = played(_cipher_build(new_key("board")))
    assert main(["record", "--port", board.url, "--duration", "0.05",
                 "--out", str(tmp_path / "rec")]) == 3
    assert "--key NAME" in capsys.readouterr().err
    assert not (tmp_path / "rec").exists() or not any((tmp_path / "rec").iterdir())
