"""The ULX3S top with the RHD2000 front-end at full rate: one RHD2132, 32 channels at
30 kS/s. With the datasheet's CS-high time (>= 154 ns: 7 cycles at 45 MHz) the conversion
loop takes 1431 cycles, so it needs a clock of at least 42.93 MHz (the ULX3S runs 45 MHz
from its PLL; the iCEBreaker's 12 MHz cannot). Builds, fits and meets timing.

Run with ``pytest -m slow tests/boards/test_rhd_ulx3s.py -s`` to see the figures.
"""

import pytest

from spikeforge.boards.registry import ULX3S_CLOCK_HZ, get_board
from spikeforge.firmware.config import RHDConfig, SystemConfig
from spikeforge.firmware.errors import ConfigError

#: One RHD2132 streaming all 32 amplifiers at 30 kS/s on the ULX3S's 45 MHz clock.
RHD_ULX3S = get_board("ulx3s-85f").default_config.replace(
    source="rhd", channels=32, sample_rate_hz=30_000, sweeps_per_frame=8,
    link_buffer_samples=1024,
    rhd=RHDConfig(chips=("RHD2132",), miso_delay_cycles=(3,), cs_high_cycles=7))


def test_full_rate_rhd2132_needs_more_than_the_icebreaker_clock():
    assert RHD_ULX3S.clock_hz == ULX3S_CLOCK_HZ
    assert RHD_ULX3S.rhd.pass_cycles == 1431 <= RHD_ULX3S.cycles_per_sample == 1500
    with pytest.raises(ConfigError, match="38.61 MHz"):
        SystemConfig(source="rhd", channels=32, sample_rate_hz=30_000)
    # The datasheet's SPI limits are checked at the configured clock.
    with pytest.raises(ConfigError, match="cs_high_cycles=7"):
        RHD_ULX3S.replace(rhd=RHDConfig(chips=("RHD2132",), miso_delay_cycles=(3,)))
    with pytest.raises(ConfigError, match="sclk_half_period_cycles=2"):
        RHD_ULX3S.replace(clock_hz=60_000_000, rhd=RHDConfig(cs_high_cycles=10))


@pytest.mark.slow
def test_ulx3s_with_full_rate_rhd_front_end_fits_and_meets_timing(tmp_path):
    from spikeforge.boards.build import build

    result = build("ulx3s-85f", RHD_ULX3S, build_dir=tmp_path)
    print(result.summary())
    assert result.fmax_required_mhz == pytest.approx(ULX3S_CLOCK_HZ / 1e6, rel=1e-4)
    assert result.fmax_achieved_mhz >= result.fmax_required_mhz
