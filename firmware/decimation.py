"""The LFP decimator's parameters and fixed-point constants, defined once for the core
(:class:`spikeforge.hdl.decimator.Decimator`), its golden model
(:mod:`spikeforge.sim.models.decimator`) and the host.

The decimator is a cascaded integrator-comb (CIC) filter of order ``order`` and rate change
``factor`` (Hogenauer 1981): ``order`` integrators per channel at the input rate, the
decimation, then ``order`` combs (differential delay 1) at the output rate. Its response is
``(sin(pi f R / fs) / (R sin(pi f / fs)))**N`` (R = factor, N = order, fs = input rate): a
low-pass with nulls at every multiple of the output rate, so everything that would alias
onto DC and its neighbourhood is suppressed, with no multiplier in the filter. The LFP band
(below ~300 Hz) sits low in the output band (e.g. 1 kS/s from 30 kS/s), where the droop is
small (see :meth:`DecimatorConfig.response`).

Arithmetic is two's complement with wrap-around at ``state_bits`` = 16 + ``growth_bits``,
which is exact for a CIC: the comb output equals the true sum. The DC gain ``factor**order``
is then removed by one constant multiplication with rounding:
``y = (c * gain_num + 2**(gain_shift-1)) >> gain_shift``, saturated to int16.
"""

import math
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["DecimatorConfig", "MAX_GROWTH_BITS", "GAIN_BITS"]

#: Largest bit growth (log2 of factor**order) the core is built for; keeps the state words
#: and the model's 64-bit arithmetic small.
MAX_GROWTH_BITS = 30
#: Precision of the gain constant: gain_num lies in [2**(GAIN_BITS-1), 2**GAIN_BITS].
GAIN_BITS = 17


@dataclass(frozen=True)
class DecimatorConfig:
    """Rate change and order of the LFP decimator.

    Parameters
    ----------
    factor:
        Output one sweep for every ``factor`` input sweeps (2 ... 1024).
    order:
        Number of integrator/comb stages (1 ... 5); each adds ~13 dB of alias rejection
        at the edges of the first null band, and ``log2(factor)`` bits of state.
    """

    factor: int = 30
    order: int = 3

    def __post_init__(self) -> None:
        for name, low, high in (("factor", 2, 1024), ("order", 1, 5)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"decimator {name} must be an integer {low}..{high}, "
                                  f"not {value!r}")
        if self.growth_bits > MAX_GROWTH_BITS:
            most = max(n for n in range(1, 6) if (self.factor**n - 1).bit_length()
                       <= MAX_GROWTH_BITS) if self.factor <= 2**MAX_GROWTH_BITS else 0
            raise ConfigError(
                f"a decimator of factor {self.factor} and order {self.order} grows the "
                f"state by {self.growth_bits} bits, over the {MAX_GROWTH_BITS} supported; "
                f"use order <= {most} at this factor, or decimate in two cores")

    @property
    def growth_bits(self) -> int:
        """Bits the integrators grow by: ceil(log2(factor**order))."""
        return (self.factor**self.order - 1).bit_length()

    @property
    def state_bits(self) -> int:
        """Width of every integrator and comb delay (wraps modulo 2**state_bits)."""
        return 16 + self.growth_bits

    @property
    def state_bits_per_channel(self) -> int:
        return 2 * self.order * self.state_bits

    @property
    def gain_shift(self) -> int:
        return self.growth_bits + GAIN_BITS - 1

    @property
    def gain_num(self) -> int:
        """round(2**gain_shift / factor**order): the DC gain removed, to 2**-16."""
        return round(2**self.gain_shift / self.factor**self.order)

    def output_rate_hz(self, sample_rate_hz: float) -> float:
        return sample_rate_hz / self.factor

    def response(self, frequency_hz: float, sample_rate_hz: float) -> float:
        """Magnitude response (1 at DC, gain constant included) at ``frequency_hz``."""
        x = math.pi * frequency_hz / sample_rate_hz
        if math.isclose(math.sin(x), 0.0, abs_tol=1e-12):
            shape = 1.0  # DC and its images at multiples of the input rate
        else:
            shape = abs(math.sin(self.factor * x) / (self.factor * math.sin(x)))
        return shape**self.order * self.gain_num * self.factor**self.order / 2**self.gain_shift
