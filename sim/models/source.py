"""Golden model of the test-signal source (:class:`spikeforge.hdl.source.TestSource`).

The recipe is fixed in :mod:`spikeforge.firmware.test_signal`; this module evaluates it with
NumPy, vectorised over sweeps and channels. Only the spike start times are found with a
(short) sequential scan over candidate samples, because a spike cannot start inside another.
"""

from dataclasses import dataclass

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.test_signal import (
    CHANNEL_FIELD_BITS,
    FINAL_SHIFT,
    MIX_ROUNDS,
    SPIKE_PEAK_OFFSET,
    SPIKE_TEMPLATE,
)

__all__ = ["mix32", "SourceSignal", "source_signal", "source_output"]


def mix32(x: np.ndarray) -> np.ndarray:
    """The source's integer hash, on a uint32 array (returns a new array)."""
    x = np.array(x, dtype=np.uint32)
    for xor_shift, mul_shift in MIX_ROUNDS:
        x ^= x >> np.uint32(xor_shift)
        x += x << np.uint32(mul_shift)
    x ^= x >> np.uint32(FINAL_SHIFT)
    return x


@dataclass(frozen=True)
class SourceSignal:
    """What the source emits for sweeps ``first_sweep .. first_sweep + len(samples)``.

    ``samples`` has shape (sweeps, channels), int16. ``spike_starts[c]`` holds the sweep
    numbers at which a spike template starts on channel c; ``spike_peaks(c)`` the sweeps of
    their troughs (the true spike times).
    """

    first_sweep: int
    samples: np.ndarray
    spike_starts: tuple[np.ndarray, ...]

    def spike_peaks(self, channel: int) -> np.ndarray:
        return self.spike_starts[channel] + SPIKE_PEAK_OFFSET


def _spike_starts(candidates: np.ndarray, length: int, first_allowed: int) -> np.ndarray:
    starts = []
    next_free = first_allowed
    for s in candidates:
        if s >= next_free:
            starts.append(s)
            next_free = s + length
    return np.asarray(starts, dtype=np.int64)


def source_signal(config: SystemConfig, sweeps: int) -> SourceSignal:
    """The first ``sweeps`` sweeps the source emits after reset."""
    ts = config.test_source
    channels = np.arange(config.channels, dtype=np.uint32)
    n = np.arange(sweeps, dtype=np.uint64)
    key = ((n[:, None] << np.uint64(CHANNEL_FIELD_BITS)) | channels[None, :]) & 0xFFFFFFFF
    r = mix32(np.uint32(ts.seed) ^ key.astype(np.uint32))

    noise = ((r & 0xFF).astype(np.int32) + ((r >> 8) & 0xFF).astype(np.int32) - 255)
    noise >>= ts.noise_shift
    dc = (((channels & 7).astype(np.int32) - 4) << 6)[None, :]

    template = np.asarray(SPIKE_TEMPLATE, dtype=np.int32)
    length = len(template)
    start_draw = (r >> 16) < config.spike_start_threshold
    spike = np.zeros((sweeps, config.channels), dtype=np.int32)
    starts_per_channel = []
    for c in range(config.channels):
        starts = _spike_starts(np.flatnonzero(start_draw[:, c]), length, 0)
        starts_per_channel.append(starts)
        scale = 4 + (c & 3)
        scaled = (template * scale) >> 3
        for s in starts:
            stop = min(s + length, sweeps)
            spike[s:stop, c] = scaled[: stop - s]

    samples = dc + noise + spike
    assert samples.min() >= -32768 and samples.max() <= 32767
    return SourceSignal(0, samples.astype(np.int16), tuple(starts_per_channel))


def source_output(produced_at: np.ndarray, ready: np.ndarray) -> tuple[np.ndarray, int]:
    """The source's output register under back-pressure.

    ``produced_at[k]`` is the cycle sample k leaves the pipeline (sweep start + channel + 1);
    ``ready[t]`` the consumer's ready in cycle t. Returns, per sample, the cycle it is
    transferred (-1 if it was lost), and the number of samples lost (the ``overruns``
    counter): a sample is lost when the register still holds an untaken one.
    """
    transferred = np.full(len(produced_at), -1, dtype=np.int64)
    overruns = 0
    held = -1
    next_k = 0
    for t in range(len(ready)):
        can_load = held < 0 or bool(ready[t])
        if held >= 0 and ready[t]:
            transferred[held] = t
        if next_k < len(produced_at) and produced_at[next_k] == t:
            if can_load:
                held = next_k
            else:
                overruns += 1
            next_k += 1
        elif can_load:
            held = -1
    return transferred, overruns
