"""Framing: the envelope every frame on the link shares (sync, header, CRC).

Every frame is::

    offset  size  field
    0       2     sync      0xA5 0x5A — where the host resynchronises
    2       1     type      FrameType
    3       4     seq       sequence number, little-endian
    7       2     length    payload length in bytes, little-endian
    9       N     payload
    9+N     4     crc       CRC-32 (IEEE 802.3, as zlib.crc32) over type..payload, LE

This module is the leaf of the wire format: it imports nothing of spikeforge but the
errors, so the configuration, the identity codec, the control protocol and the host
parser can all build on it without an import cycle. What the payloads hold is in
:mod:`~spikeforge.firmware.identity`, :mod:`~spikeforge.firmware.event_record`,
:mod:`~spikeforge.firmware.control_protocol` and ``docs/wire-format.md``.
"""

import struct
import zlib
from enum import IntEnum

from .errors import WireFormatError

__all__ = ["SYNC", "WIRE_VERSION", "FrameType", "HEADER", "HEADER_BYTES", "CRC_BYTES",
           "DATA_FRAME_OVERHEAD_BYTES", "MAX_PAYLOAD_BYTES", "crc32", "build_frame"]

SYNC = b"\xa5\x5a"
#: 2: EVENTS frames; the identity carries the RHD front-end's and the detector's
#: configuration. 3: the codec's configuration. 4: the reset channel mask. 5: LFP frames and
#: the LFP decimator's configuration. 6: the v2 lossless coder's configuration (a version 5
#: identity still decodes, as a build without it).
WIRE_VERSION = 6


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
#: Largest payload the 16-bit length field of a frame can carry.
MAX_PAYLOAD_BYTES = 0xFFFF


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC (reflected, poly 0x04C11DB7, init and final XOR 0xFFFFFFFF)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def build_frame(frame_type: int, seq: int, payload: bytes) -> bytes:
    """The exact bytes of one frame."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireFormatError(
            f"payload of {len(payload)} bytes does not fit the 16-bit length field; "
            "split it into several frames"
        )
    body = HEADER.pack(int(frame_type), seq & 0xFFFFFFFF, len(payload)) + payload
    return SYNC + body + crc32(body).to_bytes(CRC_BYTES, "little")
