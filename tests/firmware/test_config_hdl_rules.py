"""Build rules the HDL cores check are validated in SystemConfig too, so a bad configuration
fails at construction (host, golden models, board builds alike), not first at elaboration."""

import pytest

from spikeforge.firmware.compression import CodecConfig, worst_case_words
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.detection import DETECTOR_SAME_CHANNEL_SPACING, DetectorConfig
from spikeforge.firmware.errors import ConfigError

#: One channel at 30 kS/s and 60 kHz: two cycles per sample period, enough for the schedule
#: (one channel plus one idle cycle) but not for the detector's read-modify-write.
TWO_CYCLES = dict(channels=1, sample_rate_hz=30_000, clock_hz=60_000, baud=60_000,
                  sweeps_per_frame=1, link_buffer_samples=2)


def test_detector_refuses_samples_of_one_channel_closer_than_its_pipeline():
    assert DETECTOR_SAME_CHANNEL_SPACING == 3
    with pytest.raises(ConfigError, match=r"at least 3 cycles apart.*gives 2 cycles.*"
                                          r"raise clock_hz to at least 90000.*"
                                          r"sample_rate_hz to at most 20000.*enabled=False"):
        SystemConfig(**TWO_CYCLES, detector=DetectorConfig(enabled=True))


def test_detector_spacing_applies_only_when_the_detector_is_built():
    assert SystemConfig(**TWO_CYCLES).cycles_per_sample == 2
    fast_enough = {**TWO_CYCLES, "clock_hz": 90_000, "baud": 90_000}
    config = SystemConfig(**fast_enough, detector=DetectorConfig(enabled=True))
    assert config.cycles_per_sample == DETECTOR_SAME_CHANNEL_SPACING


def test_detector_spacing_is_checked_on_replace_and_from_dict():
    config = SystemConfig(**TWO_CYCLES)
    with pytest.raises(ConfigError, match="3 cycles apart"):
        config.replace(detector=DetectorConfig(enabled=True))
    data = config.to_dict()
    data["detector"]["enabled"] = True
    with pytest.raises(ConfigError, match="3 cycles apart"):
        SystemConfig.from_dict(data)


def test_coded_buffer_must_hold_two_worst_case_blocks():
    codec = CodecConfig(enabled=True, block_sweeps=256)
    worst = worst_case_words(4, 256, codec)
    assert 2048 < 2 * worst <= 4096
    with pytest.raises(ConfigError, match=rf"link buffer \(2048 words\) cannot hold two "
                                          rf"worst-case coded blocks \({worst} words each.*"
                                          r"link_buffer_samples to 4096.*codec.block_sweeps"):
        SystemConfig(channels=4, link_buffer_samples=2048, codec=codec)
    config = SystemConfig(channels=4, link_buffer_samples=4096, codec=codec)
    assert config.coded_buffer_words == 4096 >= 2 * worst


def test_coded_buffer_rule_ignores_a_build_without_the_coder():
    codec = CodecConfig(enabled=False, block_sweeps=256)
    assert SystemConfig(channels=4, link_buffer_samples=2048, codec=codec).codec is codec


@pytest.mark.parametrize("block_sweeps", [64, 128, 256, 512])
def test_coded_buffer_suggestion_is_the_smallest_valid_buffer(block_sweeps):
    """Following the message's fix gives a configuration that constructs, and no smaller
    power of two would hold the two blocks."""
    codec = CodecConfig(enabled=True, block_sweeps=block_sweeps)
    worst = worst_case_words(8, block_sweeps, codec)
    with pytest.raises(ConfigError, match="link_buffer_samples to") as info:
        SystemConfig(channels=8, link_buffer_samples=512, codec=codec)
    suggested = int(str(info.value).split("link_buffer_samples to ")[1].split()[0])
    config = SystemConfig(channels=8, link_buffer_samples=suggested, codec=codec)
    assert config.coded_buffer_words >= 2 * worst > suggested // 2


def test_hdl_cores_accept_what_the_configuration_accepts():
    """The rules agree with the cores' own checks: at the boundary the Detector and the
    Framer construct, and just past it the configuration refuses first."""
    from spikeforge.hdl.detector import Detector
    from spikeforge.hdl.framer import Framer, coded_buffer_words

    fast_enough = {**TWO_CYCLES, "clock_hz": 90_000, "baud": 90_000}
    Detector(SystemConfig(**fast_enough, detector=DetectorConfig(enabled=True)))
    codec = CodecConfig(enabled=True, block_sweeps=256)
    config = SystemConfig(channels=4, link_buffer_samples=4096, codec=codec)
    assert coded_buffer_words(config) == config.coded_buffer_words
    Framer(config)


def test_exclusion_table_rows_of_more_than_eight_neighbours_fail_at_construction():
    from spikeforge.firmware.detection import MAX_EXCLUSION_NEIGHBOURS

    assert MAX_EXCLUSION_NEIGHBOURS == 8
    channels = 10
    # Channel 0 compares with all 9 others (and each of them with channel 0): symmetric and
    # in range, so only the row-length rule is broken.
    table = [list(range(1, channels))] + [[0] for _ in range(1, channels)]
    with pytest.raises(ConfigError, match=r"exclusion_neighbours\[0\] has 9 channels; at most "
                                          r"8 .*smaller radius"):
        DetectorConfig(exclusion_neighbours=table).validate(30_000)
    with pytest.raises(ConfigError, match=r"exclusion_neighbours\[0\] has 9 channels"):
        SystemConfig(channels=channels,
                     detector=DetectorConfig(exclusion=True, exclusion_neighbours=table))
    # Eight neighbours is the limit, and is accepted.
    table[0] = table[0][:8]
    table[9] = []
    config = SystemConfig(channels=channels,
                          detector=DetectorConfig(exclusion=True, exclusion_neighbours=table))
    assert config.detector.exclusion_slots(channels) == 8
