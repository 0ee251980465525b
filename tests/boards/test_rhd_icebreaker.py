"""The iCEBreaker top with the RHD2000 front-end: pins from the PMOD table, fits, meets 12 MHz.

Run with ``pytest -m slow tests/boards/test_rhd_icebreaker.py -s`` to see the figures.
"""

import json
import os

import pytest

from spikeforge.firmware.config import RHDConfig, SystemConfig
from spikeforge.firmware.rhd2000 import PMOD_PINOUT

#: One RHD2164 (64 channels) at 8 kS/s: the largest single chip the 12 MHz clock carries.
RHD_ICEBREAKER = SystemConfig(
    source="rhd", channels=64, sample_rate_hz=8000, sweeps_per_frame=4,
    link_buffer_samples=1024, rhd=RHDConfig(chips=("RHD2164",), miso_delay_cycles=(3,)))


def test_pmod_table_names_each_signal_once_on_distinct_pins():
    names = [name for name, _, _ in PMOD_PINOUT]
    pins = [(pmod, pin) for _, pmod, pin in PMOD_PINOUT]
    assert len(set(names)) == len(names) and len(set(pins)) == len(pins)
    assert {"cs", "sclk", "mosi", "miso0"} <= set(names)
    assert all(pin not in (5, 6, 11, 12) for _, pin in pins), "power pins"


@pytest.mark.slow
def test_icebreaker_with_rhd_front_end_fits_and_meets_timing(tmp_path):
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from spikeforge.boards.icebreaker import ICEBreakerTop
    from spikeforge.boards.toolchain import select_toolchain

    os.environ.update(select_toolchain("ice40").environment())
    report = tmp_path / "report.json"
    ICEBreakerPlatform().build(ICEBreakerTop(RHD_ICEBREAKER), build_dir=str(tmp_path),
                               do_program=False, nextpnr_opts="--report report.json")
    figures = json.loads(report.read_text())
    used = {k: v["used"] for k, v in figures["utilization"].items() if v["used"]}
    fmax = figures["fmax"]["cd_sync.clk"]["achieved"]
    print(f"RHD2164 on iCEBreaker: {used}, fmax {fmax:.1f} MHz")
    assert fmax >= 12.0
    pcf = next(tmp_path.glob("*.pcf")).read_text()
    for name in ("adc_spi_0__cs", "adc_spi_0__cipo"):
        assert name in pcf, f"{name} not constrained"
