"""The epoch store's golden model and the SPI NOR flash device model (no simulator)."""

import random

import pytest

from spikeforge.firmware.epoch_store import (
    EPOCH_LIMIT,
    OP_PAGE_PROGRAM,
    OP_READ,
    OP_READ_STATUS,
    OP_RELEASE_POWER_DOWN,
    OP_WRITE_DISABLE,
    OP_WRITE_ENABLE,
    REGION_BYTES,
    REGION_OFFSET,
    STATUS_WEL,
    STATUS_WIP,
    byte_for,
)
from spikeforge.firmware.errors import ConfigError
from spikeforge.sim.models.epoch_store import (
    EpochStoreModel,
    canonical_region,
    program_values,
    raise_region,
    scan,
)
from spikeforge.sim.spi_flash import SpiFlash, spi_transfer


def _bits(region: bytes) -> str:
    return "".join(f"{b:08b}" for b in region)


# -- the contract ---------------------------------------------------------------------------

def test_contract_region_is_the_top_64_kib_of_any_part_of_1_to_16_mib():
    for size_mib in (1, 2, 4, 8, 16):
        size = size_mib << 20
        assert size - (64 << 10) == REGION_OFFSET % size
    assert REGION_OFFSET + REGION_BYTES <= 1 << 24
    assert EPOCH_LIMIT == 65536 == 8 * REGION_BYTES
    assert [byte_for(j) for j in range(9)] == [0xFF, 0x7F, 0x3F, 0x1F, 0x0F, 7, 3, 1, 0]
    with pytest.raises(ConfigError, match="0..8"):
        byte_for(9)


# -- scan -----------------------------------------------------------------------------------

def test_scan_counts_leading_cleared_bits_msb_first():
    rng = random.Random(5)
    for region_bytes in (1, 3, 64):
        for high in [0, 1, 7, 8, 9, 8 * region_bytes - 1, 8 * region_bytes] + [
                rng.randrange(8 * region_bytes + 1) for _ in range(20)]:
            high = min(high, 8 * region_bytes)
            region = canonical_region(high, region_bytes)
            assert scan(region) == high
            assert _bits(region) == "0" * high + "1" * (8 * region_bytes - high)


def test_scan_of_erased_and_exhausted_regions():
    assert scan(b"\xff" * REGION_BYTES) == 0
    assert scan(bytes(REGION_BYTES)) == EPOCH_LIMIT


def test_scan_stops_at_a_non_canonical_byte():
    assert scan(bytes([0, 0, 0b10111111, 0])) == 16
    assert scan(bytes([0, 0b00100000, 0, 0])) == 8 + 2
    assert scan(bytes([0b01000001]) + bytes(7)) == 1     # stray cleared bits later never count


# -- raise_region ---------------------------------------------------------------------------

def test_raise_programs_exactly_the_bytes_from_high_to_to():
    region = canonical_region(13, 8)
    assert program_values(13, 30) == {1: 0x00, 2: 0x00, 3: 0x03}
    after, ok = raise_region(region, 13, 30)
    assert ok and after == canonical_region(30, 8) and scan(after) == 30
    # Within one byte, and ending exactly on a byte boundary.
    assert raise_region(region, 13, 14) == (canonical_region(14, 8), True)
    assert program_values(13, 16) == {1: 0x00}


def test_raise_to_at_or_below_high_is_a_noop_success():
    region = canonical_region(40, 8)
    assert raise_region(region, 40, 40) == (region, True)
    assert raise_region(region, 40, 3) == (region, True)


def test_raise_above_the_limit_fails_without_writing():
    region = canonical_region(5, 8)
    assert raise_region(region, 5, 65) == (region, False)
    assert raise_region(region, 5, 64) == (canonical_region(64, 8), True)
    full = canonical_region(EPOCH_LIMIT - 1, REGION_BYTES)
    after, ok = raise_region(full, EPOCH_LIMIT - 1, EPOCH_LIMIT + 1)
    assert not ok and after == full


def test_raise_from_a_non_canonical_byte_ands_into_it():
    region = bytes([0, 0b00100000, 0xFF, 0xFF])     # H = 10
    after, ok = raise_region(region, 10, 13)
    assert ok and after == bytes([0, 0b00000000, 0xFF, 0xFF])   # 0x20 & 0x07
    assert scan(after) >= 13


def test_faults_make_the_raise_fail():
    region = canonical_region(6, 8)
    assert raise_region(region, 6, 20, write_protected=True) == (region, False)
    after, ok = raise_region(region, 6, 20, stuck_busy=True)
    assert not ok and after == bytes([0x00]) + region[1:]


def test_model_failed_is_sticky_until_reboot():
    model = EpochStoreModel(canonical_region(6, 8), write_protected=True)
    assert model.request(4) and model.request(6)
    assert not model.request(7) and model.failed
    model.write_protected = False
    assert not model.request(7), "a raise after a failure must fail"
    assert model.request(6)
    assert model.reboot() == 6 and model.request(7) and model.high == 7


# -- the SPI NOR device model ---------------------------------------------------------------

def _flash(**kwargs) -> SpiFlash:
    return SpiFlash(size=1 << 16, **kwargs)


def test_read_streams_and_wraps_at_the_array_end():
    flash = _flash()
    flash.load(0xFFFE, b"\x01\x02")
    flash.load(0, b"\x03")
    got = spi_transfer(flash, bytes([OP_READ, 0x00, 0xFF, 0xFE]), 3)
    assert got == b"\x01\x02\x03"
    assert flash.violations == []


def test_program_needs_wren_ands_and_wraps_inside_its_page():
    flash = _flash(busy_polls=0)
    flash.load(0x1FE, b"\xf0\xf0")
    spi_transfer(flash, bytes([OP_PAGE_PROGRAM, 0, 0x01, 0xFE, 0x3C]))
    assert flash.read(0x1FE, 1) == b"\xf0" and flash.programs == []
    assert any("without WREN" in v for v in flash.violations)
    flash.violations.clear()
    spi_transfer(flash, bytes([OP_WRITE_ENABLE]))
    assert spi_transfer(flash, bytes([OP_READ_STATUS]), 1)[0] == STATUS_WEL
    spi_transfer(flash, bytes([OP_PAGE_PROGRAM, 0, 0x01, 0xFE, 0x3C, 0x0F, 0x55]))
    # 0x1FE, 0x1FF, then back to the page's start 0x100 (not 0x200).
    assert flash.read(0x1FE, 2) == bytes([0xF0 & 0x3C, 0xF0 & 0x0F])
    assert flash.read(0x100, 1) == b"\x55" and flash.read(0x200, 1) == b"\xff"
    spi_transfer(flash, bytes([OP_WRITE_ENABLE]))
    spi_transfer(flash, bytes([OP_PAGE_PROGRAM, 0, 0x01, 0x00, 0xFF]))   # 1 -> 1: no change
    assert flash.read(0x100, 1) == b"\x55"
    assert flash.violations == [] and len(flash.programs) == 2


def test_status_shows_wip_for_the_set_number_of_polls_then_clears_wel():
    flash = _flash(busy_polls=3)
    spi_transfer(flash, bytes([OP_WRITE_ENABLE]))
    spi_transfer(flash, bytes([OP_PAGE_PROGRAM, 0, 0, 0, 0x00]))
    # Repeated status bytes in one CS period: busy for 3, then idle with WEL cleared.
    busy = STATUS_WIP | STATUS_WEL
    assert list(spi_transfer(flash, bytes([OP_READ_STATUS]), 5)) == [busy, busy, busy, 0, 0]
    assert flash.violations == []


def test_busy_for_sck_cycles_and_commands_while_busy_are_ignored():
    flash = _flash(busy_polls=0, busy_sck_cycles=20)
    spi_transfer(flash, bytes([OP_WRITE_ENABLE]))
    spi_transfer(flash, bytes([OP_PAGE_PROGRAM, 0, 0, 0, 0x0F]))
    assert spi_transfer(flash, bytes([OP_READ]), 0) == b""      # ignored: WIP set
    assert any("in progress" in v for v in flash.violations)
    flash.violations.clear()
    assert spi_transfer(flash, bytes([OP_READ_STATUS]), 1)[0] & STATUS_WIP   # 16 edges
    assert spi_transfer(flash, bytes([OP_READ_STATUS]), 1)[0] == 0
    assert flash.read(0, 1) == b"\x0f" and flash.violations == []


def test_write_protected_and_stuck_busy_faults():
    flash = _flash(write_protected=True)
    spi_transfer(flash, bytes([OP_WRITE_ENABLE]))
    spi_transfer(flash, bytes([OP_PAGE_PROGRAM, 0, 0, 0, 0x00]))
    assert flash.read(0, 1) == b"\xff"
    assert spi_transfer(flash, bytes([OP_READ_STATUS]), 1)[0] == 0
    stuck = _flash(stuck_busy=True)
    spi_transfer(stuck, bytes([OP_WRITE_ENABLE]))
    spi_transfer(stuck, bytes([OP_PAGE_PROGRAM, 0, 0, 0, 0x00]))
    assert all(spi_transfer(stuck, bytes([OP_READ_STATUS]), 50)[k] & STATUS_WIP
               for k in range(50))
    assert stuck.read(0, 1) == b"\x00"


def test_power_down_wren_wrdi_and_wake_time():
    flash = _flash(powered_down=True, wake_steps=100)
    spi_transfer(flash, bytes([OP_WRITE_ENABLE]))
    assert any("power-down" in v for v in flash.violations) and not flash.wel
    flash.violations.clear()
    spi_transfer(flash, bytes([OP_RELEASE_POWER_DOWN]))
    spi_transfer(flash, bytes([OP_WRITE_ENABLE]))          # 2 steps later: too early
    assert any("tRES1" in v for v in flash.violations) and not flash.wel
    flash.violations.clear()
    for _ in range(100):
        flash.step(1, 0, 0)
    spi_transfer(flash, bytes([OP_WRITE_ENABLE]))
    assert flash.wel
    spi_transfer(flash, bytes([OP_WRITE_DISABLE]))
    assert not flash.wel and flash.violations == []


def test_mode_0_protocol_violations_are_recorded():
    flash = _flash()
    flash.step(1, 1, 0)
    flash.step(0, 1, 0)                                   # CS falls with SCK high
    assert any("SCK high" in v for v in flash.violations)
    flash = _flash()
    flash.step(1, 0, 0)
    flash.step(1, 1, 0)                                   # SCK moves, CS high
    assert any("CS# was high" in v for v in flash.violations)
    flash = _flash()
    flash.step(0, 0, 0)
    flash.step(0, 1, 0)
    flash.step(0, 1, 1)                                   # COPI changes, SCK high
    assert any("COPI changed" in v for v in flash.violations)
    flash = _flash()
    flash.step(0, 0, 0)
    for _ in range(3):
        flash.step(0, 1, 0)
        flash.step(0, 0, 0)
    flash.step(1, 0, 0)                                   # CS rises after 3 bits
    assert any("mid-byte" in v or "3 bits" in v for v in flash.violations)
    flash = _flash()
    spi_transfer(flash, bytes([0x9F]))
    assert any("unknown opcode" in v for v in flash.violations)


def test_device_model_raise_matches_the_golden_region():
    # Bit-banged WREN/PP/RDSR/READ per byte as the core does, against raise_region.
    rng = random.Random(11)
    for _ in range(30):
        region_bytes = 40
        high = rng.randrange(8 * region_bytes)
        to = rng.randrange(high + 1, 8 * region_bytes + 1)
        offset = 0x0F0 + rng.randrange(64)              # straddles a page boundary
        flash = _flash(busy_polls=rng.randrange(4))
        flash.load(offset, canonical_region(high, region_bytes))
        for k, value in program_values(high, to).items():
            spi_transfer(flash, bytes([OP_WRITE_ENABLE]))
            spi_transfer(flash, bytes([OP_PAGE_PROGRAM]) + (offset + k).to_bytes(3, "big")
                         + bytes([value]))
            while spi_transfer(flash, bytes([OP_READ_STATUS]), 1)[0] & STATUS_WIP:
                pass
        want, ok = raise_region(canonical_region(high, region_bytes), high, to)
        got = spi_transfer(flash, bytes([OP_READ]) + offset.to_bytes(3, "big"), region_bytes)
        assert ok and got == want and scan(got) == to
        assert flash.violations == []
