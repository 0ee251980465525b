"""The control protocol: COMMAND frames (host -> device) and REPLY frames (device -> host).

Both are ordinary frames (:mod:`~spikeforge.firmware.framing`: sync, type, seq, length,
payload, CRC-32), so one parser reads them. A COMMAND's ``seq`` is the host's *tag*: a new
command gets a new tag, a retry reuses it. The device remembers the tag of the last command it
carried out and answers a command with the same tag by re-sending the stored reply without
carrying it out again, so a retried write never applies twice. The REPLY echoes the tag in its
``seq``.

At run time this module imports only the framing and the errors; the configuration appears in
type hints alone.
"""

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from .errors import WireFormatError
from .framing import CRC_BYTES, HEADER_BYTES, FrameType, build_frame

if TYPE_CHECKING:
    from .config import SystemConfig

__all__ = ["COMMAND", "REPLY", "CommandOp", "ReplyStatus", "COMMAND_FRAME_BYTES",
           "REPLY_FRAME_BYTES", "MIN_RX_DIVISOR", "COMMAND_TIMEOUT_S", "encode_command",
           "encode_reply", "decode_reply", "has_control_path", "command_timeout_cycles",
           "Reply"]

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


def has_control_path(config: "SystemConfig") -> bool:
    """Whether a build of ``config`` has the UART receiver and command decoder."""
    return config.uart_divisor >= MIN_RX_DIVISOR


def command_timeout_cycles(config: "SystemConfig") -> int:
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


