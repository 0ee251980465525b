"""RGMII transmitter: GMII byte and enable to four data lines and a control line, DDR."""

from amaranth.hdl import C, Cat, ClockSignal, Module, Mux, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RGMIITransmitter"]


class RGMIITransmitter(wiring.Component):
    """Turns the MAC's byte per clock into RGMII's nibble per clock edge (125 MHz, DDR).

    ``txd`` carries bits 3..0 of ``tx_data`` after the rising edge of ``tx_clk`` and bits
    7..4 after the falling edge; ``tx_ctl`` carries ``tx_en`` after the rising edge and
    ``tx_en XOR tx_er`` after the falling edge (RGMII 2.0). ``tx_clk`` is the link clock,
    forwarded **in phase** with the data: the 90 degree skew the PHY needs to sample in
    the middle of each nibble comes from the PHY's internal TX delay (set over MDIO, or by
    the PHY's strap pins, by the board's set-up: the ButterStick's KSZ9031 and the
    Colorlight's B50612D both have one) or, per board, from a PLL output shifted by 90
    degrees driving the ``tx_clk`` buffer; never from this component.

    Two ways to build it:

    * ``pins`` given (a ``platform.request("eth_rgmii", 0, dir="-")`` resource): the
      outputs go through :class:`amaranth.lib.io.DDRBuffer` (on ECP5, ODDRX1F), ``tx_clk``
      through one with constant 1/0, so data and clock leave with the same delay. The
      ``txd``/``tx_ctl``/``tx_clk`` ports are then unused (held at 0).
    * ``pins=None`` (simulation): a behavioural DDR register pair. Both halves of the byte
      are registered at the rising edge and the port shows the rising-edge half while the
      clock is high, the falling-edge half while it is low (``Mux(ClockSignal(), rise,
      fall)``), so a simulator sees both edges exactly as the PHY does.

    Ports
    -----
    tx_data, tx_en, tx_er : in
        GMII transmit byte, enable and error, sampled at each rising edge.
    txd, tx_ctl, tx_clk : out
        The RGMII lines (simulation build only). A byte sampled at rising edge ``t`` is on
        the lines in cycle ``t`` + 1 (half a cycle later for its high nibble).
    """

    tx_data: In(8)
    tx_en: In(1)
    tx_er: In(1)
    txd: Out(4)
    tx_ctl: Out(1)
    tx_clk: Out(1)

    def __init__(self, pins=None):
        self._pins = pins
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        rise_data = Signal(4)
        fall_data = Signal(4)
        rise_ctl = Signal()
        fall_ctl = Signal()
        m.d.comb += [
            rise_data.eq(self.tx_data[:4]),
            fall_data.eq(self.tx_data[4:]),
            rise_ctl.eq(self.tx_en),
            fall_ctl.eq(self.tx_en ^ self.tx_er),
        ]
        if self._pins is not None:
            pins = self._pins
            m.submodules.txd = txd = io.DDRBuffer("o", pins.tx_data)
            m.submodules.tx_ctl = tx_ctl = io.DDRBuffer("o", pins.tx_ctl)
            m.submodules.tx_clk = tx_clk = io.DDRBuffer("o", pins.tx_clk)
            m.d.comb += [
                txd.o[0].eq(rise_data), txd.o[1].eq(fall_data),
                tx_ctl.o[0].eq(rise_ctl), tx_ctl.o[1].eq(fall_ctl),
                tx_clk.o[0].eq(C(1, 1)), tx_clk.o[1].eq(C(0, 1)),
            ]
            return m

        rise = Signal(5)
        fall = Signal(5)
        m.d.sync += [rise.eq(Cat(rise_data, rise_ctl)), fall.eq(Cat(fall_data, fall_ctl))]
        lines = Mux(ClockSignal(), rise, fall)
        m.d.comb += [
            self.txd.eq(lines[:4]),
            self.tx_ctl.eq(lines[4]),
            self.tx_clk.eq(ClockSignal()),
        ]
        return m
