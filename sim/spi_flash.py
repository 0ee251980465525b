"""A SPI NOR flash part, pure Python, driven pin level by pin level (no simulator needed).

:class:`SpiFlash` is the subset of a 25-series NOR part (Winbond W25Q, Macronix MX25, ...)
that the epoch store (:mod:`spikeforge.firmware.epoch_store`) uses, with the checks a bench
needs. Feed it the levels of CS#, SCK and COPI once per sample (e.g. every clock cycle of the
design under test) through :meth:`SpiFlash.step`; it returns the CIPO level to drive.

* SPI mode 0 only: SCK idles low, COPI is sampled on SCK's rising edge, CIPO changes after
  SCK's falling edge (the first bit of a reply after the falling edge that ends the last
  command/address bit). While CS# is high CIPO reads 1 (a pulled-up, released line).
* Commands: 0xAB release from deep power-down, 0x06 WREN, 0x04 WRDI, 0x05 RDSR (WIP bit 0,
  WEL bit 1; status bytes repeat while CS# stays low), 0x03 READ (24-bit address, streams,
  wraps at the end of the array), 0x02 PAGE PROGRAM (needs WEL; 24-bit address then data
  bytes, ANDed into the array when CS# rises; the address wraps inside its 256-byte page as
  real parts do; then WIP stays set for ``busy_polls`` status bytes and ``busy_sck_cycles``
  SCK rising edges, and WEL clears when WIP does).
* Faults: ``write_protected`` (programs are accepted but change nothing; WEL clears),
  ``stuck_busy`` (WIP never clears after a program), ``powered_down`` (the part starts in deep
  power-down and ignores everything but 0xAB), ``wake_steps`` (steps after 0xAB before the
  part answers, tRES1).
* Protocol checks, kept in :attr:`SpiFlash.violations` (a bench asserts it stays empty): CS#
  falling or rising with SCK high, SCK moving with CS# high, COPI changing while SCK is high,
  CS# rising mid-byte, an unknown opcode, a command while powered down, too early after
  0xAB or while WIP is set (except RDSR), a PAGE PROGRAM without WREN or without data, a
  1-byte command with extra bytes.
"""

from dataclasses import dataclass, field

from spikeforge.firmware.epoch_store import (
    OP_PAGE_PROGRAM,
    OP_READ,
    OP_READ_STATUS,
    OP_RELEASE_POWER_DOWN,
    OP_WRITE_DISABLE,
    OP_WRITE_ENABLE,
    PAGE_BYTES,
    STATUS_WEL,
    STATUS_WIP,
)
from spikeforge.firmware.errors import ConfigError

__all__ = ["SpiFlash", "FlashCommand", "spi_transfer", "DEFAULT_SIZE"]

#: 4 MiB: a 32 Mbit part (the region's 24-bit address lands in its top 64 KiB).
DEFAULT_SIZE = 4 << 20

_ONE_BYTE_OPS = (OP_RELEASE_POWER_DOWN, OP_WRITE_ENABLE, OP_WRITE_DISABLE)
_KNOWN_OPS = _ONE_BYTE_OPS + (OP_READ_STATUS, OP_READ, OP_PAGE_PROGRAM)


@dataclass(frozen=True)
class FlashCommand:
    """One CS#-low period as the part saw it: the bytes it received (opcode first) and
    whether it carried it out (False: ignored, with a violation or a fault)."""

    received: bytes
    carried_out: bool

    @property
    def opcode(self) -> int | None:
        return self.received[0] if self.received else None


@dataclass
class SpiFlash:
    """The part. ``memory`` is the array (``size`` bytes, erased to 0xFF unless given)."""

    size: int = DEFAULT_SIZE
    busy_polls: int = 2
    busy_sck_cycles: int = 0
    write_protected: bool = False
    stuck_busy: bool = False
    powered_down: bool = False
    wake_steps: int = 0
    memory: bytearray = field(default_factory=bytearray)
    violations: list[str] = field(default_factory=list)
    commands: list[FlashCommand] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size < PAGE_BYTES or self.size & (self.size - 1) or self.size > 1 << 24:
            raise ConfigError(f"size must be a power of two of {PAGE_BYTES} bytes to 16 MiB "
                              f"(24-bit addresses), not {self.size!r}")
        if not self.memory:
            self.memory = bytearray(b"\xff" * self.size)
        elif len(self.memory) != self.size:
            raise ConfigError(f"memory has {len(self.memory)} bytes, the part {self.size}: "
                              "give an image of the part's size (or load() a region)")
        self.cipo = 1
        self._starts_powered_down = self.powered_down
        self.wel = False
        self._busy = False
        self._polls_left = 0
        self._sck_left = 0
        self._wake_left = 0
        self._cs_n, self._sck, self._copi = 1, 0, 0
        self._steps = 0
        self._clear_frame()

    # -- the array ------------------------------------------------------------------------

    def load(self, address: int, data: bytes) -> None:
        """Put ``data`` into the array at ``address`` (provisioning, not a program); the
        address bits above the part's size are ignored, as the part does."""
        address = address % (1 << 24) % self.size
        if address < 0 or address + len(data) > self.size:
            raise ConfigError(f"{len(data)} bytes at {address:#x} do not fit a "
                              f"{self.size:#x}-byte part")
        self.memory[address:address + len(data)] = data

    def read(self, address: int, length: int) -> bytes:
        """``length`` bytes of the array from ``address`` (its bits above the part's size
        ignored, as the part does; no wrap at the array's end)."""
        address %= self.size
        return bytes(self.memory[address:address + length])

    @property
    def status(self) -> int:
        return (STATUS_WIP if self._busy else 0) | (STATUS_WEL if self.wel else 0)

    @property
    def programs(self) -> list[FlashCommand]:
        """The PAGE PROGRAM commands the part carried out."""
        return [c for c in self.commands if c.opcode == OP_PAGE_PROGRAM and c.carried_out]

    def power_cycle(self, *, stuck_busy: bool = False) -> None:
        """Power the part off and on: the array stays, WEL, WIP and a frame in progress do
        not; it starts in deep power-down if ``powered_down`` was asked for at first."""
        self.stuck_busy = stuck_busy
        self.wel = False
        self._busy = False
        self._polls_left = self._sck_left = self._wake_left = 0
        self.powered_down = self._starts_powered_down
        self._cs_n, self._sck, self._copi = 1, 0, 0
        self.cipo = 1
        self._clear_frame()

    # -- pins -----------------------------------------------------------------------------

    def step(self, cs_n: int, sck: int, copi: int) -> int:
        """Take the pin levels of one sample; return the CIPO level to drive from now on."""
        cs_n, sck, copi = int(cs_n) & 1, int(sck) & 1, int(copi) & 1
        self._steps += 1
        if self._wake_left:
            self._wake_left -= 1
        if cs_n != self._cs_n:
            if sck or self._sck:
                self._violate(f"CS# {'rose' if cs_n else 'fell'} with SCK high "
                              "(mode 0: SCK idles low)")
            if cs_n:
                self._end_frame()
            else:
                self._begin_frame()
        elif not cs_n:
            if self._sck and sck and copi != self._copi:
                self._violate("COPI changed while SCK was high (mode 0 samples on the rise)")
            if sck and not self._sck:
                self._rise(copi)
            elif self._sck and not sck:
                self._fall()
        elif sck != self._sck:
            self._violate("SCK moved while CS# was high")
        self._cs_n, self._sck, self._copi = cs_n, sck, copi
        if cs_n:
            self.cipo = 1
        return self.cipo

    def _violate(self, what: str) -> None:
        self.violations.append(f"step {self._steps}: {what}")

    def _clear_frame(self) -> None:
        self._received = bytearray()
        self._in_byte = 0
        self._in_bits = 0
        self._out_byte = 0
        self._out_bits = 0
        self._read_address: int | None = None
        self._ignored = False

    def _begin_frame(self) -> None:
        self._clear_frame()
        if self._wake_left:
            self._violate(f"command {self._wake_left} steps too early after release from "
                          "power-down (tRES1)")
            self._ignored = True

    def _rise(self, copi: int) -> None:
        if self._sck_left:
            self._sck_left -= 1
            self._settle()
        self._in_byte = (self._in_byte << 1 | copi) & 0xFF
        self._in_bits += 1
        if self._in_bits == 8:
            self._in_bits = 0
            self._received.append(self._in_byte)
            self._on_byte()

    def _on_byte(self) -> None:
        if len(self._received) == 4 and self._received[0] == OP_READ:
            self._read_address = int.from_bytes(self._received[1:4], "big") % self.size
        if len(self._received) != 1:
            return
        opcode = self._received[0]
        if opcode not in _KNOWN_OPS:
            self._violate(f"unknown opcode {opcode:#04x}")
            self._ignored = True
        elif self.powered_down and opcode != OP_RELEASE_POWER_DOWN:
            self._violate(f"opcode {opcode:#04x} while in deep power-down (send 0xAB first)")
            self._ignored = True
        elif self._busy and opcode != OP_READ_STATUS:
            self._violate(f"opcode {opcode:#04x} while a program is in progress (WIP=1)")
            self._ignored = True

    def _fall(self) -> None:
        if self._out_bits == 0:
            nxt = self._next_output()
            if nxt is None:
                return
            self._out_byte, self._out_bits = nxt, 8
        self._out_bits -= 1
        self.cipo = self._out_byte >> self._out_bits & 1

    def _next_output(self) -> int | None:
        if self._ignored or not self._received or self._in_bits:
            return None
        opcode = self._received[0]
        if opcode == OP_READ_STATUS:
            value = self.status
            if self._busy and self._polls_left:
                self._polls_left -= 1
                self._settle()
            return value
        if opcode == OP_READ and self._read_address is not None:
            value = self.memory[self._read_address]
            self._read_address = (self._read_address + 1) % self.size
            return value
        return None

    def _settle(self) -> None:
        if self._busy and not self.stuck_busy and not self._polls_left and not self._sck_left:
            self._busy = False
            self.wel = False

    def _end_frame(self) -> None:
        received = bytes(self._received)
        carried_out = False
        if self._in_bits:
            self._violate(f"CS# rose after {self._in_bits} bits of a byte (command ignored)")
        elif received and not self._ignored:
            carried_out = self._execute(received)
        if received:
            self.commands.append(FlashCommand(received, carried_out))
        self._received = bytearray()

    def _execute(self, received: bytes) -> bool:
        opcode = received[0]
        if opcode in _ONE_BYTE_OPS and len(received) != 1:
            self._violate(f"opcode {opcode:#04x} with {len(received) - 1} extra bytes "
                          "(ignored)")
            return False
        if opcode == OP_RELEASE_POWER_DOWN:
            self.powered_down = False
            self._wake_left = self.wake_steps
        elif opcode == OP_WRITE_ENABLE:
            self.wel = True
        elif opcode == OP_WRITE_DISABLE:
            self.wel = False
        elif opcode == OP_PAGE_PROGRAM:
            return self._program(received)
        return True

    def _program(self, received: bytes) -> bool:
        if not self.wel:
            self._violate("PAGE PROGRAM without WREN (WEL=0): not programmed")
            return False
        if len(received) < 5:
            self._violate(f"PAGE PROGRAM with {len(received)} bytes (opcode, 3 address, at "
                          "least one data byte): not programmed")
            self.wel = False
            return False
        address = int.from_bytes(received[1:4], "big") % self.size
        if self.write_protected:
            self.wel = False
            return True
        page = address - address % PAGE_BYTES
        data = received[4:]
        if len(data) > PAGE_BYTES:
            data = data[-PAGE_BYTES:]       # real parts keep the last 256 bytes
        for k, value in enumerate(data):
            at = page + (address - page + k) % PAGE_BYTES
            self.memory[at] &= value
        self._busy = True
        self._polls_left = self.busy_polls
        self._sck_left = self.busy_sck_cycles
        self._settle()
        return True


def spi_transfer(flash: SpiFlash, out: bytes, read: int = 0) -> bytes:
    """Drive one CS#-low period on ``flash`` as a mode-0 host would: send ``out``, then
    clock ``read`` more bytes (COPI low) and return them. Two samples per SCK phase."""
    received = bytearray()
    flash.step(1, 0, 0)
    flash.step(0, 0, 0)
    for byte in bytes(out) + bytes(read):
        value = 0
        for bit in range(7, -1, -1):
            copi = byte >> bit & 1
            flash.step(0, 0, copi)
            flash.step(0, 1, copi)
            value = value << 1 | flash.step(0, 1, copi)
            flash.step(0, 0, copi)
        received.append(value)
    flash.step(1, 0, 0)
    return bytes(received[len(out):])
