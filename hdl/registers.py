"""Register bank generated from the register map in :mod:`spikeforge.firmware.registers`."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import REGISTERS, identity_values, reset_values

__all__ = ["RegisterBank", "RegisterBus"]


class RegisterBus(wiring.Signature):
    """A simple synchronous register bus, driven by the controller (the command decoder).

    ``w_en`` writes ``w_data`` to ``addr`` at the clock edge; ``r_data`` shows the register
    at ``addr`` one cycle after ``addr`` is presented. Unknown addresses read as 0 and
    ignore writes; writes to read-only registers are ignored.
    """

    def __init__(self):
        super().__init__({
            "addr": Out(8),
            "w_data": Out(32),
            "w_en": Out(1),
            "r_data": In(32),
        })


class RegisterBank(wiring.Component):
    """The device's control and status registers.

    Ports
    -----
    bus : :class:`RegisterBus`, in (the bank is the responder)
    <name> : one port per register of :data:`REGISTERS` (lower-case name) —
        ``rw`` registers are outputs holding the value written (reset value from
        :func:`~spikeforge.firmware.registers.reset_values`); registers of another sample
        source than ``config.source`` are absent;
        ``status`` registers are inputs the cores drive; ``const`` registers have no port,
        their values come from the configuration.
    """

    def __init__(self, config: SystemConfig):
        self._constants = identity_values(config)
        resets = reset_values(config)
        members = {"bus": In(RegisterBus())}
        self._registers = [reg for reg in REGISTERS if reg.present(config)]
        for reg in self._registers:
            if reg.access == "rw":
                members[reg.port_name] = Out(32, init=resets[reg.name])
            elif reg.access == "status":
                members[reg.port_name] = In(32)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        with m.Switch(self.bus.addr):
            for reg in self._registers:
                with m.Case(reg.address):
                    if reg.access == "const":
                        m.d.sync += self.bus.r_data.eq(self._constants[reg.name])
                    else:
                        m.d.sync += self.bus.r_data.eq(getattr(self, reg.port_name))
                    if reg.access == "rw":
                        with m.If(self.bus.w_en):
                            m.d.sync += getattr(self, reg.port_name).eq(self.bus.w_data)
            with m.Default():
                m.d.sync += self.bus.r_data.eq(0)
        return m
