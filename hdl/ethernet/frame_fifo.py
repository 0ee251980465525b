"""Store-and-forward buffer of whole Ethernet frames, so the MAC never waits inside one."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..fifo import StreamFifo
from .layouts import FrameByteLayout

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

    Ports
    -----
    w : stream of :data:`FrameByteLayout` in (``ready`` low only while full)
    r : stream of :data:`FrameByteLayout` out (``valid`` from the cycle after a frame's last
        byte was written, until that frame's last byte is read)
    frames : out
        Whole frames stored.
    """

    def __init__(self, depth: int = 4096):
        self._depth = depth
        super().__init__({
            "w": In(stream.Signature(FrameByteLayout)),
            "r": Out(stream.Signature(FrameByteLayout)),
            "frames": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = StreamFifo(FrameByteLayout, self._depth)
        wiring.connect(m, wiring.flipped(self.w), fifo.w)
        whole = Signal()
        m.d.comb += [
            whole.eq(self.frames != 0),
            self.r.valid.eq(fifo.r.valid & whole),
            self.r.payload.eq(fifo.r.payload),
            fifo.r.ready.eq(self.r.ready & whole),
        ]
        stored = fifo.w.valid & fifo.w.ready & fifo.w.payload.last
        taken = self.r.valid & self.r.ready & self.r.payload.last
        m.d.sync += self.frames.eq(self.frames + stored - taken)
        return m
