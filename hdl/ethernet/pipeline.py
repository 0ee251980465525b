"""A register slice for streams: cuts every combinational path between its two sides."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamRegister"]


class StreamRegister(wiring.Component):
    """One pipeline stage for a stream, with a skid entry so it still moves a word per cycle.

    ``o.valid`` and ``o.payload`` come straight from flip-flops, and so does ``i.ready``
    (high while the skid entry is empty): no path through the slice is combinational, so
    long ``valid``/``ready`` chains (an async FIFO's pointer logic into a frame builder's
    state machine, say) are cut in two. Words leave in order, none is lost or repeated.

    Ports
    -----
    i : stream in (``shape``)
    o : stream out (``shape``)

    Latency: a word taken at ``i`` in cycle t is offered at ``o`` from cycle t+1.
    Throughput: one word per cycle while ``o.ready`` stays high; it holds two words at most.
    """

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        skid = Signal.like(self.i.payload)
        skid_valid = Signal()
        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(self.o.ready | ~self.o.valid):
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_valid):
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m
