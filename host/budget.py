"""Link-budget calculator: which bandwidth modes fit a link, and with what margin.

``spikeforge budget`` and :func:`budget` answer, for a stream description (channels,
sample rate, detector on or off, expected spike rate, snippet length; usually taken from a
:class:`~spikeforge.firmware.config.SystemConfig`) and a link rate in bit/s, how many
bits per second each bandwidth mode puts on the link:

``raw``
    DATA frames: ``sweeps_per_frame`` sweeps of int16 samples per frame.
``lossless``
    The samples coded by the lossless coder: payload = raw payload / compression ratio,
    one COMPRESSED frame per coded block of ``codec.block_sweeps`` sweeps. Reported at the
    expected ratio (measured by ``spikeforge bench compress``, or over the user's own
    recording) and at the coder's worst case
    (:func:`~spikeforge.firmware.compression.worst_case_bits`: adversarial input, which
    must still never lose data).
``events``
    EVENTS frames only (``STREAM_ENABLE`` = 0): one frame per spike, each an event record
    and its snippet (:data:`~spikeforge.firmware.wire.EVENT_RECORD`), at the expected spike
    rate per channel.
``events+lfp``
    The events, plus the samples low-pass filtered and decimated by ``lfp_decimation``
    (a configuration's ``lfp.factor`` when it has one), in LFP frames of
    ``sweeps_per_frame`` decimated sweeps of int16 (13 bytes of frame each), exactly as the
    device sends them (docs/wire-format.md). A configuration without ``lfp`` cannot run it.

Links (``link``): ``"uart"`` sends ``bits_per_byte`` line bits per byte (above).
``"ethernet"`` is Gigabit Ethernet (:mod:`spikeforge.firmware.ethernet`, default 1000
Mbit/s): every wire frame is one UDP datagram, sent as IPv4 fragments of at most
``FRAGMENT_PAYLOAD_BYTES`` (1480) bytes, and every fragment costs preamble and SFD (8),
Ethernet header (14), IPv4 header (20), FCS (4) and the inter-frame gap (12) — 58 byte
times — plus the UDP header (8) once per datagram, and a short fragment is padded to the
64-byte minimum frame (:func:`ethernet_line_bytes`). A frame longer than one datagram
carries (``MAX_WIRE_FRAME_BYTES``) cannot be sent: that mode is not available until
``sweeps_per_frame`` is lowered.

Every mode also carries the IDENTITY frame, sent once per ``identity_interval_frames``
frame slots. Every frame costs :data:`~spikeforge.firmware.wire.DATA_FRAME_OVERHEAD_BYTES`
(sync, header, CRC); a build with the encrypted stream (``stream_cipher``) adds its
:data:`~spikeforge.firmware.stream_cipher.TAG_BYTES` (8) tag to every frame it seals (DATA,
EVENTS, COMPRESSED, LFP; not IDENTITY), and a UART sends ``bits_per_byte`` = 10 bits per
byte (start, 8 data, stop). The margin is the fraction of the link left free; a mode fits
when that is >= 0. Events come in bursts, so an events mode with little margin will still
drop events (whole, and counted) when many channels fire together.

This module is host-side: it needs no Amaranth and no simulation models.
"""

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from spikeforge.firmware.compression import CodecConfig, worst_case_bits
from spikeforge.firmware.compression_v2 import CodecV2Config, worst_case_bits_v2
from spikeforge.firmware.config import MAX_CHANNELS, SystemConfig
from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.firmware.ethernet import (
    ETH_HEADER_BYTES,
    FCS_BYTES,
    FRAGMENT_PAYLOAD_BYTES,
    INTER_FRAME_GAP_BYTES,
    IPV4_HEADER_BYTES,
    LINK_RATE_BPS,
    MAX_WIRE_FRAME_BYTES,
    MIN_FRAME_BYTES,
    PREAMBLE_SFD,
    UDP_HEADER_BYTES,
)
from spikeforge.firmware.stream_cipher import TAG_BYTES
from spikeforge.firmware.wire import (
    DATA_FRAME_OVERHEAD_BYTES,
    EVENT_RECORD,
    IDENTITY_PAYLOAD_BYTES,
    MODE_NAMES,
)

from .errors import ExitCode

__all__ = ["BudgetError", "StreamDescription", "ModeBudget", "Budget", "budget",
           "UART_BITS_PER_BYTE", "DEFAULT_COMPRESSION_RATIO", "DEFAULT_SPIKE_RATE_HZ",
           "DEFAULT_LFP_DECIMATION", "MODES", "format_budget", "LINKS", "ethernet_line_bytes",
           "lossless_break_even_ratio", "MEASURED_SOURCE_PREFIX"]

#: Start bit, 8 data bits, stop bit.
UART_BITS_PER_BYTE = 10
#: Expected lossless ratio (raw bytes / coded bytes) when the user gives neither a ratio
#: nor a recording: the gateware coder on the SpikeInterface ground-truth class (5-10 uV
#: noise at 0.195 uV/bit, as an RHD2000 front-end sees it), 1.919 at the default block of
#: 32 sweeps, rounded down (docs/compression-benchmark.md, ``spikeforge bench compress``).
#: Not the N1 figure (~2.9-3.3): that comes from a coarse ADC grid other front-ends lack.
DEFAULT_COMPRESSION_RATIO = 1.9
#: How a ratio source measured over real data begins (``spikeforge budget --recording``);
#: any other source (the default, a ratio given by hand) is an assumption the budget says.
MEASURED_SOURCE_PREFIX = "measured"
#: Threshold crossings per second per channel assumed when none is given (multi-unit
#: activity in cortex is typically 5-50 Hz per electrode at a 4-5 sigma threshold).
DEFAULT_SPIKE_RATE_HZ = 20.0
#: LFP decimation when none is given: 30 kS/s -> 1 kS/s (LFP lies below ~300 Hz).
DEFAULT_LFP_DECIMATION = 30
#: The links a budget knows (see the module docstring).
LINKS = ("uart", "ethernet")
#: Byte times every Ethernet frame costs besides its IP packet: preamble + SFD, header,
#: FCS, inter-frame gap.
_ETHERNET_FRAME_COST = len(PREAMBLE_SFD) + ETH_HEADER_BYTES + FCS_BYTES + INTER_FRAME_GAP_BYTES
#: The smallest IP packet an Ethernet frame carries unpadded (64-byte minimum with FCS).
_MIN_IP_PACKET = MIN_FRAME_BYTES - ETH_HEADER_BYTES


def ethernet_line_bytes(wire_frame_bytes: float) -> float:
    """Byte times one wire frame of ``wire_frame_bytes`` takes on Gigabit Ethernet: its UDP
    datagram in IPv4 fragments (at most ``FRAGMENT_PAYLOAD_BYTES`` of IP payload each), each
    fragment an Ethernet frame with preamble, SFD, header, FCS and inter-frame gap, padded
    to the minimum frame. A fractional size (an average coded block) is costed as is."""
    udp = wire_frame_bytes + UDP_HEADER_BYTES
    fragments = max(1, math.ceil(udp / FRAGMENT_PAYLOAD_BYTES))
    last = udp - (fragments - 1) * FRAGMENT_PAYLOAD_BYTES

    def frame(ip_payload: float) -> float:
        return _ETHERNET_FRAME_COST + max(_MIN_IP_PACKET, IPV4_HEADER_BYTES + ip_payload)

    return (fragments - 1) * frame(FRAGMENT_PAYLOAD_BYTES) + frame(last)


#: The device's bandwidth modes (register BANDWIDTH_MODE), named as in firmware/wire.py.
MODES = tuple(MODE_NAMES)


class BudgetError(SpikeforgeError, ValueError):
    """A link budget that cannot be computed from the values given."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class StreamDescription:
    """What the device streams; every field a :class:`SystemConfig` also has means the same.

    ``spike_rate_hz`` is the expected detected events per second per channel.
    ``stream_cipher``: the frames that carry neural data are sealed, each with a
    ``TAG_BYTES`` tag (:mod:`spikeforge.firmware.stream_cipher`).
    """

    channels: int
    sample_rate_hz: int
    sweeps_per_frame: int = 32
    identity_interval_frames: int = 1024
    detector_enabled: bool = True
    spike_rate_hz: float = DEFAULT_SPIKE_RATE_HZ
    snippet_pre: int = 8
    snippet_post: int = 16
    codec: CodecConfig | CodecV2Config = field(default_factory=CodecConfig)
    stream_cipher: bool = False

    def __post_init__(self) -> None:
        for name in ("channels", "sample_rate_hz", "sweeps_per_frame",
                     "identity_interval_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise BudgetError(f"{name} must be a positive integer, not {value!r}")
        if self.channels > MAX_CHANNELS:
            raise BudgetError(f"channels must be at most {MAX_CHANNELS}, not {self.channels}")
        if not (math.isfinite(self.spike_rate_hz) and self.spike_rate_hz >= 0):
            raise BudgetError(
                f"spike_rate_hz must be a rate >= 0 events/s per channel, not "
                f"{self.spike_rate_hz!r}")
        for name in ("snippet_pre", "snippet_post"):
            value = getattr(self, name)
            if not 0 <= value <= 255:
                raise BudgetError(f"{name} must be 0..255 samples (one byte on the wire), "
                                  f"not {value!r}")

    @classmethod
    def from_config(cls, config: SystemConfig,
                    spike_rate_hz: float = DEFAULT_SPIKE_RATE_HZ) -> "StreamDescription":
        det = config.detector
        return cls(channels=config.channels, sample_rate_hz=config.sample_rate_hz,
                   sweeps_per_frame=config.sweeps_per_frame,
                   identity_interval_frames=config.identity_interval_frames,
                   detector_enabled=det.enabled, spike_rate_hz=spike_rate_hz,
                   snippet_pre=det.snippet_pre, snippet_post=det.snippet_post,
                   codec=config.codec_v2 if config.codec_v2.enabled else config.codec,
                   stream_cipher=config.stream_cipher)

    @property
    def slot_rate_hz(self) -> float:
        """Frame slots per second (one DATA or COMPRESSED frame each)."""
        return self.sample_rate_hz / self.sweeps_per_frame

    @property
    def block_rate_hz(self) -> float:
        """Coded blocks per second (one COMPRESSED frame each)."""
        return self.sample_rate_hz / self.codec.block_sweeps

    @property
    def worst_case_ratio(self) -> float:
        """Raw bits / coded bits of the coder's worst-case block (below 1): v1's
        (:func:`~spikeforge.firmware.compression.worst_case_bits`) or, when the codec is
        v2, v2's (:func:`~spikeforge.firmware.compression_v2.worst_case_bits_v2`)."""
        block = self.codec.block_sweeps
        if isinstance(self.codec, CodecV2Config):
            return 16 * self.channels * block / worst_case_bits_v2(self.channels, block)
        return 16 * self.channels * block / worst_case_bits(self.channels, block, self.codec)

    @property
    def frame_overhead_bytes(self) -> int:
        """Bytes a frame of neural data costs besides its payload: sync, header, CRC, and
        the tag when the stream is sealed (IDENTITY frames cost
        ``DATA_FRAME_OVERHEAD_BYTES``)."""
        return DATA_FRAME_OVERHEAD_BYTES + (TAG_BYTES if self.stream_cipher else 0)

    @property
    def event_bytes(self) -> int:
        """Bytes one event takes on the wire (payload): record + snippet."""
        return EVENT_RECORD.size + 2 * (self.snippet_pre + 1 + self.snippet_post)


@dataclass(frozen=True)
class ModeBudget:
    """One bandwidth mode on one link. Rates are bytes/s unless named bits."""

    mode: str
    payload_bytes_per_s: float       #: samples, coded blocks or event records
    framing_bytes_per_s: float       #: 13 bytes per frame (21 sealed)
    identity_bytes_per_s: float      #: the periodic IDENTITY frame
    link_bits_per_s: float           #: everything, in line bits (UART framing included)
    capacity_bits_per_s: float
    available: bool                  #: False: this build cannot produce the mode
    max_channels: int                #: most channels that fit at this rate (0: none)
    note: str = ""
    #: Ethernet links: the bytes per second Ethernet, IPv4 and UDP add (preamble, headers,
    #: FCS, gaps, padding), already in ``link_bits_per_s``; 0 on a UART.
    link_overhead_bytes_per_s: float = 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.payload_bytes_per_s + self.framing_bytes_per_s + self.identity_bytes_per_s

    @property
    def load(self) -> float:
        """Fraction of the link this mode uses."""
        return self.link_bits_per_s / self.capacity_bits_per_s

    @property
    def margin(self) -> float:
        """Fraction of the link left free (negative: the mode does not fit)."""
        return 1.0 - self.load

    @property
    def fits(self) -> bool:
        return self.available and self.load <= 1.0


@dataclass(frozen=True)
class Budget:
    stream: StreamDescription
    link_bits_per_s: float
    bits_per_byte: int
    compression_ratio: float
    compression_ratio_source: str
    lfp_decimation: int
    modes: list[ModeBudget] = field(default_factory=list)
    link: str = "uart"

    def mode(self, name: str) -> ModeBudget:
        for m in self.modes:
            if m.mode == name:
                return m
        raise BudgetError(f"unknown mode {name!r}; modes are {', '.join(MODES)}")

    @property
    def ratio_assumed(self) -> bool:
        """The lossless ratio is an assumption (a default or a given figure), not measured
        by running the coder over the user's data."""
        return not self.compression_ratio_source.startswith(MEASURED_SOURCE_PREFIX)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lossless_break_even_ratio"] = lossless_break_even_ratio(self)
        out["compression_ratio_assumed"] = self.ratio_assumed
        out["modes"] = [dict(asdict(m), load=m.load, margin=m.margin, fits=m.fits,
                             bytes_per_s=m.bytes_per_s) for m in self.modes]
        return out


def _mode(name: str, stream: StreamDescription, capacity_bps: float, bits_per_byte: int,
          link: str, fixed_payload_per_channel: float, frames_per_s_fixed: float,
          event_payload_per_channel: float, frames_per_s_per_channel: float,
          available: bool, note: str) -> ModeBudget:
    """A mode whose payload grows linearly with channels: ``fixed_payload_per_channel``
    bytes/s ride in frames sent at a fixed rate (one per slot or block), and
    ``event_payload_per_channel`` in frames sent per event (``frames_per_s_per_channel``
    each, one event per frame)."""
    overhead = stream.frame_overhead_bytes     # sealed frames carry their tag
    identity_frame = DATA_FRAME_OVERHEAD_BYTES + IDENTITY_PAYLOAD_BYTES   # never sealed
    per_channel_payload = fixed_payload_per_channel + event_payload_per_channel
    identity_rate = stream.slot_rate_hz / stream.identity_interval_frames
    identity = identity_frame * identity_rate
    fixed = frames_per_s_fixed * overhead + identity
    per_channel = per_channel_payload + frames_per_s_per_channel * overhead
    payload = per_channel_payload * stream.channels
    framing = (frames_per_s_fixed + frames_per_s_per_channel * stream.channels) * overhead
    if link == "ethernet":
        event_frame = (event_payload_per_channel / frames_per_s_per_channel
                       if frames_per_s_per_channel else 0.0)

        def line_bytes(channels: int) -> float:
            total = identity_rate * ethernet_line_bytes(identity_frame)
            if frames_per_s_fixed:
                frame = fixed_payload_per_channel * channels / frames_per_s_fixed
                total += frames_per_s_fixed * ethernet_line_bytes(overhead + frame)
            if frames_per_s_per_channel:
                total += (frames_per_s_per_channel * channels
                          * ethernet_line_bytes(overhead + event_frame))
            return total

        def frame_fits(channels: int) -> bool:
            return not frames_per_s_fixed or (
                overhead + fixed_payload_per_channel * channels / frames_per_s_fixed
                <= MAX_WIRE_FRAME_BYTES)

        line_bits = line_bytes(stream.channels) * 8
        link_overhead = line_bits / 8 - (payload + framing + identity)
        capacity_bytes = capacity_bps / 8
        if available and not frame_fits(stream.channels):
            size = overhead + fixed_payload_per_channel * stream.channels / frames_per_s_fixed
            available = False
            note = (f"a frame of {size:,.0f} bytes does not fit one UDP datagram "
                    f"({MAX_WIRE_FRAME_BYTES:,}): lower sweeps_per_frame (codec.block_sweeps "
                    "for lossless)")
        low, high = 0, MAX_CHANNELS if available else 0
        while low < high:          # the most channels whose line bytes fit (monotonic)
            middle = (low + high + 1) // 2
            if frame_fits(middle) and line_bytes(middle) <= capacity_bytes:
                low = middle
            else:
                high = middle - 1
        return ModeBudget(name, payload, framing, identity, line_bits, capacity_bps,
                          available, low, note, link_overhead)
    line_bits = (payload + framing + identity) * bits_per_byte
    capacity_bytes = capacity_bps / bits_per_byte
    if not available or capacity_bytes <= fixed:
        max_channels = 0
    elif per_channel == 0:
        max_channels = MAX_CHANNELS
    else:
        max_channels = min(MAX_CHANNELS, math.floor((capacity_bytes - fixed) / per_channel))
    return ModeBudget(name, payload, framing, identity, line_bits, capacity_bps, available,
                      max_channels, note)


def budget(stream: StreamDescription | SystemConfig, link_bits_per_s: float | None = None,
           *, compression_ratio: float = DEFAULT_COMPRESSION_RATIO,
           compression_ratio_source: str = "default (docs/compression-benchmark.md)",
           worst_case: bool = True,
           lfp_decimation: int | None = None,
           spike_rate_hz: float | None = None,
           bits_per_byte: int = UART_BITS_PER_BYTE, link: str = "uart") -> Budget:
    """The link budget of every mode in :data:`MODES`.

    ``link``: ``"uart"`` (``bits_per_byte`` line bits per byte) or ``"ethernet"`` (Gigabit
    Ethernet, UDP datagrams in IPv4 fragments; ``link_bits_per_s`` defaults to 1000 Mbit/s
    and ``bits_per_byte`` is 8). See the module docstring.
    ``stream`` may be a :class:`SystemConfig` (its ``baud`` is then the default rate of a
    UART link).
    ``worst_case`` adds a ``lossless (worst case)`` row: the coder's bounded expansion on
    adversarial input (:func:`~spikeforge.firmware.compression.worst_case_bits`).
    ``lfp_decimation``: default the configuration's ``lfp.factor``, else
    :data:`DEFAULT_LFP_DECIMATION`.
    """
    if link not in LINKS:
        raise BudgetError(f"link must be one of {', '.join(LINKS)}, not {link!r}")
    if link == "ethernet":
        bits_per_byte = 8
        if link_bits_per_s is None:
            link_bits_per_s = float(LINK_RATE_BPS)
    lfp_note = ""
    if isinstance(stream, SystemConfig):
        if lfp_decimation is None and stream.lfp is not None:
            lfp_decimation = stream.lfp.factor
        if stream.lfp is None:
            lfp_note = ("needs the LFP decimator: build with lfp=DecimatorConfig(...) "
                        "(SystemConfig.lfp)")
        if link_bits_per_s is None:
            link_bits_per_s = float(stream.baud)
        stream = StreamDescription.from_config(
            stream, DEFAULT_SPIKE_RATE_HZ if spike_rate_hz is None else spike_rate_hz)
    elif spike_rate_hz is not None:
        stream = replace(stream, spike_rate_hz=spike_rate_hz)
    if link_bits_per_s is None:
        raise BudgetError("no link rate: give link_bits_per_s (--link-bps), a --board, or a "
                          "configuration whose baud is the link")
    if not (math.isfinite(link_bits_per_s) and link_bits_per_s > 0):
        raise BudgetError(f"the link rate must be a positive number of bit/s, not "
                          f"{link_bits_per_s!r}")
    if not (math.isfinite(compression_ratio) and compression_ratio > 0):
        raise BudgetError(
            f"compression ratio must be a positive number (raw bytes / coded bytes, e.g. "
            f"2.5), not {compression_ratio!r}")
    if lfp_decimation is None:
        lfp_decimation = DEFAULT_LFP_DECIMATION
    if not isinstance(lfp_decimation, int) or lfp_decimation < 1:
        raise BudgetError(f"lfp_decimation must be a whole factor >= 1, not {lfp_decimation!r}")
    if bits_per_byte < 8:
        raise BudgetError(f"bits_per_byte must be at least 8, not {bits_per_byte}")

    args = (stream, link_bits_per_s, bits_per_byte, link)
    raw_per_channel = 2.0 * stream.sample_rate_hz
    events_note = "" if stream.detector_enabled else \
        "needs the detector: build with detector.enabled = True"
    events_per_channel = stream.spike_rate_hz
    lfp_rate = stream.sample_rate_hz / lfp_decimation
    modes = [
        _mode("raw", *args, raw_per_channel, stream.slot_rate_hz, 0.0, 0.0, True,
              "int16 samples in DATA frames"),
        _mode("lossless", *args, raw_per_channel / compression_ratio, stream.block_rate_hz,
              0.0, 0.0, True, f"ratio {compression_ratio:.3g}x ({compression_ratio_source})"),
    ]
    if worst_case:
        worst = stream.worst_case_ratio
        modes.append(_mode("lossless (worst case)", *args, raw_per_channel / worst,
                           stream.block_rate_hz, 0.0, 0.0, True,
                           f"adversarial input: ratio {worst:.4f}x (bounded expansion)"))
    modes += [
        _mode("events", *args, 0.0, 0.0, events_per_channel * stream.event_bytes,
              events_per_channel, stream.detector_enabled,
              events_note or f"{stream.spike_rate_hz:g} events/s/channel x "
                             f"{stream.event_bytes} B + frame"),
        _mode("events+lfp", *args, 2.0 * lfp_rate, stream.slot_rate_hz / lfp_decimation,
              events_per_channel * stream.event_bytes, events_per_channel,
              stream.detector_enabled and not lfp_note,
              events_note or lfp_note or f"LFP at {lfp_rate:g} S/s (/{lfp_decimation})"),
    ]
    return Budget(stream, link_bits_per_s, bits_per_byte, compression_ratio,
                  compression_ratio_source, lfp_decimation, modes, link)


def lossless_break_even_ratio(result: Budget) -> float:
    """The compression ratio at which the lossless mode fills the link exactly: the data
    must compress at least this much for the lossless verdict to hold (``inf``: no ratio is
    enough, the fixed framing alone fills the link)."""
    def load(ratio: float) -> float:
        raw_per_channel = 2.0 * result.stream.sample_rate_hz
        return _mode("lossless", result.stream, result.link_bits_per_s, result.bits_per_byte,
                     result.link, raw_per_channel / ratio, result.stream.block_rate_hz,
                     0.0, 0.0, True, "").load

    low, high = 1e-3, 1e6
    if load(high) > 1.0:
        return math.inf
    for _ in range(200):         # load falls as the ratio grows: bisect on it
        middle = math.sqrt(low * high)
        low, high = (middle, high) if load(middle) > 1.0 else (low, middle)
    return high


def _lossless_note(result: Budget, row: ModeBudget) -> str:
    """The lossless row's note: the ratio, where it comes from, and when it is assumed,
    the ratio the data must reach for the verdict to hold."""
    ratio = f"ratio {result.compression_ratio:.3g}x ({result.compression_ratio_source})"
    if not result.ratio_assumed:
        return ratio
    needed = lossless_break_even_ratio(result)
    holds = ("no ratio makes it fit" if math.isinf(needed)
             else f"fits only if the data compress >= {needed:.2f}x")
    return (f"assumes {ratio}: {holds}; the device's coder may do less on your data, "
            "measure it with --recording FILE")


def _rate(bits_per_s: float) -> str:
    for scale, unit in ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
        if bits_per_s >= scale:
            return f"{bits_per_s / scale:.3g} {unit}"
    return f"{bits_per_s:.3g} bit/s"


def format_budget(result: Budget) -> str:
    """A readable table, one line per mode."""
    s = result.stream
    lines = [
        f"{s.channels} channels at {s.sample_rate_hz:,} S/s, {s.sweeps_per_frame} sweeps per "
        f"frame; detector {'on' if s.detector_enabled else 'off'}, {s.spike_rate_hz:g} "
        f"events/s/channel, snippets {s.snippet_pre}+1+{s.snippet_post} samples"
        + (f"; encrypted stream: {TAG_BYTES} tag bytes per sealed frame"
           if s.stream_cipher else ""),
        (f"link {_rate(result.link_bits_per_s)} Gigabit Ethernet: one UDP datagram per frame, "
         f"IPv4 fragments of <= {FRAGMENT_PAYLOAD_BYTES} bytes, "
         f"{_ETHERNET_FRAME_COST + IPV4_HEADER_BYTES} bytes per fragment + "
         f"{UDP_HEADER_BYTES} per datagram"
         if result.link == "ethernet" else
         f"link {_rate(result.link_bits_per_s)}, {result.bits_per_byte} line bits per byte"),
        "",
        f"{'mode':<22} {'needs':>13} {'load':>7} {'left free':>14}  {'fits':<4} "
        f"{'max ch':>6}  note",
    ]
    for m in result.modes:
        fits = "yes" if m.fits else ("n/a" if not m.available else "NO")
        load = f"{m.load:.1%}" if m.load < 10 else f"{m.load:,.0f}x"
        free = m.capacity_bits_per_s - m.link_bits_per_s
        free_text = ("-" if free < 0 else "") + _rate(abs(free))
        note = _lossless_note(result, m) if m.mode == "lossless" else m.note
        if m.mode == "lossless" and result.ratio_assumed and m.available:
            fits += "*"     # the verdict rests on an assumed ratio (the note says which)
        lines.append(
            f"{m.mode:<22} {_rate(m.link_bits_per_s):>13} {load:>7} {free_text:>14}  "
            f"{fits:<4} {m.max_channels:>6}  {note}")
    return "\n".join(lines)
