"""Ctrl-C at a terminal (SIGINT to the recorder and the virtual board it started, one
process group) ends the recording cleanly, in every run, without inventing link errors:
the interrupt must not land inside a read of the port (whose bytes would be lost, so the
reads that follow decode a hole: a CRC error, discarded bytes, sequence gaps)."""

import json
import os
import signal
import time

import pytest
from recording_process import start_recording, wait_for_samples


@pytest.mark.parametrize("run", range(4))
def test_ctrl_c_on_a_clean_link_counts_no_link_errors(tmp_path, run):
    out = tmp_path / "rec"
    # SIGINT at its default in the recorder, as at a terminal (a background test run
    # ignores SIGINT and a child would inherit that); its own group, as a shell job.
    process = start_recording(
        out, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for_samples(process, out)
        time.sleep(0.13 * run)
        os.killpg(process.pid, signal.SIGINT)       # Ctrl-C: the whole job
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    meta = json.loads(next(out.rglob("spikeforge.json")).read_text())
    assert meta["ended"] == "interrupted"
    link = meta["link"]
    assert (link["crc_errors"], link["bytes_discarded"], link["sequence_gaps"]) == (0, 0, 0), \
        f"run {run}: {link}"
