"""Conditioning and spike detection: parameters and fixed-point constants, defined once.

The gateware (:mod:`spikeforge.hdl.conditioner`, :mod:`spikeforge.hdl.detector`), the
bit-exact golden models (:mod:`spikeforge.sim.models.detector`) and the host all take these.
``docs/detection.md`` explains the arithmetic; the short version:

Conditioning, per channel, four first-order stages on integers (``>>`` is floor)::

    d  += ((x  << F) - d ) >> dc_shift            y1 = x  - (d  >> F)      DC removal
    h  += (A_hp * ((y1 << F) - h)) >> COEF_BITS   y2 = y1 - (h  >> F)      high-pass
    l  += (A_lp * ((y2 << F) - l)) >> COEF_BITS   y3 = l >> F              low-pass
    l2 += (A_lp * ((y3 << F) - l2)) >> COEF_BITS  y  = sat16(l2 >> F)      low-pass again

Detection, per channel: a median tracker ``m`` of ``|y|`` (``NOISE_FRAC_BITS`` fraction
bits, steps of ``noise_step``), threshold ``(m * k16 * SIGMA_NUM) >> THRESHOLD_SHIFT`` (that
is k * median|y| / 0.6745 with k in sixteenths), a crossing search window, a dead time, and
snippets from a per-channel ring buffer.
"""

import math
from dataclasses import dataclass

from .errors import ConfigError

__all__ = [
    "DetectorConfig", "POLARITIES", "FILTER_FRAC_BITS", "COEF_BITS", "NOISE_FRAC_BITS",
    "NOISE_BITS", "K_FRAC_BITS", "K_BITS", "SIGMA_NUM", "SIGMA_SHIFT", "THRESHOLD_SHIFT",
    "EVENT_HEADER_WORDS", "COUNTER_BITS", "polarity_code", "DETECTOR_SAME_CHANNEL_SPACING",
    "EXCLUSION_SCORE_BITS", "MAX_EXCLUSION_NEIGHBOURS", "neighbours_within",
    "MAX_ECHO_RATIO", "MAX_ECHO_SAMPLES",
]

#: Fraction bits of the filter states (states are value << FILTER_FRAC_BITS).
FILTER_FRAC_BITS = 8
#: Filter coefficients are unsigned fractions of 2**COEF_BITS.
COEF_BITS = 15
#: Fraction bits of the noise tracker (median of |y| in LSB): its step is 1/64 LSB at the
#: smallest, which keeps the estimate's jitter (and so the threshold's) low; 4 bits (1/16
#: LSB) left it wandering by 6 % (``python -m spikeforge.sim.miss_study``).
NOISE_FRAC_BITS = 6
#: Width of the noise tracker: |y| <= 32768 with NOISE_FRAC_BITS fraction bits.
NOISE_BITS = 16 + NOISE_FRAC_BITS
#: The threshold factor k is stored in sixteenths (k16 = 80 is k = 5.0), 8 bits.
K_FRAC_BITS = 4
K_BITS = 8
#: 1 / 0.6745 (sigma of Gaussian noise from the median of |x|) as SIGMA_NUM / 2**SIGMA_SHIFT.
SIGMA_SHIFT = 10
SIGMA_NUM = round(2**SIGMA_SHIFT / 0.6745)
THRESHOLD_SHIFT = NOISE_FRAC_BITS + K_FRAC_BITS + SIGMA_SHIFT
#: Width of the per-channel sample counter (search window, dead time).
COUNTER_BITS = 16
#: Fewest cycles between two samples of one channel that the detector handles: it writes a
#: channel's state back 3 cycles after reading it (read, registered, products, decision).
DETECTOR_SAME_CHANNEL_SPACING = 3
#: Words of an event record before its snippet: snippet lengths (pre | post << 8),
#: timestamp low, timestamp high, channel, peak amplitude (see wire.EVENT_RECORD).
EVENT_HEADER_WORDS = 5

#: Local exclusion: a candidate's score as its neighbours compare it, saturated to this many
#: bits (16383 LSB = 3.2 mV at 0.195 uV/LSB: larger peaks compare equal, and the lower
#: channel index wins), so a neighbour's record (score + window code) is 18 bits, one block
#: RAM word, at the default window.
EXCLUSION_SCORE_BITS = 14
#: Most neighbours one channel may have in the exclusion table (each is a read port, that is
#: a copy of the record memory).
MAX_EXCLUSION_NEIGHBOURS = 8
#: Echo suppression: the largest ratio (a constant multiplier, shifts and adds) and window.
MAX_ECHO_RATIO = 16
MAX_ECHO_SAMPLES = 1023

#: Polarity names and their register codes (bit 0: negative-going, bit 1: positive-going).
POLARITIES = {"negative": 1, "positive": 2, "both": 3}


def polarity_code(name: str) -> int:
    try:
        return POLARITIES[name]
    except KeyError:
        raise ConfigError(
            f"detector polarity must be one of {', '.join(POLARITIES)}, not {name!r}"
        ) from None


def neighbours_within(positions, radius_um: float) -> tuple[tuple[int, ...], ...]:
    """The exclusion table of a probe: per channel (in channel-index order, the order the
    detector sees them), the other channels whose contacts lie within ``radius_um`` of its
    own. ``positions``: (channels, 2) contact positions in um (a probe file's, or
    SpikeInterface's ``recording.get_channel_locations()``)."""
    points = [(float(x), float(y)) for x, y in positions]
    return tuple(
        tuple(j for j, (xj, yj) in enumerate(points)
              if j != c and math.hypot(xj - xc, yj - yc) <= radius_um)
        for c, (xc, yc) in enumerate(points))


def _ema_coefficient(cutoff_hz: float, sample_rate_hz: int) -> int:
    """First-order smoothing coefficient 1 - exp(-2 pi fc / fs) in units of 2**-COEF_BITS."""
    alpha = 1 - math.exp(-2 * math.pi * cutoff_hz / sample_rate_hz)
    return max(1, min(2**COEF_BITS - 1, round(alpha * 2**COEF_BITS)))


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of the conditioning and detection cores.

    Build-time (fixed in the bitstream): ``dc_shift``, ``highpass_hz``, ``lowpass_hz``,
    ``noise_step``, ``noise_init_lsb``, ``align_samples``, ``max_snippet_pre``,
    ``max_snippet_post``, ``event_queue``, ``event_buffer_words``, ``neo_shift``,
    ``exclusion`` and its parameters, ``noise_hold``, ``echo_ratio``, ``echo_samples``.

    Run-time (registers, reset values here): ``threshold_k`` (per channel), ``polarity``,
    ``dead_samples``, ``snippet_pre``, ``snippet_post``, ``neo``.

    Parameters
    ----------
    enabled:
        Build the conditioner and detector into the acquisition system (build-time). Off by
        default: with its multipliers the path does not fit an iCE40UP5K next to the rest
        (see docs/detection.md); the cores and their benches do not depend on it.
    dc_shift:
        DC removal cutoff: about ``fs / (2 pi 2**dc_shift)`` (10: 4.7 Hz at 30 kS/s).
    highpass_hz, lowpass_hz:
        Corners of the band-pass: one first-order high-pass stage and two first-order
        low-pass stages (the low-pass response is second order; two stages at 3000 Hz put its
        -3 dB point near 1.9 kHz). The default 300 / 3000 Hz is the detection optimum measured
        by ``spikeforge bench detect`` (docs/detection.md: a wider band passes more white noise
        than spike energy). A low-pass corner near or above Nyquist saturates its
        coefficient: the stage then passes (almost) everything.
    noise_step:
        Step of the median tracker in 1/64 LSB per sample (``2**-NOISE_FRAC_BITS``; default 1:
        the smallest step, the least jitter of the noise estimate; it still settles from
        ``noise_init_lsb`` within about 0.1 s; 4 is the earlier default of 1/16 LSB, which
        gives exactly the earlier detector).
    noise_init_lsb:
        Start value of the median tracker, in LSB (so detection starts near a sensible
        threshold instead of at zero).
    threshold_k:
        Threshold in noise standard deviations, a multiple of 1/16 in 0 .. 15.9375.
    polarity:
        "negative", "positive" or "both".
    align_samples:
        The event is aligned to the extremum among the first ``align_samples`` samples from
        the threshold crossing (at least 2).
    dead_samples:
        Samples after an event's emission during which the channel ignores crossings.
    neo:
        Detect on the nonlinear energy operator ``psi[n] = y[n-1]^2 - y[n] y[n-2]`` (scaled
        by ``2**-neo_shift`` and saturated to int16) instead of on ``y``: the score is psi
        itself (polarity only switches detection on or off), the threshold is
        ``k * median|psi| / 0.6745``, and the event is aligned to the psi peak (sample n-1).
    neo_shift:
        Right shift of psi before saturation (build-time), 0..16.
    snippet_pre, snippet_post:
        Snippet samples before and after the peak (run-time; at most the maxima).
    max_snippet_pre, max_snippet_post:
        Largest snippet lengths the ring buffer is sized for.
    event_queue:
        Events that may wait for the snippet copier (a power of two).
    event_buffer_words:
        Output buffer of event words (a power of two); an event that does not fit whole is
        dropped and counted.
    exclusion:
        Local exclusion (build-time; off by default, which is exactly the detector without
        it): a spike seen on several neighbouring channels makes one event, on the channel
        with the largest peak score. Every event becomes a *candidate*; a candidate is
        dropped if a neighbour has a candidate within +-``exclusion_samples`` of its peak
        with a larger score (saturated to :data:`EXCLUSION_SCORE_BITS`; equal scores: the
        lower channel index wins). Decided :attr:`exclusion_delay` sweeps after the peak;
        the channel re-arms no earlier. docs/detection.md, "Local exclusion".
    exclusion_samples:
        The window w, +-samples between two neighbours' peaks (0..align_samples-1; 4, the
        value chosen with ``spikeforge bench detect``: docs/detection.md).
    exclusion_channels:
        Neighbours +-k in channel-index order (when ``exclusion_neighbours`` is empty).
    exclusion_neighbours:
        The neighbour table: per channel, the channels it is compared with (symmetric, at
        most :data:`MAX_EXCLUSION_NEIGHBOURS` each; :func:`neighbours_within` makes one from
        the contacts' positions). For probes whose index neighbours are not spatial ones.
    noise_hold:
        The median tracker learns only from samples that can be noise: while the channel is
        armed and its score is not above the threshold (build-time; off by default, which is
        exactly the detector without it). Spikes, and the samples searched and dead after
        them, then do not raise the noise estimate of a channel with a large unit.
    echo_ratio, echo_samples:
        Echo suppression (build-time; ``echo_ratio`` 0, the default, is exactly the detector
        without it). A large spike's late trough (its after-potential through the causal
        band-pass) crosses the threshold again on its own channel 1-2.5 ms later. An event
        is an *echo*, and is not emitted (no candidate, not counted), if its channel emitted
        an event fewer than ``echo_samples`` samples before (emission to emission) whose
        score (saturated to :data:`EXCLUSION_SCORE_BITS`) is at least ``echo_ratio`` times
        its own. An echo does not replace the channel's record of its last event.
        docs/detection.md, "Echo suppression".
    """

    enabled: bool = False
    dc_shift: int = 10
    highpass_hz: float = 300.0
    lowpass_hz: float = 3000.0
    noise_step: int = 1
    noise_init_lsb: int = 32
    threshold_k: float = 5.0
    polarity: str = "negative"
    align_samples: int = 8
    dead_samples: int = 5
    neo: bool = False
    neo_shift: int = 4
    snippet_pre: int = 8
    snippet_post: int = 16
    max_snippet_pre: int = 16
    max_snippet_post: int = 31
    event_queue: int = 8
    event_buffer_words: int = 512
    exclusion: bool = False
    exclusion_samples: int = 4
    exclusion_channels: int = 1
    exclusion_neighbours: tuple[tuple[int, ...], ...] = ()
    noise_hold: bool = False
    echo_ratio: int = 0
    echo_samples: int = 64

    def __post_init__(self) -> None:
        # A table read from JSON arrives as lists; the configuration is frozen and hashable.
        table = self.exclusion_neighbours
        if isinstance(table, list | tuple) and not (
                isinstance(table, tuple) and all(isinstance(row, tuple) for row in table)):
            try:
                object.__setattr__(self, "exclusion_neighbours",
                                   tuple(tuple(int(c) for c in row) for row in table))
            except TypeError:
                raise ConfigError(
                    f"detector exclusion_neighbours must be one list of channel indices per "
                    f"channel, not {table!r}") from None

    def validate(self, sample_rate_hz: int) -> None:
        if not 1 <= self.dc_shift <= 16:
            raise ConfigError(f"detector dc_shift must be 1..16, not {self.dc_shift!r}")
        nyquist = sample_rate_hz / 2
        if not 0 < self.highpass_hz < min(self.lowpass_hz, nyquist):
            raise ConfigError(
                f"detector band must satisfy 0 < highpass_hz < lowpass_hz and highpass_hz < "
                f"{nyquist:g} Hz (Nyquist), not {self.highpass_hz!r} .. {self.lowpass_hz!r}"
            )
        if not 1 <= self.noise_step <= 1024:
            raise ConfigError(f"detector noise_step must be 1..1024 (1/64 LSB each), not "
                              f"{self.noise_step!r}")
        if not 0 <= self.noise_init_lsb < 2**15:
            raise ConfigError(
                f"detector noise_init_lsb must be 0..32767, not {self.noise_init_lsb!r}")
        k16 = self.threshold_k * 2**K_FRAC_BITS
        if not (k16 == int(k16) and 0 <= k16 < 2**K_BITS):
            raise ConfigError(
                f"detector threshold_k must be a multiple of 1/16 in 0..15.9375, not "
                f"{self.threshold_k!r}; round it to {round(k16) / 16:g}"
            )
        polarity_code(self.polarity)
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"detector enabled must be True or False, not {self.enabled!r}")
        if not isinstance(self.neo, bool):
            raise ConfigError(f"detector neo must be True or False, not {self.neo!r}")
        if not 0 <= self.neo_shift <= 16:
            raise ConfigError(f"detector neo_shift must be 0..16, not {self.neo_shift!r}")
        if not 2 <= self.align_samples <= 64:
            raise ConfigError(
                f"detector align_samples must be 2..64, not {self.align_samples!r}")
        if not 0 <= self.dead_samples < 2**COUNTER_BITS:
            raise ConfigError(
                f"detector dead_samples must be 0..{2**COUNTER_BITS - 1}, "
                f"not {self.dead_samples!r}")
        for name, limit in (("max_snippet_pre", 255), ("max_snippet_post", 255)):
            if not 0 <= getattr(self, name) <= limit:
                raise ConfigError(f"detector {name} must be 0..{limit}, not "
                                  f"{getattr(self, name)!r}")
        if not 0 <= self.snippet_pre <= self.max_snippet_pre:
            raise ConfigError(f"detector snippet_pre must be 0..max_snippet_pre="
                              f"{self.max_snippet_pre}, not {self.snippet_pre!r}")
        if not 0 <= self.snippet_post <= self.max_snippet_post:
            raise ConfigError(f"detector snippet_post must be 0..max_snippet_post="
                              f"{self.max_snippet_post}, not {self.snippet_post!r}")
        for name in ("event_queue", "event_buffer_words"):
            value = getattr(self, name)
            if value < 2 or value & (value - 1):
                raise ConfigError(f"detector {name} must be a power of two >= 2, not {value!r}")
        if not isinstance(self.exclusion, bool):
            raise ConfigError(
                f"detector exclusion must be True or False, not {self.exclusion!r}")
        if not (isinstance(self.exclusion_samples, int) and 0 <= self.exclusion_samples
                and (self.exclusion_samples < self.align_samples or not self.exclusion)):
            raise ConfigError(
                f"detector exclusion_samples must be 0..align_samples-1="
                f"{self.align_samples - 1} (a neighbour's candidate must still be on record "
                f"when the last channel that compares with it decides), not "
                f"{self.exclusion_samples!r}; lower it or raise align_samples")
        if not (isinstance(self.exclusion_channels, int)
                and 0 <= self.exclusion_channels <= MAX_EXCLUSION_NEIGHBOURS // 2):
            raise ConfigError(
                f"detector exclusion_channels must be 0..{MAX_EXCLUSION_NEIGHBOURS // 2} "
                f"(+-k channels in index order), not {self.exclusion_channels!r}; for a "
                f"probe whose index neighbours are not its spatial neighbours give "
                f"exclusion_neighbours")
        for c, row in enumerate(self.exclusion_neighbours):
            if len(row) > MAX_EXCLUSION_NEIGHBOURS:
                raise ConfigError(
                    f"detector exclusion_neighbours[{c}] has {len(row)} channels; at most "
                    f"{MAX_EXCLUSION_NEIGHBOURS} (each is a copy of the record memory): "
                    f"use a smaller radius")
        if not isinstance(self.noise_hold, bool):
            raise ConfigError(
                f"detector noise_hold must be True or False, not {self.noise_hold!r}")
        if not (isinstance(self.echo_ratio, int) and 0 <= self.echo_ratio <= MAX_ECHO_RATIO):
            raise ConfigError(
                f"detector echo_ratio must be an integer 0..{MAX_ECHO_RATIO} (0: no echo "
                f"suppression), not {self.echo_ratio!r}")
        if not (isinstance(self.echo_samples, int) and 1 <= self.echo_samples <= MAX_ECHO_SAMPLES):
            raise ConfigError(
                f"detector echo_samples must be an integer 1..{MAX_ECHO_SAMPLES}, not "
                f"{self.echo_samples!r}")
        if self.event_buffer_words < self.max_event_words:
            need = 1 << (self.max_event_words - 1).bit_length()
            raise ConfigError(
                f"detector event_buffer_words {self.event_buffer_words} cannot hold one event "
                f"of {self.max_event_words} words; use event_buffer_words={need}"
            )

    # -- derived ------------------------------------------------------------------------------

    def exclusion_table(self, channels: int) -> tuple[tuple[int, ...], ...]:
        """Each channel's exclusion neighbours (sorted, without itself): the explicit
        ``exclusion_neighbours`` if given, else the channels within +-``exclusion_channels``
        in index order. Raises :class:`ConfigError` for a table that does not fit
        ``channels``, names a channel twice or itself, has more than
        :data:`MAX_EXCLUSION_NEIGHBOURS` for a channel, or is not symmetric."""
        if not self.exclusion_neighbours:
            k = self.exclusion_channels
            return tuple(tuple(j for j in range(max(0, c - k), min(channels, c + k + 1))
                               if j != c) for c in range(channels))
        table = self.exclusion_neighbours
        if len(table) != channels:
            raise ConfigError(
                f"detector exclusion_neighbours has {len(table)} rows; it needs one per "
                f"channel ({channels})")
        rows = []
        for c, row in enumerate(table):
            if len(set(row)) != len(row) or c in row or any(
                    not 0 <= j < channels for j in row):
                raise ConfigError(
                    f"detector exclusion_neighbours[{c}] = {list(row)} must list other "
                    f"channels (0..{channels - 1}), each once")
            if len(row) > MAX_EXCLUSION_NEIGHBOURS:
                raise ConfigError(
                    f"detector exclusion_neighbours[{c}] has {len(row)} channels; at most "
                    f"{MAX_EXCLUSION_NEIGHBOURS} (each is a copy of the record memory): "
                    f"use a smaller radius")
            rows.append(tuple(sorted(row)))
        for c, row in enumerate(rows):
            for j in row:
                if c not in rows[j]:
                    raise ConfigError(
                        f"detector exclusion_neighbours is not symmetric: {j} is a neighbour "
                        f"of {c} but not {c} of {j}; list each pair both ways")
        return tuple(rows)

    def exclusion_slots(self, channels: int) -> int:
        """Neighbours per channel the gateware reads (the longest row of the table)."""
        return max((len(row) for row in self.exclusion_table(channels)), default=0)

    @property
    def exclusion_delay(self) -> int:
        """Sweeps from an event's peak to its exclusion decision: ``exclusion_samples +
        align_samples + 1`` (every neighbour's candidate within the window has been emitted
        by the sweep before)."""
        return self.exclusion_samples + self.align_samples + 1

    @property
    def exclusion_age_max(self) -> int:
        """A candidate's age (sweeps since its peak) saturates here: older is out of every
        window."""
        return self.exclusion_delay + self.exclusion_samples + 1

    def exclusion_code(self, age: int) -> int:
        """A neighbour's record carries its candidate's age as a window code: 0 too young,
        ``1 .. 2w+2`` the ages ``D-1-w .. D+w`` (D = :attr:`exclusion_delay`), ``2w+3``
        (:attr:`exclusion_code_max`) older."""
        return min(max(age - self.exclusion_code_low + 1, 0), self.exclusion_code_max)

    @property
    def exclusion_code_low(self) -> int:
        """The youngest age with a window code of 1: ``D - 1 - w``."""
        return self.exclusion_delay - 1 - self.exclusion_samples

    @property
    def exclusion_code_max(self) -> int:
        return 2 * self.exclusion_samples + 3

    @property
    def exclusion_code_bits(self) -> int:
        return (2 * self.exclusion_samples + 3).bit_length()

    @property
    def exclusion_age_bits(self) -> int:
        return self.exclusion_age_max.bit_length()

    @property
    def echo(self) -> bool:
        """Whether echo suppression is built (``echo_ratio`` > 0)."""
        return self.echo_ratio > 0

    @property
    def echo_age_bits(self) -> int:
        """Bits of a channel's age since its last event (saturating at ``echo_samples``)."""
        return self.echo_samples.bit_length()

    def highpass_coefficient(self, sample_rate_hz: int) -> int:
        return _ema_coefficient(self.highpass_hz, sample_rate_hz)

    def lowpass_coefficient(self, sample_rate_hz: int) -> int:
        return _ema_coefficient(self.lowpass_hz, sample_rate_hz)

    @property
    def threshold_k16(self) -> int:
        return int(self.threshold_k * 2**K_FRAC_BITS)

    @property
    def polarity_code(self) -> int:
        return polarity_code(self.polarity)

    @property
    def max_event_words(self) -> int:
        return EVENT_HEADER_WORDS + self.max_snippet_pre + 1 + self.max_snippet_post

    def ring_depth(self, cycles_per_sample: int, copy_cycles_per_sweep: int | None = None
                   ) -> int:
        """Samples kept per channel for snippets (a power of two).

        Holds the longest stretch from the oldest snippet sample to the emission, plus the
        sweeps the copier may need, in the worst case, to reach an event: every queued event
        ahead of it and its own copy, ``(event_queue + 1) * max_event_words`` cycles, plus
        pipeline slack. So a snippet is always copied before the ring overwrites it.
        ``copy_cycles_per_sweep``: the cycles of a sweep in which the copier can read the
        ring (all of them for a dual-port block RAM ring, the default; only those without a
        sample for a single-port SPRAM ring: ``cycles_per_sample - channels``).
        """
        per_sweep = cycles_per_sample if copy_cycles_per_sweep is None else copy_cycles_per_sweep
        if per_sweep < 1:
            raise ConfigError(f"the snippet copier needs at least one cycle per sweep, not "
                              f"{per_sweep}; raise the clock or lower the channel count")
        # With exclusion an event is admitted exclusion_delay sweeps after its peak.
        decided = max(self.align_samples, self.exclusion_delay if self.exclusion else 0)
        span = self.max_snippet_pre + decided + self.max_snippet_post
        copy_cycles = (self.event_queue + 1) * (self.max_event_words + 2) + 4
        need = span + 1 + -(-copy_cycles // per_sweep) + (per_sweep < cycles_per_sample)
        return 1 << (need - 1).bit_length()
