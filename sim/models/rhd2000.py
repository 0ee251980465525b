"""Golden model of the RHD2000 front-end's output (:class:`spikeforge.hdl.rhd2000.RHDFrontEnd`).

The front-end emits, in sweep n, the results of the loop pass that started at sweep n-1
(zeros when no pass ran then). Pass k converts sample k of every enabled amplifier, so the
stream is the chips' sample arrays, channel by channel, one sweep late.
"""

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.rhd2000 import channel_sources

__all__ = ["frontend_samples", "random_recordings"]


def frontend_samples(config: SystemConfig, recordings: list[np.ndarray], first_pass_sweep: int,
                     sweeps: int) -> np.ndarray:
    """Samples (sweeps, channels) the front-end emits when passes run every sweep from
    ``first_pass_sweep`` on; ``recordings[l]`` is chip l's (amplifiers, n) array."""
    out = np.zeros((sweeps, config.channels), dtype=np.int16)
    for channel, source in enumerate(channel_sources(config.rhd)):
        row = recordings[source.line][source.amplifier]
        start = first_pass_sweep + 1
        count = max(0, min(sweeps - start, len(row)))
        out[start:start + count, channel] = row[:count]
    return out


def random_recordings(config: SystemConfig, samples: int, seed: int) -> list[np.ndarray]:
    """Adversarial test recordings per chip: full-scale extremes, zero crossings, steps and
    uniform noise, different on every amplifier."""
    rng = np.random.default_rng(seed)
    out = []
    for line in range(config.rhd.lines):
        amplifiers = config.rhd.facts(line).amplifiers
        data = rng.integers(-32768, 32768, size=(amplifiers, samples), dtype=np.int32)
        data[:, 0::7] = 32767
        data[:, 1::7] = -32768
        data[:, 2::11] = 0
        data[:, 3::11] = -1
        data[::3, 5:samples // 2] = 1000 * (line + 1)
        out.append(data.astype(np.int16))
    return out
