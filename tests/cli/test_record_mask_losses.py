"""Loss accounting around the channel mask's stream stop and start, on the virtual board.

`spikeforge record --channels-enabled` stops the stream, writes the mask and starts the
stream again. The slots the device skipped while stopped are not lost frames: a recording
over a link that carries its stream must report no loss at all, neither in the recording
(`samples_lost`, `losses`) nor in the link counters (`sequence_gaps`). Over a link too slow
for the stream, every dropped frame must still be counted and zero-filled.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spikeforge.firmware.config import parse_channels
from spikeforge.sim.models.source import source_signal
from spikeforge.sim.virtual_board import config_from_sim_url

_URL = "sim://?channels=8"                      # the command of the defect report
_SLOW_URL = "sim://?channels=8&baud=2000000"    # 8 raw channels need ~5 Mbaud: frames drop


def _record(url: str, channels: str, out: Path, *extra: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port", url, "--duration",
         "0.3", "--channels-enabled", channels, "--out", str(out), *extra],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    recording = out / "Record Node 101" / "experiment1" / "recording1"
    stream = recording / "continuous" / "spikeforge-100.acquisition"
    meta = json.loads((recording / "spikeforge.json").read_text())
    enabled = meta["channels_enabled"]
    meta["samples"] = np.fromfile(stream / "continuous.dat", "<i2").reshape(-1, len(enabled))
    meta["sample_numbers"] = np.load(stream / "sample_numbers.npy")
    meta["stderr"] = result.stderr
    return meta


@pytest.mark.parametrize("channels", ["0,2,5-7", "0-7"])
def test_a_masked_recording_over_a_link_that_fits_reports_no_loss(tmp_path, channels):
    """The mask write's stop and start lose nothing: no sweep zero-filled, no sequence gap,
    and the recording is the source's signal sample for sample. ("0-7": the mask equals
    the one in force, so the frames from before the stop fit the recording's columns too.)"""
    config = config_from_sim_url(_URL)
    meta = _record(_URL, channels, tmp_path / "rec")
    enabled = list(parse_channels(channels))
    assert meta["channels_enabled"] == enabled
    link = meta["link"]
    assert (link["crc_errors"], link["bytes_discarded"], link["malformed"]) == (0, 0, 0)
    assert meta["losses"] == [] and meta["samples_lost"] == 0, meta["stderr"]
    assert link["sequence_gaps"] == 0, link
    # The pause is reported for what it is: slots skipped while the host had it stopped.
    assert link["paused_slots"] > 0, link
    samples, numbers = meta["samples"], meta["sample_numbers"]
    assert len(samples) == round(0.3 * config.sample_rate_hz)
    assert np.array_equal(numbers, np.arange(numbers[0], numbers[0] + len(numbers)))
    truth = source_signal(config, int(numbers[-1]) + 1).samples[numbers[0]:, enabled]
    np.testing.assert_array_equal(samples, truth)


def test_a_masked_recording_over_a_link_too_slow_still_counts_every_loss(tmp_path):
    """Frames the device drops (link too slow) are lost for real: counted, listed,
    zero-filled; every sweep not listed lost is the source's, every listed one zero."""
    config = config_from_sim_url(_SLOW_URL)
    spf = config.sweeps_per_frame
    meta = _record(_SLOW_URL, "0-7", tmp_path / "rec", "--allow-loss")
    link = meta["link"]
    assert (link["crc_errors"], link["bytes_discarded"], link["malformed"]) == (0, 0, 0)
    samples, numbers = meta["samples"], meta["sample_numbers"]
    assert len(samples) == round(0.3 * config.sample_rate_hz)
    assert np.array_equal(numbers, np.arange(numbers[0], numbers[0] + len(numbers)))
    lost = np.zeros(len(samples), bool)
    for loss in meta["losses"]:
        ends = loss["first_sample"] + loss["samples"] == int(numbers[-1]) + 1
        assert loss["first_sample"] % spf == 0, loss
        assert loss["samples"] % spf == 0 or ends, loss     # the last may end at the duration
        start = loss["first_sample"] - int(numbers[0])
        lost[start:start + loss["samples"]] = True
    assert meta["samples_lost"] == lost.sum() > 0.2 * len(samples)
    # Inside the recording every loss is a sequence gap of the link (more may lie outside).
    assert link["sequence_gaps"] * spf >= meta["samples_lost"]
    truth = source_signal(config, int(numbers[-1]) + 1).samples[numbers[0]:]
    np.testing.assert_array_equal(samples[~lost], truth[~lost])
    assert not samples[lost].any()


def test_the_link_counters_across_a_pause_match_the_devices_own():
    """Against the device's counters: over a stretch the host started and stopped, every
    frame the device sent arrived, the sequence gaps are frames the device dropped (never
    more than it says it dropped), and the pause before it is not among them."""
    from spikeforge.host.device import Device, DeviceSilent
    from spikeforge.sim.virtual_board import VirtualBoard

    config = config_from_sim_url(_SLOW_URL)
    everything = list(range(config.channels))
    board = VirtualBoard.start(config)
    try:
        with Device.open(board.url) as device:
            device.identify()
            device.configure(stream=False, channels=everything)   # drains the device
            sent0, dropped0 = (device.read_register(n) for n in ("FRAMES_SENT", "FRAMES_DROPPED"))
            gaps0 = device.stats.sequence_gaps
            device.start()
            time.sleep(1.0)     # the frames wait in the socket, decoded in order below
            device.configure(stream=False, channels=everything)
            sent1, dropped1 = (device.read_register(n) for n in ("FRAMES_SENT", "FRAMES_DROPPED"))
            seqs = []
            try:
                for block in device.blocks(idle_timeout_s=0.5):
                    seqs.append(block.seq)
            except DeviceSilent:
                pass
            stats = device.stats
    finally:
        board.stop()
    after = [seq for seq in seqs if seq * config.sweeps_per_frame >= device.restarted_at_sweep]
    sent, dropped = sent1 - sent0, (dropped1 - dropped0) % 2**16
    assert (stats.crc_errors, stats.bytes_discarded, stats.malformed) == (0, 0, 0)
    assert len(after) == sent, "every frame the device sent in the stretch arrived"
    gaps = stats.sequence_gaps - gaps0
    assert gaps == after[-1] - after[0] + 1 - len(after)       # inside the stretch only
    assert 0 < gaps <= dropped                                 # real, and never invented
    assert after[-1] - after[0] + 1 <= sent + dropped          # the pause is not in it
    assert stats.paused_slots > 0
