"""The board-independent acquisition system: source -> framer -> UART."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig

from .framer import Framer
from .registers import RegisterBank, RegisterBus
from .source import TestSource
from .uart import UARTTransmitter

__all__ = ["AcquisitionSystem"]

#: How long the overflow indicator stays on after a dropped frame, in seconds.
OVERFLOW_HOLD_S = 0.125


class AcquisitionSystem(wiring.Component):
    """Everything between the sample source and the serial line, for one configuration.

    Ports
    -----
    uart_tx : out
        8N1 serial line to the host at ``config.baud``; idles high.
    streaming : out
        High while the stream is enabled (for a status LED).
    overflow : out
        High for 125 ms after a frame was dropped because the link was too slow.
    registers : :class:`RegisterBus`, in
        Access to the register map for a controller (the UART command decoder of a later
        capability). Tie ``w_en`` low when there is none.
    """

    uart_tx: Out(1, init=1)
    streaming: Out(1)
    overflow: Out(1)
    registers: In(RegisterBus())

    def __init__(self, config: SystemConfig):
        self.config = config
        super().__init__()

    def elaborate(self, platform):
        config = self.config
        m = Module()
        m.submodules.source = source = TestSource(config)
        m.submodules.framer = framer = Framer(config)
        m.submodules.uart = uart = UARTTransmitter(config.uart_divisor)
        m.submodules.bank = bank = RegisterBank(config)

        wiring.connect(m, source.o, framer.i)
        wiring.connect(m, framer.o, uart.i)
        wiring.connect(m, wiring.flipped(self.registers), bank.bus)
        m.d.comb += [
            self.uart_tx.eq(uart.tx),
            framer.enable.eq(bank.stream_enable[0]),
            self.streaming.eq(bank.stream_enable[0]),
            bank.frames_sent.eq(framer.frames_sent),
            bank.frames_dropped.eq(framer.frames_dropped),
            bank.source_overruns.eq(source.overruns),
            bank.sweeps.eq(source.sweep),
        ]

        hold_cycles = int(config.clock_hz * OVERFLOW_HOLD_S)
        hold = Signal(range(hold_cycles + 1))
        last_dropped = Signal(32)
        m.d.sync += last_dropped.eq(framer.frames_dropped)
        with m.If(framer.frames_dropped != last_dropped):
            m.d.sync += hold.eq(hold_cycles)
        with m.Elif(hold != 0):
            m.d.sync += hold.eq(hold - 1)
        m.d.comb += self.overflow.eq(hold != 0)
        return m
