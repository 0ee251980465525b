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


def test_record_from_the_virtual_board_equals_the_source(tmp_path):
    url = "sim://?channels=4&identity_interval_frames=16"
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
    counters = dict(line.split() for line in result.stdout.splitlines()
                    if line.split()[0] in ("commands_executed", "command_errors"))
    assert int(counters["commands_executed"]) >= 2 and counters["command_errors"] == "0"
