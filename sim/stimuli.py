"""Test signals for the conditioning and detection benches: random and adversarial.

Each returns int16 samples of shape (sweeps, channels), deterministic for a seed.
"""

import numpy as np

__all__ = ["STIMULI", "stimulus", "CODEC_STIMULI", "codec_stimulus", "gridded"]


def _noise_with_spikes(rng: np.random.Generator, sweeps: int, channels: int) -> np.ndarray:
    x = rng.normal(0, 60, (sweeps, channels))
    spike = -np.array([0, 150, 600, 1200, 700, 100, -200, -250, -150, -60, 0])
    for c in range(channels):
        for t in rng.choice(max(1, sweeps - len(spike)), size=max(1, sweeps // 80),
                            replace=False):
            x[t:t + len(spike), c] += spike[:sweeps - t] * rng.uniform(0.5, 2)
    return x


def stimulus(kind: str, sweeps: int, channels: int, seed: int = 0) -> np.ndarray:
    """``kind`` is one of :data:`STIMULI`."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        # Full-range random values: every bit of the datapath toggles.
        return rng.integers(-32768, 32768, (sweeps, channels)).astype(np.int16)
    if kind == "spikes":
        x = _noise_with_spikes(rng, sweeps, channels)
    elif kind == "saturation":
        # Full-scale square waves and rails, with noisy spikes on top that clip.
        x = _noise_with_spikes(rng, sweeps, channels) * 30
        a, b = sweeps // 3, 2 * sweeps // 3
        square = ((np.arange(b - a) // 7) % 2)[:, None]
        x[a:b] = np.where(square, 32767, -32768)
    elif kind == "dc-steps":
        steps = rng.integers(-20000, 20000, (8, channels))
        x = np.repeat(steps, -(-sweeps // 8), axis=0)[:sweeps] + rng.normal(0, 40,
                                                                             (sweeps, channels))
    elif kind == "silence":
        x = np.zeros((sweeps, channels))
        x[sweeps // 2] = -3000  # one impulse in the middle of silence
    elif kind == "burst":
        # Every channel spikes in the same sweeps: the event queue overflows.
        x = rng.normal(0, 30, (sweeps, channels))
        spike = -np.array([200, 900, 2000, 1200, 300, -300, -200, -100])
        for t in range(20, sweeps - len(spike), 45):
            x[t:t + len(spike)] += spike[:, None]
    else:
        raise ValueError(f"unknown stimulus {kind!r}; known: {', '.join(STIMULI)}")
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


STIMULI = ("random", "spikes", "saturation", "dc-steps", "silence", "burst")


# -- the lossless coder's stimuli ----------------------------------------------------------------


def gridded(rng: np.random.Generator, sweeps: int, channels: int,
            off_grid: float = 0.0) -> np.ndarray:
    """N1-like data: 10-bit ADC codes (band-limited noise and spikes) scaled onto an
    irregular grid of about 64-count steps (each code's value jittered by -1..+1, fixed per
    code), with a fraction ``off_grid`` of samples nudged off the grid."""
    jitter = rng.integers(-1, 2, 1024)
    x = _noise_with_spikes(rng, sweeps, channels) / 40
    smooth = np.cumsum(rng.normal(0, 0.3, (sweeps, channels)), axis=0)
    codes = np.clip(np.round(x + smooth - smooth.mean(axis=0)), -512, 511).astype(np.int64)
    values = np.floor(64.0625 * (codes + 0.5) - 0.5).astype(np.int64) + jitter[codes + 512]
    if off_grid:
        mask = rng.random(values.shape) < off_grid
        values[mask] += rng.integers(2, 30, int(mask.sum()))
    return np.clip(values, -32768, 32767).astype(np.int16)


def codec_stimulus(kind: str, sweeps: int, channels: int, seed: int = 0) -> np.ndarray:
    """A signal for the lossless coder's tests: ``kind`` is one of :data:`CODEC_STIMULI`
    (the adversarial cases of the coder, and the detector's stimuli)."""
    rng = np.random.default_rng(seed)
    n = np.arange(sweeps)[:, None]
    c = np.arange(channels)[None, :]
    if kind == "constant":
        x = np.broadcast_to(rng.integers(-32768, 32768, channels), (sweeps, channels))
    elif kind == "ramps":
        # Steep ramps that wrap around the int16 range (each channel its own slope).
        slopes = rng.integers(-3000, 3000, channels)
        x = ((n * slopes[None, :] + c * 1000 + 32768) % 65536) - 32768
    elif kind == "alternating":
        # Rail to rail every sample: the largest residuals of every predictor.
        x = np.where((n + c) % 2, 32767, -32768) * np.ones((1, channels), dtype=np.int64)
    elif kind == "long-silence":
        x = np.zeros((sweeps, channels), dtype=np.int64)
        x[sweeps - 3:] = rng.integers(-32768, 32768, (min(3, sweeps), channels))
    elif kind == "gridded":
        return gridded(rng, sweeps, channels)
    elif kind == "gridded-off":
        return gridded(rng, sweeps, channels, off_grid=0.005)
    elif kind == "white":
        return stimulus("random", sweeps, channels, seed)
    elif kind in STIMULI:
        return stimulus(kind, sweeps, channels, seed)
    else:
        raise ValueError(f"unknown stimulus {kind!r}; known: {', '.join(CODEC_STIMULI)}")
    return np.asarray(x).astype(np.int16)


CODEC_STIMULI = ("white", "constant", "ramps", "alternating", "spikes", "long-silence",
                 "saturation", "dc-steps", "gridded", "gridded-off")
