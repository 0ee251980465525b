"""The Gigabit Ethernet boards (ButterStick, Colorlight 5A-75B): their registry rows, PLL
plans, tops elaborated for their platforms (RGMII DDR primitives, three constrained
clocks, PHY reset, ADC pins) and the programmer's no-board error."""

import re
from fractions import Fraction

import pytest

from spikeforge.boards import BOARDS, get_board
from spikeforge.boards.errors import BoardConfigError, BoardNotFound, DeviceError, ToolNotFound
from spikeforge.boards.ethernet_boards import (
    BUTTERSTICK_ADC_RESOURCES,
    VCO_MAX_HZ,
    VCO_MIN_HZ,
    PLLSettings,
    VccioControl,
    pll_plan,
)
from spikeforge.boards.flash import program, scan_usb, translate_failure
from spikeforge.firmware.config import RHDConfig
from spikeforge.firmware.ethernet import LINK_CLOCK_HZ
from spikeforge.firmware.wire import has_control_path

ETHERNET_BOARDS = ("butterstick", "colorlight-5a75b")


@pytest.mark.parametrize("name", ETHERNET_BOARDS)
def test_the_ethernet_boards_are_registered_with_their_link_and_an_ethernet_default(name):
    board = get_board(name)
    assert board.link == "ethernet" and board.family == "ecp5"
    config = board.default_config
    board.check_config(config)
    assert config.link == "ethernet" and config.clock_hz == board.clock_hz
    assert has_control_path(config)
    assert config.link_load < 1, f"{name}: the default drops datagrams"
    # The framer hands the link one byte per acquisition cycle: the default's byte stream
    # (samples plus each frame's header and CRC) must fit in it with room to spare.
    frame_bytes = config.payload_bytes + 32
    frames_per_s = config.sample_rate_hz / config.sweeps_per_frame
    assert frame_bytes * frames_per_s < 0.9 * config.clock_hz, name
    assert "Gigabit Ethernet" in board.link_description
    assert "1 Gb/s" in board.link_description
    assert board.link_note and board.adc_header


def test_the_butterstick_default_is_1024_raw_channels():
    assert get_board("butterstick").default_config.channels == 1024


def test_uart_boards_refuse_an_ethernet_config_and_ethernet_boards_a_uart_one():
    ulx3s, butterstick = get_board("ulx3s-85f"), get_board("butterstick")
    with pytest.raises(BoardConfigError, match="link='uart'"):
        ulx3s.check_config(ulx3s.default_config.replace(link="ethernet"))
    with pytest.raises(BoardConfigError, match="ButterStick.*link='ethernet'"):
        butterstick.check_config(butterstick.default_config.replace(link="uart",
                                                                      baud=3_000_000))
    # Ethernet boards have no UART: the baud rate is not checked against a bridge.
    butterstick.check_config(butterstick.default_config.replace(baud=12_000_000))


def test_programming_rows():
    butterstick = get_board("butterstick")
    assert butterstick.usb_id == "1209:5af1"
    assert butterstick.programmer_args[0] == "--dfu"
    assert "0x1209" in butterstick.programmer_args and "0x5af1" in butterstick.programmer_args
    colorlight = get_board("colorlight-5a75b")
    assert colorlight.usb_id == "0403:6014"
    assert colorlight.programmer_args[:2] == ("--cable", "ft232")


@pytest.mark.parametrize("name", ETHERNET_BOARDS)
def test_one_pll_makes_both_clocks_exactly_within_the_ecp5_limits(name):
    board = get_board(name)
    plan = pll_plan(board.oscillator_hz, LINK_CLOCK_HZ, board.clock_hz)
    assert len(plan) == 1
    (pll,) = plan
    pll.check()
    assert pll.clkop_hz == LINK_CLOCK_HZ and pll.clkos_hz == board.clock_hz
    assert VCO_MIN_HZ <= pll.vco_hz <= VCO_MAX_HZ
    assert Fraction(board.oscillator_hz, pll.clki_div) >= 3_125_000


def test_a_clock_no_vco_shares_with_125_mhz_takes_a_second_pll():
    plan = pll_plan(30_000_000, LINK_CLOCK_HZ, 60_000_000)
    assert [p.clkop_hz for p in plan] == [LINK_CLOCK_HZ, 60_000_000]
    assert all(p.clkos_div is None for p in plan)
    with pytest.raises(BoardConfigError, match="no ECP5 PLL"):
        pll_plan(30_000_000, LINK_CLOCK_HZ, 60_000_001)
    with pytest.raises(BoardConfigError, match="limits"):
        PLLSettings(30_000_000, 1, 10, 1).check()   # VCO at 300 MHz


def test_the_vccio_dac_levels_are_within_the_control_range():
    for volts in (3.3, 2.5, 1.8):
        assert 0 < VccioControl.control_voltage(volts) / 3.3 < 1
    with pytest.raises(BoardConfigError):
        VccioControl.control_voltage(0.5)


def _prepare(name, config=None):
    board = get_board(name)
    platform = board.platform_class()()
    top = board.top_class()(config or board.default_config)
    return platform.prepare(top, name="top", emit_src=False)


def _frequencies(lpf: str) -> dict[str, float]:
    return {net: float(hz) for net, hz in
            re.findall(r'FREQUENCY NET "([^"]+)" ([\d.]+) HZ', lpf)}


@pytest.mark.parametrize("name", ETHERNET_BOARDS)
def test_the_ethernet_tops_elaborate_with_rgmii_ddr_three_clocks_and_the_phy_reset(name):
    board = get_board(name)
    plan = _prepare(name)
    rtlil, lpf = plan.files["top.il"], plan.files["top.lpf"]
    assert "EHXPLLL" in rtlil
    assert "ODDRX1F" in rtlil and "IDDRX1F" in rtlil       # RGMII through DDR primitives
    assert "uart" not in lpf.lower()
    # The PHY's receive clock at its pin; the PLL outputs are derived by nextpnr from the
    # oscillator's constraint (the build's report lists all three: test_ethernet_builds).
    assert re.search(r'FREQUENCY PORT "eth_rgmii_0__rx_clk__io" 125000000.0 HZ', lpf)
    assert re.search(rf'FREQUENCY PORT "{board.platform_class().default_clk}_0__io" '
                     rf'{board.oscillator_hz}.0 HZ', lpf)
    assert not _frequencies(lpf), "a FREQUENCY NET would be dropped by Yosys' renaming"
    platform = board.platform_class()()
    eth = next(r for r in platform.resources.values() if r.name == "eth_rgmii")
    pins = {sub.name: sub.ios[0].names for sub in eth.ios}
    for signal in ("tx_clk", "tx_ctl", "rx_clk", "rx_ctl", "rst"):
        for pin in pins[signal]:
            assert f'LOCATE COMP "eth_rgmii_0__{signal}__io' in lpf and pin in lpf, signal
    assert "eth_rst_buffer" in rtlil and "led_streaming" in rtlil


def test_the_butterstick_shows_status_on_its_rgb_leds():
    rtlil = _prepare("butterstick").files["top.il"]
    for led in ("led_streaming", "led_overflow", "led_chip_found", "led_pll_locked",
                "led_colour_b"):
        assert led in rtlil, led


def test_the_butterstick_rhd_pins_are_on_syzygy_a_with_its_bank_powered():
    board = get_board("butterstick")
    config = board.default_config.replace(
        source="rhd", channels=32, sample_rate_hz=20_000, link_buffer_samples=1024,
        rhd=RHDConfig(chips=("RHD2132",), miso_delay_cycles=(3,), cs_high_cycles=12,
                      sclk_half_period_cycles=2))
    plan = _prepare("butterstick", config)
    lpf, rtlil = plan.files["top.lpf"], plan.files["top.il"]
    # SYZYGY port A: S0 G2, S1 J3, S2 F1, S3 K3.
    for signal, pin in (("cs", "G2"), ("clk", "J3"), ("copi", "F1"), ("cipo", "K3")):
        assert re.search(rf'LOCATE COMP "adc_spi_0__{signal}__io" SITE "{pin}"', lpf), \
            signal
    assert "vccio_ctrl" in lpf and "vccio" in rtlil
    assert {r.name for r in BUTTERSTICK_ADC_RESOURCES} == {"adc_spi", "adc_cipo"}


def test_the_butterstick_without_rhd_leaves_the_syzygy_banks_alone():
    assert "vccio_ctrl" not in _prepare("butterstick").files["top.lpf"]


def test_a_uart_board_still_elaborates_with_its_uart():
    rtlil = _prepare("ulx3s-12f").files["top.il"]
    assert "uart_tx_buffer" in rtlil


def test_no_butterstick_in_dfu_mode_is_board_not_found_naming_it(tmp_path):
    board = get_board("butterstick")
    bitstream = tmp_path / "top.bit"
    output = "Open file DONE\nParse file DONE\nNo DFU compatible device found\n"
    error = translate_failure(board, 1, output, bitstream=bitstream)
    assert isinstance(error, BoardNotFound), error
    message = str(error)
    assert "ButterStick" in message and "1209:5af1" in message and str(bitstream) in message
    assert error.exit_code == 3


@pytest.mark.parametrize("name", ETHERNET_BOARDS)
def test_programming_here_without_the_board_names_it(name, tmp_path):
    """The real openFPGALoader, as installed: with no board attached it must say which."""
    board = get_board(name)
    scan = scan_usb(board)
    if scan is not None and scan.attached:
        pytest.skip(f"a {board.title} is attached")
    bitstream = tmp_path / "top.bit"
    bitstream.write_bytes(b"\x00" * 16)
    try:
        program(name, bitstream)
    except ToolNotFound:
        pytest.skip("openFPGALoader is not installed")
    except DeviceError as error:
        assert isinstance(error, BoardNotFound), str(error)
        assert board.title in str(error) and board.usb_id in str(error)
        assert str(bitstream) in str(error)
    else:
        pytest.fail("programming succeeded without a board")


def test_every_board_lists_a_link_rate():
    for board in BOARDS.values():
        assert re.search(r"\d+(\.\d+)? (Mbaud|Gb/s)", board.link_description), board.name
