"""Golden model of the command decoder (:class:`spikeforge.hdl.control.CommandDecoder`).

Bytes in (as the UART receiver delivers them), reply frames out, register effects on a
:class:`~spikeforge.sim.models.registers.RegisterBankModel`. Timing enters only where it
changes what happens: :meth:`CommandDecoderModel.timeout` stands for the line staying idle
for ``command_timeout_cycles`` in the middle of a frame, and :meth:`framing_error` for a
byte the receiver discarded for its stop bit. The reply buffer is assumed to have room:
a command or retry that finds it full is dropped by the device (``COMMANDS_DROPPED``), which
depends on the link's timing and is not modelled (the benches never fill it).

Keyed builds (``config.control_key``): authenticated commands, refusals and their counters,
the retry match on the stored command's tag bytes — the rules of ``docs/wire-format.md``,
"Authenticated commands".
"""

from spikeforge.firmware.compression import CODEBOOK_ENTRY_VALUE_SHIFT
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.control_protocol import (
    AUTH_COMMAND,
    AUTH_COMMAND_FRAME_BYTES,
    EPOCH_SHIFT,
    epoch_floor,
)
from spikeforge.firmware.epoch_store import REGION_BYTES
from spikeforge.firmware.registers import (
    AUTH_COUNTERS,
    CODEBOOK_WRITABLE,
    GRID_WRITABLE,
    PRIOR_WRITABLE,
    REGISTERS,
    WEIGHTS_WRITABLE,
)
from spikeforge.firmware.wire import (
    COMMAND,
    COMMAND_FRAME_BYTES,
    HEADER,
    SYNC,
    BandwidthMode,
    CommandOp,
    FrameType,
    ReplyStatus,
    command_mac,
    crc32,
    encode_reply,
    mode_unavailable_reason,
)

from .epoch_store import EpochStoreModel
from .registers import RegisterBankModel

__all__ = ["CommandDecoderModel", "CONTROL_COUNTERS"]

#: The registers of the coders' loaded tables, whose writes the device refuses in lossless.
_LOCKED = frozenset(CODEBOOK_WRITABLE + GRID_WRITABLE + PRIOR_WRITABLE + WEIGHTS_WRITABLE)

#: The status registers the control path itself drives (the model knows their values).
CONTROL_COUNTERS = ("COMMANDS_EXECUTED", "COMMAND_ERRORS", "COMMANDS_DROPPED",
                    "UART_FRAMING_ERRORS")


class CommandDecoderModel:
    """What the decoder answers and does. ``status`` supplies the values of status
    registers other than the control counters when a command reads one (a name -> value
    mapping, consulted at that moment)."""

    def __init__(self, config: SystemConfig, status: dict[str, int] | None = None,
                 epochs: "EpochStoreModel | None" = None):
        """``epochs`` (keyed builds): the configuration flash's spent epochs as the device
        read them at boot (default: an erased region, nothing spent)."""
        self.config = config
        self.bank = RegisterBankModel(config)
        self._present = {r.address: r for r in REGISTERS if r.present(config)}
        self.status = dict(status or {})
        self.key = config.control_key_bytes
        self.counters = dict.fromkeys(
            CONTROL_COUNTERS + (AUTH_COUNTERS if self.key is not None else ()), 0)
        self.epochs = None
        if self.key is not None:
            self.epochs = (epochs if epochs is not None
                           else EpochStoreModel(b"\xff" * REGION_BYTES))
            self.counters["AUTH_COUNTER"] = epoch_floor(self.epochs.high)
        self._state = "HUNT"
        self._body = bytearray()
        # (tag, what a retry must repeat besides it, reply frame)
        self._last: tuple[int, tuple, bytes] | None = None
        #: Register writes carried out, in order: (address, value).
        self.writes: list[tuple[int, int]] = []
        #: Commands carried out, in order: whether each was authenticated (its tag and
        #: counter checked; the decoder's ``verified`` strobe). Retries answered from the
        #: stored reply and refusals are not carried out.
        self.carried_out: list[bool] = []
        #: codebook builds: the coder's value table as CODEBOOK_ENTRY writes fill it
        #: (uint16 entries); None without a codebook.
        codec = config.codec
        self.codebook_table: list[int] | None = (
            [0] * (1 << codec.codebook_bits) if codec.enabled and codec.codebook else None)

    # -- inputs ---------------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[bytes]:
        """Bytes received; returns the reply frames they cause, in order."""
        replies = []
        for byte in data:
            reply = self._byte(byte)
            if reply is not None:
                replies.append(reply)
        return replies

    def timeout(self) -> None:
        """The line was idle for the command timeout."""
        if self._state != "HUNT":
            self.counters["COMMAND_ERRORS"] += 1
            self._state = "HUNT"

    def framing_error(self) -> None:
        """The receiver discarded a byte (low stop bit)."""
        self.counters["UART_FRAMING_ERRORS"] += 1

    # -- the decoder ----------------------------------------------------------------------------
    def _byte(self, byte: int) -> bytes | None:
        if self._state == "HUNT":
            if byte == SYNC[0]:
                self._state = "SYNC1"
            return None
        if self._state == "SYNC1":
            if byte == SYNC[1]:
                self._state, self._body = "BODY", bytearray()
            elif byte != SYNC[0]:
                self._state = "HUNT"
            return None
        self._body.append(byte)
        body_bytes = COMMAND_FRAME_BYTES - len(SYNC)
        if self.key is not None and len(self._body) > 5 and self._body[5] == AUTH_COMMAND.size:
            body_bytes = AUTH_COMMAND_FRAME_BYTES - len(SYNC)
        if len(self._body) < body_bytes:
            return None
        self._state = "HUNT"
        return self._command(bytes(self._body))

    def _command(self, body: bytes) -> bytes | None:
        frame_type, tag, length = HEADER.unpack_from(body)
        payload = body[HEADER.size:HEADER.size + COMMAND.size]
        address, op, value = COMMAND.unpack(payload)
        crc_ok = crc32(body[:-4]) == int.from_bytes(body[-4:], "little")
        lengths = (COMMAND.size,) if self.key is None else (COMMAND.size, AUTH_COMMAND.size)
        if not (crc_ok and frame_type == FrameType.COMMAND and length in lengths
                and op <= CommandOp.WRITE):
            self.counters["COMMAND_ERRORS"] += 1
            return None
        authenticated = self.key is not None and length == AUTH_COMMAND.size
        counter, mac = 0, bytes(8)
        if authenticated:
            _, _, _, counter, mac = AUTH_COMMAND.unpack(body[HEADER.size:-4])
        # Keyed builds: a retry repeats the stored command's address, operation and tag bytes.
        same = () if self.key is None else (address, op == CommandOp.WRITE, mac)
        if self._last is not None and self._last[0] == tag and self._last[1] == same:
            return self._last[2]
        if self.key is not None:
            refusal = self._refusal(authenticated, op, counter, mac, address, value)
            if refusal is not None:
                reply = encode_reply(tag, address, refusal, 0)
                self._last = (tag, same, reply)
                return reply
            if authenticated:
                self.counters["AUTH_COUNTER"] = counter
        self.counters["COMMANDS_EXECUTED"] += 1
        self.carried_out.append(authenticated)
        reg = self._present.get(address)
        if reg is None:
            status, result = ReplyStatus.UNKNOWN_REGISTER, 0
        else:
            if op == CommandOp.WRITE and reg.access == "rw":
                if self._codebook_refused(reg.name):
                    pass
                elif reg.name != "BANDWIDTH_MODE" or mode_unavailable_reason(
                        self.config, value) is None:
                    self.bank.write(address, value)   # a mode the build lacks is refused
                    self._codebook_write(reg.name, value)
                self.writes.append((address, value))
                status = ReplyStatus.OK
            else:
                status = (ReplyStatus.READ_ONLY if op == CommandOp.WRITE else ReplyStatus.OK)
            result = self.bank.read(address, {**self.status, **self.counters,
                                              **self._codebook_status(),
                                              **self._epoch_status()})
        reply = encode_reply(tag, address, status, result)
        self._last = (tag, same, reply)
        return reply

    def _refusal(self, authenticated: bool, op: int, counter: int, mac: bytes, address: int,
                 value: int) -> ReplyStatus | None:
        """Why a keyed build refuses the command (None: carried out); counts the refusal."""
        if authenticated:
            if command_mac(self.key, counter, address, CommandOp(op), value) != mac:
                self.counters["AUTH_REFUSED"] += 1
                return ReplyStatus.AUTH_FAILED
            if counter <= self.counters["AUTH_COUNTER"]:
                self.counters["REPLAYS_REFUSED"] += 1
                return ReplyStatus.REPLAYED
            epoch = counter >> EPOCH_SHIFT
            if epoch >= self.epochs.high and not self.epochs.request(epoch + 1):
                self.counters["AUTH_REFUSED"] += 1
                return ReplyStatus.NOT_STORED
            return None
        if op == CommandOp.WRITE:
            self.counters["AUTH_REFUSED"] += 1
            return ReplyStatus.AUTH_REQUIRED
        return None

    def _epoch_status(self) -> dict[str, int]:
        """AUTH_EPOCHS (keyed builds): spent epochs, read (bit 24), flash failed (bit 25)."""
        if self.epochs is None:
            return {}
        return {"AUTH_EPOCHS": self.epochs.high | 1 << 24 | int(self.epochs.failed) << 25}

    # -- codebook (codec.codebook builds; hdl/top.py AcquisitionSystem._codebook) ------------
    def _codebook_refused(self, name: str) -> bool:
        """Writes of a coder's loaded tables (the codebook; v2's grid, restart prior and code
        weights: registers only their builds have) are refused in lossless mode. (The device
        also refuses them until its coder's next block after leaving lossless: timing, not
        modelled here.)"""
        return (name in _LOCKED
                and self.bank.values.get("BANDWIDTH_MODE") == BandwidthMode.LOSSLESS)

    def _codebook_write(self, name: str, value: int) -> None:
        if self.codebook_table is not None and name == "CODEBOOK_ENTRY":
            index = value & (len(self.codebook_table) - 1)
            self.codebook_table[index] = value >> CODEBOOK_ENTRY_VALUE_SHIFT & 0xFFFF

    def _codebook_status(self) -> dict[str, int]:
        if self.codebook_table is None:
            return {}
        return {"CODEBOOK_VALUE": self.codebook_table[self.bank.values["CODEBOOK_ENTRY"]]}
