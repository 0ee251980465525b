"""Puts several sources of whole Ethernet frames on one frame stream, between frames only."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.errors import ConfigError

from .layouts import FrameByteLayout
from .pipeline import StreamRegister

__all__ = ["TxArbiter"]


class TxArbiter(wiring.Component):
    """``count`` streams of frames in, one out; a frame once begun keeps the output.

    Between frames the lowest-numbered input with a byte ready wins (give the small,
    rare frames — ARP and ping answers, control replies — the low numbers and the data
    datagrams the highest). As soon as an input is offered it is locked in until its
    ``last`` byte is taken. Each input enters, and the chosen bytes leave, through a
    :class:`StreamRegister`, so the inputs' ``ready`` and ``o`` come from flip-flops: the
    frame builders' state machines (and the wide header registers their ``ready``
    enables), the choice, and the FIFO behind are separate paths at 125 MHz.

    Ports
    -----
    inputs[k] : stream of :data:`FrameByteLayout` in
    o : stream of :data:`FrameByteLayout` out

    Latency two cycles; throughput one byte per cycle.
    """

    def __init__(self, count: int):
        if count < 1:
            raise ConfigError(f"TxArbiter needs at least one input, not {count}")
        self._count = count
        super().__init__({
            "inputs": In(stream.Signature(FrameByteLayout)).array(count),
            "o": Out(stream.Signature(FrameByteLayout)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.output = output = StreamRegister(FrameByteLayout)
        wiring.connect(m, output.o, wiring.flipped(self.o))
        chosen = output.i
        inputs = []
        for k, source in enumerate(self.inputs):
            register = StreamRegister(FrameByteLayout)
            m.submodules[f"input_{k}"] = register
            wiring.connect(m, wiring.flipped(source), register.i)
            inputs.append(register.o)
        busy = Signal()
        selected = Signal(range(self._count))
        choice = Signal(range(self._count))
        for k in reversed(range(self._count)):
            with m.If(inputs[k].valid):
                m.d.comb += choice.eq(k)
        current = Signal(range(self._count))
        m.d.comb += current.eq(selected)
        with m.If(~busy):
            m.d.comb += current.eq(choice)
        for k, source in enumerate(inputs):
            with m.If(current == k):
                m.d.comb += [
                    chosen.valid.eq(source.valid),
                    chosen.payload.eq(source.payload),
                    source.ready.eq(chosen.ready),
                ]
        taken_last = chosen.valid & chosen.ready & chosen.payload.last
        with m.If(taken_last):
            m.d.sync += busy.eq(0)
        with m.Elif(chosen.valid):
            m.d.sync += [busy.eq(1), selected.eq(current)]
        return m
