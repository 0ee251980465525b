"""Test signals for the conditioning and detection benches: random and adversarial.

Each returns int16 samples of shape (sweeps, channels), deterministic for a seed.
"""

import numpy as np

__all__ = ["STIMULI", "stimulus"]


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
