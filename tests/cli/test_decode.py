"""`spikeforge decode` says what a capture holds: full-rate sweeps, LFP sweeps (mode
events+lfp) and event frames, each counted apart."""

from spikeforge.cli import main
from spikeforge.firmware.config import (
    DecimatorConfig,
    DetectorConfig,
    SystemConfig,
    TestSourceConfig,
)
from spikeforge.firmware.wire import BandwidthMode
from spikeforge.host import DataBlock, EventBlock, StreamDecoder
from spikeforge.sim.models.detector import device_events
from spikeforge.sim.models.framer import SOURCE_LATENCY, frame_stream
from spikeforge.sim.models.source import source_signal


def test_decode_counts_lfp_and_full_rate_sweeps_apart_and_reports_event_frames(tmp_path,
                                                                               capsys):
    config = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                          identity_interval_frames=100,
                          test_source=TestSourceConfig(spike_rate_hz=100.0),
                          detector=DetectorConfig(enabled=True),
                          lfp=DecimatorConfig(factor=10, order=3))
    truth = source_signal(config, 9600).samples
    events = device_events(config, truth, SOURCE_LATENCY)
    # Raw for the first 40 slots, then events+lfp.
    schedule = frame_stream(config, truth, events=events,
                            modes=[(0, BandwidthMode.RAW), (40, BandwidthMode.EVENTS_LFP)])
    capture = tmp_path / "capture.bin"
    capture.write_bytes(bytes(schedule.data))
    items = StreamDecoder().feed(bytes(schedule.data))
    data = sum(i.samples.shape[0] for i in items
               if isinstance(i, DataBlock) and i.stream == "data")
    lfp = sum(i.samples.shape[0] for i in items
              if isinstance(i, DataBlock) and i.stream == "lfp")
    frames = [i for i in items if isinstance(i, EventBlock)]
    spikes = sum(len(i.events) for i in frames)
    assert data and lfp and frames

    assert main(["decode", str(capture)]) == 0
    out = capsys.readouterr().out
    assert f"{data} full-rate sweeps" in out
    assert f"{lfp} LFP sweeps" in out
    assert f"{len(frames)} event frames, {spikes} spikes" in out
