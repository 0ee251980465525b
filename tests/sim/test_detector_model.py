"""Properties of the conditioning and detection golden models (the benches compare them to
the RTL bit for bit; these check that what they compute is what a spike detector should)."""

import numpy as np
import pytest

from spikeforge.firmware.config import DetectorConfig, SystemConfig, TestSourceConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.sim.accuracy import Score, score_times
from spikeforge.sim.models.detector import (
    DetectorParams,
    admit_events,
    condition,
    detect,
    event_words,
)
from spikeforge.sim.models.source import source_signal
from spikeforge.sim.stimuli import STIMULI, stimulus

CONFIG = SystemConfig(channels=4)


def test_conditioner_removes_dc_and_keeps_spike_band():
    sweeps = 30_000
    t = np.arange(sweeps) / CONFIG.sample_rate_hz
    x = np.zeros((sweeps, 4))
    x[:, 0] = 5000                                   # DC
    x[:, 1] = 3000 * np.sin(2 * np.pi * 1000 * t)    # in band
    x[:, 2] = 3000 * np.sin(2 * np.pi * 20 * t)      # LFP, below the band
    x[:, 3] = -32768                                 # negative full scale
    y = condition(CONFIG, x.astype(np.int16)).astype(float)[15_000:]
    assert np.abs(y[:, 0]).max() <= 2
    assert 0.6 < y[:, 1].std() / (3000 / np.sqrt(2)) < 1.0
    assert y[:, 2].std() < 0.1 * 3000 / np.sqrt(2)
    assert np.abs(y[:, 3]).max() <= 2


@pytest.mark.parametrize("kind", STIMULI)
def test_conditioner_output_stays_in_int16_for_every_stimulus(kind: str):
    y = condition(CONFIG, stimulus(kind, 2000, 4))
    assert y.dtype == np.int16 and y.shape == (2000, 4)


def test_detector_finds_the_test_source_spikes_on_their_channel():
    config = SystemConfig(channels=4, test_source=TestSourceConfig(noise_shift=1))
    signal = source_signal(config, 60_000)
    events = detect(config, condition(config, signal.samples))
    total = Score(0, 0, 0, 0)
    for c in range(4):
        total += score_times(events.sweep[events.channel == c].astype(float),
                             signal.spike_peaks(c).astype(float), 15, 6000, 59_000)
    assert total.truth > 100
    assert total.precision > 0.99 and total.recall > 0.95


def test_dead_time_and_alignment_bound_the_event_spacing():
    config = SystemConfig(channels=2)
    samples = stimulus("burst", 5000, 2)
    events = detect(config, samples, DetectorParams(np.array([48, 48]), 3, 40, 4, 6))
    for c in range(2):
        emits = events.emit_sweep[events.channel == c]
        # emission, then 40 dead samples, then a crossing, then align-1 samples
        assert np.all(np.diff(emits) >= 40 + 1 + config.detector.align_samples - 1)
    peaks = events.snippets[:, 4]
    np.testing.assert_array_equal(peaks, events.peak)


def test_polarity_selects_the_sign_of_the_peak():
    config = SystemConfig(channels=3)
    samples = stimulus("spikes", 8000, 3)
    negative = detect(config, samples, DetectorParams(np.full(3, 80), 1, 30, 8, 16))
    positive = detect(config, -samples.astype(np.int32).clip(-32767, 32767).astype(np.int16),
                      DetectorParams(np.full(3, 80), 2, 30, 8, 16))
    assert len(negative) > 0 and np.all(negative.peak < 0)
    np.testing.assert_array_equal(negative.sweep, positive.sweep)
    off = detect(config, samples, DetectorParams(np.full(3, 80), 0, 30, 8, 16))
    assert len(off) == 0


def test_event_words_are_the_wire_record():
    from spikeforge.firmware.wire import encode_event

    config = SystemConfig(channels=3)
    events = detect(config, stimulus("spikes", 4000, 3))
    words = event_words(events, 0)
    record = encode_event(int(events.sweep[0]), int(events.channel[0]), int(events.peak[0]),
                          events.snippets[0], events.pre)
    assert b"".join(w.to_bytes(2, "little") for w in words) == record


def test_a_burst_on_every_channel_drops_whole_events_and_counts_them():
    config = SystemConfig(channels=8, detector=DetectorConfig(event_queue=2,
                                                              event_buffer_words=64))
    events = detect(config, stimulus("burst", 2000, 8))
    emit = events.emit_sweep * config.cycles_per_sample + events.channel
    complete = emit + (config.detector.snippet_post + 1) * config.cycles_per_sample
    admission = admit_events(config, events, emit, complete, np.zeros(10**6, dtype=bool))
    assert admission.dropped > 0
    assert admission.kept.sum() + admission.dropped == len(events)
    # With nobody reading, the buffer holds at most what it can take whole.
    words = 5 + events.pre + 1 + events.post
    assert admission.kept.sum() * words <= config.detector.event_buffer_words


def test_detector_parameters_are_validated_with_a_fix():
    with pytest.raises(ConfigError, match="multiple of 1/16.*round it to 5.0625"):
        DetectorConfig(threshold_k=5.07).validate(30_000)
    with pytest.raises(ConfigError, match="polarity"):
        SystemConfig(detector=DetectorConfig(polarity="up"))
    with pytest.raises(ConfigError, match="event_buffer_words=64"):
        SystemConfig(detector=DetectorConfig(event_buffer_words=32))
    with pytest.raises(ConfigError, match="highpass_hz"):
        SystemConfig(detector=DetectorConfig(highpass_hz=20_000))


def test_ring_holds_every_snippet_until_it_is_copied():
    for cps in (2, 12, 400):
        det = DetectorConfig()
        depth = det.ring_depth(cps)
        span = det.max_snippet_pre + det.align_samples + det.max_snippet_post
        assert depth > span
        assert (depth - span - 1) * cps >= (det.event_queue + 1) * det.max_event_words


def test_neo_aligns_to_the_energy_peak_one_sample_back_and_ignores_polarity():
    # psi of this unfiltered stimulus is in the thousands: a faster tracker than the default
    # (1/64 LSB per sample) settles on it within the recording: 1/4 LSB.
    config = SystemConfig(channels=3, detector=DetectorConfig(noise_step=16))
    samples = stimulus("spikes", 8000, 3)
    neo = detect(config, samples, DetectorParams(np.full(3, 80), 1, 5, 8, 16, neo=True))
    assert len(neo) > 0
    # The reported peak is the conditioned value at the aligned sample (psi's centre).
    np.testing.assert_array_equal(neo.peak, samples[neo.sweep, neo.channel])
    flipped = detect(config, -samples.astype(np.int32).clip(-32767, 32767).astype(np.int16),
                     DetectorParams(np.full(3, 80), 2, 5, 8, 16, neo=True))
    np.testing.assert_array_equal(neo.sweep, flipped.sweep)
    plain = detect(config, samples, DetectorParams(np.full(3, 80), 1, 5, 8, 16))
    near = np.abs(neo.sweep[:, None] - plain.sweep[None, :]).min(axis=1)
    assert np.median(near) <= 2  # both find the same spikes, about the same sample


def test_1024_channels_are_independent_and_each_finds_its_own_spikes():
    """The largest channel count (MAX_CHANNELS = 1024): every channel's spikes, at its own
    times, are found on that channel only, and a channel's events do not depend on the
    other 1023 (the model is vectorised over channels; this catches any mixing)."""
    channels, sweeps = 1024, 1500
    config = SystemConfig(channels=channels, sample_rate_hz=10_000, clock_hz=12_000_000,
                          sweeps_per_frame=1, link_buffer_samples=2048)
    rng = np.random.default_rng(7)
    x = rng.normal(0, 30, (sweeps, channels))
    spike = -np.array([200, 900, 2000, 1200, 300, -300, -200, -100])
    starts = 400 + (np.arange(channels) * 37) % 900   # a different time on each channel
    for c, s in enumerate(starts):
        x[s:s + len(spike), c] += spike
    samples = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    events = detect(config, condition(config, samples))
    assert np.array_equal(np.unique(events.channel), np.arange(channels))
    for c in (0, 1, 511, 1023):
        mine = events.sweep[events.channel == c]
        assert len(mine) == 1 and abs(int(mine[0]) - (starts[c] + 2)) <= 2, (c, mine)
    alone = SystemConfig(channels=2, sample_rate_hz=10_000, clock_hz=12_000_000)
    for c in (5, 1022):
        pair = samples[:, [c, c + 1]]
        single = detect(alone, condition(alone, pair))
        both = np.isin(events.channel, [c, c + 1])
        assert np.array_equal(single.sweep, events.sweep[both])
        assert np.array_equal(single.snippets, events.snippets[both])


def test_model_latency_is_the_gateways_pipeline_depth():
    """The models time admissions and snippet completion by DETECTOR_LATENCY; it must be
    the RTL's pipeline depth, and the configuration must space a channel's samples enough
    for the detector's read-modify-write."""
    import pytest

    from spikeforge.firmware.errors import ConfigError
    from spikeforge.hdl.detector import Detector
    from spikeforge.sim.models.detector import DETECTOR_LATENCY

    assert Detector.LATENCY == DETECTOR_LATENCY
    assert Detector.MIN_SAME_CHANNEL_SPACING >= Detector.LATENCY
    too_fast = SystemConfig(channels=1, sample_rate_hz=30_000, clock_hz=60_000, baud=60_000,
                            sweeps_per_frame=1, link_buffer_samples=2)
    with pytest.raises(ConfigError, match="at least 3 cycles apart"):
        Detector(too_fast)


def test_copier_reads_a_single_port_ring_only_in_cycles_without_a_sample_write():
    from spikeforge.sim.models.detector import copy_write_cycles

    # Block RAM ring: one word per cycle from the cycle after taking the event.
    assert copy_write_cycles(10, 8, None) == list(range(11, 19))
    # SPRAM ring: header words as before; snippet reads from cycle 15 on skip busy cycles.
    busy = np.zeros(40, dtype=bool)
    busy[15:18] = True
    busy[19] = True
    assert copy_write_cycles(10, 8, busy) == [11, 12, 13, 14, 15, 19, 21, 22]
    # A never-busy ring is exactly the block RAM timing.
    assert copy_write_cycles(10, 8, np.zeros(40, dtype=bool)) == copy_write_cycles(10, 8, None)


def test_snippet_ring_goes_to_spram_on_the_up5k_when_large_and_is_deep_enough_there():
    from types import SimpleNamespace

    from spikeforge.hdl.detector import Detector

    up5k = SimpleNamespace(device="iCE40UP5K")
    ecp5 = SimpleNamespace(device="LFE5U-85F")
    big = Detector(SystemConfig().replace(channels=256, sweeps_per_frame=1))
    small = Detector(SystemConfig().replace(channels=16, sweeps_per_frame=1))
    assert big.resolve_ring_storage(up5k) == "spram"
    assert big.resolve_ring_storage(ecp5) == "block"
    assert big.resolve_ring_storage(None) == "block"
    assert small.resolve_ring_storage(up5k) == "block"
    # 256 channels at 12 MHz, 30 kS/s: 144 free cycles per sweep; 64 samples still suffice,
    # so the ring is 16 K words, one SPRAM.
    assert big.ring_depth_for("spram") * 256 == 16384
    # Few free cycles per sweep: the copier is slower, so the ring must be deeper.
    det = DetectorConfig()
    assert det.ring_depth(260, 4) > det.ring_depth(260)


# -- local exclusion --------------------------------------------------------------------------

def _exclusion_config(channels: int, **detector) -> SystemConfig:
    return SystemConfig(channels=channels, detector=DetectorConfig(exclusion=True, **detector))


def _pulses(sweeps: int, channels: int, pulses: list[tuple[int, int, int]]) -> np.ndarray:
    """Conditioned samples: silence (the tracker decays to a threshold of 0 by sweep ~2100)
    and one-sample negative pulses (channel, sweep, amplitude)."""
    y = np.zeros((sweeps, channels), dtype=np.int16)
    for channel, sweep, amplitude in pulses:
        y[sweep, channel] = -amplitude
    return y


def _events(events) -> list[tuple[int, int, int]]:
    return sorted(zip(events.channel.tolist(), events.sweep.tolist(), events.peak.tolist()))


def test_exclusion_keeps_one_event_on_the_largest_neighbour_and_decides_d_sweeps_later():
    config = _exclusion_config(6, exclusion_channels=2)
    delay = config.detector.exclusion_delay
    # One spike on channels 1-4, largest on 3; channel 0 is within 2 of 1 and 2 only.
    y = _pulses(4000, 6, [(1, 3000, 300), (2, 3001, 500), (3, 3002, 900), (4, 2999, 400)])
    events = detect(config, y)
    assert _events(events) == [(3, 3002, -900)]
    assert events.emit_sweep.tolist() == [3002 + delay]
    # Without exclusion: four events.
    assert len(detect(SystemConfig(channels=6), y)) == 4


def test_exclusion_equal_peaks_keep_the_lowest_channel_and_ignore_far_channels():
    config = _exclusion_config(8, exclusion_channels=1)
    y = _pulses(4000, 8, [(2, 3000, 500), (3, 3000, 500), (4, 3000, 500), (7, 3000, 500),
                          (0, 3000, 200)])
    # 2 beats 3 (equal, lower index); 3 beats 4 (equal, lower): 4 goes although 3 went too
    # (candidates are compared, not decisions); 0 is not 2's neighbour; 7 has no rival.
    assert _events(detect(config, y)) == [(0, 3000, -200), (2, 3000, -500), (7, 3000, -500)]


def test_exclusion_window_is_plus_minus_w_samples():
    w = 3
    config = _exclusion_config(2, exclusion_samples=w)
    inside = _pulses(4000, 2, [(0, 3000, 400), (1, 3000 + w, 500)])
    assert _events(detect(config, inside)) == [(1, 3000 + w, -500)]
    inside = _pulses(4000, 2, [(0, 3000 + w, 400), (1, 3000, 500)])
    assert _events(detect(config, inside)) == [(1, 3000, -500)]
    outside = _pulses(4000, 2, [(0, 3000, 400), (1, 3001 + w, 500)])
    assert len(detect(config, outside)) == 2
    outside = _pulses(4000, 2, [(1, 3000, 400), (0, 3001 + w, 500)])
    assert len(detect(config, outside)) == 2


def test_exclusion_saturates_the_score_so_huge_equal_peaks_tie():
    config = _exclusion_config(2)
    y = _pulses(4000, 2, [(0, 3000, 20000), (1, 3000, 30000)])
    assert _events(detect(config, y)) == [(0, 3000, -20000)]


def test_exclusion_with_a_neighbour_table_compares_only_listed_channels():
    table = ((2,), (), (0,), ())
    config = _exclusion_config(4, exclusion_neighbours=table)
    y = _pulses(4000, 4, [(0, 3000, 300), (1, 3000, 900), (2, 3001, 400), (3, 3000, 100)])
    assert _events(detect(config, y)) == [(1, 3000, -900), (2, 3001, -400), (3, 3000, -100)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exclusion_equals_its_offline_definition_on_random_pulses(seed: int):
    """The causal, channel-serial decision equals the rule stated offline: a candidate goes
    iff a neighbour's candidate within +-w has a larger saturated score, or an equal one on
    a lower channel. Pulses on one channel are > 40 sweeps apart so re-arming never waits."""
    rng = np.random.default_rng(seed)
    channels, w = 7, 2
    config = _exclusion_config(channels, exclusion_samples=w, exclusion_channels=2)
    pulses = []
    for c in range(channels):
        t = 2200 + int(rng.integers(0, 40))
        while t < 5800:
            pulses.append((c, t, int(rng.choice([100, 200, 300, 300, 20000, 17000]))))
            t += 41 + int(rng.integers(0, 4))
    y = _pulses(6000, channels, pulses)
    off = detect(SystemConfig(channels=channels), y)
    table = config.detector.exclusion_table(channels)
    score = np.minimum(-off.peak, 16383)
    expected = []
    for i in range(len(off)):
        c, t = int(off.channel[i]), int(off.sweep[i])
        beaten = any(
            int(off.channel[j]) in table[c] and abs(int(off.sweep[j]) - t) <= w
            and (score[j] > score[i] or (score[j] == score[i] and off.channel[j] < c))
            for j in range(len(off)))
        if not beaten:
            expected.append((c, t, int(off.peak[i])))
    assert len(off) > 400 and len(expected) < len(off)
    assert _events(detect(config, y)) == sorted(expected)


def test_exclusion_without_neighbours_changes_only_the_emission_sweep():
    config = SystemConfig(channels=4, test_source=TestSourceConfig(noise_shift=1))
    samples = condition(config, source_signal(config, 30_000).samples)
    off = detect(config, samples)
    alone = config.replace(detector=DetectorConfig(exclusion=True, exclusion_channels=0))
    on = detect(alone, samples)
    assert len(off) > 50
    assert _events(on) == _events(off)
    np.testing.assert_array_equal(on.snippets[np.lexsort((on.sweep, on.channel))],
                                  off.snippets[np.lexsort((off.sweep, off.channel))])
    assert np.all(on.emit_sweep == on.sweep + alone.detector.exclusion_delay)


def test_exclusion_table_is_validated_with_a_fix():
    with pytest.raises(ConfigError, match="not symmetric"):
        DetectorConfig(exclusion_neighbours=((1,), ())).exclusion_table(2)
    with pytest.raises(ConfigError, match="one per channel"):
        DetectorConfig(exclusion_neighbours=((1,), (0,))).exclusion_table(3)
    with pytest.raises(ConfigError, match="at most 8"):
        row = tuple(range(1, 10))
        DetectorConfig(exclusion_neighbours=(row,) + tuple((0,) for _ in row)
                       ).exclusion_table(10)
    with pytest.raises(ConfigError, match="align_samples"):
        DetectorConfig(exclusion=True, exclusion_samples=8).validate(30_000)
    # A table from JSON (lists) becomes tuples; index ranges stop at the edges.
    config = SystemConfig.from_dict(SystemConfig(channels=3, detector=DetectorConfig(
        exclusion_neighbours=[[1], [0, 2], [1]])).to_dict())
    assert config.detector.exclusion_neighbours == ((1,), (0, 2), (1,))
    assert DetectorConfig(exclusion_channels=2).exclusion_table(4) == (
        (1, 2), (0, 2, 3), (0, 1, 3), (1, 2))


def test_neighbours_within_maps_a_two_column_probe():
    from spikeforge.firmware.detection import neighbours_within

    # SpikeInterface's generated probes: column 0 is channels 0..n/2-1, column 1 the rest.
    positions = [(0, 0), (0, 20), (0, 40), (20, 0), (20, 20), (20, 40)]
    table = neighbours_within(positions, 30)
    assert table[0] == (1, 3, 4)
    assert table[4] == (0, 1, 2, 3, 5)
    assert table[2] == (1, 4, 5)   # not 3: index neighbour, 44.7 um away


# -- echo suppression (DetectorConfig.echo_ratio) ----------------------------------------------


def _echo_config(channels: int = 1, **detector) -> SystemConfig:
    return SystemConfig(channels=channels, detector=DetectorConfig(dead_samples=0, **detector))


def test_echo_is_a_smaller_event_within_the_window_after_a_large_one_on_its_channel():
    config = _echo_config(echo_ratio=6, echo_samples=40)
    # Emission to emission = pulse to pulse here (one-sample pulses, aligned the same way).
    kept = [(0, 3000, -1200)]
    for gap, small, echo in [(39, 200, True), (40, 200, False), (39, 201, False),
                             (20, 1, True), (39, 199, True)]:
        y = _pulses(4000, 1, [(0, 3000, 1200), (0, 3000 + gap, small)])
        expected = kept if echo else kept + [(0, 3000 + gap, -small)]
        assert _events(detect(config, y)) == expected, (gap, small)
    # Without echo suppression both are events.
    plain = _echo_config()
    y = _pulses(4000, 1, [(0, 3000, 1200), (0, 3039, 200)])
    assert len(detect(plain, y)) == 2


def test_echo_compares_with_the_last_event_not_with_the_last_echo_and_saturates():
    config = _echo_config(2, echo_ratio=4, echo_samples=30)
    # 1000, then 250 (an echo: not a new reference), then 240 at 25 after the echo but 45
    # after the event: outside the window of the event, so it is an event.
    y = _pulses(4000, 2, [(0, 3000, 1000), (0, 3020, 250), (0, 3045, 240),
                          # Saturated: 30000 compares as 16383 >= 4 * 4095, not >= 4 * 4096.
                          (1, 3000, 30000), (1, 3010, 4095), (1, 3100, 30000),
                          (1, 3110, 4096)])
    assert _events(detect(config, y)) == [(0, 3000, -1000), (0, 3045, -240),
                                          (1, 3000, -30000), (1, 3100, -30000),
                                          (1, 3110, -4096)]


def test_echo_is_no_exclusion_candidate():
    # Channel 1's echo would beat channel 0's smaller spike if it were a candidate.
    config = SystemConfig(channels=2, detector=DetectorConfig(
        exclusion=True, exclusion_channels=1, dead_samples=0, echo_ratio=3, echo_samples=50))
    y = _pulses(4000, 2, [(1, 3000, 3000), (1, 3030, 600), (0, 3031, 500)])
    assert _events(detect(config, y)) == [(0, 3031, -500), (1, 3000, -3000)]
    plain = config.replace(detector=DetectorConfig(exclusion=True, exclusion_channels=1,
                                                   dead_samples=0))
    assert _events(detect(plain, y)) == [(1, 3000, -3000), (1, 3030, -600)]


def test_echo_parameters_are_validated_with_a_fix():
    with pytest.raises(ConfigError, match=r"echo_ratio must be an integer 0\.\.16"):
        DetectorConfig(echo_ratio=17).validate(30_000)
    with pytest.raises(ConfigError, match=r"echo_samples must be an integer 1\.\.1023"):
        DetectorConfig(echo_ratio=2, echo_samples=0).validate(30_000)


def test_held_noise_tracker_learns_only_while_armed_and_below_the_threshold():
    """From reset on silence the tracker falls one step a sample. One crossing: without the
    hold its sample raises it one step (+2 against silence); with it the crossing sample,
    the search after it (align_samples - 1) and the dead time leave it alone (+13)."""
    y = np.zeros((500, 2), dtype=np.int16)
    y[100, 0] = -3000
    det = DetectorConfig()
    frozen = 1 + (det.align_samples - 1) + det.dead_samples
    free = detect(SystemConfig(channels=2, detector=det), y)
    held = detect(SystemConfig(channels=2, detector=DetectorConfig(noise_hold=True)), y)
    assert len(free) == len(held) == 1
    silent = int(free.noise[1])
    assert held.noise[1] == silent
    assert free.noise[0] == silent + 2
    assert held.noise[0] == silent + frozen == silent + 13
