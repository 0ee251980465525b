"""Properties of the golden models themselves (fast; the RTL benches compare them to RTL)."""

import numpy as np

from spikeforge.firmware.config import SystemConfig, TestSourceConfig
from spikeforge.firmware.test_signal import SPIKE_PEAK_OFFSET, SPIKE_TEMPLATE
from spikeforge.firmware.wire import FrameType, build_frame, encode_identity
from spikeforge.sim.models.framer import frame_stream
from spikeforge.sim.models.source import mix32, source_signal


def _mix32_reference(x: int) -> int:
    for xor_shift, mul_shift in ((16, 3), (11, 7), (15, 5)):
        x ^= x >> xor_shift
        x = (x + (x << mul_shift)) & 0xFFFFFFFF
    return x ^ (x >> 13)


def test_mix32_matches_a_scalar_reference():
    values = np.random.default_rng(0).integers(0, 2**32, 1000, dtype=np.uint64)
    assert list(mix32(values.astype(np.uint32))) == [_mix32_reference(int(v)) for v in values]


def test_spikes_are_where_the_model_says_and_never_overlap():
    config = SystemConfig(channels=4, test_source=TestSourceConfig(noise_shift=7,
                                                                   spike_rate_hz=200))
    signal = source_signal(config, 30_000)
    quiet = source_signal(config.replace(test_source=TestSourceConfig(
        noise_shift=7, spike_rate_hz=0)), 30_000)
    spike_only = signal.samples.astype(int) - quiet.samples
    for channel in range(4):
        starts = signal.spike_starts[channel]
        assert len(starts) > 100
        assert np.all(np.diff(starts) >= len(SPIKE_TEMPLATE))
        scaled = (np.asarray(SPIKE_TEMPLATE) * (4 + (channel & 3))) >> 3
        for start in starts[:-1]:
            np.testing.assert_array_equal(
                spike_only[start:start + len(SPIKE_TEMPLATE), channel], scaled)
        peaks = signal.spike_peaks(channel)
        assert np.all(spike_only[peaks[:-1], channel] == scaled.min())
        assert SPIKE_PEAK_OFFSET == int(np.argmin(SPIKE_TEMPLATE))


def test_spike_rate_follows_the_configuration():
    config = SystemConfig(channels=8, test_source=TestSourceConfig(spike_rate_hz=40))
    signal = source_signal(config, 10 * config.sample_rate_hz)
    rates = [len(s) / 10 for s in signal.spike_starts]
    assert 30 < np.mean(rates) < 50


def test_a_channel_does_not_depend_on_the_channel_count():
    few = source_signal(SystemConfig(channels=2), 500).samples
    many = source_signal(SystemConfig(channels=32, sample_rate_hz=20_000), 500).samples
    np.testing.assert_array_equal(few, many[:, :2])


def test_ample_link_sends_every_frame_whole_and_in_order():
    config = SystemConfig(channels=2, baud=12_000_000, sweeps_per_frame=4,
                          link_buffer_samples=64, identity_interval_frames=5)
    samples = source_signal(config, 40).samples
    schedule = frame_stream(config, samples)
    assert schedule.dropped_slots == []
    expected = b""
    for slot in range(10):
        if slot % 5 == 0:
            expected += build_frame(FrameType.IDENTITY, slot // 5, encode_identity(config))
        expected += build_frame(FrameType.DATA, slot, samples[4 * slot:4 * slot + 4].tobytes())
    assert bytes(schedule.data) == expected
    assert np.all(np.diff(schedule.accept_cycle) >= config.cycles_per_byte)


def test_slow_link_drops_whole_frames_and_numbers_every_slot():
    config = SystemConfig(channels=8, sweeps_per_frame=8, link_buffer_samples=256)
    assert config.link_load > 1.5
    samples = source_signal(config, 8 * 60).samples
    schedule = frame_stream(config, samples)
    assert schedule.dropped_slots, "a link at 190% load must drop frames"
    assert sorted(schedule.sent_slots + schedule.dropped_slots) == list(range(60))
    frame_bytes = config.payload_bytes + 13
    identity_bytes = len(encode_identity(config)) + 13
    assert len(schedule.data) == len(schedule.sent_slots) * frame_bytes + identity_bytes
