"""Store-and-forward buffer of whole Ethernet frames, so the MAC never waits inside one."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import FrameByteLayout
from .pipeline import StreamRegister

__all__ = ["FrameFifo"]


class FrameFifo(wiring.Component):
    """A FIFO of frame bytes that offers a frame only once its ``last`` byte is stored.

    The MAC must be fed one byte per cycle from preamble to FCS; frame builders stall when
    their own input does. This buffer absorbs the stalls: its read side is valid only while
    at least one whole frame is stored, and then stays valid to the frame's end.

    ``depth`` bytes (rounded up to a power of two) in one block-RAM memory; it must hold
    the largest frame, and two to let a frame be written while the previous one leaves. The
    default, 4096, holds two maximum frames (1514 bytes each) in two ECP5 DP16KD blocks.
    A frame longer than ``depth`` would never be offered (and block its writer): the
    builders never make one (at most 14 + 1500 bytes).

    Built for 125 MHz: ``w.ready`` and the memory's next read address are chosen from
    flip-flops only, and ``r`` leaves through a :class:`StreamRegister` (the block RAM's
    slow clock-to-output then ends at a flip-flop, not in the MAC's CRC). The read port
    needs no write-through: a frame's bytes are read only from the cycle after its last
    one is written, and frames have at least two bytes, so the head byte is always re-read
    after it was written. The register slice keeps a frame's bytes back to back.

    Ports
    -----
    w : stream of :data:`FrameByteLayout` in (``ready`` low only while full)
    r : stream of :data:`FrameByteLayout` out (``valid`` from the second cycle after a
        frame's last byte was written, then without a gap while ``ready`` is high until
        that frame's last byte is read)
    frames : out
        Whole frames stored in the memory (not counting the bytes in the register slice).
    """

    def __init__(self, depth: int = 4096):
        self._depth = 1 << max(1, (depth - 1).bit_length())
        super().__init__({
            "w": In(stream.Signature(FrameByteLayout)),
            "r": Out(stream.Signature(FrameByteLayout)),
            "frames": Out(range(self._depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        m.submodules.storage = storage = memory.Memory(shape=FrameByteLayout, depth=depth,
                                                       init=[])
        wr = storage.write_port()
        rd = storage.read_port(transparent_for=())
        write_addr = Signal(range(depth))
        read_addr = Signal(range(depth))
        read_next = Signal(range(depth), init=1)          # read_addr + 1, kept registered
        level = Signal(range(depth + 1))
        full = Signal()
        whole = Signal()                                  # frames != 0, registered
        m.submodules.output = output = StreamRegister(FrameByteLayout)
        wiring.connect(m, output.o, wiring.flipped(self.r))
        head = output.i
        push = self.w.valid & self.w.ready
        pop = head.valid & head.ready
        m.d.comb += [
            self.w.ready.eq(~full),
            head.valid.eq(whole),
            wr.addr.eq(write_addr),
            wr.data.eq(self.w.payload),
            wr.en.eq(push),
            # The head for the next cycle: a mux between two registers, no adder.
            rd.addr.eq(Mux(pop, read_next, read_addr)),
            head.payload.eq(rd.data),
        ]
        with m.If(push):
            m.d.sync += write_addr.eq(write_addr + 1)
        with m.If(pop):
            m.d.sync += [read_addr.eq(read_next), read_next.eq(read_next + 1)]
        # level and full: the next value from this cycle's push and pop, split so that
        # full is a register (the level can only move by one a cycle).
        with m.If(push & ~pop):
            m.d.sync += [level.eq(level + 1), full.eq(level == depth - 1)]
        with m.Elif(pop & ~push):
            m.d.sync += [level.eq(level - 1), full.eq(0)]
        stored = push & self.w.payload.last
        taken = pop & head.payload.last
        with m.If(stored & ~taken):
            m.d.sync += [self.frames.eq(self.frames + 1), whole.eq(1)]
        with m.Elif(taken & ~stored):
            m.d.sync += [self.frames.eq(self.frames - 1), whole.eq(self.frames != 1)]
        return m
