"""Ethernet MAC receiver: preamble stripped, FCS checked, good frames stored and forwarded."""

import enum

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.ethernet import FCS_BYTES

from ..crc import crc32_update
from .frame_ram import FrameRam
from .layouts import FrameByteLayout

__all__ = ["MACReceiver", "RxVerdict", "MIN_RX_FRAME_BYTES", "MAX_RX_FRAME_BYTES"]

MIN_RX_FRAME_BYTES = 64            #: with the FCS; shorter is a runt
MAX_RX_FRAME_BYTES = 1518          #: with the FCS, no VLAN tag; longer is a giant
#: The CRC-32 register (reflected, before the final complement) after a frame and its own
#: FCS: the same for every good frame.
FCS_RESIDUE = 0xDEBB20E3


class RxVerdict(enum.IntEnum):
    OK = 0
    FCS_ERROR = 1     #: FCS does not check, or the PHY flagged a byte (rx_er) in the frame
    RUNT = 2          #: fewer than 64 bytes from destination MAC to FCS
    GIANT = 3         #: more than 1518 bytes
    OVERFLOW = 4      #: good, but the frame buffer had no room for it


class MACReceiver(wiring.Component):
    """Receives Ethernet frames from GMII-style bytes and passes on only the good ones.

    Store and forward: a frame's bytes are written into a ring buffer (``buffer_bytes`` of
    block RAM) as they arrive, and committed only when the frame has ended and checks: at
    least 64 and at most 1518 bytes with the FCS, FCS right (CRC-32 residue), no ``rx_er``
    inside the frame, and room in the buffer for all of it (``buffer_bytes - 1`` bytes are
    held at most). A frame that fails is forgotten (the write pointer goes back) and
    counted; nothing of it ever reaches ``o``. So the
    consumer sees only good frames and may stall ``o`` for as long as the buffer holds;
    frames arriving while it is full are dropped whole and counted in ``overflows``.

    Framing: a frame starts after the SFD (0xD5) that follows zero or more preamble bytes
    (0x55) with ``rx_dv`` high, and ends when ``rx_dv`` falls. A burst whose first bytes are
    neither preamble nor SFD (e.g. one entered mid-frame after reset) is ignored whole and not
    counted.

    Ports
    -----
    rx_data, rx_dv, rx_er : in
        One byte per cycle from :class:`~spikeforge.hdl.ethernet.rgmii_rx.RGMIIReceiver`.
    o : stream of :data:`FrameByteLayout` out
        Good frames, destination MAC to the last payload byte (FCS removed, padding kept),
        ``last`` on the final byte. The first byte of a frame is offered 3 cycles after
        ``rx_dv`` falls at the frame's end, then one byte per cycle while ``ready``.
    verdict, verdict_valid : out
        At each frame's end, for one cycle: ``verdict_valid`` high and the
        :class:`RxVerdict` of the frame.
    frames_ok, fcs_errors, runts, giants, overflows : out
        32-bit counters of the verdicts.
    """

    def __init__(self, buffer_bytes: int = 4096):
        if buffer_bytes < 2048 or buffer_bytes & (buffer_bytes - 1):
            raise ConfigError(f"MAC receive buffer must be a power of two of at least 2048 "
                              f"bytes (one largest frame), not {buffer_bytes}")
        self._depth = buffer_bytes
        super().__init__({
            "rx_data": In(8), "rx_dv": In(1), "rx_er": In(1),
            "o": Out(stream.Signature(FrameByteLayout)),
            "verdict": Out(3), "verdict_valid": Out(1),
            "frames_ok": Out(32), "fcs_errors": Out(32), "runts": Out(32), "giants": Out(32),
            "overflows": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        abits = (depth - 1).bit_length()
        m.submodules.buffer = buffer = FrameRam(depth)

        write_ptr = Signal(abits + 1)
        commit_ptr = Signal(abits + 1)
        read_ptr = Signal(abits + 1)
        # Full: registered from the fill level, so the write decision starts at a flip-flop
        # (at 125 MHz the pointers' comparison did not fit before it). Being a cycle late,
        # it counts one free byte as none: one byte is written a cycle at most, so the
        # buffer never overruns, and it holds ``buffer_bytes - 1`` at most.
        full = Signal()
        level = Signal(abits + 1)
        m.d.comb += level.eq(write_ptr - read_ptr)
        m.d.sync += full.eq(level[abits] | level[:abits].all())

        # --- receive side -------------------------------------------------------------
        count = Signal(range(MAX_RX_FRAME_BYTES + 2))      # bytes so far, saturating
        crc = Signal(32, init=0xFFFFFFFF)
        tail = Signal(8 * FCS_BYTES)                         # the last 4 bytes seen
        last_written = Signal(8)
        # Where ``last_written`` went (write_ptr - 1, kept so the commit's address is a
        # flip-flop): an OK frame has written at least 60 bytes.
        last_address = Signal(abits)
        bad = Signal()                                       # rx_er seen
        overflow = Signal()
        giant = Signal()
        # FCS_BYTES <= count < MAX_RX_FRAME_BYTES, kept as a flag (the write decision then
        # starts at flip-flops).
        window = Signal()
        # The verdict's inputs as flags, registered byte by byte: the FCS residue of the
        # bytes so far, and whether the frame has reached the minimum length.
        crc_ok = Signal()
        long_enough = Signal()

        m.d.sync += self.verdict_valid.eq(0)
        in_byte = self.rx_data
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.rx_dv):
                    with m.If(in_byte == 0xD5):
                        m.next = "FRAME"
                    with m.Elif(in_byte == 0x55):
                        m.next = "PREAMBLE"
                    with m.Else():
                        m.next = "DISCARD"
                m.d.sync += [count.eq(0), crc.eq(0xFFFFFFFF), bad.eq(0), overflow.eq(0),
                             giant.eq(0), window.eq(0), crc_ok.eq(0), long_enough.eq(0)]
            with m.State("PREAMBLE"):
                with m.If(~self.rx_dv):
                    m.next = "IDLE"
                with m.Elif(in_byte == 0xD5):
                    m.next = "FRAME"
                with m.Elif(in_byte != 0x55):
                    m.next = "DISCARD"
            with m.State("DISCARD"):
                with m.If(~self.rx_dv):
                    m.next = "IDLE"
            with m.State("FRAME"):
                with m.If(self.rx_dv):
                    next_crc = crc32_update(crc, in_byte)
                    m.d.sync += [
                        crc.eq(next_crc),
                        crc_ok.eq(next_crc == FCS_RESIDUE),
                        tail.eq(Cat(in_byte, tail[:-8])),
                        bad.eq(bad | self.rx_er),
                    ]
                    with m.If(count <= MAX_RX_FRAME_BYTES):
                        m.d.sync += count.eq(count + 1)
                    with m.If(count >= MAX_RX_FRAME_BYTES):
                        m.d.sync += giant.eq(1)
                    with m.If(count == FCS_BYTES - 1):
                        m.d.sync += window.eq(1)
                    with m.If(count == MIN_RX_FRAME_BYTES - 1):
                        m.d.sync += long_enough.eq(1)
                    with m.If(count == MAX_RX_FRAME_BYTES - 1):
                        m.d.sync += window.eq(0)
                    # Byte count-4 leaves the tail: it is frame data, not FCS.
                    with m.If(window):
                        with m.If(full):
                            m.d.sync += overflow.eq(1)
                        with m.Elif(~overflow):
                            m.d.comb += [
                                buffer.write_addr.eq(write_ptr[:abits]),
                                buffer.write_data.data.eq(tail[-8:]),
                                buffer.write_data.last.eq(0),
                                buffer.write_en.eq(1),
                            ]
                            m.d.sync += [write_ptr.eq(write_ptr + 1),
                                         last_written.eq(tail[-8:]),
                                         last_address.eq(write_ptr[:abits])]
                with m.Else():
                    m.next = "IDLE"
                    verdict = Signal(RxVerdict)
                    with m.If(~long_enough):
                        m.d.comb += verdict.eq(RxVerdict.RUNT)
                    with m.Elif(giant):
                        m.d.comb += verdict.eq(RxVerdict.GIANT)
                    with m.Elif(bad | ~crc_ok):
                        m.d.comb += verdict.eq(RxVerdict.FCS_ERROR)
                    with m.Elif(overflow):
                        m.d.comb += verdict.eq(RxVerdict.OVERFLOW)
                    with m.Else():
                        m.d.comb += verdict.eq(RxVerdict.OK)
                    m.d.sync += [self.verdict.eq(verdict), self.verdict_valid.eq(1)]
                    with m.Switch(verdict):
                        with m.Case(RxVerdict.OK):
                            m.d.comb += [
                                buffer.write_addr.eq(last_address),
                                buffer.write_data.data.eq(last_written),
                                buffer.write_data.last.eq(1),
                                buffer.write_en.eq(1),
                            ]
                            m.d.sync += [commit_ptr.eq(write_ptr),
                                         self.frames_ok.eq(self.frames_ok + 1)]
                        with m.Case(RxVerdict.RUNT):
                            m.d.sync += self.runts.eq(self.runts + 1)
                        with m.Case(RxVerdict.GIANT):
                            m.d.sync += self.giants.eq(self.giants + 1)
                        with m.Case(RxVerdict.FCS_ERROR):
                            m.d.sync += self.fcs_errors.eq(self.fcs_errors + 1)
                        with m.Case(RxVerdict.OVERFLOW):
                            m.d.sync += self.overflows.eq(self.overflows + 1)
                    with m.If(verdict != RxVerdict.OK):
                        m.d.sync += write_ptr.eq(commit_ptr)

        # --- forward side: the buffer's two-stage read pipeline, advanced when ``o`` is
        # empty or taken; its second stage is ``o``'s payload (flip-flops by the block RAM,
        # then one bank multiplexer), its valid flags kept here --------------------------
        advance = ~self.o.valid | self.o.ready
        available = read_ptr != commit_ptr
        read_valid = Signal()                                # the first stage holds one
        m.d.comb += [
            buffer.read_addr.eq(read_ptr[:abits]),
            buffer.advance.eq(advance),
            self.o.payload.eq(buffer.read_data),
        ]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(read_valid), read_valid.eq(available)]
            with m.If(available):
                m.d.sync += read_ptr.eq(read_ptr + 1)
        return m
