"""Golden model of the register bank (:class:`spikeforge.hdl.registers.RegisterBank`)."""

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import REGISTERS, identity_values

__all__ = ["RegisterBankModel"]


class RegisterBankModel:
    """What the bank holds and answers: ``rw`` registers keep the low ``Register.width``
    bits of what was written (reset value first), ``const`` ones the configuration's
    values, ``status`` ones the low ``Register.width`` bits of what the cores drive;
    unmapped addresses read 0, and writes to anything but ``rw`` are ignored."""

    def __init__(self, config: SystemConfig):
        present = [r for r in REGISTERS if r.present(config)]
        self._by_address = {r.address: r for r in present}
        self._constants = identity_values(config)
        self._masks = {r.name: (1 << r.width(config)) - 1 for r in present}
        self.values = {r.name: r.reset_value(config) & self._masks[r.name]
                       for r in present if r.access == "rw"}

    def write(self, address: int, value: int) -> None:
        reg = self._by_address.get(address)
        if reg is not None and reg.access == "rw":
            self.values[reg.name] = value & self._masks[reg.name]

    def read(self, address: int, status: dict[str, int]) -> int:
        reg = self._by_address.get(address)
        if reg is None:
            return 0
        if reg.access == "const":
            return self._constants[reg.name]
        if reg.access == "status":
            return status[reg.name] & self._masks[reg.name]
        return self.values[reg.name]
