"""The board-independent acquisition system: source -> framer -> UART, with the
conditioning and detection path (source -> conditioner -> detector -> framer events)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import register

from .conditioner import Conditioner
from .detector import Detector
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
        wiring.connect(m, framer.o, uart.i)
        if not config.detector.enabled:
            wiring.connect(m, source.o, framer.i)
            m.d.comb += framer.events.valid.eq(0)
        else:
            self._detection(m, source, framer, bank)
        m.d.comb += bank.event_frames_sent.eq(framer.event_frames_sent)
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

    def _detection(self, m, source, framer, bank):
        """Source -> conditioner -> detector -> framer events, with the detection registers."""
        config = self.config
        m.submodules.conditioner = conditioner = Conditioner(config)
        m.submodules.detector = detector = Detector(config)

        # The source feeds the framer (raw DATA) and the conditioner; both are always ready
        # (the detector never stalls the conditioner), so the fan-out never stalls.
        m.d.comb += [
            framer.i.payload.eq(source.o.payload),
            conditioner.i.payload.eq(source.o.payload),
            framer.i.valid.eq(source.o.valid),
            conditioner.i.valid.eq(source.o.valid),
            source.o.ready.eq(framer.i.ready & conditioner.i.ready),
        ]
        wiring.connect(m, conditioner.o, detector.i)
        wiring.connect(m, detector.o, framer.events)
        k_write = (self.registers.w_en
                   & (self.registers.addr == register("DETECT_K").address))
        m.d.comb += [
            detector.polarity.eq(bank.detect_polarity),
            detector.dead_samples.eq(bank.detect_dead_samples),
            detector.snippet_pre.eq(bank.detect_snippet_pre),
            detector.snippet_post.eq(bank.detect_snippet_post),
            detector.neo.eq(bank.detect_neo[0]),
            detector.k_channel.eq(bank.detect_k_channel),
            detector.k_value.eq(self.registers.w_data),
            detector.k_write.eq(k_write),
            bank.events_emitted.eq(detector.events_emitted),
            bank.events_dropped.eq(detector.events_dropped),
        ]
