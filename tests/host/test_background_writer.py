"""The Open Ephys writer's thread: a disk that stalls never blocks the caller; when the
thread's bounded queue is full, the blocks refused are a counted, listed, zero-filled loss."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest

import spikeforge.host.openephys as openephys
from spikeforge.firmware.config import SystemConfig
from spikeforge.host.background_writer import BackgroundWriter
from spikeforge.host.openephys import OpenEphysWriter

CONFIG = SystemConfig(channels=4, sweeps_per_frame=32, link_buffer_samples=256)
SWEEPS = 32
ACQUISITION = Path("Record Node 101/experiment1/recording1/continuous/"
                   "spikeforge-100.acquisition")


@pytest.fixture
def slow_disk(monkeypatch):
    """Every block handed over at once, and the thread's writes held until the gate opens
    (a disk that stalls)."""
    gate = threading.Event()
    gate.set()
    write = openephys._pwrite_all

    def held_write(fd, buffers, offset):
        assert gate.wait(30), "the test never opened the gate"
        write(fd, buffers, offset)

    monkeypatch.setattr(openephys, "_pwrite_all", held_write)
    monkeypatch.setattr(openephys, "CHUNK_BYTES", 1)
    return gate


def _block(index: int) -> np.ndarray:
    return np.full((SWEEPS, CONFIG.channels), index + 1, dtype="<i2")


def test_blocks_the_full_queue_refuses_are_a_counted_listed_zero_filled_loss(tmp_path,
                                                                             slow_disk):
    # Each block reserves 256 bytes of samples + 2 x 256 of sample numbers and timestamps.
    writer = OpenEphysWriter(tmp_path / "rec", CONFIG, max_queue_bytes=3 * 768)
    writer.write(0, _block(0))          # the first block is on disk before write returns
    slow_disk.clear()                   # the disk stalls
    for index in range(1, 9):
        writer.write(index * SWEEPS, _block(index))     # never waits for the disk
    # Blocks 1-3 fit the queue; 4-8 are refused: one stretch of 5 blocks.
    assert writer.sweeps_refused == 5 * SWEEPS
    assert writer.samples_lost == 5 * SWEEPS
    assert writer.background.stats.refused_blocks == 5
    slow_disk.set()                     # the disk is back
    writer.sync()
    writer.write(9 * SWEEPS, _block(9))     # taken again
    writer.close({"ended": "duration reached"})

    record = json.loads((writer.recording / "spikeforge.json").read_text())
    assert record["losses"] == [{"first_sample": 4 * SWEEPS, "samples": 5 * SWEEPS}]
    assert record["samples_lost"] == 5 * SWEEPS and record["sweeps"] == 10 * SWEEPS
    assert record["writer"] == {"max_queue_bytes": 3 * 768, "sweeps_refused": 5 * SWEEPS,
                                "refused_bytes": 5 * SWEEPS * CONFIG.channels * 2}
    stream = tmp_path / "rec" / ACQUISITION
    samples = np.fromfile(stream / "continuous.dat", dtype="<i2").reshape(-1, CONFIG.channels)
    assert np.array_equal(np.load(stream / "sample_numbers.npy"), np.arange(10 * SWEEPS))
    expected = np.concatenate([_block(i) if not 4 <= i <= 8 else np.zeros_like(_block(i))
                               for i in range(10)])
    assert np.array_equal(samples, expected)
    ttl = tmp_path / "rec" / "Record Node 101/experiment1/recording1/events" \
        / "spikeforge-100.acquisition/TTL"
    assert np.load(ttl / "sample_numbers.npy").tolist() == [4 * SWEEPS, 9 * SWEEPS]
    assert np.load(ttl / "states.npy").tolist() == [1, -1]


def test_a_link_loss_and_a_refused_stretch_are_listed_apart_in_order(tmp_path, slow_disk):
    writer = OpenEphysWriter(tmp_path / "rec", CONFIG, max_queue_bytes=768)
    writer.write(0, _block(0))
    slow_disk.clear()
    writer.write(SWEEPS, _block(1))             # fits
    writer.write(2 * SWEEPS, _block(2))         # refused
    writer.write(4 * SWEEPS, _block(4))         # a link loss (block 3), then refused again
    slow_disk.set()
    writer.close({"ended": "duration reached"})
    record = json.loads((writer.recording / "spikeforge.json").read_text())
    assert record["losses"] == [{"first_sample": 2 * SWEEPS, "samples": SWEEPS},
                                {"first_sample": 3 * SWEEPS, "samples": SWEEPS},
                                {"first_sample": 4 * SWEEPS, "samples": SWEEPS}]
    assert record["writer"]["sweeps_refused"] == 2 * SWEEPS
    assert record["samples_lost"] == 3 * SWEEPS


def test_a_write_error_in_the_thread_is_raised_in_the_callers_thread(tmp_path):
    import errno

    background = BackgroundWriter(1024)

    def full_disk() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    background.submit(full_disk)
    with pytest.raises(OSError) as raised:
        background.drain()
    assert raised.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        background.submit(lambda: None)
    with pytest.raises(OSError):
        background.close()


def test_a_block_changed_after_it_was_handed_over_is_written_as_it_was(tmp_path, slow_disk):
    writer = OpenEphysWriter(tmp_path / "rec", CONFIG)
    writer.write(0, _block(0))
    slow_disk.clear()
    block = _block(1)
    writer.write(SWEEPS, block)
    block[:] = -7               # the caller's array, reused before the disk came back
    slow_disk.set()
    writer.close({"ended": "duration reached"})
    samples = np.fromfile(tmp_path / "rec" / ACQUISITION / "continuous.dat", dtype="<i2")
    assert np.array_equal(samples.reshape(-1, CONFIG.channels),
                          np.concatenate([_block(0), _block(1)]))


def test_a_full_disk_in_the_writer_thread_ends_the_recording_with_its_errno(tmp_path,
                                                                           monkeypatch):
    import errno

    writer = OpenEphysWriter(tmp_path / "rec", CONFIG)
    writer.write(0, _block(0))

    def full_disk(fd, buffers, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(openephys, "_pwrite_all", full_disk)
    monkeypatch.setattr(openephys, "CHUNK_BYTES", 1)
    with pytest.raises(OSError) as raised:
        for index in range(1, 1000):
            writer.write(index * SWEEPS, _block(index))
            writer.sync()
    assert raised.value.errno == errno.ENOSPC
    for _ in range(2):      # the recorder closes after the error; a second close is harmless
        with pytest.raises(OSError) as raised:
            writer.close({"ended": "disk full"})
        assert raised.value.errno == errno.ENOSPC
