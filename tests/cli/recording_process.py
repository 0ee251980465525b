"""``spikeforge record`` from the virtual board in a subprocess, for the CLI tests that
interrupt or freeze it."""

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

URL = "sim://?channels=4&identity_interval_frames=16"   # the build of tests/sim


def start_recording(out: Path, **popen: Any) -> subprocess.Popen:
    """``spikeforge record`` from the virtual board into ``out``, in its own process group
    (as a shell job), its output captured as text; ``popen``: more Popen arguments."""
    return subprocess.Popen(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port", URL, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        **popen)


def wait_for_samples(process: subprocess.Popen, out: Path) -> None:
    """Wait until the recorder has written 30 kB of samples (within 600 s: a build of the
    board, if not cached); fail at once if it exits first."""
    deadline = time.monotonic() + 600
    data = out / "Record Node 101/experiment1/recording1/continuous"
    while not any(p.stat().st_size > 30_000 for p in data.rglob("continuous.dat")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the recorder wrote nothing"
        time.sleep(0.02)
