"""The real iCEBreaker build of the acquisition system: it fits, meets 12 MHz, is cached,
and flashing without a board attached fails with the board-not-found error."""

import time

import pytest

from spikeforge.boards.build import build
from spikeforge.boards.errors import BoardNotFound, DeviceError, ToolNotFound
from spikeforge.boards.flash import flash, scan_usb
from spikeforge.boards.registry import get_board
from spikeforge.firmware.config import SystemConfig

pytestmark = pytest.mark.slow

#: Size of every iCE40UP5K configuration image written by icepack.
UP5K_BITSTREAM_BYTES = 104_090


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    """One cache for this module: the flash test reuses the bitstream built before it."""
    return tmp_path_factory.mktemp("build")


def test_icebreaker_bitstream_fits_meets_timing_and_is_cached(build_dir):
    config = SystemConfig()

    started = time.monotonic()
    first = build("icebreaker", config, build_dir)
    first_s = time.monotonic() - started

    assert not first.cached
    assert first.bitstream.stat().st_size == UP5K_BITSTREAM_BYTES
    for name, use in first.utilization.items():
        assert use.used <= use.available, name
    assert first.utilization["ICESTORM_LC"].used > 0
    assert first.utilization["SB_IO"].used >= 4  # clock, UART TX, two LEDs
    assert first.clocks, "nextpnr was not given the clock constraint"
    assert first.fmax_required_mhz == pytest.approx(config.clock_hz / 1e6, rel=1e-4)
    assert first.fmax_achieved_mhz >= first.fmax_required_mhz

    started = time.monotonic()
    again = build("icebreaker", config, build_dir)
    again_s = time.monotonic() - started

    assert again.cached
    assert again.bitstream == first.bitstream
    assert again.utilization == first.utilization
    assert again_s < 5, f"cache hit took {again_s:.1f} s"
    assert again_s < first_s / 3
    print(f"\n{first.summary()}\nfirst build {first_s:.1f} s, cached {again_s:.2f} s")


def test_flashing_without_a_board_names_the_usb_id_and_the_bitstream(build_dir):
    board = get_board("icebreaker")
    scan = scan_usb(board)
    if scan is None or scan.attached:
        pytest.skip("cannot tell that no iCEBreaker is attached here (or one is)")
    with pytest.raises((DeviceError, ToolNotFound)) as info:
        flash("icebreaker", SystemConfig(), build_dir=build_dir)
    if isinstance(info.value, ToolNotFound):
        pytest.skip("openFPGALoader is not installed")
    error = info.value
    assert isinstance(error, BoardNotFound), str(error)
    assert error.exit_code == 3
    assert "0403:6010" in str(error)
    assert error.bitstream is not None and error.bitstream.is_file()
    assert str(error.bitstream) in str(error)
