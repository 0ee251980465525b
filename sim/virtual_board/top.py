"""The top the virtual board compiles: the acquisition system with an internal power-on
reset, so that no logic depends on a reset input.

Verilator evaluates everything that depends on a top-level input in its "input combo"
region on every ``eval()`` (twice per clock cycle), and with ``rst`` an input that is the
reset multiplexer of every register in the design. With the reset made inside (a counter
in a reset-less domain on the same clock), the logic runs once per rising edge only. The
other ports of :class:`~spikeforge.hdl.top.AcquisitionSystem` pass through unchanged, with
the same Verilog names.
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
    def __init__(self, config: SystemConfig):
        self.system = AcquisitionSystem(config)
        self.clk = Signal()
        self.ports: list[Signal] = [self.clk]
        self._passthrough = []
        for path, member, value in self.system.signature.flatten(self.system):
            port = Signal.like(value, name="__".join(map(str, path)))
            self.ports.append(port)
            self._passthrough.append((member.flow == In, port, value))

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True)
        m.d.comb += [ClockSignal("sync").eq(self.clk), ClockSignal("por").eq(self.clk)]
        count = Signal(range(POWER_ON_RESET_CYCLES + 1))
        with m.If(count != POWER_ON_RESET_CYCLES):
            m.d.por += count.eq(count + 1)
        m.d.comb += ResetSignal("sync").eq(count != POWER_ON_RESET_CYCLES)
        m.submodules.system = self.system
        for is_input, port, value in self._passthrough:
            m.d.comb += value.eq(port) if is_input else port.eq(value)
        return m
