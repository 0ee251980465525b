"""End to end through the encrypted stream: `spikeforge record --key NAME` from a virtual
board built with the stream cipher, at a load the link budget says fits (the 8-byte tags
counted), loses nothing and records exactly the test source."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from spikeforge.firmware.framing import DATA_FRAME_OVERHEAD_BYTES
from spikeforge.firmware.stream_cipher import TAG_BYTES
from spikeforge.host.recorder import stream_load
from spikeforge.sim.models.source import source_signal
from spikeforge.sim.virtual_board import config_from_sim_url

neo = pytest.importorskip("neo")
pytestmark = pytest.mark.sim

#: A test key (never a device's).
KEY = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"


def test_record_with_key_from_a_cipher_board_loses_nothing(tmp_path):
    url = (f"sim://?channels=4&identity_interval_frames=16&control_key={KEY}"
           "&stream_cipher=1")
    config = config_from_sim_url(url)
    load, _ = stream_load(config)
    assert 0.85 < load <= 1.0, f"the case must load the link heavily and fit: {load:.1%}"
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    key_file = keys / "board.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    out = tmp_path / "rec"
    duration_s = 1.0
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port", url, "--key", "board",
         "--duration", str(duration_s), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
        env=os.environ | {"SPIKEFORGE_KEY_DIR": str(keys)})
    assert result.returncode == 0, result.stderr

    recording = out / "Record Node 101" / "experiment1" / "recording1"
    meta = json.loads((recording / "spikeforge.json").read_text())
    link = meta["link"]
    assert meta["samples_lost"] == 0 and meta["losses"] == []
    assert (link["sequence_gaps"], link["crc_errors"], link["cipher_failures"],
            link["bytes_discarded"]) == (0, 0, 0, 0), link
    # The frames came sealed: each DATA frame carried its tag.
    frames = int(config.sample_rate_hz * duration_s) // config.sweeps_per_frame
    assert link["bytes_received"] >= frames * (config.payload_bytes + DATA_FRAME_OVERHEAD_BYTES
                                               + TAG_BYTES)

    reader = neo.rawio.OpenEphysBinaryRawIO(str(out))
    reader.parse_header()
    samples = reader.get_analogsignal_chunk(0, 0, stream_index=0)
    first = int(np.load(recording / "continuous" / "spikeforge-100.acquisition" /
                        "sample_numbers.npy")[0])
    assert samples.shape == (int(config.sample_rate_hz * duration_s), config.channels)
    truth = source_signal(config, first + len(samples)).samples[first:]
    np.testing.assert_array_equal(samples, truth)
