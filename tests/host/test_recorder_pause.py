"""The recorder and a pause the host made (Device.start after Device.stop, e.g. to write the
channel mask): the recording starts after the pause, and a device that restarts later is
still caught."""

import json

import numpy as np
import pytest
from scripted_device import ScriptedDevice

from spikeforge.firmware.config import SystemConfig
from spikeforge.host import DataBlock
from spikeforge.host.recorder import record

RECORDING = "Record Node 101/experiment1/recording1"
CONFIG = SystemConfig(channels=4, sweeps_per_frame=8)
SPF = CONFIG.sweeps_per_frame


def _blocks(slots: list[int]) -> list[DataBlock]:
    """Sweep k holds the value k in every channel."""
    return [DataBlock(seq=slot, first_sample=slot * SPF,
                      samples=np.repeat(np.arange(slot * SPF, (slot + 1) * SPF, dtype=np.int16)
                                        [:, None], CONFIG.channels, axis=1))
            for slot in slots]


class PausedDevice(ScriptedDevice):
    """Streams ``items``; the host restarted its stream at sweep ``restarted_at_sweep``."""

    def __init__(self, items: list, restarted_at_sweep: int):
        super().__init__(CONFIG, items)
        self.restarted_at_sweep = restarted_at_sweep


def _meta(out):
    return json.loads((out / RECORDING / "spikeforge.json").read_text())


def test_the_recording_starts_after_the_pause_and_loses_nothing(tmp_path):
    # Slots 3..5 from before the stop (some arriving late), then the stream from slot 20.
    device = PausedDevice(_blocks([3, 4, 5, 20, 21, 22, 23]), restarted_at_sweep=19 * SPF + 3)
    final = record(device, tmp_path / "rec", control=False)
    assert final.samples_lost == 0
    meta = _meta(tmp_path / "rec")
    assert meta["losses"] == []
    numbers = np.load(tmp_path / "rec" / RECORDING / "continuous" / "spikeforge-100.acquisition"
                      / "sample_numbers.npy")
    np.testing.assert_array_equal(numbers, np.arange(20 * SPF, 24 * SPF))


def test_a_loss_after_the_pause_is_still_a_loss(tmp_path):
    device = PausedDevice(_blocks([3, 4, 20, 21, 24]), restarted_at_sweep=20 * SPF)
    final = record(device, tmp_path / "rec", control=False)
    assert final.samples_lost == 2 * SPF
    assert _meta(tmp_path / "rec")["losses"] == [{"first_sample": 22 * SPF, "samples": 2 * SPF}]


def test_a_device_that_restarts_after_the_pause_still_ends_the_recording(tmp_path):
    """Sweeps that go back below the restart point once recording are a device restart
    (an error), not frames from before the pause to skip."""
    from spikeforge.host.errors import DeviceRestarted

    device = PausedDevice(_blocks([3, 20, 21, 0, 1]), restarted_at_sweep=20 * SPF)
    with pytest.raises(DeviceRestarted):
        record(device, tmp_path / "rec", control=False)
    assert _meta(tmp_path / "rec")["ended"].startswith("device error: the device restarted")
