"""Live streaming over LSL: a real pylsl inlet in the same test receives every sample and
event that the recording holds, in order, with the right values and device-clock times;
lost sweeps are not pushed but marked. Loopback only; every wait is bounded."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from scripted_device import ScriptedDevice

from spikeforge.firmware.config import DetectorConfig, SystemConfig, TestSourceConfig
from spikeforge.host import DataBlock, StreamDecoder
from spikeforge.host.lsl import SPIKE_COLUMNS, LslSink, device_source_id
from spikeforge.host.recorder import Recorder
from spikeforge.sim.models.detector import device_events
from spikeforge.sim.models.framer import SOURCE_LATENCY, frame_stream
from spikeforge.sim.models.source import source_signal

pylsl = pytest.importorskip("pylsl")

RECORDING = Path("Record Node 101/experiment1/recording1")
WAIT_S = 10.0     # bound on every LSL wait (resolve, connect, pull)


class Inlets:
    """Inlets on every outlet of a sink, connected before anything is pushed."""

    def __init__(self, sink: LslSink):
        self.inlets = {}
        for stream, outlet in sink.outlets.items():
            found = pylsl.resolve_byprop("source_id", f"{sink.source_id}/{stream}", 1, WAIT_S)
            assert found, f"no LSL stream {sink.source_id}/{stream} on loopback"
            inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=False)
            inlet.open_stream(timeout=WAIT_S)
            assert outlet.wait_for_consumers(WAIT_S)
            self.inlets[stream] = inlet

    def pull(self, stream: str, count: int) -> tuple[list, np.ndarray]:
        """``count`` samples of ``stream`` (fewer if they do not come within WAIT_S)."""
        samples, stamps = [], []
        deadline = time.monotonic() + WAIT_S
        while len(samples) < count and time.monotonic() < deadline:
            chunk, times = self.inlets[stream].pull_chunk(timeout=0.2,
                                                           max_samples=count - len(samples))
            samples.extend(chunk)
            stamps.extend(times)
        return samples, np.asarray(stamps)

    def info(self, stream: str):
        return self.inlets[stream].info(timeout=WAIT_S)

    def close(self) -> None:
        for inlet in self.inlets.values():
            inlet.close_stream()


def _stream_and_read(recorder: Recorder, sink: LslSink, port: str, expected):
    """Open the sink's outlets, connect inlets, run the recorder; pull what arrived:
    ``expected(final)`` samples of each outlet it names."""
    recorder.prepare()
    sink.open_for(recorder, port)
    inlets = Inlets(sink)
    try:
        final = recorder.run()
        expected = expected(final)
        got = {stream: inlets.pull(stream, count) for stream, count in expected.items()}
        extra = {stream: inlets.inlets[stream].pull_chunk(timeout=0.3)[0]
                 for stream in expected if stream != "markers"}
        infos = {stream: inlets.info(stream) for stream in expected}
    finally:
        inlets.close()
        sink.release()
    assert not any(extra.values()), "more samples arrived than the recording holds"
    return final, got, infos


def _fixed_clock(value: float = 5000.0):
    return lambda: value


def test_lsl_outlets_carry_exactly_the_recording_with_device_clock_times(tmp_path):
    """Recording and streaming at once (record --lsl): the data outlet carries every sweep the
    Open Ephys folder holds (not the zero-filled ones), stamped anchor + (n - n0) / rate; each
    loss is a marker and a jump in the timestamps; the spikes outlet carries every event of
    the recording with its snippet at its sample's time."""
    config = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                          baud=6_000_000, identity_interval_frames=100,
                          test_source=TestSourceConfig(spike_rate_hz=400.0),
                          detector=DetectorConfig(enabled=True))
    truth = source_signal(config, config.sample_rate_hz // 2).samples
    schedule = frame_stream(config, truth, events=device_events(config, truth, SOURCE_LATENCY))
    lost_slots = {40, 41, 300, 600}
    items = [item for item in StreamDecoder().feed(bytes(schedule.data))
             if not (isinstance(item, DataBlock) and item.seq in lost_slots)]
    device = ScriptedDevice(config, items, "scripted://lsl-record")
    sink = LslSink("spikeforge-test-record", clock=_fixed_clock())
    recorder = Recorder(device, tmp_path / "rec", duration_s=0.2, control=False, sinks=[sink])
    rate = config.sample_rate_hz

    folder = tmp_path / "rec" / RECORDING
    final, got, infos = _stream_and_read(
        recorder, sink, device.url,
        lambda final: {"data": round(0.2 * rate) - 4 * 8, "spikes": final.spikes,
                       "markers": 5})
    assert final.ended == "duration reached" and final.samples_lost == 4 * 8

    # The continuous outlet: the recording's sweeps minus the lost ones, in order.
    stream = folder / "continuous" / "spikeforge-100.acquisition"
    numbers = np.load(stream / "sample_numbers.npy")
    recorded = np.fromfile(stream / "continuous.dat", dtype="<i2").reshape(-1, 4)
    meta = json.loads((folder / "spikeforge.json").read_text())
    lost = np.zeros(len(numbers), dtype=bool)
    for loss in meta["losses"]:
        lost[(numbers >= loss["first_sample"])
             & (numbers < loss["first_sample"] + loss["samples"])] = True
    assert lost.sum() == 32
    samples, stamps = got["data"]
    np.testing.assert_array_equal(np.asarray(samples, dtype=np.int16), recorded[~lost])
    # Device-clock times: the first block's last sweep at the clock's reading, spacing 1/rate.
    kept = numbers[~lost]
    anchor_time = 5000.0 - (config.sweeps_per_frame - 1) / rate
    np.testing.assert_allclose(stamps, anchor_time + (kept - numbers[0]) / rate,
                               rtol=0, atol=1e-9)
    assert np.all(np.diff(stamps) > 0)

    # Markers: the anchor, every loss (as the folder lists them), the end.
    markers, marker_times = got["markers"]
    markers = [json.loads(m[0]) for m in markers]
    assert markers[0] == {"event": "start", "stream": "data", "first_sample": int(numbers[0]),
                          "source_sweep": int(numbers[0])}
    assert marker_times[0] == pytest.approx(anchor_time, abs=1e-9)
    losses = [m for m in markers if m["event"] == "loss"]
    assert [{"first_sample": m["first_sample"], "samples": m["sweeps"]} for m in losses] \
        == meta["losses"]
    assert [m["lost_total"] for m in losses] == list(np.cumsum([8 * 2, 8, 8]))
    for marker, stamp in zip(markers[1:], marker_times[1:], strict=False):
        if marker["event"] == "loss":
            assert stamp == pytest.approx(anchor_time + (marker["first_sample"] - numbers[0])
                                          / rate, abs=1e-9)
    assert markers[-1]["event"] == "end" and markers[-1]["ended"] == "duration reached"
    assert markers[-1]["samples_lost"] == {"data": 32}

    # Spikes: every detection of the recording, its values and its sample's time.
    detections = folder / "spikeforge-detections"
    spikes, spike_times = got["spikes"]
    spikes = np.asarray(spikes, dtype=np.int16)
    assert len(spikes) == meta["spikes"] > 5
    columns = len(SPIKE_COLUMNS)
    np.testing.assert_array_equal(spikes[:, 0], np.load(detections / "channels.npy"))
    np.testing.assert_array_equal(spikes[:, 1], np.load(detections / "peaks.npy"))
    np.testing.assert_array_equal(spikes[:, 2], np.load(detections / "snippet_pre.npy"))
    np.testing.assert_array_equal(spikes[:, columns:], np.load(detections / "waveforms.npy"))
    spike_samples = np.load(detections / "sample_numbers.npy")
    np.testing.assert_allclose(spike_times, anchor_time + (spike_samples - numbers[0]) / rate,
                               rtol=0, atol=1e-9)

    # What a consumer learns from the stream's description.
    info = infos["data"]
    assert info.channel_format() == pylsl.cf_int16
    assert info.nominal_srate() == rate and info.channel_count() == 4
    assert info.source_id() == device_source_id(config, device.url) + "/data"
    channel = info.desc().child("channels").child("channel")
    labels = []
    while not channel.empty():
        labels.append(channel.child_value("label"))
        assert float(channel.child_value("scaling_factor")) == 0.195
        assert channel.child_value("unit") == "microvolts"
        channel = channel.next_sibling()
    assert labels == ["CH1", "CH2", "CH3", "CH4"]
    assert infos["spikes"].channel_count() == columns + 16 + 1 + 31


def test_stream_without_a_folder_carries_the_lfp_of_events_plus_lfp(tmp_path):
    """Streaming only (spikeforge stream: Recorder with out=None): nothing is written, the
    LFP stream of mode events+lfp goes to its own outlet at the decimated rate, LFP sweep d
    stamped as source sweep d * factor."""
    from spikeforge.firmware.config import DecimatorConfig

    config = SystemConfig(channels=4, sweeps_per_frame=8, detector=DetectorConfig(enabled=True),
                          lfp=DecimatorConfig(factor=10, order=3))
    spf = config.sweeps_per_frame
    slots = [5, 6, 7, 9, 10, 11, 12, 13, 14]     # slot 8 lost
    blocks = [DataBlock(seq=slot, first_sample=slot * spf, stream="lfp",
                        samples=np.repeat(np.arange(slot * spf, (slot + 1) * spf,
                                                    dtype=np.int16)[:, None], 4, axis=1))
              for slot in slots]
    device = ScriptedDevice(config, blocks, "scripted://lsl-lfp")
    sink = LslSink("spikeforge-test-lfp", clock=_fixed_clock(100.0))
    recorder = Recorder(device, None, duration_s=64 / config.lfp_rate_hz, control=False,
                        sinks=[sink])
    recorder.prepare()
    sink.open_for(recorder, device.url)
    # The mode is not known before the first block (a device without commands): both.
    assert set(sink.outlets) == {"data", "lfp", "spikes", "markers"}
    inlets = Inlets(sink)
    try:
        final = recorder.run()
        samples, stamps = inlets.pull("lfp", 56)
        markers, _ = inlets.pull("markers", 3)
        info = inlets.info("lfp")
    finally:
        inlets.close()
        sink.release()
    assert not list(tmp_path.iterdir())
    assert final.ended == "duration reached" and final.samples_lost == 8
    assert final.recorded_s == pytest.approx(64 / config.lfp_rate_hz)
    numbers = np.r_[40:64, 72:104]
    np.testing.assert_array_equal(np.asarray(samples)[:, 0], numbers)
    source_rate = config.sample_rate_hz
    np.testing.assert_allclose(stamps, 100.0 - 7 * 10 / source_rate
                               + (numbers - 40) * 10 / source_rate, rtol=0, atol=1e-9)
    assert [json.loads(m[0])["event"] for m in markers] == ["start", "loss", "end"]
    assert info.nominal_srate() == config.lfp_rate_hz and info.name() == "spikeforge-test-lfp-lfp"


def test_a_sink_used_before_it_is_opened_says_so():
    sink = LslSink()
    with pytest.raises(RuntimeError, match="open"):
        sink.write_continuous("data", 0, np.zeros((1, 1), dtype=np.int16))


def test_the_source_id_names_the_port_and_the_identity():
    one = SystemConfig(channels=4)
    assert device_source_id(one, "/dev/ttyUSB1") == device_source_id(one, "/dev/ttyUSB1")
    assert device_source_id(one, "/dev/ttyUSB1") != device_source_id(one, "/dev/ttyUSB2")
    assert device_source_id(one, "/dev/ttyUSB1") \
        != device_source_id(SystemConfig(channels=8), "/dev/ttyUSB1")


@pytest.mark.sim
@pytest.mark.parametrize("mode", ["raw", "events+lfp"])
def test_lsl_from_the_virtual_board_carries_exactly_its_recording(tmp_path, mode):
    """record --lsl on the virtual board (the Verilated acquisition system at a sim:// URL):
    the continuous outlet (raw: the full-rate stream; events+lfp: the LFP) and the spikes
    outlet carry every sweep and event the Open Ephys folder holds, in order, with the same
    values, stamped start marker + (n - n0) / rate. In raw mode the link is too slow for the
    stream and the events of this build: frames are dropped on the board, the lost sweeps
    are not pushed and each loss is a marker."""
    from spikeforge.host.device import Device
    from spikeforge.sim.virtual_board import VirtualBoard, config_from_sim_url

    path = tmp_path / "board.json"
    # The link named (3 Mbaud): a sim:// URL that names none gets one that fits the stream.
    path.write_text(json.dumps({"channels": 4, "identity_interval_frames": 16,
                                "baud": 3_000_000,
                                "sweeps_per_frame": 8, "link_buffer_samples": 256,
                                "test_source": {"spike_rate_hz": 200.0},
                                "detector": {"enabled": True},
                                "lfp": {"factor": 30, "order": 3}}))
    url = f"sim://{path}"
    config = config_from_sim_url(url)
    stream = "lfp" if mode == "events+lfp" else "data"
    rate = config.lfp_rate_hz if stream == "lfp" else config.sample_rate_hz
    duration_s = 0.1 if stream == "lfp" else 0.05
    sweeps = round(duration_s * rate)
    folder = tmp_path / "rec" / RECORDING

    def expected(final):
        meta = json.loads((folder / "spikeforge.json").read_text())
        losses = len(meta["losses"]) + len(meta.get("lfp_losses", []))
        return {stream: sweeps - final.samples_lost, "spikes": final.spikes,
                "markers": 2 + losses}

    board = VirtualBoard.start(config)
    try:
        with Device.open(board.url) as device:
            sink = LslSink(f"spikeforge-test-vboard-{stream}")
            recorder = Recorder(device, tmp_path / "rec", duration_s=duration_s, mode=mode,
                                sinks=[sink])
            final, got, _ = _stream_and_read(recorder, sink, url, expected)
    finally:
        board.stop()
    assert final.ended == "duration reached"

    name = "spikeforge-100.lfp" if stream == "lfp" else "spikeforge-100.acquisition"
    numbers = np.load(folder / "continuous" / name / "sample_numbers.npy")
    recorded = np.fromfile(folder / "continuous" / name / "continuous.dat",
                           dtype="<i2").reshape(-1, 4)
    assert len(recorded) == sweeps
    meta = json.loads((folder / "spikeforge.json").read_text())
    losses = meta["lfp_losses"] if stream == "lfp" else meta["losses"]
    lost = np.zeros(len(numbers), dtype=bool)
    for loss in losses:
        lost[(numbers >= loss["first_sample"])
             & (numbers < loss["first_sample"] + loss["samples"])] = True
    assert lost.sum() == final.samples_lost
    samples, stamps = got[stream]
    np.testing.assert_array_equal(np.asarray(samples, dtype=np.int16), recorded[~lost])
    markers, marker_times = got["markers"]
    markers = [json.loads(m[0]) for m in markers]
    assert markers[0]["event"] == "start" and markers[0]["first_sample"] == numbers[0]
    np.testing.assert_allclose(stamps, marker_times[0] + (numbers[~lost] - numbers[0]) / rate,
                               rtol=0, atol=1e-9)
    assert [{"first_sample": m["first_sample"], "samples": m["sweeps"]}
            for m in markers if m["event"] == "loss"] == losses
    assert markers[-1]["event"] == "end"
    assert markers[-1]["samples_lost"][stream] == final.samples_lost

    detections = folder / "spikeforge-detections"
    spikes, spike_times = got["spikes"]
    assert len(spikes) == final.spikes == meta["spikes"]
    if mode == "raw":
        assert final.samples_lost > 0, "this build's link should drop frames in raw mode"
        return     # raw mode carries no events
    assert final.spikes > 0
    spikes = np.asarray(spikes, dtype=np.int16)
    np.testing.assert_array_equal(spikes[:, 0], np.load(detections / "channels.npy"))
    np.testing.assert_array_equal(spikes[:, len(SPIKE_COLUMNS):],
                                  np.load(detections / "waveforms.npy"))
    source_first = numbers[0] * (config.lfp.factor if stream == "lfp" else 1)
    np.testing.assert_allclose(
        spike_times, marker_times[0] + (np.load(detections / "sample_numbers.npy")
                                        - source_first) / config.sample_rate_hz,
        rtol=0, atol=1e-9)


@pytest.mark.sim
def test_spikeforge_stream_serves_lsl_without_a_folder():
    """`spikeforge stream --port sim://... --lsl`: a consumer finds the outlets by name while
    the command runs and receives sweeps spaced exactly by the device's sample period; the
    end marker accounts for every sweep."""
    import subprocess
    import sys

    name = "spikeforge-test-cli"
    command = subprocess.Popen(
        [sys.executable, "-m", "spikeforge.cli", "stream", "--port",
         "sim://?channels=4&identity_interval_frames=16", "--duration", "3", "--lsl",
         "--lsl-name", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        found = {}
        for stream in (name, f"{name}-markers"):
            streams = pylsl.resolve_byprop("name", stream, 1, 120.0)
            assert streams, f"spikeforge stream served no outlet {stream}"
            found[stream] = pylsl.StreamInlet(streams[0], max_buflen=60, recover=False)
            found[stream].open_stream(timeout=WAIT_S)
        samples, stamps, markers = [], [], []
        deadline = time.monotonic() + 300
        # Pull while the command runs (the outlets go when it ends), up to the end marker.
        while not (markers and '"end"' in markers[-1][0]) and time.monotonic() < deadline:
            chunk, times = found[name].pull_chunk(timeout=0.1)
            samples.extend(chunk)
            stamps.extend(times)
            markers.extend(found[f"{name}-markers"].pull_chunk(timeout=0.0)[0])
        stdout, stderr = command.communicate(timeout=60)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait(timeout=10)
    assert command.returncode == 0, stderr
    assert "LSL outlets: spikeforge-test-cli" in stderr and "stream ended" in stdout
    assert len(samples) > 100 and len(samples[0]) == 4
    steps = np.diff(stamps) * 30000
    np.testing.assert_allclose(steps, np.round(steps), rtol=0, atol=1e-6)
    end = json.loads(markers[-1][0])
    assert end["event"] == "end" and end["ended"] == "duration reached"
    assert end["samples_pushed"]["data"] + end["samples_lost"]["data"] == 90000
