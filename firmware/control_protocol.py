"""The control protocol: COMMAND frames (host -> device) and REPLY frames (device -> host).

Both are ordinary frames (:mod:`~spikeforge.firmware.framing`: sync, type, seq, length,
payload, CRC-32), so one parser reads them. A COMMAND's ``seq`` is the host's *tag*: a new
command gets a new tag, a retry reuses it. The device remembers the tag of the last command it
carried out and answers a command with the same tag by re-sending the stored reply without
carrying it out again, so a retried write never applies twice. The REPLY echoes the tag in its
``seq``.

Authenticated commands (builds with ``SystemConfig.control_key``): the COMMAND payload grows
by a counter and a SipHash-2-4 tag (:data:`AUTH_COMMAND`, :func:`command_mac`). Such a build
carries out a write only if its tag is right under the device's key and its counter is above
the last one the device accepted; other writes are refused with a status of their own and
counted. Reads stay open (plain or authenticated). ``docs/wire-format.md`` has the rules.

At run time this module imports only the framing and the errors; the configuration appears in
type hints alone.
"""

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from .errors import WireFormatError
from .framing import CRC_BYTES, HEADER_BYTES, FrameType, build_frame
from .siphash import TAG_BYTES, siphash24

if TYPE_CHECKING:
    from .config import SystemConfig

__all__ = ["COMMAND", "REPLY", "CommandOp", "ReplyStatus", "COMMAND_FRAME_BYTES",
           "REPLY_FRAME_BYTES", "MIN_RX_DIVISOR", "COMMAND_TIMEOUT_S", "encode_command",
           "encode_reply", "decode_reply", "has_control_path", "command_timeout_cycles",
           "Reply", "AUTH_COMMAND", "AUTH_COMMAND_FRAME_BYTES", "MAC_MESSAGE",
           "COUNTER_LIMIT", "EPOCH_BITS", "EPOCH_SHIFT", "epoch_floor", "command_mac",
           "encode_authenticated_command", "AUTH_REFUSALS"]

#: COMMAND payload: register address (uint8), operation (:class:`CommandOp`), value (uint32;
#: ignored by reads).
COMMAND = struct.Struct("<BBI")
#: REPLY payload: register address (uint8), status (:class:`ReplyStatus`), value (uint32:
#: the register's value after the command; 0 for an unknown register).
REPLY = struct.Struct("<BBI")
COMMAND_FRAME_BYTES = HEADER_BYTES + COMMAND.size + CRC_BYTES
#: Authenticated COMMAND payload (version 2, builds with a control key): the plain payload,
#: then the counter (uint32, above every counter the device accepted before) and the
#: SipHash-2-4 tag (8 bytes, as the reference implementation writes it) of
#: :data:`MAC_MESSAGE` under the device's key.
AUTH_COMMAND = struct.Struct(f"<BBII{TAG_BYTES}s")
#: What the tag covers: the first 10 bytes of the authenticated payload, address, operation,
#: value and counter.
MAC_MESSAGE = struct.Struct("<BBII")
AUTH_COMMAND_FRAME_BYTES = HEADER_BYTES + AUTH_COMMAND.size + CRC_BYTES
#: Counters are uint32; the device refuses every counter not above the last it accepted, so
#: a key whose counter reached this is spent: rotate it.
COUNTER_LIMIT = 0xFFFFFFFF
#: A counter's top bits are its epoch (counter >> EPOCH_SHIFT). The device keeps the
#: epochs spent in its configuration flash (hdl/epoch_store.py), so a frame of a spent
#: epoch is refused in every later boot; a host starts a new epoch at each open.
EPOCH_BITS = 16
EPOCH_SHIFT = 32 - EPOCH_BITS


def epoch_floor(high: int) -> int:
    """The device's AUTH_COUNTER after a reset when the epochs below ``high`` are spent:
    ``high << EPOCH_SHIFT``, all ones once every epoch is spent."""
    return min(high << EPOCH_SHIFT, COUNTER_LIMIT)
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
    #: authenticated builds: a write without a tag (not applied; counted in AUTH_REFUSED)
    AUTH_REQUIRED = 3
    #: authenticated builds: a command whose tag is wrong (not applied; AUTH_REFUSED)
    AUTH_FAILED = 4
    #: authenticated builds: a right tag on a counter not above the last accepted one, a
    #: replay (not applied; counted in REPLAYS_REFUSED)
    REPLAYED = 5
    #: authenticated builds: a right tag and counter in an epoch not yet spent, but the
    #: device could not store the epoch in its configuration flash (the part did not take
    #: the program, or every epoch is spent) — not applied; counted in AUTH_REFUSED
    NOT_STORED = 6


#: The statuses of refused authenticated-build commands (their reply's value is 0).
AUTH_REFUSALS = (ReplyStatus.AUTH_REQUIRED, ReplyStatus.AUTH_FAILED, ReplyStatus.REPLAYED,
                 ReplyStatus.NOT_STORED)


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


def command_mac(key: bytes, counter: int, address: int, op: CommandOp, value: int) -> bytes:
    """The 8-byte tag of an authenticated command: SipHash-2-4 under ``key`` of
    :data:`MAC_MESSAGE` (address, operation, value, counter, little-endian)."""
    message = MAC_MESSAGE.pack(address, int(op), value & 0xFFFFFFFF, counter)
    return siphash24(key, message).to_bytes(TAG_BYTES, "little")


def encode_authenticated_command(tag: int, address: int, op: CommandOp, value: int,
                                 counter: int, key: bytes) -> bytes:
    """The bytes of one authenticated COMMAND frame (``tag`` is the frame's ``seq``, the
    retry tag; ``counter`` the replay counter)."""
    if not 0 <= address <= 0xFF:
        raise WireFormatError(f"register address must be 0..255, not {address!r}")
    if not 0 <= counter <= COUNTER_LIMIT:
        raise WireFormatError(f"command counter must be 0..{COUNTER_LIMIT}, not {counter!r}")
    mac = command_mac(key, counter, address, op, value)
    return build_frame(FrameType.COMMAND, tag,
                       AUTH_COMMAND.pack(address, int(op), value & 0xFFFFFFFF, counter, mac))


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


