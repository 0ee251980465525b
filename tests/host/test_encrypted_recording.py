"""Encrypted recordings (record --encrypt-to, decrypt): nothing readable on disk, the Open
Ephys folder restored byte for byte, wrong keys, altered and cut files located, and a
recording killed with SIGKILL decryptable up to its last flush."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cipher_played_device import PlayedDevice, sweep_samples

from spikeforge.cli import main
from spikeforge.firmware.config import SystemConfig
from spikeforge.host.encrypted_recording import (
    ENCRYPTED_FILE_NAME,
    EncryptedRecordingError,
    EncryptedRecordingWriter,
    RecipientKeyError,
    decrypt_recording,
    load_secret,
    new_recipient,
)
from spikeforge.host.frames import DetectorEvent, EventBlock
from spikeforge.host.openephys import OpenEphysWriter
from spikeforge.host.sinks import FanOut

_STREAM = "Record Node 101/experiment1/recording1"
_MARK = 0x5A17   # a sample value that must never appear in the clear


@pytest.fixture
def pair(tmp_path):
    return new_recipient(tmp_path / "keys" / "lab.recipient")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _feed(sink, config: SystemConfig, *, close: bool = True) -> None:
    """A recording's calls: blocks, a loss, events, flushes, the end."""
    rng = np.random.default_rng(1)
    block = rng.integers(-3000, 3000, (32, config.channels)).astype("<i2")
    block[3, 1] = _MARK
    sink.write_continuous("data", 0, block)
    sink.write_continuous("data", 32, block)
    sink.write_loss("data", 64, 32)
    sink.write_events(EventBlock(7, (DetectorEvent(40, 2, -900, 3,
                                                   np.arange(-3, 5, dtype="<i2")),)))
    sink.flush({"ended": "still recording", "link": {"crc_errors": 0}})
    sink.write_continuous("data", 96, block[::-1].copy())
    if close:
        sink.close({"ended": "duration reached", "link": {"crc_errors": 1}})


def test_decrypt_restores_every_file_of_the_folder_byte_for_byte(tmp_path, pair):
    secret, recipient = pair
    config = SystemConfig(channels=4)
    metadata = {"port": "socket://127.0.0.1:1", "control": True, "mode": "raw"}
    plain = OpenEphysWriter(tmp_path / "plain", config, dict(metadata))
    sealed = EncryptedRecordingWriter(tmp_path / "sealed", recipient, config, dict(metadata))
    _feed(FanOut([plain, sealed]), config)
    assert [p.name for p in (tmp_path / "sealed").iterdir()] == [ENCRYPTED_FILE_NAME]
    result = decrypt_recording(tmp_path / "sealed", tmp_path / "restored", secret)
    assert result.complete and not result.failures
    expected = _files(tmp_path / "plain")
    assert len(expected) >= 10
    assert _files(tmp_path / "restored") == expected
    assert sealed.sweeps_written == 128 and sealed.samples_lost == 32   # the status counts


def test_nothing_readable_lies_in_the_encrypted_folder(tmp_path, pair):
    _, recipient = pair
    config = SystemConfig(channels=4)
    sealed = EncryptedRecordingWriter(tmp_path / "sealed", recipient, config,
                                      {"port": "socket://127.0.0.1:1"})
    _feed(sealed, config)
    data = (tmp_path / "sealed" / ENCRYPTED_FILE_NAME).read_bytes()
    for clear in (_MARK.to_bytes(2, "little") + b"\x00", b"spikeforge-100", b"socket://",
                  b"channels", b"duration reached", b"CH1", b'"ended"'):
        assert clear not in data, clear


def _sealed_file(tmp_path, recipient) -> Path:
    config = SystemConfig(channels=4)
    sealed = EncryptedRecordingWriter(tmp_path / "sealed", recipient, config, {})
    _feed(sealed, config)
    return tmp_path / "sealed" / ENCRYPTED_FILE_NAME


def _chunk_offsets(path: Path) -> list[int]:
    data, offsets, at = path.read_bytes(), [], 64
    while at < len(data):
        offsets.append(at)
        at += 5 + int.from_bytes(data[at:at + 4], "little")
    return offsets


def test_a_wrong_key_is_named_and_nothing_is_written(tmp_path, pair):
    _, recipient = pair
    path = _sealed_file(tmp_path, recipient)
    other, _ = new_recipient(tmp_path / "keys" / "other.recipient")
    with pytest.raises(EncryptedRecordingError) as info:
        decrypt_recording(path.parent, tmp_path / "out", other)
    assert recipient.fingerprint in str(info.value) and "other.recipient" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_an_altered_chunk_is_located_and_only_what_precedes_it_restored(tmp_path, pair,
                                                                         capsys):
    secret, recipient = pair
    path = _sealed_file(tmp_path, recipient)
    offsets = _chunk_offsets(path)          # set-up, flush, close
    assert len(offsets) == 3
    data = bytearray(path.read_bytes())
    data[offsets[1] + 40] ^= 1
    path.write_bytes(bytes(data))
    code = main(["decrypt", "--key", str(secret.path), str(path.parent),
                 str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"chunk 1 at byte {offsets[1]}" in err and "altered" in err and str(path) in err
    facts = json.loads((tmp_path / "out" / _STREAM / "spikeforge.json").read_text())
    assert facts["sweeps"] == 0        # only the set-up chunk was restored


def test_a_cut_file_is_located_and_restored_up_to_its_last_whole_chunk(tmp_path, pair,
                                                                       capsys):
    secret, recipient = pair
    path = _sealed_file(tmp_path, recipient)
    offsets = _chunk_offsets(path)
    path.write_bytes(path.read_bytes()[:offsets[2] + 30])     # inside the final chunk
    code = main(["decrypt", "--key", str(secret.path), str(path.parent),
                 str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "cut" in err and "chunk 2" in err
    facts = json.loads((tmp_path / "out" / _STREAM / "spikeforge.json").read_text())
    assert facts["ended"] == "still recording" and facts["sweeps"] == 96   # the flush


def test_private_keys_others_can_read_and_public_keys_given_as_private_are_refused(
        tmp_path, pair):
    secret, recipient = pair
    assert os.stat(secret.path).st_mode & 0o777 == 0o600
    os.chmod(secret.path, 0o644)
    with pytest.raises(RecipientKeyError, match="chmod 600"):
        load_secret(secret.path)
    os.chmod(recipient.path, 0o600)
    with pytest.raises(RecipientKeyError, match="it is the public key"):
        load_secret(recipient.path)


def _record(url: str, out: Path, *extra: str) -> int:
    return main(["record", "--port", url, "--duration", "0.05", "--out", str(out), *extra])


def test_record_encrypt_to_and_decrypt_give_the_clear_recording_of_the_same_stream(
        tmp_path, pair, capsys):
    secret, recipient = pair
    config = SystemConfig(channels=4)
    folders = {}
    for name, extra in (("plain", ()), ("sealed", ("--encrypt-to", str(recipient.path)))):
        board = PlayedDevice(config)
        try:
            assert _record(board.url, tmp_path / name, *extra) == 0
        finally:
            board.close()
        folders[name] = tmp_path / name
    assert [p.name for p in folders["sealed"].iterdir()] == [ENCRYPTED_FILE_NAME]
    assert main(["decrypt", "--key", str(secret.path), str(folders["sealed"]),
                 str(tmp_path / "restored")]) == 0
    plain, restored = _files(folders["plain"]), _files(tmp_path / "restored")
    assert plain.keys() == restored.keys()
    for name in plain:
        if name.endswith("spikeforge.json"):
            # The port (the played device's TCP port) and the link's byte counts differ
            # between the two recordings; everything else is the same.
            a, b = json.loads(plain[name]), json.loads(restored[name])
            for facts in (a, b):
                facts.pop("port"), facts.pop("link")
            assert a == b
        else:
            assert plain[name] == restored[name], name
    samples = np.frombuffer(restored[f"{_STREAM}/continuous/spikeforge-100.acquisition/"
                                     "continuous.dat"], "<i2").reshape(-1, 4)
    np.testing.assert_array_equal(samples, sweep_samples(config, 0, 1500))


def test_a_recording_killed_mid_way_decrypts_up_to_its_last_flush(tmp_path, pair):
    secret, recipient = pair
    config = SystemConfig(channels=4)
    board = PlayedDevice(config)
    out = tmp_path / "sealed"
    code = ("import sys; from spikeforge.cli import main; sys.exit(main(sys.argv[1:]))")
    process = subprocess.Popen(
        [sys.executable, "-c", code, "record", "--port", board.url, "--out", str(out),
         "--encrypt-to", str(recipient.path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        path = out / ENCRYPTED_FILE_NAME
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:      # the set-up chunk and two flushes
            if path.exists() and len(_chunk_offsets(path)) >= 3:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the recording wrote no flushes in 30 s")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
        board.close()
    result = decrypt_recording(out, tmp_path / "restored", secret)
    assert not result.complete and len(result.failures) == 1
    assert result.failures[0].kind == "cut" and result.chunks >= 3
    stream = tmp_path / "restored" / _STREAM
    facts = json.loads((stream / "spikeforge.json").read_text())
    assert facts["ended"] == "still recording" and facts["sweeps"] > 0
    folder = stream / "continuous/spikeforge-100.acquisition"
    numbers = np.load(folder / "sample_numbers.npy")
    samples = np.fromfile(folder / "continuous.dat", "<i2").reshape(-1, 4)
    assert len(samples) == len(numbers) >= facts["sweeps"]
    np.testing.assert_array_equal(samples, sweep_samples(config, int(numbers[0]),
                                                         len(samples)))
