"""The link-budget calculator against budgets worked out by hand, and its error messages."""

import json

import numpy as np
import pytest

from spikeforge.boards.registry import BOARDS
from spikeforge.cli import main
from spikeforge.firmware.compression import CodecConfig
from spikeforge.firmware.config import DetectorConfig, SystemConfig
from spikeforge.firmware.wire import IDENTITY_PAYLOAD_BYTES
from spikeforge.host.budget import BudgetError, StreamDescription, budget, format_budget

# 4 channels at 30 kS/s, 32 sweeps per frame: 937.5 frame slots per second.
STREAM = StreamDescription(channels=4, sample_rate_hz=30_000, sweeps_per_frame=32,
                           identity_interval_frames=1024, detector_enabled=True,
                           spike_rate_hz=20.0, snippet_pre=8, snippet_post=16)
#: One IDENTITY frame (13 bytes of framing + payload) every 1024 slots.
IDENTITY_BYTES_PER_S = (13 + IDENTITY_PAYLOAD_BYTES) * 937.5 / 1024


def test_raw_mode_counts_samples_frame_overhead_identity_and_uart_bits():
    raw = budget(STREAM, 3_000_000).mode("raw")
    # 4 ch x 30000 S/s x 2 B = 240000 B/s; 937.5 frames/s x 13 B = 12187.5 B/s.
    assert raw.payload_bytes_per_s == 240_000
    assert raw.framing_bytes_per_s == 12_187.5
    assert raw.identity_bytes_per_s == pytest.approx(IDENTITY_BYTES_PER_S)
    assert raw.link_bits_per_s == pytest.approx((252_187.5 + IDENTITY_BYTES_PER_S) * 10)
    assert raw.load == pytest.approx(raw.link_bits_per_s / 3e6)
    assert raw.fits and raw.margin == pytest.approx(1 - raw.load)
    # 300000 B/s of link; each channel needs 60000 B/s after the fixed framing: 4 fit.
    assert raw.max_channels == 4


def test_raw_mode_agrees_with_the_configurations_own_link_load():
    config = SystemConfig(channels=8, sweeps_per_frame=16)
    raw = budget(config).mode("raw")
    data_only = (raw.payload_bytes_per_s + raw.framing_bytes_per_s) * 10 / config.baud
    assert data_only == pytest.approx(config.link_load)


def test_lossless_mode_divides_the_payload_by_the_ratio_not_the_framing():
    lossless = budget(STREAM, 3_000_000, compression_ratio=2.5).mode("lossless")
    assert lossless.payload_bytes_per_s == 96_000
    assert lossless.framing_bytes_per_s == 12_187.5
    # (300000 - 12187.5 - identity) / 24000 per channel
    assert lossless.max_channels == 11


def test_lossless_frames_follow_the_coded_block_not_the_data_frame():
    stream = StreamDescription(channels=4, sample_rate_hz=30_000, sweeps_per_frame=16,
                               codec=CodecConfig(block_sweeps=256))
    lossless = budget(stream, 3e6, compression_ratio=2.0).mode("lossless")
    assert lossless.framing_bytes_per_s == pytest.approx(30_000 / 256 * 13)


def test_worst_case_row_is_the_coders_bounded_expansion():
    worst = budget(STREAM, 3e6).mode("lossless (worst case)")
    # A block of 32 sweeps x 4 channels: 4 raw samples + 31 x 4 escapes of 12 + 16 bits
    # = 3536 bits instead of 2048.
    assert worst.payload_bytes_per_s == pytest.approx(240_000 * 3536 / 2048)
    assert not worst.fits
    assert [m.mode for m in budget(STREAM, 3e6, worst_case=False).modes] == [
        "raw", "lossless", "events", "events+lfp"]


def test_events_mode_is_one_frame_per_event_with_record_and_snippet():
    events = budget(STREAM, 3_000_000).mode("events")
    # 80 events/s; record 10 B + 25 snippet samples x 2 B = 60 B, + 13 B of frame.
    assert events.payload_bytes_per_s == 80 * 60
    assert events.framing_bytes_per_s == 80 * 13
    assert events.link_bits_per_s == pytest.approx((80 * 73 + IDENTITY_BYTES_PER_S) * 10)
    # (300000 - identity) / (20 x 73) = 205.4 -> 205 channels
    assert events.max_channels == 205


def test_events_plus_lfp_adds_decimated_samples_in_frames_of_decimated_sweeps():
    mode = budget(STREAM, 3_000_000, lfp_decimation=30).mode("events+lfp")
    # LFP: 1000 S/s x 4 ch x 2 B = 8000 B/s in 937.5 / 30 = 31.25 frames/s.
    assert mode.payload_bytes_per_s == 80 * 60 + 8000
    assert mode.framing_bytes_per_s == 80 * 13 + 31.25 * 13


def test_a_slow_link_refuses_raw_but_fits_events_and_says_by_how_much():
    stream = StreamDescription(channels=1024, sample_rate_hz=30_000, spike_rate_hz=1.0)
    result = budget(stream, 1_000_000, bits_per_byte=8)
    assert not result.mode("raw").fits
    assert result.mode("raw").margin < -60          # ~491 Mbit/s vs 1 Mbit/s
    events = result.mode("events")
    # 1024 events/s x 73 B + identity, 8 bits per byte
    assert events.link_bits_per_s == pytest.approx(
        (1024 * 73 + (13 + IDENTITY_PAYLOAD_BYTES) * 937.5 / 1024) * 8)
    assert events.fits


def test_events_modes_need_the_detector():
    config = SystemConfig(channels=4, detector=DetectorConfig(enabled=False))
    result = budget(config)
    for name in ("events", "events+lfp"):
        mode = result.mode(name)
        assert not mode.available and not mode.fits and mode.max_channels == 0
        assert "detector.enabled" in mode.note
    assert result.mode("raw").fits


@pytest.mark.parametrize("kwargs, message", [
    (dict(link_bits_per_s=0), "link rate must be a positive number"),
    (dict(link_bits_per_s=3e6, compression_ratio=0), "compression ratio must be a positive"),
    (dict(link_bits_per_s=3e6, lfp_decimation=0), "lfp_decimation must be a whole factor"),
    (dict(link_bits_per_s=None), "no link rate: give link_bits_per_s"),
])
def test_bad_budget_arguments_name_the_problem(kwargs, message):
    with pytest.raises(BudgetError, match=message):
        budget(STREAM, **kwargs)


@pytest.mark.parametrize("field, value, message", [
    ("channels", 0, "channels must be a positive integer"),
    ("channels", 2048, "channels must be at most 1024"),
    ("spike_rate_hz", -1.0, "spike_rate_hz must be a rate >= 0"),
    ("snippet_post", 300, "snippet_post must be 0..255"),
])
def test_bad_stream_descriptions_name_the_problem(field, value, message):
    fields = dict(channels=4, sample_rate_hz=30_000)
    fields[field] = value
    with pytest.raises(BudgetError, match=message):
        StreamDescription(**fields)


def test_cli_budget_for_a_board_uses_its_link(capsys):
    assert main(["budget", "--board", "icebreaker", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    board = BOARDS["icebreaker"]
    assert result["link_bits_per_s"] == board.default_config.baud
    assert result["stream"]["channels"] == board.default_config.channels
    assert {m["mode"] for m in result["modes"]} >= {"raw", "lossless", "events", "events+lfp"}


def test_cli_budget_error_exits_with_usage_code(capsys):
    assert main(["budget", "--channels", "4", "--link-bps", "-5"]) == 2
    assert "link rate must be a positive number" in capsys.readouterr().err


def test_cli_budget_measures_the_ratio_on_the_users_recording(tmp_path, capsys):
    pytest.importorskip("zstandard")
    rng = np.random.default_rng(2)
    walk = np.cumsum(rng.integers(-3, 4, (4000, 2)), axis=0).astype("<i2")
    walk.tofile(tmp_path / "rec.dat")
    assert main(["budget", "--channels", "2", "--link-bps", "1e6", "--recording",
                 str(tmp_path / "rec.dat"), "--recording-channels", "2", "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{"):])
    assert "coder model over 1 recording" in result["compression_ratio_source"]
    # A +-3 random walk codes to ~3-4 bits per sample.
    assert 3.0 < result["compression_ratio"] < 6.0
    lossless = [m for m in result["modes"] if m["mode"] == "lossless"][0]
    assert lossless["payload_bytes_per_s"] == pytest.approx(
        2 * 30_000 * 2 / result["compression_ratio"])


def test_cli_budget_recording_needs_channels_for_flat_files(tmp_path, capsys):
    (tmp_path / "rec.dat").write_bytes(b"\x00" * 8)
    assert main(["budget", "--recording", str(tmp_path / "rec.dat")]) == 2
    assert "give it with --recording-channels N" in capsys.readouterr().err


def test_events_plus_lfp_counts_the_bytes_the_device_sends_in_lfp_frames():
    """The LFP part of mode events+lfp is what the framer model puts on the wire: LFP
    frames (13 bytes + sweeps_per_frame decimated sweeps of int16) at the decimated rate;
    the configuration's decimator sets the factor, and a build without one cannot run it."""
    from spikeforge.firmware.config import DecimatorConfig
    from spikeforge.firmware.wire import BandwidthMode, FrameType
    from spikeforge.host import FrameParser
    from spikeforge.sim.models.framer import frame_stream
    from spikeforge.sim.models.source import source_signal

    config = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                          identity_interval_frames=10**6,
                          detector=DetectorConfig(enabled=True),
                          lfp=DecimatorConfig(factor=10, order=3))
    sweeps = 8 * 10 * 50
    schedule = frame_stream(config, source_signal(config, sweeps).samples,
                            modes=[(0, BandwidthMode.EVENTS_LFP)])
    lfp_bytes = sum(13 + len(f.payload) for f in FrameParser().feed(bytes(schedule.data))
                    if f.type == FrameType.LFP)
    assert len(schedule.sent_lfp_slots) == 50
    seconds = sweeps / config.sample_rate_hz
    mode = budget(config, spike_rate_hz=0.0).mode("events+lfp")
    assert mode.available and "/10" in mode.note
    assert mode.payload_bytes_per_s + mode.framing_bytes_per_s == pytest.approx(
        lfp_bytes / seconds)
    without = budget(config.replace(lfp=None)).mode("events+lfp")
    assert not without.available and "SystemConfig.lfp" in without.note


# -- Gigabit Ethernet (issue 14) ----------------------------------------------------------
#: 1024 channels at 30 kS/s, 31 sweeps per frame: the largest DATA frame one datagram holds.
GIGABIT_STREAM = StreamDescription(channels=1024, sample_rate_hz=30_000, sweeps_per_frame=31,
                                   identity_interval_frames=1024)


def test_ethernet_line_bytes_count_fragments_headers_gap_and_padding_by_hand():
    from spikeforge.host.budget import ethernet_line_bytes

    # A 13-byte frame (empty payload): UDP 21 B, IP packet 41 B, padded to 46, + 8 + 14 + 4 + 12.
    assert ethernet_line_bytes(13) == 84
    # Exactly one full fragment: 1480 B of IP payload = 1472 B of wire frame + UDP 8.
    assert ethernet_line_bytes(1472) == 8 + 14 + 20 + 1480 + 4 + 12
    # One byte more needs a second fragment: 1 byte of IP payload, padded.
    assert ethernet_line_bytes(1473) == 1538 + 84
    # 1024 channels x 31 sweeps: 63488 + 13 B frame, 63509 B datagram -> 43 fragments.
    assert ethernet_line_bytes(63_501) == 42 * 1538 + (58 + 63_509 - 42 * 1480)


def test_gigabit_link_carries_1024_raw_channels_with_its_load_shown():
    from spikeforge.host.budget import ethernet_line_bytes, format_budget

    result = budget(GIGABIT_STREAM, link="ethernet")
    assert result.link_bits_per_s == 1e9 and result.bits_per_byte == 8
    raw = result.mode("raw")
    frames_per_s = 30_000 / 31
    identity_per_s = frames_per_s / 1024
    expected_bits = 8 * (frames_per_s * ethernet_line_bytes(63_501)
                         + identity_per_s * ethernet_line_bytes(13 + IDENTITY_PAYLOAD_BYTES))
    assert raw.link_bits_per_s == pytest.approx(expected_bits)
    # The samples alone are 491.5 Mbit/s; Ethernet, IP and UDP add about 4 % on top.
    assert raw.payload_bytes_per_s * 8 == 491_520_000
    assert raw.link_overhead_bytes_per_s == pytest.approx(
        raw.link_bits_per_s / 8 - raw.bytes_per_s)
    assert 0.50 < raw.load < 0.52 and raw.fits and raw.max_channels == 1024
    table = format_budget(result)
    assert "Gigabit Ethernet" in table and "51.1%" in table


def test_gigabit_max_channels_is_where_the_line_rate_runs_out():
    # On a 100 Mbit/s link (--link-bps 1e8) raw stops fitting near 190 channels; the
    # answer is the last channel count whose line bits fit, found exactly.
    from spikeforge.host.budget import ethernet_line_bytes

    stream = StreamDescription(channels=64, sample_rate_hz=30_000, sweeps_per_frame=31)
    raw = budget(stream, 1e8, link="ethernet").mode("raw")

    def line_bits(channels: int) -> float:
        return 8 * (30_000 / 31 * ethernet_line_bytes(13 + 62 * channels)
                    + 30_000 / 31 / 1024 * ethernet_line_bytes(13 + IDENTITY_PAYLOAD_BYTES))

    assert line_bits(raw.max_channels) <= 1e8 < line_bits(raw.max_channels + 1)
    assert 150 < raw.max_channels < 200


def test_a_frame_larger_than_one_datagram_is_not_available_on_ethernet():
    stream = StreamDescription(channels=1024, sample_rate_hz=30_000, sweeps_per_frame=32)
    raw = budget(stream, link="ethernet").mode("raw")
    assert not raw.fits and not raw.available and raw.max_channels == 0
    assert "does not fit one UDP datagram" in raw.note and "sweeps_per_frame" in raw.note


def test_uart_budget_is_unchanged_by_the_link_argument():
    assert budget(STREAM, 3e6).to_dict() == budget(STREAM, 3e6, link="uart").to_dict()
    with pytest.raises(BudgetError, match="link must be one of uart, ethernet"):
        budget(STREAM, 3e6, link="wifi")


def test_the_lossless_verdict_says_its_assumed_ratio_and_the_ratio_it_needs():
    """`budget --channels 8` once promised lossless fits (88 %, assuming 1.9x) while the
    device lost 11 % on data its coder compressed less: the verdict must say what it
    assumed, and the ratio the data must reach for it to hold."""
    from spikeforge.host.budget import lossless_break_even_ratio

    config = SystemConfig(channels=8)
    result = budget(config)
    needed = lossless_break_even_ratio(result)
    assert 1.0 < needed < result.compression_ratio
    at_needed = budget(config, compression_ratio=needed).mode("lossless")
    assert at_needed.load == pytest.approx(1.0, abs=1e-6)
    row = next(line for line in format_budget(result).splitlines()
               if line.startswith("lossless "))
    assert "assum" in row and "1.9x" in row and f"{needed:.2f}x" in row, row
    assert "--recording" in row
    assert result.to_dict()["lossless_break_even_ratio"] == pytest.approx(needed)


def test_a_measured_ratio_is_no_assumption():
    result = budget(SystemConfig(channels=8), compression_ratio=2.4,
                    compression_ratio_source="measured over n1.wav")
    row = next(line for line in format_budget(result).splitlines()
               if line.startswith("lossless "))
    assert "measured over n1.wav" in row and "assum" not in row


@pytest.mark.parametrize(("channels", "floor"), [(1, 0.86), (4, 0.96), (16, 0.99),
                                                (1024, 0.9998)])
def test_worst_case_row_is_v2s_when_v2_is_the_coder(channels, floor):
    """v2's running budget: within 1 % of raw from 16 channels at 32 sweeps (below that
    its slack and one sample's worst excess, ~78 bits a block, are more than 1 %)."""
    from spikeforge.firmware.compression_v2 import CodecV2Config, worst_case_bits_v2

    codec = CodecV2Config(enabled=True)
    stream = StreamDescription(channels=channels, sample_rate_hz=30_000, codec=codec)
    raw_bits = 16 * channels * codec.block_sweeps
    assert stream.worst_case_ratio == raw_bits / worst_case_bits_v2(channels, 32)
    assert stream.worst_case_ratio >= floor
    v1 = StreamDescription(channels=channels, sample_rate_hz=30_000, codec=CodecConfig())
    assert v1.worst_case_ratio != stream.worst_case_ratio
