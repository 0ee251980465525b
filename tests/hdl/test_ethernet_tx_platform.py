"""The Ethernet TX chain elaborates on a real ECP5 board's RGMII pins (no toolchain run)."""

from amaranth.hdl import Elaboratable, Module
from amaranth_boards.butterstick import ButterStickPlatform

from spikeforge.hdl.ethernet.transmitter import EthernetTransmitter


class _Top(Elaboratable):
    def elaborate(self, platform):
        m = Module()
        pins = platform.request("eth_rgmii", 0, dir="-")
        m.submodules.tx = tx = EthernetTransmitter(extra_inputs=2, pins=pins)
        m.d.comb += tx.host_valid.eq(1)
        return m


def test_transmitter_drives_the_butterstick_rgmii_pins_through_ecp5_ddr_outputs():
    plan = ButterStickPlatform().build(_Top(), do_build=False)
    netlist = plan.files["top.il"]
    # Four data lines, tx_ctl and the forwarded tx_clk: one ODDRX1F each.
    assert netlist.count("ODDRX1F") == 6
    lpf = plan.files["top.lpf"]
    for pin in ("E15", "D15", "C15", "B16", "A18", "B19"):
        assert pin in lpf
