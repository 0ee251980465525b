"""The control path: commands from the host read and write the register map; replies share
the link with the framer's frames.

:class:`CommandDecoder` parses COMMAND frames from the UART receiver, carries them out on
the :class:`~spikeforge.hdl.registers.RegisterBus` and queues a REPLY frame;
:class:`LinkArbiter` puts the framer's frames and the replies on the one UART transmitter,
switching only between whole frames. Formats: :mod:`spikeforge.firmware.wire`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.control_protocol import AUTH_COMMAND, EPOCH_BITS, EPOCH_SHIFT, MAC_MESSAGE
from spikeforge.firmware.registers import AUTH_COUNTERS, REGISTERS, register
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
from .siphash import SipHash

__all__ = ["CommandDecoder", "LinkArbiter", "CRC_RESIDUE"]

#: The CRC register after a whole frame body *and* its (little-endian) CRC: a constant for
#: every error-free frame, so the decoder checks the CRC without storing it apart.
CRC_RESIDUE = 0xDEBB20E3
#: Bytes of a COMMAND frame after the two sync bytes.
_BODY_BYTES = HEADER_BYTES - len(SYNC) + COMMAND.size + CRC_BYTES
#: Bytes of an authenticated COMMAND frame after the two sync bytes.
_AUTH_BODY_BYTES = HEADER_BYTES - len(SYNC) + AUTH_COMMAND.size + CRC_BYTES


class CommandDecoder(wiring.Component):
    """Carries out COMMAND frames on the register bus and answers each with a REPLY frame.

    Parsing: two sync bytes, then the 17 bytes of type, tag (``seq``), length, payload and
    CRC-32, consumed as they arrive: the fields the command needs (tag, address, operation,
    value) are kept, the others are checked on the fly (type COMMAND, length 6, operation
    read or write) and the CRC is run over every byte. The command is carried out only when
    the whole frame is in and checks; anything else — a bad CRC, a wrong field, or a frame
    whose bytes stop for ``command_timeout_cycles`` (truncated) — is discarded and counted
    in ``command_errors``, never half applied.

    Carrying out (4 cycles after the last byte): the address is looked up in the register
    map of ``config``; a write to an ``rw`` register pulses ``bus.w_en`` for one cycle; the
    register's value is read back two cycles later. The reply carries the tag, the address,
    the status (ok, unknown register, read-only: a write to a const/status register is not
    applied) and the value after the command (0 for an unknown register).

    Retries: the decoder keeps the tag and reply of the last command it carried out. A
    command with the same tag is not carried out again; the stored reply is sent again.

    One CRC-32 unit (a byte per cycle) serves both directions: it checks the command's
    bytes as they arrive and, once the command is carried out, computes the reply's CRC
    while the reply is written. The UART delivers at most one byte every 10 *
    ``MIN_RX_DIVISOR`` = 30 cycles and the decoder is busy for at most 23 cycles after a
    command's last byte, so the two never meet and no byte waits.

    Ports
    -----
    i : stream of bytes in, from :class:`~spikeforge.hdl.uart.UARTReceiver`
        ``ready`` is low from the cycle after a frame's last byte until its reply is written
        (4 cycles to carry the command out and 19 to write the reply; 1 + 19 for a retry,
        1 for a discarded frame).
    bus : :class:`RegisterBus`, out (the decoder is the controller)
        ``addr`` and ``w_data`` show the current command's address and value at all times;
        they matter only while ``bus_active`` is high (``w_en`` pulses only then).
    bus_active : out
        High while the decoder drives ``bus`` (2 cycles per command).
    o : stream of bytes out
        Reply frames, whole (19 bytes, written one per cycle into a 256-byte block-RAM FIFO
        before they are offered, so a reply is never starved once it has started). A reply
        is written only when the FIFO has room for all of it.
    commands_executed, command_errors, commands_dropped : out
        Counters as wide as their registers (32, 16 and 16 bits; the narrow ones wrap):
        Commands carried out (retries answered from the stored reply not counted);
        discarded; good but not carried out — or, for a retry, not answered — because the
        reply FIFO had no room for the reply.

    Authenticated control (``config.control_key`` set; without a key none of this is built
    and the decoder is exactly the one above, cycle for cycle). A COMMAND payload is then
    either plain (6 bytes) or authenticated (18: plus counter and SipHash-2-4 tag,
    :data:`~spikeforge.firmware.control_protocol.AUTH_COMMAND`). The tag is computed by a
    :class:`~spikeforge.hdl.siphash.SipHash` core under the build's key while the tag
    bytes arrive (it starts after the counter's last byte and needs 10 cycles), so over
    the UART the decoder is not busy any longer; a faster source waits in ``CHECK``. A
    write in a plain frame is refused (``AUTH_REQUIRED``); an authenticated frame with a
    wrong tag is refused (``AUTH_FAILED``), one with a right tag and a counter not above
    ``auth_counter`` is refused (``REPLAYED``); refused commands are not applied, answered
    with value 0 and counted. Plain reads are carried out; an authenticated command that
    passes both checks is carried out and its counter becomes ``auth_counter``. A retry
    must repeat the tag *and* the address, operation and tag bytes of the stored command
    (so a forged frame that guesses the host's next tag cannot take its place); refusals
    are stored like replies, so a retried refusal is answered again and not counted again.

    Epochs: a counter's bits 31..16 are its epoch. The epochs below ``epoch_high`` are spent
    for good (the :class:`~spikeforge.hdl.epoch_store.EpochStore` keeps that mark in the
    configuration flash across resets); once the store has read it (``epoch_ready``),
    ``auth_counter`` starts at ``epoch_high << 16``, so no frame of a spent epoch — of any
    earlier boot — is ever carried out. An authenticated frame waits in ``CHECK`` until the
    store is ready; one that passes both checks in an epoch not yet spent first has the
    store raise the mark past its epoch (``epoch_request`` held until ``epoch_done``) and
    is carried out only if that took (``epoch_ok``), else refused (``NOT_STORED``).

    auth_refused, replays_refused, auth_counter : out (keyed builds only)
        AUTH_REQUIRED, AUTH_FAILED and NOT_STORED refusals (16 bits, wraps); REPLAYED
        refusals (16); the counter of the last authenticated command carried out (32;
        ``epoch_high << 16`` after reset, all ones when every epoch is spent).
    epoch_high, epoch_ready, epoch_request, epoch_raise_to, epoch_done, epoch_ok
        (keyed builds only) the epoch store's ports of the same names.
    verified : out (keyed builds only)
        The decoder's verdict for whoever acts on a command's sender: high for one cycle
        (the cycle after ``commands_executed`` changes, while the command is on the bus)
        when the command carried out was authenticated — its tag and its counter checked.
        Never for a plain read, a refusal or a retry answered from the stored reply. The
        Ethernet link learns its host only on this strobe in keyed builds
        (:class:`~spikeforge.hdl.ethernet.link.EthernetLink`).
    """

    REPLY_FIFO_BYTES = 256

    def __init__(self, config: SystemConfig):
        self._config = config
        self._key = config.control_key_bytes
        members = {
            "i": In(stream.Signature(8)),
            "bus": Out(RegisterBus()),
            "bus_active": Out(1),
            "o": Out(stream.Signature(8)),
            "commands_executed": Out(register("COMMANDS_EXECUTED").width(config)),
            "command_errors": Out(register("COMMAND_ERRORS").width(config)),
            "commands_dropped": Out(register("COMMANDS_DROPPED").width(config)),
        }
        if self._key is not None:
            for name in AUTH_COUNTERS:
                members[name.lower()] = Out(register(name).width(config))
            members["verified"] = Out(1)
            # The epoch store (hdl/epoch_store.py): spent epochs, read from flash at boot,
            # raised before a command of a new epoch is carried out.
            members |= {"epoch_high": In(EPOCH_BITS + 1), "epoch_ready": In(1),
                        "epoch_request": Out(1), "epoch_raise_to": Out(EPOCH_BITS + 1),
                        "epoch_done": In(1), "epoch_ok": In(1)}
        super().__init__(members)

    # Where each field sits in the body (after the sync bytes).
    _TAG_AT = range(1, 5)
    _LENGTH_AT = (5, 6)
    _ADDRESS_AT, _OP_AT = 7, 8
    _VALUE_AT = range(9, 13)

    def elaborate(self, platform):
        m = Module()
        m.submodules.replies = fifo = StreamFifo(8, self.REPLY_FIFO_BYTES)
        wiring.connect(m, fifo.r, wiring.flipped(self.o))
        s = self._state(m, fifo)
        with m.FSM():
            self._receive(m, s)
            self._check(m, s)
            self._carry_out(m, s)
            self._write_reply(m, s, fifo)
        return m

    def _state(self, m: Module, fifo: StreamFifo) -> "_DecoderState":
        """The signals the stages share: the command being received, the stored reply, the
        byte and CRC counters, and (keyed builds) the authentication."""
        s = _DecoderState()
        s.timeout = command_timeout_cycles(self._config)
        # Bytes taken of the frame body while parsing; bytes written of the reply while
        # writing (one counter: the decoder does one or the other).
        s.keyed = keyed = self._key is not None
        body_bytes = _AUTH_BODY_BYTES if keyed else _BODY_BYTES
        s.count = Signal(range(max(body_bytes, REPLY_FRAME_BYTES)))
        s.idle = Signal(range(s.timeout + 1))
        s.crc = Signal(32)
        s.crc_byte = Signal(8)
        m.d.comb += s.crc_byte.eq(self.i.payload)   # the writer overrides it while writing

        # -- the command being received, kept field by field ------------------------------
        s.tag = Signal(32)
        s.address = Signal(8)
        s.value = Signal(32)
        s.is_write = Signal()
        s.malformed = Signal()    # a checked field (type, length, operation) was wrong

        s.byte = self.i.payload
        s.take = self.i.valid & self.i.ready

        # -- the last reply (sent again for a retry) --------------------------------------------
        s.last_valid = Signal()
        s.last_tag = Signal(32)
        s.reply_address = Signal(8)
        s.reply_status = Signal(3 if keyed else 2)
        s.reply_value = Signal(32)

        s.known, s.writable = self._register_kind(m, s.address)

        # The bus shows the command at all times; only w_en and bus_active are timed.
        m.d.comb += [self.bus.addr.eq(s.address), self.bus.w_data.eq(s.value)]

        s.out_byte = self._reply_byte(m, s.count, s.crc, s.last_tag, s.reply_address,
                                      s.reply_status, s.reply_value)
        m.d.comb += fifo.w.payload.eq(s.out_byte)
        s.room = fifo.level <= fifo.depth - REPLY_FRAME_BYTES

        s.auth = None
        if keyed:
            s.auth = self._authentication(m, s.take, s.count, s.byte, s.address, s.is_write,
                                          s.value)
        return s

    def _receive(self, m: Module, s: "_DecoderState") -> None:
        """``HUNT``, ``SYNC1``, ``BODY``: find the sync bytes, then take the body's bytes,
        keeping the fields and checking the others, until its last byte (-> ``CHECK``) or a
        timeout (counted, -> ``HUNT``)."""
        count, byte, take, auth = s.count, s.byte, s.take, s.auth
        with m.State("HUNT"):
            m.d.comb += self.i.ready.eq(1)
            with m.If(take & (byte == SYNC[0])):
                m.d.sync += s.idle.eq(0)
                m.next = "SYNC1"
        with m.State("SYNC1"):
            m.d.comb += self.i.ready.eq(1)
            m.d.sync += s.idle.eq(s.idle + 1)
            with m.If(take):
                m.d.sync += [s.idle.eq(0), count.eq(0), s.crc.eq(0xFFFFFFFF),
                             s.malformed.eq(0)]
                with m.If(byte == SYNC[1]):
                    if s.keyed:
                        auth.start_frame()
                    m.next = "BODY"
                with m.Elif(byte != SYNC[0]):
                    m.next = "HUNT"
            with m.Elif(s.idle == s.timeout - 1):
                m.d.sync += self.command_errors.eq(self.command_errors + 1)
                m.next = "HUNT"
        with m.State("BODY"):
            m.d.comb += self.i.ready.eq(1)
            m.d.sync += s.idle.eq(s.idle + 1)
            with m.If(take):
                m.d.sync += [s.idle.eq(0), s.crc.eq(crc32_update(s.crc, s.crc_byte)),
                             count.eq(count + 1)]
                self._take_field(m, s)
                last_byte = count == _BODY_BYTES - 1
                if s.keyed:
                    last_byte = (last_byte & ~auth.frame) | (count == _AUTH_BODY_BYTES - 1)
                with m.If(last_byte):
                    m.next = "CHECK"
            with m.Elif(s.idle == s.timeout - 1):
                m.d.sync += self.command_errors.eq(self.command_errors + 1)
                m.next = "HUNT"

    def _take_field(self, m: Module, s: "_DecoderState") -> None:
        """A body byte taken: into its field, or checked against what it must be."""
        count, byte = s.count, s.byte
        with m.If(count == 0):
            with m.If(byte != FrameType.COMMAND):
                m.d.sync += s.malformed.eq(1)
        with m.If((count >= self._TAG_AT.start) & (count < self._TAG_AT.stop)):
            m.d.sync += s.tag.eq(Cat(s.tag[8:], byte))
        if s.keyed:
            s.auth.check_length(self._LENGTH_AT, s.malformed)
        else:
            for k, expected in zip(self._LENGTH_AT, COMMAND.size.to_bytes(2, "little")):
                with m.If((count == k) & (byte != expected)):
                    m.d.sync += s.malformed.eq(1)
        with m.If(count == self._ADDRESS_AT):
            m.d.sync += s.address.eq(byte)
        with m.If(count == self._OP_AT):
            m.d.sync += s.is_write.eq(byte == CommandOp.WRITE)
            with m.If(byte > CommandOp.WRITE):
                m.d.sync += s.malformed.eq(1)
        with m.If((count >= self._VALUE_AT.start) & (count < self._VALUE_AT.stop)):
            m.d.sync += s.value.eq(Cat(s.value[8:], byte))

    def _check(self, m: Module, s: "_DecoderState") -> None:
        """``CHECK``: the whole frame is in; discard it (counted), drop it (no room), answer
        a retry from the stored reply, refuse it (keyed builds) or carry it out."""
        auth = s.auth
        with m.State("CHECK"):
            m.d.sync += s.count.eq(0)
            broken = s.malformed | (s.crc != CRC_RESIDUE)
            if s.keyed:
                refuse = auth.check(m, s.tag, s.address, s.is_write, s.last_valid, s.last_tag,
                                    s.reply_address, broken, s.room)
            retry = s.last_valid & (s.tag == s.last_tag)
            first_check = m.If
            if s.keyed:
                retry = auth.retry
                with m.If(auth.waiting):
                    pass        # the tag is not computed yet
                first_check = m.Elif
            with first_check(broken):
                m.d.sync += self.command_errors.eq(self.command_errors + 1)
                m.next = "HUNT"
            with m.Elif(~s.room):
                m.d.sync += self.commands_dropped.eq(self.commands_dropped + 1)
                m.next = "HUNT"
            with m.Elif(retry):
                m.d.sync += s.crc.eq(0xFFFFFFFF)
                m.next = "WRITE"        # a retry: the stored reply again
            if s.keyed:
                with m.Elif(refuse != 0):
                    # Refused: answered with value 0, stored like a reply.
                    auth.count_refusal(refuse)
                    m.d.sync += [
                        s.last_valid.eq(1), s.last_tag.eq(s.tag),
                        s.reply_address.eq(s.address), s.reply_status.eq(refuse),
                        s.reply_value.eq(0), s.crc.eq(0xFFFFFFFF),
                    ]
                    m.next = "WRITE"
            with m.Else():
                m.d.sync += self.commands_executed.eq(self.commands_executed + 1)
                if s.keyed:
                    auth.accept()
                m.next = "ACCESS"

    def _carry_out(self, m: Module, s: "_DecoderState") -> None:
        """``ACCESS``, ``SETTLE``, ``CAPTURE``: the command on the bus, then its reply
        stored."""
        with m.State("ACCESS"):
            m.d.comb += [self.bus_active.eq(1),
                         self.bus.w_en.eq(s.is_write & s.writable)]
            m.next = "SETTLE"
        with m.State("SETTLE"):
            # The bank shows the register (after the write) one cycle after this.
            m.d.comb += self.bus_active.eq(1)
            m.next = "CAPTURE"
        with m.State("CAPTURE"):
            status = Signal(2)
            with m.If(~s.known):
                m.d.comb += status.eq(ReplyStatus.UNKNOWN_REGISTER)
            with m.Elif(s.is_write & ~s.writable):
                m.d.comb += status.eq(ReplyStatus.READ_ONLY)
            with m.Else():
                m.d.comb += status.eq(ReplyStatus.OK)
            m.d.sync += [
                s.last_valid.eq(1), s.last_tag.eq(s.tag), s.reply_address.eq(s.address),
                s.reply_status.eq(status), s.reply_value.eq(self.bus.r_data),
                s.crc.eq(0xFFFFFFFF),
            ]
            m.next = "WRITE"

    def _write_reply(self, m: Module, s: "_DecoderState", fifo: StreamFifo) -> None:
        """``WRITE``: the stored reply into the FIFO, its CRC computed on the way."""
        crc_start = HEADER_BYTES + REPLY.size
        with m.State("WRITE"):
            # 19 bytes into the FIFO, one per cycle (``room`` was checked: never stalls).
            m.d.comb += [fifo.w.valid.eq(1), s.crc_byte.eq(s.out_byte)]
            m.d.sync += s.count.eq(s.count + 1)
            with m.If((s.count >= len(SYNC)) & (s.count < crc_start)):
                m.d.sync += s.crc.eq(crc32_update(s.crc, s.crc_byte))
            with m.If(s.count == REPLY_FRAME_BYTES - 1):
                m.next = "HUNT"

    def _authentication(self, m: Module, take, count, byte, address, is_write,
                        value) -> "_Authentication":
        return _Authentication(self, m, take, count, byte, address, is_write, value)

    def _register_kind(self, m: Module, address) -> tuple[Signal, Signal]:
        """Whether ``address`` names a register of this build, and whether it is writable
        (for the reply's status)."""
        writable = Signal()
        known = Signal()
        with m.Switch(address):
            for reg in REGISTERS:
                if reg.present(self._config):
                    with m.Case(reg.address):
                        m.d.comb += [known.eq(1), writable.eq(reg.access == "rw")]
        return known, writable

    @staticmethod
    def _reply_byte(m: Module, count, crc, last_tag, reply_address, reply_status,
                    reply_value) -> Signal:
        """The byte at position ``count`` of the stored reply frame (header, payload, then
        the CRC of ``crc`` as it stands)."""
        header = [SYNC[0], SYNC[1], FrameType.REPLY, *(last_tag.word_select(k, 8)
                                                      for k in range(4)),
                  REPLY.size & 0xFF, REPLY.size >> 8]
        payload = [reply_address, reply_status, *(reply_value.word_select(k, 8)
                                                  for k in range(4))]
        out_byte = Signal(8)
        crc_start = HEADER_BYTES + REPLY.size
        with m.Switch(count):
            for position, value_ in enumerate(header + payload):
                with m.Case(position):
                    m.d.comb += out_byte.eq(value_)
            for k in range(CRC_BYTES):
                with m.Case(crc_start + k):
                    m.d.comb += out_byte.eq((~crc).word_select(k, 8))
        return out_byte


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


class _DecoderState:
    """The signals :class:`CommandDecoder`'s stages share (made by ``_state``)."""


class _Authentication:
    """The keyed decoder's extra state and checks (:class:`CommandDecoder`, keyed builds):
    the counter and tag of the frame being received, the SipHash core fed from the
    received fields, and the stored command's tag bytes for the retry match."""

    # Where the counter and tag sit in the body (after the sync bytes).
    COUNTER_AT = range(13, 17)
    MAC_AT = range(17, 25)

    def __init__(self, decoder: CommandDecoder, m: Module, take, count, byte, address,
                 is_write, value):
        self.decoder = decoder
        self.m = m
        m.submodules.siphash = self.sip = sip = SipHash()
        key = decoder._key
        m.d.comb += sip.key.eq(Const(int.from_bytes(key, "little"), 128))
        self.frame = Signal()           # the length field says authenticated
        self.counter = Signal(32)
        self.mac = Signal(64)           # the received tag (little-endian integer)
        self.last_mac = Signal(64)      # the stored command's tag bytes (0: plain)
        self.last_write = Signal()
        self.feed = Signal(2)           # 1: offer block 0, 2: offer block 1
        # This frame's epoch raise: 1 the store took it, 2 it did not (NOT_STORED).
        self.raised = Signal(2)
        self.count = count
        self.byte = byte
        self.take = take
        self.is_write = is_write
        # A strobe: low unless ``accept`` (below, in ``CHECK``) raises it for one cycle.
        m.d.sync += decoder.verified.eq(0)
        self.floored = self._epoch_floor(m, decoder)

        op_byte = Cat(is_write, Const(0, 7))
        message_bytes = MAC_MESSAGE.size
        block0 = Cat(address, op_byte, value, self.counter[:16])
        block1 = Cat(self.counter[16:], Const(0, 40), Const(message_bytes, 8))
        m.d.comb += [
            sip.i.valid.eq(self.feed != 0),
            sip.i.payload.block.eq(Mux(self.feed == 1, block0, block1)),
            sip.i.payload.first.eq(self.feed == 1),
            sip.i.payload.last.eq(self.feed == 2),
        ]
        with m.If(sip.i.valid & sip.i.ready):
            m.d.sync += self.feed.eq(Mux(self.feed == 1, 2, 0))
        with m.If(take):
            with m.If((count >= self.COUNTER_AT.start) & (count < self.COUNTER_AT.stop)):
                m.d.sync += self.counter.eq(Cat(self.counter[8:], byte))
            with m.If((count >= self.MAC_AT.start) & (count < self.MAC_AT.stop)):
                m.d.sync += self.mac.eq(Cat(self.mac[8:], byte))
            # The counter's last byte is in: hash the message while the tag arrives.
            with m.If(self.frame & (count == self.COUNTER_AT.stop - 1)):
                m.d.sync += self.feed.eq(1)

    @staticmethod
    def _epoch_floor(m: Module, decoder: CommandDecoder) -> Signal:
        """Once the store has read the spent epochs: ``auth_counter`` = their floor. Returns
        the register that says it is (high from the cycle after): no authenticated frame
        is checked before it, see ``check``."""
        floored = Signal()
        high = decoder.epoch_high
        with m.If(decoder.epoch_ready & ~floored):
            m.d.sync += [floored.eq(1),
                         decoder.auth_counter.eq(Mux(high[EPOCH_BITS], 0xFFFFFFFF,
                                                     high[:EPOCH_BITS] << EPOCH_SHIFT))]
        return floored

    def start_frame(self) -> None:
        """The sync bytes are in: a new frame (plain until its length says otherwise)."""
        self.m.d.sync += [self.frame.eq(0), self.mac.eq(0), self.feed.eq(0),
                          self.raised.eq(0)]

    def check_length(self, length_at, malformed) -> None:
        m, count, byte = self.m, self.count, self.byte
        with m.If(count == length_at[0]):
            with m.If(byte == AUTH_COMMAND.size):
                m.d.sync += self.frame.eq(1)
            with m.Elif(byte != COMMAND.size):
                m.d.sync += malformed.eq(1)
        with m.If((count == length_at[1]) & (byte != 0)):
            m.d.sync += malformed.eq(1)

    def check(self, m: Module, tag, address, is_write, last_valid, last_tag, reply_address,
              broken, room) -> Signal:
        """In ``CHECK``: the refusal status of the command (0: none) and the waiting and
        retry-match conditions."""
        sip = self.sip
        decoder = self.decoder
        # A retry repeats the stored command's tag, address, operation and tag bytes.
        self.retry = retry = (last_valid & (tag == last_tag) & (self.mac == self.last_mac)
                              & (address == reply_address) & (is_write == self.last_write))
        raising = self._raise_epoch(m, broken | ~room | retry)
        self.waiting = Signal()
        m.d.comb += self.waiting.eq(self.frame & ((self.feed != 0) | ~sip.o.valid
                                                  | ~self.floored | raising))
        # The tag is taken (the core is free again) once the decision is made.
        m.d.comb += sip.o.ready.eq(self.frame & ~self.waiting)
        refuse = Signal(3)
        with m.If(self.frame):
            with m.If(sip.o.payload != self.mac):
                m.d.comb += refuse.eq(ReplyStatus.AUTH_FAILED)
            with m.Elif(self.counter <= decoder.auth_counter):
                m.d.comb += refuse.eq(ReplyStatus.REPLAYED)
            with m.Elif(self.raised == 2):
                m.d.comb += refuse.eq(ReplyStatus.NOT_STORED)
        with m.Elif(is_write):
            m.d.comb += refuse.eq(ReplyStatus.AUTH_REQUIRED)
        with m.If(~self.waiting & ~broken & room):
            # Whatever is decided (refused, or carried out below) becomes the stored command.
            with m.If(~retry):
                m.d.sync += [self.last_mac.eq(self.mac), self.last_write.eq(is_write)]
        return refuse

    def _raise_epoch(self, m: Module, skipped) -> Signal:
        """High while this frame waits for the store to spend its epoch: tag and counter
        checked, epoch not yet spent, and the frame neither ``skipped`` (discarded, dropped
        or a retry) nor raised already."""
        decoder = self.decoder
        epoch = self.counter[EPOCH_SHIFT:]
        raising = Signal()
        m.d.comb += [
            raising.eq(self.frame & (self.feed == 0) & self.sip.o.valid & self.floored
                       & (self.sip.o.payload == self.mac)
                       & (self.counter > decoder.auth_counter)
                       & (epoch >= decoder.epoch_high) & (self.raised == 0) & ~skipped),
            # Not in ``epoch_done``'s cycle: the store never sees one request twice.
            decoder.epoch_request.eq(raising & ~decoder.epoch_done),
            decoder.epoch_raise_to.eq(epoch + 1),
        ]
        with m.If(raising & decoder.epoch_done):
            m.d.sync += self.raised.eq(Mux(decoder.epoch_ok, 1, 2))
        return raising

    def count_refusal(self, refuse) -> None:
        decoder = self.decoder
        with self.m.If(refuse == ReplyStatus.REPLAYED):
            self.m.d.sync += decoder.replays_refused.eq(decoder.replays_refused + 1)
        with self.m.Else():
            self.m.d.sync += decoder.auth_refused.eq(decoder.auth_refused + 1)

    def accept(self) -> None:
        with self.m.If(self.frame):
            self.m.d.sync += [self.decoder.auth_counter.eq(self.counter),
                              self.decoder.verified.eq(1)]
