"""SystemConfig refuses what the hardware cannot do, and says what to do instead."""

import pytest

from spikeforge.firmware.config import SystemConfig, TestSourceConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.wire import decode_identity, encode_identity


def test_default_config_is_valid_and_exact():
    config = SystemConfig()
    assert config.cycles_per_sample * config.sample_rate_hz == config.clock_hz
    assert config.clock_hz / config.uart_divisor == config.baud


def test_too_many_channels_for_the_clock_names_the_numbers():
    with pytest.raises(ConfigError, match=r"400 channels at 30000 Hz.*400 cycles.*at most 399"):
        SystemConfig(channels=400)


def test_sample_rate_that_does_not_divide_the_clock_suggests_exact_rates():
    with pytest.raises(ConfigError, match=r"29999 does not divide.*30000"):
        SystemConfig(sample_rate_hz=29_999)


def test_unreachable_baud_rate_is_refused():
    with pytest.raises(ConfigError, match="baud 5000000"):
        SystemConfig(baud=5_000_000)


def test_frame_larger_than_the_link_buffer_says_which_size_would_do():
    with pytest.raises(ConfigError, match="link_buffer_samples=4096"):
        SystemConfig(channels=64, sweeps_per_frame=32, link_buffer_samples=2048)


def test_frame_over_the_length_field_is_refused():
    with pytest.raises(ConfigError, match="lower sweeps_per_frame"):
        SystemConfig(channels=300, sweeps_per_frame=200, link_buffer_samples=1 << 17)


@pytest.mark.parametrize("field, value", [
    ("channels", 0), ("channels", 2000), ("sweeps_per_frame", -1), ("source", "adc"),
    ("link_buffer_samples", 1000), ("channels", 4.0),
])
def test_bad_fields_are_refused_by_name(field, value):
    with pytest.raises(ConfigError, match=field if field != "channels" or value != 2000
                       else "at most 1024"):
        SystemConfig(**{field: value})


def test_test_source_parameters_are_checked():
    with pytest.raises(ConfigError, match="noise_shift"):
        SystemConfig(test_source=TestSourceConfig(noise_shift=9))
    with pytest.raises(ConfigError, match="spike_rate_hz"):
        SystemConfig(test_source=TestSourceConfig(spike_rate_hz=5000))


def test_dict_round_trip_and_unknown_fields():
    config = SystemConfig(channels=8, test_source=TestSourceConfig(seed=7, spike_rate_hz=12.5))
    assert SystemConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown configuration field.*chanels"):
        SystemConfig.from_dict({"chanels": 8})


def test_identity_payload_carries_the_whole_configuration():
    config = SystemConfig(channels=32, sample_rate_hz=5000, baud=12_000_000, sweeps_per_frame=2,
                          identity_interval_frames=99999,
                          test_source=TestSourceConfig(seed=0xFFFFFFFF, noise_shift=7,
                                                       spike_rate_hz=33.125))
    assert decode_identity(encode_identity(config)) == config


def test_identity_and_dict_carry_the_detector_configuration():
    from spikeforge.firmware.config import DetectorConfig

    config = SystemConfig(channels=8, detector=DetectorConfig(
        enabled=True, dc_shift=7, highpass_hz=333.3, lowpass_hz=5123.4, noise_step=9,
        noise_init_lsb=100,
        threshold_k=4.5625, polarity="both", align_samples=12, dead_samples=1000,
        snippet_pre=3, snippet_post=20, max_snippet_pre=10, max_snippet_post=40,
        event_queue=4, event_buffer_words=1024))
    assert decode_identity(encode_identity(config)) == config
    assert SystemConfig.from_dict(config.to_dict()) == config


def test_a_place_and_route_strategy_round_trips_and_is_absent_by_default():
    assert "place_and_route" not in SystemConfig().to_dict()
    config = SystemConfig.from_dict({"place_and_route": ["--placer", "static", "--seed", "2",
                                                         "--router", "router2", "--tmg-ripup"]})
    assert config.place_and_route == ("--placer", "static", "--seed", "2", "--router",
                                      "router2", "--tmg-ripup")
    assert SystemConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("options, message", [
    (["--freq", "50"], r"'--freq' is not an option it takes; allowed: --placer"),
    (["--placer", "fast"], r"--placer needs one of heap, static, sa, not 'fast'"),
    (["--seed"], r"--seed needs a number, not None"),
    ("--seed 2", r"must be a list of nextpnr arguments"),
])
def test_a_place_and_route_strategy_is_checked(options, message):
    with pytest.raises(ConfigError, match=message):
        SystemConfig(place_and_route=options)
