"""RGMII receiver: the PHY's DDR nibbles to one GMII byte per clock."""

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RGMIIReceiver"]


class RGMIIReceiver(wiring.Component):
    """Turns RGMII receive pins into GMII-style bytes, one per cycle of its clock domain.

    RGMII at 1000 Mb/s: ``rxd[3:0]`` carries a byte's low nibble at the rising edge of the
    receive clock and its high nibble at the falling edge; ``rx_ctl`` carries ``rx_dv`` at the
    rising edge and ``rx_dv XOR rx_er`` at the falling edge. The component runs in ``sync``
    (rename it to the 125 MHz receive clock's domain, which is ``rx_clk``).

    Parameters
    ----------
    pins : resource or None
        On a board, the ``eth_rgmii`` resource requested by the integrator with
        ``dir={"rx_data": "-", "rx_ctl": "-", ...}`` (amaranth-boards subsignals ``rx_data``
        and ``rx_ctl``; ``rx_clk`` is the domain's clock, wired by the integrator). The pins
        are captured by :class:`amaranth.lib.io.DDRBuffer` (IDDRX1F on ECP5), i[0] the rising
        edge, i[1] the falling edge of the same cycle. ``None`` (simulation): the component has
        the pins as ports ``rxd`` and ``rx_ctl`` and samples them itself, at the rising edge in
        ``sync`` and at the falling edge in a local negative-edge domain on the same clock
        (Verilator handles ``always @(negedge clk)``), so a bench drives real pin waveforms:
        the low nibble set before the rising edge, the high nibble before the falling edge.

    Ports
    -----
    rxd, rx_ctl : in (simulation only)
        The RGMII pins.
    rx_data, rx_dv, rx_er : out
        The byte whose nibbles arrived at the rising and falling edges of cycle t, shown
        from cycle t+1 in simulation (both halves meet at the next rising edge in the output
        register), from cycle t+2 on ECP5 (the IDDR's own cycle, then the output register).
        Nothing downstream depends on this latency. ``rx_er`` is high for a
        byte the PHY marked as an error (``rx_dv`` high) or for carrier events outside a frame
        (``rx_dv`` low); the MAC uses it only inside a frame.
    """

    def __init__(self, pins=None):
        self._pins = pins
        members = {"rx_data": Out(8), "rx_dv": Out(1), "rx_er": Out(1)}
        if pins is None:
            members |= {"rxd": In(4), "rx_ctl": In(1)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        rise_data = Signal(4)
        fall_data = Signal(4)
        rise_ctl = Signal()
        fall_ctl = Signal()
        if self._pins is None:
            m.domains.rgmii_fall = fall = ClockDomain("rgmii_fall", clk_edge="neg", local=True,
                                                      reset_less=True)
            m.d.comb += fall.clk.eq(ClockSignal("sync"))
            m.d.sync += [rise_data.eq(self.rxd), rise_ctl.eq(self.rx_ctl)]
            # Captured at the falling edge that follows the rising one: same byte.
            m.d.rgmii_fall += [fall_data.eq(self.rxd), fall_ctl.eq(self.rx_ctl)]
        else:
            m.submodules.rx_data_ddr = data_ddr = io.DDRBuffer("i", self._pins.rx_data)
            m.submodules.rx_ctl_ddr = ctl_ddr = io.DDRBuffer("i", self._pins.rx_ctl)
            m.d.comb += [
                rise_data.eq(data_ddr.i[0]), fall_data.eq(data_ddr.i[1]),
                rise_ctl.eq(ctl_ddr.i[0]), fall_ctl.eq(ctl_ddr.i[1]),
            ]
        m.d.sync += [
            self.rx_data.eq(Cat(rise_data, fall_data)),
            self.rx_dv.eq(rise_ctl),
            self.rx_er.eq(rise_ctl ^ fall_ctl),
        ]
        return m
