"""End to end without hardware: `spikeforge record --port sim://…` records from the
Verilated acquisition system, and the recording equals the test source, sample for sample."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikeforge.sim.models.source import source_signal
from spikeforge.sim.virtual_board import config_from_sim_url

neo = pytest.importorskip("neo")
pytestmark = pytest.mark.sim


_URL = "sim://?channels=4&identity_interval_frames=16"


def test_record_from_the_virtual_board_equals_the_source(tmp_path):
    url = _URL
    config = config_from_sim_url(url)
    out = tmp_path / "rec"
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port", url, "--duration", "0.5",
         "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    reader = neo.rawio.OpenEphysBinaryRawIO(str(out))
    reader.parse_header()
    samples = reader.get_analogsignal_chunk(0, 0, stream_index=0)
    recording = out / "Record Node 101" / "experiment1" / "recording1"
    first = int(np.load(recording / "continuous" / "spikeforge-100.acquisition" /
                        "sample_numbers.npy")[0])
    meta = json.loads((recording / "spikeforge.json").read_text())
    assert samples.shape == (config.sample_rate_hz // 2, config.channels)
    assert meta["samples_lost"] == 0 and meta["link"]["crc_errors"] == 0
    truth = source_signal(config, first + len(samples)).samples[first:]
    np.testing.assert_array_equal(samples, truth)
    assert "cycles_per_s" in result.stderr


def test_a_built_virtual_board_keeps_its_executable_not_its_precompiled_headers():
    """The board the test above recorded from (cached: not built again) is an executable with
    no ``*.gch`` left beside it (~150 MB a build; they filled a CI machine's disk)."""
    from spikeforge.sim.virtual_board import build_virtual_board

    binary = build_virtual_board(config_from_sim_url(_URL))
    assert binary.exists()
    assert not list(binary.parent.rglob("*.gch"))


def test_sim_urls_carry_the_configuration(tmp_path):
    assert config_from_sim_url("sim://?channels=8&baud=12000000").channels == 8
    path = Path(tmp_path / "c.json")
    path.write_text(json.dumps({"channels": 2}))
    assert config_from_sim_url(f"sim://{path}").channels == 2


def test_the_host_controls_the_virtual_board():
    """Registers read and written through the virtual board's uart_rx, streaming stopped and
    started, a garbled command discarded and counted, the host's retry carrying it."""
    import time

    from spikeforge.host.device import Device, RegisterRefused
    from spikeforge.sim.virtual_board import VirtualBoard

    config = config_from_sim_url("sim://?channels=4&identity_interval_frames=16")
    board = VirtualBoard.start(config)
    try:
        with Device.open(board.url) as device:
            assert device.identify() == config
            assert device.supports_control()
            assert device.read_register("CHANNELS") == 4
            assert device.read_register("IDENTITY") == int.from_bytes(b"SPKF", "little")
            assert device.write_register("DETECT_DEAD_SAMPLES", 77) == 77
            assert device.read_register("DETECT_DEAD_SAMPLES") == 77
            with pytest.raises(RegisterRefused, match="not writable"):
                device.write_register("FRAMES_SENT", 1)

            device.stop()
            time.sleep(1.0)     # the frames already buffered on the device go out
            stopped = device.read_register("FRAMES_SENT")
            time.sleep(1.0)
            assert device.read_register("FRAMES_SENT") == stopped, "still streaming"
            device.start()
            time.sleep(1.0)
            assert device.read_register("FRAMES_SENT") > stopped, "did not resume"

            # A half command, then a whole one: the device drops the half one (timed out, or
            # read together with the whole one as one bad frame, which the host's retry with
            # the same tag then repairs); either way one command error, and the read works.
            device._port.write(b"\xa5\x5a\x06\x01\x02")
            assert device.read_register("SAMPLE_RATE_HZ") == config.sample_rate_hz

            status = device.status()
            assert status.registers["COMMAND_ERRORS"] >= 1
            assert status.registers["UART_FRAMING_ERRORS"] == 0
            assert status.registers["COMMANDS_EXECUTED"] >= 10
            assert status.registers["FRAMES_SENT"] > stopped
            assert status.link.crc_errors == 0 and status.link.bytes_discarded == 0
            blocks = device.blocks()
            assert next(blocks).samples.shape[1] == 4
    finally:
        board.stop()


def test_spikeforge_status_reads_the_virtual_boards_counters():
    url = "sim://?channels=4&identity_interval_frames=16"   # the build of the test above
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "status", "--port", url, "--stop"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "streaming stopped" in result.stdout
    counters = dict(line.split()[:2] for line in result.stdout.splitlines()
                    if line.split()[0] in ("commands_executed", "command_errors"))
    assert int(counters["commands_executed"]) >= 2 and counters["command_errors"] == "0"


def _adversarial_frames(frames: int, channels: int, seed: int) -> np.ndarray:
    """Full-scale extremes, zero crossings, steps and noise, different on every channel."""
    rng = np.random.default_rng(seed)
    data = rng.integers(-32768, 32768, size=(frames, channels), dtype=np.int32)
    data[0::7] = 32767
    data[1::7] = -32768
    data[2::11] = 0
    data[3::11] = -1
    data[100:2000, ::2] = 1234
    return data.astype(np.int16)


def _write_wav(path: Path, frames: np.ndarray, rate_hz: int) -> None:
    import wave

    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(frames.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(frames.astype("<i2").tobytes())


def _record_and_compare(tmp_path: Path, url: str, frames: np.ndarray, rate_hz: int,
                        duration_s: float) -> None:
    """Record ``url`` through the CLI; the recording must be ``frames`` played through the
    chips: sample n is frame n - first_pass - 1, zeros before, nothing lost."""
    from spikeforge.sim.virtual_board import SampleFeed, board_from_sim_url, expected_recording

    channels = frames.shape[1]
    out = tmp_path / "rec"
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port", url, "--duration",
         str(duration_s), "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    stats = result.stderr.split("virtual board: cycles ")[1].split()
    stats = dict(zip(stats[1::2], stats[2::2]))
    assert int(stats["rhd_calibration_violations"]) == 0
    first_convert = int(stats["rhd_first_convert_cycle"])
    assert first_convert > 0

    recording = out / "Record Node 101" / "experiment1" / "recording1"
    folder = recording / "continuous" / "spikeforge-100.acquisition"
    samples = np.fromfile(folder / "continuous.dat", dtype="<i2").reshape(-1, channels)
    numbers = np.load(folder / "sample_numbers.npy")
    meta = json.loads((recording / "spikeforge.json").read_text())
    assert meta["samples_lost"] == 0 and meta["link"]["crc_errors"] == 0
    assert len(samples) == round(duration_s * rate_hz)
    config, _ = board_from_sim_url(url)
    feed = SampleFeed(tmp_path / "flat.i16", channels)
    frames.tofile(feed.path)
    truth = expected_recording(feed, first_convert, config, numbers)
    played = (numbers - first_convert // config.cycles_per_sample - 1 >= 0).sum()
    assert played > len(samples) // 2, "the recording should be mostly file data"
    np.testing.assert_array_equal(samples, truth)


def test_record_from_a_wav_played_through_the_rhd_chips_equals_the_file(tmp_path):
    """A WAV file plays through the C++ RHD2132 model (behind a 2-cycle cable, found by the
    start-up calibration), the RHD front-end, the framer and the UART; the recording is the
    file, sample for sample, one sweep after each conversion pass."""
    frames = _adversarial_frames(12_000, 4, seed=3)          # 0.4 s at 30 kS/s
    wav = tmp_path / "input.wav"
    _write_wav(wav, frames, 30_000)
    _record_and_compare(tmp_path, f"sim://?from={wav}&identity_interval_frames=16", frames,
                        30_000, 0.35)


@pytest.mark.slow
def test_record_through_an_rhd2164_ddr_and_twos_complement_equals_the_file(tmp_path):
    """40 channels of a flat int16 file through one RHD2164 (amplifiers 32-39 come from the
    B words of its double-data-rate MISO), two's-complement output, a 5-cycle cable."""
    frames = _adversarial_frames(3_000, 40, seed=5)          # 0.375 s at 8 kS/s
    flat = tmp_path / "input.i16"
    frames.tofile(flat)
    config = {"source": "rhd", "channels": 40, "sample_rate_hz": 8000, "baud": 12_000_000,
              "sweeps_per_frame": 8, "identity_interval_frames": 16,
              "rhd": {"chips": ["RHD2164"], "amplifier_masks": [2**40 - 1],
                      "miso_delay_cycles": [0], "twos_complement": True}}
    path = tmp_path / "board.json"
    path.write_text(json.dumps(config))
    _record_and_compare(tmp_path, f"sim://{path}?from={flat}&cable_delay=5", frames, 8000,
                        0.3)


def test_sample_files_and_their_rhd_configuration(tmp_path):
    from spikeforge.firmware.errors import ConfigError
    from spikeforge.sim.virtual_board import board_from_sim_url, read_sample_file, rhd_config_for

    frames = _adversarial_frames(100, 3, seed=1)
    flat = tmp_path / "x.i16"
    frames.tofile(flat)
    data, rate = read_sample_file(flat, 3)
    assert rate is None and np.array_equal(data, frames)
    with pytest.raises(ConfigError, match="--channels"):
        read_sample_file(flat)
    with pytest.raises(ConfigError, match="whole number"):
        read_sample_file(flat, 7)
    config, feed = board_from_sim_url(f"sim://?from={flat}&channels=3&sample_rate_hz=8000")
    assert config.source == "rhd" and config.channels == 3 and config.rhd.amplifier_masks == (7,)
    assert np.array_equal(feed.frames(), frames)
    wav = tmp_path / "x.wav"
    _write_wav(wav, frames, 20_000)
    config, feed = board_from_sim_url(f"sim://?from={wav}&cable_delay=5")
    assert config.sample_rate_hz == 20_000 and feed.cable_delays == (5,)
    assert np.array_equal(feed.frames(), frames)
    with pytest.raises(ConfigError, match="add chips"):
        rhd_config_for(config, 40, ("RHD2132",))
    two = rhd_config_for(config.replace(sweeps_per_frame=4, sample_rate_hz=8000), 40,
                         ("RHD2132", "RHD2164"))
    assert two.rhd.amplifier_masks == (2**32 - 1, 2**8 - 1) and two.channels == 40


def test_the_host_learns_the_chips_the_board_found(tmp_path):
    """Issue 3's loop closed without hardware: the virtual board's start-up calibration reads
    the ROM of a C++ RHD2132 behind a 3-cycle cable at every candidate delay; the host reads
    what it found over the control path: line 0, an RHD2132 with 32 amplifiers, at the
    delay in the middle of the good window, and that window excludes the too-early delays."""
    from spikeforge.firmware.rhd_programs import choose_delay
    from spikeforge.host.device import ChipFound, Device
    from spikeforge.sim.virtual_board import VirtualBoard, board_from_sim_url

    frames = _adversarial_frames(3_000, 4, seed=7)
    wav = tmp_path / "input.wav"
    _write_wav(wav, frames, 30_000)
    cable = 3
    config, feed = board_from_sim_url(
        f"sim://?from={wav}&identity_interval_frames=16&cable_delay={cable}")
    board = VirtualBoard.start(config, feed=feed)
    try:
        with Device.open(board.url) as device:
            assert device.identify() == config
            chips = device.chips()
            good_bits = device.read_register("RHD_GOOD_DELAYS_01") & 0xFFFF
    finally:
        board.stop()
    good = [bool(good_bits >> d & 1) for d in range(16)]
    assert not any(good[:cable]), f"delays below the cable's {cable} cycles read the ROM: {good}"
    assert any(good), "no delay read the ROM"
    assert chips == [ChipFound(line=0, kind="RHD2132", amplifiers=32,
                               miso_delay=choose_delay(good))]


# -- channel mask -----------------------------------------------------------------
_MASK_URL = "sim://?channels=4&identity_interval_frames=16"   # the build of the tests above


def test_record_chosen_channels_from_the_virtual_board(tmp_path):
    """`spikeforge record --channels-enabled` sets the mask through configure() before the
    stream starts; the recording holds exactly the source's samples of those channels."""
    config = config_from_sim_url(_MASK_URL)
    out = tmp_path / "rec"
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port", _MASK_URL, "--duration",
         "0.2", "--channels-enabled", "1,3", "--out", str(out)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    reader = neo.rawio.OpenEphysBinaryRawIO(str(out))
    reader.parse_header()
    samples = reader.get_analogsignal_chunk(0, 0, stream_index=0)
    assert list(reader.header["signal_channels"]["name"]) == ["CH2", "CH4"]
    recording = out / "Record Node 101" / "experiment1" / "recording1"
    first = int(np.load(recording / "continuous" / "spikeforge-100.acquisition" /
                        "sample_numbers.npy")[0])
    meta = json.loads((recording / "spikeforge.json").read_text())
    assert meta["channels_enabled"] == [1, 3]
    assert meta["samples_lost"] == 0 and meta["link"]["crc_errors"] == 0
    assert samples.shape == (config.sample_rate_hz // 5, 2)
    truth = source_signal(config, first + len(samples)).samples[first:, [1, 3]]
    np.testing.assert_array_equal(samples, truth)


def test_the_channel_mask_changes_only_while_the_stream_is_stopped():
    from spikeforge.host.device import Device, RegisterRefused
    from spikeforge.sim.virtual_board import VirtualBoard

    config = config_from_sim_url(_MASK_URL)
    board = VirtualBoard.start(config)
    try:
        with Device.open(board.url) as device:
            assert device.identify() == config
            assert device.read_channel_mask() == (0, 1, 2, 3)
            with pytest.raises(RegisterRefused, match="streaming; stop the stream first"):
                device.configure(channels=[2])
            assert device.read_channel_mask() == (0, 1, 2, 3), "taken while streaming"
            with pytest.raises(RegisterRefused, match="at least one channel"):
                device.configure(channels=[])

            device.configure(stream=False, channels=[0, 2])
            # The device itself refuses a word that would leave no channel enabled.
            device.write_register("CHANNEL_MASK_INDEX", 0)
            device.write_register("CHANNEL_MASK", 0)
            assert device.read_register("CHANNEL_MASK_IN_FORCE") == 0b0101
            assert device.read_register("ENABLED_CHANNELS") == 2
            device.start()
            blocks = device.blocks()
            block = next(b for b in blocks if b.channels == (0, 2))
            truth = source_signal(config, block.first_sample + 32).samples
            np.testing.assert_array_equal(
                block.samples, truth[block.first_sample:block.first_sample + 32][:, [0, 2]])
            assert device.stats.malformed == 0
    finally:
        board.stop()


# -- codebook loading over the control path (codec.codebook builds) ------------------------------


@pytest.mark.slow
def test_record_with_a_codebook_loads_it_over_the_uart_and_decodes_lossless(tmp_path):
    """The codebook goes through the real command path (UART receiver, command decoder,
    register bank, read-back) of the Verilated system; the lossless recording equals the
    source."""
    from spikeforge.firmware.compression import Codebook, CodecConfig
    from spikeforge.firmware.config import SystemConfig

    config = SystemConfig(channels=4, codec=CodecConfig(enabled=True, block_sweeps=8,
                                                        codebook=True, codebook_bits=6))
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    base = int(source_signal(config, 64).samples[:, 0].min()) - 4
    book = Codebook(values=tuple(range(base, base + 64)), base=base, multiplier=1, shift=0)
    (tmp_path / "book.json").write_text(json.dumps(book.to_dict()))
    out = tmp_path / "rec"
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port",
         f"sim://{tmp_path / 'config.json'}", "--codebook-from", str(tmp_path / "book.json"),
         "--duration", "0.1", "--out", str(out)], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr
    recording = out / "Record Node 101" / "experiment1" / "recording1"
    folder = recording / "continuous" / "spikeforge-100.acquisition"
    samples = np.fromfile(folder / "continuous.dat", dtype="<i2").reshape(-1, config.channels)
    numbers = np.load(folder / "sample_numbers.npy")
    meta = json.loads((recording / "spikeforge.json").read_text())
    assert meta["mode"] == "lossless" and Codebook.from_dict(meta["codebook"]) == book
    assert meta["samples_lost"] == 0 and meta["link"]["crc_errors"] == 0
    assert len(samples) == config.sample_rate_hz // 10
    truth = source_signal(config, int(numbers[-1]) + 1).samples[numbers]
    np.testing.assert_array_equal(samples, truth)


def test_record_events_plus_lfp_from_the_virtual_board(tmp_path):
    """`spikeforge record --mode events+lfp` on a build with the detector and the LFP
    decimator: the RTL's LFP frames are recorded as the spikeforge-100.lfp stream, exactly
    the decimator model applied to the test source; no full-rate samples are recorded."""
    from spikeforge.sim.models.decimator import decimate

    path = tmp_path / "lfp.json"
    path.write_text(json.dumps({"channels": 4, "identity_interval_frames": 16,
                                "sweeps_per_frame": 8, "link_buffer_samples": 256,
                                "detector": {"enabled": True},
                                "lfp": {"factor": 30, "order": 3}}))
    url = f"sim://{path}"
    config = config_from_sim_url(url)
    out = tmp_path / "rec"
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port", url, "--duration", "0.1",
         "--mode", "events+lfp", "--out", str(out)], capture_output=True, text=True,
        timeout=1500)
    assert result.returncode == 0, result.stderr
    recording = out / "Record Node 101" / "experiment1" / "recording1"
    stream = recording / "continuous" / "spikeforge-100.lfp"
    numbers = np.load(stream / "sample_numbers.npy")
    samples = np.fromfile(stream / "continuous.dat", dtype="<i2").reshape(-1, 4)
    assert len(numbers) == len(samples) == 100       # 0.1 s at 1 kS/s
    meta = json.loads((recording / "spikeforge.json").read_text())
    assert meta["mode"] == "events+lfp" and meta["lfp_samples_lost"] == 0
    assert meta["sweeps"] == 0                         # no DATA frames in this mode
    first = int(numbers[0])
    truth = decimate(config.lfp, source_signal(config, (first + 100) * 30).samples)
    np.testing.assert_array_equal(samples, truth[first:first + 100])


def test_the_direct_link_board_sends_at_the_board_uarts_byte_rate():
    """Overloaded (1296 %): the direct-link board's link carries exactly the board's UART
    byte rate (the harness's token bucket), and the framer drops the rest whole."""
    from spikeforge.firmware.config import SystemConfig
    from spikeforge.sim.virtual_board import VirtualBoard, design_config

    config = SystemConfig(channels=64, baud=3_000_000, sweeps_per_frame=8,
                          link_buffer_samples=1024)
    assert design_config(config).clock_hz < config.clock_hz / 4
    stats = VirtualBoard.measure(config, 2_400_000)       # 0.2 s of device time
    device_s = stats["cycles"] / stats["clock_hz"]
    link_bytes = config.clock_hz / config.cycles_per_byte * device_s
    assert 0.97 * link_bytes <= stats["bytes_received"] <= link_bytes + 1
    assert stats["realtime_ratio"] > 0
