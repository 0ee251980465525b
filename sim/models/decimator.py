"""Golden model of the LFP decimator (:class:`spikeforge.hdl.decimator.Decimator`).

Vectorised over channels and time: the integrators are cumulative sums, the combs
differences of the decimated sums, all in uint64 (wrapping modulo 2**64, which contains the
core's wrap modulo 2**state_bits), reduced to ``state_bits`` signed at the end. The
arithmetic is in :mod:`spikeforge.firmware.decimation`.
"""

import numpy as np

from spikeforge.firmware.decimation import DecimatorConfig

__all__ = ["decimate", "output_sweeps"]


def output_sweeps(decimation: DecimatorConfig, sweeps: int) -> np.ndarray:
    """Input sweep numbers (from reset) at which each output sweep is emitted."""
    return np.arange(decimation.factor - 1, sweeps, decimation.factor)


def decimate(decimation: DecimatorConfig, samples: np.ndarray) -> np.ndarray:
    """The decimator's output for ``samples`` (int16, (sweeps, channels)) from reset:
    int16 of shape (sweeps // factor, channels); output m is emitted with input sweep
    ``(m + 1) * factor - 1``."""
    samples = np.asarray(samples)
    if samples.ndim != 2:
        raise ValueError(f"samples must be (sweeps, channels), not shape {samples.shape}")
    value = samples.astype(np.int64).astype(np.uint64)
    for _ in range(decimation.order):
        value = np.cumsum(value, axis=0, dtype=np.uint64)
    value = value[output_sweeps(decimation, samples.shape[0])]
    for _ in range(decimation.order):
        value = np.diff(value, axis=0, prepend=np.zeros((1, value.shape[1]), np.uint64))
    bits = decimation.state_bits
    wrapped = (value & np.uint64((1 << bits) - 1)).astype(np.int64)
    wrapped -= (wrapped >> (bits - 1)) << bits     # sign-extend from state_bits
    rounded = (wrapped * decimation.gain_num + (1 << (decimation.gain_shift - 1))) \
        >> decimation.gain_shift
    return np.clip(rounded, -32768, 32767).astype(np.int16)
