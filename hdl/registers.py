"""Register bank generated from the register map in :mod:`spikeforge.firmware.registers`."""

from amaranth.hdl import Module, Signal
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
        ``rw`` registers are 32-bit outputs holding the value written in their low
        :meth:`~spikeforge.firmware.registers.Register.width` bits (zero above; reset value
        from :func:`~spikeforge.firmware.registers.reset_values`); registers of another
        sample source than ``config.source`` are absent;
        ``status`` registers are 32-bit inputs the cores drive, of which the low
        :meth:`~spikeforge.firmware.registers.Register.width` bits are read (a 16-bit error
        counter wraps; yosys removes the bits of the core's counter that nothing reads);
        ``const`` registers have no port,
        their values come from the configuration.

    Narrow ``rw`` registers are what keeps the bank small: every stored bit is a flip-flop
    and an input of the read mux (about a LUT4 per input bit on the iCE40).
    """

    def __init__(self, config: SystemConfig):
        self._config = config
        self._constants = identity_values(config)
        self._resets = reset_values(config)
        members = {"bus": In(RegisterBus())}
        self._registers = [reg for reg in REGISTERS if reg.present(config)]
        for reg in self._registers:
            if reg.access == "rw":
                members[reg.port_name] = Out(32, init=self._stored_reset(reg))
            elif reg.access == "status":
                members[reg.port_name] = In(32)
        super().__init__(members)

    def _stored_reset(self, reg) -> int:
        return self._resets[reg.name] & ((1 << reg.width(self._config)) - 1)

    def elaborate(self, platform):
        m = Module()
        stored = {}
        for reg in self._registers:
            if reg.access == "rw":
                # Only the register's width is stored (and read back).
                stored[reg.name] = Signal(reg.width(self._config), name=f"{reg.port_name}_stored",
                                          init=self._stored_reset(reg))
                m.d.comb += getattr(self, reg.port_name).eq(stored[reg.name])
        with m.Switch(self.bus.addr):
            for reg in self._registers:
                with m.Case(reg.address):
                    if reg.access == "const":
                        m.d.sync += self.bus.r_data.eq(self._constants[reg.name])
                    elif reg.access == "status":
                        # The low bits only: a narrow counter's core keeps no more.
                        width = reg.width(self._config)
                        m.d.sync += self.bus.r_data.eq(getattr(self, reg.port_name)[:width])
                    else:
                        with m.If(self.bus.w_en):
                            m.d.sync += stored[reg.name].eq(self.bus.w_data)
                        m.d.sync += self.bus.r_data.eq(stored[reg.name])
            with m.Default():
                m.d.sync += self.bus.r_data.eq(0)
        return m
