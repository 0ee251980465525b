"""The wire format: how frames look on the link, defined once for device and host.

This module gathers the wire format's names in one place; each is defined in a module of its
own, leaf first, so that no two firmware modules import each other:

* :mod:`~spikeforge.firmware.framing` — sync, header, frame types, CRC, wire version (imports
  nothing but the errors);
* :mod:`~spikeforge.firmware.event_record` — the event record of EVENTS payloads;
* :mod:`~spikeforge.firmware.control_protocol` — COMMAND/REPLY frames, tags, timeouts;
* :mod:`~spikeforge.firmware.bandwidth` — bandwidth modes;
* :mod:`~spikeforge.firmware.identity` — the IDENTITY payload (imports the configuration).

New code may import from either; the names are the same objects.

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

from .bandwidth import MODE_NAMES, BandwidthMode, available_modes, mode_unavailable_reason
from .control_protocol import (
    AUTH_COMMAND,
    AUTH_COMMAND_FRAME_BYTES,
    AUTH_REFUSALS,
    COMMAND,
    COMMAND_FRAME_BYTES,
    COMMAND_TIMEOUT_S,
    COUNTER_LIMIT,
    EPOCH_BITS,
    EPOCH_SHIFT,
    MAC_MESSAGE,
    MIN_RX_DIVISOR,
    REPLY,
    REPLY_FRAME_BYTES,
    CommandOp,
    Reply,
    ReplyStatus,
    command_mac,
    command_timeout_cycles,
    decode_reply,
    encode_authenticated_command,
    encode_command,
    encode_reply,
    epoch_floor,
    has_control_path,
)
from .event_record import EVENT_RECORD, encode_event
from .framing import (
    CRC_BYTES,
    DATA_FRAME_OVERHEAD_BYTES,
    HEADER,
    HEADER_BYTES,
    SYNC,
    WIRE_VERSION,
    FrameType,
    build_frame,
    crc32,
)
from .identity import (
    IDENTITY_MAGIC,
    IDENTITY_PAYLOAD_BYTES,
    decode_identity,
    encode_identity,
    identity_payload_bytes,
)

__all__ = [
    "SYNC", "FrameType", "HEADER", "HEADER_BYTES", "CRC_BYTES", "DATA_FRAME_OVERHEAD_BYTES",
    "WIRE_VERSION", "IDENTITY_MAGIC", "crc32", "build_frame", "encode_identity",
    "decode_identity", "IDENTITY_PAYLOAD_BYTES", "EVENT_RECORD", "encode_event",
    "identity_payload_bytes",
    # control path
    "COMMAND", "REPLY", "CommandOp", "ReplyStatus", "COMMAND_FRAME_BYTES", "REPLY_FRAME_BYTES",
    "MIN_RX_DIVISOR", "COMMAND_TIMEOUT_S", "encode_command", "encode_reply", "decode_reply",
    "has_control_path", "command_timeout_cycles", "Reply",
    # authenticated commands
    "AUTH_COMMAND", "AUTH_COMMAND_FRAME_BYTES", "MAC_MESSAGE", "COUNTER_LIMIT", "command_mac",
    "encode_authenticated_command", "AUTH_REFUSALS", "EPOCH_BITS", "EPOCH_SHIFT", "epoch_floor",
    # bandwidth modes
    "BandwidthMode", "MODE_NAMES", "mode_unavailable_reason", "available_modes",
]
