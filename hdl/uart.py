"""UART transmitter and receiver, 8N1."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.registers import ERROR_COUNTER_BITS
from spikeforge.firmware.wire import MIN_RX_DIVISOR

__all__ = ["UARTTransmitter", "UARTReceiver"]


class UARTTransmitter(wiring.Component):
    """Sends bytes as 8N1 frames (start bit, 8 data bits LSB first, stop bit).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (``SystemConfig.uart_divisor``); 1 or more.

    Ports
    -----
    i : stream of bytes in
        A byte accepted in cycle t has its start bit on ``tx`` from cycle t+1 for
        ``divisor`` cycles, then data and stop bits. ``ready`` rises again in the last cycle
        of the stop bit, so bytes offered back to back leave every ``10 * divisor`` cycles
        with no idle time between them.
    tx : out
        The serial line; idles high.
    """

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        if divisor < 1:
            raise ValueError(f"UART divisor must be at least 1, not {divisor!r}")
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        busy = Signal()
        shift = Signal(10, init=0x3FF)
        bits_left = Signal(range(11))
        div_count = Signal(range(divisor))

        last_cycle_of_stop_bit = (bits_left == 1) & (div_count == 0)
        m.d.comb += [
            self.i.ready.eq(~busy | last_cycle_of_stop_bit),
            self.tx.eq(~busy | shift[0]),
        ]
        with m.If(busy):
            with m.If(div_count == 0):
                m.d.sync += [
                    div_count.eq(divisor - 1),
                    shift.eq(Cat(shift[1:], Const(1, 1))),
                    bits_left.eq(bits_left - 1),
                ]
                with m.If(bits_left == 1):
                    m.d.sync += busy.eq(0)
            with m.Else():
                m.d.sync += div_count.eq(div_count - 1)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                busy.eq(1),
                shift.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                bits_left.eq(10),
                div_count.eq(divisor - 1),
            ]
        return m


class UARTReceiver(wiring.Component):
    """Receives 8N1 bytes from an asynchronous serial line.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`~spikeforge.firmware.wire.MIN_RX_DIVISOR` (3).

    The line passes a two-register synchronizer. A low level while idle is a start bit;
    taking its first low cycle as ``e``, bit k (0: start, 1-8: data LSB first, 9: stop) is
    sampled at cycle ``e + (divisor - 1) // 2 + k * divisor`` — the middle of the bit to
    within the one cycle the edge is uncertain. A start bit that is high again at its
    sample point is a glitch and ignored. After a good stop bit the receiver is idle at
    once (mid stop bit), so back-to-back bytes and a slightly fast sender are received.

    Ports
    -----
    rx : in
        The serial line; idles high.
    o : stream of bytes out
        A byte is offered from the cycle after its stop bit was sampled and held until
        taken; the consumer must take it within 9 bit times (the command decoder is busy
        for at most 23 cycles after a command's last byte, less than one byte time; keyed
        builds also while the flash stores a new epoch, once per open, ~0.1–3 ms: a byte
        sent meanwhile is lost and its command discarded, counted in COMMAND_ERRORS — the
        host waits for each reply, so it sends none).
    framing_errors : unsigned(16), out
        Bytes whose stop bit was low (wraps, as its register UART_FRAMING_ERRORS); such a
        byte is discarded, and the receiver waits for the line to go high before looking
        for the next start bit.
    """

    rx: In(1)
    o: Out(stream.Signature(8))
    framing_errors: Out(ERROR_COUNTER_BITS)

    def __init__(self, divisor: int):
        if divisor < MIN_RX_DIVISOR:
            raise ConfigError(
                f"the UART receiver needs at least {MIN_RX_DIVISOR} clock cycles per bit, not "
                f"{divisor!r}; lower the baud rate to clock_hz / {MIN_RX_DIVISOR} or less")
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)

        count = Signal(range(divisor))
        bit = Signal(range(10))
        shift = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += [count.eq((divisor - 1) // 2 - 1), bit.eq(0)]
                    m.next = "BITS"
            with m.State("BITS"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Else():
                    m.d.sync += [count.eq(divisor - 1), bit.eq(bit + 1)]
                    with m.If(bit == 0):
                        with m.If(line):
                            m.next = "IDLE"     # a glitch, not a start bit
                    with m.Elif(bit <= 8):
                        m.d.sync += shift.eq(Cat(shift[1:], line))
                    with m.Else():
                        with m.If(line):
                            m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                            m.next = "IDLE"
                        with m.Else():
                            m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
                            m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m
