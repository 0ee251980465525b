"""The control path: commands from the host read and write the register map; replies share
the link with the framer's frames.

:class:`CommandDecoder` parses COMMAND frames from the UART receiver, carries them out on
the :class:`~spikeforge.hdl.registers.RegisterBus` and queues a REPLY frame;
:class:`LinkArbiter` puts the framer's frames and the replies on the one UART transmitter,
switching only between whole frames. Formats: :mod:`spikeforge.firmware.wire`.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import REGISTERS
from spikeforge.firmware.wire import (
    COMMAND,
    CRC_BYTES,
    HEADER_BYTES,
    REPLY,
    REPLY_FRAME_BYTES,
    SYNC,
    CommandOp,
    FrameType,
    ReplyStatus,
    command_timeout_cycles,
)

from .crc import crc32_update
from .fifo import StreamFifo
from .registers import RegisterBus

__all__ = ["CommandDecoder", "LinkArbiter", "CRC_RESIDUE"]

#: The CRC register after a whole frame body *and* its (little-endian) CRC: a constant for
#: every error-free frame, so the decoder checks the CRC without storing it apart.
CRC_RESIDUE = 0xDEBB20E3
#: Bytes of a COMMAND frame after the two sync bytes.
_BODY_BYTES = HEADER_BYTES - len(SYNC) + COMMAND.size + CRC_BYTES


class CommandDecoder(wiring.Component):
    """Carries out COMMAND frames on the register bus and answers each with a REPLY frame.

    Parsing: two sync bytes, then the 17 bytes of type, tag (``seq``), length, payload and
    CRC-32. The command is carried out only when the whole frame is in and checks (type
    COMMAND, length 6, operation read or write, CRC); anything else — a bad CRC, a wrong
    field, or a frame whose bytes stop for ``command_timeout_cycles`` (truncated) — is
    discarded and counted in ``command_errors``, never half applied.

    Carrying out (4 cycles after the last byte): the address is looked up in the register
    map of ``config``; a write to an ``rw`` register pulses ``bus.w_en`` for one cycle; the
    register's value is read back two cycles later. The reply carries the tag, the address,
    the status (ok, unknown register, read-only: a write to a const/status register is not
    applied) and the value after the command (0 for an unknown register).

    Retries: the decoder keeps the tag and reply of the last command it carried out. A
    command with the same tag is not carried out again; the stored reply is sent again.

    Ports
    -----
    i : stream of bytes in, from :class:`~spikeforge.hdl.uart.UARTReceiver`
        ``ready`` is low for the 4 cycles a command is being carried out.
    bus : :class:`RegisterBus`, out (the decoder is the controller)
    bus_active : out
        High while the decoder drives ``bus`` (2 cycles per command).
    o : stream of bytes out
        Reply frames, whole (19 bytes, written one per cycle into a 256-byte block-RAM FIFO
        before they are offered, so a reply is never starved once it has started).
    commands_executed, command_errors, commands_dropped : unsigned(32), out
        Commands carried out (retries answered from the stored reply not counted);
        discarded; good but not carried out because the reply FIFO had no room.
    """

    REPLY_FIFO_BYTES = 256

    def __init__(self, config: SystemConfig):
        self._config = config
        super().__init__({
            "i": In(stream.Signature(8)),
            "bus": Out(RegisterBus()),
            "bus_active": Out(1),
            "o": Out(stream.Signature(8)),
            "commands_executed": Out(32),
            "command_errors": Out(32),
            "commands_dropped": Out(32),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        m.submodules.replies = fifo = StreamFifo(8, self.REPLY_FIFO_BYTES)
        wiring.connect(m, fifo.r, wiring.flipped(self.o))

        # -- parser -------------------------------------------------------------------------
        timeout = command_timeout_cycles(config)
        body = Signal(8 * _BODY_BYTES)
        got = Signal(range(_BODY_BYTES + 1))
        crc = Signal(32)
        idle = Signal(range(timeout + 1))

        def field(offset: int, size: int):
            return body[8 * offset:8 * (offset + size)]

        frame_type, tag, length = field(0, 1), field(1, 4), field(5, 2)
        address, op, value = field(7, 1), field(8, 1), field(9, 4)

        byte = self.i.payload
        take = self.i.valid & self.i.ready

        # -- the last reply (sent again for a retry) --------------------------------------------
        last_valid = Signal()
        last_tag = Signal(32)
        reply_address = Signal(8)
        reply_status = Signal(8)
        reply_value = Signal(32)
        send = Signal()     # pulse: write the stored reply into the FIFO

        # Register kinds of this build, for the status.
        writable = Signal()
        known = Signal()
        with m.Switch(address):
            for reg in REGISTERS:
                if reg.present(config):
                    with m.Case(reg.address):
                        m.d.comb += [known.eq(1), writable.eq(reg.access == "rw")]

        well_formed = ((frame_type == FrameType.COMMAND) & (length == COMMAND.size)
                       & (op <= CommandOp.WRITE) & (crc == CRC_RESIDUE))
        is_write = op == CommandOp.WRITE

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take & (byte == SYNC[0])):
                    m.d.sync += idle.eq(0)
                    m.next = "SYNC1"
            with m.State("SYNC1"):
                m.d.comb += self.i.ready.eq(1)
                m.d.sync += idle.eq(idle + 1)
                with m.If(take):
                    m.d.sync += [idle.eq(0), got.eq(0), crc.eq(0xFFFFFFFF)]
                    with m.If(byte == SYNC[1]):
                        m.next = "BODY"
                    with m.Elif(byte != SYNC[0]):
                        m.next = "HUNT"
                with m.Elif(idle == timeout - 1):
                    m.d.sync += self.command_errors.eq(self.command_errors + 1)
                    m.next = "HUNT"
            with m.State("BODY"):
                m.d.comb += self.i.ready.eq(1)
                m.d.sync += idle.eq(idle + 1)
                with m.If(take):
                    m.d.sync += [
                        idle.eq(0),
                        body.eq(Cat(body[8:], byte)),
                        crc.eq(crc32_update(crc, byte)),
                        got.eq(got + 1),
                    ]
                    with m.If(got == _BODY_BYTES - 1):
                        m.next = "CHECK"
                with m.Elif(idle == timeout - 1):
                    m.d.sync += self.command_errors.eq(self.command_errors + 1)
                    m.next = "HUNT"
            with m.State("CHECK"):
                with m.If(~well_formed):
                    m.d.sync += self.command_errors.eq(self.command_errors + 1)
                    m.next = "HUNT"
                with m.Elif(last_valid & (tag == last_tag)):
                    m.d.comb += send.eq(1)     # a retry: the stored reply again
                    m.next = "HUNT"
                with m.Elif(fifo.level > fifo.depth - REPLY_FRAME_BYTES):
                    m.d.sync += self.commands_dropped.eq(self.commands_dropped + 1)
                    m.next = "HUNT"
                with m.Else():
                    m.d.sync += self.commands_executed.eq(self.commands_executed + 1)
                    m.next = "ACCESS"
            with m.State("ACCESS"):
                m.d.comb += [
                    self.bus_active.eq(1),
                    self.bus.addr.eq(address),
                    self.bus.w_data.eq(value),
                    self.bus.w_en.eq(is_write & writable),
                ]
                m.next = "SETTLE"
            with m.State("SETTLE"):
                # The bank shows the register (after the write) one cycle after this.
                m.d.comb += [self.bus_active.eq(1), self.bus.addr.eq(address)]
                m.next = "CAPTURE"
            with m.State("CAPTURE"):
                status = Signal(8)
                with m.If(~known):
                    m.d.comb += status.eq(ReplyStatus.UNKNOWN_REGISTER)
                with m.Elif(is_write & ~writable):
                    m.d.comb += status.eq(ReplyStatus.READ_ONLY)
                with m.Else():
                    m.d.comb += status.eq(ReplyStatus.OK)
                m.d.sync += [
                    last_valid.eq(1), last_tag.eq(tag), reply_address.eq(address),
                    reply_status.eq(status), reply_value.eq(self.bus.r_data),
                ]
                m.next = "REPLY"
            with m.State("REPLY"):
                m.d.comb += send.eq(1)
                m.next = "HUNT"

        # -- reply writer: 19 bytes into the FIFO, one per cycle ---------------------------------
        header = [SYNC[0], SYNC[1], FrameType.REPLY, *(last_tag.word_select(k, 8)
                                                      for k in range(4)),
                  REPLY.size & 0xFF, REPLY.size >> 8]
        payload = [reply_address, reply_status, *(reply_value.word_select(k, 8)
                                                  for k in range(4))]
        index = Signal(range(REPLY_FRAME_BYTES))
        out_crc = Signal(32)
        out_byte = Signal(8)
        crc_start = HEADER_BYTES + REPLY.size
        with m.Switch(index):
            for position, value_ in enumerate(header + payload):
                with m.Case(position):
                    m.d.comb += out_byte.eq(value_)
            for k in range(CRC_BYTES):
                with m.Case(crc_start + k):
                    m.d.comb += out_byte.eq((~out_crc).word_select(k, 8))
        m.d.comb += fifo.w.payload.eq(out_byte)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(send):
                    m.d.sync += [index.eq(0), out_crc.eq(0xFFFFFFFF)]
                    m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += fifo.w.valid.eq(1)
                with m.If(fifo.w.ready):
                    m.d.sync += index.eq(index + 1)
                    with m.If((index >= len(SYNC)) & (index < crc_start)):
                        m.d.sync += out_crc.eq(crc32_update(out_crc, out_byte))
                    with m.If(index == REPLY_FRAME_BYTES - 1):
                        m.next = "IDLE"
        return m


class LinkArbiter(wiring.Component):
    """Puts two streams of whole frames on one byte stream, switching only between frames.

    ``data`` carries the framer's frames (any length: the arbiter reads the length field of
    each header to know where it ends); ``reply`` carries fixed-length reply frames
    (``reply_bytes`` each). Between frames a waiting reply goes first; otherwise ``data``
    passes straight through, in the same cycle, so with no replies the output is the
    framer's byte stream with its exact timing. Once a frame's first byte is offered, its
    stream keeps the output until the frame's last byte is taken.

    Ports
    -----
    data, reply : streams of bytes in
    o : stream of bytes out, to the UART transmitter
    """

    data: In(stream.Signature(8))
    reply: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def __init__(self, reply_bytes: int = REPLY_FRAME_BYTES):
        self._reply_bytes = reply_bytes
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        count = Signal(17)         # bytes of the current frame taken
        length = Signal(16)        # payload length of the current data frame
        accepted = self.o.valid & self.o.ready
        trailer = HEADER_BYTES + CRC_BYTES

        def pass_through(source):
            m.d.comb += [
                self.o.valid.eq(source.valid),
                self.o.payload.eq(source.payload),
                source.ready.eq(self.o.ready),
            ]

        with m.FSM():
            with m.State("BETWEEN"):
                m.d.sync += count.eq(accepted)
                with m.If(self.reply.valid):
                    pass_through(self.reply)
                    m.next = "REPLY"
                with m.Elif(self.data.valid):
                    pass_through(self.data)
                    m.next = "DATA"
            with m.State("REPLY"):
                pass_through(self.reply)
                with m.If(accepted):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == self._reply_bytes - 1):
                        m.next = "BETWEEN"
            with m.State("DATA"):
                pass_through(self.data)
                with m.If(accepted):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == HEADER_BYTES - 2):
                        m.d.sync += length[:8].eq(self.data.payload)
                    with m.If(count == HEADER_BYTES - 1):
                        m.d.sync += length[8:].eq(self.data.payload)
                    with m.If((count >= HEADER_BYTES) & (count == length + trailer - 1)):
                        m.next = "BETWEEN"
        return m
