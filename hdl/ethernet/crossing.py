"""A clock-domain crossing FIFO for streams whose full and empty flags are flip-flops."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.errors import ConfigError

__all__ = ["StreamCrossing"]


def _gray(value):
    return value ^ value[1:]


class StreamCrossing(wiring.Component):
    """An asynchronous FIFO (Gray-coded pointers through two-flip-flop synchronizers, the
    words in distributed RAM) built for 125 MHz on an ECP5.

    Unlike :class:`amaranth.lib.fifo.AsyncFIFO`, whose ``r_rdy`` and ``w_rdy`` are
    comparisons of a synchronized pointer that then choose the next RAM address through
    an adder, here both flags are registers, each computed for both outcomes of the
    cycle's transfer from flip-flops and chosen by the transfer at the very end, and the
    next addresses are kept registered (``pointer + 1``), so a transfer only picks between
    two registers. The flags are conservative by at most one cycle (the far pointer is
    taken one cycle older): never a word too many.

    Reset: each side's pointers are reset by its own domain. Both sides must leave reset
    together, or the writing side leave it last (true of the Ethernet link's domains: the
    ``sync`` and ``link`` PLL outputs leave reset together, ``eth_rx`` waits for the PHY);
    a side reset alone while the other runs would lose the pointers' agreement.

    Ports
    -----
    i : stream in (domain ``w_domain``), ``ready`` low while full
    o : stream out (domain ``r_domain``), ``valid`` while a word is stored
        A word written in cycle t of ``w_domain`` is offered from about 4 cycles of
        ``r_domain`` later.
    """

    def __init__(self, shape, depth: int, w_domain: str, r_domain: str):
        if depth < 2 or depth & (depth - 1):
            raise ConfigError(f"StreamCrossing depth must be a power of two of at least 2, "
                              f"not {depth}")
        self._shape, self._depth = shape, depth
        self._w, self._r = w_domain, r_domain
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        bits = (self._depth - 1).bit_length() + 1
        top = 0b11 << (bits - 2)                      # a full FIFO's Gray difference

        m.submodules.storage = storage = Memory(shape=self._shape, depth=self._depth,
                                                init=[])
        w_port = storage.write_port(domain=self._w)
        r_port = storage.read_port(domain=self._r, transparent_for=())

        # -- write side ----------------------------------------------------------------------
        produce = Signal(bits)
        produce_next = Signal(bits, init=1)           # produce + 1
        produce_gray = Signal(bits)
        consume_seen = Signal(bits)                   # consume's Gray code, synchronized
        full = Signal()
        do_write = self.i.valid & ~full
        m.d.comb += [
            self.i.ready.eq(~full),
            w_port.addr.eq(produce[:-1]),
            w_port.data.eq(self.i.payload),
            w_port.en.eq(do_write),
        ]
        full_after_write = _gray(produce_next) == (consume_seen ^ top)
        full_as_is = produce_gray == (consume_seen ^ top)
        m.d[self._w] += full.eq(Mux(do_write, full_after_write, full_as_is))
        with m.If(do_write):
            m.d[self._w] += [produce.eq(produce_next), produce_next.eq(produce_next + 1),
                             produce_gray.eq(_gray(produce_next))]

        # -- read side -----------------------------------------------------------------------
        consume = Signal(bits)
        consume_next = Signal(bits, init=1)           # consume + 1
        consume_gray = Signal(bits)
        produce_seen = Signal(bits)                   # produce's Gray code, synchronized
        empty = Signal(init=1)
        do_read = self.o.ready & ~empty
        m.d.comb += [
            self.o.valid.eq(~empty),
            # The head of the next cycle: one of two registers.
            r_port.addr.eq(Mux(do_read, consume_next, consume)[:-1]),
            r_port.en.eq(1),
            self.o.payload.eq(r_port.data),
        ]
        empty_after_read = _gray(consume_next) == produce_seen
        empty_as_is = consume_gray == produce_seen
        m.d[self._r] += empty.eq(Mux(do_read, empty_after_read, empty_as_is))
        with m.If(do_read):
            m.d[self._r] += [consume.eq(consume_next), consume_next.eq(consume_next + 1),
                             consume_gray.eq(_gray(consume_next))]

        m.submodules.produce_sync = FFSynchronizer(produce_gray, produce_seen,
                                                   o_domain=self._r)
        m.submodules.consume_sync = FFSynchronizer(consume_gray, consume_seen,
                                                   o_domain=self._w)
        return m
