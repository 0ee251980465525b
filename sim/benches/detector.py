"""Detector bench: event words against the golden model, exactly, with drops counted.

Drives samples channel-serially at the acquisition schedule (a sweep every
``cycles_per_sample`` cycles, channels back to back), with the run-time parameters and
per-channel thresholds set through the detector's register ports. Proves that the event
stream (timestamp, channel, peak, snippet lengths, snippet) equals the model's word for
word (with local exclusion too: which of the neighbours' events survive), that the events
the model drops (queue or buffer full, under a stalling consumer)
are exactly those missing, and that ``events_emitted`` and ``events_dropped`` equal the
model's counts.
"""

import dataclasses
import itertools
import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from spikeforge.firmware.config import SystemConfig
from spikeforge.sim.drivers import Bench, StreamSink, StreamSource, pack_sample
from spikeforge.sim.models.detector import (
    DetectorParams,
    admit_events,
    detect,
    detector_latency,
    event_words,
    snippet_complete_cycle,
)
from spikeforge.sim.runner import bench_parameters, report
from spikeforge.sim.stimuli import stimulus


def ties(sweeps: int, channels: int, seed: int) -> np.ndarray:
    """Conditioned samples for local exclusion: silence and one-sample negative pulses, every
    40 sweeps from sweep 200, alternately on every channel at once with the same amplitude
    (ties everywhere: the lowest channel of each neighbourhood wins) and on random channels
    with amplitudes from a small set (equal ones, and 20000 / 30000, equal once saturated)
    at offsets of 0..5 sweeps."""
    rng = np.random.default_rng(seed)
    y = np.zeros((sweeps, channels), dtype=np.int16)
    for index, t in enumerate(range(200, sweeps - 8, 40)):
        if index % 2 == 0:
            y[t, :] = -700
            continue
        for c in np.flatnonzero(rng.random(channels) < 0.6):
            y[t + int(rng.integers(0, 6)), c] = -int(rng.choice([300, 300, 500, 20000,
                                                                  30000]))
    return y


def echoes(sweeps: int, channels: int, seed: int, ratio: int, window: int) -> np.ndarray:
    """Conditioned samples for echo suppression: low noise, and on each channel one-sample
    negative pulses in pairs: a large one (up to beyond the saturated score), then a second
    whose size is around 1/``ratio`` of it (one LSB either side, and exactly it), at a
    distance around ``window`` samples (inside, at the edge, outside)."""
    rng = np.random.default_rng(seed)
    y = np.round(rng.normal(0, 3, (sweeps, channels))).astype(np.int64)
    for c in range(channels):
        t = int(rng.integers(150, 200))
        while t < sweeps - 2 * window - 20:
            big = int(rng.choice([1200, 4800, 16380, 16383 * 2, 32000])) // ratio * ratio
            small = min(big, 16383) // ratio + int(rng.choice([-1, 0, 0, 1, 40]))
            gap = window + int(rng.integers(-12, 3))
            y[t, c] = -big
            y[t + gap, c] = -small
            t += gap + int(rng.integers(40, 90))
    return np.clip(y, -32768, 32767).astype(np.int16)


def event_set(events) -> set[tuple[int, int]]:
    """(channel, sweep) of every event."""
    return set(zip(events.channel.tolist(), events.sweep.tolist()))


@cocotb.test()
async def events_match_model(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    sweeps = int(params["sweeps"])
    seed = int(params.get("seed", 1))
    rng = random.Random(seed)
    channels = config.channels
    det = config.detector
    if params["stimulus"] == "ties":
        samples = ties(sweeps, channels, seed)
    elif params["stimulus"] == "echoes":
        samples = echoes(sweeps, channels, seed, det.echo_ratio, det.echo_samples)
    else:
        samples = stimulus(params["stimulus"], sweeps, channels, seed)
    k16 = np.array(params["k16"], dtype=np.int64)
    run = DetectorParams(k16, params["polarity"], params["dead_samples"],
                         params["snippet_pre"], params["snippet_post"], params["neo"])

    dut.i__valid.value = 0
    dut.k_write.value = 0
    dut.polarity.value = run.polarity
    dut.dead_samples.value = run.dead_samples
    dut.snippet_pre.value = run.snippet_pre
    dut.snippet_post.value = run.snippet_post
    dut.neo.value = int(run.neo)
    bench = Bench(dut)
    await bench.reset()
    for channel, k in enumerate(k16):
        await FallingEdge(dut.clk)
        dut.k_channel.value = channel
        dut.k_value.value = int(k)
        dut.k_write.value = 1
    await FallingEdge(dut.clk)
    dut.k_write.value = 0

    cycles_guess = (sweeps + 4) * config.cycles_per_sample + 4096
    if params["stall"] == "none":
        ready = np.ones(cycles_guess, dtype=bool)
    else:
        ready = np.array([rng.random() > 0.6 for _ in range(cycles_guess)])
        ready[-4096:] = True  # let the buffer drain at the end
    start = bench.cycle() + 1  # the monitor's pattern starts with the next cycle
    sink = StreamSink(dut, "o", ready_pattern=itertools.chain(
        (int(r) for r in ready), itertools.repeat(1)))
    gap = config.cycles_per_sample - channels
    idle = itertools.chain([0], itertools.cycle([0] * (channels - 1) + [gap]))
    driver = StreamSource(dut, "i", idle=idle)
    items = [pack_sample(config, c, int(samples[n, c]), c == 0)
             for n in range(sweeps) for c in range(channels)]
    await driver.send(items)
    await bench.cycles(4096)

    arrival = np.array([bench.cycle_of(t) - start for t, _ in driver.sent]).reshape(
        sweeps, channels)
    events = detect(config, samples, run)
    emit_cycle = arrival[events.emit_sweep, events.channel] + detector_latency(config)
    complete_cycle = snippet_complete_cycle(events, arrival[:, 0])
    ring_busy = None
    if params.get("ring_storage") == "spram":
        # The single-port ring is written in the cycle after each sample entered.
        ring_busy = np.zeros(int(arrival.max()) + 2, dtype=bool)
        ring_busy[arrival.ravel() + 1] = True
    admission = admit_events(config, events, emit_cycle, complete_cycle, ready, ring_busy)
    expected = []
    # Admitted events whose snippet completes after the last sweep are never copied.
    for index in np.flatnonzero(admission.kept & (admission.first_word_cycle >= 0)):
        words = event_words(events, int(index))
        expected += [w | (int(j == 0) << 16) for j, w in enumerate(words)]
    got = [p for _, p in sink.items]
    for index, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"event word {index}: RTL gave 0x{g:05x}, model expects 0x{e:05x}"
    assert len(got) == len(expected), f"RTL gave {len(got)} words, model {len(expected)}"
    emitted = int(dut.events_emitted.value)
    dropped = int(dut.events_dropped.value)
    assert emitted == len(events), f"events_emitted: RTL {emitted}, model {len(events)}"
    assert dropped == admission.dropped, (
        f"events_dropped: RTL {dropped}, model {admission.dropped}")
    if det.echo:
        plain = detect(config.replace(detector=dataclasses.replace(det, echo_ratio=0)),
                       samples, run)
        assert len(plain) > len(events), (
            f"echo suppression removed no event ({len(events)} with it, {len(plain)} "
            f"without): this case exists to exercise it")
    if det.noise_hold:
        free = detect(config.replace(detector=dataclasses.replace(det, noise_hold=False)),
                      samples, run)
        assert event_set(free) != event_set(events), (
            "the held noise tracker changed no event: this case exists to exercise it")
    if params.get("expect_drops"):
        assert dropped > 0, "this case exists to overflow the event queue, and nothing dropped"
    report(items=len(got), cycles=bench.cycle(), events=len(events), dropped=dropped)
