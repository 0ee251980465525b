"""The board tops elaborate for their platforms (no synthesis): pins, LEDs, the ULX3S PLL,
the chip-found LED following the system's port when there is one, the ADC pin-outs."""

import re

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.boards import BOARDS, get_board
from spikeforge.boards.board_top import ADC_SPI_SIGNALS
from spikeforge.boards.errors import BoardConfigError
from spikeforge.hdl.registers import RegisterBus


class _StatusSystem(wiring.Component):
    """Stands in for an AcquisitionSystem that already has the front-end's port."""

    uart_tx: Out(1, init=1)
    streaming: Out(1)
    overflow: Out(1)
    chip_found: Out(1)
    registers: In(RegisterBus())

    def __init__(self, config):
        self.config = config
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        found = Signal()
        m.d.sync += found.eq(~found)
        m.d.comb += self.chip_found.eq(found)
        return m


def _rtlil(name, config=None, system=None):
    board = get_board(name)
    platform = board.platform_class()()
    top = board.top_class()(config or board.default_config, system=system)
    plan = platform.prepare(top, name="top", emit_src=False)
    return plan.files["top.il"], plan


@pytest.mark.parametrize("name", sorted(b.name for b in BOARDS.values() if b.link == "uart"))
def test_every_board_top_elaborates_with_its_default_config(name):
    # The Ethernet boards' tops: tests/boards/test_ethernet_boards.py.
    rtlil, plan = _rtlil(name)
    assert "uart_tx_buffer" in rtlil
    for led in ("led_streaming", "led_overflow", "led_chip_found"):
        assert led in rtlil, led


def test_the_ulx3s_top_makes_its_clock_with_a_constrained_pll():
    rtlil, plan = _rtlil("ulx3s-85f")
    assert "EHXPLLL" in rtlil
    assert "CLKFB_DIV" in rtlil
    constraints = plan.files["top.lpf"]
    assert "FREQUENCY NET" in constraints and "45.0" in constraints.replace("45000000", "45.0")


def test_the_pll_dividers_make_the_registry_clock_within_the_ecp5_limits():
    from spikeforge.boards.ulx3s import PLL_PARAMETERS, _pll_output_hz

    board = get_board("ulx3s-85f")
    assert _pll_output_hz() == board.clock_hz
    assert board.oscillator_hz / PLL_PARAMETERS["CLKI_DIV"] >= 3.125e6  # phase detector
    assert 400e6 <= board.clock_hz * PLL_PARAMETERS["CLKOP_DIV"] <= 800e6  # VCO


def test_a_v2_coder_build_on_the_ulx3s_gets_its_own_constrained_clock():
    """codec_v2: the PLL's CLKOS makes the coder's 36.5625 MHz (the VCO / 16), nextpnr is
    told, the system's coder runs in that domain (asynchronous FIFOs); other builds keep
    one clock."""
    from spikeforge.boards.ulx3s import CODER_CLOCK_HZ, CODER_PLL_PARAMETERS, PLL_PARAMETERS
    from spikeforge.firmware.compression_v2 import CodecV2Config

    board = get_board("ulx3s-85f")
    vco = board.clock_hz * PLL_PARAMETERS["CLKOP_DIV"]
    assert CODER_CLOCK_HZ == vco / CODER_PLL_PARAMETERS["CLKOS_DIV"] == 36_562_500
    # it takes 1024 channels at 30 kS/s with room for the coder's stalls (~2 % on N1)
    assert CODER_CLOCK_HZ > 1.1 * 1024 * 30_000
    config = board.default_config.replace(codec_v2=CodecV2Config(
        enabled=True, grid=True, block_sweeps=4, sync_blocks=4))
    rtlil, plan = _rtlil("ulx3s-85f", config)
    assert "CLKOS_DIV" in rtlil and "coder_clock" in rtlil
    assert 'FREQUENCY NET "coder_clock" 36562500' in plan.files["top.lpf"]
    # the system's coder behind asynchronous FIFOs (their clock-domain crossings)
    for fifo in ("samples", "words_out"):
        assert f"module \\top.system.compressor.{fifo}.produce_cdc" in rtlil, fifo
    assert "coder_clock" not in _rtlil("ulx3s-85f")[0]


def test_the_ulx3s_top_refuses_the_oscillator_clock():
    from amaranth_boards.ulx3s import ULX3S_12F_Platform

    from spikeforge.boards.ulx3s import ULX3STop
    from spikeforge.firmware.config import SystemConfig

    with pytest.raises(BoardConfigError, match="45 MHz"):
        ULX3S_12F_Platform().prepare(ULX3STop(SystemConfig(
            clock_hz=25_000_000, sample_rate_hz=25_000, baud=2_500_000)))


def test_the_chip_found_led_is_off_until_the_system_has_the_port():
    without, _ = _rtlil("icebreaker")
    with_port, _ = _rtlil("icebreaker", system=_StatusSystem)
    # Only the LED's own names mention chip_found unless the system drives it.
    system_port = re.compile(r"(?<!led_)chip_found")
    assert not system_port.search(without)
    assert system_port.search(with_port)


@pytest.mark.parametrize("module", ["icebreaker", "ulx3s"])
def test_the_adc_pinout_resolves_on_the_board_connector(module):
    import importlib

    board_module = importlib.import_module(f"spikeforge.boards.{module}")
    board = get_board("icebreaker" if module == "icebreaker" else "ulx3s-85f")
    platform = board.platform_class()()
    platform.add_resources(board_module.ADC_RESOURCES)
    spi = platform.request("adc_spi", 0, dir="-")
    for name in ADC_SPI_SIGNALS:
        assert getattr(spi, name) is not None
