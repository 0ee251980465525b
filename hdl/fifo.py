"""A synchronous FIFO in block RAM with stream interfaces on both sides."""

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamFifo"]


class StreamFifo(wiring.Component):
    """First-in first-out buffer of ``depth`` words, ``depth`` rounded up to a power of two.

    Ports
    -----
    w : stream in
        ``ready`` is low only while the FIFO is full.
    r : stream out
        ``valid`` while not empty; ``payload`` is the oldest word. A word written in cycle t
        can be read from cycle t+1 (the read port is transparent to the write port).
    level : out
        Number of words held.

    One memory with a synchronous read port: maps to block RAM on FPGAs.
    """

    def __init__(self, shape, depth: int):
        self.depth = 1 << max(1, (depth - 1).bit_length())
        self._shape = shape
        super().__init__({
            "w": In(stream.Signature(shape)),
            "r": Out(stream.Signature(shape)),
            "level": Out(range(self.depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = storage = memory.Memory(
            shape=self._shape, depth=self.depth, init=[])
        wr = storage.write_port()
        rd = storage.read_port(transparent_for=(wr,))

        write_addr = Signal(range(self.depth))
        read_addr = Signal(range(self.depth))
        push = self.w.valid & self.w.ready
        pop = self.r.valid & self.r.ready

        m.d.comb += [
            self.w.ready.eq(self.level != self.depth),
            self.r.valid.eq(self.level != 0),
            wr.addr.eq(write_addr),
            wr.data.eq(self.w.payload),
            wr.en.eq(push),
            # Read the address that will be the head next cycle, so the head is always ready.
            rd.addr.eq(read_addr + pop),
            self.r.payload.eq(rd.data),
        ]
        with m.If(push):
            m.d.sync += write_addr.eq(write_addr + 1)
        with m.If(pop):
            m.d.sync += read_addr.eq(read_addr + 1)
        m.d.sync += self.level.eq(self.level + push - pop)
        return m
