"""RHD2000 firmware: configuration checks, register tables, command lists, detection."""

import pytest

from spikeforge.firmware.config import RHDConfig, SystemConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.rhd2000 import (
    CALIBRATE,
    CALIBRATION_DUMMIES,
    channel_sources,
    convert,
    read,
    write,
)
from spikeforge.firmware.rhd_programs import (
    AUX,
    STORE,
    RegisterTargets,
    build_image,
    calibration_list,
    choose_delay,
    detection_list,
    dsp_cutoff_code,
    identify_chip,
    impedance_dac_list,
    loop_list,
    lower_bandwidth_dacs,
    register_values,
    setup_list,
    upper_bandwidth_dacs,
)
from spikeforge.sim.chips.rhd2000 import RHD2000Chip


def test_channels_must_equal_enabled_amplifiers_with_numbers():
    with pytest.raises(ConfigError, match=r"32 \(RHD2132\) \+ 64 \(RHD2164\) = 96, not 4"):
        SystemConfig(source="rhd", channels=4, sample_rate_hz=1000,
                     rhd=RHDConfig(chips=("RHD2132", "RHD2164"), miso_delay_cycles=(1, 1)))


def test_loop_that_does_not_fit_the_sample_period_names_rate_and_clock():
    with pytest.raises(ConfigError, match=r"35 commands x 36 cycles.*at most 9324 Hz"):
        SystemConfig(source="rhd", channels=32, sample_rate_hz=30_000)


def test_default_config_keeps_the_test_source():
    assert SystemConfig().source == "test"


@pytest.mark.parametrize("kwargs, match", [
    ({"chips": ("RHD2000",)}, "unknown chip"),
    ({"chips": ("RHD2132",) * 5, "miso_delay_cycles": (1,) * 5}, "1 to 4 chips"),
    ({"amplifier_masks": (1 << 32,)}, "32-bit mask"),
    ({"miso_delay_cycles": (16,)}, "0..15"),
    ({"cs_high_cycles": 2}, "3..255"),
])
def test_rhd_config_refuses_by_name(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RHDConfig(**kwargs)


def test_channel_order_is_chip_by_chip_ddr_b_words_last():
    rhd = RHDConfig(chips=("RHD2164", "RHD2132"), amplifier_masks=(1 << 33 | 1, 1 << 1),
                    miso_delay_cycles=(0, 0))
    sources = channel_sources(rhd)
    assert [(s.line, s.amplifier, s.half) for s in sources] == [(0, 0, 0), (0, 33, 1), (1, 1, 0)]
    assert loop_list(rhd)[:2] == [STORE | convert(0), STORE | convert(1)]
    assert loop_list(rhd)[2:] == [AUX | 0, AUX | 1, AUX | 2]


def test_register_values_follow_the_datasheet_tables():
    values = register_values(RegisterTargets(sample_rate_hz=30_000, dsp_cutoff_hz=1.0))
    assert values[0] == 0xDE
    assert values[1] == 0x40 | 2 and values[2] == 4            # >= 15 kS/s bias row
    assert values[4] == 0x80 | 0x10 | 12                        # weak MISO, DSP on, k=12
    low = register_values(RegisterTargets(sample_rate_hz=3000))
    assert low[1] == 0x40 | 32 and low[2] == 40
    assert dsp_cutoff_code(1.0, 30_000) == 12


def test_bandwidth_targets_move_the_dacs_the_right_way_and_refuse_out_of_range():
    wide, narrow = upper_bandwidth_dacs(20_000), upper_bandwidth_dacs(100)
    # A lower cutoff needs a larger RH1 resistor: more coarse DAC steps.
    assert narrow[1] > wide[1]
    assert lower_bandwidth_dacs(0.1)[2] == 1 and lower_bandwidth_dacs(10)[2] == 0
    with pytest.raises(ConfigError, match="upper cutoff must be 100..20000 Hz"):
        upper_bandwidth_dacs(30_000)
    with pytest.raises(ConfigError, match="lower cutoff must be 0.1..500 Hz"):
        lower_bandwidth_dacs(0.01)
    with pytest.raises(ConfigError, match="DSP cutoff"):
        dsp_cutoff_code(5000, 30_000)


def test_calibration_is_followed_by_nine_dummies_and_setup_writes_every_register():
    assert calibration_list()[0] == CALIBRATE
    assert len(calibration_list()) == 1 + CALIBRATION_DUMMIES
    assert all(w >> 14 == 0b11 for w in calibration_list()[1:])
    commands = setup_list(RegisterTargets(sample_rate_hz=20_000))
    writes = [w >> 8 & 0x3F for w in commands if w >> 14 == 0b10]
    assert writes == list(range(18))
    assert commands.index(CALIBRATE) > max(i for i, w in enumerate(commands) if w >> 14 == 0b10)


def test_impedance_dac_list_is_one_sine_period_and_refuses_impossible_frequencies():
    dac, actual = impedance_dac_list(1000, 20_000)
    assert len(dac) == 20 and actual == 1000
    assert all(w >> 8 == 0x86 for w in dac)
    assert max(w & 0xFF for w in dac) <= 255
    with pytest.raises(ConfigError, match="impedance test frequency"):
        impedance_dac_list(10_000, 20_000)


def test_boot_image_fits_and_names_its_lists():
    config = SystemConfig(source="rhd", channels=32, sample_rate_hz=8000)
    image = build_image(config)
    assert set(image.lists) >= {"setup", "detect", "calibrate", "loop", "aux0"}
    start, length = image.lists["loop"]
    assert length == 35 and all(w & STORE for w in image.words[start:start + 32])


@pytest.mark.parametrize("kind", ["RHD2132", "RHD2164", "RHD2216"])
def test_detection_identifies_each_chip_from_the_model(kind):
    chip = RHD2000Chip(kind)
    results = []
    for word in detection_list():
        chip.transfer(word)
        results.append(chip.next_output())
    # Results come back two commands later.
    a = [r[0] for r in results[2:]]
    b = [r[1] for r in results[2:]]
    found = identify_chip(a, b)
    assert found is not None and found.facts.name == kind
    assert identify_chip([w ^ 1 for w in a], b) is None


def test_chip_model_returns_results_two_commands_late_in_the_configured_format():
    import numpy as np

    chip = RHD2000Chip("RHD2132", np.full((32, 4), -5))
    outputs = []
    for word in [convert(3), write(4, 0x40), convert(3), read(40), read(40)]:
        chip.transfer(word)
        outputs.append(chip.next_output()[0])
    assert outputs == [0, 0, (-5 + 0x8000) & 0xFFFF, 0xFF40, (-5) & 0xFFFF]


def test_choose_delay_takes_the_middle_of_the_longest_good_window():
    assert choose_delay([False, True, True, True, False, True]) == 2
    assert choose_delay([False, False, True]) == 2
    with pytest.raises(ConfigError, match="no MISO sampling delay"):
        choose_delay([False] * 16)
    assert read(63) == 0xFF00 and write(4, 0x40) == 0x8440


def test_identity_carries_the_rhd_front_end():
    from spikeforge.firmware.wire import decode_identity, encode_identity

    config = SystemConfig(
        source="rhd", channels=5, sample_rate_hz=20_000,
        rhd=RHDConfig(chips=("RHD2164", "RHD2216"), amplifier_masks=(1 << 40 | 3, 0b11 << 8),
                      miso_delay_cycles=(3, 9), upper_cutoff_hz=6000.5, dsp_cutoff_hz=2.5,
                      twos_complement=True, calibrate_on_start=False))
    assert decode_identity(encode_identity(config)) == config
    assert decode_identity(encode_identity(SystemConfig())) == SystemConfig()


def test_rhd_registers_exist_only_in_rhd_builds_with_boot_lists_as_reset():
    from spikeforge.firmware.registers import REGISTERS, register

    test_build = SystemConfig()
    rhd_build = SystemConfig(source="rhd", channels=32, sample_rate_hz=8000)
    assert not any(r.present(test_build) for r in REGISTERS if r.name.startswith("RHD_"))
    start, length = build_image(rhd_build).lists["setup"]
    assert register("RHD_ONESHOT_LIST").reset_value(rhd_build) == start | length << 16
    assert register("RHD_CONTROL").reset_value(rhd_build) == 0b11
