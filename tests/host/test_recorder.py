"""Recording to Open Ephys binary: read back by neo, losses marked, every ending readable.

A device is played by a TCP server in this process that sends, paced in real time, exactly
the bytes the golden models say the device sends (test source -> framer -> UART), including
a link too slow for the data, so frames are dropped on the "device".
"""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from scripted_device import ScriptedDevice

from spikeforge.firmware.config import DetectorConfig, SystemConfig, TestSourceConfig
from spikeforge.host import DataBlock, EventBlock, StreamDecoder
from spikeforge.host.device import (
    Device,
    DeviceDisconnected,
    DeviceNoControl,
    DeviceNotFound,
    DeviceSilent,
)
from spikeforge.host.nwb import export_nwb
from spikeforge.host.recorder import record
from spikeforge.sim.models.detector import device_events
from spikeforge.sim.models.framer import SOURCE_LATENCY, frame_stream
from spikeforge.sim.models.source import source_signal

neo = pytest.importorskip("neo")

RECORDING = Path("Record Node 101/experiment1/recording1")


class PlayedDevice:
    """Serves the model's byte stream on a local TCP port, at the link's real byte rate."""

    def __init__(self, config: SystemConfig, seconds: float, *, close_after_s: float | None = None,
                 modes: list[tuple[int, int]] | None = None):
        self.config = config
        sweeps = int(seconds * config.sample_rate_hz)
        sweeps -= sweeps % config.sweeps_per_frame
        self.truth = source_signal(config, sweeps).samples
        self.events = device_events(config, self.truth, SOURCE_LATENCY)
        self.schedule = frame_stream(config, self.truth, events=self.events, modes=modes)
        self.close_after_s = close_after_s
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._server.accept()
        time.sleep(0.2)  # pyserial discards what arrives while it opens the port
        data = bytes(self.schedule.data)
        cycles = np.asarray(self.schedule.accept_cycle)
        started = time.monotonic()
        sent = 0
        with connection:
            while sent < len(data):
                now_cycle = (time.monotonic() - started) * self.config.clock_hz
                due = int(np.searchsorted(cycles, now_cycle, side="right"))
                elapsed = time.monotonic() - started
                if self.close_after_s is not None and elapsed > self.close_after_s:
                    _drain(connection)
                    return
                if due > sent:
                    try:
                        connection.sendall(data[sent:due])
                    except OSError:
                        return
                    sent = due
                time.sleep(0.01)
            _idle_until_the_host_closes(connection)


def _idle_until_the_host_closes(connection: socket.socket, limit_s: float = 30.0) -> None:
    """After the last byte, stay connected and silent as a device whose source stopped
    would, taking what the host sends, until the host closes (or ``limit_s``). Closing on a
    timer instead raced a slow host: a recording still identifying or probing for commands
    when the timer ran out lost the device."""
    connection.settimeout(0.05)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if not connection.recv(4096):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def _drain(connection: socket.socket) -> None:
    """Take what the host sent (its control probe), as a device does, so that closing ends
    the stream with a FIN, not a reset that discards the bytes the host has not read yet."""
    connection.setblocking(False)
    try:
        while connection.recv(4096):
            pass
    except BlockingIOError:
        pass


def _read_back(out: Path):
    reader = neo.rawio.OpenEphysBinaryRawIO(str(out))
    reader.parse_header()
    samples = reader.get_analogsignal_chunk(0, 0, stream_index=0)
    return reader, samples, json.loads((out / RECORDING / "spikeforge.json").read_text())


def test_recording_equals_what_the_device_sent_and_marks_every_loss(tmp_path):
    # 8 channels on a 3 Mbaud link need 176 % of it: frames are dropped on the device.
    config = SystemConfig(channels=8, sweeps_per_frame=8, link_buffer_samples=256,
                          identity_interval_frames=100)
    played = PlayedDevice(config, seconds=2.0)
    with Device.open(played.url) as device:
        final = record(device, tmp_path / "rec", duration_s=1.0)
    assert final.ended == "duration reached"

    reader, samples, meta = _read_back(tmp_path / "rec")
    sweeps = config.sample_rate_hz
    assert samples.shape == (sweeps, config.channels)
    assert reader.get_signal_sampling_rate(0) == config.sample_rate_hz
    spf = config.sweeps_per_frame
    sent = [s for s in played.schedule.sent_slots if s * spf < sweeps]
    dropped = [s for s in played.schedule.dropped_slots if sent[0] < s < sweeps // spf]
    assert dropped, "this configuration must drop frames"
    first = sent[0] * spf
    for slot in sent:
        np.testing.assert_array_equal(
            samples[slot * spf - first:(slot + 1) * spf - first],
            played.truth[slot * spf:(slot + 1) * spf])
    lost = {loss["first_sample"] // spf for loss in meta["losses"]}
    lost_slots = {s for loss in meta["losses"]
                  for s in range(loss["first_sample"] // spf,
                                 (loss["first_sample"] + loss["samples"]) // spf)}
    assert lost <= lost_slots
    assert lost_slots == {s for s in dropped if s * spf - first < sweeps}
    for slot in lost_slots:
        assert not samples[slot * spf - first:(slot + 1) * spf - first].any()
    assert meta["samples_lost"] == len(lost_slots) * spf
    assert meta["link"]["sequence_gaps"] >= len(lost_slots)
    # Each loss is a TTL event (a start and an end) the readers see.
    assert reader.event_channels_count() == 1
    assert reader.event_count(0, 0, 0) == len(meta["losses"])

    # The same recording, exported to NWB, holds the same samples and the same losses.
    pynwb = pytest.importorskip("pynwb")
    nwb_path = export_nwb(tmp_path / "rec", tmp_path / "rec.nwb")
    with pynwb.NWBHDF5IO(str(nwb_path), "r") as io:
        nwb = io.read()
        series = nwb.acquisition["ElectricalSeries"]
        np.testing.assert_array_equal(series.data[:], samples)
        assert series.rate == config.sample_rate_hz
        assert series.starting_time == first / config.sample_rate_hz
        assert series.conversion == pytest.approx(0.195e-6)
        losses = nwb.intervals["data_loss"].to_dataframe()
        assert list(losses["samples"]) == [loss["samples"] for loss in meta["losses"]]


def test_detected_spikes_are_recorded_and_counted_in_the_status(tmp_path):
    """With the detection path built, the EVENTS frames the device sends land in the
    recording's spikeforge-detections/ folder, exactly as the detector model made them, and
    the status line shows the spike rate."""
    config = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                          baud=6_000_000, identity_interval_frames=100,
                          test_source=TestSourceConfig(spike_rate_hz=400.0),
                          detector=DetectorConfig(enabled=True))
    played = PlayedDevice(config, seconds=1.5)
    lines = []
    with Device.open(played.url) as device:
        final = record(device, tmp_path / "rec", duration_s=1.0,
                       on_status=lambda status: lines.append(status.line()))
    assert final.ended == "duration reached"

    folder = tmp_path / "rec" / RECORDING / "spikeforge-detections"
    numbers = np.load(folder / "sample_numbers.npy")
    channels = np.load(folder / "channels.npy")
    peaks = np.load(folder / "peaks.npy")
    pre = np.load(folder / "snippet_pre.npy")
    waveforms = np.load(folder / "waveforms.npy")
    first = int(np.load(tmp_path / "rec" / RECORDING / "continuous" / "spikeforge-100.acquisition"
                        / "sample_numbers.npy")[0])
    end = first + config.sample_rate_hz
    sent = []      # what the device sent, decoded by the host's own parser
    for item in StreamDecoder().feed(bytes(played.schedule.data)):
        if isinstance(item, EventBlock):
            sent.extend(e for e in item.events if first <= e.sample < end)
    recorded = len(numbers)
    # Events still in flight when the duration was reached are not part of the recording.
    assert recorded >= sum(e.sample < end - 300 for e in sent) > 50
    assert recorded <= len(sent)
    assert list(numbers) == [e.sample for e in sent[:recorded]]
    assert list(channels) == [e.channel for e in sent[:recorded]]
    assert list(peaks) == [e.peak for e in sent[:recorded]]
    peak_column = config.detector.max_snippet_pre
    for row, event in enumerate(sent[:recorded]):
        assert pre[row] == event.pre
        start = peak_column - event.pre
        np.testing.assert_array_equal(waveforms[row, start:start + len(event.snippet)],
                                      event.snippet)
    meta = json.loads((tmp_path / "rec" / RECORDING / "spikeforge.json").read_text())
    assert meta["spikes"] == recorded == final.spikes
    assert final.spikes_per_s == pytest.approx(recorded / 1.0)
    assert "spikes/s" in final.line()

    # Exported to NWB, the same events: the table row for row, the snippets per channel.
    pynwb = pytest.importorskip("pynwb")
    with pynwb.NWBHDF5IO(str(export_nwb(tmp_path / "rec", tmp_path / "rec.nwb")), "r") as io:
        module = io.read().processing["ecephys"]
        table = module["spike_detections"].to_dataframe()
        assert list(table["sample_number"]) == list(numbers)
        assert list(table["channel"]) == list(channels)
        assert list(table["peak"]) == list(peaks)
        np.testing.assert_allclose(table["time"], numbers / config.sample_rate_hz)
        series = {name: data for name, data in module.data_interfaces.items()
                  if name.startswith("channel_")}
        assert sorted(series) == [f"channel_{c:04d}" for c in sorted(set(channels))]
        for channel in set(channels):
            rows = channels == channel
            one = series[f"channel_{channel:04d}"]
            np.testing.assert_array_equal(one.data[:, 0, :], waveforms[rows])
            np.testing.assert_allclose(one.timestamps[:],
                                       numbers[rows] / config.sample_rate_hz)
            assert list(one.electrodes.data[:]) == [channel]


def test_device_that_goes_away_leaves_a_readable_recording(tmp_path):
    config = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                          identity_interval_frames=100)
    played = PlayedDevice(config, seconds=5.0, close_after_s=1.0)
    with Device.open(played.url) as device, pytest.raises(DeviceDisconnected, match="lost"):
        record(device, tmp_path / "rec")
    _, samples, meta = _read_back(tmp_path / "rec")
    assert meta["ended"].startswith("device error")
    assert 0.5 * config.sample_rate_hz < len(samples) <= 1.2 * config.sample_rate_hz


def test_ports_that_do_not_work_say_what_to_do():
    with pytest.raises(DeviceNotFound, match="no serial port.*plugged in"):
        Device.open("/dev/ttyNOSUCHPORT")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DeviceNotFound, match="nothing listens"):
        Device.open(f"socket://127.0.0.1:{port}")
    with Device.open("loop://") as device, pytest.raises(DeviceSilent, match="no data"):
        device.identify(timeout_s=0.3)


def test_a_device_without_commands_refuses_modes_and_masks_the_same_way(tmp_path):
    """Both requests that need the control path fail with DeviceNoControl, naming the fix,
    before anything is written."""
    config = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                          identity_interval_frames=100)
    played = PlayedDevice(config, seconds=0.5)
    with Device.open(played.url) as device:
        with pytest.raises(DeviceNoControl, match="record without --mode"):
            record(device, tmp_path / "a", duration_s=0.1, control=False, mode="lossless")
        with pytest.raises(DeviceNoControl, match="record every channel"):
            record(device, tmp_path / "b", duration_s=0.1, control=False, channels=[0])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _recording_in_progress(tmp_path: Path) -> tuple[SystemConfig, PlayedDevice,
                                                    subprocess.Popen, Path]:
    """`spikeforge record` in a subprocess, from a played device, once it has written a
    second of samples; returns the configuration, the device, the process and the data file."""
    config = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                          identity_interval_frames=100)
    played = PlayedDevice(config, seconds=7.0)
    out = tmp_path / "rec"
    # SIGINT at its default in the recorder, so Python turns it into KeyboardInterrupt as at
    # a terminal: a test run started in the background by a non-interactive shell ignores
    # SIGINT, and a child would inherit that.
    process = subprocess.Popen(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port", played.url, "--out",
         str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    data = out / RECORDING / "continuous" / "spikeforge-100.acquisition" / "continuous.dat"
    one_second = config.sample_rate_hz * config.channels * 2
    deadline = time.monotonic() + 60  # the machine may be slow
    while not (data.exists() and data.stat().st_size >= one_second):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the recorder wrote nothing for a minute"
        time.sleep(0.05)
    return config, played, process, data


def test_ctrl_c_ends_the_recording_cleanly(tmp_path):
    config, played, process, _ = _recording_in_progress(tmp_path)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "recording ended (interrupted)" in stdout
    _, samples, meta = _read_back(tmp_path / "rec")
    assert meta["ended"] == "interrupted"
    assert len(samples) >= config.sample_rate_hz
    np.testing.assert_array_equal(samples, played.truth[:len(samples)])


def test_after_kill_9_all_but_the_last_second_is_readable(tmp_path):
    config, played, process, data = _recording_in_progress(tmp_path)
    # Everything written by now is older than the flush that must happen within a second.
    written_before = data.stat().st_size // (2 * config.channels)
    time.sleep(1.5)
    process.kill()
    process.wait(timeout=10)
    _, samples, meta = _read_back(tmp_path / "rec")
    assert meta["ended"] == "still recording"
    assert len(samples) >= written_before
    np.testing.assert_array_equal(samples, played.truth[:len(samples)])


def test_lossless_frames_make_the_same_recording_as_raw_ones(tmp_path):
    """A device in lossless mode (COMPRESSED frames, one coded block each) is recorded into
    the same Open Ephys folder as the same device sending raw DATA frames."""
    from spikeforge.firmware.compression import CodecConfig
    from spikeforge.firmware.wire import BandwidthMode

    config = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                          identity_interval_frames=100,
                          codec=CodecConfig(enabled=True, block_sweeps=16),
                          test_source=TestSourceConfig(noise_shift=3))
    recordings = {}
    for name, modes in (("raw", None), ("lossless", [(0, BandwidthMode.LOSSLESS)])):
        played = PlayedDevice(config, seconds=1.5, modes=modes)
        kinds = {"raw": played.schedule.sent_slots, "lossless": played.schedule.sent_blocks}
        assert kinds[name] and not (played.schedule.sent_blocks if name == "raw"
                                    else played.schedule.sent_slots)
        with Device.open(played.url) as device:
            final = record(device, tmp_path / name, duration_s=0.5)
        assert final.ended == "duration reached" and final.samples_lost == 0
        reader, samples, meta = _read_back(tmp_path / name)
        first = reader.get_signal_t_start(0, 0, 0) * config.sample_rate_hz
        first = round(first)
        np.testing.assert_array_equal(samples, played.truth[first:first + samples.shape[0]])
        recordings[name] = (first, samples)
    (raw_first, raw), (coded_first, coded) = recordings["raw"], recordings["lossless"]
    assert raw.shape == coded.shape == (config.sample_rate_hz // 2, config.channels)
    start = max(raw_first, coded_first)
    stop = min(raw_first, coded_first) + raw.shape[0]
    assert stop - start > raw.shape[0] // 2
    np.testing.assert_array_equal(raw[start - raw_first:stop - raw_first],
                                  coded[start - coded_first:stop - coded_first])


def test_a_masked_device_is_recorded_with_its_enabled_channels_only(tmp_path):
    """A build whose reset mask enables 1, 3, 4, 7 of 8 channels: the recording holds those
    four, named after the device channels, and NWB refers to them as electrodes 1, 3, 4, 7."""
    config = SystemConfig(channels=8, sweeps_per_frame=8, link_buffer_samples=256,
                          identity_interval_frames=100, channel_mask=(1, 3, 4, 7))
    played = PlayedDevice(config, seconds=1.0)
    with Device.open(played.url) as device:
        final = record(device, tmp_path / "rec", duration_s=0.5, control=False)
    assert final.ended == "duration reached"

    reader, samples, meta = _read_back(tmp_path / "rec")
    assert samples.shape == (config.sample_rate_hz // 2, 4)
    assert list(reader.header["signal_channels"]["name"]) == ["CH2", "CH4", "CH5", "CH8"]
    assert meta["channels_enabled"] == [1, 3, 4, 7] and meta["samples_lost"] == 0
    first = played.schedule.sent_slots[0] * config.sweeps_per_frame
    np.testing.assert_array_equal(
        samples, played.truth[first:first + len(samples)][:, [1, 3, 4, 7]])

    pynwb = pytest.importorskip("pynwb")
    with pynwb.NWBHDF5IO(str(export_nwb(tmp_path / "rec", tmp_path / "rec.nwb")), "r") as io:
        series = io.read().acquisition["ElectricalSeries"]
        np.testing.assert_array_equal(series.data[:], samples)
        assert list(series.electrodes.to_dataframe().index) == [1, 3, 4, 7]


def test_lossless_frames_of_a_masked_device_are_recorded_with_its_enabled_channels(tmp_path):
    """COMPRESSED blocks carry every channel (the coder ignores the mask); the recording keeps
    the channels the mask enables, exactly the source's samples."""
    from spikeforge.firmware.compression import CodecConfig
    from spikeforge.firmware.wire import BandwidthMode

    config = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                          identity_interval_frames=100, channel_mask=(1, 3),
                          codec=CodecConfig(enabled=True, block_sweeps=16),
                          test_source=TestSourceConfig(noise_shift=3))
    played = PlayedDevice(config, seconds=1.0, modes=[(0, BandwidthMode.LOSSLESS)])
    assert played.schedule.sent_blocks
    with Device.open(played.url) as device:
        final = record(device, tmp_path / "rec", duration_s=0.4, control=False)
    assert final.ended == "duration reached" and final.samples_lost == 0
    reader, samples, meta = _read_back(tmp_path / "rec")
    assert list(reader.header["signal_channels"]["name"]) == ["CH2", "CH4"]
    assert meta["channels_enabled"] == [1, 3]
    first = round(reader.get_signal_t_start(0, 0, 0) * config.sample_rate_hz)
    assert samples.shape == (round(0.4 * config.sample_rate_hz), 2)
    np.testing.assert_array_equal(samples, played.truth[first:first + len(samples)][:, [1, 3]])


def test_events_plus_lfp_is_recorded_as_a_second_continuous_stream(tmp_path):
    """A device in mode events+lfp (LFP frames and EVENTS frames, no DATA) is recorded with
    the LFP frames as the stream spikeforge-100.lfp at the decimated rate, exactly the
    decimator model's output, and the events inside the recorded stretch."""
    from spikeforge.firmware.config import DecimatorConfig
    from spikeforge.firmware.wire import BandwidthMode
    from spikeforge.sim.models.decimator import decimate

    config = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                          identity_interval_frames=100, channel_mask=(0, 1, 3),
                          test_source=TestSourceConfig(spike_rate_hz=100.0),
                          detector=DetectorConfig(enabled=True),
                          lfp=DecimatorConfig(factor=10, order=3))
    played = PlayedDevice(config, seconds=0.8, modes=[(0, BandwidthMode.EVENTS_LFP)])
    assert played.schedule.sent_lfp_slots and not played.schedule.sent_slots
    with Device.open(played.url) as device:
        final = record(device, tmp_path / "rec", duration_s=0.3)
    assert final.ended == "duration reached" and final.samples_lost == 0
    assert final.recorded_s == pytest.approx(0.3)

    folder = tmp_path / "rec" / RECORDING
    structure = json.loads((folder / "structure.oebin").read_text())
    # The LFP is the one continuous stream: an empty acquisition stream is not listed
    # (readers cannot open an empty one).
    assert [entry["stream_name"] for entry in structure["continuous"]] == ["lfp"]
    lfp_entry = structure["continuous"][0]
    assert lfp_entry["folder_name"] == "spikeforge-100.lfp/"
    assert lfp_entry["sample_rate"] == 3000.0
    assert lfp_entry["num_channels"] == 3
    stream = folder / "continuous" / "spikeforge-100.lfp"
    numbers = np.load(stream / "sample_numbers.npy")
    samples = np.fromfile(stream / "continuous.dat", dtype="<i2").reshape(-1, 3)
    assert len(numbers) == len(samples) == 900
    np.testing.assert_array_equal(numbers, np.arange(numbers[0], numbers[0] + 900))
    np.testing.assert_allclose(np.load(stream / "timestamps.npy"), numbers / 3000.0)
    model = decimate(config.lfp, played.truth)[:, [0, 1, 3]]
    np.testing.assert_array_equal(samples, model[numbers[0]:numbers[0] + 900])
    assert numbers[0] % config.sweeps_per_frame == 0   # starts with a whole LFP frame

    # The events of the recorded stretch (source sweeps of the decimated ones).
    meta = json.loads((folder / "spikeforge.json").read_text())
    assert meta["lfp_sweeps"] == 900 and meta["lfp_samples_lost"] == 0
    low, high = numbers[0] * 10, (numbers[0] + 900) * 10
    detections = np.load(folder / "spikeforge-detections" / "sample_numbers.npy")
    sent = [e.sample for item in StreamDecoder().feed(bytes(played.schedule.data))
            if isinstance(item, EventBlock) for e in item.events]
    inside = [s for s in sent if low <= s < high]
    assert len(inside) > 10
    assert list(detections) == inside[:len(detections)]
    assert len(detections) >= sum(s < high - 300 for s in inside)

    # Exported to NWB: the LFP at its own rate, the events as before, no empty raw series.
    pynwb = pytest.importorskip("pynwb")
    with pynwb.NWBHDF5IO(str(export_nwb(tmp_path / "rec", tmp_path / "rec.nwb")), "r") as io:
        nwb = io.read()
        assert "ElectricalSeries" not in nwb.acquisition
        series = nwb.processing["ecephys"]["LFP"]["LFP"]
        np.testing.assert_array_equal(series.data[:], samples)
        assert series.rate == 3000.0
        assert series.starting_time == pytest.approx(numbers[0] / 3000.0)
        assert list(series.electrodes.data[:]) == [0, 1, 3]
        table = nwb.processing["ecephys"]["spike_detections"].to_dataframe()
        assert list(table["sample_number"]) == list(detections)


def _blocks(config: SystemConfig, stream: str, slots: list[int]) -> list[DataBlock]:
    """Blocks of ``stream`` for frame slots ``slots``: sweep k holds the value k in every
    channel, so each recorded sample says which sweep it is."""
    spf = config.sweeps_per_frame
    return [DataBlock(seq=slot, first_sample=slot * spf, stream=stream,
                      samples=np.repeat(np.arange(slot * spf, (slot + 1) * spf, dtype=np.int16)
                                        [:, None], config.channels, axis=1))
            for slot in slots]


@pytest.mark.parametrize("stream", ["data", "lfp"])
def test_a_stream_whose_last_frames_are_lost_is_zero_filled_to_its_duration(tmp_path, stream):
    """Frames lost just before the duration ends are a loss like any other: the stream is
    zero-filled up to its duration and the loss is listed, for the full-rate stream and for
    the LFP stream of mode events+lfp alike."""
    from spikeforge.firmware.config import DecimatorConfig

    config = SystemConfig(channels=4, sweeps_per_frame=8, detector=DetectorConfig(enabled=True),
                          lfp=DecimatorConfig(factor=10, order=3))
    rate_hz = config.sample_rate_hz if stream == "data" else config.lfp_rate_hz
    # Slots 5..16 are the duration (12 frames); 14, 15 and 16 never arrive; 17 does.
    device = ScriptedDevice(config, _blocks(config, stream, [5, 6, 7, 8, 9, 10, 11, 12, 13, 17]))
    final = record(device, tmp_path / "rec", duration_s=96 / rate_hz, control=False)
    assert final.ended == "duration reached"
    assert final.samples_lost == 24

    folder = tmp_path / "rec" / RECORDING
    name = "spikeforge-100.acquisition" if stream == "data" else "spikeforge-100.lfp"
    numbers = np.load(folder / "continuous" / name / "sample_numbers.npy")
    samples = np.fromfile(folder / "continuous" / name / "continuous.dat",
                          dtype="<i2").reshape(-1, 4)
    np.testing.assert_array_equal(numbers, np.arange(40, 136))
    np.testing.assert_array_equal(samples[:72, 0], np.arange(40, 112))
    assert not samples[72:].any()
    meta = json.loads((folder / "spikeforge.json").read_text())
    prefix = "" if stream == "data" else "lfp_"
    assert meta[f"{prefix}losses"] == [{"first_sample": 112, "samples": 24}]
    assert meta[f"{prefix}samples_lost"] == 24


class ListSink:
    """A second consumer of the recording: keeps every call it receives."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.closed: dict | None = None

    def write_continuous(self, stream, first_sample, samples):
        self.calls.append(("samples", stream, first_sample, np.array(samples)))

    def write_loss(self, stream, first_sample, sweeps):
        self.calls.append(("loss", stream, first_sample, sweeps))

    def write_events(self, block):
        self.calls.append(("events", block))

    def flush(self, facts):
        self.calls.append(("flush", dict(facts)))

    def close(self, facts):
        self.closed = dict(facts)


def test_a_second_sink_receives_exactly_what_the_open_ephys_writer_wrote(tmp_path):
    """An extra sink given to the recorder sees the same samples, losses and events as the
    Open Ephys folder holds, without holes: every sweep is in a block or in a loss. The
    device's stream is the models' (decoded by the host's parser), with DATA frames lost."""
    config = SystemConfig(channels=8, sweeps_per_frame=8, link_buffer_samples=256,
                          baud=6_000_000, identity_interval_frames=100,
                          test_source=TestSourceConfig(spike_rate_hz=400.0),
                          detector=DetectorConfig(enabled=True))
    truth = source_signal(config, config.sample_rate_hz).samples
    schedule = frame_stream(config, truth, events=device_events(config, truth, SOURCE_LATENCY))
    lost_slots = {100, 101, 102, 700, 1873, 1874}   # 1873, 1874: the duration's last frames
    items = [item for item in StreamDecoder().feed(bytes(schedule.data))
             if not (isinstance(item, DataBlock) and item.seq in lost_slots)]
    sink = ListSink()
    final = record(ScriptedDevice(config, items), tmp_path / "rec", duration_s=0.5,
                   control=False, sinks=[sink])
    assert final.ended == "duration reached" and final.samples_lost == 6 * 8

    reader, samples, meta = _read_back(tmp_path / "rec")
    folder = tmp_path / "rec" / RECORDING
    numbers = np.load(folder / "continuous" / "spikeforge-100.acquisition" / "sample_numbers.npy")
    rows, sample_numbers, losses, events = [], [], [], []
    for call in sink.calls:
        if call[0] == "samples":
            _, stream, first, block = call
            rows.append(block)
        elif call[0] == "loss":
            _, stream, first, sweeps = call
            losses.append({"first_sample": first, "samples": sweeps})
            rows.append(np.zeros((sweeps, config.channels), dtype=np.int16))
        elif call[0] == "events":
            events.extend(call[1].events)
            continue
        else:
            continue
        assert stream == "data"
        assert not sample_numbers or first == sample_numbers[-1] + 1   # no holes
        sample_numbers.extend(range(first, first + len(rows[-1])))
    np.testing.assert_array_equal(np.concatenate(rows), samples)
    np.testing.assert_array_equal(sample_numbers, numbers)
    assert losses == meta["losses"]
    assert [loss["samples"] for loss in losses] == [24, 8, 16]
    assert losses[-1]["first_sample"] + 16 == numbers[-1] + 1   # cut off at the duration
    detections = folder / "spikeforge-detections"
    assert [e.sample for e in events] == list(np.load(detections / "sample_numbers.npy"))
    assert [e.channel for e in events] == list(np.load(detections / "channels.npy"))
    assert [e.peak for e in events] == list(np.load(detections / "peaks.npy"))
    assert len(events) == meta["spikes"] > 0
    assert sink.closed["ended"] == meta["ended"] == "duration reached"
    assert sink.closed["link"] == meta["link"]


def test_the_recorder_refuses_a_sink_without_the_sink_methods(tmp_path):
    config = SystemConfig(channels=4, sweeps_per_frame=8)
    device = ScriptedDevice(config, _blocks(config, "data", [0, 1]))
    with pytest.raises(TypeError, match="write_continuous"):
        record(device, tmp_path / "rec", duration_s=0.001, control=False, sinks=[object()])
    assert not (tmp_path / "rec").exists()


def test_a_device_that_restarts_mid_recording_ends_it_with_a_clear_device_error(tmp_path):
    """Sample numbers that go back (a reset board numbers its frames afresh) end the
    recording cleanly: what came before is closed and readable, and the error says why."""
    from spikeforge.host.errors import DeviceRestarted

    config = SystemConfig(channels=4, sweeps_per_frame=8)
    device = ScriptedDevice(config, _blocks(config, "data", [5, 6, 7, 0, 1]))
    with pytest.raises(DeviceRestarted, match="restarted.*went back from sweep 64 to 0"):
        record(device, tmp_path / "rec", control=False)
    meta = json.loads((tmp_path / "rec" / RECORDING / "spikeforge.json").read_text())
    assert meta["ended"].startswith("device error: the device restarted")
    numbers = np.load(tmp_path / "rec" / RECORDING / "continuous" / "spikeforge-100.acquisition"
                      / "sample_numbers.npy")
    np.testing.assert_array_equal(numbers, np.arange(40, 64))


def test_identify_waits_longer_for_the_identity_frame_while_good_frames_arrive():
    """A slow device's good frames before its first identity frame extend the wait from
    timeout_s to patience_s; garbage does not."""
    import threading

    from spikeforge.firmware.framing import FrameType, build_frame
    from spikeforge.firmware.identity import encode_identity

    config = SystemConfig(channels=2, sweeps_per_frame=4, link_buffer_samples=64)
    with Device.open("loop://") as device:
        port = device._port

        def send() -> None:
            for seq in range(6):
                port.write(build_frame(FrameType.DATA, seq, bytes(16)))
                time.sleep(0.1)
            port.write(build_frame(FrameType.IDENTITY, 0, encode_identity(config)))

        threading.Thread(target=send, daemon=True).start()
        assert device.identify(timeout_s=0.2, patience_s=5.0) == config
    with Device.open("loop://") as device:
        device._port.write(b"\x01" * 300)
        started = time.monotonic()
        with pytest.raises(DeviceSilent, match="300 bytes .* but no identity frame"):
            device.identify(timeout_s=0.3, patience_s=5.0)
        assert time.monotonic() - started < 2.0
