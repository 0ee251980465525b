"""UART transmitter, 8N1."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UARTTransmitter"]


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
