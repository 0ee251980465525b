"""Store-and-forward buffer of whole Ethernet frames, so the MAC never waits inside one."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .frame_ram import FrameRam
from .layouts import FrameByteLayout
from .pipeline import StreamRegister

__all__ = ["FrameFifo"]


class FrameFifo(wiring.Component):
    """A FIFO of frame bytes that offers a frame only once its ``last`` byte is stored.

    The MAC must be fed one byte per cycle from preamble to FCS; frame builders stall when
    their own input does. This buffer absorbs the stalls: its read side is valid only while
    at least one whole frame is stored, and then stays valid to the frame's end.

    ``depth`` bytes (rounded up to a power of two) in a :class:`~.frame_ram.FrameRam`; it
    must hold the largest frame, and two to let a frame be written while the previous one
    leaves. The default, 4096, holds two maximum frames (1514 bytes each) in two ECP5
    DP16KD blocks.
    A frame longer than ``depth`` would never be offered (and block its writer): the
    builders never make one (at most 14 + 1500 bytes).

    Built for 125 MHz: ``w.ready`` and whether a byte may be read (the read pointer short
    of the end of the last whole frame written) come from flip-flops; the block RAM's
    slow output goes into one flip-flop stage, then a :class:`StreamRegister`, so it never
    reaches the MAC's CRC. A byte is read only once its frame is whole, two or more cycles
    after it was offered for writing (frames have at least two bytes), so reads never meet
    the RAM's registered writes. The
    pipeline keeps a frame's bytes back to back.

    Ports
    -----
    w : stream of :data:`FrameByteLayout` in (``ready`` low only while the FIFO is within
        two bytes of full, as its registered fill level saw it two cycles before)
    r : stream of :data:`FrameByteLayout` out (``valid`` from the fourth cycle after a
        frame's last byte was written, then without a gap while ``ready`` is high until
        that frame's last byte is read)
    frames : out
        Whole frames stored (in the memory or the register slice).
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
        abits = (depth - 1).bit_length()
        m.submodules.storage = storage = FrameRam(depth)
        # Pointers one bit wider than the address (a full memory is not an empty one).
        write_ptr = Signal(abits + 1)
        read_ptr = Signal(abits + 1)
        complete_end = Signal(abits + 1)                  # just past the last whole frame
        level = Signal(range(depth + 1))
        full = Signal()
        m.submodules.output = output = StreamRegister(FrameByteLayout)
        wiring.connect(m, output.o, wiring.flipped(self.r))
        head = output.i

        # The read side is the memory's two-stage pipeline (its output register, then
        # flip-flops by the block RAM and a bank multiplexer), then the slice.
        read_valid = Signal()                             # the first stage holds a byte
        staged_valid = Signal()                           # the second stage holds one
        advance = ~staged_valid | head.ready
        # A byte may be read once its frame is whole (no memory output in this decision).
        available = read_ptr != complete_end
        pop = advance & available
        push = self.w.valid & self.w.ready
        m.d.comb += [
            self.w.ready.eq(~full),
            storage.write_addr.eq(write_ptr[:abits]),
            storage.write_data.eq(self.w.payload),
            storage.write_en.eq(push),
            storage.read_addr.eq(read_ptr[:abits]),
            storage.advance.eq(advance),
            head.valid.eq(staged_valid),
            head.payload.eq(storage.read_data),
        ]
        with m.If(advance):
            m.d.sync += [staged_valid.eq(read_valid),
                         read_valid.eq(available)]
        with m.If(push):
            m.d.sync += write_ptr.eq(write_ptr + 1)
            with m.If(self.w.payload.last):
                m.d.sync += complete_end.eq(write_ptr + 1)
        with m.If(pop):
            m.d.sync += read_ptr.eq(read_ptr + 1)
        # level, counted from the registered push and pop, and full registered from it: two
        # cycles late, so no read decision reaches either. Two bytes short of full count as
        # full, which is safe as the level rises by one a cycle at most (``depth - 1``
        # bytes are held at most).
        pushed, popped = Signal(), Signal()
        m.d.sync += [pushed.eq(push), popped.eq(pop), full.eq(level >= depth - 2)]
        with m.If(pushed & ~popped):
            m.d.sync += level.eq(level + 1)
        with m.Elif(popped & ~pushed):
            m.d.sync += level.eq(level - 1)
        # Whole frames held, counted where the last byte leaves the register slice.
        stored = push & self.w.payload.last
        taken = self.r.valid & self.r.ready & self.r.payload.last
        with m.If(stored & ~taken):
            m.d.sync += self.frames.eq(self.frames + 1)
        with m.Elif(taken & ~stored):
            m.d.sync += self.frames.eq(self.frames - 1)
        return m
