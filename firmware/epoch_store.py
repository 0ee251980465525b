"""The flash epoch store: where a keyed build keeps its replay high-water mark across resets.

The authenticated-command counter (docs/wire-format.md, "Authenticated commands") is split
into an **epoch** (bits 31..16) and a per-epoch count (bits 15..0). The device keeps a
persistent high-water mark ``H`` in the board's SPI NOR configuration flash: every epoch
below ``H`` is spent. At boot the device reads ``H`` and sets its replay floor to ``H <<
16`` (:func:`~spikeforge.firmware.control_protocol.epoch_floor`), so every frame of a spent
epoch is refused forever, across resets. Before it carries out a command whose epoch ``e >=
H`` it first *raises* ``H`` to ``e + 1`` in flash, verified by reading it back.

``H`` is stored as a unary thermometer in a region of :data:`REGION_BYTES` bytes at
:data:`REGION_OFFSET` (a 24-bit byte address: the top 64 KiB of a 16 MiB part, and — as SPI
NOR parts of 1–8 MiB ignore the address bits above their size — the top 64 KiB of those too,
far above every supported board's bitstream), erased (0xFF) when the board is provisioned:
``H`` is the number of leading cleared (0) bits, bit ``k`` of the region being byte ``k //
8``, bit ``7 - k % 8`` (MSB first). A byte with ``j`` leading cleared bits reads ``0xFF >>
j`` (:func:`byte_for`). NOR programming only clears bits, so ``H`` only grows without an
erase; the device never erases. The region holds ``8 * REGION_BYTES`` = :data:`EPOCH_LIMIT`
bits: ``H`` ranges over 0..EPOCH_LIMIT (17 bits), and at ``H = EPOCH_LIMIT`` every epoch is
spent (the key must be rotated and the region erased).

Reading: a byte that is not ``0xFF >> j`` (only a torn or foreign write makes one) counts
its leading cleared bits and ends the scan there, so a stray cleared bit further on never
raises ``H``. The gateware (:class:`spikeforge.hdl.epoch_store.EpochStore`) speaks SPI mode
0 with the opcodes below; the golden model is :mod:`spikeforge.sim.models.epoch_store`.
"""

from .control_protocol import EPOCH_SHIFT
from .errors import ConfigError

__all__ = [
    "REGION_OFFSET", "REGION_BYTES", "EPOCH_LIMIT", "PAGE_BYTES",
    "ADDRESS_BITS", "OP_RELEASE_POWER_DOWN", "OP_WRITE_ENABLE", "OP_WRITE_DISABLE",
    "OP_READ_STATUS", "OP_READ", "OP_PAGE_PROGRAM", "STATUS_WIP", "STATUS_WEL",
    "byte_for", "leading_cleared_bits", "region_limit",
]

#: Byte address of the region in the configuration flash (24-bit addressing).
REGION_OFFSET = 0xFF0000
#: Size of the region: one bit per epoch.
REGION_BYTES = 8192
#: Number of epochs (bits of the region); ``H`` is at most this.
EPOCH_LIMIT = 8 * REGION_BYTES
#: A NOR page: one PAGE PROGRAM wraps its address inside it.
PAGE_BYTES = 256
#: Address bytes of READ and PAGE PROGRAM.
ADDRESS_BITS = 24

#: Release from deep power-down (the part may be in it after configuration).
OP_RELEASE_POWER_DOWN = 0xAB
#: Write enable: sets WEL, which PAGE PROGRAM needs and clears.
OP_WRITE_ENABLE = 0x06
#: Write disable: clears WEL.
OP_WRITE_DISABLE = 0x04
#: Read status register (repeated while CS stays low).
OP_READ_STATUS = 0x05
#: Read data: 24-bit address, then bytes stream until CS rises.
OP_READ = 0x03
#: Page program: 24-bit address, then data bytes ANDed into the array.
OP_PAGE_PROGRAM = 0x02
#: Status bit: write (program) in progress.
STATUS_WIP = 0x01
#: Status bit: write enable latch.
STATUS_WEL = 0x02

assert EPOCH_LIMIT == 1 << EPOCH_SHIFT


def byte_for(cleared_bits: int) -> int:
    """The byte of the region holding ``cleared_bits`` (0..8) leading cleared bits."""
    if not 0 <= cleared_bits <= 8:
        raise ConfigError(f"cleared_bits must be 0..8, not {cleared_bits!r}; a region byte "
                          "holds 8 bits of H")
    return 0xFF >> cleared_bits


def leading_cleared_bits(value: int) -> int:
    """The number of leading (MSB-first) 0 bits of the byte ``value`` (8 for 0)."""
    if not 0 <= value <= 0xFF:
        raise ConfigError(f"value must be a byte (0..255), not {value!r}")
    return 8 - value.bit_length()


def region_limit(region_bytes: int) -> int:
    """The largest ``H`` a region of ``region_bytes`` bytes holds (:data:`EPOCH_LIMIT` for
    the contract's region)."""
    if region_bytes < 1:
        raise ConfigError(f"region_bytes must be at least 1, not {region_bytes!r}")
    return 8 * region_bytes
