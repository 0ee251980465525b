"""The board table: lookup, the unknown-board message, the clock check, the udev rule."""

import re

import pytest

from spikeforge.boards import BOARDS, get_board
from spikeforge.boards.errors import BoardConfigError, UnknownBoard
from spikeforge.boards.flash import UDEV_RULES
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import ConfigError, SpikeforgeError
from spikeforge.firmware.wire import MIN_RX_DIVISOR, has_control_path


def test_icebreaker_is_registered_with_its_fpga_clock_and_programmer():
    board = get_board("icebreaker")
    assert board.family == "ice40"
    assert board.fpga == "iCE40UP5K-SG48"
    assert board.clock_hz == 12_000_000
    assert board.usb_id == "0403:6010"
    assert board.default_config.clock_hz == board.clock_hz


def test_board_names_are_case_insensitive():
    assert get_board(" iCEBreaker ") is get_board("icebreaker")


def test_unknown_board_lists_the_known_ones_and_suggests_a_close_name():
    with pytest.raises(UnknownBoard) as info:
        get_board("icebraker")
    message = str(info.value)
    assert "'icebraker'" in message
    for name in BOARDS:
        assert name in message
    assert "did you mean 'icebreaker'" in message
    assert isinstance(info.value, SpikeforgeError)
    assert info.value.exit_code == 2


def test_a_config_for_another_clock_is_refused_with_the_fix():
    board = get_board("icebreaker")
    config = SystemConfig(clock_hz=24_000_000)
    with pytest.raises(BoardConfigError) as info:
        board.check_config(config)
    assert isinstance(info.value, ConfigError)
    assert "12 MHz" in str(info.value)
    assert "clock_hz=12000000" in str(info.value)


def test_the_board_top_refuses_another_clock():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from spikeforge.boards.icebreaker import ICEBreakerTop

    top = ICEBreakerTop(SystemConfig(clock_hz=24_000_000))
    with pytest.raises(BoardConfigError, match="12 MHz"):
        ICEBreakerPlatform().prepare(top)


def test_the_udev_rule_covers_every_board():
    rules = UDEV_RULES.read_text()
    for board in BOARDS.values():
        pattern = (rf'ATTRS{{idVendor}}=="{board.usb_vid:04x}", '
                   rf'ATTRS{{idProduct}}=="{board.usb_pid:04x}"')
        assert re.search(pattern, rules), f"no udev rule for {board.name} ({board.usb_id})"


@pytest.mark.parametrize("size", ["12F", "45F", "85F"])
def test_ulx3s_sizes_are_registered_with_the_pll_clock_and_the_ft231x(size):
    board = get_board(f"ulx3s-{size.lower()}")
    assert board.family == "ecp5"
    assert board.fpga.startswith(f"LFE5U-{size}")
    assert board.platform.endswith(f"ULX3S_{size}_Platform")
    assert board.oscillator_hz == 25_000_000
    assert board.clock_hz == board.default_config.clock_hz
    assert board.usb_id == "0403:6015"
    assert board.programmer_args[:2] == ("--board", "ulx3s")
    assert board.bitstream_suffix == ".bit"
    board.platform_class()  # the amaranth_boards class exists under that name


def test_every_default_config_uses_the_fastest_rate_its_bridge_and_receiver_take_exactly():
    for board in BOARDS.values():
        config = board.default_config
        board.check_config(config)
        assert has_control_path(config), board.name
        if board.link == "uart":  # Ethernet boards: tests/boards/test_ethernet_boards.py
            assert config.baud == min(board.max_baud, board.clock_hz // MIN_RX_DIVISOR), \
                board.name
            assert config.clock_hz % config.baud == 0, board.name  # an exact bit time
        assert config.link_load < 1, f"{board.name} default drops frames"
        assert board.link_note and board.adc_header


def test_a_baud_rate_above_the_usb_bridge_is_refused_with_the_fix():
    board = get_board("ulx3s-85f")
    config = board.default_config.replace(baud=4_500_000)
    with pytest.raises(BoardConfigError, match="FT231X.*3 Mbaud.*baud=3000000"):
        board.check_config(config)


def test_a_baud_rate_too_fast_for_the_command_receiver_is_refused_with_the_fix():
    board = get_board("icebreaker")
    config = board.default_config.replace(baud=12_000_000)   # the FT2232H takes it
    with pytest.raises(BoardConfigError, match="1 clock cycle.*at least 3.*baud=4000000"):
        board.check_config(config)


def test_the_ulx3s_clock_error_names_the_pll():
    board = get_board("ulx3s-12f")
    with pytest.raises(BoardConfigError, match="PLL from its 25 MHz oscillator"):
        board.check_config(SystemConfig(clock_hz=25_000_000, sample_rate_hz=25_000,
                                        baud=2_500_000))
