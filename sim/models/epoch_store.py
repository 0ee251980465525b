"""Golden model of the flash epoch store (:class:`spikeforge.hdl.epoch_store.EpochStore`).

The contract (the thermometer region, ``H``) is :mod:`spikeforge.firmware.epoch_store`.
:func:`scan` is what the core reads at boot, :func:`raise_region` what one raise leaves in
the region and whether its read-back verify passes, and :class:`EpochStoreModel` the core's
answers to a sequence of requests (with the sticky ``failed``). A region of ``n`` bytes
holds ``H`` up to ``8 n`` (:func:`~spikeforge.firmware.epoch_store.region_limit`):
:data:`~spikeforge.firmware.epoch_store.EPOCH_LIMIT` for the contract's region, less for the
benches' small ones.
"""

import numpy as np

from spikeforge.firmware.epoch_store import byte_for, leading_cleared_bits, region_limit
from spikeforge.firmware.errors import ConfigError

__all__ = ["scan", "raise_region", "program_values", "canonical_region", "EpochStoreModel"]


def scan(region: bytes) -> int:
    """``H`` of ``region``: its leading cleared bits, MSB first. The first byte that is not
    0x00 ends the scan, even a non-canonical one (0b10111111 adds 1)."""
    data = np.frombuffer(bytes(region), dtype=np.uint8)
    nonzero = np.flatnonzero(data)
    if nonzero.size == 0:
        return 8 * data.size
    first = int(nonzero[0])
    return 8 * first + leading_cleared_bits(int(data[first]))


def canonical_region(high: int, region_bytes: int) -> bytes:
    """A freshly written region holding ``high`` (what provisioning plus raises leave)."""
    if not 0 <= high <= region_limit(region_bytes):
        raise ConfigError(f"high must be 0..{region_limit(region_bytes)} for a "
                          f"{region_bytes}-byte region, not {high!r}")
    bits = np.arange(region_bytes) * 8
    cleared = np.clip(high - bits, 0, 8)
    return bytes((0xFF >> cleared).astype(np.uint8))


def program_values(high: int, to: int) -> dict[int, int]:
    """The bytes a raise from ``high`` to ``to > high`` programs: region byte index -> value
    (``byte_for`` of the bits cleared in it), from ``high // 8`` to ``(to - 1) // 8``."""
    return {k: byte_for(min(8, to - 8 * k)) for k in range(high // 8, (to - 1) // 8 + 1)}


def raise_region(region: bytes, high: int, to: int, *, write_protected: bool = False,
                 stuck_busy: bool = False) -> tuple[bytes, bool]:
    """The region after the core raises ``H`` from ``high`` to ``to``, and whether the
    read-back verify passes.

    ``to <= high``: unchanged, success. ``to`` above the region's limit: unchanged, failure.
    Otherwise each byte of :func:`program_values` is programmed in turn (ANDed: NOR only
    clears bits), then read back; the verify passes when every bit that should be cleared
    is. Faults of the part: ``write_protected`` (programs change nothing: the verify fails),
    ``stuck_busy`` (the first program lands, its WIP never clears: the core gives up before
    the next byte, failure).
    """
    before = bytes(region)
    if to <= high:
        return before, True
    if to > region_limit(len(before)):
        return before, False
    after = bytearray(before)
    values = program_values(high, to)
    for k, value in values.items():
        if not write_protected:
            after[k] &= value
        if stuck_busy:
            return bytes(after), False
    ok = all(after[k] & ~value & 0xFF == 0 for k, value in values.items())
    return bytes(after), ok


class EpochStoreModel:
    """The core's answers: ``high`` after the boot scan, then ``request(to) -> ok`` per raise,
    with ``failed`` sticky after a raise that did not verify (or whose WIP never cleared):
    from then on a raise above ``high`` answers failure without touching the flash, one at
    or below it success."""

    def __init__(self, region: bytes, *, write_protected: bool = False,
                 stuck_busy: bool = False):
        self.region = bytes(region)
        self.high = scan(self.region)
        self.failed = False
        self.write_protected = write_protected
        self.stuck_busy = stuck_busy

    @property
    def limit(self) -> int:
        return region_limit(len(self.region))

    def request(self, to: int) -> bool:
        if to <= self.high:
            return True
        if to > self.limit or self.failed:
            return False
        self.region, ok = raise_region(self.region, self.high, to,
                                       write_protected=self.write_protected,
                                       stuck_busy=self.stuck_busy)
        if ok:
            self.high = to
        else:
            self.failed = True
        return ok

    def reboot(self) -> int:
        """A reset: the core scans the region again (``failed`` clears with the reset)."""
        self.high = scan(self.region)
        self.failed = False
        return self.high
