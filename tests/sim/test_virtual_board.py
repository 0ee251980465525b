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
