"""The wire format: how frames look on the link, defined once for device and host.

Every frame is::

    offset  size  field
    0       2     sync      0xA5 0x5A — where the host resynchronises
    2       1     type      FrameType
    3       4     seq       sequence number, little-endian (see below)
    7       2     length    payload length in bytes, little-endian
    9       N     payload
    9+N     4     crc       CRC-32 (IEEE 802.3, as zlib.crc32) over type..payload, LE

Sequence numbers count frame *slots* per frame type. For data frames the slot is a fixed
stretch of time (``sweeps_per_frame`` sample periods), and a slot whose frame was dropped
on the device still uses its number; so ``seq * sweeps_per_frame`` is the sample number of
the frame's first sweep, and a gap in ``seq`` is exactly the number of frames lost.

A DATA payload holds ``sweeps_per_frame`` sweeps, each one little-endian int16 sample per
channel in channel order (sweep-major, the interleaved layout of Open Ephys' continuous.dat);
only the channels the channel mask enables (all by default, ``SystemConfig.channel_mask``
and registers ``CHANNEL_MASK*``).

An EVENTS payload is a sequence of whole event records (:data:`EVENT_RECORD` then the
snippet): samples before and after the peak in the snippet (uint8 each, so the record's
length is in its first 16-bit word), timestamp (uint32, sample number of the peak), channel
(uint16), peak amplitude (int16, conditioned LSB), then ``pre + 1 + post`` int16 snippet
samples, all little-endian. The record is exactly the
16-bit word stream of the detector core, so the framer copies words without reformatting.

An LFP payload (bandwidth mode 3, events + LFP) is laid out like a DATA payload:
``sweeps_per_frame`` decimated sweeps of the enabled channels, int16 sweep-major. Its seq
counts LFP slots (``sweeps_per_frame`` decimated sweeps each, dropped ones included), so
``seq * sweeps_per_frame`` is the decimated sample number of its first sweep, in the clock
of the decimated stream (``SystemConfig.lfp_rate_hz``).

An IDENTITY payload is the device configuration (:func:`encode_identity`), so the host
learns channels, rates and formats from the device itself.
"""

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from .compression import CodecConfig
from .config import SOURCES, DetectorConfig, RHDConfig, SystemConfig, TestSourceConfig
from .decimation import DecimatorConfig
from .detection import POLARITIES
from .errors import WireFormatError
from .rhd2000 import CHIPS, MAX_MISO_LINES, ChipKind

__all__ = [
    "SYNC", "FrameType", "HEADER", "HEADER_BYTES", "CRC_BYTES", "DATA_FRAME_OVERHEAD_BYTES",
    "WIRE_VERSION", "IDENTITY_MAGIC", "crc32", "build_frame", "encode_identity",
    "decode_identity", "IDENTITY_PAYLOAD_BYTES", "EVENT_RECORD", "encode_event",
    "identity_payload_bytes",
    # control path
    "COMMAND", "REPLY", "CommandOp", "ReplyStatus", "COMMAND_FRAME_BYTES", "REPLY_FRAME_BYTES",
    "MIN_RX_DIVISOR", "COMMAND_TIMEOUT_S", "encode_command", "encode_reply", "decode_reply",
    "has_control_path", "command_timeout_cycles", "Reply",
    # bandwidth modes
    "BandwidthMode", "MODE_NAMES", "mode_unavailable_reason", "available_modes",
]

SYNC = b"\xa5\x5a"
#: 2: EVENTS frames; the identity carries the RHD front-end's and the detector's
#: configuration. 3: the codec's configuration. 4: the reset channel mask. 5: LFP frames and
#: the LFP decimator's configuration.
WIRE_VERSION = 5


class FrameType(IntEnum):
    DATA = 0x01        #: raw samples, int16, sweep-major
    IDENTITY = 0x02    #: device configuration and identity
    # Reserved for the capabilities that follow; numbers are fixed here so they never clash.
    EVENTS = 0x03      #: detected spikes (timestamp, channel, amplitude, snippet)
    COMPRESSED = 0x04  #: losslessly coded samples
    STATUS = 0x05      #: counters and register read-back
    COMMAND = 0x06     #: host -> device: read or write one register (control path)
    REPLY = 0x07       #: device -> host: the answer to a COMMAND, tag echoed in seq
    LFP = 0x08         #: decimated samples (mode events+lfp), int16, sweep-major like DATA


#: type, seq, length — the part of the header after the sync bytes.
HEADER = struct.Struct("<BIH")
HEADER_BYTES = len(SYNC) + HEADER.size
CRC_BYTES = 4
DATA_FRAME_OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC (reflected, poly 0x04C11DB7, init and final XOR 0xFFFFFFFF)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def build_frame(frame_type: int, seq: int, payload: bytes) -> bytes:
    """The exact bytes of one frame."""
    if len(payload) > 0xFFFF:
        raise WireFormatError(
            f"payload of {len(payload)} bytes does not fit the 16-bit length field; "
            "split it into several frames"
        )
    body = HEADER.pack(int(frame_type), seq & 0xFFFFFFFF, len(payload)) + payload
    return SYNC + body + crc32(body).to_bytes(4, "little")


#: snippet samples before the peak, after the peak, timestamp, channel, peak.
EVENT_RECORD = struct.Struct("<BBIHh")


def encode_event(sample: int, channel: int, peak: int, snippet, pre: int) -> bytes:
    """One event record of an EVENTS payload; ``snippet`` holds pre + 1 + post samples."""
    post = len(snippet) - pre - 1
    if not (0 <= pre <= 255 and 0 <= post <= 255):
        raise WireFormatError(
            f"an event snippet must have 0..255 samples on each side of the peak, not "
            f"pre={pre}, post={post}")
    body = EVENT_RECORD.pack(pre, post, sample & 0xFFFFFFFF, channel, peak)
    return body + struct.pack(f"<{len(snippet)}h", *(int(v) for v in snippet))


IDENTITY_MAGIC = b"SPKF"
#: magic, wire version, source index, noise_shift, reserved, channels, sample rate, clock,
#: baud, sweeps per frame, link buffer samples, identity interval, test seed,
#: spike rate in mHz.
_IDENTITY = struct.Struct("<4sBBBBHIIIHIIII")
#: RHD front-end (version 2): chip IDs per line (0: none), amplifier masks (0: all), SCLK
#: half period, CS-high cycles, MISO delays, upper/lower/DSP cutoff in mHz, two's complement,
#: calibrate on start.
_RHD = struct.Struct("<4B4QBB4BIIIBB")


def _encode_rhd(rhd: RHDConfig) -> bytes:
    pad = MAX_MISO_LINES - rhd.lines
    masks = rhd.amplifier_masks or (0,) * rhd.lines
    return _RHD.pack(
        *[int(CHIPS[c].kind) for c in rhd.chips], *[0] * pad, *masks, *[0] * pad,
        rhd.sclk_half_period_cycles, rhd.cs_high_cycles, *rhd.miso_delay_cycles, *[0] * pad,
        round(rhd.upper_cutoff_hz * 1000), round(rhd.lower_cutoff_hz * 1000),
        round(rhd.dsp_cutoff_hz * 1000), int(rhd.twos_complement),
        int(rhd.calibrate_on_start))


def _decode_rhd(payload: bytes) -> RHDConfig:
    fields = _RHD.unpack(payload)
    ids, masks, (half, cs_high), delays = fields[:4], fields[4:8], fields[8:10], fields[10:14]
    upper, lower, dsp, twos, calibrate = fields[14:]
    lines = sum(1 for i in ids if i)
    try:
        chips = tuple(ChipKind(i).name for i in ids[:lines])
    except ValueError:
        raise WireFormatError(f"device reports unknown RHD chip IDs {ids}; update the host") \
            from None
    return RHDConfig(
        chips=chips, amplifier_masks=None if not any(masks) else masks[:lines],
        sclk_half_period_cycles=half, cs_high_cycles=cs_high, miso_delay_cycles=delays[:lines],
        upper_cutoff_hz=upper / 1000, lower_cutoff_hz=lower / 1000, dsp_cutoff_hz=dsp / 1000,
        twos_complement=bool(twos), calibrate_on_start=bool(calibrate))
#: The detector's configuration, after the fields above: dc_shift, polarity code,
#: align_samples, snippet_pre, snippet_post, max_snippet_pre, max_snippet_post, threshold k
#: in sixteenths, noise_step, noise_init_lsb, dead_samples, event_queue, event_buffer_words,
#: highpass_hz, lowpass_hz (float64, exact), neo, neo_shift, enabled.
_DETECTOR = struct.Struct("<BBBBBBBBHHHHIddBBB")
#: The lossless coder's configuration (version 3), after the detector's: enabled,
#: block_sweeps, predictor code (0..3 fixed order, 4 adaptive), rice_shift, select_shift,
#: initial_k, escape_threshold, codebook, codebook_bits.
_CODEC = struct.Struct("<BHBBBBBBB")
#: The LFP decimator (version 5), after the codec's: built, factor, order (0, 0 if not built).
_LFP = struct.Struct("<BHB")
#: The fixed part of an IDENTITY payload; since version 4 the reset channel mask follows
#: (:func:`identity_payload_bytes`).
IDENTITY_PAYLOAD_BYTES = _IDENTITY.size + _RHD.size + _DETECTOR.size + _CODEC.size + _LFP.size


# -- channel mask --
def identity_payload_bytes(channels: int) -> int:
    """Length of the IDENTITY payload of a device with ``channels`` channels: the fixed part
    and the reset channel mask, one little-endian uint32 per 32 channels (channel ``c`` at
    bit ``c % 32`` of word ``c // 32``, as the ``CHANNEL_MASK`` register)."""
    return IDENTITY_PAYLOAD_BYTES + 4 * -(-channels // 32)


def _encode_mask(config: SystemConfig) -> bytes:
    return b"".join(word.to_bytes(4, "little") for word in config.channel_mask_words)


def _decode_mask(payload: bytes, channels: int) -> tuple[int, ...]:
    words = [int.from_bytes(payload[i:i + 4], "little") for i in range(0, len(payload), 4)]
    return tuple(c for c in range(channels) if words[c // 32] >> c % 32 & 1)
_POLARITY_NAMES = {code: name for name, code in POLARITIES.items()}


def encode_identity(config: SystemConfig) -> bytes:
    """The IDENTITY payload that describes ``config``."""
    ts = config.test_source
    det = config.detector
    return _IDENTITY.pack(
        IDENTITY_MAGIC, WIRE_VERSION, SOURCES.index(config.source), ts.noise_shift, 0,
        config.channels, config.sample_rate_hz, config.clock_hz, config.baud,
        config.sweeps_per_frame, config.link_buffer_samples, config.identity_interval_frames,
        ts.seed, round(ts.spike_rate_hz * 1000),
    ) + _encode_rhd(config.rhd) + _DETECTOR.pack(
        det.dc_shift, det.polarity_code, det.align_samples, det.snippet_pre, det.snippet_post,
        det.max_snippet_pre, det.max_snippet_post, det.threshold_k16, det.noise_step,
        det.noise_init_lsb, det.dead_samples, det.event_queue, det.event_buffer_words,
        det.highpass_hz, det.lowpass_hz, int(det.neo), det.neo_shift, int(det.enabled),
    ) + _encode_codec(config.codec) + _encode_lfp(config.lfp) + _encode_mask(config)


def _encode_lfp(lfp: DecimatorConfig | None) -> bytes:
    return _LFP.pack(0, 0, 0) if lfp is None else _LFP.pack(1, lfp.factor, lfp.order)


def _decode_lfp(payload: bytes, offset: int) -> DecimatorConfig | None:
    built, factor, order = _LFP.unpack_from(payload, offset)
    return DecimatorConfig(factor=factor, order=order) if built else None


def _encode_codec(codec: CodecConfig) -> bytes:
    return _CODEC.pack(int(codec.enabled), codec.block_sweeps, codec.predictor_code,
                       codec.rice_shift, codec.select_shift, codec.initial_k,
                       codec.escape_threshold, int(codec.codebook), codec.codebook_bits)


def _decode_codec(payload: bytes, offset: int) -> CodecConfig:
    (enabled, block_sweeps, predictor, rice_shift, select_shift, initial_k, escape,
     codebook, codebook_bits) = _CODEC.unpack_from(payload, offset)
    if predictor > 4:
        raise WireFormatError(f"device reports unknown codec predictor code {predictor}")
    return CodecConfig.from_predictor_code(
        predictor, enabled=bool(enabled), block_sweeps=block_sweeps, rice_shift=rice_shift,
        select_shift=select_shift, initial_k=initial_k, escape_threshold=escape,
        codebook=bool(codebook), codebook_bits=codebook_bits)


def decode_identity(payload: bytes) -> SystemConfig:
    """The configuration an IDENTITY payload describes."""
    if len(payload) > 4 and payload[:4] == IDENTITY_MAGIC and payload[4] != WIRE_VERSION:
        raise WireFormatError(
            f"device speaks wire format version {payload[4]}, this host speaks {WIRE_VERSION}; "
            "update spikeforge on the host or rebuild the bitstream from the same version"
        )
    if len(payload) < _IDENTITY.size:
        raise WireFormatError(
            f"identity payload must be at least {IDENTITY_PAYLOAD_BYTES} bytes, not "
            f"{len(payload)}")
    (magic, _version, source, noise_shift, _reserved, channels, rate, clock, baud, spf,
     buffer_samples, interval, seed, spike_mhz) = _IDENTITY.unpack(payload[:_IDENTITY.size])
    if len(payload) != identity_payload_bytes(channels):
        raise WireFormatError(
            f"identity payload of a {channels}-channel device must be "
            f"{identity_payload_bytes(channels)} bytes, not {len(payload)}"
        )
    if magic != IDENTITY_MAGIC:
        raise WireFormatError(f"identity magic must be {IDENTITY_MAGIC!r}, not {magic!r}")
    rhd_end = _IDENTITY.size + _RHD.size
    (dc_shift, polarity, align, pre, post, max_pre, max_post, k16, noise_step, noise_init,
     dead, queue, buffer_words, highpass, lowpass, neo, neo_shift,
     enabled) = _DETECTOR.unpack_from(payload, rhd_end)
    if polarity not in _POLARITY_NAMES:
        raise WireFormatError(f"device reports unknown detector polarity code {polarity}")
    if source >= len(SOURCES):
        raise WireFormatError(f"device reports unknown source index {source}; update the host")
    return SystemConfig(
        channels=channels, sample_rate_hz=rate, clock_hz=clock, baud=baud,
        sweeps_per_frame=spf, link_buffer_samples=buffer_samples,
        identity_interval_frames=interval, source=SOURCES[source],
        test_source=TestSourceConfig(seed=seed, noise_shift=noise_shift,
                                     spike_rate_hz=spike_mhz / 1000),
        rhd=_decode_rhd(payload[_IDENTITY.size:rhd_end]),
        detector=DetectorConfig(
            dc_shift=dc_shift, highpass_hz=highpass, lowpass_hz=lowpass, noise_step=noise_step,
            noise_init_lsb=noise_init, threshold_k=k16 / 16, polarity=_POLARITY_NAMES[polarity],
            align_samples=align, dead_samples=dead, snippet_pre=pre, snippet_post=post,
            max_snippet_pre=max_pre, max_snippet_post=max_post, event_queue=queue,
            event_buffer_words=buffer_words, neo=bool(neo), neo_shift=neo_shift,
            enabled=bool(enabled)),
        codec=_decode_codec(payload, rhd_end + _DETECTOR.size),
        lfp=_decode_lfp(payload, rhd_end + _DETECTOR.size + _CODEC.size),
        channel_mask=_decode_mask(payload[IDENTITY_PAYLOAD_BYTES:], channels),
    )


# -- control path: commands (host -> device) and replies (device -> host) ---------------------
#
# Both are ordinary frames (sync, type, seq, length, payload, CRC-32), so one parser reads
# them. A COMMAND's ``seq`` is the host's *tag*: a new command gets a new tag, a retry reuses
# it. The device remembers the tag of the last command it carried out and answers a command
# with the same tag by re-sending the stored reply without carrying it out again, so a retried
# write never applies twice. The REPLY echoes the tag in its ``seq``.

#: COMMAND payload: register address (uint8), operation (:class:`CommandOp`), value (uint32;
#: ignored by reads).
COMMAND = struct.Struct("<BBI")
#: REPLY payload: register address (uint8), status (:class:`ReplyStatus`), value (uint32:
#: the register's value after the command; 0 for an unknown register).
REPLY = struct.Struct("<BBI")
COMMAND_FRAME_BYTES = HEADER_BYTES + COMMAND.size + CRC_BYTES
REPLY_FRAME_BYTES = HEADER_BYTES + REPLY.size + CRC_BYTES

#: Fewest clock cycles per bit the device's UART receiver samples reliably: the start edge
#: is known to one cycle, and each bit is sampled one cycle from its edges (with up to 2 %
#: baud error over a byte). Configurations below it build without the control path (the
#: transmitter alone works down to 1 cycle per bit); board builds refuse them.
MIN_RX_DIVISOR = 3
#: A command whose bytes stop arriving for this long is discarded as truncated.
COMMAND_TIMEOUT_S = 0.001


class CommandOp(IntEnum):
    READ = 0
    WRITE = 1


class ReplyStatus(IntEnum):
    OK = 0
    UNKNOWN_REGISTER = 1   #: no register at that address in this build
    READ_ONLY = 2          #: a write to a const or status register (not applied)


def has_control_path(config: SystemConfig) -> bool:
    """Whether a build of ``config`` has the UART receiver and command decoder."""
    return config.uart_divisor >= MIN_RX_DIVISOR


def command_timeout_cycles(config: SystemConfig) -> int:
    """Idle cycles after which the device discards a half-received command: 1 ms, and at
    least 40 byte times."""
    return max(round(config.clock_hz * COMMAND_TIMEOUT_S), 40 * config.cycles_per_byte)


def encode_command(tag: int, address: int, op: CommandOp, value: int = 0) -> bytes:
    """The bytes of one COMMAND frame."""
    if not 0 <= address <= 0xFF:
        raise WireFormatError(f"register address must be 0..255, not {address!r}")
    return build_frame(FrameType.COMMAND, tag,
                       COMMAND.pack(address, int(op), value & 0xFFFFFFFF))


def encode_reply(tag: int, address: int, status: ReplyStatus, value: int) -> bytes:
    """The bytes of one REPLY frame (what the device's command decoder sends)."""
    return build_frame(FrameType.REPLY, tag,
                       REPLY.pack(address, int(status), value & 0xFFFFFFFF))


@dataclass(frozen=True)
class Reply:
    """A decoded REPLY frame."""

    tag: int
    address: int
    status: ReplyStatus
    value: int


def decode_reply(seq: int, payload: bytes) -> Reply:
    """The REPLY a frame's ``seq`` and payload carry."""
    if len(payload) != REPLY.size:
        raise WireFormatError(f"reply payload must be {REPLY.size} bytes, not {len(payload)}")
    address, status, value = REPLY.unpack(payload)
    try:
        status = ReplyStatus(status)
    except ValueError:
        raise WireFormatError(f"device reports unknown reply status {status}; update the host") \
            from None
    return Reply(seq, address, status, value)


# -- bandwidth modes (register BANDWIDTH_MODE, docs/wire-format.md) ----------------------------


class BandwidthMode(IntEnum):
    """What the device puts on the link, chosen by register ``BANDWIDTH_MODE`` at run time."""

    RAW = 0          #: DATA frames (raw samples), EVENTS frames when the detector is built
    LOSSLESS = 1     #: COMPRESSED frames (one coded block each) instead of DATA
    EVENTS = 2       #: EVENTS frames only; DATA slots are skipped
    EVENTS_LFP = 3   #: EVENTS frames and LFP frames (decimated samples) instead of DATA


#: Mode names as the host API, the CLI and the link budget (host/budget.py) spell them.
MODE_NAMES: dict[str, BandwidthMode] = {
    "raw": BandwidthMode.RAW,
    "lossless": BandwidthMode.LOSSLESS,
    "events": BandwidthMode.EVENTS,
    "events+lfp": BandwidthMode.EVENTS_LFP,
}


def mode_unavailable_reason(config: SystemConfig, mode: int) -> str | None:
    """Why a build of ``config`` cannot run bandwidth ``mode`` (None: it can). The device
    ignores a write of such a mode to ``BANDWIDTH_MODE``; this names what the build lacks
    and the configuration field that adds it."""
    if mode == BandwidthMode.RAW:
        return None
    if mode == BandwidthMode.LOSSLESS:
        if not config.codec.enabled:
            return ("the build has no lossless coder; rebuild with codec=CodecConfig("
                    "enabled=True) (SystemConfig.codec)")
        return None
    if mode in (BandwidthMode.EVENTS, BandwidthMode.EVENTS_LFP):
        if not config.detector.enabled:
            return ("the build has no spike detector; rebuild with detector=DetectorConfig("
                    "enabled=True) (SystemConfig.detector)")
        if mode == BandwidthMode.EVENTS_LFP and config.lfp is None:
            return ("the build has no LFP decimator; rebuild with lfp=DecimatorConfig("
                    "factor=30, order=3) (SystemConfig.lfp)")
        return None
    return f"there is no bandwidth mode {mode}; modes are 0-3 ({', '.join(MODE_NAMES)})"


def available_modes(config: SystemConfig) -> int:
    """Bit mask of the bandwidth modes a build of ``config`` runs (bit m: mode m); the value
    of the constant register ``BANDWIDTH_MODES``."""
    return sum(1 << mode for mode in BandwidthMode
               if mode_unavailable_reason(config, mode) is None)
