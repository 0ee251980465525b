"""The top the virtual board compiles: the acquisition system with an internal power-on
reset, so that no logic depends on a reset input.

Verilator evaluates everything that depends on a top-level input in its "input combo"
region on every ``eval()`` (twice per clock cycle), and with ``rst`` an input that is the
reset multiplexer of every register in the design. With the reset made inside (a counter
in a reset-less domain on the same clock), the logic runs once per rising edge only. The
other ports of :class:`~spikeforge.hdl.top.AcquisitionSystem` pass through unchanged, with
the same Verilog names.

With the Ethernet link (``config.link == "ethernet"``) the top also has the clock inputs
``link_clk`` (the 125 MHz GMII transmit domain ``link``) and ``eth_rx_clk`` (the receive
domain ``eth_rx``), each domain with its own power-on reset of the same length.
"""

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib.wiring import In

from spikeforge.firmware.config import SystemConfig
from spikeforge.hdl.top import AcquisitionSystem

__all__ = ["VirtualBoardTop", "POWER_ON_RESET_CYCLES"]

#: Rising clock edges the design is held in reset after power-up (the harness clocks these
#: before its cycle 0, as it did when it drove ``rst`` itself).
POWER_ON_RESET_CYCLES = 4


class VirtualBoardTop(Elaboratable):
    def __init__(self, config: SystemConfig, system=None):
        """``system``: the design to wrap (default: the acquisition system of ``config``;
        tests pass a stand-in with the same ports)."""
        self.system = AcquisitionSystem(config) if system is None else system
        self.clk = Signal()
        self.ports: list[Signal] = [self.clk]
        self._domains = ["sync"]
        if config.link == "ethernet":
            self._domains += ["link", "eth_rx"]
            self.link_clk = Signal(name="link_clk")
            self.eth_rx_clk = Signal(name="eth_rx_clk")
            self.ports += [self.link_clk, self.eth_rx_clk]
        self._passthrough = []
        for path, member, value in self.system.signature.flatten(self.system):
            port = Signal.like(value, name="__".join(map(str, path)))
            self.ports.append(port)
            self._passthrough.append((member.flow == In, port, value))

    def elaborate(self, platform):
        m = Module()
        for name in self._domains:
            clock = self.clk if name == "sync" else getattr(self, f"{name}_clk")
            por = f"{name}_por"
            m.domains += [ClockDomain(name), ClockDomain(por, reset_less=True)]
            m.d.comb += [ClockSignal(name).eq(clock), ClockSignal(por).eq(clock)]
            count = Signal(range(POWER_ON_RESET_CYCLES + 1), name=f"{name}_por_count")
            with m.If(count != POWER_ON_RESET_CYCLES):
                m.d[por] += count.eq(count + 1)
            m.d.comb += ResetSignal(name).eq(count != POWER_ON_RESET_CYCLES)
        m.submodules.system = self.system
        for is_input, port, value in self._passthrough:
            m.d.comb += value.eq(port) if is_input else port.eq(value)
        return m
