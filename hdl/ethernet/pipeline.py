"""A register slice for streams: cuts every combinational path between its two sides."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamRegister"]


class StreamRegister(wiring.Component):
    """One pipeline stage for a stream: a two-entry FIFO built of flip-flops.

    ``i.ready`` and ``o.valid`` come straight from flip-flops, and ``i.payload`` goes
    straight into flip-flop data inputs (only their enables depend on the handshake), so
    no path through the slice is combinational: long ``valid``/``ready`` chains (an async
    FIFO's pointer logic into a frame builder's state machine, say) are cut in two, and a
    block RAM's slow output ends at a flip-flop. ``o.payload`` is one 2:1 multiplexer
    after the flip-flops. Words leave in order, none is lost or repeated.

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
        # Data needs no reset (nothing reads an entry before it is written): the flip-flops
        # then take the payload on their data inputs with only an enable.
        entries = [Signal.like(self.i.payload, name=f"entry_{k}", reset_less=True)
                   for k in range(2)]
        write_select = Signal()
        read_select = Signal()
        full = Signal()
        nonempty = Signal()
        push = self.i.valid & ~full
        pop = nonempty & self.o.ready
        m.d.comb += [
            self.i.ready.eq(~full),
            self.o.valid.eq(nonempty),
            self.o.payload.eq(Mux(read_select, entries[1], entries[0])),
        ]
        with m.If(push):
            m.d.sync += write_select.eq(~write_select)
            for k, entry in enumerate(entries):
                with m.If(write_select == k):
                    m.d.sync += entry.eq(self.i.payload)
        with m.If(pop):
            m.d.sync += read_select.eq(~read_select)
        with m.If(push & ~pop):
            m.d.sync += [full.eq(nonempty), nonempty.eq(1)]
        with m.Elif(pop & ~push):
            m.d.sync += [full.eq(0), nonempty.eq(full)]
        return m
